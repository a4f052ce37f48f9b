//! `algebra/*`: a bounded set of identities, each exact (bit for bit, as
//! the spec's exactness rules require of the ops it touches). There is no
//! associativity or commutativity: both orders of an identity are written
//! out instead.
//!
//! Not every identity of the reals holds in floating point: `x + 0.0` is
//! not `x` (`-0.0 + 0.0 = +0.0`), so only `x + (-0.0)` and `x - 0.0`
//! simplify; `x / c` becomes `x · (1/c)` only when `1/c` is exact (a power
//! of two whose reciprocal is a normal value of the dtype). The rules that
//! change bits apply only where the spec compares with the accumulation
//! tolerance anyway: `algebra/div-accumulated` (a reduction or matmul
//! upstream of the divisor) and `algebra/matvec-rows` (a matmul's dot
//! products summed in a row reduction's order).

use super::{Phase, Rule, is_const, is_const_bits, node_rule, pattern, same_type};
use crate::opt::analysis::EGraph;
use crate::opt::lang::ENode;
use egg::{Id, Language, rewrite};
use tessera_ir::{BinaryOp, DType, Op, ReduceOp, Scalar, Shape, TensorType, UnaryOp};

/// The algebra rules.
pub fn rules() -> Vec<Rule> {
    let p = |name, rw| pattern(Phase::Algebra, name, rw);
    vec![
        p(
            "algebra/mul-one",
            rewrite!("algebra/mul-one"; "(mul ?x ?c)" => "?x"
                if is_const("?c", 1.0) if same_type("?x")),
        ),
        p(
            "algebra/one-mul",
            rewrite!("algebra/one-mul"; "(mul ?c ?x)" => "?x"
                if is_const("?c", 1.0) if same_type("?x")),
        ),
        p(
            "algebra/div-one",
            rewrite!("algebra/div-one"; "(div ?x ?c)" => "?x"
                if is_const("?c", 1.0) if same_type("?x")),
        ),
        p(
            "algebra/sub-zero",
            rewrite!("algebra/sub-zero"; "(sub ?x ?c)" => "?x"
                if is_const_bits("?c", 0.0) if same_type("?x")),
        ),
        p(
            "algebra/add-neg-zero",
            rewrite!("algebra/add-neg-zero"; "(add ?x ?c)" => "?x"
                if is_const_bits("?c", -0.0) if same_type("?x")),
        ),
        p(
            "algebra/neg-neg",
            rewrite!("algebra/neg-neg"; "(neg (neg ?x))" => "?x"),
        ),
        p(
            "algebra/abs-neg",
            rewrite!("algebra/abs-neg"; "(abs (neg ?x))" => "(abs ?x)"),
        ),
        p(
            "algebra/relu-relu",
            rewrite!("algebra/relu-relu"; "(relu (relu ?x))" => "(relu ?x)"),
        ),
        p(
            "algebra/max-self",
            rewrite!("algebra/max-self"; "(maximum ?x ?x)" => "?x"),
        ),
        p(
            "algebra/min-self",
            rewrite!("algebra/min-self"; "(minimum ?x ?x)" => "?x"),
        ),
        p(
            "algebra/select-same",
            rewrite!("algebra/select-same"; "(select ?c ?x ?x)" => "?x" if same_type("?x")),
        ),
        node_rule(Phase::Algebra, "algebra/div-pow2", is_div, div_pow2),
        node_rule(
            Phase::Algebra,
            "algebra/matvec-rows",
            |n| matches!(n.ir_op(), Some(Op::MatMul)),
            matvec_rows,
        ),
        node_rule(
            Phase::Algebra,
            "algebra/div-accumulated",
            is_div,
            div_accumulated,
        ),
    ]
}

fn is_div(n: &ENode) -> bool {
    matches!(n.ir_op(), Some(Op::Binary(BinaryOp::Div)))
}

