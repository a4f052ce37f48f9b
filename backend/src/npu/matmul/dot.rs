//! The dot-product form of a vector matmul (`VecMatSchedule::dot`), for
//! narrow B: the outer-product form (`vector.rs`) runs one `vec.muls` per
//! row and k, of `n / 64` repeats (only `n` of 64 lanes used when `n <
//! 64`), issued by a scalar loop that bounds it for small tiles.
//!
//! A tile is `rows × n` outputs; output `(i, j)` keeps `k_chunk` lanes of
//! partial sums. Per chunk of K, A's rows and B's columns are loaded (B's
//! chunk is gathered into columns when B is row-major), widened to the
//! accumulator dtype when they differ, and each output gets a `vec.mul`
//! of A's row by B's column (`k_chunk / 64` repeats: one instruction per
//! output, or per repeat position over a row's outputs); one `vec.add`
//! over the tile then accumulates them. The last chunk, when K is not whole
//! chunks, adds only its valid lanes (masked), so the stale lanes beyond K
//! never reach a sum. At the tile's end each output's lanes are folded
//! across repeats (`vec.asum`) and across lanes (`vec.rsum`), row by row,
//! into the output tile's rows (their pitch rounded up to 32 bytes), then
//! scaled, relu'd, cast and stored.

use super::vector::{epilogue, gather_table};
use super::{Open, open, size, tile_loop, tile_setup};
use crate::npu::Ctx;
use crate::npu::inst::{Address, InstBuilder, VecOperand, int_scalar, lanes};
use crate::npu::prog::{Access, Branch, Build, Item, count_up};
use crate::npu::vector::{self, Opnd, Seq, VBuf, dt};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{Geometry, dot_across_outputs, vec_pitch};
use tessera_ir::plan::{MatMul, VecMatB, VecMatSchedule};
use tessera_sim::isa::{ARed, AluOp, BinOp, Cond, RRed};

/// Lanes of a 4-byte accumulator in one repeat.
const LANES: u64 = 64;

