//! Scheduling transpose stages: tiles whose loads are 512-byte bursts along
//! the input's contiguous dim and whose stores are 64-element rows, shrunk
//! to fit UB and to give every vector core work.

use super::fits;
use tessera_backend::npu::transpose::{self, LANES};
use tessera_ir::plan::{Stage, StageKind};
use tessera_sim::Machine;

/// Chooses the tiles, blocks and buffers of a transpose stage.
pub fn schedule(stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    let StageKind::Transpose { input, out, .. } = &stage.kind else {
        return Err("not a transpose stage".into());
    };
    let pl = transpose::plane(input, out)?;
    let dtype = out.dtype;
    let s = dtype.size_bytes() as u64;
    let (np, nq) = (pl.dims[pl.p], pl.dims[pl.q]);
    let align = machine.memory.ub.align;
    let mut tp = (512 / s).min(np).max(1);
    let mut tq = LANES.min(nq).max(1);
    while !fits(&transpose::layout(dtype, tp, tq, align), machine) && tp > 1 {
        tp = tp.div_ceil(2);
    }
    if !fits(&transpose::layout(dtype, tp, tq, align), machine) {
        tq = 1;
    }
    if !fits(&transpose::layout(dtype, tp, tq, align), machine) {
        stage.local = transpose::layout(dtype, tp, tq, align);
        return Err("even the smallest transpose tile does not fit UB".into());
    }
    let others: u64 = (0..pl.dims.len())
        .filter(|&d| d != pl.p && d != pl.q)
        .map(|d| pl.dims[d])
        .product();
    let tiles = others * np.div_ceil(tp) * nq.div_ceil(tq);
    let cores = u64::from(machine.vector_cores());
    stage.block_dim = tiles.min(cores).max(1) as u32;
    stage.schedule.set("tp", tp);
    stage.schedule.set("tq", tq);
    stage.schedule.set("tiles", tiles);
    stage.local = transpose::layout(dtype, tp, tq, align);
    let dma = &machine.dma.gm_to_ub;
    let bytes = tp * tq * s;
    let load = f64::from(dma.fixed_cycles) + bytes as f64 / dma.bytes_per_cycle;
    let gather = (tp * tq.div_ceil(LANES)) as f64 * 2.0;
    let chip = 2.0 * bytes as f64 * f64::from(stage.block_dim) / machine.gm.chip_bytes_per_cycle;
    let waves = tiles.div_ceil(u64::from(stage.block_dim));
    stage.estimate = (waves as f64 * load.max(gather).max(chip) + load) as u64;
    Ok(())
}
