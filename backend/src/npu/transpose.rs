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

use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use super::{Ctx, slot};
use tessera_ir::DType;
use tessera_ir::plan::transpose::{LANES, pitches, plane};
use tessera_ir::plan::{LocalBuf, Transpose};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
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
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.sys {bi}, block_idx")));
    items.push(Item::Scalar(format!("s.sys {bd}, block_dim")));
    let base_in = ctx.gm_base(&mut items, input)?;
    let base_out = ctx.gm_base(&mut items, out)?;
    for (r, v) in [(&base_in, input), (&base_out, out)] {
        let off = v.offset * s;
        if off != 0 {
            items.push(Item::Scalar(format!("s.add {r}, {r}, {off}")));
        }
    }
    // The gather offsets: idx[q] = q · pp · s.
    let idx = buf(&layout.idx, 0, DType::I32);
    let idx_lanes = round_up(tq, LANES);
    vector::emit(
        &mut items,
        "vec.iota.i32",
        idx_lanes,
        &[Opnd::Run(idx), Opnd::Lit("0".into())],
    );
    vector::emit(
        &mut items,
        "vec.muls.i32",
        idx_lanes,
        &[
            Opnd::Run(idx),
            Opnd::Run(idx),
            Opnd::Lit((pp * s).to_string()),
        ],
    );
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.mov {tt}, {bi}")));
    items.push(Item::Scalar(format!("s.add {step}, {bd}, {bd}")));
    let w: Vec<String> = (0..8).map(|_| ctx.regs.get()).collect::<Result<_, _>>()?;
    let [o, p0, q0, pc, qc, ain, aout, tmp] =
        [&w[0], &w[1], &w[2], &w[3], &w[4], &w[5], &w[6], &w[7]];
    let digit = ctx.regs.get()?;
    let loop_label = ctx.labels.fresh("tiles");
    let mut body = Vec::new();
    for half in 0..2u32 {
        let tr = if half == 0 { tt.clone() } else { tb.clone() };
        let a = buf(&layout.a, half, dtype);
        let b = buf(&layout.b, half, dtype);
        let mut h = Vec::new();
        // Tile → (other index, p block, q block).
        h.push(Item::Scalar(format!("s.div {o}, {tr}, {}", bp * bq)));
        h.push(Item::Scalar(format!("s.rem {tmp}, {tr}, {}", bp * bq)));
        h.push(Item::Scalar(format!("s.div {p0}, {tmp}, {bq}")));
        h.push(Item::Scalar(format!("s.rem {q0}, {tmp}, {bq}")));
        h.push(Item::Scalar(format!("s.mul {p0}, {p0}, {tp}")));
        h.push(Item::Scalar(format!("s.mul {q0}, {q0}, {tq}")));
        h.push(Item::Scalar(format!("s.li {pc}, {np}")));
        h.push(Item::Scalar(format!("s.sub {pc}, {pc}, {p0}")));
        h.push(Item::Scalar(format!("s.min {pc}, {pc}, {tp}")));
        h.push(Item::Scalar(format!("s.li {qc}, {nq}")));
        h.push(Item::Scalar(format!("s.sub {qc}, {qc}, {q0}")));
        h.push(Item::Scalar(format!("s.min {qc}, {qc}, {tq}")));
        // Addresses: Σ other digits · strides + p0·sp + q0·sq, in and out.
        h.push(Item::Scalar(format!(
            "s.mul {ain}, {p0}, {}",
            pl.in_strides[pl.p] * s
        )));
        h.push(Item::Scalar(format!(
            "s.mul {tmp}, {q0}, {}",
            pl.in_strides[pl.q] * s
        )));
        h.push(Item::Scalar(format!("s.add {ain}, {ain}, {tmp}")));
        h.push(Item::Scalar(format!(
            "s.mul {aout}, {p0}, {}",
            pl.out_strides[pl.p] * s
        )));
        h.push(Item::Scalar(format!(
            "s.mul {tmp}, {q0}, {}",
            pl.out_strides[pl.q] * s
        )));
        h.push(Item::Scalar(format!("s.add {aout}, {aout}, {tmp}")));
        for &d in others.iter().rev() {
            h.push(Item::Scalar(format!("s.rem {digit}, {o}, {}", pl.dims[d])));
            h.push(Item::Scalar(format!("s.div {o}, {o}, {}", pl.dims[d])));
            h.push(Item::Scalar(format!(
                "s.mul {tmp}, {digit}, {}",
                pl.in_strides[d] * s
            )));
            h.push(Item::Scalar(format!("s.add {ain}, {ain}, {tmp}")));
            h.push(Item::Scalar(format!(
                "s.mul {tmp}, {digit}, {}",
                pl.out_strides[d] * s
            )));
            h.push(Item::Scalar(format!("s.add {aout}, {aout}, {tmp}")));
        }
        h.push(Item::Scalar(format!("s.add {ain}, {ain}, {base_in}")));
        h.push(Item::Scalar(format!("s.add {aout}, {aout}, {base_out}")));
        // Load: one burst of pc elements per q.
        h.push(Item::Scalar(format!("s.mul {tmp}, {pc}, {s}")));
        h.push(Item::Op(MicroOp {
            text: format!(
                "mte2.copy.gm.ub [{}], [{ain}], {qc}, {tmp}, {}, {}",
                a.addr,
                pl.in_strides[pl.q] * s,
                pp * s
            ),
            pipe: Pipe::Mte2,
            accesses: vec![(Access::Write, ub(a, round_up(tq, LANES) * pp * s))],
        }));
        // Transpose: output row i gathers A[q][i].
        for i in 0..tp {
            let src = VBuf {
                addr: a.addr + i * s,
                ..a
            };
            let dst = VBuf {
                addr: b.addr + i * pq * s,
                ..b
            };
            let reps = idx_lanes / LANES;
            h.push(Item::Op(MicroOp {
                text: format!(
                    "vec.gather.{} [{}, 1, {}], [{}], [{}, 1, 8], {reps}, {LANES}",
                    vector::dt(dtype),
                    dst.addr,
                    LANES * s / 32,
                    src.addr,
                    idx.addr
                ),
                pipe: Pipe::V,
                accesses: vec![
                    (Access::Write, ub(dst, idx_lanes * s)),
                    (Access::Read, ub(a, round_up(tq, LANES) * pp * s)),
                    (Access::Read, ub(idx, idx_lanes * 4)),
                ],
            }));
        }
        // Store: one burst of qc elements per p.
        h.push(Item::Scalar(format!("s.mul {tmp}, {qc}, {s}")));
        h.push(Item::Op(MicroOp {
            text: format!(
                "mte3.copy.ub.gm [{aout}], [{}], {pc}, {tmp}, {}, {}",
                b.addr,
                pq * s,
                pl.out_strides[pl.p] * s
            ),
            pipe: Pipe::Mte3,
            accesses: vec![(Access::Read, ub(b, tp * pq * s))],
        }));
        if half == 0 {
            body.extend(h);
        } else {
            body.push(Item::Scalar(format!("s.add {tb}, {tt}, {bd}")));
            let label = ctx.labels.fresh("half");
            body.push(Item::Guard {
                skip_if: format!("s.br.ge {tb}, {total}, {label}_skip"),
                label,
                body: h,
            });
        }
    }
    items.push(Item::Loop {
        header: vec![format!("s.br.ge {tt}, {total}, {loop_label}_end")],
        label: loop_label,
        body,
        latch: vec![format!("s.add {tt}, {tt}, {step}")],
    });
    Ok(items)
}
