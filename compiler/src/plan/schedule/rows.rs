//! Scheduling row stages: as many whole rows per tile as UB holds with its
//! inputs and result double-buffered, shrunk so every vector core gets
//! work. A row longer than UB holds is chunked: one row per tile, streamed
//! in the largest balanced chunks that fit, once per pass of the body. Rows
//! of at most `TRANSPOSE_MAX_N` elements are computed transposed.

use super::{Allocator, fits};
use tessera_ir::DType;
use tessera_ir::plan::elementwise::{SCRATCH_TABLE_BYTES, scratch};
use tessera_ir::plan::rows::{
    BLOCKWISE_MIN_REPEATS, CHUNK_ALIGN, Passes, ROW_ALIGN, TRANSPOSE_MAX_N, folds, folds_in_place,
    pipelines, row_slots, stream_copies, temp_slots, widens,
};
use tessera_ir::plan::{
    MemSpace, Rows, RowsInput, RowsInst, RowsLayout, RowsOp, RowsSchedule, Width,
};
use tessera_sim::Machine;

/// Bytes of one value of width `w` and element size `s` in a `rows ×
/// pitch` tile.
fn bytes_of(w: Width, s: u64, rows: u64, pitch: u64) -> u64 {
    match w {
        Width::Full => rows * pitch * s,
        Width::Row => row_slots(rows) * s,
    }
}

/// The f32 scratch tiles the body's composites need: how many, and the
/// bytes of each for tiles of `tile4` bytes of f32.
fn scratch_tiles(r: &Rows, tile4: u64) -> (u32, u64) {
    let need = |i: &RowsInst| match &i.op {
        RowsOp::Ew(e) => scratch(e, i.dtype),
        RowsOp::Reduce(_) | RowsOp::Expand => Default::default(),
    };
    let tiles = r.body.iter().map(|i| need(i).tiles).max().unwrap_or(0);
    let table = r.body.iter().any(|i| need(i).table);
    let bytes = if table {
        tile4.max(SCRATCH_TABLE_BYTES)
    } else {
        tile4
    };
    (tiles as u32, bytes)
}

/// The UB buffers of a row stage with `rows`-row tiles of `pitch` (chunked:
/// one row, chunks of `pitch`).
pub fn layout(r: &Rows, rows: u64, pitch: u64, chunked: bool, align: u64) -> RowsLayout {
    layout_with(r, rows, pitch, chunked, rows, align)
}

