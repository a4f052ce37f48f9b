//! Joined stages (`tessera_ir::plan::join`): on a split machine a vector
//! stage next to a cube matmul runs on the vector cores of the matmul's
//! launch, which would otherwise sit idle, in phases of rows, while the
//! cube cores run the matmul. The pair then takes about the longer of the
//! two plus one phase, rather than their sum plus a launch.
//!
//! - Each cube matmul first tries the stage after it as its **epilogue**
//!   (a row or elementwise stage reading its result), through a **ring**
//!   of two phases where `ring_phase` finds one (the most rows whose two
//!   phases fit `RING_BYTES`, at least `RING_PHASES` phases, whole groups
//!   of the tile order — halved if need be — and whole tiles of the
//!   stage), else at most 15 equal phases of whole tiles of the stage.
//!   The ring's rows are written again and again, so the product's lines
//!   cross HBM once per ring rather than whole: FixPipe's writes of the
//!   f32 product of `gelu(x @ w + b)` at 8192 × 4096 × 4096 (128 MiB of
//!   new lines, every cube core draining a tile at once) took 4 228
//!   cycles a tile, about 2 400 through the ring (2 248 at FixPipe's
//!   rate), and MTE2, its L1 copies full, waited for them.
//! - Else the row stage before it, unless that one is already an epilogue,
//!   as its **prologue** (a row stage writing its A): the first phase holds
//!   the rows the cube cores' first round reads (so every cube core starts
//!   once it is out), rounded up to whole groups of the tile order's rows,
//!   and each later phase doubles, so the vector cores keep ahead of the
//!   cube while they signal at most a few times.
//! - Either only when the matmul's launch has as many vector cores as the
//!   vector stage has blocks of its own (a small matmul runs on few cores).
//! - Before joining, a stage independent of a matmul that sits between it
//!   and the matmul's reader moves before it (`hoist`: attention's mask
//!   cast between Q·Kᵀ and the softmax).
//!
//! A joined row stage bound by its GM traffic ([`super::rows::gm_bound`])
//! runs on one vector core per cube core (its block count becomes the
//! matmul's). HBM is shared evenly among the transfers in flight, and such
//! a stage's are many: on all 48 vector cores of 910b-like they took two
//! thirds of it while the cube cores first touched B, and
//! `rms_norm(x) @ w` (8192 × 4096 × 4096) ran 1 798 182 cycles; on 24,
//! 1 734 638 (the matmul alone: 1 672 682). The vector cores still finish
//! far ahead of the cube. A stage bound by its vector work (attention's
//! softmax) keeps every vector core: on half of them it would take twice
//! as long. The stages keep their own estimates (the pair's is at most
//! their sum).
//!
//! Decided after scheduling and after tuning (a tuned tile order moves the
//! phases), from the schedules alone: idempotent.

use super::rows::{blocks, gm_bound, resident};
use super::workspace;
use tessera_ir::plan::join::{MAX_PHASES, check, check_epilogue, independent, overlap};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{CubeSchedule, MatMul, MatMulSchedule, Plan, StageKind};
use tessera_sim::{Machine, Organisation};

/// Cross-core counters joined stages use (ids 2 to 5).
const COUNTERS: u32 = 6;
/// The count a joined stage's ring flags may reach before their waits (the
/// 910b-like's counters stop at 15); a machine whose counters stop earlier
/// runs the stages apart.
const RING_COUNT: u32 = 15;

