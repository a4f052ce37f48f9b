//! `layout/*`: transposes pushed through elementwise ops, so that a chain
//! of elementwise ops runs on row-major data and one transpose remains —
//! which the planner reads as a view (a matmul operand, another transpose)
//! or materialises once.

use super::{Phase, Rule, node_rule};
use crate::opt::analysis::{EGraph, is_elementwise};
use crate::opt::lang::ENode;
use egg::{Id, Language};
use tessera_ir::Op;

/// The layout rules.
pub fn rules() -> Vec<Rule> {
    vec![node_rule(
        Phase::Layout,
        "layout/transpose-out",
        is_elementwise_node,
        transpose_out,
    )]
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
