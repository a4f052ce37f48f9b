//! What a fused group computes, as one stage: the kinds of group the
//! planner can schedule, decided in one place for the fusion rules (which
//! only build groups of a kind) and the planner (which turns each into its
//! stage).

use super::analysis::is_elementwise;
use super::lang::{Arg, Body, OpKey};
use tessera_ir::plan::elementwise::scratch;
use tessera_ir::plan::rows::temp_slots;
use tessera_ir::plan::{EwArg, EwOp, RowsInst, RowsOp, Width};
use tessera_ir::{BinaryOp, DType, Kernel, Op, TensorType, UnaryOp, Value};

/// A kind of fused group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// Elementwise ops (broadcasting their operands) over the result's
    /// shape: one elementwise stage with a multi-instruction body.
    Elementwise,
    /// Row reductions with their elementwise prologue and epilogue over
    /// whole rows: one row stage ([`rows_form`]).
    Rows,
    /// `matmul(in0, in1)`, then optionally `relu`, then optionally a cast
    /// of the f32 accumulator to f16/bf16: one matmul stage whose
    /// epilogue applies them on the way out of the accumulator. Or
    /// `matmul(in0, in1)` of an f32 result times a constant (`in2`, either
    /// operand of the `mul`), which only a coupled machine's epilogue
    /// applies (the fusion budget's `coupled`; the planner's too).
    MatMulEpilogue {
        /// `relu` applied.
        relu: bool,
        /// The f32 product scaled by the constant input 2.
        scale: bool,
        /// The output dtype.
        out: DType,
    },
}

/// The kind of `body` with inputs of types `inputs` (constants marked in
/// `consts`) and node types `tys`, if one stage can compute it.
pub fn classify(
    body: &Body,
    inputs: &[TensorType],
    consts: &[bool],
    tys: &[TensorType],
) -> Option<GroupKind> {
    if rows_form(body, inputs, consts, tys).is_some() {
        return Some(GroupKind::Rows);
    }
    let nodes = &body.nodes;
    if nodes.iter().all(|(op, _)| is_elementwise(&op.op)) {
        // A stage computes whole tiles, padding included, and only its
        // inputs' padding is set (an integer divisor's to 1): an integer
        // division must divide by an input, not by a value computed in the
        // group, whose padding lanes could hold zero.
        let computed_int_divisor = nodes.iter().zip(tys).any(|((op, args), ty)| {
            op.op == Op::Binary(BinaryOp::Div)
                && ty.dtype.is_int()
                && matches!(args.get(1), Some(Arg::At(_)))
        });
        return (!computed_int_divisor).then_some(GroupKind::Elementwise);
    }
    let (first, rest) = nodes.split_first()?;
    if first.0.op != Op::MatMul || first.1 != [Arg::In(0), Arg::In(1)] {
        return None;
    }
    let mut out = tys.first()?.dtype;
    if let [(op, args)] = rest
        && op.op == Op::Binary(BinaryOp::Mul)
        && out == DType::F32
        && (args == &[Arg::At(0), Arg::In(2)] || args == &[Arg::In(2), Arg::At(0)])
        && consts.get(2) == Some(&true)
        && inputs.get(2).is_some_and(|t| t.dtype == DType::F32)
    {
        return Some(GroupKind::MatMulEpilogue {
            relu: false,
            scale: true,
            out,
        });
    }
    let mut relu = false;
    let mut prev = 0u32;
    let mut rest = rest.iter().enumerate();
    let mut next = rest.next();
    if let Some((i, (op, args))) = next
        && op.op == Op::Unary(UnaryOp::Relu)
        && args == &[Arg::At(prev)]
    {
        relu = true;
        prev = i as u32 + 1;
        next = rest.next();
    }
    if let Some((i, (op, args))) = next
        && let Op::Cast(to) = op.op
        && args == &[Arg::At(prev)]
        && out == DType::F32
        && matches!(to, DType::F16 | DType::BF16)
    {
        out = to;
        let _ = i;
        next = rest.next();
    }
    next.is_none().then_some(GroupKind::MatMulEpilogue {
        relu,
        scale: false,
        out,
    })
}