/// Joins every vector stage of `plan` that can run in a neighbouring cube
/// matmul's launch on `machine` — as the epilogue of the matmul before it,
/// else as the prologue of the matmul after it — and clears every other
/// join.
pub fn join_stages(plan: &mut Plan, machine: &Machine) {
    let split = machine.organisation == Organisation::Split
        && machine.sync.cross_core_flags >= COUNTERS
        && machine.sync.cross_core_max_count >= RING_COUNT;
    for i in 0..plan.stages.len() {
        set(plan, i, 0, 0, 0);
    }
    if split {
        hoist(plan);
    }
    for i in 0..plan.stages.len() {
        if !split || !matches!(plan.stages[i].kind, StageKind::MatMul(_)) {
            continue;
        }
        // The stage after, through a ring where it may, else whole.
        if i + 1 < plan.stages.len() && keeps_cores(plan, i, i + 1, machine) {
            if let Some((phase, group_m)) = ring_phase(plan, i)
                && let Some(t) = cube_mut(plan, i)
            {
                let kept = std::mem::replace(&mut t.group_m, group_m);
                set(plan, i, 0, phase, 2 * phase);
                if check_epilogue(plan, i).is_ok() {
                    continue;
                }
                if let Some(t) = cube_mut(plan, i) {
                    t.group_m = kept;
                }
            }
            let size = epilogue_size(plan, i);
            if size > 0 {
                set(plan, i, 0, size, 0);
                if check_epilogue(plan, i).is_ok() {
                    continue;
                }
            }
            set(plan, i, 0, 0, 0);
        }
        let taken = i >= 2 && tessera_ir::plan::join::is_epilogue_of(plan, i - 2);
        let first = if i > 0 && !taken {
            first_phase(plan, i)
        } else {
            0
        };
        if first > 0 {
            set(plan, i, first, 0, 0);
            if !(check(plan, i).is_ok() && keeps_cores(plan, i, i - 1, machine)) {
                set(plan, i, 0, 0, 0);
            }
        }
    }
    // A joined row stage bound by its GM traffic runs on one vector core
    // per cube core (see the module docs); every other vector stage keeps
    // its own blocks.
    for j in 0..plan.stages.len() {
        let StageKind::Rows(r) = &plan.stages[j].kind else {
            continue;
        };
        let cube = |i: usize| match plan.stages.get(i).map(|s| &s.kind) {
            Some(StageKind::MatMul(m)) => match &m.schedule {
                MatMulSchedule::Cube(t) => Some((t.prologue, t.epilogue)),
                MatMulSchedule::Vector(_) => None,
            },
            _ => None,
        };
        let joined = match (j.checked_sub(1).and_then(cube), cube(j + 1)) {
            (Some((_, e)), _) if e > 0 => Some(j - 1),
            (_, Some((p, _))) if p > 0 => Some(j + 1),
            _ => None,
        };
        let resident = resident(r, &workspace(plan));
        plan.stages[j].block_dim = match joined {
            Some(i) if gm_bound(r, machine, &resident) => plan.stages[i].block_dim,
            _ => blocks(r.schedule.tiles, machine) as u32,
        };
    }
}

/// Moves a stage that sits between a cube matmul and a stage reading the
/// matmul's result, and is independent of the matmul, before the matmul
/// (attention's mask cast between Q·Kᵀ and the softmax), so that the
/// reader can join the matmul's launch. Stable: once moved, a stage stays.
fn hoist(plan: &mut Plan) {
    for i in 0..plan.stages.len().saturating_sub(2) {
        let StageKind::MatMul(mm) = &plan.stages[i].kind else {
            continue;
        };
        let result = mm.out.clone();
        let reads_result =
            |s: &tessera_ir::plan::Stage| s.reads().iter().any(|v| overlap(plan, v, &result));
        if matches!(plan.stages[i + 1].kind, StageKind::MatMul(_))
            || reads_result(&plan.stages[i + 1])
            || !reads_result(&plan.stages[i + 2])
            || !independent(plan, i, i + 1)
        {
            continue;
        }
        plan.stages.swap(i, i + 1);
    }
}

/// Whether matmul stage `i`'s launch has as many vector cores as vector
/// stage `j` has blocks of its own.
fn keeps_cores(plan: &Plan, i: usize, j: usize, machine: &Machine) -> bool {
    let own = match &plan.stages[j].kind {
        StageKind::Rows(r) => blocks(r.schedule.tiles, machine),
        StageKind::Elementwise(_) => u64::from(plan.stages[j].block_dim),
        StageKind::Reduce(_) | StageKind::Transpose(_) | StageKind::MatMul(_) => return false,
    };
    u64::from(plan.stages[i].block_dim) * u64::from(machine.aiv_per_core()) >= own
}

