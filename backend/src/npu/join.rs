//! The cross-core protocols of joined stages (`tessera_ir::plan::join`): a
//! row or elementwise stage on the vector cores of a cube matmul's mix
//! launch, in phases of rows.
//!
//! A joined prologue (the vector stage writes the matmul's A):
//! - vector side, after each phase's tiles (their results leave through
//!   MTE3): `xcore.set mte3, 0, XC_PHASE_MET` and `xcore.wait mte3,
//!   XC_PHASE_MET` (every vector core has written its rows of the phase),
//!   then `xcore.set mte3, 2, XC_PHASE` (the cube core's counter rises once
//!   both its vector cores have set it);
//! - cube side, at the top of each unit `u`: for each phase `s` whose first
//!   reading unit `v_s` has `v_s ≤ u < v_s + block_dim` — this core's first
//!   unit at or after `v_s` — `xcore.wait mte2, XC_PHASE`, ahead of the
//!   unit's loads in MTE2's queue.
//!
//! A joined epilogue (the vector stage reads the matmul's result):
//! - cube side, at the top of each unit `u`: for each phase `s` whose
//!   writers all come before `w_s` with `w_s ≤ u < w_s + block_dim`, and
//!   after the last unit for the phases not yet signalled: `xcore.set fix,
//!   2, XC_ROWS` (after the core's earlier FixPipe writes; both its vector
//!   cores' counters rise);
//! - vector side, before each phase's tiles: `xcore.wait mte2, XC_ROWS`
//!   (this core's cube core has written its rows of the phase), then
//!   `xcore.set mte2, 0, XC_ROWS_MET` and `xcore.wait mte2, XC_ROWS_MET`
//!   (every cube core has), ahead of the phase's loads.
//!
//! The counters are apart from split-K's ([`super::matmul`]), which a
//! joined stage does not use.

use super::Ctx;
use super::inst::{InstBuilder, Operand};
use super::prog::{Branch, Build, Item, count_up};
use tessera_ir::plan::join::{self, epilogue_ends, phase_ends};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{MatMulSchedule, Plan, StageKind};
use tessera_sim::isa::{AluOp, Cond, Reg};
use tessera_sim::{Machine, Organisation, Pipe};

/// Cross-core counter the vector cores meet at after a phase.
pub const XC_PHASE_MET: u64 = 2;
/// Cross-core counter by which a phase's rows are announced to a cube core.
pub const XC_PHASE: u64 = 3;
/// Cross-core counter by which a cube core announces a phase's rows.
pub const XC_ROWS: u64 = 4;
/// Cross-core counter the vector cores meet at before an epilogue's phase.
pub const XC_ROWS_MET: u64 = 5;

/// A vector stage's phases in a joined launch.
#[derive(Clone, Debug)]
pub struct Phases {
    /// The rows ready after each phase.
    pub ends: Vec<u64>,
    /// An epilogue (waits for the cube cores before each phase) rather than
    /// a prologue (signals them after each).
    pub epilogue: bool,
    /// An epilogue's ring: the inputs that read the matmul's result (row
    /// `r` at row `r mod rows` of its buffer) and the ring's rows; the
    /// vector cores signal their cube core once they have read a phase.
    pub ring: Option<(Vec<usize>, u64)>,
}

/// How a vector stage's tiles cover its rows: `tiles` tiles of `tile_rows`
/// rows (of `rows`), `per_row` tiles to a row of tiles, in row order.
#[derive(Clone, Copy, Debug)]
pub struct TileRows {
    pub rows: u64,
    pub tile_rows: u64,
    pub per_row: u64,
    pub tiles: u64,
}