/// The body of the group of nodes `nodes` (a contiguous run) of `k`, with
/// its inputs (the values it reads from outside, in order of first use).
pub fn body_of(k: &Kernel, nodes: std::ops::Range<usize>) -> (Body, Vec<Value>) {
    let mut inputs: Vec<Value> = Vec::new();
    let mut body = Body { nodes: Vec::new() };
    for i in nodes.clone() {
        let n = &k.nodes[i];
        let args = n
            .args
            .iter()
            .map(|&a| match a {
                Value::Node(j) if nodes.contains(&(j as usize)) => {
                    Arg::At((j as usize - nodes.start) as u32)
                }
                v => {
                    let at = inputs.iter().position(|&x| x == v).unwrap_or_else(|| {
                        inputs.push(v);
                        inputs.len() - 1
                    });
                    Arg::In(at as u32)
                }
            })
            .collect();
        body.nodes.push((OpKey::new(n.op.clone()), args));
    }
    (body, inputs)
}

/// The elementwise instruction of an elementwise IR op.
pub fn ew_op(op: &Op) -> Option<EwOp> {
    match op {
        Op::Unary(u) => Some(EwOp::Unary(*u)),
        Op::Binary(b) => Some(EwOp::Binary(*b)),
        Op::Compare(c) => Some(EwOp::Compare(*c)),
        Op::Select => Some(EwOp::Select),
        Op::Cast(d) => Some(EwOp::Cast(*d)),
        Op::Full { .. }
        | Op::Reduce { .. }
        | Op::MatMul
        | Op::Reshape(_)
        | Op::Transpose(_)
        | Op::BroadcastTo(_)
        | Op::Concat { .. }
        | Op::Slice { .. } => None,
    }
}

/// UB bytes per element of an elementwise group's tile: double-buffered
/// inputs and output, one temporary per instruction but the last, and the
/// f32 scratch tiles its composites need (as the scheduler lays them out).
pub fn ub_bytes_per_element(body: &Body, inputs: &[TensorType], tys: &[TensorType]) -> u64 {
    let ins: u64 = inputs.iter().map(|t| 2 * t.dtype.size_bytes() as u64).sum();
    let temps: u64 = tys
        .iter()
        .take(tys.len().saturating_sub(1))
        .map(|t| t.dtype.size_bytes() as u64)
        .sum();
    let out = tys.last().map_or(0, |t| 2 * t.dtype.size_bytes() as u64);
    let scratch_tiles = body
        .nodes
        .iter()
        .zip(tys)
        .filter_map(|((op, _), t)| ew_op(&op.op).map(|e| scratch(&e, t.dtype).tiles))
        .max()
        .unwrap_or(0) as u64;
    ins + temps + out + 4 * scratch_tiles
}

/// A group as a row stage's body: the row space (`lead` dims flattened to
/// rows, `n` elements a row), each input's width, and the instructions,
/// with expansions inserted where a full op reads a per-row value.
#[derive(Clone, Debug, PartialEq)]
pub struct RowsForm {
    /// The kept leading dims (rows = their product).
    pub lead: Vec<u64>,
    /// Elements of a row.
    pub n: u64,
    /// Per input of the body: its width.
    pub inputs: Vec<Width>,
    /// The instructions; the last is the group's result.
    pub insts: Vec<RowsInst>,
}

fn is_int_div(op: &Op, dtype: DType) -> bool {
    *op == Op::Binary(BinaryOp::Div) && dtype.is_int()
}

