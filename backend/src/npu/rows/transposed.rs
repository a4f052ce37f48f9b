//! Transposed row stages (short rows): a tile of `rows` rows is loaded as
//! one burst, each full input gathered into `n` column runs of `rows`
//! elements, the body run over runs (an elementwise op is one instruction
//! over the tile, a reduction folds the `n` runs, an expansion copies its
//! run `n` times) and the result gathered back into rows. The gathers'
//! offsets are built once.

use super::{Opening, finish, opening, size, tile_rows, widened};
use crate::npu::Ctx;
use crate::npu::inst::{InstBuilder, VecOperand, int_scalar};
use crate::npu::prog::{Access, Build, Item};
use crate::npu::reduce::combine;
use crate::npu::tiles::double_buffered;
use crate::npu::vector::{self, Opnd, Seq, VBuf, dt};
use tessera_ir::DType;
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::rows::accumulator;
use tessera_ir::plan::{EwArg, Rows, RowsOp, Width};
use tessera_sim::isa::{AluOp, BinOp, ScaOp};

/// `dst[l] = src[idx[l]]` (byte offsets) for `count` elements (a multiple
/// of 64), reading at most `src_bytes` of `src`.
fn gather(h: &mut Vec<Item>, dst: VBuf, src: VBuf, src_bytes: u64, idx: VBuf, count: u64) {
    let s = size(dst.dtype);
    let mut done = 0;
    while done < count {
        let reps = ((count - done) / LANES).min(255);
        let d = dst.offset(done * s);
        let ix = idx.offset(done * 4);
        h.op(vec![
            (Access::Write, d.region(reps * LANES * s)),
            (Access::Read, src.region(src_bytes)),
            (Access::Read, ix.region(reps * LANES * 4)),
        ])
        .vec_gather(
            dt(dst.dtype),
            VecOperand::new(d.addr, 1, LANES * s / 32),
            src.addr,
            VecOperand::new(ix.addr, 1, 8),
            reps,
            crate::npu::inst::lanes(LANES),
        );
        done += reps * LANES;
    }
}

/// `v[m] = m` (i32) for `count` elements.
fn iota(h: &mut Vec<Item>, v: VBuf, count: u64) {
    vector::emit(h, count, &[Opnd::Run(v)], |b, o, rep, m| {
        b.vec_iota(dt(DType::I32), o[0], int_scalar(0), rep, m)
    });
}

/// `dst[m] = m·p + (m / d)·q` (i32) for `count` elements: the gathers'
/// byte offsets. `tmp` is a run of `count` i32 to build them in.
#[allow(clippy::too_many_arguments)]
fn offsets(h: &mut Vec<Item>, dst: VBuf, tmp: VBuf, count: u64, d: u64, p: i64, q: i64) {
    iota(h, tmp, count);
    let mut s = Seq { items: h, n: count };
    s.dup(dst, int_scalar(d as i64));
    s.bin(BinOp::Div, dst, tmp, dst);
    s.sca(ScaOp::Muls, dst, dst, int_scalar(q));
    s.sca(ScaOp::Muls, tmp, tmp, int_scalar(p));
    s.bin(BinOp::Add, dst, dst, tmp);
}

