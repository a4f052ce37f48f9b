//! `canon/*`: shrinking rules. Constants fold to `full`; reshapes,
//! broadcasts, transposes and casts that change nothing disappear, and
//! chains of them collapse to one.

use super::{Phase, Rule, node_rule};
use crate::opt::analysis::EGraph;
use crate::opt::lang::ENode;
use egg::{Id, Language};
use tessera_ir::{DType, Op};

/// The canonicalisation rules.
pub fn rules() -> Vec<Rule> {
    vec![
        node_rule(Phase::Canon, "canon/fold", folds, fold),
        node_rule(Phase::Canon, "canon/reshape-noop", is_reshape, noop),
        node_rule(
            Phase::Canon,
            "canon/reshape-reshape",
            is_reshape,
            reshape_reshape,
        ),
        node_rule(Phase::Canon, "canon/broadcast-noop", is_broadcast, noop),
        node_rule(
            Phase::Canon,
            "canon/broadcast-broadcast",
            is_broadcast,
            broadcast_broadcast,
        ),
        node_rule(
            Phase::Canon,
            "canon/transpose-identity",
            is_transpose,
            transpose_identity,
        ),
        node_rule(
            Phase::Canon,
            "canon/transpose-transpose",
            is_transpose,
            transpose_transpose,
        ),
        node_rule(Phase::Canon, "canon/cast-noop", is_cast, noop),
        node_rule(
            Phase::Canon,
            "canon/cast-roundtrip",
            is_cast,
            cast_roundtrip,
        ),
    ]
}

fn op_of(n: &ENode) -> Option<&Op> {
    n.ir_op()
}

/// The op nodes of `class` (cloned: the caller goes on to add nodes).
fn op_nodes(eg: &EGraph, class: Id) -> Vec<(Op, Vec<Id>)> {
    eg[class]
        .nodes
        .iter()
        .filter_map(|n| match n {
            ENode::Op(k, c) => Some((k.op.clone(), c.clone())),
            ENode::Param(_) | ENode::Fused(..) => None,
        })
        .collect()
}

fn folds(n: &ENode) -> bool {
    op_of(n).is_some_and(|op| !matches!(op, Op::Full { .. }))
}

/// `op(consts…)` ⇒ `full(value)`: a class whose value the analysis knows
/// is a constant (an elementwise op of constants, or a layout op of one).
fn fold(eg: &mut EGraph, class: Id, _: &ENode) -> Vec<Id> {
    let data = &eg[class].data;
    let Some(value) = data.constant else {
        return Vec::new();
    };
    let ty = data.ty.clone();
    vec![eg.add(ENode::op(Op::Full { value, ty }, Vec::new()))]
}

fn is_reshape(n: &ENode) -> bool {
    matches!(op_of(n), Some(Op::Reshape(_)))
}

/// `reshape(x)`, `broadcast_to(x)`, `cast(x)` ⇒ `x` when `x` already has
/// the result's type.
fn noop(eg: &mut EGraph, class: Id, n: &ENode) -> Vec<Id> {
    let c = n.children()[0];
    if eg[c].data.ty == eg[class].data.ty {
        vec![c]
    } else {
        Vec::new()
    }
}

/// `f(f(x, a), b)` ⇒ `f(x, b)` for an op `f` of one operand whose second
/// application alone decides the result (`same` tells the op's kind).
fn collapse(eg: &mut EGraph, n: &ENode, same: fn(&Op) -> bool) -> Vec<Id> {
    let Some(outer) = op_of(n).cloned() else {
        return Vec::new();
    };
    let inner = op_nodes(eg, n.children()[0]);
    inner
        .into_iter()
        .filter(|(op, _)| same(op))
        .map(|(_, c)| eg.add(ENode::op(outer.clone(), c)))
        .collect()
}

/// `reshape(reshape(x))` ⇒ `reshape(x)` (row-major reshapes compose).
fn reshape_reshape(eg: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    collapse(eg, n, |op| matches!(op, Op::Reshape(_)))
}

fn is_broadcast(n: &ENode) -> bool {
    matches!(op_of(n), Some(Op::BroadcastTo(_)))
}

/// `broadcast_to(broadcast_to(x, s), t)` ⇒ `broadcast_to(x, t)`.
fn broadcast_broadcast(eg: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    collapse(eg, n, |op| matches!(op, Op::BroadcastTo(_)))
}