/// [`layout`] with a wide buffer of `wide_rows` rows (reductions of narrow
/// values convert that many rows at a time).
fn layout_with(
    r: &Rows,
    rows: u64,
    pitch: u64,
    chunked: bool,
    wide_rows: u64,
    align: u64,
) -> RowsLayout {
    let mut a = Allocator::default();
    let mut add = |bytes: u64, copies: u32| a.add(MemSpace::Ub, bytes, copies, align);
    // Chunked, one row per pass is in flight: per-row state has a copy per
    // pass.
    let widths: Vec<Width> = r.inputs.iter().map(|i| i.width).collect();
    let piped = chunked && pipelines(&r.body, &widths);
    let in_flight = if piped {
        Passes::of(&r.body, &widths).count as u32
    } else {
        1
    };
    let streamed = stream_copies(piped);
    let inputs = r
        .inputs
        .iter()
        .map(|i| {
            // Constants and repeated rows are loaded once (chunked, a
            // repeated row streams with the rest; a per-row input is loaded
            // once per row).
            let repeated = i.repeats_one_row();
            let once = i.view.buffer().is_none() || (repeated && !chunked);
            let copies = match (once, chunked, i.width) {
                (true, _, _) => 1,
                (false, true, Width::Row) => in_flight,
                (false, true, Width::Full) => streamed,
                (false, false, _) => 2,
            };
            // A repeated row is one row (whole rows: read by every row).
            let held = if repeated && !chunked && i.view.buffer().is_some() {
                1
            } else {
                rows
            };
            add(
                bytes_of(i.width, i.view.dtype.size_bytes() as u64, held, pitch),
                copies,
            )
        })
        .collect();
    // Temporaries share slots by liveness.
    let (slot_of, slots) = temp_slots(&r.body, chunked, true);
    let slot_bufs: Vec<_> = slots
        .iter()
        .map(|&(w, size)| {
            let copies = if w == Width::Row { in_flight } else { 1 };
            add(bytes_of(w, size as u64, rows, pitch), copies)
        })
        .collect();
    let temps = slot_of.iter().map(|&s| slot_bufs[s]).collect();
    let (ow, od) = r
        .body
        .last()
        .map_or((Width::Full, r.out.dtype), |i| (i.width, i.dtype));
    let out_copies = match (ow, chunked) {
        (Width::Row, _) => in_flight.max(2),
        (Width::Full, true) => streamed,
        (Width::Full, false) => 2,
    };
    let out = add(
        bytes_of(ow, od.size_bytes() as u64, rows, pitch),
        out_copies,
    );
    let tile4 = rows * pitch * 4;
    let (tiles, scr_bytes) = scratch_tiles(r, tile4);
    let scratch = (0..tiles).map(|_| add(scr_bytes, 1)).collect();
    // Reductions of narrower values convert to their accumulator first.
    let wide = widens(&r.body, &r.inputs).then(|| add(wide_rows.clamp(1, rows) * pitch * 4, 1));
    let reduces = r.reduces();
    // Chunked, every reduction keeps its lanes across chunks, and one more
    // repeat takes a chunk's fold.
    let lanes = if chunked {
        let n = r
            .body
            .iter()
            .filter(|i| matches!(i.op, RowsOp::Reduce(_)))
            .count() as u64;
        u64::from(in_flight) * (n + 1) * 256
    } else {
        row_slots(rows) * 256
    };
    RowsLayout {
        inputs,
        temps,
        out,
        scratch,
        wide,
        lanes: reduces.then(|| add(lanes, 1)),
        acc: reduces.then(|| add(row_slots(rows) * 4, 1)),
        // One block buffer per expansion (an elided one is read later).
        blocks: r.expands().then(|| {
            let expands = r.body.iter().filter(|i| i.op == RowsOp::Expand).count() as u64;
            add(expands * row_slots(rows) * 32, 1)
        }),
        raw: vec![None; r.inputs.len()],
        cols: None,
        idx: None,
        part: None,
    }
}

