//! Row stages of whole rows kept in UB.
//!
//! Each loop iteration handles two tiles of `rows` rows on two copies of
//! the streamed buffers (ping-pong, as the elementwise stage). A tile's
//! full inputs are loaded row by row (`pitch` apart in UB; a row stride of
//! 0 repeats one row), per-row inputs as one burst, constants are filled
//! once. Then the body runs in order: elementwise instructions over the
//! whole tile (padding included) or over the per-row values; a reduction
//! converts its operand to the f32/i32 accumulator if narrower, folds each
//! row's whole repeats lane-wise (`vec.asum`), adds the partial last repeat
//! under a mask (so padding never enters), folds all rows' lanes at once
//! (`vec.rsum`) and, for `mean`, scales by `1/n`; an expansion replicates
//! the per-row values into 32-byte blocks (`vec.brcb`) and copies each
//! block along its row. The result's valid rows and columns are stored.

use super::{
    Opening, finish, opening, replicate, row_offset, scalar_form, scalar_only, scalar_rows, size,
    spread, tile_rows,
};
use crate::npu::inst::InstBuilder;
use crate::npu::inst::Operand;
use crate::npu::prog::{Access, Build, Item};
use crate::npu::reduce::{
    combine, fold_across, fold_block_partials, fold_lanes, fold_repeats, identity,
};
use crate::npu::tiles::{double_buffered, double_buffered_ahead};
use crate::npu::vector::{self, Opnd, Seq, VBuf, bin_op, dt};
use crate::npu::{Ctx, join};
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::rows::{
    BLOCKWISE_MIN_REPEATS, accumulator, elided, folds_in_place, row_slots,
};
use tessera_ir::plan::{EwArg, EwOp, Rows, RowsOp, Width};
use tessera_ir::{DType, ReduceOp};
use tessera_sim::isa::{AluOp, Reg};

