//! Extraction: the cheapest program in the e-graph under the stage cost
//! model, counted over the DAG (a value several consumers share is paid
//! for once).
//!
//! Cost of a stage (machine.md's roofline, as `tessera bench` counts it):
//! `launch + max(cube, vector, GM bytes / bandwidth)`, from the machine
//! description. A fused group is one stage: its body's work over its
//! result's shape (broadcast operands are recomputed per element), its
//! inputs read once and its result written once. Views (parameters,
//! constants, reshapes, broadcasts, slices) cost nothing; a transpose or a
//! concat costs a copy.
//!
//! The extractor is greedy over the DAG: each class's cost is its node's
//! stage cost plus the costs of the distinct classes that node needs,
//! iterated to a fixed point. Classes are visited in id order and ties keep
//! the first node found, so the choice is deterministic.

use super::analysis::{EGraph, body_types, is_elementwise};
use super::group::{GroupKind, RowsForm, body_of, classify, rows_bytes_per_element, rows_form};
use super::lang::Body;
use super::lang::{Arg, ENode};
use crate::cost::{Work, node_work};
use egg::{Id, Language};
use std::collections::HashMap;
use std::rc::Rc;
use tessera_ir::plan::rows::{Passes, ROW_ALIGN, TRANSPOSE_MAX_N};
use tessera_ir::plan::{EwArg, RowsInst, RowsOp, Width};
use tessera_ir::{Kernel, Op, TensorType, Value};
use tessera_sim::Machine;

/// Cycles of one stage with this work and GM traffic.
pub fn stage_cycles(m: &Machine, work: &Work, gm_bytes: u64) -> f64 {
    spread_cycles(m, work, gm_bytes, None)
}

/// How a stage with fewer tiles than cores spreads: at most `tiles` vector
/// cores work, and each moves its share of `reads` (every pass's loads, L2
/// hits included) and `writes` at its own DMA rates. The roofline assumes
/// every core, which a stage over a few long rows cannot use.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The most tiles that run at once.
    pub tiles: u64,
    /// Bytes all tiles load from GM, every pass counted.
    pub reads: u64,
    /// Bytes all tiles store to GM.
    pub writes: u64,
}

/// [`stage_cycles`], no faster than `spread`'s cores allow.
fn spread_cycles(m: &Machine, work: &Work, gm_bytes: u64, spread: Option<Spread>) -> f64 {
    let mut bound = m.roofline(&work.macs, work.vector, gm_bytes);
    if let Some(s) = spread {
        let cores = s.tiles.clamp(1, u64::from(m.vector_cores().max(1))) as f64;
        let loads = s.reads as f64 / (cores * m.dma.gm_to_ub.bytes_per_cycle);
        let stores = s.writes as f64 / (cores * m.dma.ub_to_gm.bytes_per_cycle);
        let limited = (work.vector / cores).max(loads).max(stores);
        bound = bound.max(m.launch.launch_cycles as f64 + limited);
    }
    // Ties go to less work: among forms with the same roofline (a GM-bound
    // stage computed with a division or with a reciprocal and a multiply),
    // the one whose other pipes are less loaded runs no slower, and faster
    // where the bound is not met. The term is a millionth of the whole
    // work, far below a cycle of difference between distinct stages.
    let cube = m.roofline(&work.macs, 0.0, 0);
    let vector = m.roofline(&[], work.vector, 0);
    let gm = m.roofline(&[], 0.0, gm_bytes);
    let launch = m.roofline(&[], 0.0, 0);
    bound + TIE_BREAK * (cube + vector + gm - 3.0 * launch)
}

/// The weight of a stage's whole work in its cost, below the roofline's.
const TIE_BREAK: f64 = 1e-6;

/// Bytes a stage reads of an operand (nothing for a constant).
fn read_bytes(ty: &TensorType, constant: bool) -> u64 {
    if constant { 0 } else { crate::cost::bytes(ty) }
}

