//! The reduce stage: `out[o, i] = reduce over r of input[o, r, i]` on the
//! vector unit.
//!
//! Two shapes of the same loop:
//! - *row* (`inner == 1`): a tile is `rows` rows × a chunk of the reduced
//!   axis; each row is folded lane-wise across its repeats (`vec.asum`),
//!   then one `vec.rsum` folds every row's lanes at once;
//! - *column* (`inner > 1`): a tile is a chunk of reduced rows × a chunk of
//!   the kept inner columns; `vec.asum` with the row pitch as repeat stride
//!   folds the rows of 64 columns per instruction.
//!
//! Tiles are padded with the reduction's identity (0, −∞/MIN, +∞/MAX)
//! before each load, so whole repeats never see garbage. f16/bf16 and i8
//! inputs are converted to the f32/i32 accumulator first (the spec's single
//! rounding). A reduced axis longer than one tile is split into chunks
//! accumulated in UB (a split reduction), so any length fits. The loop runs
//! over (tile, chunk) steps, two per iteration on two buffer copies; the
//! accumulator is reset at a tile's first chunk and finished (mean
//! division, cast) and stored at its last.

use super::Ctx;
use super::inst::{InstBuilder, VecOperand, lanes};
use super::prog::{Access, Branch, Build, Item};
use super::tiles::double_buffered;
use super::vector::{Seq, VBuf, dt, scalar};
use tessera_ir::plan::Reduce;
use tessera_ir::plan::reduce::LANES;
use tessera_ir::{DType, ReduceOp};
use tessera_sim::isa::{ARed, AluOp, BRed, BinOp, Cond, RRed, Reg, ScaOp, Scal};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// The identity of a reduction in a dtype.
pub(super) fn identity(op: ReduceOp, d: DType) -> Scal {
    let x = match (op, d.is_float()) {
        (ReduceOp::Sum | ReduceOp::Mean, _) => 0.0,
        (ReduceOp::Max, true) => f64::NEG_INFINITY,
        (ReduceOp::Min, true) => f64::INFINITY,
        (ReduceOp::Max, false) => d.int_range().map_or(0, |r| r.0) as f64,
        (ReduceOp::Min, false) => d.int_range().map_or(0, |r| r.1) as f64,
    };
    scalar(d, x)
}

/// How partial results combine (`acc = acc <op> part`).
pub(super) fn combine(op: ReduceOp) -> BinOp {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => BinOp::Add,
        ReduceOp::Max => BinOp::Max,
        ReduceOp::Min => BinOp::Min,
    }
}

/// The lane-wise fold across repeats.
pub(super) fn fold_across(op: ReduceOp) -> ARed {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => ARed::Sum,
        ReduceOp::Max => ARed::Max,
        ReduceOp::Min => ARed::Min,
    }
}

/// The fold of each 32-byte block of a repeat to one value.
pub(super) fn fold_blocks(op: ReduceOp) -> BRed {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => BRed::Sum,
        ReduceOp::Max => BRed::Max,
        ReduceOp::Min => BRed::Min,
    }
}

/// The fold of each repeat to one value.
fn fold_repeat(op: ReduceOp) -> RRed {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => RRed::Sum,
        ReduceOp::Max => RRed::Max,
        ReduceOp::Min => RRed::Min,
    }
}

/// Whether some tile of a reduce stage is not filled by its load: a chunk
/// short of the pitch, a last chunk of the reduced axis, a last group of
/// rows (row form) or of columns (column form).
fn may_be_partial(r: &Reduce) -> bool {
    let s = &r.schedule;
    if r.is_row() {
        s.chunk != s.pitch || !r.reduced.is_multiple_of(s.chunk) || !r.outer.is_multiple_of(s.rows)
    } else {
        !r.reduced.is_multiple_of(s.rows) || !r.inner.is_multiple_of(s.pitch)
    }
}