/// `x / s` ⇒ `x · reciprocal(s)` for floats when a reduction or matmul is
/// upstream of `s`: the spec holds such values to the accumulation
/// tolerance, not bit for bit, and a per-row divisor then costs one
/// reciprocal per row and a multiply per element instead of a division
/// per element (the cost model decides).
///
/// In f16 and bf16 the reciprocal's own rounding (up to 2⁻⁹ of it in bf16)
/// moves every quotient of the row by up to an ulp: within the quotient's
/// tolerance, but a sum or product of the quotients downstream adds those
/// up against its own result's tolerance, which a sum that cancels cannot
/// absorb (64 bf16 quotients summing to 0.5 came out 0.033 off). So in
/// those dtypes the rule stays out of quotients that flow into a reduction
/// or matmul ([`feeds_accumulation`]).
fn div_accumulated(eg: &mut EGraph, id: Id, n: &ENode) -> Vec<Id> {
    let (x, s) = (n.children()[0], n.children()[1]);
    let d = &eg[s].data;
    if !d.accumulated || !d.ty.dtype.is_float() || d.constant.is_some() || !d.size.at_least_one {
        return Vec::new();
    }
    if d.ty.dtype != tessera_ir::DType::F32 && feeds_accumulation(eg, id) {
        return Vec::new();
    }
    let r = eg.add(ENode::op(Op::Unary(UnaryOp::Reciprocal), vec![s]));
    vec![eg.add(ENode::op(Op::Binary(BinaryOp::Mul), vec![x, r]))]
}

/// `a @ b` with `b` a column `[K, 1]` and float operands ⇒
/// `sum(a · reshape(b, [K]), axis = -1, keepdims = true)`, the operands
/// widened to f32 first as the matmul does (an exact cast): each result is
/// a row's dot product, accumulated in f32 either way. Where the cube
/// lacks the dtype, the vector matmul takes its dot-product form (one
/// 64-lane run of K at a time, `backend/src/npu/matmul/dot.rs`); as a row
/// reduction the product streams `a` once and folds each row in the row
/// stage's order (f32 4096 × 4096 on 910-like: 100.6 k cycles as a
/// matmul, 84.6 k as rows). The cost model decides (`extract::padded`
/// charges the vector matmul 64-lane output columns: more than the dot
/// form costs, but the row form is the faster one either way).
///
/// A batched column (`[batch…, K, 1]`) is left to the matmul: as a row it
/// is `[batch…, 1, K]` broadcast over `a`'s rows, which the planner copies
/// out in a stage of its own (the broadcast is a strided view) that the
/// cost model does not see. On 910-like, f32 `[8, 1024, 1024] @ [8, 1024,
/// 1]` took 112 209 cycles as rows and takes 61 352 as a matmul.
fn matvec_rows(eg: &mut EGraph, id: Id, n: &ENode) -> Vec<Id> {
    let (a, b) = (n.children()[0], n.children()[1]);
    let (ta, tb) = (eg[a].data.ty.clone(), eg[b].data.ty.clone());
    let out = eg[id].data.ty.shape.clone();
    let (Some(da), Some(db)) = (ta.shape.as_fixed(), tb.shape.as_fixed()) else {
        return Vec::new();
    };
    let (Some(&ka), [k, 1]) = (da.last(), db.as_slice()) else {
        return Vec::new();
    };
    if !ta.dtype.is_float() || ta.dtype != tb.dtype || da.len() < 2 || ka != *k {
        return Vec::new();
    }
    if !contiguous(eg, b) {
        return Vec::new();
    }
    // b as a row: [K], one column for every row of every batch of a.
    let col = eg.add(ENode::op(Op::Reshape(Shape::fixed(&[*k])), vec![b]));
    let (a, col) = if ta.dtype == DType::F32 {
        (a, col)
    } else {
        let cast = Op::Cast(DType::F32);
        (
            eg.add(ENode::op(cast.clone(), vec![a])),
            eg.add(ENode::op(cast, vec![col])),
        )
    };
    let prod = eg.add(ENode::op(Op::Binary(BinaryOp::Mul), vec![a, col]));
    let Some(last) = eg[prod].data.ty.shape.rank().checked_sub(1) else {
        return Vec::new();
    };
    let sum = eg.add(ENode::op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![last],
        },
        vec![prod],
    ));
    vec![eg.add(ENode::op(Op::Reshape(out), vec![sum]))]
}

