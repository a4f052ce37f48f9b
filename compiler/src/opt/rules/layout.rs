//! `layout/*`: where data sits and which cores hold it.
//!
//! - `layout/transpose-out`: transposes pushed through elementwise ops, so
//!   that a chain of elementwise ops runs on row-major data and one
//!   transpose remains — which the planner reads as a view (a matmul
//!   operand, another transpose) or materialises once.
//! - `layout/split-reduction`: a long reduction over fewer tiles than the
//!   machine has vector cores (a whole tensor's sum, a column sum) split in
//!   two, its parts over all the cores and then their partials.

use super::{Budget, Phase, Rule, node_rule};
use crate::opt::analysis::{EGraph, is_elementwise};
use crate::opt::extract::reduce_tiles;
use crate::opt::lang::ENode;
use egg::{Id, Language};
use tessera_ir::{DType, Op, ReduceOp, Shape};

/// The layout rules.
pub fn rules(budget: Budget) -> Vec<Rule> {
    let (cores, launch_bytes) = (budget.vector_cores, budget.launch_bytes);
    vec![
        node_rule(
            Phase::Layout,
            "layout/transpose-out",
            is_elementwise_node,
            transpose_out,
        ),
        node_rule(
            Phase::Layout,
            "layout/split-reduction",
            is_reduce_node,
            move |eg: &mut EGraph, class: Id, n: &ENode| {
                split_reduction(eg, class, n, cores, launch_bytes)
            },
        ),
    ]
}

fn is_elementwise_node(n: &ENode) -> bool {
    n.ir_op().is_some_and(is_elementwise)
}

/// The permutations `p` for which `class` holds `transpose(y, p)`, with `y`.
fn transposes_in(eg: &EGraph, class: Id) -> Vec<(Vec<usize>, Id)> {
    eg[class]
        .nodes
        .iter()
        .filter_map(|n| match n.ir_op() {
            Some(Op::Transpose(p)) => Some((p.clone(), n.children()[0])),
            _ => None,
        })
        .collect()
}

/// `f(transpose(x₁, p), …, transpose(xₙ, p))` ⇒ `transpose(f(x₁, …, xₙ), p)`
/// for an elementwise `f` whose operands all have its result's shape and
/// are all transposed by the same `p`.
fn transpose_out(eg: &mut EGraph, class: Id, n: &ENode) -> Vec<Id> {
    let Some(op) = n.ir_op().cloned() else {
        return Vec::new();
    };
    let shape = eg[class].data.ty.shape.clone();
    let children = n.children().to_vec();
    if children.iter().any(|&c| eg[c].data.ty.shape != shape) {
        return Vec::new();
    }
    let Some(first) = children.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (perm, _) in transposes_in(eg, *first) {
        let inner: Option<Vec<Id>> = children
            .iter()
            .map(|&c| {
                transposes_in(eg, c)
                    .into_iter()
                    .find(|(p, _)| *p == perm)
                    .map(|(_, y)| y)
            })
            .collect();
        let Some(inner) = inner else { continue };
        let f = eg.add(ENode::op(op.clone(), inner));
        out.push(eg.add(ENode::op(Op::Transpose(perm), vec![f])));
    }
    out
}

fn is_reduce_node(n: &ENode) -> bool {
    matches!(n.ir_op(), Some(Op::Reduce { .. }))
}

/// The fewest elements in a part of a split reduction: shorter parts do not
/// pay for the second launch that combines them.
pub const MIN_PART: u64 = 1024;

