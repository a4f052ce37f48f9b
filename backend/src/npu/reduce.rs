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

use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use super::{Ctx, slot};
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::{LocalBuf, Reduce};
use tessera_ir::{DType, ReduceOp};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// The identity of a reduction in a dtype, as an assembler literal.
fn identity(op: ReduceOp, d: DType) -> Opnd {
    match (op, d.is_float()) {
        (ReduceOp::Sum | ReduceOp::Mean, _) => Opnd::Lit("0".into()),
        (ReduceOp::Max, true) => vector::lit(f64::NEG_INFINITY),
        (ReduceOp::Min, true) => vector::lit(f64::INFINITY),
        (ReduceOp::Max, false) => Opnd::Lit(d.int_range().map_or(0, |r| r.0).to_string()),
        (ReduceOp::Min, false) => Opnd::Lit(d.int_range().map_or(0, |r| r.1).to_string()),
    }
}

fn combine(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => "add",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
    }
}

fn fold(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum | ReduceOp::Mean => "sum",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
    }
}

fn ub(b: VBuf, bytes: u64) -> Region {
    Region {
        space: Space::Ub,
        start: b.addr,
        end: b.addr + bytes,
        slot: b.slot,
    }
}

/// A run of one copy of a buffer, as elements of `dtype`.
fn buf(l: &LocalBuf, copy: u32, dtype: DType) -> VBuf {
    VBuf {
        addr: l.copy(copy),
        dtype,
        slot: slot(l, copy),
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
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.sys {bi}, block_idx")));
    items.push(Item::Scalar(format!("s.sys {bd}, block_dim")));
    let base_in = ctx.gm_base(&mut items, input)?;
    let base_out = ctx.gm_base(&mut items, out)?;
    for (r, v) in [(&base_in, input), (&base_out, out)] {
        let off = v.offset * size(v.dtype);
        if off != 0 {
            items.push(Item::Scalar(format!("s.add {r}, {r}, {off}")));
        }
    }
    // This block's steps: its tiles are bi, bi + bd, …; each has `chunks` steps.
    let my_tiles = ctx.regs.get()?;
    let nsteps = ctx.regs.get()?;
    let s = ctx.regs.get()?;
    let sb = ctx.regs.get()?;
    // my_tiles = ceil((tiles - bi) / bd) (bi < bd ≤ tiles).
    items.push(Item::Scalar(format!("s.li {my_tiles}, {tiles}")));
    items.push(Item::Scalar(format!("s.sub {my_tiles}, {my_tiles}, {bi}")));
    items.push(Item::Scalar(format!("s.add {my_tiles}, {my_tiles}, {bd}")));
    items.push(Item::Scalar(format!("s.sub {my_tiles}, {my_tiles}, 1")));
    items.push(Item::Scalar(format!("s.div {my_tiles}, {my_tiles}, {bd}")));
    items.push(Item::Scalar(format!(
        "s.mul {nsteps}, {my_tiles}, {steps_per_tile}"
    )));
    items.push(Item::Scalar(format!("s.li {s}, 0")));
    let w: Vec<String> = (0..9).map(|_| ctx.regs.get()).collect::<Result<_, _>>()?;
    let [t, c, a0, cur, kcur, addr, tmp, len, o] = [
        &w[0], &w[1], &w[2], &w[3], &w[4], &w[5], &w[6], &w[7], &w[8],
    ];
    let loop_label = ctx.labels.fresh("steps");
    let mut body = Vec::new();
    let results = if row { rows } else { pitch };
    let acc_buf = buf(&layout.acc, 0, acc);
    let part = buf(&layout.part, 0, acc);
    for half in 0..2u32 {
        let sr = if half == 0 { s.clone() } else { sb.clone() };
        let mut h = Vec::new();
        // Step → (tile, chunk): tile = bi + (step / chunks) · bd.
        h.push(Item::Scalar(format!("s.div {t}, {sr}, {chunks}")));
        h.push(Item::Scalar(format!("s.rem {c}, {sr}, {chunks}")));
        h.push(Item::Scalar(format!("s.mul {t}, {t}, {bd}")));
        h.push(Item::Scalar(format!("s.add {t}, {t}, {bi}")));
        // Chunk of the reduced axis: start and length.
        h.push(Item::Scalar(format!("s.mul {a0}, {c}, {chunk}")));
        h.push(Item::Scalar(format!("s.li {kcur}, {reduced}")));
        h.push(Item::Scalar(format!("s.sub {kcur}, {kcur}, {a0}")));
        h.push(Item::Scalar(format!("s.min {kcur}, {kcur}, {chunk}")));
        let tile_in = buf(&layout.input, half, input.dtype);
        let out_buf = buf(&layout.out, half, out.dtype);
        let wide = if input.dtype == acc {
            tile_in.as_dtype(acc)
        } else {
            let w = layout.wide.as_ref().ok_or_else(|| {
                "internal: a widening reduction without its wide buffer".to_string()
            })?;
            buf(w, 0, acc)
        };
        // Fill with the identity, then load over it.
        vector::emit(
            &mut h,
            &format!("vec.dup.{}", vector::dt(input.dtype)),
            rows * pitch,
            &[Opnd::Run(tile_in), identity(op, input.dtype)],
        );
        if row {
            // Rows [t·rows, +cur), columns [a0, +kcur) of [outer, reduced].
            h.push(Item::Scalar(format!("s.mul {o}, {t}, {rows}")));
            h.push(Item::Scalar(format!("s.li {cur}, {outer}")));
            h.push(Item::Scalar(format!("s.sub {cur}, {cur}, {o}")));
            h.push(Item::Scalar(format!("s.min {cur}, {cur}, {rows}")));
            h.push(Item::Scalar(format!("s.mul {addr}, {o}, {}", reduced * si)));
            h.push(Item::Scalar(format!("s.mul {tmp}, {a0}, {si}")));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {tmp}")));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {base_in}")));
            h.push(Item::Scalar(format!("s.mul {len}, {kcur}, {si}")));
            h.push(mte2(
                tile_in,
                addr,
                cur,
                len,
                reduced * si,
                pitch * si,
                rows * pitch * si,
            ));
        } else {
            // (o, column chunk) = divmod(t, col_chunks); rows [a0, +kcur) of the
            // reduced axis, columns [i0, +cur) of the inner axis.
            h.push(Item::Scalar(format!("s.div {o}, {t}, {col_chunks}")));
            h.push(Item::Scalar(format!("s.rem {tmp}, {t}, {col_chunks}")));
            h.push(Item::Scalar(format!("s.mul {tmp}, {tmp}, {pitch}")));
            h.push(Item::Scalar(format!("s.li {cur}, {inner}")));
            h.push(Item::Scalar(format!("s.sub {cur}, {cur}, {tmp}")));
            h.push(Item::Scalar(format!("s.min {cur}, {cur}, {pitch}")));
            h.push(Item::Scalar(format!(
                "s.mul {addr}, {o}, {}",
                reduced * inner * si
            )));
            h.push(Item::Scalar(format!("s.mul {len}, {a0}, {}", inner * si)));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {len}")));
            h.push(Item::Scalar(format!("s.mul {len}, {tmp}, {si}")));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {len}")));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {base_in}")));
            h.push(Item::Scalar(format!("s.mul {len}, {cur}, {si}")));
            h.push(mte2(
                tile_in,
                addr,
                kcur,
                len,
                inner * si,
                pitch * si,
                rows * pitch * si,
            ));
        }
        if input.dtype != acc {
            vector::emit(
                &mut h,
                &format!("vec.cvt.{}.{}", vector::dt(acc), vector::dt(input.dtype)),
                rows * pitch,
                &[Opnd::Run(wide), Opnd::Run(tile_in)],
            );
        }
        // Fold this chunk into `part`.
        if row {
            let Some(lanes) = &layout.lanes else {
                return Err("internal: a row reduction without its lanes buffer".into());
            };
            let lanes = buf(lanes, 0, acc);
            for j in 0..rows {
                let src = VBuf {
                    addr: wide.addr + j * pitch * sa,
                    ..wide
                };
                let dst = VBuf {
                    addr: lanes.addr + j * 256,
                    ..lanes
                };
                fold_repeats(
                    &mut h,
                    &format!("vec.a{}.{}", fold(op), vector::dt(acc)),
                    dst,
                    src,
                    pitch / LANES,
                    8,
                );
            }
            h.push(Item::Op(MicroOp {
                text: format!(
                    "vec.r{}.{} [{}], [{}, 1, 8], {rows}, {LANES}",
                    fold(op),
                    vector::dt(acc),
                    part.addr,
                    lanes.addr
                ),
                pipe: Pipe::V,
                accesses: vec![
                    (Access::Write, ub(part, rows * sa)),
                    (Access::Read, ub(lanes, rows * 256)),
                ],
            }));
        } else {
            for g in 0..pitch / LANES {
                let src = VBuf {
                    addr: wide.addr + g * 256,
                    ..wide
                };
                let dst = VBuf {
                    addr: part.addr + g * 256,
                    ..part
                };
                fold_repeats(
                    &mut h,
                    &format!("vec.a{}.{}", fold(op), vector::dt(acc)),
                    dst,
                    src,
                    rows,
                    pitch * sa / 32,
                );
            }
        }
        // Accumulate: reset at a tile's first chunk.
        let first = ctx.labels.fresh("first");
        let mut init = Vec::new();
        vector::emit(
            &mut init,
            &format!("vec.dup.{}", vector::dt(acc)),
            results,
            &[Opnd::Run(acc_buf), identity(op, acc)],
        );
        h.push(Item::Guard {
            skip_if: format!("s.br.ne {c}, 0, {first}_skip"),
            label: first,
            body: init,
        });
        vector::emit(
            &mut h,
            &format!("vec.{}.{}", combine(op), vector::dt(acc)),
            results,
            &[Opnd::Run(acc_buf), Opnd::Run(acc_buf), Opnd::Run(part)],
        );
        // Finish and store at a tile's last chunk.
        let last = ctx.labels.fresh("last");
        let mut fin = Vec::new();
        let mut res = acc_buf;
        if divisor > 1 {
            vector::emit(
                &mut fin,
                &format!("vec.muls.{}", vector::dt(acc)),
                results,
                &[
                    Opnd::Run(acc_buf),
                    Opnd::Run(acc_buf),
                    vector::lit(1.0 / divisor as f64),
                ],
            );
        }
        if out.dtype != acc {
            vector::emit(
                &mut fin,
                &format!("vec.cvt.{}.{}", vector::dt(out.dtype), vector::dt(acc)),
                results,
                &[Opnd::Run(out_buf), Opnd::Run(res)],
            );
        } else {
            vector::emit(
                &mut fin,
                &format!("vec.copy.{}", vector::dt(acc)),
                results,
                &[Opnd::Run(out_buf), Opnd::Run(res)],
            );
        }
        res = out_buf;
        if row {
            // Results of rows [t·rows, +cur) are contiguous in the output.
            fin.push(Item::Scalar(format!("s.mul {addr}, {t}, {}", rows * so)));
            fin.push(Item::Scalar(format!("s.add {addr}, {addr}, {base_out}")));
            fin.push(Item::Scalar(format!("s.mul {len}, {cur}, {so}")));
        } else {
            // Output [o, i0, +cur) of [outer, inner].
            fin.push(Item::Scalar(format!("s.mul {addr}, {o}, {}", inner * so)));
            fin.push(Item::Scalar(format!("s.rem {tmp}, {t}, {col_chunks}")));
            fin.push(Item::Scalar(format!("s.mul {tmp}, {tmp}, {}", pitch * so)));
            fin.push(Item::Scalar(format!("s.add {addr}, {addr}, {tmp}")));
            fin.push(Item::Scalar(format!("s.add {addr}, {addr}, {base_out}")));
            fin.push(Item::Scalar(format!("s.mul {len}, {cur}, {so}")));
        }
        fin.push(Item::Op(MicroOp {
            text: format!("mte3.copy.ub.gm [{addr}], [{}], 1, {len}, 0, 0", res.addr),
            pipe: Pipe::Mte3,
            accesses: vec![(Access::Read, ub(res, results * so))],
        }));
        h.push(Item::Guard {
            skip_if: format!("s.br.ne {c}, {}, {last}_skip", chunks - 1),
            label: last,
            body: fin,
        });
        if half == 0 {
            body.extend(h);
        } else {
            body.push(Item::Scalar(format!("s.add {sb}, {s}, 1")));
            let label = ctx.labels.fresh("half");
            body.push(Item::Guard {
                skip_if: format!("s.br.ge {sb}, {nsteps}, {label}_skip"),
                label,
                body: h,
            });
        }
    }
    items.push(Item::Loop {
        header: vec![format!("s.br.ge {s}, {nsteps}, {loop_label}_end")],
        label: loop_label,
        body,
        latch: vec![format!("s.add {s}, {s}, 2")],
    });
    Ok(items)
}