/// Generates a row stage of whole rows.
pub(super) fn generate(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
    let Rows {
        outer,
        n,
        inputs,
        body,
        out,
        schedule,
    } = r;
    let (outer, n) = (*outer, *n);
    let layout = &schedule.layout;
    let (rows, pitch) = (schedule.rows, schedule.pitch);
    if pitch % LANES != 0 || pitch < n {
        return Err("internal: a row pitch that is not whole repeats of the row".into());
    }
    let tile = rows * pitch;
    let slots = row_slots(rows);
    let count = |w: Width| match w {
        Width::Full => tile,
        Width::Row => slots,
    };
    let phases = ctx.phases.clone();
    let ring = phases.as_ref().and_then(|p| p.ring.clone());
    let mut items = Vec::new();
    let Opening {
        bi,
        bd,
        bases,
        base_out,
    } = opening(ctx, r, &mut items, count)?;
    // Full inputs that repeat one row (a `[n]` vector): the same for every
    // tile and every row, so one row loaded once; the ops that read one run
    // row by row.
    let repeated = |k: usize| {
        let i = &inputs[k];
        i.repeats_one_row() && bases[k].is_some()
    };
    for (k, i) in inputs.iter().enumerate() {
        if let (true, Some(base)) = (repeated(k), bases[k]) {
            let s = size(i.view.dtype);
            let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
            items
                .op(vec![(Access::Write, dst.region(pitch * s))])
                .mte2_gm_ub(dst.addr, base, 1u64, n * s, 0u64, pitch * s);
        }
    }
    let elided = elided(body);
    // With a scalar-operand instruction, loads go a tile ahead: its
    // register load waits for the vector pipe mid-tile, too late to issue
    // the next tile's loads in time. (Otherwise the scalar unit runs ahead
    // on its own, and loads issued a tile early only crowd GM.) Such a
    // stage takes two more registers: the third step's and the operand's.
    let ahead = (0..body.len()).any(|j| scalar_form(body, &elided, j, false).is_some());
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    let (tc, sreg) = if ahead {
        (ctx.regs.get()?, ctx.regs.get()?)
    } else {
        (tb, tb)
    };
    items.ins().s_mov(tt, bi);
    items.ins().s_alu(AluOp::Add, step, bd, bd);
    let [row0, rcur, len, addr] = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    let scratch: Vec<VBuf> = layout
        .scratch
        .iter()
        .map(|l| VBuf::of(l, 0, DType::F32))
        .collect();
    let tile_step = |half: u32, t_reg: Reg| -> Result<(Vec<Item>, Vec<Item>), String> {
        // Loads.
        let mut loads = Vec::new();
        tile_rows(&mut loads, (row0, rcur), t_reg, rows, outer);
        let h = &mut loads;
        for (k, i) in inputs.iter().enumerate() {
            let Some(base) = bases[k] else { continue };
            if repeated(k) {
                continue;
            }
            let s = size(i.view.dtype);
            let dst = VBuf::of(&layout.inputs[k], half, i.view.dtype);
            match i.width {
                Width::Full => {
                    // (A tile does not cross a periodic input's period, nor
                    // a ring's end.)
                    let rs = i.row_stride();
                    match ring.as_ref().filter(|(ins, _)| ins.contains(&k)) {
                        Some(&(_, rows)) => {
                            h.ins().s_alu(AluOp::Rem, addr, row0, rows);
                            h.ins().s_alu(AluOp::Mul, addr, addr, rs * s);
                        }
                        None => row_offset(h, addr, len, row0, i),
                    }
                    h.ins().s_alu(AluOp::Add, addr, addr, base);
                    h.op(vec![(Access::Write, dst.region(tile * s))])
                        .mte2_gm_ub(dst.addr, addr, rcur, n * s, rs * s, pitch * s);
                }
                Width::Row => {
                    h.ins().s_alu(AluOp::Mul, addr, row0, s);
                    h.ins().s_alu(AluOp::Add, addr, addr, base);
                    h.ins().s_alu(AluOp::Mul, len, rcur, s);
                    h.op(vec![(Access::Write, dst.region(slots * s))])
                        .mte2_gm_ub(dst.addr, addr, 1u64, len, 0u64, 0u64);
                }
            }
        }
        let mut h = Vec::new();
        tile_rows(&mut h, (row0, rcur), t_reg, rows, outer);
        // The body. An elided expansion's users read its blocks (or,
        // in the scalar-operand form, its per-row values).
        let mut results: Vec<VBuf> = Vec::with_capacity(body.len());
        let mut blocks_of: Vec<Option<VBuf>> = Vec::with_capacity(body.len());
        // An elided expansion's per-row values (its operand).
        let mut values_of: Vec<Option<VBuf>> = Vec::with_capacity(body.len());
        let mut expands = 0u64;
        for (j, inst) in body.iter().enumerate() {
            let dst = match layout.temps.get(j) {
                Some(t) => VBuf::of(t, 0, inst.dtype),
                None => VBuf::of(&layout.out, half, inst.dtype),
            };
            let mut args: Vec<VBuf> = Vec::with_capacity(inst.args.len());
            let mut block_args: Vec<Option<VBuf>> = Vec::with_capacity(inst.args.len());
            let one_row: Vec<bool> = inst
                .args
                .iter()
                .map(|a| matches!(*a, EwArg::Input(k) if repeated(k)))
                .collect();
            // Operand `k` of row `row`: a repeated row is the same run.
            let row_of = |v: VBuf, k: usize, row: u64| {
                if one_row[k] {
                    v
                } else {
                    v.offset(row * pitch * size(v.dtype))
                }
            };
            for a in &inst.args {
                let (v, b) = match *a {
                    EwArg::Input(k) => (
                        inputs
                            .get(k)
                            .map(|v| VBuf::of(&layout.inputs[k], half, v.view.dtype))
                            .ok_or("internal: a row input out of range")?,
                        None,
                    ),
                    EwArg::Inst(k) => (
                        *results
                            .get(k)
                            .ok_or("internal: forward reference in a row body")?,
                        blocks_of.get(k).copied().flatten(),
                    ),
                };
                args.push(v);
                block_args.push(b);
            }
            let mut my_blocks = None;
            let mut my_values = None;
            match &inst.op {
                RowsOp::Ew(EwOp::Binary(_)) if scalar_form(body, &elided, j, false).is_some() => {
                    let Some((op, x, negate)) = scalar_form(body, &elided, j, false) else {
                        return Err("internal: a scalar form that vanished".into());
                    };
                    let vals = inst
                        .args
                        .iter()
                        .find_map(|a| match *a {
                            EwArg::Inst(k) => values_of.get(k).copied().flatten(),
                            EwArg::Input(_) => None,
                        })
                        .ok_or("internal: a scalar operand without its per-row values")?;
                    scalar_rows(
                        &mut h,
                        (op, negate),
                        sreg,
                        dst,
                        args[x],
                        one_row[x],
                        vals,
                        (rows, pitch),
                    );
                }
                RowsOp::Ew(EwOp::Binary(b)) if block_args.iter().any(Option::is_some) => {
                    // Row by row, the expanded operand read from its
                    // 32-byte block.
                    let op = bin_op(*b)?;
                    let s = size(dst.dtype);
                    for row in 0..rows {
                        let opnd = |k: usize| match block_args[k] {
                            Some(bc) => Opnd::Block(bc.offset(32 * row)),
                            None => Opnd::Run(row_of(args[k], k, row)),
                        };
                        let ops = [Opnd::Run(dst.offset(row * pitch * s)), opnd(0), opnd(1)];
                        vector::emit(&mut h, pitch, &ops, |bld, v, rep, m| {
                            bld.vec_bin(op, dt(dst.dtype), v[0], v[1], v[2], rep, m)
                        });
                    }
                }
                RowsOp::Ew(op) if one_row.iter().any(|&r| r) => {
                    // Row by row (independent runs, no barrier between).
                    for row in 0..rows {
                        let row_args: Vec<VBuf> = args
                            .iter()
                            .enumerate()
                            .map(|(k, &v)| row_of(v, k, row))
                            .collect();
                        let d = dst.offset(row * pitch * size(dst.dtype));
                        vector::emit_op(&mut h, pitch, op, d, &row_args, &scratch)?;
                    }
                }
                RowsOp::Ew(op) => {
                    let n = count(inst.width);
                    super::ew(&mut h, n, (r, inst, op), dst, &args, &scratch)?;
                }
                RowsOp::Reduce(op) => {
                    let src = *args
                        .first()
                        .ok_or("internal: a reduction without operand")?;
                    reduce_rows(
                        &mut h,
                        layout,
                        *op,
                        dst,
                        src,
                        rows,
                        pitch,
                        n,
                        schedule.blockwise,
                        folds_in_place(body, inputs, j, &vec![true; body.len()]),
                    )?;
                }
                RowsOp::Expand => {
                    let src = *args
                        .first()
                        .ok_or("internal: an expansion without operand")?;
                    let blocks = layout
                        .blocks
                        .as_ref()
                        .ok_or("internal: an expansion without its block buffer")?;
                    let bc = VBuf::of(blocks, 0, src.dtype).offset(expands * slots * 32);
                    expands += 1;
                    if elided[j] {
                        my_values = Some(src);
                        if !scalar_only(body, &elided, j, false) {
                            replicate(&mut h, bc, src, slots);
                            my_blocks = Some(bc);
                        }
                    } else {
                        replicate(&mut h, bc, src, slots);
                        spread(&mut h, dst, bc, rows, pitch);
                    }
                }
            }
            results.push(dst);
            blocks_of.push(my_blocks);
            values_of.push(my_values);
        }
        // Store.
        let last = body.last().ok_or("internal: an empty row body")?;
        let so = size(out.dtype);
        let ob = VBuf::of(&layout.out, half, out.dtype);
        match last.width {
            Width::Full => {
                h.ins().s_alu(AluOp::Mul, addr, row0, n * so);
                h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                h.op(vec![(Access::Read, ob.region(tile * so))]).mte3_ub_gm(
                    addr,
                    ob.addr,
                    rcur,
                    n * so,
                    pitch * so,
                    n * so,
                );
            }
            Width::Row => {
                h.ins().s_alu(AluOp::Mul, addr, row0, so);
                h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                h.ins().s_alu(AluOp::Mul, len, rcur, so);
                h.op(vec![(Access::Read, ob.region(slots * so))])
                    .mte3_ub_gm(addr, ob.addr, 1u64, len, 0u64, 0u64);
            }
        }
        Ok((loads, h))
    };
    // The tiles in one loop, or, joined to a matmul, a loop per phase
    // inside a loop over the phases (`join::phase_loop`).
    let tile_loop = |items: &mut Vec<Item>, start: Option<Reg>, end: Operand| {
        if let Some(start) = start {
            items.ins().s_alu(AluOp::Add, tt, bi, start);
        }
        if ahead {
            double_buffered_ahead(items, (tt, tb, tc), bd, step, end, &tile_step)
        } else {
            double_buffered(items, (tt, tb), bd, step, end, |half, t_reg| {
                let (mut loads, work) = tile_step(half, t_reg)?;
                loads.extend(work);
                Ok(loads)
            })
        }
    };
    match &phases {
        None => tile_loop(&mut items, None, schedule.tiles.into())?,
        Some(p) => {
            let shape = join::TileRows {
                rows: outer,
                tile_rows: rows,
                per_row: 1,
                tiles: schedule.tiles,
            };
            join::phase_loop(ctx, &mut items, p, shape, |h, start, end| {
                tile_loop(h, Some(start), end.into())
            })?;
        }
    }
    Ok(items)
}