/// Generates a reduce stage.
pub fn generate(ctx: &mut Ctx<'_>, r: &Reduce) -> Result<Vec<Item>, String> {
    let Reduce {
        op,
        ref input,
        ref out,
        outer,
        reduced,
        inner,
        acc,
        divisor,
        ref schedule,
    } = *r;
    let layout = &schedule.layout;
    let row = r.is_row();
    let (rows, pitch, chunk) = (schedule.rows, schedule.pitch, schedule.chunk);
    let (si, sa, so) = (size(input.dtype), size(acc), size(out.dtype));
    let chunks = reduced.div_ceil(chunk);
    // Tiles: row form over groups of `rows` outer rows; column form over
    // (outer, column chunk of `pitch`).
    let (tiles, col_chunks) = if row {
        (outer.div_ceil(rows), 1)
    } else {
        let cc = inner.div_ceil(pitch);
        (outer * cc, cc)
    };
    let steps_per_tile = chunks;
    let mut items = Vec::new();
    let (bi, bd) = ctx.block(&mut items)?;
    let base_in = ctx.gm_base(&mut items, input)?;
    let base_out = ctx.gm_base(&mut items, out)?;
    for (r, v) in [(base_in, input), (base_out, out)] {
        let off = v.offset * size(v.dtype);
        if off != 0 {
            items.ins().s_alu(AluOp::Add, r, r, off);
        }
    }
    // This block's steps: its tiles are bi, bi + bd, …; each has `chunks` steps.
    let my_tiles = ctx.regs.get()?;
    let nsteps = ctx.regs.get()?;
    let s = ctx.regs.get()?;
    let sb = ctx.regs.get()?;
    // my_tiles = ceil((tiles - bi) / bd) (bi < bd ≤ tiles).
    items.ins().s_li(my_tiles, tiles);
    items.ins().s_alu(AluOp::Sub, my_tiles, my_tiles, bi);
    items.ins().s_alu(AluOp::Add, my_tiles, my_tiles, bd);
    items.ins().s_alu(AluOp::Sub, my_tiles, my_tiles, 1u64);
    items.ins().s_alu(AluOp::Div, my_tiles, my_tiles, bd);
    items
        .ins()
        .s_alu(AluOp::Mul, nsteps, my_tiles, steps_per_tile);
    items.ins().s_li(s, 0u64);
    let mut w = [Reg(0); 9];
    for x in &mut w {
        *x = ctx.regs.get()?;
    }
    let [t, c, a0, cur, kcur, addr, tmp, len, o] = w;
    let results = if row { rows } else { pitch };
    let acc_buf = VBuf::of(&layout.acc, 0, acc);
    let part = VBuf::of(&layout.part, 0, acc);
    double_buffered(&mut items, (s, sb), 1u64, 2u64, nsteps, |half, sr| {
        let mut h = Vec::new();
        // Step → (tile, chunk): tile = bi + (step / chunks) · bd.
        h.ins().s_alu(AluOp::Div, t, sr, chunks);
        h.ins().s_alu(AluOp::Rem, c, sr, chunks);
        h.ins().s_alu(AluOp::Mul, t, t, bd);
        h.ins().s_alu(AluOp::Add, t, t, bi);
        // Chunk of the reduced axis: start and length.
        h.ins().s_alu(AluOp::Mul, a0, c, chunk);
        h.ins().s_li(kcur, reduced);
        h.ins().s_alu(AluOp::Sub, kcur, kcur, a0);
        h.ins().s_alu(AluOp::Min, kcur, kcur, chunk);
        let tile_in = VBuf::of(&layout.input, half, input.dtype);
        let out_buf = VBuf::of(&layout.out, half, out.dtype);
        let wide = if input.dtype == acc {
            tile_in.as_dtype(acc)
        } else {
            let w = layout.wide.as_ref().ok_or_else(|| {
                "internal: a widening reduction without its wide buffer".to_string()
            })?;
            VBuf::of(w, 0, acc)
        };
        let (n, src_stride): (Reg, u64) = if row {
            // Rows [t·rows, +cur), columns [a0, +kcur) of [outer, reduced].
            h.ins().s_alu(AluOp::Mul, o, t, rows);
            h.ins().s_li(cur, outer);
            h.ins().s_alu(AluOp::Sub, cur, cur, o);
            h.ins().s_alu(AluOp::Min, cur, cur, rows);
            h.ins().s_alu(AluOp::Mul, addr, o, reduced * si);
            h.ins().s_alu(AluOp::Mul, tmp, a0, si);
            h.ins().s_alu(AluOp::Add, addr, addr, tmp);
            h.ins().s_alu(AluOp::Add, addr, addr, base_in);
            h.ins().s_alu(AluOp::Mul, len, kcur, si);
            (cur, reduced * si)
        } else {
            // (o, column chunk) = divmod(t, col_chunks); rows [a0, +kcur) of the
            // reduced axis, columns [i0, +cur) of the inner axis.
            h.ins().s_alu(AluOp::Div, o, t, col_chunks);
            h.ins().s_alu(AluOp::Rem, tmp, t, col_chunks);
            h.ins().s_alu(AluOp::Mul, tmp, tmp, pitch);
            h.ins().s_li(cur, inner);
            h.ins().s_alu(AluOp::Sub, cur, cur, tmp);
            h.ins().s_alu(AluOp::Min, cur, cur, pitch);
            h.ins().s_alu(AluOp::Mul, addr, o, reduced * inner * si);
            h.ins().s_alu(AluOp::Mul, len, a0, inner * si);
            h.ins().s_alu(AluOp::Add, addr, addr, len);
            h.ins().s_alu(AluOp::Mul, len, tmp, si);
            h.ins().s_alu(AluOp::Add, addr, addr, len);
            h.ins().s_alu(AluOp::Add, addr, addr, base_in);
            h.ins().s_alu(AluOp::Mul, len, cur, si);
            (kcur, inner * si)
        };
        // A tile the load does not fill (a partial chunk, the last rows or
        // columns, a chunk short of whole repeats) is filled with the
        // identity first, then loaded over; a full one is not. Where every
        // tile is full there is no fill at all: the vector pipe's fill of a
        // tile would come after the previous tile's folds, and the load
        // after the fill, so loads and folds would take turns instead of
        // overlapping.
        if may_be_partial(r) {
            // Row form: `kcur` of `pitch` columns of `cur` of `rows` rows;
            // column form: `cur` of `pitch` columns of `kcur` of `rows`.
            let (cols, rows_in) = if row { (kcur, cur) } else { (cur, kcur) };
            // What the load leaves unfilled, (pitch − cols) + (rows −
            // rows_in): 0 iff the tile is full.
            h.ins().s_li(tmp, pitch + rows);
            h.ins().s_alu(AluOp::Sub, tmp, tmp, cols);
            h.ins().s_alu(AluOp::Sub, tmp, tmp, rows_in);
            let mut fill = Vec::new();
            Seq {
                items: &mut fill,
                n: rows * pitch,
            }
            .dup(tile_in, identity(op, input.dtype));
            h.push(Item::Guard {
                skip_if: vec![Branch::new(Cond::Eq, tmp, 0u64)],
                body: fill,
            });
        }
        h.op(vec![(Access::Write, tile_in.region(rows * pitch * si))])
            .mte2_gm_ub(tile_in.addr, addr, n, len, src_stride, pitch * si);
        if input.dtype != acc {
            Seq {
                items: &mut h,
                n: rows * pitch,
            }
            .cvt(wide, tile_in);
        }
        // Fold this chunk into `part`.
        if row {
            let Some(lanes_buf) = &layout.lanes else {
                return Err("internal: a row reduction without its lanes buffer".into());
            };
            let lanes_buf = VBuf::of(lanes_buf, 0, acc);
            for j in 0..rows {
                let src = wide.offset(j * pitch * sa);
                let dst = lanes_buf.offset(j * 256);
                fold_repeats(
                    &mut h,
                    fold_across(op),
                    acc,
                    dst,
                    src,
                    pitch / LANES,
                    8,
                    LANES,
                );
            }
            fold_lanes(&mut h, op, part, lanes_buf, rows, LANES);
        } else {
            for g in 0..pitch / LANES {
                let src = wide.offset(g * 256);
                let dst = part.offset(g * 256);
                fold_repeats(
                    &mut h,
                    fold_across(op),
                    acc,
                    dst,
                    src,
                    rows,
                    pitch * sa / 32,
                    LANES,
                );
            }
        }
        // Accumulate: reset at a tile's first chunk.
        let mut init = Vec::new();
        Seq {
            items: &mut init,
            n: results,
        }
        .dup(acc_buf, identity(op, acc));
        h.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ne, c, 0u64)],
            body: init,
        });
        Seq {
            items: &mut h,
            n: results,
        }
        .bin(combine(op), acc_buf, acc_buf, part);
        // Finish and store at a tile's last chunk.
        let mut fin = Vec::new();
        let mut q = Seq {
            items: &mut fin,
            n: results,
        };
        if divisor > 1 {
            q.sca(
                ScaOp::Muls,
                acc_buf,
                acc_buf,
                scalar(acc, 1.0 / divisor as f64),
            );
        }
        if out.dtype != acc {
            q.cvt(out_buf, acc_buf);
        } else {
            q.copy(out_buf, acc_buf);
        }
        if row {
            // Results of rows [t·rows, +cur) are contiguous in the output.
            fin.ins().s_alu(AluOp::Mul, addr, t, rows * so);
            fin.ins().s_alu(AluOp::Add, addr, addr, base_out);
            fin.ins().s_alu(AluOp::Mul, len, cur, so);
        } else {
            // Output [o, i0, +cur) of [outer, inner].
            fin.ins().s_alu(AluOp::Mul, addr, o, inner * so);
            fin.ins().s_alu(AluOp::Rem, tmp, t, col_chunks);
            fin.ins().s_alu(AluOp::Mul, tmp, tmp, pitch * so);
            fin.ins().s_alu(AluOp::Add, addr, addr, tmp);
            fin.ins().s_alu(AluOp::Add, addr, addr, base_out);
            fin.ins().s_alu(AluOp::Mul, len, cur, so);
        }
        fin.op(vec![(Access::Read, out_buf.region(results * so))])
            .mte3_ub_gm(addr, out_buf.addr, 1u64, len, 0u64, 0u64);
        h.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ne, c, chunks - 1)],
            body: fin,
        });
        Ok(h)
    })?;
    Ok(items)
}