/// `body` (node types `tys`, inputs of types `inputs`, of which those
/// marked in `consts` are constants) as a row stage, if it is one: at
/// least one reduction, every reduction over the last axis of the same
/// `[lead.., n]` space, every value either full (`[lead.., n]`) or per row
/// (`[lead..]` or `[lead.., 1]`), full inputs row-major or one row
/// repeated, per-row inputs contiguous (or constants), no integer
/// division, and expansions only of 2- or 4-byte values.
pub fn rows_form(
    body: &Body,
    inputs: &[TensorType],
    consts: &[bool],
    tys: &[TensorType],
) -> Option<RowsForm> {
    let dims = |t: &TensorType| t.shape.as_fixed();
    // The row space, from the reductions.
    let mut space: Option<(Vec<u64>, u64)> = None;
    for ((op, args), _) in body.nodes.iter().zip(tys) {
        let Op::Reduce { axes, .. } = &op.op else {
            continue;
        };
        let arg = match args.first()? {
            Arg::In(i) => inputs.get(*i as usize)?,
            Arg::At(i) => tys.get(*i as usize)?,
        };
        let shape = dims(arg)?;
        let (&n, lead) = shape.split_last()?;
        if *axes != [shape.len() - 1] || n < 2 {
            return None;
        }
        match &space {
            None => space = Some((lead.to_vec(), n)),
            Some((l, m)) if l == lead && *m == n => {}
            Some(_) => return None,
        }
    }
    let (lead, n) = space?;
    let mut full = lead.clone();
    full.push(n);
    let mut row1 = lead.clone();
    row1.push(1);
    let width_of_shape = |s: &[u64]| -> Option<Width> {
        if s == full.as_slice() {
            Some(Width::Full)
        } else if s == lead.as_slice() || s == row1.as_slice() {
            Some(Width::Row)
        } else {
            None
        }
    };
    // Inputs: full when their last dim is the row's (row-major or one row
    // repeated), else per row (contiguous, or a constant of any shape).
    let mut in_widths = Vec::with_capacity(inputs.len());
    for (t, &c) in inputs.iter().zip(consts) {
        let s = dims(t)?;
        let w = if c {
            if s.last() == Some(&n) && s.len() > lead.len() {
                Width::Full
            } else {
                Width::Row
            }
        } else if s.last() == Some(&n)
            && s.len() <= full.len()
            && s.iter()
                .rev()
                .zip(full.iter().rev())
                .all(|(&d, &f)| d == f || d == 1)
        {
            // Row-major, one row repeated, or rows broadcast over leading
            // dims (a mask over heads: rows that repeat with a period).
            Width::Full
        } else {
            width_of_shape(&s).filter(|w| *w == Width::Row)?
        };
        if t.dtype.size_bytes() == 8 {
            return None;
        }
        in_widths.push(w);
    }
    // The instructions: aliases for reshapes between per-row shapes,
    // expansions (once per value) where a full op reads a per-row value.
    let mut insts: Vec<RowsInst> = Vec::new();
    let mut values: Vec<(EwArg, Width)> = Vec::with_capacity(body.nodes.len());
    let mut expanded: Vec<(EwArg, EwArg)> = Vec::new();
    let arg_of = |a: &Arg, values: &[(EwArg, Width)]| -> Option<(EwArg, Width, DType)> {
        match *a {
            Arg::In(i) => Some((
                EwArg::Input(i as usize),
                *in_widths.get(i as usize)?,
                inputs.get(i as usize)?.dtype,
            )),
            Arg::At(i) => {
                let (v, w) = *values.get(i as usize)?;
                Some((v, w, tys.get(i as usize)?.dtype))
            }
        }
    };
    // The rank of an operand: a per-row value broadcasts along the rows only
    // from `[lead.., 1]`; a `[lead..]` one aligns with the trailing dims
    // (numpy's rule), which is no per-row broadcast.
    // (A constant is one value everywhere: any broadcast of it is per row.)
    let rank_of = |a: &Arg| -> Option<usize> {
        let t = match *a {
            Arg::In(i) if consts.get(i as usize) == Some(&true) => return Some(full.len()),
            Arg::In(i) => inputs.get(i as usize)?,
            Arg::At(i) => tys.get(i as usize)?,
        };
        Some(dims(t)?.len())
    };
    for ((op, args), ty) in body.nodes.iter().zip(tys) {
        let shape = dims(ty)?;
        let width = width_of_shape(&shape)?;
        let resolved: Vec<(EwArg, Width, DType)> = args
            .iter()
            .map(|a| arg_of(a, &values))
            .collect::<Option<_>>()?;
        let expands_lower_rank = matches!(
            op.op,
            Op::BroadcastTo(_)
                | Op::Unary(_)
                | Op::Binary(_)
                | Op::Compare(_)
                | Op::Select
                | Op::Cast(_)
        ) && width == Width::Full
            && args
                .iter()
                .zip(&resolved)
                .any(|(a, &(_, w, _))| w == Width::Row && rank_of(a) != Some(full.len()));
        if expands_lower_rank {
            return None;
        }
        let value = match &op.op {
            Op::Reduce { op: r, .. } => {
                let (a, w, _) = resolved.first().copied()?;
                if w != Width::Full || width != Width::Row {
                    return None;
                }
                insts.push(RowsInst {
                    op: RowsOp::Reduce(*r),
                    args: vec![a],
                    dtype: ty.dtype,
                    width: Width::Row,
                });
                (EwArg::Inst(insts.len() - 1), Width::Row)
            }
            Op::Reshape(_) => {
                let (a, w, _) = resolved.first().copied()?;
                if w != width {
                    return None;
                }
                (a, w)
            }
            Op::BroadcastTo(_) => {
                let (a, w, d) = resolved.first().copied()?;
                match (w, width) {
                    (Width::Row, Width::Full) => {
                        (expand(&mut insts, &mut expanded, a, d)?, Width::Full)
                    }
                    (x, y) if x == y => (a, w),
                    _ => return None,
                }
            }
            e @ (Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_)) => {
                if is_int_div(e, ty.dtype) {
                    return None;
                }
                let mut ew_args = Vec::with_capacity(resolved.len());
                for (a, w, d) in resolved {
                    ew_args.push(match (w, width) {
                        (x, y) if x == y => a,
                        (Width::Row, Width::Full) => expand(&mut insts, &mut expanded, a, d)?,
                        _ => return None,
                    });
                }
                insts.push(RowsInst {
                    op: RowsOp::Ew(ew_op(e)?),
                    args: ew_args,
                    dtype: ty.dtype,
                    width,
                });
                (EwArg::Inst(insts.len() - 1), width)
            }
            Op::Full { .. }
            | Op::MatMul
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => {
                return None;
            }
        };
        values.push(value);
    }
    // The result must be the last instruction (a trailing alias copies).
    let (last, w) = *values.last()?;
    if last != EwArg::Inst(insts.len().checked_sub(1)?) {
        let dtype = tys.last()?.dtype;
        insts.push(RowsInst {
            op: RowsOp::Ew(EwOp::Copy),
            args: vec![last],
            dtype,
            width: w,
        });
    }
    Some(RowsForm {
        lead,
        n,
        inputs: in_widths,
        insts,
    })
}