/// Vector side: a loop over the phases around `tile_loop(items, start,
/// end)`, which runs the tiles `[start, end)` (registers). A prologue's
/// phase runs every tile with a row below its end (so that all of them are
/// written), then signals; an epilogue's waits, then runs the tiles whose
/// rows all lie below its end (the last phase: the rest).
pub fn phase_loop(
    ctx: &mut Ctx<'_>,
    items: &mut Vec<Item>,
    p: &Phases,
    t: TileRows,
    tile_loop: impl FnOnce(&mut Vec<Item>, Reg, Reg) -> Result<(), String>,
) -> Result<(), String> {
    let first = p.ends.first().copied().unwrap_or(t.rows).max(1);
    let [pr, psz, ps, pe] = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    items.ins().s_li(pr, 0u64);
    items.ins().s_li(psz, first);
    items.ins().s_li(pe, 0u64);
    // Phase: rows up to `pr`, tiles `[ps, pe)`.
    let mut phase = Vec::new();
    phase.ins().s_mov(ps, pe);
    phase.ins().s_alu(AluOp::Add, pr, pr, psz);
    phase.ins().s_alu(AluOp::Min, pr, pr, t.rows);
    if p.epilogue {
        phase.ins().s_alu(AluOp::Div, pe, pr, t.tile_rows);
        if t.per_row != 1 {
            phase.ins().s_alu(AluOp::Mul, pe, pe, t.per_row);
        }
        let mut last = Vec::new();
        last.ins().s_li(pe, t.tiles);
        phase.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Lt, pr, t.rows)],
            body: last,
        });
        phase.op(Vec::new()).xcore_wait(Pipe::Mte2, XC_ROWS);
        phase
            .op(Vec::new())
            .xcore_set(Pipe::Mte2, 0u64, XC_ROWS_MET);
        phase.op(Vec::new()).xcore_wait(Pipe::Mte2, XC_ROWS_MET);
    } else {
        phase.ins().s_alu(AluOp::Add, pe, pr, t.tile_rows - 1);
        phase.ins().s_alu(AluOp::Div, pe, pe, t.tile_rows);
        if t.per_row != 1 {
            phase.ins().s_alu(AluOp::Mul, pe, pe, t.per_row);
        }
        phase.ins().s_alu(AluOp::Min, pe, pe, t.tiles);
    }
    tile_loop(&mut phase, ps, pe)?;
    if p.ring.is_some() {
        // The phase's rows of the ring are read (the loads are MTE2's).
        phase
            .op(Vec::new())
            .xcore_set(Pipe::Mte2, 0u64, XC_PHASE_MET);
        phase.op(Vec::new()).xcore_wait(Pipe::Mte2, XC_PHASE_MET);
        phase.op(Vec::new()).xcore_set(Pipe::Mte2, 2u64, XC_PHASE);
    }
    let mut latch = Vec::new();
    if !p.epilogue {
        meet_and_signal(&mut phase, Pipe::Mte3);
        latch.ins().s_alu(AluOp::Add, psz, psz, psz);
    }
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, pr, t.rows)],
        body: phase,
        latch,
    });
    Ok(())
}

/// The vector stage joined to matmul stage `i` on `machine`, if any: its
/// index and phases, once the plan and the machine are checked for it.
pub fn joined(plan: &Plan, i: usize, machine: &Machine) -> Result<Option<(usize, Phases)>, String> {
    let Some(StageKind::MatMul(mm)) = plan.stages.get(i).map(|s| &s.kind) else {
        return Ok(None);
    };
    let MatMulSchedule::Cube(t) = &mm.schedule else {
        return Ok(None);
    };
    let internal = |e: String| format!("internal: {e}");
    let g = Geometry::of(mm)?;
    let rows = g.batches() * g.m;
    let (j, phases) = if t.epilogue > 0 {
        join::check_epilogue(plan, i).map_err(internal)?;
        let ends = epilogue_ends(t.epilogue, rows);
        // The inputs that read the product, which the ring holds (the
        // stage after is a row or elementwise stage: `check_epilogue`).
        let ring = (t.ring > 0).then(|| {
            let reads = plan.stages[i + 1].reads();
            let inputs = (0..reads.len())
                .filter(|&k| reads[k].buffer() == mm.out.buffer())
                .collect();
            (inputs, t.ring)
        });
        (
            i + 1,
            Phases {
                ends,
                epilogue: true,
                ring,
            },
        )
    } else if t.prologue > 0 {
        join::check(plan, i).map_err(internal)?;
        let ends = phase_ends(t.prologue, rows);
        (
            i - 1,
            Phases {
                ends,
                epilogue: false,
                ring: None,
            },
        )
    } else {
        return Ok(None);
    };
    if machine.organisation != Organisation::Split
        || u64::from(machine.sync.cross_core_flags) <= XC_ROWS_MET
    {
        return Err(format!(
            "internal: a joined stage needs a split machine with {} cross-core counters",
            XC_ROWS_MET + 1
        ));
    }
    let launch = plan.stages[i].block_dim * machine.aiv_per_core();
    if plan.stages[j].block_dim > launch {
        return Err(format!(
            "internal: a joined stage on {} vector cores of a launch of {launch}",
            plan.stages[j].block_dim
        ));
    }
    Ok(Some((j, phases)))
}

