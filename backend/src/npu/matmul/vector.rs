//! The vector path of a matmul stage, for dtypes the cube lacks: output
//! tiles accumulate in UB, one `vec.muls` per row and k (see the parent
//! module's docs).

use super::{Open, open, remaining, size, tile_loop, tile_setup};
use crate::npu::Ctx;
use crate::npu::inst::{InstBuilder, VecOperand, float_scalar, int_scalar, lanes};
use crate::npu::prog::{Access, Branch, Build, Item};
use crate::npu::vector::{self, Opnd, Seq, VBuf, dt};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{Geometry, vec_pitch};
use tessera_ir::plan::{LocalBuf, MatMul, VecMatB, VecMatSchedule};
use tessera_sim::isa::{AluOp, BinOp, Cond, MemTy, Reg, ScaOp, Scal, ScalarSpace, UnOp};

/// Generates the vector path of a matmul stage.
pub(super) fn generate(
    ctx: &mut Ctx<'_>,
    mm: &MatMul,
    t: &VecMatSchedule,
) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    let layout = &t.layout;
    let p = vec_pitch(&g, t);
    let (s, so) = (size(g.dtype), size(g.out));
    let cd = g.acc();
    let (ld_ty, widen) = match g.dtype {
        DType::F32 => (MemTy::U32, false),
        DType::BF16 => (MemTy::U16, true),
        DType::I8 => (MemTy::I8, false),
        other => {
            return Err(format!(
                "internal: no vector matmul for {other} inputs (the cube handles them)"
            ));
        }
    };
    let tm = g.m.div_ceil(t.rows);
    let tn = g.n.div_ceil(t.cols);
    let total = g.batches() * tm * tn;
    let per = 64; // f32 / i32 lanes per repeat
    let row_reps = t.cols / per;
    let tile_elems = t.rows * t.cols;

    let mut items = Vec::new();
    let o = open(ctx, mm, &g, &mut items)?;
    let mut r8 = [Reg(0); 8];
    for r in &mut r8 {
        *r = ctx.regs.get()?;
    }
    let [ks, kc, kq, ii, sa, ta, bq, val] = r8;
    // B's buffers: (loaded chunk, widened chunk, gather offsets and
    // row-major chunk when B is transposed).
    type BBufs<'b> = (
        &'b LocalBuf,
        Option<&'b LocalBuf>,
        Option<(&'b LocalBuf, &'b LocalBuf)>,
    );
    let (b_load, b_wide, b_gather): BBufs<'_> = match (&layout.b, g.b_t) {
        (VecMatB::RowMajor { b, widened }, false) => (b, widened.as_ref(), None),
        (
            VecMatB::Transposed {
                bt,
                widened,
                idx,
                gathered,
            },
            true,
        ) => (bt, widened.as_ref(), Some((idx, gathered))),
        _ => return Err("internal: the layout of B does not match its storage".into()),
    };
    let widened = |cd: DType| {
        b_wide
            .map(|w| VBuf::of(w, 0, cd))
            .ok_or_else(|| "internal: a widening matmul without its wide buffer".to_string())
    };
    // The index table of the gather (transposed B): element (k, j) of the
    // row-major chunk is at byte (j · pitch + k) · 4 of the widened Bᵀ.
    if let Some((idx, _)) = b_gather {
        gather_table(&mut items, idx, (t.k_chunk, t.cols), p.bt * 4);
    }

    let mut tile = Vec::new();
    tile_setup(&g, (t.rows, t.cols, 1, 1), (&o, o.tr), None, &mut tile);
    let Open { regs, .. } = &o;
    let (mcur, ncur, ga, gb, gc) = (regs.mcur, regs.ncur, regs.ga, regs.gb, regs.gc);
    let accb = VBuf::of(&layout.acc, 0, cd);
    let prod = VBuf::of(&layout.prod, 0, cd);
    Seq {
        items: &mut tile,
        n: tile_elems,
    }
    .dup(accb, int_scalar(0));
    tile.ins().s_li(ks, 0u64);

    let chunk = |h: u32| -> Result<Vec<Item>, String> {
        let mut st = Vec::new();
        remaining(&mut st, kc, g.k, ks, t.k_chunk);
        // A chunk.
        let ab = VBuf::of(&layout.a, h, g.dtype);
        let a_bytes = layout.a.bytes;
        let (a_n, a_len) = if g.a_t { (kc, mcur) } else { (mcur, kc) };
        st.ins().s_alu(AluOp::Mul, val, a_len, s);
        st.op(vec![(Access::Write, ab.region(a_bytes))]).mte2_gm_ub(
            ab.addr,
            ga,
            a_n,
            val,
            g.a_row * s,
            p.a * s,
        );
        // B chunk, widened (and gathered) into `b32` unless usable as is.
        let b32_bytes = t.k_chunk * t.cols * 4;
        let brow: VBuf = if let Some((idx, gathered)) = b_gather {
            let bt = VBuf::of(b_load, h, g.dtype);
            st.ins().s_alu(AluOp::Mul, val, kc, s);
            st.op(vec![(Access::Write, bt.region(b_load.bytes))])
                .mte2_gm_ub(bt.addr, gb, ncur, val, g.b_row * s, p.bt * s);
            let src = if g.dtype != cd {
                let w = widened(cd)?;
                Seq {
                    items: &mut st,
                    n: t.cols * p.bt,
                }
                .cvt(w, bt);
                w
            } else {
                bt.as_dtype(cd)
            };
            let idx = VBuf::of(idx, 0, DType::I32);
            let b32 = VBuf::of(gathered, 0, cd);
            let n = t.k_chunk * t.cols;
            let src_bytes = t.cols * p.bt * 4;
            let mut done = 0;
            while done < n {
                let reps = ((n - done) / per).min(255);
                let (dst, ix) = (b32.offset(done * 4), idx.offset(done * 4));
                st.op(vec![
                    (Access::Write, dst.region(reps * 256)),
                    (Access::Read, src.region(src_bytes)),
                    (Access::Read, ix.region(reps * 256)),
                ])
                .vec_gather(
                    dt(cd),
                    VecOperand::new(dst.addr, 1, 8),
                    src.addr,
                    VecOperand::new(ix.addr, 1, 8),
                    reps,
                    lanes(per),
                );
                done += reps * per;
            }
            b32
        } else {
            let bb = VBuf::of(b_load, h, g.dtype);
            st.ins().s_alu(AluOp::Mul, val, ncur, s);
            st.op(vec![(Access::Write, bb.region(b_load.bytes))])
                .mte2_gm_ub(bb.addr, gb, kc, val, g.b_row * s, t.cols * s);
            if g.dtype != cd {
                let b32 = widened(cd)?;
                Seq {
                    items: &mut st,
                    n: t.k_chunk * t.cols,
                }
                .cvt(b32, bb);
                b32
            } else {
                bb.as_dtype(cd)
            }
        };
        // For each k of the chunk: prod[i] = b[k] · a[i, k], acc += prod.
        let (a_istep, a_kstep) = if g.a_t { (s, p.a * s) } else { (p.a * s, s) };
        let mut kbody = Vec::new();
        kbody.ins().s_li(ii, 0u64);
        kbody.ins().s_li(ta, prod.addr);
        let mut ibody = Vec::new();
        ibody
            .op(vec![(Access::Read, ab.region(a_bytes))])
            .s_ld(ScalarSpace::Ub, ld_ty, val, sa);
        if widen {
            ibody.ins().s_alu(AluOp::Shl, val, val, 16u64);
        }
        ibody
            .op(vec![
                (Access::Write, prod.region(tile_elems * 4)),
                (Access::Read, brow.region(b32_bytes)),
            ])
            .vec_sca(
                ScaOp::Muls,
                dt(cd),
                VecOperand::new(ta, 1, 8),
                VecOperand::new(bq, 1, 8),
                Scal::Reg(val),
                row_reps,
                lanes(per),
            );
        let mut ilatch = Vec::new();
        ilatch.ins().s_alu(AluOp::Add, ii, ii, 1u64);
        ilatch.ins().s_alu(AluOp::Add, sa, sa, a_istep);
        ilatch.ins().s_alu(AluOp::Add, ta, ta, t.cols * 4);
        kbody.push(Item::Loop {
            exit_if: vec![Branch::new(Cond::Ge, ii, mcur)],
            body: ibody,
            latch: ilatch,
        });
        // acc += prod over the whole tile.
        let mut left = tile_elems / per;
        let mut at = 0;
        while left > 0 {
            let reps = left.min(255);
            let (pa, aa) = (prod.offset(at * 4), accb.offset(at * 4));
            kbody
                .op(vec![
                    (Access::Write, aa.region(reps * 256)),
                    (Access::Read, aa.region(reps * 256)),
                    (Access::Read, pa.region(reps * 256)),
                ])
                .vec_bin(
                    BinOp::Add,
                    dt(cd),
                    VecOperand::new(aa.addr, 1, 8),
                    VecOperand::new(aa.addr, 1, 8),
                    VecOperand::new(pa.addr, 1, 8),
                    reps,
                    lanes(per),
                );
            left -= reps;
            at += reps * per;
        }
        st.ins().s_li(kq, 0u64);
        st.ins().s_li(bq, brow.addr);
        st.ins().s_li(sa, ab.addr);
        let mut klatch = Vec::new();
        klatch.ins().s_alu(AluOp::Add, kq, kq, 1u64);
        klatch.ins().s_alu(AluOp::Add, bq, bq, t.cols * 4);
        // Back to row 0 of the next k.
        klatch.ins().s_alu(AluOp::Mul, sa, kq, a_kstep);
        klatch.ins().s_alu(AluOp::Add, sa, sa, ab.addr);
        st.push(Item::Loop {
            exit_if: vec![Branch::new(Cond::Ge, kq, kc)],
            body: kbody,
            latch: klatch,
        });
        // Advance.
        st.ins().s_alu(AluOp::Add, ks, ks, t.k_chunk);
        let a_k = if g.a_t { g.a_row } else { 1 };
        let b_k = if g.b_t { 1 } else { g.b_row };
        st.ins().s_alu(AluOp::Add, ga, ga, t.k_chunk * a_k * s);
        st.ins().s_alu(AluOp::Add, gb, gb, t.k_chunk * b_k * s);
        Ok(st)
    };
    let mut kbody = chunk(0)?;
    let second = chunk(1)?;
    kbody.push(Item::Guard {
        skip_if: vec![Branch::new(Cond::Ge, ks, g.k)],
        body: second,
    });
    tile.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, ks, g.k)],
        body: kbody,
        latch: Vec::new(),
    });
    // Epilogue: relu, cast, store (two output copies alternate by tile
    // parity would need a paired loop; one copy is reused, so the next
    // tile's cast waits for this store).
    let ob = VBuf::of(&layout.out, 0, g.out);
    epilogue(&mut tile, &g, accb, ob, tile_elems);
    tile.ins().s_alu(AluOp::Mul, val, ncur, so);
    tile.op(vec![(Access::Read, ob.region(layout.out.bytes))])
        .mte3_ub_gm(gc, ob.addr, mcur, val, t.cols * so, g.c_row * so);
    tile_loop(&mut items, &o, total, tile);
    Ok(items)
}

