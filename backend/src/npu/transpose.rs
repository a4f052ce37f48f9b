//! The transpose stage: `out = input` where the input is contiguous along
//! an output dim `p` other than the last (`q`).
//!
//! A tile is `tp × tq` elements of the (`p`, `q`) plane. It is loaded as
//! `tq` bursts of `tp` elements (one per `q`, contiguous along `p`) into a
//! UB tile `A[q][p]`, transposed by `vec.gather` — output row `i` gathers
//! `A[q][i]` for every `q` through an index vector `q · pitch_p · size`
//! built once with `vec.iota` — into `B[p][q]`, and stored as `tp` bursts of
//! `tq` elements. Other dims are looped over. Two tiles per iteration on
//! two buffer copies, as in the other templates.

use super::Ctx;
use super::inst::{InstBuilder, VecOperand, int_scalar, lanes};
use super::prog::{Access, Build, Item};
use super::tiles::double_buffered;
use super::vector::{self, Opnd, VBuf, dt};
use tessera_ir::DType;
use tessera_ir::plan::Transpose;
use tessera_ir::plan::transpose::{LANES, pitches, plane};
use tessera_sim::isa::{AluOp, Reg, ScaOp};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Generates a transpose stage.
pub fn generate(ctx: &mut Ctx<'_>, tr: &Transpose) -> Result<Vec<Item>, String> {
    let (input, out, layout) = (&tr.input, &tr.out, &tr.schedule.layout);
    let pl = plane(input, out)?;
    let dtype = out.dtype;
    let s = size(dtype);
    let (tp, tq) = (tr.schedule.tp, tr.schedule.tq);
    let (pp, pq) = pitches(dtype, tp, tq);
    let (np, nq) = (pl.dims[pl.p], pl.dims[pl.q]);
    let others: Vec<usize> = (0..pl.dims.len())
        .filter(|&d| d != pl.p && d != pl.q)
        .collect();
    let n_other: u64 = others.iter().map(|&d| pl.dims[d]).product();
    let (bp, bq) = (np.div_ceil(tp), nq.div_ceil(tq));
    let total = n_other * bp * bq;
    let mut items = Vec::new();
    let (bi, bd) = ctx.block(&mut items)?;
    let base_in = ctx.gm_base(&mut items, input)?;
    let base_out = ctx.gm_base(&mut items, out)?;
    for (r, v) in [(base_in, input), (base_out, out)] {
        let off = v.offset * s;
        if off != 0 {
            items.ins().s_alu(AluOp::Add, r, r, off);
        }
    }
    // The gather offsets: idx[q] = q · pp · s.
    let idx = VBuf::of(&layout.idx, 0, DType::I32);
    let idx_lanes = round_up(tq, LANES);
    vector::emit(&mut items, idx_lanes, &[Opnd::Run(idx)], |b, v, rep, m| {
        b.vec_iota(dt(DType::I32), v[0], int_scalar(0), rep, m)
    });
    let ops = [Opnd::Run(idx), Opnd::Run(idx)];
    vector::emit(&mut items, idx_lanes, &ops, |b, v, rep, m| {
        b.vec_sca(
            ScaOp::Muls,
            dt(DType::I32),
            v[0],
            v[1],
            int_scalar((pp * s) as i64),
            rep,
            m,
        )
    });
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    items.ins().s_mov(tt, bi);
    items.ins().s_alu(AluOp::Add, step, bd, bd);
    let mut w = [Reg(0); 8];
    for x in &mut w {
        *x = ctx.regs.get()?;
    }
    let [o, p0, q0, pc, qc, ain, aout, tmp] = w;
    let digit = ctx.regs.get()?;
    double_buffered(&mut items, (tt, tb), bd, step, total, |half, tr| {
        let a = VBuf::of(&layout.a, half, dtype);
        let b = VBuf::of(&layout.b, half, dtype);
        let mut h = Vec::new();
        // Tile → (other index, p block, q block).
        h.ins().s_alu(AluOp::Div, o, tr, bp * bq);
        h.ins().s_alu(AluOp::Rem, tmp, tr, bp * bq);
        h.ins().s_alu(AluOp::Div, p0, tmp, bq);
        h.ins().s_alu(AluOp::Rem, q0, tmp, bq);
        h.ins().s_alu(AluOp::Mul, p0, p0, tp);
        h.ins().s_alu(AluOp::Mul, q0, q0, tq);
        h.ins().s_li(pc, np);
        h.ins().s_alu(AluOp::Sub, pc, pc, p0);
        h.ins().s_alu(AluOp::Min, pc, pc, tp);
        h.ins().s_li(qc, nq);
        h.ins().s_alu(AluOp::Sub, qc, qc, q0);
        h.ins().s_alu(AluOp::Min, qc, qc, tq);
        // Addresses: Σ other digits · strides + p0·sp + q0·sq, in and out.
        h.ins().s_alu(AluOp::Mul, ain, p0, pl.in_strides[pl.p] * s);
        h.ins().s_alu(AluOp::Mul, tmp, q0, pl.in_strides[pl.q] * s);
        h.ins().s_alu(AluOp::Add, ain, ain, tmp);
        h.ins()
            .s_alu(AluOp::Mul, aout, p0, pl.out_strides[pl.p] * s);
        h.ins().s_alu(AluOp::Mul, tmp, q0, pl.out_strides[pl.q] * s);
        h.ins().s_alu(AluOp::Add, aout, aout, tmp);
        for &d in others.iter().rev() {
            h.ins().s_alu(AluOp::Rem, digit, o, pl.dims[d]);
            h.ins().s_alu(AluOp::Div, o, o, pl.dims[d]);
            h.ins().s_alu(AluOp::Mul, tmp, digit, pl.in_strides[d] * s);
            h.ins().s_alu(AluOp::Add, ain, ain, tmp);
            h.ins().s_alu(AluOp::Mul, tmp, digit, pl.out_strides[d] * s);
            h.ins().s_alu(AluOp::Add, aout, aout, tmp);
        }
        h.ins().s_alu(AluOp::Add, ain, ain, base_in);
        h.ins().s_alu(AluOp::Add, aout, aout, base_out);
        // Load: one burst of pc elements per q.
        let a_bytes = round_up(tq, LANES) * pp * s;
        h.ins().s_alu(AluOp::Mul, tmp, pc, s);
        h.op(vec![(Access::Write, a.region(a_bytes))]).mte2_gm_ub(
            a.addr,
            ain,
            qc,
            tmp,
            pl.in_strides[pl.q] * s,
            pp * s,
        );
        // Transpose: output row i gathers A[q][i].
        for i in 0..tp {
            let src = a.offset(i * s);
            let dst = b.offset(i * pq * s);
            h.op(vec![
                (Access::Write, dst.region(idx_lanes * s)),
                (Access::Read, a.region(a_bytes)),
                (Access::Read, idx.region(idx_lanes * 4)),
            ])
            .vec_gather(
                dt(dtype),
                VecOperand::new(dst.addr, 1, LANES * s / 32),
                src.addr,
                VecOperand::new(idx.addr, 1, 8),
                idx_lanes / LANES,
                lanes(LANES),
            );
        }
        // Store: one burst of qc elements per p.
        h.ins().s_alu(AluOp::Mul, tmp, qc, s);
        h.op(vec![(Access::Read, b.region(tp * pq * s))])
            .mte3_ub_gm(aout, b.addr, pc, tmp, pq * s, pl.out_strides[pl.p] * s);
        Ok(h)
    })?;
    Ok(items)
}