/// The vector stage joined to matmul stage `i`, if any (unchecked).
pub fn partner(plan: &Plan, i: usize) -> Option<usize> {
    let Some(StageKind::MatMul(m)) = plan.stages.get(i).map(|s| &s.kind) else {
        return None;
    };
    let MatMulSchedule::Cube(t) = &m.schedule else {
        return None;
    };
    if t.epilogue > 0 {
        Some(i + 1)
    } else if t.prologue > 0 {
        i.checked_sub(1)
    } else {
        None
    }
}

/// Whether vector stage `j` runs in the launch of a matmul next to it.
pub fn in_matmul_launch(plan: &Plan, j: usize) -> bool {
    let cube = |i: usize| match plan.stages.get(i).map(|s| &s.kind) {
        Some(StageKind::MatMul(m)) => match &m.schedule {
            MatMulSchedule::Cube(t) => Some(t),
            MatMulSchedule::Vector(_) => None,
        },
        _ => None,
    };
    cube(j + 1).is_some_and(|t| t.prologue > 0)
        || j.checked_sub(1)
            .and_then(cube)
            .is_some_and(|t| t.epilogue > 0)
}

/// Vector side: once `pipe`'s earlier work is done on every vector core
/// (they meet on `XC_PHASE_MET`), signal the cube core on `XC_PHASE`: the
/// end of a prologue's phase (MTE3, its stores), or of a ring's phase read
/// (MTE2, its loads).
fn meet_and_signal(items: &mut Vec<Item>, pipe: Pipe) {
    items.op(Vec::new()).xcore_set(pipe, 0u64, XC_PHASE_MET);
    items.op(Vec::new()).xcore_wait(pipe, XC_PHASE_MET);
    items.op(Vec::new()).xcore_set(pipe, 2u64, XC_PHASE);
}

/// `body` at a core's first unit at or after `v` (the unit in `unit`,
/// `block_dim` cube cores taking units in turn).
fn at_first_unit_from(unit: Reg, v: u64, block_dim: u64, body: Vec<Item>) -> Item {
    Item::Guard {
        skip_if: vec![
            Branch::new(Cond::Lt, unit, v),
            Branch::new(Cond::Ge, unit, v + block_dim),
        ],
        body,
    }
}

/// Cube side: the signals at the top of the unit in `unit` for the phases
/// whose writers all come before `writers` (of `units`), with `block_dim`
/// cube cores; each counts in `sent`.
pub fn unit_signals(unit: Reg, sent: Reg, writers: &[u64], block_dim: u64) -> Vec<Item> {
    let mut items = Vec::new();
    for &w in writers {
        let mut signal = Vec::new();
        signal.op(Vec::new()).xcore_set(Pipe::Fix, 2u64, XC_ROWS);
        signal.ins().s_alu(AluOp::Add, sent, sent, 1u64);
        items.push(at_first_unit_from(unit, w, block_dim, signal));
    }
    items
}