/// The vector matmuls' epilogue over `n` elements of the accumulator tile
/// `acc`: the scale, relu, then the copy or cast into the output tile.
pub(super) fn epilogue(items: &mut Vec<Item>, g: &Geometry, acc: VBuf, out: VBuf, n: u64) {
    let mut q = Seq { items, n };
    if let Some(c) = g.scale {
        q.sca(ScaOp::Muls, acc, acc, float_scalar(f64::from(c)));
    }
    if g.relu {
        if acc.dtype.is_int() {
            q.sca(ScaOp::Maxs, acc, acc, int_scalar(0));
        } else {
            q.un(UnOp::Relu, acc, acc);
        }
    }
    if out.dtype == acc.dtype {
        q.copy(out, acc);
    } else {
        q.cvt(out, acc);
    }
}

/// A gather's table of `rows × len` byte offsets in `idx`: entry `(r, e)`
/// is `e · stride + r · 4` (element `e` of row `r` of a 4-byte matrix
/// stored transposed with `stride` bytes between its rows), built once per
/// stage: `vec.iota`, a `vec.muls` for row 0, a `vec.adds` for each other.
pub(super) fn gather_table(
    items: &mut Vec<Item>,
    idx: &LocalBuf,
    (rows, len): (u64, u64),
    stride: u64,
) {
    let idx = VBuf::of(idx, 0, DType::I32);
    let i32_dt = dt(DType::I32);
    vector::emit(items, len, &[Opnd::Run(idx)], |b, v, rep, m| {
        b.vec_iota(i32_dt, v[0], int_scalar(0), rep, m)
    });
    let ops = [Opnd::Run(idx), Opnd::Run(idx)];
    vector::emit(items, len, &ops, |b, v, rep, m| {
        b.vec_sca(
            ScaOp::Muls,
            i32_dt,
            v[0],
            v[1],
            int_scalar(stride as i64),
            rep,
            m,
        )
    });
    for r in 1..rows {
        let ops = [Opnd::Run(idx.offset(r * len * 4)), Opnd::Run(idx)];
        vector::emit(items, len, &ops, |b, v, rep, m| {
            b.vec_sca(
                ScaOp::Adds,
                i32_dt,
                v[0],
                v[1],
                int_scalar((r * 4) as i64),
                rep,
                m,
            )
        });
    }
}