/// The expansion of per-row value `a` (of dtype `d`), added once.
fn expand(
    insts: &mut Vec<RowsInst>,
    expanded: &mut Vec<(EwArg, EwArg)>,
    a: EwArg,
    d: DType,
) -> Option<EwArg> {
    if let Some((_, e)) = expanded.iter().find(|(x, _)| *x == a) {
        return Some(*e);
    }
    if d.size_bytes() < 2 {
        return None;
    }
    insts.push(RowsInst {
        op: RowsOp::Expand,
        args: vec![a],
        dtype: d,
        width: Width::Full,
    });
    let e = EwArg::Inst(insts.len() - 1);
    expanded.push((a, e));
    Some(e)
}

/// UB bytes per element of a row of a row stage's full inputs and result
/// alone, double-buffered: what no body can do with less.
pub fn rows_io_bytes_per_element(form: &RowsForm, inputs: &[TensorType]) -> u64 {
    let full_in: u64 = form
        .inputs
        .iter()
        .zip(inputs)
        .filter(|(w, _)| **w == Width::Full)
        .map(|(_, t)| 2 * t.dtype.size_bytes() as u64)
        .sum();
    let out = form
        .insts
        .last()
        .filter(|i| i.width == Width::Full)
        .map_or(0, |i| 2 * i.dtype.size_bytes() as u64);
    full_in + out
}

/// UB bytes per element of a row of a row stage: double-buffered full
/// inputs and result, the full temporaries' slots (shared by liveness), the f32
/// scratch of its composites and the wide tile of its reductions (per-row
/// buffers are small and left out).
pub fn rows_bytes_per_element(form: &RowsForm, inputs: &[TensorType]) -> u64 {
    let (_, slots) = temp_slots(&form.insts, false, true);
    let temps: u64 = slots
        .iter()
        .filter(|(w, _)| *w == Width::Full)
        .map(|&(_, size)| size as u64)
        .sum();
    let scratch = form
        .insts
        .iter()
        .filter_map(|i| match &i.op {
            RowsOp::Ew(e) => Some(scratch(e, i.dtype).tiles),
            RowsOp::Reduce(_) | RowsOp::Expand => None,
        })
        .max()
        .unwrap_or(0) as u64;
    rows_io_bytes_per_element(form, inputs) + temps + 4 * scratch + 4
}
