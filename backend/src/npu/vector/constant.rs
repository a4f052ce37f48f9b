//! Binary ops with a constant operand in tensor-scalar form.

use super::{Accuracy, Seq, VBuf, emit_op_to, scalar};
use crate::npu::inst::int_scalar;
use crate::npu::prog::Item;
use tessera_ir::plan::EwOp;
use tessera_ir::{BinaryOp, DType, Scalar};
use tessera_sim::isa::{ScaOp, Scal};

/// The tensor-scalar instruction of a binary op one of whose operands is
/// a constant (`consts[k]` for operand `k`): `x + c`, `c + x`, `x · c`,
/// `c · x`, `maximum` and `minimum` either way, and `x − c` as `x + (−c)`
/// (the same IEEE result, and the same wrapped integer). It runs at a cycle
/// a repeat instead of the tensor-tensor op's two and reads no tile of the
/// constant. Returns the instruction, the index of the tensor operand and
/// the scalar; none for other ops, bool, or two constants.
pub fn constant_form(
    op: &EwOp,
    consts: &[Option<Scalar>],
    d: DType,
) -> Option<(ScaOp, usize, Scal)> {
    let EwOp::Binary(b) = op else {
        return None;
    };
    if d == DType::Bool {
        return None;
    }
    let (c0, c1) = (consts.first().copied()?, consts.get(1).copied()?);
    let sca = match b {
        BinaryOp::Add | BinaryOp::Sub => ScaOp::Adds,
        BinaryOp::Mul => ScaOp::Muls,
        BinaryOp::Maximum => ScaOp::Maxs,
        BinaryOp::Minimum => ScaOp::Mins,
        BinaryOp::Div | BinaryOp::Pow => return None,
    };
    let (x, c, negate) = match (c0, c1) {
        (None, Some(c)) => (0, c, *b == BinaryOp::Sub),
        (Some(c), None) if *b != BinaryOp::Sub => (1, c, false),
        _ => return None,
    };
    let s = match c {
        Scalar::Float(v) if d.is_float() => scalar(d, if negate { -v } else { v }),
        Scalar::Int(i) if !d.is_float() => int_scalar(if negate { i.wrapping_neg() } else { i }),
        Scalar::Float(_) | Scalar::Int(_) | Scalar::Bool(_) => return None,
    };
    Some((sca, x, s))
}

/// [`emit_op_to`], in [`constant_form`] where it applies.
pub fn emit_op_with(
    items: &mut Vec<Item>,
    n: u64,
    op: (&EwOp, Accuracy),
    dst: VBuf,
    (args, consts): (&[VBuf], &[Option<Scalar>]),
    scratch: &[VBuf],
) -> Result<(), String> {
    if let Some((sca, x, s)) = constant_form(op.0, consts, dst.dtype) {
        let a = *args
            .get(x)
            .ok_or("internal: a tensor-scalar op's operand")?;
        Seq { items, n }.sca(sca, dst, a, s);
        return Ok(());
    }
    emit_op_to(items, n, op, dst, args, scratch)
}