/// `dst[row]` = `op` over the first `n` elements of row `row` of `src`.
#[allow(clippy::too_many_arguments)]
fn reduce_rows(
    h: &mut Vec<Item>,
    layout: &tessera_ir::plan::RowsLayout,
    op: ReduceOp,
    dst: VBuf,
    src: VBuf,
    rows: u64,
    pitch: u64,
    n: u64,
    blockwise: bool,
    in_place: bool,
) -> Result<(), String> {
    let acc_dt = accumulator(op, src.dtype);
    let slots = row_slots(rows);
    let sa = size(acc_dt);
    // A narrower operand is converted into the wide buffer, as many rows
    // at a time as it holds (its fold of one group and the conversion of
    // the next need no barrier between them).
    let (wide, group) = if src.dtype == acc_dt {
        (None, rows)
    } else {
        let w = layout
            .wide
            .as_ref()
            .ok_or("internal: a widening reduction without its wide buffer")?;
        let group = (w.bytes / (pitch * sa)).clamp(1, rows);
        (Some(VBuf::of(w, 0, acc_dt)), group)
    };
    let lanes_buf = VBuf::of(
        layout
            .lanes
            .as_ref()
            .ok_or("internal: a reduction without its lanes buffer")?,
        0,
        acc_dt,
    );
    let acc = VBuf::of(
        layout
            .acc
            .as_ref()
            .ok_or("internal: a reduction without its accumulator")?,
        0,
        acc_dt,
    );
    // Elements of one repeat of the accumulator.
    let per = 256 / size(acc_dt);
    let (full, tail) = (n / per, n % per);
    // A converted row (in the wide buffer, scratch) is first summed block by
    // block in place (`vec.bsum`, a cycle a repeat, into a run of `full · 8`
    // partial sums at its start), and the partials folded across repeats:
    // cheaper than folding every repeat once there are enough of them.
    // A converted row (scratch), or a value nothing else reads
    // (`in_place`), takes its partials in place; another row's go to
    // `part`, an eighth of its f32 bytes per row.
    let part = match (wide.is_some() || in_place, layout.part.as_ref()) {
        (false, Some(p)) => Some(VBuf::of(p, 0, acc_dt)),
        (true, _) | (false, None) => None,
    };
    let blockwise = blockwise
        && (wide.is_some() || in_place || part.is_some())
        && full >= BLOCKWISE_MIN_REPEATS;
    let partials_of = |r: u64, from: VBuf| match part {
        Some(p) => p.offset(r * pitch / 2),
        None => from,
    };
    let mut row = 0;
    while row < rows {
        let n_rows = group.min(rows - row);
        let from_of = |r: u64| match wide {
            None => src.offset(r * pitch * sa),
            Some(w) => w.offset((r % group) * pitch * sa),
        };
        if let Some(w) = wide {
            let from = src.offset(row * pitch * size(src.dtype));
            Seq {
                items: h,
                n: n_rows * pitch,
            }
            .cvt(w, from);
        }
        if blockwise {
            for r in row..row + n_rows {
                let from = from_of(r);
                let to = partials_of(r, from);
                fold_block_partials(h, op, acc_dt, to, from, full, per);
            }
        }
        for r in row..row + n_rows {
            let from = from_of(r);
            let lane = lanes_buf.offset(r * 256);
            // What folds across repeats: the row's whole repeats, or their
            // partials (whole repeats of them, then a partial one).
            let (folded, reps, rest) = if blockwise {
                (partials_of(r, from), (full * 8) / per, (full * 8) % per)
            } else {
                (from, full, 0)
            };
            if reps > 0 {
                fold_repeats(h, fold_across(op), acc_dt, lane, folded, reps, 8, per);
            } else {
                Seq { items: h, n: per }.dup(lane, identity(op, acc_dt));
            }
            if rest > 0 {
                Seq { items: h, n: rest }.bin(combine(op), lane, lane, folded.offset(reps * 256));
            }
            if tail > 0 {
                // The partial last repeat, under a mask of its valid lanes.
                Seq { items: h, n: tail }.bin(combine(op), lane, lane, from.offset(full * 256));
            }
        }
        row += n_rows;
    }
    if op != ReduceOp::Mean && dst.dtype == acc_dt {
        // Straight into the result.
        fold_lanes(h, op, dst, lanes_buf, rows, per);
    } else {
        fold_lanes(h, op, acc, lanes_buf, rows, per);
        finish(h, op, dst, acc, slots, n);
    }
    Ok(())
}