fn is_transpose(n: &ENode) -> bool {
    matches!(op_of(n), Some(Op::Transpose(_)))
}

fn is_identity(perm: &[usize]) -> bool {
    perm.iter().enumerate().all(|(i, &p)| i == p)
}

/// `transpose(x, [0, 1, …])` ⇒ `x`.
fn transpose_identity(_: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    match op_of(n) {
        Some(Op::Transpose(p)) if is_identity(p) => vec![n.children()[0]],
        _ => Vec::new(),
    }
}

/// `transpose(transpose(x, q), p)` ⇒ `transpose(x, q∘p)` (or `x` when the
/// composition is the identity): output dim `i` is `x`'s dim `q[p[i]]`.
fn transpose_transpose(eg: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    let Some(Op::Transpose(p)) = op_of(n).cloned() else {
        return Vec::new();
    };
    let inner = op_nodes(eg, n.children()[0]);
    let mut out = Vec::new();
    for (op, c) in inner {
        let Op::Transpose(q) = op else { continue };
        let composed: Vec<usize> = p.iter().map(|&i| q[i]).collect();
        out.push(if is_identity(&composed) {
            c[0]
        } else {
            eg.add(ENode::op(Op::Transpose(composed), c))
        });
    }
    out
}

fn is_cast(n: &ENode) -> bool {
    matches!(op_of(n), Some(Op::Cast(_)))
}

/// Whether every `from` value is exactly a `to` value (so a cast there and
/// back is the identity).
pub fn widens_exactly(from: DType, to: DType) -> bool {
    use DType::*;
    matches!(
        (from, to),
        (F16 | BF16, F32) | (I8, I32 | F16 | BF16 | F32) | (Bool, I8 | I32 | F16 | BF16 | F32)
    )
}

/// `cast(cast(x, W), T)` ⇒ `x` when `x` is a `T` and `W` holds every `T`
/// value exactly.
fn cast_roundtrip(eg: &mut EGraph, class: Id, n: &ENode) -> Vec<Id> {
    let want = eg[class].data.ty.clone();
    let inner = op_nodes(eg, n.children()[0]);
    inner
        .into_iter()
        .filter_map(|(op, c)| {
            if let Op::Cast(w) = op
                && eg[c[0]].data.ty == want
                && widens_exactly(want.dtype, w)
            {
                Some(c[0])
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::widens_exactly;
    use tessera_ir::{DType, Kernel, Op, Output, Shape, Tensor, TensorType};

    /// Every value of a dtype (all bit patterns of the 16-bit floats).
    fn every_value(d: DType) -> Vec<f64> {
        match d {
            DType::F16 => (0..=u16::MAX)
                .map(|b| f64::from(half::f16::from_bits(b)))
                .collect(),
            DType::BF16 => (0..=u16::MAX)
                .map(|b| f64::from(half::bf16::from_bits(b)))
                .collect(),
            DType::I8 => (-128..=127).map(f64::from).collect(),
            DType::Bool => vec![0.0, 1.0],
            DType::F32 | DType::I32 => Vec::new(),
        }
    }

    #[test]
    fn every_claimed_widening_round_trips_every_value() {
        let all = [
            DType::F32,
            DType::F16,
            DType::BF16,
            DType::I32,
            DType::I8,
            DType::Bool,
        ];
        for from in all {
            for to in all {
                if !widens_exactly(from, to) {
                    continue;
                }
                let values = every_value(from);
                assert!(!values.is_empty(), "{from} -> {to}: no values to try");
                let n = values.len() as u64;
                let mut k = Kernel::new("roundtrip");
                let x = k.add_param("x", TensorType::new(from, Shape::fixed(&[n])));
                let w = k.push(Op::Cast(to), vec![x], None).expect("casts");
                let back = k.push(Op::Cast(from), vec![w], None).expect("casts");
                k.outputs.push(Output {
                    name: "out0".into(),
                    value: back,
                });
                let input = Tensor::from_f64(from, vec![values.len()], values.clone());
                let out = tessera_ir::interp::run(&k, std::slice::from_ref(&input)).expect("runs");
                for (i, v) in values.iter().enumerate() {
                    let got = out[0].get_f64(i);
                    assert!(
                        got.to_bits() == v.to_bits() || (got.is_nan() && v.is_nan()),
                        "{from} -> {to} -> {from} changes {v} to {got}"
                    );
                }
            }
        }
    }
}
