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
use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use tessera_ir::DType;
use tessera_ir::plan::{LocalBuf, MemSpace, StageKind, View, coalesce};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Gather lanes per repeat (the index operand is 4-byte).
pub const LANES: u64 = 64;

/// The transposed plane of a transpose stage: coalesced extents, input and
/// output strides, and the dims `p` (input contiguous) and `q` (last).
pub struct Plane {
    /// Coalesced extents.
    pub dims: Vec<u64>,
    /// Input strides over `dims`.
    pub in_strides: Vec<u64>,
    /// Output strides over `dims`.
    pub out_strides: Vec<u64>,
    /// The dim along which the input is contiguous.
    pub p: usize,
    /// The output's last dim.
    pub q: usize,
}

/// Analyses a transpose stage's views.
pub fn plane(input: &View, out: &View) -> Result<Plane, String> {
    let (dims, st) = coalesce(&out.shape, &[&input.strides, &out.strides]);
    let q = dims.len() - 1;
    let p = (0..dims.len())
        .rev()
        .find(|&d| d != q && st[0][d] == 1 && dims[d] > 1)
        .ok_or_else(|| "internal: a transpose input with no contiguous dim".to_string())?;
    if st[1][q] != 1 {
        return Err("internal: a transpose output must be contiguous along its last dim".into());
    }
    Ok(Plane {
        in_strides: st[0].clone(),
        out_strides: st[1].clone(),
        dims,
        p,
        q,
    })
}

/// Pitches of the two UB tiles: `A` rows hold `tp` elements, `B` rows `tq`.
pub fn pitches(dtype: DType, tp: u64, tq: u64) -> (u64, u64) {
    let unit = 32 / size(dtype);
    (round_up(tp, unit), round_up(tq, LANES.max(unit)))
}

/// The on-chip buffers of a transpose stage with `tp × tq` tiles.
pub fn layout(dtype: DType, tp: u64, tq: u64, align: u64) -> Vec<LocalBuf> {
    let (pp, pq) = pitches(dtype, tp, tq);
    let s = size(dtype);
    let a_rows = round_up(tq, LANES);
    let mut bufs = Vec::new();
    let mut at = 0u64;
    for (name, bytes, copies) in [
        ("a", a_rows * pp * s, 2u32),
        ("b", tp * pq * s, 2),
        ("idx", round_up(tq, LANES) * 4, 1),
    ] {
        let bytes = round_up(bytes.max(32), align);
        bufs.push(LocalBuf {
            name: name.to_string(),
            space: MemSpace::Ub,
            offset: at,
            bytes,
            copies,
        });
        at += bytes * u64::from(copies);
    }
    bufs
}

fn ub(b: VBuf, bytes: u64) -> Region {
    Region {
        space: Space::Ub,
        start: b.addr,
        end: b.addr + bytes,
        slot: b.slot,
    }
}

/// Generates a transpose stage.
pub fn generate(ctx: &mut Ctx<'_>) -> Result<Vec<Item>, String> {
    let StageKind::Transpose { input, out, .. } = ctx.stage.kind.clone() else {
        return Err("internal: not a transpose stage".into());
    };
    let pl = plane(&input, &out)?;
    let dtype = out.dtype;
    let s = size(dtype);
    let (tp, tq) = (ctx.param("tp")?, ctx.param("tq")?);
    let (pp, pq) = pitches(dtype, tp, tq);
    let (np, nq) = (pl.dims[pl.p], pl.dims[pl.q]);
    let others: Vec<usize> = (0..pl.dims.len())
        .filter(|&d| d != pl.p && d != pl.q)
        .collect();
    let n_other: u64 = others.iter().map(|&d| pl.dims[d]).product();
    let (bp, bq) = (np.div_ceil(tp), nq.div_ceil(tq));
    let total = n_other * bp * bq;
    let buf = |ctx: &Ctx<'_>, name: &str, copy: u32, dt: DType| -> Result<VBuf, String> {
        let l = ctx.local(name)?;
        let copy = copy.min(l.copies - 1);
        Ok(VBuf {
            addr: l.offset + u64::from(copy) * l.bytes,
            dtype: dt,
            slot: ctx.slot(name, copy),
        })
    };
    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.sys {bi}, block_idx")));
    items.push(Item::Scalar(format!("s.sys {bd}, block_dim")));
    let base_in = ctx.gm_base(&mut items, &input)?;
    let base_out = ctx.gm_base(&mut items, &out)?;
    for (r, v) in [(&base_in, &input), (&base_out, &out)] {
        let off = v.offset * s;
        if off != 0 {
            items.push(Item::Scalar(format!("s.add {r}, {r}, {off}")));
        }
    }
    // The gather offsets: idx[q] = q · pp · s.
    let idx = buf(ctx, "idx", 0, DType::I32)?;
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
        let a = buf(ctx, "a", half, dtype)?;
        let b = buf(ctx, "b", half, dtype)?;
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
