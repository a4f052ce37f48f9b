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
use super::group::{GroupKind, body_of, classify, rows_form};
use super::lang::Body;
use super::lang::{Arg, ENode};
use crate::cost::{Work, node_work};
use egg::{Id, Language};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use tessera_ir::plan::RowsOp;
use tessera_ir::plan::rows::ROW_ALIGN;
use tessera_ir::{Kernel, Op, TensorType, Value};
use tessera_sim::Machine;

/// Cycles of one stage with this work and GM traffic.
pub fn stage_cycles(m: &Machine, work: &Work, gm_bytes: u64) -> f64 {
    m.roofline(&work.macs, work.vector, gm_bytes)
}

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
            let work = node_work(op, &tys, &result, m);
            stage_cycles(m, &work, read + crate::cost::bytes(&result))
        }
    }
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
            work.add(&node_work(&key.op, &refs, ty, m));
        }
    }
    if !widen && let Some(form) = rows_form(body, inputs, consts, &tys) {
        // A row stage pads each row to whole repeats, and folds and expands
        // row by row: instructions whose fixed cost matters for short rows.
        let pitch = form.n.div_ceil(ROW_ALIGN) * ROW_ALIGN;
        work.vector *= pitch as f64 / form.n as f64;
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
    }
    let gm = inputs
        .iter()
        .zip(consts)
        .map(|(t, &c)| read_bytes(t, c))
        .sum::<u64>()
        + crate::cost::bytes(result);
    stage_cycles(m, &work, gm)
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

/// Greedy DAG extraction.
pub fn extract(eg: &EGraph, roots: &[Id], m: &Machine) -> Result<Extraction, String> {
    let mut classes: Vec<Id> = eg.classes().map(|c| c.id).collect();
    classes.sort();
    // Per class: total cost, and the classes it needs with their own costs.
    let mut costs: HashMap<Id, (f64, Rc<BTreeMap<Id, f64>>)> = HashMap::new();
    let mut best: HashMap<Id, ENode> = HashMap::new();
    let own = own_costs(eg, m);
    for _pass in 0..10_000 {
        let mut changed = false;
        for &c in &classes {
            for (i, n) in eg[c].nodes.iter().enumerate() {
                let mut need: BTreeMap<Id, f64> = BTreeMap::new();
                let mut ready = true;
                for ch in n.children() {
                    let ch = eg.find(*ch);
                    match costs.get(&ch) {
                        Some((_, set)) => need.extend(set.iter().map(|(&k, &v)| (k, v))),
                        None => {
                            ready = false;
                            break;
                        }
                    }
                }
                if !ready || need.contains_key(&c) {
                    continue;
                }
                let mine = own[&(c, i)];
                let total = mine + need.values().sum::<f64>();
                let better = match costs.get(&c) {
                    Some((cur, _)) => total < *cur * (1.0 - 1e-12) - 1e-9,
                    None => true,
                };
                if better {
                    need.insert(c, mine);
                    costs.insert(c, (total, Rc::new(need)));
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

/// Local search after the greedy pass, which chooses each class alone and
/// so can pay twice for a value two groups share: try every other node of
/// every chosen class, keep a change that lowers the whole selection's
/// cost, until none does (a few passes at most).
fn improve(eg: &EGraph, roots: &[Id], ex: &mut Extraction, own: &HashMap<(Id, usize), f64>) {
    let mut classes: Vec<Id> = ex.best.keys().copied().collect();
    classes.sort();
    for _pass in 0..4 {
        let mut improved = false;
        for &c in &classes {
            for n in &eg[c].nodes {
                if ex.best.get(&c) == Some(n) {
                    continue;
                }
                if n.children()
                    .iter()
                    .any(|ch| !ex.best.contains_key(&eg.find(*ch)))
                {
                    continue;
                }
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