/// The stage cost of one op on operands of types `args` (`consts` marks the
/// constant ones): 0 for views, a copy for transposes and concats, the
/// roofline of its work and traffic otherwise.
pub fn op_cost(op: &Op, args: &[TensorType], consts: &[bool], m: &Machine) -> f64 {
    let read: u64 = args
        .iter()
        .zip(consts)
        .map(|(t, &c)| read_bytes(t, c))
        .sum();
    match op {
        Op::Full { .. } | Op::Reshape(_) | Op::BroadcastTo(_) | Op::Slice { .. } => 0.0,
        Op::Transpose(_) | Op::Concat { .. } => stage_cycles(m, &Work::default(), 2 * read),
        op @ (Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Cast(_)
        | Op::Reduce { .. }
        | Op::MatMul) => {
            let tys: Vec<&TensorType> = args.iter().collect();
            let Ok(result) = tessera_ir::op::infer(op, &tys) else {
                return UNMAPPED;
            };
            let mut work = padded(op, node_work(op, &tys, &result, m), &result);
            let written = crate::cost::bytes(&result);
            let tiles = if let (Op::Reduce { axes, .. }, Some(input)) = (op, args.first()) {
                // A column reduction runs whole repeats of columns: a
                // partial last repeat (fewer than 64 columns, or 100)
                // leaves lanes idle.
                let inner = column_width(axes, input);
                if inner > 1 {
                    work.vector *= (inner.div_ceil(64) * 64) as f64 / inner as f64;
                }
                reduce_tiles(axes, input)
            } else {
                None
            };
            let spread = tiles.map(|tiles| Spread {
                tiles,
                reads: read,
                writes: written,
            });
            spread_cycles(m, &work, read + written, spread)
        }
    }
}

/// The elements after a reduction's last axis (1 for a row reduction).
fn column_width(axes: &[usize], input: &TensorType) -> u64 {
    let dims = input.shape.as_fixed().unwrap_or_default();
    let last = axes.iter().max().map_or(dims.len(), |&a| a + 1);
    dims.get(last..)
        .map_or(1, |d| d.iter().product::<u64>())
        .max(1)
}

/// The tiles a reduce stage over `input` splits into (as its schedule
/// does): a row reduction one per kept row, a column reduction one per
/// kept row and block of up to 4096 columns after the reduced axes.
pub(crate) fn reduce_tiles(axes: &[usize], input: &TensorType) -> Option<u64> {
    let dims = input.shape.as_fixed()?;
    let (&first, &last) = (axes.iter().min()?, axes.iter().max()?);
    let outer: u64 = dims.get(..first)?.iter().product();
    let inner: u64 = dims.get(last + 1..)?.iter().product();
    let pitch = (inner.div_ceil(64) * 64).clamp(64, 4096);
    Some(outer.max(1) * inner.div_ceil(pitch).max(1))
}

/// `work` of `op` with result type `ty` as a stage does it: a matmul on
/// the vector unit (the cube lacks its dtype: vector work) runs its output
/// columns in whole 64-lane repeats, so a narrow result pays for the
/// padding (the roofline's [`node_work`] counts the MACs alone).
fn padded(op: &Op, mut work: Work, ty: &TensorType) -> Work {
    if let Op::MatMul = op
        && work.vector > 0.0
        && let Some(n) = ty.shape.dims().last().and_then(|d| d.fixed())
        && n > 0
    {
        work.vector *= (n.div_ceil(64) * 64) as f64 / n as f64;
    }
    work
}