/// Element sizes a transposed stage gathers: its streamed and repeated
/// full inputs' and a full result's.
pub fn gathered_sizes(r: &Rows) -> Vec<u64> {
    let mut sizes: Vec<u64> = r
        .inputs
        .iter()
        .filter(|i| i.width == Width::Full && i.view.buffer().is_some())
        .map(|i| i.view.dtype.size_bytes() as u64)
        .collect();
    if let Some(last) = r.body.last()
        && last.width == Width::Full
    {
        sizes.push(last.dtype.size_bytes() as u64);
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// The UB buffers of a transposed row stage with `rows`-row tiles: every
/// full value is `n` column runs of `rows` elements, a per-row value one
/// run.
pub fn transposed_layout(r: &Rows, rows: u64, align: u64) -> RowsLayout {
    let mut a = Allocator::default();
    let mut add = |bytes: u64, copies: u32| a.add(MemSpace::Ub, bytes, copies, align);
    let n = r.n;
    let of = |w: Width, size: u64| match w {
        Width::Full => n * rows * size,
        Width::Row => rows * size,
    };
    let mut raw = Vec::with_capacity(r.inputs.len());
    let mut inputs = Vec::with_capacity(r.inputs.len());
    for i in &r.inputs {
        let s = i.view.dtype.size_bytes() as u64;
        let repeated = i.repeats_one_row();
        match (i.width, i.view.buffer().is_some()) {
            (Width::Full, true) => {
                // Gathered into columns from the rows as loaded (a
                // repeated row: once, from one row).
                inputs.push(add(of(Width::Full, s), 1));
                raw.push(Some(if repeated {
                    add(n * s, 1)
                } else {
                    add(rows * n * s, 2)
                }));
            }
            (Width::Row, true) => {
                inputs.push(add(of(Width::Row, s), 2));
                raw.push(None);
            }
            (w, false) => {
                inputs.push(add(of(w, s), 1));
                raw.push(None);
            }
        }
    }
    let (slot_of, slots) = temp_slots(&r.body, false, false);
    let slot_bufs: Vec<_> = slots
        .iter()
        .map(|&(w, size)| add(of(w, size as u64), 1))
        .collect();
    let temps = slot_of.iter().map(|&s| slot_bufs[s]).collect();
    let (ow, od) = r
        .body
        .last()
        .map_or((Width::Full, r.out.dtype), |i| (i.width, i.dtype));
    let so = od.size_bytes() as u64;
    let out = add(of(ow, so), 2);
    let cols = (ow == Width::Full).then(|| add(of(Width::Full, so), 1));
    let tile4 = n * rows * 4;
    let (tiles, scr_bytes) = scratch_tiles(r, tile4);
    let scratch = (0..tiles).map(|_| add(scr_bytes, 1)).collect();
    let wide = widens(&r.body, &r.inputs).then(|| add(tile4, 1));
    let acc = r.reduces().then(|| add(rows * 4, 1));
    // Per gathered size: the offsets into columns, back into rows, and
    // one more run to build them (and a repeated row's) in.
    let sizes = gathered_sizes(r).len() as u64;
    let idx = (sizes > 0).then(|| add(sizes * 3 * tile4, 1));
    RowsLayout {
        inputs,
        temps,
        out,
        scratch,
        wide,
        lanes: None,
        acc,
        blocks: None,
        raw,
        cols,
        idx,
        part: None,
    }
}

/// Schedules a row stage of short rows transposed: as many rows per tile
/// (a multiple of [`ROW_ALIGN`]) as fit, shrunk so every core gets work.
/// `None` when not even one repeat of rows fits.
fn transposed(r: &mut Rows, machine: &Machine) -> Option<(u32, u64)> {
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    // A tile is loaded as one burst of rows, or, when rows are apart in GM
    // (a slice of longer rows), as a burst per row packed in UB: that needs
    // rows of whole UB alignment units; otherwise the stage takes whole rows.
    // Rows that repeat with a period take whole rows too.
    let packed = |i: &RowsInput| {
        let rs = i.row_stride();
        i.width == Width::Row
            || (i.period().is_none()
                && (rs == 0
                    || rs == r.n
                    || (r.n * i.view.dtype.size_bytes() as u64).is_multiple_of(align)))
    };
    if !r.inputs.iter().all(packed) {
        return None;
    }
    let per_core = r.outer.div_ceil(cores).div_ceil(ROW_ALIGN) * ROW_ALIGN;
    // Reductions fold runs of `rows` in single instructions.
    let mut rows = per_core.clamp(ROW_ALIGN, 255 * ROW_ALIGN);
    while rows > ROW_ALIGN && !fits(&transposed_layout(r, rows, align).named(), machine) {
        rows = (rows / 2).div_ceil(ROW_ALIGN) * ROW_ALIGN;
    }
    let lay = transposed_layout(r, rows, align);
    if !fits(&lay.named(), machine) {
        return None;
    }
    let tiles = r.outer.div_ceil(rows);
    let block_dim = blocks(tiles, machine);
    r.schedule = RowsSchedule {
        rows,
        pitch: rows,
        chunks: 1,
        transposed: true,
        pipelined: false,
        blockwise: false,
        tiles,
        layout: lay,
    };
    // Cost: per tile, the slowest of loads, compute (the body over the
    // tile, the gathers in and out) and stores.
    let n = r.n;
    let bytes = |w: Width, d: DType| match w {
        Width::Full => rows * n * d.size_bytes() as u64,
        Width::Row => rows * d.size_bytes() as u64,
    };
    let streamed: Vec<_> = r
        .inputs
        .iter()
        .filter(|i| i.view.buffer().is_some() && !i.repeats_one_row())
        .collect();
    let bytes_in: u64 = streamed.iter().map(|i| bytes(i.width, i.view.dtype)).sum();
    let bytes_out = r.body.last().map_or(0, |i| bytes(i.width, i.dtype));
    let dma_in = &machine.dma.gm_to_ub;
    let dma_out = &machine.dma.ub_to_gm;
    let mte2 = streamed.len() as f64 * f64::from(dma_in.fixed_cycles)
        + bytes_in as f64 / dma_in.bytes_per_cycle;
    let mte3 = f64::from(dma_out.fixed_cycles) + bytes_out as f64 / dma_out.bytes_per_cycle;
    let reps = (n * rows).div_ceil(64) as f64;
    let gathers = streamed.len() as f64 + 1.0;
    let vec = (r.body.len() as f64 + gathers) * (reps * 2.0 + 30.0);
    let per_tile = mte2.max(mte3).max(vec);
    let waves = tiles.div_ceil(block_dim);
    // Building the offsets: six dependent instructions per run, two runs
    // per gathered size.
    let setup = gathered_sizes(r).len() as f64 * 12.0 * (reps * 2.0 + 30.0);
    Some((
        block_dim as u32,
        (setup + waves as f64 * per_tile + mte2 + mte3) as u64,
    ))
}

/// Appends the blockwise partials buffer (`part`, `bytes` long) after
/// every other buffer of a layout.
fn add_part(lay: &mut RowsLayout, bytes: u64, align: u64) {
    let end = lay.named().iter().map(|(_, b)| b.end()).max().unwrap_or(0);
    let mut a = Allocator::default();
    a.add(MemSpace::Ub, end, 1, align);
    lay.part = Some(a.add(MemSpace::Ub, bytes, 1, align));
}

/// The layout of a chunked stage with chunks of `chunk` elements; with
/// `part`, the partials buffer of blockwise folds (an eighth of a chunk of
/// f32).
fn chunk_layout(r: &Rows, chunk: u64, part: bool, align: u64) -> RowsLayout {
    let mut lay = layout(r, 1, chunk, true, align);
    if part {
        add_part(&mut lay, chunk / 2, align);
    }
    lay
}

/// The largest chunk (a multiple of [`CHUNK_ALIGN`] that folds in at most
/// 255 repeats of 64 lanes) whose buffers fit UB (with `part`: and the
/// blockwise partials buffer).
fn largest_chunk(r: &Rows, machine: &Machine, part: bool) -> Option<u64> {
    let align = machine.memory.ub.align;
    let top = (255 * ROW_ALIGN / CHUNK_ALIGN) * CHUNK_ALIGN;
    let fits_at = |c: u64| fits(&chunk_layout(r, c, part, align).named(), machine);
    if !fits_at(CHUNK_ALIGN) {
        return None;
    }
    // Binary search over multiples of CHUNK_ALIGN.
    let (mut lo, mut hi) = (1, top / CHUNK_ALIGN);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits_at(mid * CHUNK_ALIGN) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo * CHUNK_ALIGN)
}

/// Per input of `r`, whether it is resident in L2 (a buffer `workspace`
/// marks).
pub fn resident(r: &Rows, workspace: &[bool]) -> Vec<bool> {
    r.inputs
        .iter()
        .map(|i| {
            i.view
                .buffer()
                .is_some_and(|b| workspace.get(b) == Some(&true))
        })
        .collect()
}

/// The block count of a row stage of `tiles` tiles: a tile per vector core
/// at most.
pub fn blocks(tiles: u64, machine: &Machine) -> u64 {
    tiles.min(u64::from(machine.vector_cores())).max(1)
}

/// Chooses the tiles, blocks and buffers of a row stage; returns the block
/// count and the estimate. `resident[k]`: input `k` is a buffer an earlier
/// stage wrote, whose lines L2 holds (it costs no HBM bandwidth).
pub fn schedule(r: &mut Rows, machine: &Machine, resident: &[bool]) -> Result<(u32, u64), String> {
    if r.n <= TRANSPOSE_MAX_N {
        // Transposed, unless whole rows are estimated faster (a few rows:
        // the transposed form's offsets cost more than they save).
        let mut t = r.clone();
        if let Some(done) = transposed(&mut t, machine) {
            let mut w = r.clone();
            let whole = whole_rows(&mut w, machine, resident);
            match whole {
                Ok(wd) if wd.1 <= done.1 => {
                    *r = w;
                    return Ok(wd);
                }
                _ => {
                    *r = t;
                    return Ok(done);
                }
            }
        }
    }
    whole_rows(r, machine, resident)
}

/// Schedules a row stage in whole rows (chunked when a row does not fit).
fn whole_rows(r: &mut Rows, machine: &Machine, resident: &[bool]) -> Result<(u32, u64), String> {
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    let pitch = r.n.div_ceil(ROW_ALIGN) * ROW_ALIGN;
    // Enough tiles for every core, then as many rows as fit (reductions
    // fold at most 255 rows at once, and a row at most 255 repeats).
    let want = r.outer.div_ceil(cores).clamp(1, 248);
    // A tile of `rows` rows, converting for reductions as many of them at
    // once as fit (fewer rows at a time cost a barrier per group).
    let wide_for = |rows: u64| {
        (1..=rows)
            .rev()
            .find(|&w| {
                fits(
                    &layout_with(r, rows, pitch, false, w, align).named(),
                    machine,
                )
            })
            .unwrap_or(1)
    };
    let fits_at = |rows: u64| {
        fits(
            &layout_with(r, rows, pitch, false, wide_for(rows), align).named(),
            machine,
        )
    };
    // The most rows that fit (binary search: fitting is monotone in rows).
    let rows = if fits_at(want) {
        want
    } else {
        let (mut lo, mut hi) = (1, want - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if fits_at(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    // A tile loads each input's rows as one strided copy: it must not cross
    // the period of an input whose rows repeat.
    let rows = r
        .inputs
        .iter()
        .filter_map(RowsInput::period)
        .fold(rows, |rows, (p, ..)| {
            (1..=rows).rev().find(|d| p % d == 0).unwrap_or(1)
        });
    let lay = layout_with(r, rows, pitch, false, wide_for(rows), align);
    if !fits(&lay.named(), machine) || pitch > 255 * ROW_ALIGN {
        return chunked(r, machine, lay, resident);
    }
    let tiles = r.outer.div_ceil(rows);
    let block_dim = blocks(tiles, machine);
    r.schedule = RowsSchedule {
        rows,
        pitch,
        chunks: 1,
        transposed: false,
        pipelined: false,
        blockwise: false,
        tiles,
        layout: lay,
    };
    // Cost: per tile, the slowest of loads, compute and stores.
    let bytes = |w: Width, d: DType| match w {
        Width::Full => rows * r.n * d.size_bytes() as u64,
        Width::Row => rows * d.size_bytes() as u64,
    };
    let bytes_in: u64 = r
        .inputs
        .iter()
        .filter(|i| i.view.buffer().is_some())
        .map(|i| bytes(i.width, i.view.dtype))
        .sum();
    let bytes_out = r.body.last().map_or(0, |i| bytes(i.width, i.dtype));
    let dma_in = &machine.dma.gm_to_ub;
    let dma_out = &machine.dma.ub_to_gm;
    let mte2 = r.inputs.len() as f64 * f64::from(dma_in.fixed_cycles)
        + bytes_in as f64 / dma_in.bytes_per_cycle;
    let mte3 = f64::from(dma_out.fixed_cycles) + bytes_out as f64 / dma_out.bytes_per_cycle;
    let vec = r.body.len() as f64 * (rows * pitch).div_ceil(64) as f64 * 2.0 + rows as f64 * 8.0;
    let moved = traffic(r, resident, |i| bytes(i.width, i.view.dtype), bytes_out);
    if blockwise(r, rows, pitch, moved, machine) {
        // Converted rows fold in place; reductions of values that are not
        // scratch fold into `part`, after the other buffers, when it fits
        // (else they fold as usual).
        r.schedule.blockwise = true;
        let mut with_part = r.schedule.layout.clone();
        if needs_part(r, pitch, false) {
            add_part(&mut with_part, rows * pitch / 2, align);
        }
        if fits(&with_part.named(), machine) {
            r.schedule.layout = with_part;
        }
    }
    let per_tile = mte2.max(mte3).max(vec);
    let waves = tiles.div_ceil(block_dim);
    Ok((
        block_dim as u32,
        (waves as f64 * per_tile + mte2 + mte3) as u64,
    ))
}

/// The GM bytes a tile (or chunk) moves, `(hbm, moved)`: its streamed
/// inputs at `bytes` each (not constants, not a repeated row, which is read
/// once per block) and `out` for its result; `hbm` leaves out the inputs an
/// earlier stage wrote (`resident`), whose reads are L2 hits.
fn traffic(r: &Rows, resident: &[bool], bytes: impl Fn(&RowsInput) -> u64, out: u64) -> (u64, u64) {
    let streamed = |hbm: bool| -> u64 {
        r.inputs
            .iter()
            .enumerate()
            .filter(|&(k, i)| {
                i.view.buffer().is_some()
                    && !i.repeats_one_row()
                    && !(hbm && resident.get(k).copied().unwrap_or(false))
            })
            .map(|(_, i)| bytes(i))
            .sum()
    };
    (streamed(true) + out, streamed(false) + out)
}

/// Whether a row stage folds its reductions block by block: when it has
/// one long enough (32 repeats of its accumulator) and its vector work per
/// tile exceeds its GM time — of its [`traffic`], what crosses HBM at its
/// core's share of the chip's bandwidth, and everything at its core's DMA
/// rate, whichever is slower — so that fewer vector cycles shorten the
/// stage. (A GM-bound stage gains nothing, and the extra instruction and
/// barrier per group of rows shift its loads and stores.)
/// The vector work counts each full instruction over the tile at its
/// dtype's lanes (a converted reduction: the conversion and the fold of
/// f32 repeats), 2 cycles a repeat, and each per-row one as a short
/// instruction.
fn blockwise(r: &Rows, rows: u64, pitch: u64, moved: (u64, u64), machine: &Machine) -> bool {
    let (vec, gm, long_sum) = balance(r, rows, pitch, moved, machine);
    long_sum && vec > VECTOR_BOUND_MARGIN * gm
}

/// Whether a scheduled row stage of whole rows is bound by its GM traffic
/// rather than its vector work, by `blockwise`'s measures of a tile.
/// `resident[k]`: as for [`schedule`].
pub fn gm_bound(r: &Rows, machine: &Machine, resident: &[bool]) -> bool {
    let (rows, pitch) = (r.schedule.rows, r.schedule.pitch);
    let bytes = |w: Width, d: DType| match w {
        Width::Full => rows * r.n * d.size_bytes() as u64,
        Width::Row => rows * d.size_bytes() as u64,
    };
    let out = r.body.last().map_or(0, |i| bytes(i.width, i.dtype));
    let moved = traffic(r, resident, |i| bytes(i.width, i.view.dtype), out);
    let (vec, gm, _) = balance(r, rows, pitch, moved, machine);
    vec < gm
}

/// A tile's vector cycles and GM cycles ([`blockwise`]), and whether it
/// has a reduction long enough to fold block by block.
fn balance(
    r: &Rows,
    rows: u64,
    pitch: u64,
    (hbm, moved): (u64, u64),
    machine: &Machine,
) -> (f64, f64, bool) {
    let reps = |d: DType| (rows * pitch * d.size_bytes() as u64).div_ceil(256) as f64;
    let mut vec = 0.0;
    let mut long_sum = false;
    for inst in &r.body {
        vec += match (folds(&r.body, &r.inputs, inst), inst.width) {
            (Some((src, acc)), _) => {
                long_sum |= long_fold(acc, pitch);
                if acc != src {
                    2.0 * 2.0 * reps(acc)
                } else {
                    2.0 * reps(src)
                }
            }
            (None, Width::Full) => 2.0 * reps(inst.dtype),
            (None, Width::Row) => 24.0,
        };
    }
    let share = machine.gm.chip_bytes_per_cycle / f64::from(machine.vector_cores().max(1));
    let gm = (hbm as f64 / share).max(moved as f64 / machine.dma.gm_to_ub.bytes_per_cycle);
    (vec, gm, long_sum)
}

/// How much a row stage's estimated vector work per tile must exceed its
/// GM time for it to count as vector-bound (the estimate is coarse; near
/// the balance, faster vector work mostly reorders loads and stores).
const VECTOR_BOUND_MARGIN: f64 = 1.2;

/// Whether a blockwise stage has a reduction long enough to fold block by
/// block whose operand is not scratch ([`folds_in_place`]; chunked, in the
/// pass that folds it): its partials go to `part`.
fn needs_part(r: &Rows, pitch: u64, chunked: bool) -> bool {
    let widths: Vec<Width> = r.inputs.iter().map(|i| i.width).collect();
    let passes = Passes::of(&r.body, &widths);
    (0..r.body.len()).any(|j| {
        let with = if chunked {
            passes.streamed(&r.body, passes.of[j].max(0) as u64)
        } else {
            vec![true; r.body.len()]
        };
        folds(&r.body, &r.inputs, &r.body[j]).is_some_and(|(_, acc)| {
            long_fold(acc, pitch) && !folds_in_place(&r.body, &r.inputs, j, &with)
        })
    })
}

/// Whether a row of `pitch` elements folded in `acc` is long enough to
/// fold block by block.
fn long_fold(acc: DType, pitch: u64) -> bool {
    pitch * acc.size_bytes() as u64 / 256 >= BLOCKWISE_MIN_REPEATS
}

/// The full inputs pass `q` of a chunked stage loads per chunk of `chunk`
/// elements: how many, and their bytes.
fn pass_bytes(r: &Rows, passes: &Passes, q: u64, chunk: u64) -> (usize, u64) {
    let streamed = passes.streamed(&r.body, q);
    let mut read = std::collections::BTreeSet::new();
    for (j, inst) in r.body.iter().enumerate() {
        if streamed[j] {
            for a in &inst.args {
                if let tessera_ir::plan::EwArg::Input(k) = *a
                    && r.inputs[k].view.buffer().is_some()
                    && r.inputs[k].width == Width::Full
                {
                    read.insert(k);
                }
            }
        }
    }
    let bytes = read
        .iter()
        .map(|&k| chunk * r.inputs[k].view.dtype.size_bytes() as u64)
        .sum();
    (read.len(), bytes)
}

/// Schedules a row stage whose rows do not fit UB whole: one row per tile
/// in balanced chunks of the largest size that fits. `whole` is the
/// one-row layout that did not fit (kept for the capacity error).
fn chunked(
    r: &mut Rows,
    machine: &Machine,
    whole: RowsLayout,
    resident: &[bool],
) -> Result<(u32, u64), String> {
    let cores = u64::from(machine.vector_cores());
    let align = machine.memory.ub.align;
    let Some(most) = largest_chunk(r, machine, false) else {
        r.schedule.layout = whole;
        return Err(format!(
            "a chunk of {CHUNK_ALIGN} elements of a row of {} does not fit UB with the stage's buffers",
            r.n
        ));
    };
    let balanced = |most: u64| {
        let chunks = r.n.div_ceil(most).max(1);
        let chunk = r.n.div_ceil(chunks).div_ceil(CHUNK_ALIGN) * CHUNK_ALIGN;
        (chunk, r.n.div_ceil(chunk))
    };
    let widths: Vec<Width> = r.inputs.iter().map(|i| i.width).collect();
    let passes = Passes::of(&r.body, &widths);
    let (mut chunk, mut chunks) = balanced(most);
    // Blockwise folds when the chunk's vector work exceeds its GM time
    // (each streamed input counted once, as later passes hit L2);
    // reductions of values that are not scratch then fold into `part`, for
    // which the chunks shrink when it is needed and fits (else they fold as
    // usual).
    let full = |w: Width, d: DType| match w {
        Width::Full => chunk * d.size_bytes() as u64,
        Width::Row => 0,
    };
    let out = r.body.last().map_or(0, |i| full(i.width, i.dtype));
    let moved = traffic(r, resident, |i| full(i.width, i.view.dtype), out);
    let blockwise = blockwise(r, 1, chunk, moved, machine);
    let mut part = false;
    if blockwise
        && needs_part(r, chunk, true)
        && let Some(most) = largest_chunk(r, machine, true)
        && needs_part(r, balanced(most).0, true)
    {
        (chunk, chunks) = balanced(most);
        part = true;
    }
    let lay = chunk_layout(r, chunk, part, align);
    let tiles = r.outer;
    let block_dim = tiles.min(cores).max(1);
    r.schedule = RowsSchedule {
        rows: 1,
        pitch: chunk,
        chunks,
        transposed: false,
        pipelined: pipelines(&r.body, &widths),
        blockwise,
        tiles,
        layout: lay,
    };
    // Cost: per pass, per chunk the slowest of its loads, compute and
    // stores (later passes re-read what L2 holds).
    let dma_in = &machine.dma.gm_to_ub;
    let dma_out = &machine.dma.ub_to_gm;
    let mut per_tile = 0.0;
    for q in 0..passes.count {
        let streamed = passes.streamed(&r.body, q);
        let insts = streamed.iter().filter(|&&s| s).count() as f64;
        let (loads, bytes_in) = pass_bytes(r, &passes, q, chunk);
        let mte2 = loads as f64 * f64::from(dma_in.fixed_cycles)
            + bytes_in as f64 / dma_in.bytes_per_cycle;
        let last = q + 1 == passes.count;
        let mte3 = match r.body.last() {
            Some(i) if last && i.width == Width::Full => {
                f64::from(dma_out.fixed_cycles)
                    + (chunk * i.dtype.size_bytes() as u64) as f64 / dma_out.bytes_per_cycle
            }
            _ => 0.0,
        };
        let vec = insts * chunk.div_ceil(64) as f64 * 2.0;
        per_tile += chunks as f64 * mte2.max(mte3).max(vec) + 60.0;
    }
    let waves = tiles.div_ceil(block_dim);
    Ok((block_dim as u32, (waves as f64 * per_tile) as u64))
}
