//! Scheduling elementwise stages (including copies).

use super::fits;
use tessera_backend::npu::elementwise;
use tessera_ir::plan::{Stage, StageKind};
use tessera_sim::Machine;

/// Elementwise: the largest tile that fits UB double-buffered, shrunk so
/// every vector core gets work, then rows × cols of the coalesced space.
pub fn schedule(stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    let StageKind::Elementwise { inputs, body, out } = &stage.kind else {
        return Err("not an elementwise stage".into());
    };
    let (dims, _) = elementwise::space(inputs, out);
    let n = dims.len();
    let (rows, cols) = if n >= 2 {
        (dims[n - 2], dims[n - 1])
    } else {
        (1, dims[0])
    };
    let outer: u64 = if n > 2 {
        dims[..n - 2].iter().product()
    } else {
        1
    };
    let total = outer * rows * cols;
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    let shape_for = |e: u64| -> (u64, u64, u64) {
        // (rows per tile, cols per tile, pitch)
        if cols >= e || rows == 1 {
            let l = e.min(cols).max(1);
            (1, l, elementwise::pitch(inputs, body, l))
        } else {
            let p = elementwise::pitch(inputs, body, cols);
            ((e / p).clamp(1, rows), cols, p)
        }
    };
    // The largest power-of-two tile that fits.
    let mut e = 1u64 << 16;
    let layout_for = |e: u64| {
        let (r, _, p) = shape_for(e);
        elementwise::layout(inputs, body, out, r, p, align)
    };
    while e > 32 && !fits(&layout_for(e), machine) {
        e /= 2;
    }
    if !fits(&layout_for(e), machine) {
        stage.local = layout_for(e);
        return Err("even the smallest tile does not fit UB".into());
    }
    // Leave no core idle when the tensor is small.
    let per_core = total.div_ceil(cores).max(1);
    if per_core < e {
        e = per_core.next_power_of_two().max(64).min(e);
    }
    let (r, l, p) = shape_for(e);
    let tiles = outer * rows.div_ceil(r) * cols.div_ceil(l);
    stage.block_dim = tiles.min(cores).max(1) as u32;
    stage.schedule.set("rows", r);
    stage.schedule.set("cols", l);
    stage.schedule.set("pitch", p);
    stage.schedule.set("tiles", tiles);
    stage.local = elementwise::layout(inputs, body, out, r, p, align);
    // Cost: per tile, the slowest of loads, compute, store and the chip GM share.
    let tile_elems = r * p;
    let bytes_in: u64 = inputs
        .iter()
        .map(|v| r * l * v.dtype.size_bytes() as u64)
        .sum();
    let bytes_out = r * l * out.dtype.size_bytes() as u64;
    let dma_in = &machine.dma.gm_to_ub;
    let dma_out = &machine.dma.ub_to_gm;
    let mte2 = inputs.len() as f64 * f64::from(dma_in.fixed_cycles)
        + bytes_in as f64 / dma_in.bytes_per_cycle;
    let mte3 = f64::from(dma_out.fixed_cycles) + bytes_out as f64 / dma_out.bytes_per_cycle;
    let lanes = 256 / 4;
    let vec = body.len() as f64 * (tile_elems.div_ceil(lanes) as f64) * 2.0;
    let chip =
        (bytes_in + bytes_out) as f64 * stage.block_dim as f64 / machine.gm.chip_bytes_per_cycle;
    let per_tile = mte2.max(mte3).max(vec).max(chip);
    let waves = tiles.div_ceil(u64::from(stage.block_dim));
    stage.estimate = (waves as f64 * per_tile + mte2 + mte3) as u64;
    Ok(())
}