/// The stage cost of a fused group: its body over inputs of types `inputs`
/// (`consts` marks the constant ones). Elementwise groups compute every op
/// per element of the result; row and matmul groups compute each op at its
/// own shape. A body no stage computes (a partial group, kept for growth)
/// costs [`UNMAPPED`].
pub fn group_cost(body: &Body, inputs: &[TensorType], consts: &[bool], m: &Machine) -> f64 {
    let Ok(tys) = body_types(body, inputs) else {
        return UNMAPPED;
    };
    let Some(result) = tys.last() else {
        return UNMAPPED;
    };
    let widen = match classify(body, inputs, consts, &tys) {
        Some(GroupKind::Elementwise) => true,
        Some(GroupKind::Rows | GroupKind::MatMulEpilogue { .. }) => false,
        None => return UNMAPPED,
    };
    let mut work = Work::default();
    let mut spread = None;
    for ((key, args), ty) in body.nodes.iter().zip(&tys) {
        let arg_tys: Vec<TensorType> = args
            .iter()
            .map(|a| match *a {
                Arg::In(i) => inputs[i as usize].clone(),
                Arg::At(i) => tys[i as usize].clone(),
            })
            .collect();
        if widen && is_elementwise(&key.op) {
            let wide = |t: &TensorType| TensorType::new(t.dtype, result.shape.clone());
            let args: Vec<TensorType> = arg_tys.iter().map(wide).collect();
            let refs: Vec<&TensorType> = args.iter().collect();
            work.add(&node_work(&key.op, &refs, &wide(ty), m));
        } else {
            let refs: Vec<&TensorType> = arg_tys.iter().collect();
            work.add(&padded(&key.op, node_work(&key.op, &refs, ty, m), ty));
        }
    }
    if !widen
        && let Some(form) = rows_form(body, inputs, consts, &tys)
        && form.n <= TRANSPOSE_MAX_N
    {
        // Short rows are computed transposed: no padding, no per-row
        // instructions, but each full input gathered into columns and a
        // full result gathered back (a repeat of 64 offsets each).
        let rows: u64 = form.lead.iter().product();
        let tile = (rows * form.n).div_ceil(64) as f64;
        let gathered = form
            .inputs
            .iter()
            .zip(consts)
            .filter(|(w, c)| **w == Width::Full && !**c)
            .count()
            + usize::from(form.insts.last().is_some_and(|i| i.width == Width::Full));
        work.vector += gathered as f64 * tile * f64::from(m.vector.ops.gather.per_repeat);
    } else if !widen && let Some(form) = rows_form(body, inputs, consts, &tys) {
        // A row stage pads each row to whole repeats, and folds and expands
        // row by row: instructions whose fixed cost matters for short rows.
        let pitch = form.n.div_ceil(ROW_ALIGN) * ROW_ALIGN;
        work.vector *= pitch as f64 / form.n as f64;
        // A row longer than UB holds streams in chunks once per pass, and
        // a pass recomputes the full values it needs.
        let chunked = rows_bytes_per_element(&form, inputs) * pitch > m.memory.ub.bytes;
        if chunked {
            let passes = Passes::of(&form.insts, &form.inputs);
            let streamed =
                |i: &RowsInst| i.width == Width::Full || matches!(i.op, RowsOp::Reduce(_));
            let once = form.insts.iter().filter(|i| streamed(i)).count().max(1);
            let runs: usize = (0..passes.count)
                .map(|q| {
                    passes
                        .streamed(&form.insts, q)
                        .iter()
                        .filter(|&&s| s)
                        .count()
                })
                .sum();
            work.vector *= runs as f64 / once as f64;
        }
        let rows: u64 = form.lead.iter().product();
        let per_row = form
            .insts
            .iter()
            .map(|i| match i.op {
                RowsOp::Reduce(_) => 2.0,
                RowsOp::Expand => 1.0,
                RowsOp::Ew(_) => 0.0,
            })
            .sum::<f64>();
        let fixed = f64::from(m.vector.head_cycles) + f64::from(m.vector.ops.binary.tail);
        work.vector += rows as f64 * per_row * fixed;
        // A tile holds whole rows: a few rows leave cores idle.
        spread = Some(Spread {
            tiles: rows,
            reads: rows_reads(&form, inputs, consts, chunked),
            writes: crate::cost::bytes(result),
        });
    }
    let gm = inputs
        .iter()
        .zip(consts)
        .map(|(t, &c)| read_bytes(t, c))
        .sum::<u64>()
        + crate::cost::bytes(result);
    spread_cycles(m, &work, gm, spread)
}

/// The bytes a row stage's tiles load: each input once, or when its rows
/// stream in chunks (`chunked`), each full input once per pass that reads
/// it.
fn rows_reads(form: &RowsForm, inputs: &[TensorType], consts: &[bool], chunked: bool) -> u64 {
    let bytes = |k: usize| read_bytes(&inputs[k], consts[k]);
    if !chunked {
        return (0..inputs.len()).map(bytes).sum();
    }
    let full = |k: usize| form.inputs.get(k) == Some(&Width::Full);
    let once: u64 = (0..inputs.len()).filter(|&k| !full(k)).map(bytes).sum();
    let passes = Passes::of(&form.insts, &form.inputs);
    let streamed: u64 = (0..passes.count)
        .map(|q| {
            let streamed = passes.streamed(&form.insts, q);
            let mut read = std::collections::BTreeSet::new();
            for (inst, _) in form.insts.iter().zip(&streamed).filter(|(_, s)| **s) {
                for a in &inst.args {
                    if let EwArg::Input(k) = *a
                        && full(k)
                    {
                        read.insert(k);
                    }
                }
            }
            read.into_iter().map(bytes).sum::<u64>()
        })
        .sum();
    once + streamed
}

/// The stage cost of one e-node.
pub fn node_cost(eg: &EGraph, n: &ENode, m: &Machine) -> f64 {
    let types = |children: &[Id]| -> (Vec<TensorType>, Vec<bool>) {
        children
            .iter()
            .map(|&c| (eg[c].data.ty.clone(), eg[c].data.constant.is_some()))
            .unzip()
    };
    match n {
        ENode::Param(_) => 0.0,
        ENode::Op(key, children) => {
            let (tys, consts) = types(children);
            op_cost(&key.op, &tys, &consts, m)
        }
        ENode::Fused(b, children) => {
            let (tys, consts) = types(children);
            group_cost(&eg.analysis.bodies[*b as usize], &tys, &consts, m)
        }
    }
}

