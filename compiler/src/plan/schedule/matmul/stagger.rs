//! Staggered tail strips ([`CubeSchedule::stagger`]): on a split machine,
//! every cube core ends each whole tile at the same moment, and FixPipe's
//! writes of its output, all new lines, then share HBM: 24 cores draining
//! 64 KiB of f16 at once take 2 048 cycles at 768 bytes a cycle, against
//! 1 224 at FixPipe's own rate, while MTE2, its L1 copies full, waits.
//! Where the last round is cut into strips, the odd cores may take their
//! strip second, which puts them a strip behind the even ones, so that
//! half the cores drain at a time (the backend's `staggered_tile_loop`).
//!
//! It pays where a round's drain over HBM outlasts FixPipe's and is a
//! share of a tile worth the strip's move: at least a twentieth. f16
//! 2048³ on 910b-like 123 445 → 121 343 cycles, 4096³ 820 675 → 810 389;
//! 4096 × 4096 × 11008 (a drain 2 % of a tile) ran 880 cycles slower, and
//! on 910-like, whose epilogue goes through UB and MTE3, 0.3–0.8 % slower.
//! An i32 output (`gemm_i8`, 256 × 128 tiles, B loaded two stages deep)
//! ran 0.5 % slower for reasons not yet understood, so only 2-byte outputs
//! are staggered.

use super::cube_core_parts;
#[cfg(doc)]
use tessera_ir::plan::CubeSchedule;
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{MatMul, MatMulSchedule, Plan, StageKind};
use tessera_sim::{Machine, Organisation};

/// A drain worth staggering is at least this share of a tile.
const SHARE: f64 = 1.0 / 20.0;

/// Sets [`CubeSchedule::stagger`] on every cube matmul of `plan` where it
/// pays on `machine`, and clears it elsewhere. Idempotent; after the joins
/// (a joined stage is not staggered).
///
/// [`CubeSchedule::stagger`]: tessera_ir::plan::CubeSchedule::stagger
pub fn stagger_strips(plan: &mut Plan, machine: &Machine) {
    for stage in &mut plan.stages {
        let cores = u64::from(stage.block_dim);
        let StageKind::MatMul(mm) = &mut stage.kind else {
            continue;
        };
        let pays = pays(mm, cores, machine);
        if let MatMulSchedule::Cube(t) = &mut mm.schedule {
            t.stagger = pays;
        }
    }
}

fn pays(mm: &MatMul, cores: u64, machine: &Machine) -> bool {
    let (MatMulSchedule::Cube(t), Ok(g)) = (&mm.schedule, Geometry::of(mm)) else {
        return false;
    };
    let Some(fix) = machine.dma.l0c_to_gm.as_ref() else {
        return false;
    };
    if machine.organisation != Organisation::Split
        || g.out.size_bytes() != 2
        || t.staggered(&g, cores).is_none()
    {
        return false;
    }
    let bytes = (t.base_m * t.base_n * g.out.size_bytes() as u64) as f64;
    let over_hbm = cores as f64 * bytes / machine.gm.chip_bytes_per_cycle;
    let at_rate = f64::from(fix.fixed_cycles) + bytes / fix.bytes_per_cycle;
    let tile = cube_core_parts(&g, t, machine).tile;
    over_hbm > at_rate && over_hbm >= SHARE * tile
}