/// `rows` strided bursts GM → UB.
fn mte2(
    dst: VBuf,
    addr: &str,
    n: &str,
    len: &str,
    src_stride: u64,
    dst_stride: u64,
    bytes: u64,
) -> Item {
    Item::Op(MicroOp {
        text: format!(
            "mte2.copy.gm.ub [{}], [{addr}], {n}, {len}, {src_stride}, {dst_stride}",
            dst.addr
        ),
        pipe: Pipe::Mte2,
        accesses: vec![(Access::Write, ub(dst, bytes))],
    })
}

/// A lane-wise fold across `reps` repeats (stride `rep_stride` blocks) into
/// one repeat of lanes, in instructions of at most 255 repeats.
fn fold_repeats(
    items: &mut Vec<Item>,
    mnemonic: &str,
    dst: VBuf,
    src: VBuf,
    reps: u64,
    rep_stride: u64,
) {
    items.push(Item::Op(MicroOp {
        text: format!(
            "{mnemonic} [{}, 1, 8], [{}, 1, {rep_stride}], {reps}, {LANES}",
            dst.addr, src.addr
        ),
        pipe: Pipe::V,
        accesses: vec![
            (Access::Write, ub(dst, 256)),
            (
                Access::Read,
                ub(src, (reps.saturating_sub(1) * rep_stride + 8) * 32),
            ),
        ],
    }));
}
