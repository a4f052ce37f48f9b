//! The cross-core protocol of a joined prologue (`tessera_ir::plan::prologue`):
//! a row stage on the vector cores of a cube matmul's mix launch, in phases
//! of the matmul's A rows.
//!
//! - Vector side, after each phase's tiles (their results leave through
//!   MTE3): `xcore.set mte3, 0, XC_PHASE_MET` and `xcore.wait mte3,
//!   XC_PHASE_MET` (every vector core has written its rows of the phase),
//!   then `xcore.set mte3, 2, XC_PHASE` (the cube core's counter rises once
//!   both its vector cores have set it).
//! - Cube side, at the top of each unit `u`: for each phase `s` whose first
//!   reading unit `v_s` has `v_s ≤ u < v_s + block_dim` — this core's first
//!   unit at or after `v_s` — `xcore.wait mte2, XC_PHASE`, ahead of the
//!   unit's loads in MTE2's queue.
//!
//! The counters are apart from split-K's ([`super::matmul`]), which a stage
//! with a prologue does not use.

use super::inst::InstBuilder;
use super::prog::{Branch, Build, Item};
use tessera_ir::plan::prologue::phase_ends;
use tessera_ir::plan::{MatMulSchedule, Plan, StageKind};
use tessera_sim::isa::{Cond, Reg};
use tessera_sim::{Machine, Organisation, Pipe};

/// Cross-core counter the vector cores meet at after a phase.
pub const XC_PHASE_MET: u64 = 2;
/// Cross-core counter by which a phase's rows are announced to a cube core.
pub const XC_PHASE: u64 = 3;

/// Why matmul stage `i` cannot run the stage before as its joined prologue
/// on `machine`, if it cannot.
pub fn check(plan: &Plan, i: usize, machine: &Machine) -> Result<(), String> {
    tessera_ir::plan::prologue::check(plan, i).map_err(|e| format!("internal: {e}"))?;
    if machine.organisation != Organisation::Split
        || u64::from(machine.sync.cross_core_flags) <= XC_PHASE
    {
        return Err(format!(
            "internal: a joined prologue needs a split machine with {} cross-core counters",
            XC_PHASE + 1
        ));
    }
    let (rows, mm) = (&plan.stages[i - 1], &plan.stages[i]);
    if rows.block_dim > mm.block_dim * machine.aiv_per_core() {
        return Err(format!(
            "internal: a joined prologue on {} vector cores of a launch of {}",
            rows.block_dim,
            mm.block_dim * machine.aiv_per_core()
        ));
    }
    Ok(())
}

/// The rows ready after each phase of matmul stage `i`'s joined prologue.
pub fn ends(plan: &Plan, i: usize) -> Result<Vec<u64>, String> {
    let kinds = (
        i.checked_sub(1)
            .and_then(|j| plan.stages.get(j))
            .map(|s| &s.kind),
        plan.stages.get(i).map(|s| &s.kind),
    );
    let (Some(StageKind::Rows(r)), Some(StageKind::MatMul(mm))) = kinds else {
        return Err("internal: a joined prologue without its stages".into());
    };
    let MatMulSchedule::Cube(t) = &mm.schedule else {
        return Err("internal: a joined prologue of a vector matmul".into());
    };
    Ok(phase_ends(t.prologue, r.outer))
}

/// Vector side: the end of a phase.
pub fn phase_done(items: &mut Vec<Item>) {
    items
        .op(Vec::new())
        .xcore_set(Pipe::Mte3, 0u64, XC_PHASE_MET);
    items.op(Vec::new()).xcore_wait(Pipe::Mte3, XC_PHASE_MET);
    items.op(Vec::new()).xcore_set(Pipe::Mte3, 2u64, XC_PHASE);
}

/// Cube side: the waits at the top of the unit in `unit`, for phases first
/// read at units `starts` (of `units`), with `block_dim` cube cores.
pub fn unit_waits(unit: Reg, starts: &[u64], units: u64, block_dim: u64) -> Vec<Item> {
    let mut items = Vec::new();
    for &v in starts.iter().filter(|&&v| v < units) {
        let mut wait = Vec::new();
        wait.op(Vec::new()).xcore_wait(Pipe::Mte2, XC_PHASE);
        items.push(Item::Guard {
            skip_if: vec![
                Branch::new(Cond::Lt, unit, v),
                Branch::new(Cond::Ge, unit, v + block_dim),
            ],
            body: wait,
        });
    }
    items
}
