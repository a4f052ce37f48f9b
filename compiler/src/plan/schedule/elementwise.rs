//! Scheduling elementwise stages (including copies): the tiles and the UB
//! layout.

use super::{Allocator, fits};
use tessera_ir::plan::elementwise::{
    SCRATCH_TABLE_BYTES, held, patterns, pitch, scratch, space, temp_slots,
};
use tessera_ir::plan::{
    BroadcastBufs, Elementwise, EwInputBufs, EwInst, EwLayout, EwSchedule, MemSpace, Pattern,
    Source, View,
};
use tessera_sim::Machine;

/// The UB buffers of an elementwise stage with `rows × pitch` tiles, the
/// `held` inputs ([`held`]) in one copy.
pub fn layout(
    inputs: &[View],
    body: &[EwInst],
    out: &View,
    (rows, pitch): (u64, u64),
    (held, stored): (&[bool], &[usize]),
    align: u64,
) -> EwLayout {
    let tile = rows * pitch;
    let mut a = Allocator::default();
    let mut add = |bytes: u64, copies: u32| a.add(MemSpace::Ub, bytes, copies, align);
    let size = |v: &View| v.dtype.size_bytes() as u64;
    let mut bufs = Vec::new();
    for (v, p) in inputs.iter().zip(patterns(inputs, out)) {
        let s = size(v);
        if let Source::Constant(_) = v.source {
            bufs.push(EwInputBufs {
                tile: add(tile * s, 1),
                held: false,
                broadcast: None,
            });
            continue;
        }
        let is_held = held.get(bufs.len()).copied().unwrap_or(false);
        let tile = add(tile * s, if is_held { 1 } else { 2 });
        let broadcast = match p {
            Pattern::Column | Pattern::Scalar => {
                let n = if p == Pattern::Column { rows } else { 1 };
                Some(BroadcastBufs {
                    staging: add(n * s, 2),
                    blocks: add(256 * n.div_ceil(8), 2),
                    // 1-byte values are replicated as i32 (`brcb` takes 16/32 bits).
                    widened: (s == 1).then(|| add(n * 4, 2)),
                })
            }
            Pattern::RowMajor | Pattern::Strided => None,
        };
        bufs.push(EwInputBufs {
            tile,
            held: is_held,
            broadcast,
        });
    }
    // Temporaries share slots by liveness; a stored result has its own,
    // double-buffered.
    let (slot_of, sizes) = temp_slots(body, stored);
    let slots: Vec<_> = sizes
        .iter()
        .map(|&(s, own)| add(tile * s as u64, if own { 2 } else { 1 }))
        .collect();
    let temps = slot_of.iter().map(|&s| slots[s]).collect();
    let out_buf = add(tile * size(out), 2);
    let need = body.iter().map(|i| scratch(&i.op, i.dtype));
    let tiles = need.clone().map(|s| s.tiles).max().unwrap_or(0);
    let bytes = if need.clone().any(|s| s.table) {
        (tile * 4).max(SCRATCH_TABLE_BYTES)
    } else {
        tile * 4
    };
    EwLayout {
        inputs: bufs,
        temps,
        out: out_buf,
        scratch: (0..tiles).map(|_| add(bytes, 1)).collect(),
    }
}

/// Elementwise: the largest tile that fits UB double-buffered, shrunk so
/// every vector core gets work, then rows × cols of the coalesced space.
/// Returns the block count and the estimate.
pub fn schedule(e: &mut Elementwise, machine: &Machine) -> Result<(u32, u64), String> {
    let Elementwise {
        inputs,
        body,
        out,
        also,
        schedule,
    } = e;
    let stored: Vec<usize> = also.iter().map(|(j, _)| *j).collect();
    let (dims, _) = space(inputs, out);
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
    let align = machine.memory.ub.align;
    let shape_for = |e: u64| -> (u64, u64, u64) {
        // (rows per tile, cols per tile, pitch)
        if cols >= e || rows == 1 {
            // Rows split into equal pieces of at most `e` (a multiple of 64).
            let pieces = cols.div_ceil(e.max(1));
            let l = cols.div_ceil(pieces).div_ceil(64) * 64;
            let l = l.min(e).min(cols).max(1);
            (1, l, pitch(inputs, body, l))
        } else {
            let p = pitch(inputs, body, cols);
            ((e / p).clamp(1, rows), cols, p)
        }
    };
    let cores = u64::from(machine.vector_cores());
    // Tiles, blocks and held inputs of a shape.
    let split = |(r, l): (u64, u64)| {
        let tiles = outer * rows.div_ceil(r) * cols.div_ceil(l);
        let blocks = tiles.min(cores).max(1);
        (tiles, blocks, held(inputs, out, cols.div_ceil(l), blocks))
    };
    let layout_for = |e: u64| {
        let (r, l, p) = shape_for(e);
        layout(
            inputs,
            body,
            out,
            (r, p),
            (&split((r, l)).2, &stored),
            align,
        )
    };
    // The largest tile (a multiple of 64 elements, at most 64 Ki) that fits.
    let ok = |e: u64| fits(&layout_for(e).named(), machine);
    let mut e = 64u64;
    if !ok(e) {
        e = 32;
        if !ok(e) {
            schedule.layout = layout_for(e);
            return Err("even the smallest tile does not fit UB".into());
        }
    } else {
        let (mut lo, mut hi) = (1u64, 1u64 << 10);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if ok(mid * 64) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        e = lo * 64;
    }
    // Leave no core idle when the tensor is small.
    let per_core = total.div_ceil(cores).max(1);
    if per_core < e {
        let smaller = per_core.next_power_of_two().max(64).min(e);
        if ok(smaller) {
            e = smaller;
        }
    }
    let (r, l, p) = shape_for(e);
    let (tiles, block_dim, _) = split((r, l));
    *schedule = EwSchedule {
        rows: r,
        cols: l,
        pitch: p,
        tiles,
        layout: layout_for(e),
    };
    // Cost: per tile, the slowest of loads, compute, store and the chip GM share.
    let tile_elems = r * p;
    // Held inputs are loaded once per block, not per tile.
    let streamed = inputs
        .iter()
        .zip(&schedule.layout.inputs)
        .filter(|(v, b)| !b.held && matches!(v.source, Source::Buffer(_)));
    let loads = streamed.clone().count();
    let bytes_in: u64 = streamed
        .map(|(v, _)| r * l * v.dtype.size_bytes() as u64)
        .sum();
    let bytes_out: u64 = std::iter::once(&*out)
        .chain(also.iter().map(|(_, v)| v))
        .map(|v| r * l * v.dtype.size_bytes() as u64)
        .sum();
    let dma_in = &machine.dma.gm_to_ub;
    let dma_out = &machine.dma.ub_to_gm;
    let mte2 =
        loads as f64 * f64::from(dma_in.fixed_cycles) + bytes_in as f64 / dma_in.bytes_per_cycle;
    let mte3 = (1 + also.len()) as f64 * f64::from(dma_out.fixed_cycles)
        + bytes_out as f64 / dma_out.bytes_per_cycle;
    let lanes = 256 / 4;
    let vec = body.len() as f64 * (tile_elems.div_ceil(lanes) as f64) * 2.0;
    let chip = (bytes_in + bytes_out) as f64 * block_dim as f64 / machine.gm.chip_bytes_per_cycle;
    let per_tile = mte2.max(mte3).max(vec).max(chip);
    let waves = tiles.div_ceil(block_dim);
    Ok((
        block_dim as u32,
        (waves as f64 * per_tile + mte2 + mte3) as u64,
    ))
}
