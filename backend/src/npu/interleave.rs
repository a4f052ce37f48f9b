//! Interleaving of straight runs of vector instructions, before the sync
//! pass.
//!
//! Inside the vector pipe only a read after a write needs ordering: a
//! `barrier`, which waits for everything the pipe issued to complete (its
//! last result's latency) and leaves the unit idle, so the next instruction
//! pays its start-up again (machine.md's per-repeat costs, `head_cycles`).
//! A template writes each op's instructions in dependency order, so a chain
//! of dependent ops pays that at every step even where another chain could
//! run in between. This pass reorders each run of consecutive vector
//! instructions (no scalar instruction, other pipe's instruction, guard or
//! loop between them, so the registers they read hold the same values)
//! into groups of instructions none of which reads what another of its
//! group writes, so that the sync pass places one barrier per group rather
//! than one per dependent instruction.
//!
//! Greedy and deterministic: each instruction joins the current group when
//! every instruction it depends on (any overlap where one of the two
//! writes) is placed and none of those it reads from is in the group,
//! earliest first; when none can, a new group starts with the earliest
//! instruction whose dependencies are placed. Every pair of instructions
//! that touch the same bytes, one of them writing, keeps its order, so the
//! results are the same bits.

use super::prog::{Access, Item, MicroOp};
use tessera_sim::Pipe;

/// Reorders every run of consecutive vector instructions in `items`
/// (loop and guard bodies included).
pub fn interleave(items: Vec<Item>) -> Vec<Item> {
    let mut out = Vec::with_capacity(items.len());
    let mut run: Vec<MicroOp> = Vec::new();
    let flush = |run: &mut Vec<MicroOp>, out: &mut Vec<Item>| {
        out.extend(order(std::mem::take(run)).into_iter().map(Item::Op));
    };
    for it in items {
        match it {
            Item::Op(op) if op.pipe == Pipe::V => run.push(op),
            Item::Loop {
                exit_if,
                body,
                latch,
            } => {
                flush(&mut run, &mut out);
                out.push(Item::Loop {
                    exit_if,
                    body: interleave(body),
                    latch: interleave(latch),
                });
            }
            Item::Guard { skip_if, body } => {
                flush(&mut run, &mut out);
                out.push(Item::Guard {
                    skip_if,
                    body: interleave(body),
                });
            }
            other @ (Item::Op(_) | Item::Scalar(_) | Item::Sync(_)) => {
                flush(&mut run, &mut out);
                out.push(other);
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Whether `b` reads bytes `a` writes (`raw`), or the two touch the same
/// bytes with one of them writing (`any`).
fn depends(a: &MicroOp, b: &MicroOp) -> (bool, bool) {
    let writes = |k: Access| k != Access::Read;
    let (mut raw, mut any) = (false, false);
    for (ka, ra) in &a.accesses {
        for (kb, rb) in &b.accesses {
            if ra.overlaps(rb) && (writes(*ka) || writes(*kb)) {
                any = true;
                raw |= writes(*ka) && *kb == Access::Read;
            }
        }
    }
    (raw, any)
}

/// One run in its new order (see the module docs).
fn order(run: Vec<MicroOp>) -> Vec<MicroOp> {
    let n = run.len();
    if n < 3 {
        return run;
    }
    // For each instruction, the earlier ones it depends on and those it
    // reads from.
    let mut deps = vec![Vec::new(); n];
    let mut reads_from = vec![Vec::new(); n];
    for j in 0..n {
        for i in 0..j {
            let (raw, any) = depends(&run[i], &run[j]);
            if any {
                deps[j].push(i);
            }
            if raw {
                reads_from[j].push(i);
            }
        }
    }
    let mut placed = vec![false; n];
    let mut in_group = vec![false; n];
    let mut sequence = Vec::with_capacity(n);
    while sequence.len() < n {
        let ready = |j: usize| !placed[j] && deps[j].iter().all(|&i| placed[i]);
        let joins = (0..n).find(|&j| ready(j) && reads_from[j].iter().all(|&i| !in_group[i]));
        let next = match joins {
            Some(j) => j,
            None => {
                in_group.iter_mut().for_each(|g| *g = false);
                // The earliest unplaced instruction is always ready: all it
                // depends on comes before it.
                match (0..n).find(|&j| ready(j)) {
                    Some(j) => j,
                    None => break,
                }
            }
        };
        placed[next] = true;
        in_group[next] = true;
        sequence.push(next);
    }
    let mut slots: Vec<Option<MicroOp>> = run.into_iter().map(Some).collect();
    sequence
        .into_iter()
        .filter_map(|j| slots[j].take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npu::inst::Inst;
    use crate::npu::prog::{Region, Slot};
    use tessera_ir::plan::MemSpace;
    use tessera_sim::isa::Reg;

    /// A vector op writing 32-byte block `w` of UB and reading blocks `r`
    /// (its instruction a placeholder).
    fn op(w: u64, r: &[u64]) -> MicroOp {
        let region = |at: u64| Region {
            space: MemSpace::Ub,
            start: at * 32,
            end: at * 32 + 32,
            slot: Slot {
                space: MemSpace::Ub,
                start: at * 32,
            },
        };
        let mut accesses = vec![(Access::Write, region(w))];
        accesses.extend(r.iter().map(|&a| (Access::Read, region(a))));
        MicroOp {
            inst: Inst::SLi { rd: Reg(0), imm: 0 },
            pipe: Pipe::V,
            accesses,
        }
    }

    fn written(items: &[Item]) -> Vec<u64> {
        items
            .iter()
            .map(|it| match it {
                Item::Op(o) => o.accesses[0].1.start / 32,
                _ => u64::MAX,
            })
            .collect()
    }

    #[test]
    fn two_chains_take_turns() {
        // a1 → a2 → a3 and b1 → b2, written one chain after the other.
        let items = [
            op(1, &[0]),
            op(2, &[1]),
            op(3, &[2]),
            op(11, &[10]),
            op(12, &[11]),
        ]
        .map(Item::Op)
        .to_vec();
        assert_eq!(written(&interleave(items)), vec![1, 11, 2, 12, 3]);
    }

    #[test]
    fn a_write_after_a_read_keeps_its_order() {
        // b1 overwrites what a2 reads: it may not move before a2.
        let items = [op(1, &[0]), op(2, &[1]), op(1, &[10])]
            .map(Item::Op)
            .to_vec();
        assert_eq!(written(&interleave(items)), vec![1, 2, 1]);
    }
}