/// The model's cycles for the stage computing `nodes` of kernel `k` (a
/// group, or one op), as the extraction costs it.
pub fn stage_cost(k: &Kernel, nodes: &[usize], m: &Machine) -> Option<f64> {
    let (&first, &last) = (nodes.first()?, nodes.last()?);
    if nodes.iter().enumerate().any(|(i, &n)| n != first + i) || last >= k.nodes.len() {
        return None;
    }
    let is_const = |v: Value| match v {
        Value::Node(j) => matches!(k.nodes[j as usize].op, Op::Full { .. }),
        Value::Param(_) => false,
    };
    if nodes.len() == 1 {
        let n = &k.nodes[first];
        let tys: Vec<TensorType> = n.args.iter().map(|&a| k.ty(a).clone()).collect();
        let consts: Vec<bool> = n.args.iter().map(|&a| is_const(a)).collect();
        return Some(op_cost(&n.op, &tys, &consts, m));
    }
    let (body, inputs) = body_of(k, first..last + 1);
    let tys: Vec<TensorType> = inputs.iter().map(|&v| k.ty(v).clone()).collect();
    let consts: Vec<bool> = inputs.iter().map(|&v| is_const(v)).collect();
    Some(group_cost(&body, &tys, &consts, m))
}

/// The cost of what no stage computes: large, finite (sums stay ordered).
pub const UNMAPPED: f64 = 1e30;

/// The chosen node of every class reachable from the roots, and the DAG
/// cost of the roots together.
pub struct Extraction {
    /// The chosen node per class.
    pub best: HashMap<Id, ENode>,
    /// The roots' total cost (each needed class counted once).
    pub cost: f64,
}

impl Extraction {
    /// The selection of `nodes` (class, node as first added; classes may
    /// have merged since), if it is complete and acyclic.
    pub fn of_nodes(
        eg: &EGraph,
        nodes: &[(Id, ENode)],
        roots: &[Id],
        m: &Machine,
    ) -> Option<Extraction> {
        let mut best = HashMap::new();
        for (c, n) in nodes {
            let n = n.clone().map_children(|ch| eg.find(ch));
            best.entry(eg.find(*c)).or_insert(n);
        }
        let own = own_costs(eg, m);
        let cost = dag_cost(eg, roots, &best, &own)?;
        Some(Extraction { best, cost })
    }
}

fn own_costs(eg: &EGraph, m: &Machine) -> HashMap<(Id, usize), f64> {
    eg.classes()
        .flat_map(|c| c.nodes.iter().enumerate().map(move |(i, n)| ((c.id, i), n)))
        .map(|(k, n)| (k, node_cost(eg, n, m)))
        .collect()
}

