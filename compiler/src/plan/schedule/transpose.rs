//! Scheduling transpose stages: tiles whose loads are 512-byte bursts along
//! the input's contiguous dim and whose stores are 64-element rows, shrunk
//! to fit UB and to give every vector core work.

use super::{Allocator, fits};
use tessera_ir::DType;
use tessera_ir::plan::transpose::{LANES, pitches, plane};
use tessera_ir::plan::{MemSpace, Transpose, TransposeLayout, TransposeSchedule};
use tessera_sim::Machine;

/// The UB buffers of a transpose stage with `tp × tq` tiles.
pub fn layout(dtype: DType, tp: u64, tq: u64, align: u64) -> TransposeLayout {
    let (pp, pq) = pitches(dtype, tp, tq);
    let s = dtype.size_bytes() as u64;
    let a_rows = tq.div_ceil(LANES) * LANES;
    let mut al = Allocator::default();
    let mut add = |bytes: u64, copies: u32| al.add(MemSpace::Ub, bytes, copies, align);
    TransposeLayout {
        a: add(a_rows * pp * s, 2),
        b: add(tp * pq * s, 2),
        idx: add(tq.div_ceil(LANES) * LANES * 4, 1),
    }
}

/// Chooses the tiles, blocks and buffers of a transpose stage; returns the
/// block count and the estimate.
pub fn schedule(t: &mut Transpose, machine: &Machine) -> Result<(u32, u64), String> {
    let (input, out) = (&t.input, &t.out);
    let pl = plane(input, out)?;
    let dtype = out.dtype;
    let s = dtype.size_bytes() as u64;
    let (np, nq) = (pl.dims[pl.p], pl.dims[pl.q]);
    let align = machine.memory.ub.align;
    let mut tp = (512 / s).min(np).max(1);
    let mut tq = LANES.min(nq).max(1);
    while !fits(&layout(dtype, tp, tq, align).named(), machine) && tp > 1 {
        tp = tp.div_ceil(2);
    }
    if !fits(&layout(dtype, tp, tq, align).named(), machine) {
        tq = 1;
    }
    if !fits(&layout(dtype, tp, tq, align).named(), machine) {
        t.schedule.layout = layout(dtype, tp, tq, align);
        return Err("even the smallest transpose tile does not fit UB".into());
    }
    let others: u64 = (0..pl.dims.len())
        .filter(|&d| d != pl.p && d != pl.q)
        .map(|d| pl.dims[d])
        .product();
    let tiles = others * np.div_ceil(tp) * nq.div_ceil(tq);
    let cores = u64::from(machine.vector_cores());
    let block_dim = tiles.min(cores).max(1);
    t.schedule = TransposeSchedule {
        tp,
        tq,
        tiles,
        layout: layout(dtype, tp, tq, align),
    };
    let dma = &machine.dma.gm_to_ub;
    let bytes = tp * tq * s;
    let load = f64::from(dma.fixed_cycles) + bytes as f64 / dma.bytes_per_cycle;
    let gather = (tp * tq.div_ceil(LANES)) as f64 * 2.0;
    let chip = 2.0 * bytes as f64 * block_dim as f64 / machine.gm.chip_bytes_per_cycle;
    let waves = tiles.div_ceil(block_dim);
    Ok((
        block_dim as u32,
        (waves as f64 * load.max(gather).max(chip) + load) as u64,
    ))
}
