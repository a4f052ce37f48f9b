//! Scheduling reduce stages: the largest tile that fits UB, a chunk of the
//! reduced axis per step (a split reduction when the axis is longer), and
//! enough tiles for every vector core.

use super::fits;
use tessera_backend::npu::reduce::{self, LANES};
use tessera_ir::plan::{Stage, StageKind};
use tessera_sim::Machine;

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Chooses the tiles, blocks and buffers of a reduce stage.
pub fn schedule(stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    let StageKind::Reduce {
        input,
        out,
        outer,
        reduced,
        inner,
        acc,
        ..
    } = &stage.kind
    else {
        return Err("not a reduce stage".into());
    };
    let (outer, reduced, inner) = (*outer, *reduced, *inner);
    let row = reduce::is_row(inner);
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    let layout = |rows: u64, pitch: u64| {
        reduce::layout(input.dtype, *acc, out.dtype, row, rows, pitch, align)
    };
    // (rows, pitch, chunk): row form — `rows` rows of a `chunk` of the reduced
    // axis (pitch = chunk rounded to whole repeats, at most 255 repeats);
    // column form — `rows` = chunk of reduced rows (≤ 255), pitch columns.
    let (rows, pitch, chunk) = if row {
        let chunk = reduced.min(255 * LANES);
        let pitch = round_up(chunk, LANES);
        let want = outer.div_ceil(cores).clamp(1, 255);
        let mut rows = want.next_power_of_two().min(255);
        while rows > 1 && !fits(&layout(rows, pitch), machine) {
            rows /= 2;
        }
        let mut chunk = chunk;
        let mut pitch = pitch;
        while chunk > LANES && !fits(&layout(rows, pitch), machine) {
            chunk = round_up(chunk / 2, LANES);
            pitch = chunk;
        }
        (rows.min(outer).max(1), pitch, chunk)
    } else {
        let mut pitch = round_up(inner, LANES).min(4096);
        let mut rows = reduced.min(255);
        while !fits(&layout(rows, pitch), machine) && (rows > 1 || pitch > LANES) {
            if rows >= pitch / LANES && rows > 1 {
                rows = rows.div_ceil(2);
            } else {
                pitch = round_up(pitch / 2, LANES);
            }
        }
        (rows, pitch, rows)
    };
    if !fits(&layout(rows, pitch), machine) {
        stage.local = layout(rows, pitch);
        return Err("even the smallest reduction tile does not fit UB".into());
    }
    let tiles = if row {
        outer.div_ceil(rows)
    } else {
        outer * inner.div_ceil(pitch)
    };
    stage.block_dim = tiles.min(cores).max(1) as u32;
    stage.schedule.set("rows", rows);
    stage.schedule.set("pitch", pitch);
    stage.schedule.set("chunk", chunk);
    stage.schedule.set("chunks", reduced.div_ceil(chunk));
    stage.schedule.set("tiles", tiles);
    stage.local = layout(rows, pitch);
    // Cost: per step, the load against the vector folds.
    let dma = &machine.dma.gm_to_ub;
    let bytes = rows * chunk.min(reduced) * input.dtype.size_bytes() as u64;
    let load = f64::from(dma.fixed_cycles) + bytes as f64 / dma.bytes_per_cycle;
    let vec = (rows * pitch / LANES) as f64 * 4.0;
    let steps = tiles.div_ceil(u64::from(stage.block_dim)) * reduced.div_ceil(chunk);
    stage.estimate = (steps as f64 * load.max(vec) + load) as u64;
    Ok(())
}
