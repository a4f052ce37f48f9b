//! Scheduling reduce stages: the largest tile that fits UB, a chunk of the
//! reduced axis per step (a split reduction when the axis is longer), and
//! enough tiles for every vector core.

use super::{Allocator, fits};
use tessera_ir::DType;
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::{MemSpace, Reduce, ReduceLayout, ReduceSchedule};
use tessera_sim::Machine;

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// The UB buffers of a reduce stage. Row form: `rows` rows of `pitch`
/// elements; column form: `rows` reduced rows of `pitch` columns.
pub fn layout(
    input: DType,
    acc: DType,
    out: DType,
    row: bool,
    rows: u64,
    pitch: u64,
    align: u64,
) -> ReduceLayout {
    let mut a = Allocator::default();
    let mut add = |bytes: u64, copies: u32| a.add(MemSpace::Ub, bytes, copies, align);
    let size = |d: DType| d.size_bytes() as u64;
    let tile = rows * pitch;
    let input_buf = add(tile * size(input), 2);
    let wide = (input != acc).then(|| add(tile * size(acc), 1));
    // Results per step: one per row (row form) or one per column.
    let results = if row { rows } else { pitch };
    let lanes = row.then(|| add(rows * 256, 1));
    ReduceLayout {
        input: input_buf,
        wide,
        lanes,
        part: add(results * size(acc), 1),
        acc: add(results * size(acc), 1),
        out: add(results * size(out), 2),
    }
}

/// Chooses the tiles, blocks and buffers of a reduce stage; returns the
/// block count and the estimate.
pub fn schedule(r: &mut Reduce, machine: &Machine) -> Result<(u32, u64), String> {
    let (outer, reduced, inner) = (r.outer, r.reduced, r.inner);
    let row = r.is_row();
    let (input, out, acc) = (&r.input, &r.out, r.acc);
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    let layout =
        |rows: u64, pitch: u64| layout(input.dtype, acc, out.dtype, row, rows, pitch, align);
    // (rows, pitch, chunk): row form — `rows` rows of a `chunk` of the reduced
    // axis (pitch = chunk rounded to whole repeats, at most 255 repeats);
    // column form — `rows` = chunk of reduced rows (≤ 255), pitch columns.
    let (rows, pitch, chunk) = if row {
        let chunk = reduced.min(255 * LANES);
        let pitch = round_up(chunk, LANES);
        let want = outer.div_ceil(cores).clamp(1, 255);
        let mut rows = want.next_power_of_two().min(255);
        while rows > 1 && !fits(&layout(rows, pitch).named(), machine) {
            rows /= 2;
        }
        let mut chunk = chunk;
        let mut pitch = pitch;
        while chunk > LANES && !fits(&layout(rows, pitch).named(), machine) {
            chunk = round_up(chunk / 2, LANES);
            pitch = chunk;
        }
        // Equal chunks of whole repeats where the axis allows (up to twice
        // the chunks): no partial last chunk, so no tile is filled with the
        // identity before its load, and loads overlap folds (the backend's
        // `may_be_partial`). A smaller chunk fits where a larger one does.
        // (`reduced / k` is whole repeats exactly where `k` divides
        // `reduced / LANES`.)
        if reduced > chunk && reduced.is_multiple_of(LANES) {
            let least = reduced.div_ceil(chunk);
            if let Some(k) = crate::arith::divisors(reduced / LANES)
                .into_iter()
                .find(|k| (least..=2 * least).contains(k))
            {
                chunk = reduced / k;
                pitch = chunk;
            }
        }
        (rows.min(outer).max(1), pitch, chunk)
    } else {
        let mut pitch = round_up(inner, LANES).min(4096);
        let mut rows = reduced.min(255);
        while !fits(&layout(rows, pitch).named(), machine) && (rows > 1 || pitch > LANES) {
            if rows >= pitch / LANES && rows > 1 {
                rows = rows.div_ceil(2);
            } else {
                pitch = round_up(pitch / 2, LANES);
            }
        }
        (rows, pitch, rows)
    };
    if !fits(&layout(rows, pitch).named(), machine) {
        r.schedule.layout = layout(rows, pitch);
        return Err("even the smallest reduction tile does not fit UB".into());
    }
    let tiles = if row {
        outer.div_ceil(rows)
    } else {
        outer * inner.div_ceil(pitch)
    };
    let block_dim = tiles.min(cores).max(1);
    let layout = layout(rows, pitch);
    let input_dtype = input.dtype;
    r.schedule = ReduceSchedule {
        rows,
        pitch,
        chunk,
        chunks: reduced.div_ceil(chunk),
        tiles,
        layout,
    };
    // Cost: per step, the load against the vector folds.
    let dma = &machine.dma.gm_to_ub;
    let bytes = rows * chunk.min(reduced) * input_dtype.size_bytes() as u64;
    let load = f64::from(dma.fixed_cycles) + bytes as f64 / dma.bytes_per_cycle;
    let vec = (rows * pitch / LANES) as f64 * 4.0;
    let steps = tiles.div_ceil(block_dim) * reduced.div_ceil(chunk);
    Ok((
        block_dim as u32,
        (steps as f64 * load.max(vec) + load) as u64,
    ))
}
