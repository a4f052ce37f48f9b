//! The double-buffered loops the vector templates share (elementwise,
//! reduce, transpose, rows): each iteration handles two steps on the two
//! copies of every streamed buffer (ping-pong), so the loads of one overlap
//! the compute and stores of the other; the second step is skipped past the
//! end. [`double_buffered_ahead`] issues each step's loads a whole step
//! earlier, for templates whose scalar unit waits on the vector pipe
//! mid-step and would otherwise issue the next step's loads too late.

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
    push_loop(items, first, stride, end, body);
    Ok(())
}

/// `loop { body; first += stride }` while `first < end`.
fn push_loop(
    items: &mut Vec<Item>,
    first: Reg,
    stride: impl Into<Operand>,
    end: impl Into<Operand>,
    body: Vec<Item>,
) {
    let mut latch = Vec::new();
    latch.ins().s_alu(AluOp::Add, first, first, stride);
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, first, end)],
        body,
        latch,
    });
}

/// [`double_buffered`] with each step's loads issued one step ahead:
/// `if first < end { load(0, first) }; loop { second = first + next;
/// if second < end { load(1, second) }; work(0, first); third = first +
/// stride; if third < end { load(0, third) }; if second < end {
/// work(1, second) }; first += stride }` while `first < end`. `step(half,
/// r)` builds a step's loads and its work, each computing what it needs
/// from `r` (the two parts of one step are not adjacent).
pub fn double_buffered_ahead(
    items: &mut Vec<Item>,
    (first, second, third): (Reg, Reg, Reg),
    next: impl Into<Operand>,
    stride: impl Into<Operand> + Copy,
    end: impl Into<Operand> + Copy,
    mut step: impl FnMut(u32, Reg) -> Result<(Vec<Item>, Vec<Item>), String>,
) -> Result<(), String> {
    let (load_first, work_first) = step(0, first)?;
    let (load_second, work_second) = step(1, second)?;
    let (load_third, _) = step(0, third)?;
    items.push(Item::Guard {
        skip_if: vec![Branch::new(Cond::Ge, first, end)],
        body: load_first,
    });
    let mut body = Vec::new();
    body.ins().s_alu(AluOp::Add, second, first, next);
    let skip_second = vec![Branch::new(Cond::Ge, second, end)];
    body.push(Item::Guard {
        skip_if: skip_second.clone(),
        body: load_second,
    });
    body.extend(work_first);
    body.ins().s_alu(AluOp::Add, third, first, stride);
    body.push(Item::Guard {
        skip_if: vec![Branch::new(Cond::Ge, third, end)],
        body: load_third,
    });
    body.push(Item::Guard {
        skip_if: skip_second,
        body: work_second,
    });
    push_loop(items, first, stride, end, body);
    Ok(())
}

/// A loop over steps numbered `first`, `first + 1`, … below `end`, on
/// `n = regs.len()` buffer copies: `loop { step(0, first); for i in 1..n {
/// r_i = first + i; if r_i < end { step(i, r_i) } }; first += n }` while
/// `first < end`, with `first = regs[0]` and `r_i = regs[i]`. With three
/// copies a step's loads run two steps ahead.
pub fn multi_buffered(
    items: &mut Vec<Item>,
    regs: &[Reg],
    end: impl Into<Operand> + Copy,
    mut step: impl FnMut(u32, Reg) -> Result<Vec<Item>, String>,
) -> Result<(), String> {
    let (&first, rest) = regs
        .split_first()
        .ok_or("internal: a buffered loop without registers")?;
    let mut body = step(0, first)?;
    for (i, &r) in rest.iter().enumerate() {
        let h = step(i as u32 + 1, r)?;
        body.ins().s_alu(AluOp::Add, r, first, i as u64 + 1);
        body.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ge, r, end)],
            body: h,
        });
    }
    push_loop(items, first, regs.len() as u64, end, body);
    Ok(())
}