/// Greedy DAG extraction. Each class keeps the set of classes its choice
/// needs (a bitset over the classes) and its total: the own costs of the
/// chosen nodes of that set.
pub fn extract(eg: &EGraph, roots: &[Id], m: &Machine) -> Result<Extraction, String> {
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    let index: HashMap<Id, usize> = classes.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let words = classes.len().div_ceil(64);
    // Per class (by index): total cost and the classes it needs.
    let mut costs: Vec<Option<(f64, Rc<Vec<u64>>)>> = vec![None; classes.len()];
    // The own cost of each class's chosen node.
    let mut chosen = vec![0.0f64; classes.len()];
    let mut best: HashMap<Id, ENode> = HashMap::new();
    let own = own_costs(eg, m);
    let better = |total: f64, cur: Option<&(f64, Rc<Vec<u64>>)>| match cur {
        Some((c, _)) => total < *c * (1.0 - 1e-12) - 1e-9,
        None => true,
    };
    for _pass in 0..10_000 {
        let mut changed = false;
        for (ci, &c) in classes.iter().enumerate() {
            for (i, n) in eg[c].nodes.iter().enumerate() {
                let mine = own[&(c, i)];
                let kids: Option<Vec<usize>> = n
                    .children()
                    .iter()
                    .map(|ch| index.get(&eg.find(*ch)).copied())
                    .collect();
                let Some(kids) = kids else { continue };
                // A lower bound first: the node's own cost plus its dearest
                // operand; most alternatives stop here, before the union.
                let mut dearest = 0.0f64;
                let mut ready = true;
                for &k in &kids {
                    match &costs[k] {
                        Some((t, _)) => dearest = dearest.max(*t),
                        None => ready = false,
                    }
                }
                if !ready || !better(mine + dearest, costs[ci].as_ref()) {
                    continue;
                }
                let mut need = vec![0u64; words];
                for &k in &kids {
                    if let Some((_, set)) = &costs[k] {
                        for (w, x) in need.iter_mut().zip(set.iter()) {
                            *w |= x;
                        }
                    }
                }
                if need[ci / 64] & (1 << (ci % 64)) != 0 {
                    continue; // the choice would need its own class
                }
                let mut total = mine;
                for (w, &bits) in need.iter().enumerate() {
                    let mut b = bits;
                    while b != 0 {
                        let k = w * 64 + b.trailing_zeros() as usize;
                        total += chosen[k];
                        b &= b - 1;
                    }
                }
                if better(total, costs[ci].as_ref()) {
                    need[ci / 64] |= 1 << (ci % 64);
                    costs[ci] = Some((total, Rc::new(need)));
                    chosen[ci] = mine;
                    best.insert(c, n.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            let mut ex = Extraction { best, cost: 0.0 };
            ex.cost = dag_cost(eg, roots, &ex.best, &own)
                .ok_or("extraction found no acyclic term for a result")?;
            improve(eg, roots, &mut ex, &own);
            return Ok(ex);
        }
    }
    Err("extraction did not reach a fixed point".into())
}

/// The classes the selection reaches from the roots.
fn used(eg: &EGraph, roots: &[Id], best: &HashMap<Id, ENode>) -> Vec<Id> {
    let mut seen: std::collections::HashSet<Id> = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.iter().map(|&r| eg.find(r)).collect();
    let mut out = Vec::new();
    while let Some(c) = stack.pop() {
        if !seen.insert(c) {
            continue;
        }
        out.push(c);
        if let Some(n) = best.get(&c) {
            stack.extend(n.children().iter().map(|&ch| eg.find(ch)));
        }
    }
    out
}

/// The cost of a whole selection: each class reachable from the roots
/// counted once; `None` when it is cyclic or incomplete.
fn dag_cost(
    eg: &EGraph,
    roots: &[Id],
    best: &HashMap<Id, ENode>,
    own: &HashMap<(Id, usize), f64>,
) -> Option<f64> {
    // 0 = unvisited, 1 = on the path, 2 = done.
    let mut state: HashMap<Id, u8> = HashMap::new();
    let mut total = 0.0;
    let mut stack: Vec<(Id, bool)> = roots.iter().map(|&r| (eg.find(r), false)).collect();
    while let Some((c, done)) = stack.pop() {
        if done {
            state.insert(c, 2);
            continue;
        }
        match state.get(&c) {
            Some(2) => continue,
            Some(1) => return None,
            _ => {}
        }
        state.insert(c, 1);
        stack.push((c, true));
        let n = best.get(&c)?;
        let i = eg[c].nodes.iter().position(|m| m == n)?;
        total += own[&(c, i)];
        for &ch in n.children() {
            let ch = eg.find(ch);
            match state.get(&ch) {
                Some(2) => {}
                Some(1) => return None,
                _ => stack.push((ch, false)),
            }
        }
    }
    Some(total)
}

/// Class visits the local search may spend (each costing of the whole
/// selection visits every class it uses): the search is quadratic in the
/// kernel's size, so a large kernel keeps the greedy choice for the rest
/// (deterministically: the same classes are tried in the same order).
const IMPROVE_BUDGET: usize = 2_000_000;

/// Local search after the greedy pass, which chooses each class alone and
/// so can pay twice for a value two groups share: try every other node of
/// every class the selection uses, keep a change that lowers the whole
/// selection's cost, until none does (a few passes at most, within
/// [`IMPROVE_BUDGET`]).
fn improve(eg: &EGraph, roots: &[Id], ex: &mut Extraction, own: &HashMap<(Id, usize), f64>) {
    let mut budget = IMPROVE_BUDGET;
    for _pass in 0..4 {
        let mut classes = used(eg, roots, &ex.best);
        classes.sort();
        let mut improved = false;
        for &c in &classes {
            for n in &eg[c].nodes {
                if budget == 0 {
                    return;
                }
                if ex.best.get(&c) == Some(n) {
                    continue;
                }
                if n.children()
                    .iter()
                    .any(|ch| !ex.best.contains_key(&eg.find(*ch)))
                {
                    continue;
                }
                budget = budget.saturating_sub(classes.len());
                let old = ex.best.insert(c, n.clone());
                match dag_cost(eg, roots, &ex.best, own) {
                    Some(cost) if cost < ex.cost * (1.0 - 1e-9) => {
                        ex.cost = cost;
                        improved = true;
                    }
                    _ => {
                        if let Some(o) = old {
                            ex.best.insert(c, o);
                        }
                    }
                }
            }
        }
        if !improved {
            break;
        }
    }
}
