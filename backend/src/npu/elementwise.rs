//! The elementwise stage: `out = body(inputs)` over UB tiles on the vector
//! unit.
//!
//! The iteration space is the output's shape with dims coalesced
//! (`ir::plan::coalesce`); tiles are `rows × cols` elements of its last two
//! dims, stored with a row pitch of `pitch` elements in UB, and handed out
//! round-robin to the blocks. Each loop iteration handles two tiles on two
//! copies of every streamed buffer (ping-pong), so MTE2 loads, vector
//! compute and MTE3 stores of neighbouring tiles overlap; the sync pass
//! places the events. Operands by pattern (`ir::plan::Pattern`): row-major
//! ones are strided bursts; a column (one value per row) is loaded
//! contiguously, replicated into 32-byte blocks by `vec.brcb` and expanded
//! row by row; a scalar is replicated over the whole tile; constants are
//! filled once before the loop. The whole tile is computed (padding
//! included); only the valid rows and columns are stored.

use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use super::{Ctx, slot};
use tessera_ir::plan::elementwise::{patterns, space};
use tessera_ir::plan::{Elementwise, EwArg, EwInst, EwOp, LocalBuf, Pattern, Source, View};
use tessera_ir::{BinaryOp, DType, Scalar};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// Inputs that are integer divisors (their tiles, or a broadcast column's
/// staging rows, are filled with 1 before loading, so padding never divides
/// by zero).
fn divisors(body: &[EwInst]) -> Vec<usize> {
    body.iter()
        .filter(|i| matches!(i.op, EwOp::Binary(BinaryOp::Div)) && i.dtype.is_int())
        .filter_map(|i| match i.args.get(1) {
            Some(EwArg::Input(k)) => Some(*k),
            _ => None,
        })
        .collect()
}

struct Tiles {
    dims: Vec<u64>,
    /// Per operand (inputs then output): strides over `dims`.
    strides: Vec<Vec<u64>>,
    rows: u64,
    cols: u64,
}