/// Whether class `c`'s value is laid out densely in GM when a stage reads
/// it: a parameter, a value some op computes (a stage writes it whole), or
/// a reshape of one. A slice, transpose or broadcast is a strided view,
/// which a row stage cannot read as a row: the planner would first copy
/// it out, broadcast, in a stage of its own the cost model does not see
/// (`a @ a[:, 0:1]` at K = 65 on 910-like: 14 710 → 23 391 cycles).
///
/// Any of the class's nodes will do: the rule runs in the algebra phase,
/// before `layout/*` adds strided alternatives to classes (a transpose
/// pushed out of an elementwise op).
fn contiguous(eg: &EGraph, c: Id) -> bool {
    dense(eg, c)
        || eg[c].nodes.iter().any(|n| {
            matches!(n.ir_op(), Some(Op::Reshape(_))) && n.children().iter().all(|&x| dense(eg, x))
        })
}

/// Whether class `c` holds a parameter or an op that is not a view.
fn dense(eg: &EGraph, c: Id) -> bool {
    eg[c]
        .nodes
        .iter()
        .any(|n| n.ir_op().is_none_or(|op| !is_view(op)))
}

/// Ops whose result the planner makes a view of their operand (strided,
/// or a reshape of it), not a buffer of its own. (A concat is written into
/// a buffer of its own.)
fn is_view(op: &Op) -> bool {
    matches!(
        op,
        Op::Reshape(_) | Op::Slice { .. } | Op::Transpose(_) | Op::BroadcastTo(_)
    )
}

/// Most classes [`feeds_accumulation`] visits before it answers yes.
const DOWNSTREAM_LIMIT: usize = 256;

/// Whether class `id`'s value flows (through any ops) into a reduction or
/// a matmul, or into a fused group; yes also when the walk is cut short.
fn feeds_accumulation(eg: &EGraph, id: Id) -> bool {
    let mut seen = vec![eg.find(id)];
    let mut next = 0;
    while let Some(&c) = seen.get(next) {
        next += 1;
        for p in eg[c].parents() {
            match eg.id_to_node(p).ir_op() {
                Some(Op::Reduce { .. } | Op::MatMul) | None => return true,
                Some(_) => {
                    let up = eg.find(p);
                    if !seen.contains(&up) {
                        if seen.len() >= DOWNSTREAM_LIMIT {
                            return true;
                        }
                        seen.push(up);
                    }
                }
            }
        }
    }
    false
}

/// The exact reciprocal of `c` in `dtype`: `c` a power of two (either sign)
/// whose reciprocal is a normal `dtype` value.
pub fn exact_reciprocal(c: f64, ty: &TensorType) -> Option<f64> {
    if !ty.dtype.is_float() || c == 0.0 || !c.is_finite() {
        return None;
    }
    let (m, _) = frexp(c.abs());
    if m != 0.5 {
        return None;
    }
    let r = 1.0 / c;
    let smallest_normal = match ty.dtype {
        tessera_ir::DType::F16 => 2f64.powi(-14),
        tessera_ir::DType::BF16 | tessera_ir::DType::F32 => 2f64.powi(-126),
        _ => return None,
    };
    let max = ty.dtype.float_max()?;
    (r.abs() >= smallest_normal && r.abs() <= max && ty.dtype.round_float(r) == r).then_some(r)
}

/// `x = m · 2^e` with `m` in `[0.5, 1)`.
fn frexp(x: f64) -> (f64, i32) {
    if x == 0.0 || !x.is_finite() {
        return (x, 0);
    }
    let e = x.abs().log2().floor() as i32 + 1;
    let m = x / 2f64.powi(e);
    // log2 can be off by one at the edges.
    if m.abs() >= 1.0 {
        (m / 2.0, e + 1)
    } else if m.abs() < 0.5 {
        (m * 2.0, e - 1)
    } else {
        (m, e)
    }
}

/// `x / c` ⇒ `x · (1/c)` for a constant `c` with an exact reciprocal.
fn div_pow2(eg: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    let (x, c) = (n.children()[0], n.children()[1]);
    let cdata = eg[c].data.clone();
    let Some(Scalar::Float(v)) = cdata.constant else {
        return Vec::new();
    };
    let Some(r) = exact_reciprocal(v, &cdata.ty) else {
        return Vec::new();
    };
    let recip = eg.add(ENode::op(
        Op::Full {
            value: Scalar::Float(r),
            ty: cdata.ty,
        },
        Vec::new(),
    ));
    let mul = eg.add(ENode::op(Op::Binary(BinaryOp::Mul), vec![x, recip]));
    vec![mul]
}
