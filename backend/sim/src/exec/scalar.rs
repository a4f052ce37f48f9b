//! Scalar ALU semantics (64-bit integers; f32 in the low 32 bits).

use crate::fault::{FaultKind, Trap};
use crate::isa::{AluOp, Cond, FOp};

/// `a <op> b` on 64-bit registers; `div`/`rem` are signed and fault on zero.
pub fn alu(op: AluOp, a: u64, b: u64) -> Result<u64, Trap> {
    let (sa, sb) = (a as i64, b as i64);
    Ok(match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div | AluOp::Rem => {
            if sb == 0 {
                return Err(Trap::new(
                    FaultKind::DivByZero,
                    format!("scalar {} of {sa} by zero", op.name()),
                ));
            }
            (if op == AluOp::Div {
                sa.wrapping_div(sb)
            } else {
                sa.wrapping_rem(sb)
            }) as u64
        }
        AluOp::Min => sa.min(sb) as u64,
        AluOp::Max => sa.max(sb) as u64,
        AluOp::And => a & b,
        AluOp::Or => a | b,
        AluOp::Xor => a ^ b,
        AluOp::Shl => a.wrapping_shl((b & 63) as u32),
        AluOp::Shr => a.wrapping_shr((b & 63) as u32),
        AluOp::Sra => sa.wrapping_shr((b & 63) as u32) as u64,
        AluOp::Slt => u64::from(sa < sb),
        AluOp::Sle => u64::from(sa <= sb),
        AluOp::Seq => u64::from(a == b),
        AluOp::Sne => u64::from(a != b),
        AluOp::Sltu => u64::from(a < b),
    })
}

/// f32 operations on the low 32 bits (result zero-extended).
pub fn fop(op: FOp, a: u64, b: u64) -> u64 {
    let (x, y) = (f32::from_bits(a as u32), f32::from_bits(b as u32));
    let r = match op {
        FOp::Add => x + y,
        FOp::Sub => x - y,
        FOp::Mul => x * y,
        FOp::Div => x / y,
        FOp::Max => super::numeric::max_nan(x, y),
        FOp::Min => super::numeric::min_nan(x, y),
    };
    u64::from(r.to_bits())
}

/// Whether a branch is taken (signed compare).
pub fn cond(c: Cond, a: u64, b: u64) -> bool {
    let (a, b) = (a as i64, b as i64);
    match c {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Lt => a < b,
        Cond::Le => a <= b,
        Cond::Gt => a > b,
        Cond::Ge => a >= b,
    }
}
