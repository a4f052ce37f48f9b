//! Joined prologues (`tessera_ir::plan::prologue`): on a split machine, a
//! row stage whose result is the next stage's A — `rms_norm(x) @ w`, or
//! attention's softmax before `@ v` — runs on the vector cores of the
//! matmul's launch, which would otherwise sit idle, in phases of A's rows,
//! while the cube cores run the matmul on the rows already written. The
//! pair then takes about the longer of the two plus the first phase,
//! rather than their sum plus a launch.
//!
//! The first phase holds the rows the cube cores' first round reads (so
//! that every cube core starts once it is out), rounded up to whole groups
//! of the tile order's rows; each later phase doubles, so the vector cores
//! keep ahead of the cube while they signal at most a few times. A pair
//! is joined whenever [`tessera_ir::plan::prologue::check`] allows it and
//! the matmul's launch has as many vector cores as the row stage would
//! have on its own (a small matmul runs on few cores): the vector cores
//! are otherwise idle during the matmul and the cube during the row stage,
//! so overlapping them never loses more than the HBM they share. The stages keep their own estimates (the pair's is at most
//! their sum).
//!
//! A row stage bound by its GM traffic ([`super::rows::gm_bound`]) then
//! runs on one vector core per cube core (its block count becomes the
//! matmul's). HBM is shared evenly among the transfers in flight, and such
//! a stage's are many: on all 48 vector cores of 910b-like they took two
//! thirds of it while the cube cores first touched B, and
//! `rms_norm(x) @ w` (8192 × 4096 × 4096) ran 1 798 182 cycles; on 24,
//! 1 734 638 (the matmul alone: 1 672 682). The vector cores still finish
//! far ahead of the cube. A stage bound by its vector work (attention's
//! softmax) keeps every vector core: on half of them it would take twice
//! as long.
//!
//! Decided after scheduling and after tuning (a tuned tile order moves the
//! phases), from the schedules alone: idempotent.

use super::rows::{blocks, gm_bound};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::prologue::check;
use tessera_ir::plan::{BufKind, MatMulSchedule, Plan, StageKind};
use tessera_sim::{Machine, Organisation};

/// Cross-core counters a joined prologue uses (its ids are 2 and 3).
const COUNTERS: u32 = 4;

/// Sets the joined prologue of every matmul stage of `plan` that can take
/// the stage before as one on `machine`, and clears every other.
pub fn join_prologues(plan: &mut Plan, machine: &Machine) {
    let split =
        machine.organisation == Organisation::Split && machine.sync.cross_core_flags >= COUNTERS;
    for i in 0..plan.stages.len() {
        let first = if split && i > 0 {
            first_phase(plan, i)
        } else {
            0
        };
        set(plan, i, first);
        let joined = first > 0 && check(plan, i).is_ok() && keeps_cores(plan, i, machine);
        if !joined {
            set(plan, i, 0);
        }
        // A joined prologue runs on one vector core per cube core (see the
        // module docs); otherwise the row stage keeps its own blocks.
        if i > 0
            && let StageKind::Rows(r) = &plan.stages[i - 1].kind
        {
            let resident: Vec<bool> = r
                .inputs
                .iter()
                .map(|x| {
                    x.view
                        .buffer()
                        .is_some_and(|b| matches!(plan.buffers[b].kind, BufKind::Workspace { .. }))
                })
                .collect();
            plan.stages[i - 1].block_dim = if joined && gm_bound(r, machine, &resident) {
                plan.stages[i].block_dim
            } else {
                blocks(r.schedule.tiles, machine) as u32
            };
        }
    }
}

/// Whether matmul stage `i`'s launch has as many vector cores as the row
/// stage before it would have on its own.
fn keeps_cores(plan: &Plan, i: usize, machine: &Machine) -> bool {
    let StageKind::Rows(r) = &plan.stages[i - 1].kind else {
        return false;
    };
    let launch = u64::from(plan.stages[i].block_dim) * u64::from(machine.aiv_per_core());
    launch >= blocks(r.schedule.tiles, machine)
}

fn set(plan: &mut Plan, i: usize, first: u64) {
    if let StageKind::MatMul(mm) = &mut plan.stages[i].kind
        && let MatMulSchedule::Cube(t) = &mut mm.schedule
    {
        t.prologue = first;
    }
}

/// The first phase of matmul stage `i`'s prologue: the rows its first round
/// of units reads, in whole groups of its tile order's rows (0 when the
/// stage is not a cube matmul).
fn first_phase(plan: &Plan, i: usize) -> u64 {
    let stage = &plan.stages[i];
    let StageKind::MatMul(mm) = &stage.kind else {
        return 0;
    };
    let (MatMulSchedule::Cube(t), Ok(g)) = (&mm.schedule, Geometry::of(mm)) else {
        return 0;
    };
    let (tm, tn) = (g.m.div_ceil(t.base_m), g.n.div_ceil(t.base_n));
    let units = g.batches() * tm * tn;
    let rows = g.batches() * g.m;
    let group = t.base_m * t.group_m.max(1);
    let read = (0..units.min(u64::from(stage.block_dim)))
        .map(|u| {
            let (q, mi, _) = t.tile_at(u, tm, tn);
            q * g.m + ((mi + 1) * t.base_m).min(g.m)
        })
        .max()
        .unwrap_or(rows);
    read.div_ceil(group)
        .saturating_mul(group)
        .clamp(1, rows.max(1))
}
