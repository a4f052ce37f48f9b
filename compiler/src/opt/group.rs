//! What a fused group computes, as one stage: the kinds of group the
//! planner can schedule, decided in one place for the fusion rules (which
//! only build groups of a kind) and the planner (which turns each into its
//! stage).

use super::analysis::is_elementwise;
use super::lang::{Arg, Body, OpKey};
use tessera_ir::plan::EwOp;
use tessera_ir::plan::elementwise::scratch;
use tessera_ir::{BinaryOp, DType, Kernel, Op, TensorType, UnaryOp, Value};

/// A kind of fused group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupKind {
    /// Elementwise ops (broadcasting their operands) over the result's
    /// shape: one elementwise stage with a multi-instruction body.
    Elementwise,
    /// `matmul(in0, in1)`, then optionally `relu`, then optionally a cast
    /// of the f32 accumulator to f16/bf16: one matmul stage whose
    /// epilogue applies them on the way out of the accumulator.
    MatMulEpilogue {
        /// `relu` applied.
        relu: bool,
        /// The output dtype.
        out: DType,
    },
}

/// The kind of `body` with node types `tys`, if one stage can compute it.
pub fn classify(body: &Body, tys: &[TensorType]) -> Option<GroupKind> {
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
    let mut relu = false;
    let mut out = tys.first()?.dtype;
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
    next.is_none()
        .then_some(GroupKind::MatMulEpilogue { relu, out })
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