/// Generates the dot-product form of a vector matmul stage.
pub(super) fn generate(
    ctx: &mut Ctx<'_>,
    mm: &MatMul,
    t: &VecMatSchedule,
) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    let l = &t.layout;
    let p = vec_pitch(&g, t);
    let (s, so) = (size(g.dtype), size(g.out));
    let cd = g.acc();
    let VecMatB::Columns {
        b: b_load,
        widened: b_wide,
        gather,
    } = &l.b
    else {
        return Err("internal: a dot-form matmul without its column buffers".into());
    };
    if g.a_t || !t.k_chunk.is_multiple_of(LANES) || t.cols != g.n || g.n > 255 {
        return Err(
            "internal: the dot form needs A row-major, whole repeats of K and all of N (below 256)"
                .into(),
        );
    }
    if gather.is_some() == g.b_t {
        return Err(
            "internal: a dot-form matmul gathers B's columns exactly when B is row-major".into(),
        );
    }
    let widen = g.dtype != cd;
    if widen != (l.a_wide.is_some() && b_wide.is_some()) {
        return Err("internal: a dot-form matmul's widened buffers do not match its dtype".into());
    }
    let (n, kc) = (g.n, t.k_chunk);
    let seg = kc * 4; // one output's lanes, bytes
    let outputs = t.rows * n;
    let total = g.batches() * g.m.div_ceil(t.rows);
    let b_elems = if g.b_t { n * p.bt } else { kc * p.b };

    let mut items = Vec::new();
    let o = open(ctx, mm, &g, &mut items)?;
    let [ks, ii, jj, sa, sb, sp] = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    // The gather's table: column j's element k is element (k, j) of the
    // (widened, 4-byte) row-major chunk, at byte (k · pitch + j) · 4.
    if let Some((idx, _)) = gather {
        gather_table(&mut items, idx, (n, kc), p.b * 4);
    }

    let mut tile = Vec::new();
    tile_setup(&g, (t.rows, n, 1, 1), (&o, o.tr), None, &mut tile);
    let Open { regs, .. } = &o;
    let (mcur, ga, gb, gc) = (regs.mcur, regs.ga, regs.gb, regs.gc);
    let accb = VBuf::of(&l.acc, 0, cd);
    let prod = VBuf::of(&l.prod, 0, cd);
    Seq {
        items: &mut tile,
        n: outputs * kc,
    }
    .dup(accb, int_scalar(0));
    tile.ins().s_li(ks, 0u64);

    // One chunk in copy `h` of the loaded buffers, `valid` of its K.
    let chunk = |h: u32, valid: u64| -> Vec<Item> {
        let mut st = Vec::new();
        let ab = VBuf::of(&l.a, h, g.dtype);
        st.op(vec![(Access::Write, ab.region(l.a.bytes))])
            .mte2_gm_ub(ab.addr, ga, mcur, valid * s, g.a_row * s, p.a * s);
        let bb = VBuf::of(b_load, h, g.dtype);
        let b_write = vec![(Access::Write, bb.region(b_load.bytes))];
        if g.b_t {
            st.op(b_write)
                .mte2_gm_ub(bb.addr, gb, n, valid * s, g.b_row * s, p.bt * s);
        } else if g.b_row == n {
            // B's rows are contiguous: the chunk is one burst.
            st.op(b_write)
                .mte2_gm_ub(bb.addr, gb, 1u64, valid * n * s, 0u64, 0u64);
        } else {
            st.op(b_write)
                .mte2_gm_ub(bb.addr, gb, valid, n * s, g.b_row * s, p.b * s);
        }
        // A's rows and B's chunk in the accumulator dtype.
        let (arows, bsrc) = match (l.a_wide.as_ref(), b_wide.as_ref()) {
            (Some(aw), Some(bw)) => {
                let (aw, bw) = (VBuf::of(aw, 0, cd), VBuf::of(bw, 0, cd));
                Seq {
                    items: &mut st,
                    n: t.rows * p.a,
                }
                .cvt(aw, ab);
                Seq {
                    items: &mut st,
                    n: b_elems,
                }
                .cvt(bw, bb);
                (aw, bw)
            }
            _ => (ab.as_dtype(cd), bb.as_dtype(cd)),
        };
        // B's columns, `kc` apart.
        let cols = match gather {
            Some((idx, cols)) => {
                let (idx, cols) = (VBuf::of(idx, 0, DType::I32), VBuf::of(cols, 0, cd));
                let ops = [
                    Opnd::Run(cols),
                    Opnd::Whole(bsrc, b_elems * 4),
                    Opnd::Run(idx),
                ];
                vector::emit(&mut st, n * kc, &ops, |b, v, rep, m| {
                    b.vec_gather(dt(cd), v[0], bsrc.addr, v[2], rep, m)
                });
                cols
            }
            None => bsrc,
        };
        // prod[i, j] = a[i] · col[j], the chunk's repeats: per row, one
        // instruction per output (its repeats), or, when the row has more
        // outputs than repeats, one per repeat position over its outputs
        // (A's repeat read again for each: repeat stride 0), so that the
        // instructions stay long enough to keep the vector unit busy.
        let reps = valid.div_ceil(LANES);
        let mul = |items: &mut Vec<Item>, [d, a, b]: [VecOperand; 3], rep: u64| {
            items
                .op(vec![
                    (Access::Write, prod.region(outputs * seg)),
                    (Access::Read, arows.region(t.rows * p.a * 4)),
                    (Access::Read, cols.region(n * seg)),
                ])
                .vec_bin(BinOp::Mul, dt(cd), d, a, b, rep, lanes(LANES));
        };
        let mut ibody = Vec::new();
        if dot_across_outputs(n, reps) {
            for r in 0..reps {
                let ops = [
                    VecOperand::new(Address::at(sp, r * 256), 1, seg / 32),
                    VecOperand::new(Address::at(sa, r * 256), 1, 0),
                    VecOperand::new(cols.addr + r * 256, 1, seg / 32),
                ];
                mul(&mut ibody, ops, n);
            }
            ibody.ins().s_alu(AluOp::Add, sp, sp, n * seg);
        } else {
            let mut jbody = Vec::new();
            let ops = [sp, sa, sb].map(|r| VecOperand::new(r, 1, 8));
            mul(&mut jbody, ops, reps);
            jbody.ins().s_alu(AluOp::Add, sb, sb, seg);
            jbody.ins().s_alu(AluOp::Add, sp, sp, seg);
            ibody.ins().s_li(jj, 0u64);
            ibody.ins().s_li(sb, cols.addr);
            count_up(&mut ibody, jj, n, jbody);
        }
        ibody.ins().s_alu(AluOp::Add, sa, sa, p.a * 4);
        st.ins().s_li(ii, 0u64);
        st.ins().s_li(sa, arows.addr);
        st.ins().s_li(sp, prod.addr);
        count_up(&mut st, ii, mcur, ibody);
        // acc += prod: the whole tile, or in a partial chunk each repeat
        // position of every output, the last one masked to the valid lanes.
        if valid == kc {
            Seq {
                items: &mut st,
                n: outputs * kc,
            }
            .bin(BinOp::Add, accb, accb, prod);
        } else {
            for r in 0..reps {
                let mask = (valid - r * LANES).min(LANES);
                let mut done = 0;
                while done < outputs {
                    let count = (outputs - done).min(255);
                    let at = done * seg + r * 256;
                    let (aa, pa) = (accb.offset(at), prod.offset(at));
                    let span = (count - 1) * seg + 256;
                    st.op(vec![
                        (Access::Write, aa.region(span)),
                        (Access::Read, aa.region(span)),
                        (Access::Read, pa.region(span)),
                    ])
                    .vec_bin(
                        BinOp::Add,
                        dt(cd),
                        VecOperand::new(aa.addr, 1, seg / 32),
                        VecOperand::new(aa.addr, 1, seg / 32),
                        VecOperand::new(pa.addr, 1, seg / 32),
                        count,
                        lanes(mask),
                    );
                    done += count;
                }
            }
        }
        st.ins().s_alu(AluOp::Add, ks, ks, kc);
        st.ins().s_alu(AluOp::Add, ga, ga, kc * s);
        let b_k = if g.b_t { 1 } else { g.b_row };
        st.ins().s_alu(AluOp::Add, gb, gb, kc * b_k * s);
        st
    };
    let whole = g.k / kc;
    if whole > 0 {
        let mut body = chunk(0, kc);
        body.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ge, ks, whole * kc)],
            body: chunk(1, kc),
        });
        tile.push(Item::Loop {
            exit_if: vec![Branch::new(Cond::Ge, ks, whole * kc)],
            body,
            latch: Vec::new(),
        });
    }
    if !g.k.is_multiple_of(kc) {
        tile.extend(chunk((whole % 2) as u32, g.k % kc));
    }

    // Each output's lanes folded across its repeats (into `prod`, 64 lanes
    // an output; with one repeat they are already there, in `acc`), then
    // each row's outputs across lanes into `res`, a row of the output's
    // pitch each.
    let reps = kc / LANES;
    let (parts, res) = if reps > 1 {
        let mut body = Vec::new();
        body.op(vec![
            (Access::Write, prod.region(outputs * 256)),
            (Access::Read, accb.region(outputs * seg)),
        ])
        .vec_red_a(
            ARed::Sum,
            dt(cd),
            VecOperand::new(sp, 1, 8),
            VecOperand::new(sa, 1, 8),
            reps,
            lanes(LANES),
        );
        body.ins().s_alu(AluOp::Add, sp, sp, 256u64);
        body.ins().s_alu(AluOp::Add, sa, sa, seg);
        tile.ins().s_li(ii, 0u64);
        tile.ins().s_li(sp, prod.addr);
        tile.ins().s_li(sa, accb.addr);
        count_up(&mut tile, ii, outputs, body);
        (prod, accb)
    } else {
        (accb, prod)
    };
    for i in 0..t.rows {
        let (src, dst) = (parts.offset(i * n * 256), res.offset(i * p.out * 4));
        tile.op(vec![
            (Access::Write, dst.region(n * 4)),
            (Access::Read, src.region(n * 256)),
        ])
        .vec_red_r(
            RRed::Sum,
            dt(cd),
            Address::from(dst.addr),
            VecOperand::new(src.addr, 1, 8),
            n,
            lanes(LANES),
        );
    }
    let ob = VBuf::of(&l.out, 0, g.out);
    epilogue(&mut tile, &g, res, ob, t.rows * p.out);
    tile.op(vec![(Access::Read, ob.region(l.out.bytes))])
        .mte3_ub_gm(gc, ob.addr, mcur, n * so, p.out * so, g.c_row * so);
    tile_loop(&mut items, &o, total, tile);
    Ok(items)
}