/// Generates a transposed row stage (short rows).
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
    let rows = schedule.rows;
    if layout.raw.len() != inputs.len() || rows == 0 || rows % LANES != 0 {
        return Err("internal: the layout does not match the transposed row stage".into());
    }
    let tile = n * rows;
    let count = |w: Width| match w {
        Width::Full => tile,
        Width::Row => rows,
    };
    let mut items = Vec::new();
    let Opening {
        bi,
        bd,
        bases,
        base_out,
    } = opening(ctx, r, &mut items, count)?;
    let last = body.len() - 1;
    let scratch: Vec<VBuf> = layout
        .scratch
        .iter()
        .map(|l| VBuf::of(l, 0, DType::F32))
        .collect();
    // The offsets, per gathered element size: into columns (`m = k·rows +
    // i` reads row i, element k: `(i·n + k)·s = m·n·s − k·(rows·n − 1)·s`),
    // back into rows (`j = i·n + k` reads `(k·rows + i)·s = j·rows·s −
    // i·(n·rows − 1)·s`), and a third run to build them in.
    let sizes = {
        let mut v: Vec<u64> = inputs
            .iter()
            .filter(|i| i.width == Width::Full && i.view.buffer().is_some())
            .map(|i| size(i.view.dtype))
            .collect();
        if body[last].width == Width::Full {
            v.push(size(out.dtype));
        }
        v.sort_unstable();
        v.dedup();
        v
    };
    let idx_run = |k: usize, which: u64| -> Result<VBuf, String> {
        let b = layout
            .idx
            .as_ref()
            .ok_or("internal: a transposed stage without its offsets")?;
        Ok(VBuf::of(b, 0, DType::I32).offset((k as u64 * 3 + which) * tile * 4))
    };
    let size_index = |s: u64| sizes.iter().position(|&x| x == s).unwrap_or(0);
    let (ti, to) = (tile as i64, rows as i64);
    for (k, &s) in sizes.iter().enumerate() {
        let s = s as i64;
        let tmp = idx_run(k, 2)?;
        let nn = n as i64;
        offsets(
            &mut items,
            idx_run(k, 0)?,
            tmp,
            tile,
            rows,
            nn * s,
            -(ti - 1) * s,
        );
        offsets(
            &mut items,
            idx_run(k, 1)?,
            tmp,
            tile,
            n,
            to * s,
            -(ti - 1) * s,
        );
    }
    // Repeated rows (a `[n]` vector): loaded once and gathered once, column
    // k all element k (offset `(m / rows)·s`). Every load first, so that one
    // event covers them all (a pipe pair has few event ids).
    let repeated: Vec<(usize, VBuf)> = inputs
        .iter()
        .enumerate()
        .filter_map(|(k, i)| {
            let rep = i.repeats_one_row();
            let (true, Some(base), Some(raw)) = (rep, bases[k], layout.raw[k]) else {
                return None;
            };
            let s = size(i.view.dtype);
            let small = VBuf::of(&raw, 0, i.view.dtype);
            items
                .op(vec![(Access::Write, small.region(n * s))])
                .mte2_gm_ub(small.addr, base, 1u64, n * s, 0u64, 0u64);
            Some((k, small))
        })
        .collect();
    for (k, small) in repeated {
        let i = &inputs[k];
        let s = size(i.view.dtype);
        let si = size_index(s);
        let (tmp, col) = (idx_run(si, 2)?, idx_run(si, 1)?);
        iota(&mut items, tmp, tile);
        let mut q = Seq {
            items: &mut items,
            n: tile,
        };
        q.dup(col, int_scalar(rows as i64));
        q.bin(BinOp::Div, tmp, tmp, col);
        q.sca(ScaOp::Muls, tmp, tmp, int_scalar(s as i64));
        let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
        gather(&mut items, dst, small, n * s, tmp, tile);
        // Rebuild the offsets back into rows whose run it borrowed.
        let ss = s as i64;
        offsets(&mut items, col, tmp, tile, n, to * ss, -(ti - 1) * ss);
    }
    // The value of instruction `j` (a run of `rows`, `n` runs when full; the
    // result's columns, or its tile copy when per-row).
    let value = |j: usize, half: u32| -> VBuf {
        let d = body[j].dtype;
        match (layout.temps.get(j), &layout.cols) {
            (Some(t), _) => VBuf::of(t, 0, d),
            (None, Some(c)) if body[j].width == Width::Full => VBuf::of(c, 0, d),
            (None, _) => VBuf::of(&layout.out, half, d),
        }
    };
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    items.ins().s_mov(tt, bi);
    items.ins().s_alu(AluOp::Add, step, bd, bd);
    let [row0, rcur, len, addr] = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    double_buffered(
        &mut items,
        (tt, tb),
        bd,
        step,
        schedule.tiles,
        |half, t_reg| {
            let mut h = Vec::new();
            tile_rows(&mut h, (row0, rcur), t_reg, rows, outer);
            // Loads: rows as stored, then gathered into columns.
            for (k, i) in inputs.iter().enumerate() {
                let Some(base) = bases[k] else { continue };
                let s = size(i.view.dtype);
                match i.width {
                    Width::Full => {
                        let rs = i.row_stride();
                        if rs == 0 {
                            continue;
                        }
                        let raw = VBuf::of(
                            layout.raw[k]
                                .as_ref()
                                .ok_or("internal: a streamed input without its rows buffer")?,
                            half,
                            i.view.dtype,
                        );
                        h.ins().s_alu(AluOp::Mul, addr, row0, rs * s);
                        h.ins().s_alu(AluOp::Add, addr, addr, base);
                        if rs == n {
                            h.ins().s_alu(AluOp::Mul, len, rcur, n * s);
                            h.op(vec![(Access::Write, raw.region(tile * s))])
                                .mte2_gm_ub(raw.addr, addr, 1u64, len, 0u64, 0u64);
                        } else {
                            h.op(vec![(Access::Write, raw.region(tile * s))])
                                .mte2_gm_ub(raw.addr, addr, rcur, n * s, rs * s, n * s);
                        }
                    }
                    Width::Row => {
                        let dst = VBuf::of(&layout.inputs[k], half, i.view.dtype);
                        h.ins().s_alu(AluOp::Mul, addr, row0, s);
                        h.ins().s_alu(AluOp::Add, addr, addr, base);
                        h.ins().s_alu(AluOp::Mul, len, rcur, s);
                        h.op(vec![(Access::Write, dst.region(rows * s))])
                            .mte2_gm_ub(dst.addr, addr, 1u64, len, 0u64, 0u64);
                    }
                }
            }
            // All loads first, then the gathers (their events share ids).
            for (k, i) in inputs.iter().enumerate() {
                let (Width::Full, Some(raw)) = (i.width, layout.raw[k]) else {
                    continue;
                };
                if bases[k].is_none() || i.repeats_one_row() {
                    continue;
                }
                let s = size(i.view.dtype);
                let raw = VBuf::of(&raw, half, i.view.dtype);
                let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
                gather(&mut h, dst, raw, tile * s, idx_run(size_index(s), 0)?, tile);
            }
            // The body over column runs.
            for (j, inst) in body.iter().enumerate() {
                let dst = value(j, half);
                let args = inst
                    .args
                    .iter()
                    .map(|a| match *a {
                        EwArg::Input(k) => {
                            let i = &inputs[k];
                            let copy = if i.width == Width::Row { half } else { 0 };
                            VBuf::of(&layout.inputs[k], copy, i.view.dtype)
                        }
                        EwArg::Inst(k) => value(k, half),
                    })
                    .collect::<Vec<_>>();
                match &inst.op {
                    RowsOp::Ew(op) => {
                        let n = count(inst.width);
                        super::ew(&mut h, n, (r, inst, op), dst, &args, &scratch)?;
                    }
                    RowsOp::Expand => {
                        let src = *args
                            .first()
                            .ok_or("internal: an expansion without operand")?;
                        let s = size(dst.dtype);
                        for k in 0..n {
                            Seq {
                                items: &mut h,
                                n: rows,
                            }
                            .copy(dst.offset(k * rows * s), src);
                        }
                    }
                    RowsOp::Reduce(op) => {
                        let src = *args
                            .first()
                            .ok_or("internal: a reduction without operand")?;
                        let acc_dt = accumulator(*op, src.dtype);
                        let wide = widened(&mut h, layout, src, acc_dt, tile)?;
                        let acc = VBuf::of(
                            layout
                                .acc
                                .as_ref()
                                .ok_or("internal: a reduction without its accumulator")?,
                            0,
                            acc_dt,
                        );
                        let sa = size(acc_dt);
                        let mut q = Seq {
                            items: &mut h,
                            n: rows,
                        };
                        if n == 1 {
                            q.copy(acc, wide);
                        } else {
                            q.bin(combine(*op), acc, wide, wide.offset(rows * sa));
                        }
                        for k in 2..n {
                            q.bin(combine(*op), acc, acc, wide.offset(k * rows * sa));
                        }
                        finish(q.items, *op, dst, acc, rows, n);
                    }
                }
            }
            // The result: gathered back into rows, stored as one burst.
            let so = size(out.dtype);
            let ob = VBuf::of(&layout.out, half, out.dtype);
            match body[last].width {
                Width::Full => {
                    let cols = value(last, half);
                    gather(
                        &mut h,
                        ob,
                        cols,
                        tile * so,
                        idx_run(size_index(so), 1)?,
                        tile,
                    );
                    h.ins().s_alu(AluOp::Mul, addr, row0, n * so);
                    h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                    h.ins().s_alu(AluOp::Mul, len, rcur, n * so);
                    h.op(vec![(Access::Read, ob.region(tile * so))])
                        .mte3_ub_gm(addr, ob.addr, 1u64, len, 0u64, 0u64);
                }
                Width::Row => {
                    h.ins().s_alu(AluOp::Mul, addr, row0, so);
                    h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                    h.ins().s_alu(AluOp::Mul, len, rcur, so);
                    h.op(vec![(Access::Read, ob.region(rows * so))])
                        .mte3_ub_gm(addr, ob.addr, 1u64, len, 0u64, 0u64);
                }
            }
            Ok(h)
        },
    )?;
    Ok(items)
}