/// Cube side, with a ring, after the unit's setup: the unit's first row
/// `row = (gc − base) / (size · n)` of the result (flattened), its phase
/// `row / phase`, the signals of the phases before it not yet sent
/// (counted in `sent`), the waits (in FIX, ahead of the unit's writes) for
/// the phases up to two before it to be read (counted in `read`), and the
/// output address moved into the ring: `base + ((row mod ring) · n + col) ·
/// size`. `[a, b]` are scratch.
#[allow(clippy::too_many_arguments)]
pub fn ring_unit(
    items: &mut Vec<Item>,
    (gc, base): (Reg, Reg),
    (sent, read): (Reg, Reg),
    [a, b]: [Reg; 2],
    (n, size): (u64, u64),
    (phase, ring): (u64, u64),
) {
    // a = element offset, b = row, a = column.
    items.ins().s_alu(AluOp::Sub, a, gc, base);
    items.ins().s_alu(AluOp::Div, a, a, size);
    items.ins().s_alu(AluOp::Div, b, a, n);
    items.ins().s_alu(AluOp::Rem, a, a, n);
    // gc = base + ((row mod ring) · n + col) · size.
    items.ins().s_alu(AluOp::Rem, gc, b, ring);
    items.ins().s_alu(AluOp::Mul, gc, gc, n);
    items.ins().s_alu(AluOp::Add, gc, gc, a);
    items.ins().s_alu(AluOp::Mul, gc, gc, size);
    items.ins().s_alu(AluOp::Add, gc, gc, base);
    // b = the unit's phase; signal the phases before it.
    items.ins().s_alu(AluOp::Div, b, b, phase);
    ring_signals(items, (sent, read), a, b);
    // a = max(phase, 1) − 1: the phases read before this one's writes.
    items.ins().s_alu(AluOp::Max, a, b, 1u64);
    items.ins().s_alu(AluOp::Sub, a, a, 1u64);
    let mut wait = Vec::new();
    wait.op(Vec::new()).xcore_wait(Pipe::Fix, XC_PHASE);
    count_up(items, read, a, wait);
}

/// Cube side, with a ring: the signals of the phases from `sent` up to
/// `bound`, each counted in `sent`. A vector core's counter holds at most
/// [`join::MAX_PHASES`] pending signals, and a core whose units lie far
/// apart (a small product's one tile in phase 16) would send more at once,
/// so before signalling phase `q` the core waits (counted in `read`) for
/// the phases up to `q − MAX_PHASES` to be read: by then every vector core
/// has taken their signals. `a` is scratch.
pub fn ring_signals(
    items: &mut Vec<Item>,
    (sent, read): (Reg, Reg),
    a: Reg,
    bound: impl Into<Operand>,
) {
    let lag = join::MAX_PHASES as u64 - 1;
    let mut set = Vec::new();
    // a = max(q − lag, 0): the phases read before phase q's signal.
    set.ins().s_alu(AluOp::Max, a, sent, lag);
    set.ins().s_alu(AluOp::Sub, a, a, lag);
    let mut wait = Vec::new();
    wait.op(Vec::new()).xcore_wait(Pipe::Fix, XC_PHASE);
    count_up(&mut set, read, a, wait);
    set.op(Vec::new()).xcore_set(Pipe::Fix, 2u64, XC_ROWS);
    count_up(items, sent, bound, set);
}

/// Cube side, after the last unit: the signals of the `phases` not yet
/// sent (`sent` counts them).
pub fn last_signals(items: &mut Vec<Item>, sent: Reg, phases: u64) {
    let mut body = Vec::new();
    body.op(Vec::new()).xcore_set(Pipe::Fix, 2u64, XC_ROWS);
    count_up(items, sent, phases, body);
}

/// Cube side: the waits at the top of the unit in `unit`, for phases first
/// read at units `starts` (of `units`), with `block_dim` cube cores.
pub fn unit_waits(unit: Reg, starts: &[u64], units: u64, block_dim: u64) -> Vec<Item> {
    let mut items = Vec::new();
    for &v in starts.iter().filter(|&&v| v < units) {
        let mut wait = Vec::new();
        wait.op(Vec::new()).xcore_wait(Pipe::Mte2, XC_PHASE);
        items.push(at_first_unit_from(unit, v, block_dim, wait));
    }
    items
}