fn tiles(inputs: &[View], out: &View) -> Tiles {
    let (mut dims, mut strides) = space(inputs, out);
    if dims.len() == 1 {
        dims.insert(0, 1);
        for s in &mut strides {
            s.insert(0, 0);
        }
    }
    let n = dims.len();
    Tiles {
        rows: dims[n - 2],
        cols: dims[n - 1],
        dims,
        strides,
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

/// Generates an elementwise stage.
pub fn generate(ctx: &mut Ctx<'_>, e: &Elementwise) -> Result<Vec<Item>, String> {
    let Elementwise {
        inputs,
        body,
        out,
        schedule,
    } = e;
    let layout = &schedule.layout;
    if layout.inputs.len() != inputs.len() || layout.temps.len() + 1 != body.len() {
        return Err("internal: the layout does not match the stage".into());
    }
    let t = tiles(inputs, out);
    let pats = patterns(inputs, out);
    let (r_tile, l_tile, pitch) = (schedule.rows, schedule.cols, schedule.pitch);
    let tile = r_tile * pitch;
    let nrb = t.rows.div_ceil(r_tile);
    let ncb = t.cols.div_ceil(l_tile);
    let outer: Vec<u64> = t.dims[..t.dims.len() - 2].to_vec();
    let total: u64 = outer.iter().product::<u64>() * nrb * ncb;
    let per_outer = nrb * ncb;
    let divs = divisors(body);

    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.sys {bi}, block_idx")));
    items.push(Item::Scalar(format!("s.sys {bd}, block_dim")));
    // GM bases, already offset to each view's first element.
    let mut bases: Vec<Option<String>> = Vec::new();
    for v in inputs.iter().chain(std::iter::once(out)) {
        if let Source::Constant(_) = v.source {
            bases.push(None);
            continue;
        }
        let r = ctx.gm_base(&mut items, v)?;
        let off = v.offset * size(v.dtype);
        if off != 0 {
            items.push(Item::Scalar(format!("s.add {r}, {r}, {off}")));
        }
        bases.push(Some(r));
    }
    // Constants: filled once.
    for (i, v) in inputs.iter().enumerate() {
        if let Source::Constant(c) = &v.source {
            let b = buf(&layout.inputs[i].tile, 0, v.dtype);
            vector::emit(
                &mut items,
                &format!("vec.dup.{}", vector::dt(v.dtype)),
                tile,
                &[Opnd::Run(b), scalar_literal(c)],
            );
        }
    }
    // The tile loop: two tiles per iteration.
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.mov {tt}, {bi}")));
    items.push(Item::Scalar(format!("s.add {step}, {bd}, {bd}")));
    let work = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    let digits: Vec<String> = (0..outer.len())
        .map(|_| ctx.regs.get())
        .collect::<Result<_, _>>()?;
    let loop_label = ctx.labels.fresh("tiles");
    let mut body_items = Vec::new();
    for half in 0..2u32 {
        let t_reg = if half == 0 { tt.clone() } else { tb.clone() };
        let mut h = Vec::new();
        let [row0, col0, rcur, ccur, len, addr, tmp, o] = &work;
        // Tile coordinates.
        h.push(Item::Scalar(format!("s.div {o}, {t_reg}, {per_outer}")));
        h.push(Item::Scalar(format!("s.rem {tmp}, {t_reg}, {per_outer}")));
        h.push(Item::Scalar(format!("s.div {row0}, {tmp}, {ncb}")));
        h.push(Item::Scalar(format!("s.rem {col0}, {tmp}, {ncb}")));
        h.push(Item::Scalar(format!("s.mul {row0}, {row0}, {r_tile}")));
        h.push(Item::Scalar(format!("s.mul {col0}, {col0}, {l_tile}")));
        h.push(Item::Scalar(format!("s.li {rcur}, {}", t.rows)));
        h.push(Item::Scalar(format!("s.sub {rcur}, {rcur}, {row0}")));
        h.push(Item::Scalar(format!("s.min {rcur}, {rcur}, {r_tile}")));
        h.push(Item::Scalar(format!("s.li {ccur}, {}", t.cols)));
        h.push(Item::Scalar(format!("s.sub {ccur}, {ccur}, {col0}")));
        h.push(Item::Scalar(format!("s.min {ccur}, {ccur}, {l_tile}")));
        for (k, d) in outer.iter().enumerate().rev() {
            h.push(Item::Scalar(format!("s.rem {}, {o}, {d}", digits[k])));
            h.push(Item::Scalar(format!("s.div {o}, {o}, {d}")));
        }
        // The GM address of operand `v` for this tile, into `addr`.
        let address = |h: &mut Vec<Item>, v: usize, elem: u64| {
            let st = &t.strides[v];
            let n = st.len();
            h.push(Item::Scalar(format!(
                "s.mul {addr}, {row0}, {}",
                st[n - 2] * elem
            )));
            h.push(Item::Scalar(format!(
                "s.mul {tmp}, {col0}, {}",
                st[n - 1] * elem
            )));
            h.push(Item::Scalar(format!("s.add {addr}, {addr}, {tmp}")));
            for (k, dg) in digits.iter().enumerate() {
                if st[k] != 0 {
                    h.push(Item::Scalar(format!("s.mul {tmp}, {dg}, {}", st[k] * elem)));
                    h.push(Item::Scalar(format!("s.add {addr}, {addr}, {tmp}")));
                }
            }
            if let Some(Some(b)) = bases.get(v) {
                h.push(Item::Scalar(format!("s.add {addr}, {addr}, {b}")));
            }
        };
        // Loads first (all MTE2), then the vector expansions of columns and
        // scalars, so one event covers every load of the tile.
        let mut expand: Vec<Item> = Vec::new();
        for (i, v) in inputs.iter().enumerate() {
            if let Source::Constant(_) = v.source {
                continue;
            }
            let s = size(v.dtype);
            let dst = buf(&layout.inputs[i].tile, half, v.dtype);
            // An integer divisor's padding must hold 1, not zero: fill what
            // the load leaves short (the tile, or a column's staging rows,
            // all of which are expanded) before loading.
            let ones = |h: &mut Vec<Item>, b: VBuf, n: u64| {
                if divs.contains(&i) {
                    let dup = format!("vec.dup.{}", vector::dt(v.dtype));
                    vector::emit(h, &dup, n, &[Opnd::Run(b), Opnd::Lit("1".into())]);
                }
            };
            address(&mut h, i, s);
            let st = &t.strides[i];
            match pats[i] {
                Pattern::RowMajor => {
                    ones(&mut h, dst, tile);
                    h.push(Item::Scalar(format!("s.mul {len}, {ccur}, {s}")));
                    h.push(Item::Op(MicroOp {
                        text: format!(
                            "mte2.copy.gm.ub [{}], [{addr}], {rcur}, {len}, {}, {}",
                            dst.addr,
                            st[st.len() - 2] * s,
                            pitch * s
                        ),
                        pipe: Pipe::Mte2,
                        accesses: vec![(Access::Write, ub(dst, tile * s))],
                    }));
                }
                Pattern::Column | Pattern::Scalar => {
                    let Some(bcast) = &layout.inputs[i].broadcast else {
                        return Err("internal: a broadcast input without its buffers".into());
                    };
                    let staging = buf(&bcast.staging, half, v.dtype);
                    let bc = buf(&bcast.blocks, half, v.dtype);
                    if pats[i] == Pattern::Column {
                        ones(&mut h, staging, round_up(r_tile * s, 32) / s);
                    }
                    let (count, reps) = if pats[i] == Pattern::Column {
                        h.push(Item::Scalar(format!("s.mul {len}, {rcur}, {s}")));
                        (len.clone(), r_tile.div_ceil(8))
                    } else {
                        (s.to_string(), 1)
                    };
                    h.push(Item::Op(MicroOp {
                        text: format!(
                            "mte2.copy.gm.ub [{}], [{addr}], 1, {count}, 0, 0",
                            staging.addr
                        ),
                        pipe: Pipe::Mte2,
                        accesses: vec![(Access::Write, ub(staging, round_up(r_tile * s, 32)))],
                    }));
                    let h = &mut expand;
                    // Replicate each value into a 32-byte block; 1-byte
                    // values go through i32 first.
                    let (src, copy) = if s == 1 {
                        let Some(wd) = &bcast.widened else {
                            return Err(
                                "internal: a 1-byte broadcast without its i32 buffer".into()
                            );
                        };
                        let wide = buf(wd, half, DType::I32);
                        vector::emit(
                            h,
                            &format!("vec.cvt.i32.{}", vector::dt(v.dtype)),
                            reps * 8,
                            &[Opnd::Run(wide), Opnd::Run(staging)],
                        );
                        (wide, format!("vec.cvt.{}.i32", vector::dt(v.dtype)))
                    } else {
                        (staging, format!("vec.copy.{}", vector::dt(v.dtype)))
                    };
                    let src_bytes = round_up(r_tile * size(src.dtype), 32);
                    h.push(Item::Op(MicroOp {
                        text: format!(
                            "vec.brcb.{} [{}, 1, 8], [{}], {reps}",
                            vector::dt(src.dtype),
                            bc.addr,
                            src.addr
                        ),
                        pipe: Pipe::V,
                        accesses: vec![
                            (Access::Write, ub(bc, 256 * reps)),
                            (Access::Read, ub(src, src_bytes)),
                        ],
                    }));
                    let bc = bc.as_dtype(src.dtype);
                    if pats[i] == Pattern::Scalar {
                        vector::emit(h, &copy, tile, &[Opnd::Run(dst), Opnd::Block(bc)]);
                    } else {
                        for j in 0..r_tile {
                            let row = VBuf {
                                addr: dst.addr + j * pitch * s,
                                ..dst
                            };
                            let block = VBuf {
                                addr: bc.addr + 32 * j,
                                ..bc
                            };
                            vector::emit(h, &copy, pitch, &[Opnd::Run(row), Opnd::Block(block)]);
                        }
                    }
                }
                Pattern::Strided => {
                    return Err(
                        "internal: a strided elementwise operand reached code generation".into(),
                    );
                }
            }
        }
        h.extend(expand);
        // Compute.
        let scratch: Vec<VBuf> = layout
            .scratch
            .iter()
            .map(|l| buf(l, 0, DType::F32))
            .collect();
        let mut results: Vec<VBuf> = Vec::new();
        for (j, inst) in body.iter().enumerate() {
            let dst = match layout.temps.get(j) {
                Some(t) => buf(t, 0, inst.dtype),
                None => buf(&layout.out, half, out.dtype),
            };
            let args: Vec<VBuf> = inst
                .args
                .iter()
                .map(|a| match a {
                    EwArg::Input(k) => inputs
                        .get(*k)
                        .map(|v| buf(&layout.inputs[*k].tile, half, v.dtype))
                        .ok_or_else(|| "internal: an elementwise input out of range".to_string()),
                    EwArg::Inst(k) => results.get(*k).copied().ok_or_else(|| {
                        "internal: forward reference in an elementwise body".to_string()
                    }),
                })
                .collect::<Result<_, _>>()?;
            vector::emit_op(&mut h, tile, &inst.op, dst, &args, &scratch)?;
            results.push(dst);
        }
        // Store.
        let o_idx = inputs.len();
        let so = size(out.dtype);
        let ob = buf(&layout.out, half, out.dtype);
        address(&mut h, o_idx, so);
        h.push(Item::Scalar(format!("s.mul {len}, {ccur}, {so}")));
        let st = &t.strides[o_idx];
        h.push(Item::Op(MicroOp {
            text: format!(
                "mte3.copy.ub.gm [{addr}], [{}], {rcur}, {len}, {}, {}",
                ob.addr,
                pitch * so,
                st[st.len() - 2] * so
            ),
            pipe: Pipe::Mte3,
            accesses: vec![(Access::Read, ub(ob, tile * so))],
        }));
        if half == 0 {
            body_items.extend(h);
        } else {
            body_items.push(Item::Scalar(format!("s.add {tb}, {tt}, {bd}")));
            let label = ctx.labels.fresh("half");
            body_items.push(Item::Guard {
                skip_if: format!("s.br.ge {tb}, {total}, {label}_skip"),
                label,
                body: h,
            });
        }
    }
    items.push(Item::Loop {
        header: vec![format!("s.br.ge {tt}, {total}, {loop_label}_end")],
        label: loop_label,
        body: body_items,
        latch: vec![format!("s.add {tt}, {tt}, {step}")],
    });
    Ok(items)
}

fn ub(b: VBuf, bytes: u64) -> Region {
    Region {
        space: Space::Ub,
        start: b.addr,
        end: b.addr + bytes,
        slot: b.slot,
    }
}

fn scalar_literal(c: &Scalar) -> Opnd {
    match *c {
        Scalar::Float(x) => vector::lit(x),
        Scalar::Int(i) => Opnd::Lit(i.to_string()),
        Scalar::Bool(b) => Opnd::Lit(u8::from(b).to_string()),
    }
}