/// The phase of matmul stage `i`'s epilogue: its result's rows in at most
/// [`MAX_PHASES`] equal phases, each whole tiles of the stage after's rows
/// (0 when that stage is not a row or elementwise one).
fn epilogue_size(plan: &Plan, i: usize) -> u64 {
    let StageKind::MatMul(mm) = &plan.stages[i].kind else {
        return 0;
    };
    let Ok(g) = Geometry::of(mm) else {
        return 0;
    };
    let tile_rows = match plan.stages.get(i + 1).map(|s| &s.kind) {
        Some(StageKind::Rows(r)) => r.schedule.rows,
        Some(StageKind::Elementwise(e)) => e.schedule.rows,
        _ => return 0,
    };
    let rows = g.batches() * g.m;
    let tile_rows = tile_rows.max(1);
    rows.div_ceil(MAX_PHASES as u64)
        .div_ceil(tile_rows)
        .saturating_mul(tile_rows)
}

/// Stage `i`'s cube schedule, when it is a cube matmul.
fn cube_mut(plan: &mut Plan, i: usize) -> Option<&mut CubeSchedule> {
    let StageKind::MatMul(MatMul {
        schedule: MatMulSchedule::Cube(t),
        ..
    }) = &mut plan.stages[i].kind
    else {
        return None;
    };
    Some(t)
}

/// Stage `i`'s joins: a prologue's first phase, an epilogue's phase and
/// its ring (0: none).
fn set(plan: &mut Plan, i: usize, prologue: u64, epilogue: u64, ring: u64) {
    if let Some(t) = cube_mut(plan, i) {
        (t.prologue, t.epilogue, t.ring) = (prologue, epilogue, ring);
    }
}

/// Phases a ring's epilogue has at least (where its tiles allow).
const RING_PHASES: u64 = 16;

/// Phases the ring of a light epilogue has at least: one whose estimate is
/// at most half the matmul's (`gelu(x @ w + b)`'s elementwise stage, about
/// a sixth), so the vector cores keep up with room to spare and its last
/// phase, which runs after the cube's last tile, is all it adds (910b-like,
/// 8192 × 4096 × 4096: 1 667 482 cycles with 16 phases of 512 rows, 1 648 640
/// with 64 of 128). A heavy one (attention's softmax) keeps the larger
/// phases: each phase is a meeting of every vector core, and the ring's
/// two phases are all the slack between the cube and it (with 64, attention
/// at S = 1024 took 385 727 cycles against 290 753).
const LIGHT_RING_PHASES: u64 = 64;

/// GM bytes a ring may take: a third of the 192 MiB L2 of the Ascend
/// 910B2 that 910b-like models (the simulator counts no L2 capacity, so
/// the bound is the scheduler's).
const RING_BYTES: u64 = 64 << 20;

/// The phase of matmul stage `i`'s epilogue through a ring, when the stage
/// after is a row or elementwise stage, and the tile order it takes: the
/// most rows whose two phases fit [`RING_BYTES`], in whole groups of the
/// tile order's rows and whole tiles of the stage after, and fewer than the
/// result's rows. The
/// order's groups of tile rows halve (to row-major at the least) until a
/// phase holds one: with a ring a group's rows stay in L2 anyway.
fn ring_phase(plan: &Plan, i: usize) -> Option<(u64, u64)> {
    let StageKind::MatMul(mm) = &plan.stages[i].kind else {
        return None;
    };
    let (MatMulSchedule::Cube(t), Ok(g)) = (&mm.schedule, Geometry::of(mm)) else {
        return None;
    };
    let tile_rows = tessera_ir::plan::join::tile_rows(plan, i + 1)?;
    let row_bytes = g.n * g.out.size_bytes() as u64;
    let rows = g.batches() * g.m;
    // At least RING_PHASES phases: the last one's row work is what the
    // cube does not hide.
    let light = 2 * plan.stages[i + 1].estimate <= plan.stages[i].estimate;
    let phases = if light {
        LIGHT_RING_PHASES
    } else {
        RING_PHASES
    };
    let most = (RING_BYTES / (2 * row_bytes.max(1))).min(rows / phases);
    let mut group_m = t.group_m.max(1);
    loop {
        let (a, b) = (t.base_m * group_m, tile_rows);
        let unit = a / gcd(a, b) * b;
        let phase = most / unit * unit;
        if phase > 0 {
            return (2 * phase < rows).then_some((phase, group_m));
        }
        if group_m == 1 {
            return None;
        }
        group_m /= 2;
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
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
