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

use super::Ctx;
use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use super::vector::{self, Opnd, VBuf};
use tessera_ir::plan::{
    EwArg, EwInst, EwOp, LocalBuf, MemSpace, Pattern, Source, StageKind, View, coalesce, pattern,
};
use tessera_ir::{BinaryOp, DType, Scalar};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

fn round_up(x: u64, a: u64) -> u64 {
    x.div_ceil(a) * a
}

/// The coalesced iteration space of an elementwise stage: extents and the
/// strides of each input, then of the output.
pub fn space(inputs: &[View], out: &View) -> (Vec<u64>, Vec<Vec<u64>>) {
    let mut strides: Vec<&[u64]> = inputs.iter().map(|v| v.strides.as_slice()).collect();
    strides.push(&out.strides);
    let (mut dims, mut st) = coalesce(&out.shape, &strides);
    // Rows move as bursts, so the output must be contiguous along the last
    // dim, and every input must be row-major, a column or a scalar there.
    // When that fails (a column written into a wider row, a view with no
    // unit stride at all), iterate over a trailing unit dim instead: bursts
    // of one element, slow but general. (True transposes get their own
    // stage, see `transpose.rs`.)
    let strided_input = st[..st.len() - 1]
        .iter()
        .any(|s| pattern(s) == Pattern::Strided);
    if st.last().and_then(|o| o.last()) != Some(&1) || strided_input {
        dims.push(1);
        for s in &mut st {
            s.push(1);
        }
    }
    (dims, st)
}

/// The pattern of each input (constants are `Scalar`).
pub fn patterns(inputs: &[View], out: &View) -> Vec<Pattern> {
    let (_, strides) = space(inputs, out);
    inputs
        .iter()
        .zip(&strides)
        .map(|(v, s)| match v.source {
            Source::Constant(_) => Pattern::Scalar,
            Source::Buffer(_) => pattern(s),
        })
        .collect()
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

/// The smallest row pitch (in elements) that keeps every operand's rows on
/// 32-byte boundaries, for tiles `cols` wide.
pub fn pitch(inputs: &[View], body: &[EwInst], cols: u64) -> u64 {
    let min = inputs
        .iter()
        .map(|v| size(v.dtype))
        .chain(body.iter().map(|i| size(i.dtype)))
        .min()
        .unwrap_or(4);
    round_up(cols, 32 / min)
}

/// The on-chip buffers of an elementwise stage with `rows × pitch` tiles.
pub fn layout(
    inputs: &[View],
    body: &[EwInst],
    out: &View,
    rows: u64,
    pitch: u64,
    align: u64,
) -> Vec<LocalBuf> {
    let tile = rows * pitch;
    let mut bufs: Vec<LocalBuf> = Vec::new();
    let mut at = 0u64;
    let mut add = |name: String, bytes: u64, copies: u32| {
        let bytes = round_up(bytes.max(32), align);
        bufs.push(LocalBuf {
            name,
            space: MemSpace::Ub,
            offset: at,
            bytes,
            copies,
        });
        at += bytes * u64::from(copies);
    };
    for (i, (v, p)) in inputs.iter().zip(patterns(inputs, out)).enumerate() {
        let s = size(v.dtype);
        if let Source::Constant(_) = v.source {
            add(format!("in{i}"), tile * s, 1);
            continue;
        }
        add(format!("in{i}"), tile * s, 2);
        match p {
            Pattern::Column | Pattern::Scalar => {
                let n = if p == Pattern::Column { rows } else { 1 };
                add(format!("st{i}"), n * s, 2);
                add(format!("bc{i}"), 256 * n.div_ceil(8), 2);
                if s == 1 {
                    // 1-byte values are replicated as i32 (`brcb` takes 16/32 bits).
                    add(format!("wd{i}"), n * 4, 2);
                }
            }
            Pattern::RowMajor | Pattern::Strided => {}
        }
    }
    for (j, inst) in body.iter().enumerate().take(body.len().saturating_sub(1)) {
        add(format!("t{j}"), tile * size(inst.dtype), 1);
    }
    add("out".to_string(), tile * size(out.dtype), 2);
    let scratch = body
        .iter()
        .map(|i| vector::scratch_needed(&i.op, i.dtype))
        .max()
        .unwrap_or(0);
    for k in 0..scratch {
        add(format!("scr{k}"), tile * 4, 1);
    }
    bufs
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

/// Generates an elementwise stage.
pub fn generate(ctx: &mut Ctx<'_>) -> Result<Vec<Item>, String> {
    let StageKind::Elementwise { inputs, body, out } = &ctx.stage.kind else {
        return Err("internal: not an elementwise stage".into());
    };
    let (inputs, body, out) = (inputs.clone(), body.clone(), out.clone());
    let t = tiles(&inputs, &out);
    let pats = patterns(&inputs, &out);
    let (r_tile, l_tile, pitch) = (ctx.param("rows")?, ctx.param("cols")?, ctx.param("pitch")?);
    let tile = r_tile * pitch;
    let nrb = t.rows.div_ceil(r_tile);
    let ncb = t.cols.div_ceil(l_tile);
    let outer: Vec<u64> = t.dims[..t.dims.len() - 2].to_vec();
    let total: u64 = outer.iter().product::<u64>() * nrb * ncb;
    let per_outer = nrb * ncb;
    let divs = divisors(&body);

    let mut items = Vec::new();
    let bi = ctx.regs.get()?;
    let bd = ctx.regs.get()?;
    items.push(Item::Scalar(format!("s.sys {bi}, block_idx")));
    items.push(Item::Scalar(format!("s.sys {bd}, block_dim")));
    // GM bases, already offset to each view's first element.
    let mut bases: Vec<Option<String>> = Vec::new();
    for v in inputs.iter().chain(std::iter::once(&out)) {
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
    // Buffers.
    let buf = |ctx: &Ctx<'_>, name: &str, copy: u32, dtype: DType| -> Result<VBuf, String> {
        let l = ctx.local(name)?;
        let copy = copy.min(l.copies - 1);
        Ok(VBuf {
            addr: l.offset + u64::from(copy) * l.bytes,
            dtype,
            slot: ctx.slot(name, copy),
        })
    };
    // Constants: filled once.
    for (i, v) in inputs.iter().enumerate() {
        if let Source::Constant(c) = &v.source {
            let b = buf(ctx, &format!("in{i}"), 0, v.dtype)?;
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
            let dst = buf(ctx, &format!("in{i}"), half, v.dtype)?;
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
                    let staging = buf(ctx, &format!("st{i}"), half, v.dtype)?;
                    let bc = buf(ctx, &format!("bc{i}"), half, v.dtype)?;
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
                        let wide = buf(ctx, &format!("wd{i}"), half, DType::I32)?;
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
        let scratch: Vec<VBuf> = (0..)
            .map_while(|k| buf(ctx, &format!("scr{k}"), 0, DType::F32).ok())
            .collect();
        let mut results: Vec<VBuf> = Vec::new();
        for (j, inst) in body.iter().enumerate() {
            let dst = if j + 1 == body.len() {
                buf(ctx, "out", half, out.dtype)?
            } else {
                buf(ctx, &format!("t{j}"), 0, inst.dtype)?
            };
            let args: Vec<VBuf> = inst
                .args
                .iter()
                .map(|a| match a {
                    EwArg::Input(k) => buf(ctx, &format!("in{k}"), half, inputs[*k].dtype),
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
        let ob = buf(ctx, "out", half, out.dtype)?;
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
