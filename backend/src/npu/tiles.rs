//! The double-buffered loop the vector templates share (elementwise,
//! reduce, transpose): each iteration handles two steps on the two copies of
//! every streamed buffer (ping-pong), so the loads of one overlap the
//! compute and stores of the other; the second step is skipped past the end.

use super::inst::{InstBuilder, Operand};
use super::prog::{Branch, Build, Item};
use tessera_sim::isa::{AluOp, Cond, Reg};

/// Emits `loop { step(0, first); second = first + next; if second < end {
/// step(1, second) }; first += stride }` while `first < end`. `step(half,
/// r)` builds the code of one step on buffer copy `half` for the step
/// number in register `r`.
pub fn double_buffered(
    items: &mut Vec<Item>,
    (first, second): (Reg, Reg),
    next: impl Into<Operand>,
    stride: impl Into<Operand>,
    end: impl Into<Operand> + Copy,
    mut step: impl FnMut(u32, Reg) -> Result<Vec<Item>, String>,
) -> Result<(), String> {
    let mut body = step(0, first)?;
    let h = step(1, second)?;
    body.ins().s_alu(AluOp::Add, second, first, next);
    body.push(Item::Guard {
        skip_if: vec![Branch::new(Cond::Ge, second, end)],
        body: h,
    });
    let mut latch = Vec::new();
    latch.ins().s_alu(AluOp::Add, first, first, stride);
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, first, end)],
        body,
        latch,
    });
    Ok(())
}