/// `reduce(x, axes)` over a contiguous run of `L` elements, `outer` before
/// and `inner` after it, in fewer tiles than `cores` ⇒ the run in `P`
/// parts, each its own tile, then the partials:
/// `reshape(reduce(reshape(reduce(reshape(x, [outer·P, L/P, inner]), [1]),
/// [outer, P, inner]), [1]), result)` (no `inner` when it is 1: the row
/// form, which a row stage fuses with a cast), with `P` the divisor of `L` whose
/// tiles spread best over the cores (parts of at least [`MIN_PART`]
/// elements: `L/P · inner`), when it spares a core more loading than a
/// launch takes. The cost model then weighs the whole.
///
/// A sum or mean of f16, bf16 or i8 keeps its partials in its accumulator's
/// dtype, as the spec accumulates (f32; i32, wrapping): the parts are cast
/// first and the result cast back (i32 to i8 saturating, as the reference ends an
/// i8 sum). A mean is the mean of its equal parts' means. Maxima and minima
/// are exact in any order.
fn split_reduction(
    eg: &mut EGraph,
    class: Id,
    n: &ENode,
    cores: u64,
    launch_bytes: u64,
) -> Vec<Id> {
    let (Some(Op::Reduce { op, axes }), [x]) = (n.ir_op(), n.children()) else {
        return Vec::new();
    };
    let (op, x) = (*op, *x);
    let ty = eg[x].data.ty.clone();
    let (Some(dims), Some(&first), Some(&last)) =
        (ty.shape.as_fixed(), axes.iter().min(), axes.iter().max())
    else {
        return Vec::new();
    };
    let acc = match (op, ty.dtype) {
        (_, DType::Bool) | (ReduceOp::Mean, DType::I32 | DType::I8) => return Vec::new(),
        (ReduceOp::Sum | ReduceOp::Mean, DType::F16 | DType::BF16) => DType::F32,
        (ReduceOp::Sum, DType::I8) => DType::I32,
        (_, d) => d,
    };
    if last - first + 1 != axes.len() || last >= dims.len() {
        return Vec::new();
    }
    let outer: u64 = dims[..first].iter().product();
    let len: u64 = dims[first..=last].iter().product();
    let inner: u64 = dims[last + 1..].iter().product();
    let Some(tiles) = reduce_tiles(axes, &ty) else {
        return Vec::new();
    };
    if tiles >= cores {
        return Vec::new();
    }
    // The parts: of the divisors of L that leave parts of at least
    // MIN_PART elements, the one whose waves of tiles take the fewest
    // elements a core (a part and MIN_PART of overhead a tile), the fewest
    // parts among equals.
    let per_core = |p: u64| (tiles * p).div_ceil(cores) * (len / p * inner + MIN_PART);
    let Some(parts) = crate::arith::divisors(len)
        .into_iter()
        .filter(|&p| p >= 2 && len / p * inner >= MIN_PART)
        .min_by_key(|&p| (per_core(p), p))
    else {
        return Vec::new();
    };
    // Worth a launch: a core loads less by more than a launch's time. (So
    // the partials' reduction, short, is not split again.)
    let saved = per_core(1).saturating_sub(per_core(parts)) * ty.dtype.size_bytes() as u64;
    if saved < launch_bytes {
        return Vec::new();
    }
    let result = eg[class].data.ty.shape.clone();
    let reshape = |eg: &mut EGraph, v: Id, d: &[u64]| {
        eg.add(ENode::op(Op::Reshape(Shape::fixed(d)), vec![v]))
    };
    let reduce =
        |eg: &mut EGraph, v: Id| eg.add(ENode::op(Op::Reduce { op, axes: vec![1] }, vec![v]));
    // Without a trailing 1 where nothing follows the run: a reduction over
    // the last axis, which a row stage computes with its prologue (a cast).
    let dims = |lead: u64, run: u64| -> Vec<u64> {
        if inner == 1 {
            vec![lead, run]
        } else {
            vec![lead, run, inner]
        }
    };
    let a = reshape(eg, x, &dims(outer * parts, len / parts));
    // Cast after the reshape: the row stage's prologue.
    let a = if acc == ty.dtype {
        a
    } else {
        eg.add(ENode::op(Op::Cast(acc), vec![a]))
    };
    let partials = reduce(eg, a);
    let b = reshape(eg, partials, &dims(outer, parts));
    let whole = reduce(eg, b);
    let whole = if acc == ty.dtype {
        whole
    } else {
        eg.add(ENode::op(Op::Cast(ty.dtype), vec![whole]))
    };
    vec![eg.add(ENode::op(Op::Reshape(result), vec![whole]))]
}