/// `dst[j]` = the fold of the `per` lanes of row `j` of `lanes_buf` (one
/// 256-byte repeat per row), for `rows` rows at once.
pub(super) fn fold_lanes(
    items: &mut Vec<Item>,
    op: ReduceOp,
    dst: VBuf,
    lanes_buf: VBuf,
    rows: u64,
    per: u64,
) {
    items
        .op(vec![
            (Access::Write, dst.region(rows * size(dst.dtype))),
            (Access::Read, lanes_buf.region(rows * 256)),
        ])
        .vec_red_r(
            fold_repeat(op),
            dt(dst.dtype),
            dst.addr,
            VecOperand::new(lanes_buf.addr, 1, 8),
            rows,
            lanes(per),
        );
}

/// The blockwise partials of `reps` whole repeats of `src` (`per` lanes
/// each): every 32-byte block folded to one value, repeat `r`'s eight at
/// `dst + 8r` values (`dst` may be `src`: each repeat is read before its
/// partials land at or below it).
pub(super) fn fold_block_partials(
    items: &mut Vec<Item>,
    op: ReduceOp,
    acc: DType,
    dst: VBuf,
    src: VBuf,
    reps: u64,
    per: u64,
) {
    items
        .op(vec![
            (Access::Write, dst.region(reps * 8 * size(acc))),
            (Access::Read, src.region(reps * 256)),
        ])
        .vec_red_b(
            fold_blocks(op),
            dt(acc),
            dst.addr,
            VecOperand::new(src.addr, 1, 8),
            reps,
            lanes(per),
        );
}

/// A lane-wise fold across `reps` repeats (stride `rep_stride` blocks) into
/// one repeat of `per` lanes.
#[allow(clippy::too_many_arguments)]
pub(super) fn fold_repeats(
    items: &mut Vec<Item>,
    op: ARed,
    acc: DType,
    dst: VBuf,
    src: VBuf,
    reps: u64,
    rep_stride: u64,
    per: u64,
) {
    let read = (reps.saturating_sub(1) * rep_stride + 8) * 32;
    items
        .op(vec![
            (Access::Write, dst.region(256)),
            (Access::Read, src.region(read)),
        ])
        .vec_red_a(
            op,
            dt(acc),
            VecOperand::new(dst.addr, 1, 8),
            VecOperand::new(src.addr, 1, rep_stride),
            reps,
            lanes(per),
        );
}
