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

use super::inst::{InstBuilder, Operand, VecOperand, int_scalar};
use super::prog::{Access, Build, Item};
use super::tiles::double_buffered;
use super::vector::{self, Opnd, Seq, VBuf, dt, scalar};
use super::{Ctx, join};
use tessera_ir::plan::elementwise::{self as ew, SCRATCH_TABLE_BYTES, patterns, space};
use tessera_ir::plan::{Elementwise, EwArg, EwInst, EwOp, LocalBuf, Pattern, Source, View};
use tessera_ir::{BinaryOp, DType, Scalar};
use tessera_sim::isa::{AluOp, Reg};

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

/// Generates an elementwise stage.
pub fn generate(ctx: &mut Ctx<'_>, e: &Elementwise) -> Result<Vec<Item>, String> {
    let Elementwise {
        inputs,
        body,
        out,
        also,
        schedule,
    } = e;
    if also
        .iter()
        .any(|(j, v)| *j + 1 >= body.len() || v.shape != out.shape || v.strides != out.strides)
    {
        return Err("internal: a further result unlike the stage's output".into());
    }
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
    // What accuracy each value's uses demand.
    let demand = tessera_ir::plan::demand::half_demanded(ctx.plan, e);

    let phases = ctx.phases.clone();
    let ring = phases.as_ref().and_then(|p| p.ring.clone());
    let mut items = Vec::new();
    let (bi, bd) = ctx.block(&mut items)?;
    // GM bases, already offset to each view's first element.
    let mut bases: Vec<Option<Reg>> = Vec::new();
    for v in inputs.iter().chain(std::iter::once(out)) {
        if let Source::Constant(_) = v.source {
            bases.push(None);
            continue;
        }
        bases.push(Some(ctx.gm_view(&mut items, v)?));
    }
    // The further results' GM bases (laid out as the output is).
    let mut also_bases = Vec::with_capacity(also.len());
    for (_, v) in also {
        also_bases.push(ctx.gm_view(&mut items, v)?);
    }
    // Constants: filled once.
    for (i, v) in inputs.iter().enumerate() {
        if let Source::Constant(c) = &v.source {
            let b = VBuf::of(&layout.inputs[i].tile, 0, v.dtype);
            Seq {
                items: &mut items,
                n: tile,
            }
            .dup(b, constant(c, v.dtype));
        }
    }
    // Held rows: the same in every tile of this block, loaded once.
    let held: Vec<bool> = layout.inputs.iter().map(|b| b.held).collect();
    if held.contains(&true) {
        if held != ew::held(inputs, out, ncb, u64::from(ctx.stage.block_dim)) {
            return Err("internal: held inputs that differ per tile".into());
        }
        let (col0, len, addr) = (ctx.regs.get()?, ctx.regs.get()?, ctx.regs.get()?);
        // This block's column range: its tiles are bi + k·blocks.
        items.ins().s_alu(AluOp::Rem, col0, bi, ncb);
        items.ins().s_alu(AluOp::Mul, col0, col0, l_tile);
        items.ins().s_li(len, t.cols);
        items.ins().s_alu(AluOp::Sub, len, len, col0);
        items.ins().s_alu(AluOp::Min, len, len, l_tile);
        for (i, v) in inputs.iter().enumerate() {
            let Some(Some(base)) = bases.get(i).filter(|_| held[i]) else {
                continue;
            };
            let s = size(v.dtype);
            let dst = VBuf::of(&layout.inputs[i].tile, 0, v.dtype);
            let st = &t.strides[i];
            items
                .ins()
                .s_alu(AluOp::Mul, addr, col0, st[st.len() - 1] * s);
            items.ins().s_alu(AluOp::Add, addr, addr, *base);
            if divs.contains(&i) {
                Seq {
                    items: &mut items,
                    n: tile,
                }
                .dup(dst, int_scalar(1));
            }
            items.ins().s_alu(AluOp::Mul, len, len, s);
            // Every row of the tile is the same row: a GM stride of 0.
            items
                .op(vec![(Access::Write, dst.region(tile * s))])
                .mte2_gm_ub(dst.addr, addr, r_tile, len, 0u64, pitch * s);
            items.ins().s_alu(AluOp::Div, len, len, s);
        }
    }
    // The tile loop: two tiles per iteration.
    let tt = ctx.regs.get()?;
    let tb = ctx.regs.get()?;
    let step = ctx.regs.get()?;
    items.ins().s_mov(tt, bi);
    items.ins().s_alu(AluOp::Add, step, bd, bd);
    let mut work = [Reg(0); 8];
    for w in &mut work {
        *w = ctx.regs.get()?;
    }
    let digits: Vec<Reg> = (0..outer.len())
        .map(|_| ctx.regs.get())
        .collect::<Result<_, _>>()?;
    let [row0, col0, rcur, ccur, len, addr, tmp, o] = work;
    // One row of tiles (no outer dims, every row in one tile, no ring):
    // the tile index is the column block, and the row terms vanish.
    let flat = outer.is_empty() && nrb == 1 && ring.is_none();
    // Every tile holds `l_tile` columns.
    let whole = t.cols.is_multiple_of(l_tile);
    let tile_step = |half: u32, t_reg: Reg| -> Result<Vec<Item>, String> {
        let mut h = Vec::new();
        // Rows and bytes of a row of the tile for elements of `s` bytes:
        // immediates when every tile is whole and in one row of tiles.
        let extent = |h: &mut Vec<Item>, s: u64| -> (Operand, Operand) {
            if flat && whole {
                (t.rows.into(), (l_tile * s).into())
            } else {
                h.ins().s_alu(AluOp::Mul, len, ccur, s);
                (rcur.into(), len.into())
            }
        };
        // Tile coordinates.
        if flat {
            h.ins().s_alu(AluOp::Mul, col0, t_reg, l_tile);
            if !(whole && pats.iter().all(|p| *p != Pattern::Column)) {
                h.ins().s_li(rcur, t.rows);
            }
        } else {
            h.ins().s_alu(AluOp::Div, o, t_reg, per_outer);
            h.ins().s_alu(AluOp::Rem, tmp, t_reg, per_outer);
            h.ins().s_alu(AluOp::Div, row0, tmp, ncb);
            h.ins().s_alu(AluOp::Rem, col0, tmp, ncb);
            h.ins().s_alu(AluOp::Mul, row0, row0, r_tile);
            h.ins().s_alu(AluOp::Mul, col0, col0, l_tile);
            h.ins().s_li(rcur, t.rows);
            h.ins().s_alu(AluOp::Sub, rcur, rcur, row0);
            h.ins().s_alu(AluOp::Min, rcur, rcur, r_tile);
        }
        if whole {
            // Every tile is whole; in one row of tiles, their extent is
            // an immediate.
            if !flat {
                h.ins().s_li(ccur, l_tile);
            }
        } else {
            h.ins().s_li(ccur, t.cols);
            h.ins().s_alu(AluOp::Sub, ccur, ccur, col0);
            h.ins().s_alu(AluOp::Min, ccur, ccur, l_tile);
        }
        for (k, d) in outer.iter().enumerate().rev() {
            h.ins().s_alu(AluOp::Rem, digits[k], o, *d);
            h.ins().s_alu(AluOp::Div, o, o, *d);
        }
        // The GM address of operand `v`'s tile (strides of operand `v`,
        // from base `base`), into `addr`.
        // A joined epilogue's ring holds product row `r` at row `r mod
        // ring` (a tile does not cross the ring's end).
        let address = |h: &mut Vec<Item>, v: usize, elem: u64, base: Option<Reg>| {
            let st = &t.strides[v];
            let n = st.len();
            if flat {
                h.ins().s_alu(AluOp::Mul, addr, col0, st[n - 1] * elem);
                if let Some(b) = base {
                    h.ins().s_alu(AluOp::Add, addr, addr, b);
                }
                return;
            }
            match ring.as_ref().filter(|(ins, _)| ins.contains(&v)) {
                Some(&(_, rows)) => {
                    h.ins().s_alu(AluOp::Rem, addr, row0, rows);
                    h.ins().s_alu(AluOp::Mul, addr, addr, st[n - 2] * elem);
                }
                None => h.ins().s_alu(AluOp::Mul, addr, row0, st[n - 2] * elem),
            }
            h.ins().s_alu(AluOp::Mul, tmp, col0, st[n - 1] * elem);
            h.ins().s_alu(AluOp::Add, addr, addr, tmp);
            for (k, dg) in digits.iter().enumerate() {
                if st[k] != 0 {
                    h.ins().s_alu(AluOp::Mul, tmp, *dg, st[k] * elem);
                    h.ins().s_alu(AluOp::Add, addr, addr, tmp);
                }
            }
            if let Some(b) = base {
                h.ins().s_alu(AluOp::Add, addr, addr, b);
            }
        };
        // Loads first (all MTE2), then the vector expansions of columns and
        // scalars, so one event covers every load of the tile.
        let mut expand: Vec<Item> = Vec::new();
        for (i, v) in inputs.iter().enumerate() {
            if matches!(v.source, Source::Constant(_)) || held[i] {
                continue;
            }
            let s = size(v.dtype);
            let dst = VBuf::of(&layout.inputs[i].tile, half, v.dtype);
            // An integer divisor's padding must hold 1, not zero: fill what
            // the load leaves short (the tile, or a column's staging rows,
            // all of which are expanded) before loading.
            let ones = |h: &mut Vec<Item>, b: VBuf, n: u64| {
                if divs.contains(&i) {
                    Seq { items: h, n }.dup(b, int_scalar(1));
                }
            };
            address(&mut h, i, s, bases[i]);
            let st = &t.strides[i];
            match pats[i] {
                Pattern::RowMajor => {
                    ones(&mut h, dst, tile);
                    let (rows, bytes) = extent(&mut h, s);
                    h.op(vec![(Access::Write, dst.region(tile * s))])
                        .mte2_gm_ub(dst.addr, addr, rows, bytes, st[st.len() - 2] * s, pitch * s);
                }
                Pattern::Column | Pattern::Scalar => {
                    let Some(bcast) = &layout.inputs[i].broadcast else {
                        return Err("internal: a broadcast input without its buffers".into());
                    };
                    let staging = VBuf::of(&bcast.staging, half, v.dtype);
                    let bc = VBuf::of(&bcast.blocks, half, v.dtype);
                    let column = pats[i] == Pattern::Column;
                    if column {
                        ones(&mut h, staging, round_up(r_tile * s, 32) / s);
                    }
                    let reps = if column {
                        h.ins().s_alu(AluOp::Mul, len, rcur, s);
                        r_tile.div_ceil(8)
                    } else {
                        1
                    };
                    let count: Operand = if column { len.into() } else { s.into() };
                    h.op(vec![(
                        Access::Write,
                        staging.region(round_up(r_tile * s, 32)),
                    )])
                    .mte2_gm_ub(staging.addr, addr, 1u64, count, 0u64, 0u64);
                    let h = &mut expand;
                    // Replicate each value into a 32-byte block; 1-byte
                    // values go through i32 first.
                    let src = if s == 1 {
                        let Some(wd) = &bcast.widened else {
                            return Err(
                                "internal: a 1-byte broadcast without its i32 buffer".into()
                            );
                        };
                        let wide = VBuf::of(wd, half, DType::I32);
                        Seq {
                            items: h,
                            n: reps * 8,
                        }
                        .cvt(wide, staging);
                        wide
                    } else {
                        staging
                    };
                    let src_bytes = round_up(r_tile * size(src.dtype), 32);
                    h.op(vec![
                        (Access::Write, bc.region(256 * reps)),
                        (Access::Read, src.region(src_bytes)),
                    ])
                    .vec_brcb(
                        dt(src.dtype),
                        VecOperand::new(bc.addr, 1, 8),
                        src.addr,
                        reps,
                    );
                    let bc = bc.as_dtype(src.dtype);
                    // Back to the operand's dtype: a copy, or the i32's
                    // conversion.
                    let expand_to = |h: &mut Vec<Item>, dst: VBuf, n: u64, block: VBuf| {
                        vector::emit(
                            h,
                            n,
                            &[Opnd::Run(dst), Opnd::Block(block)],
                            |b, v, rep, m| {
                                if s == 1 {
                                    b.vec_cvt(dt(dst.dtype), dt(block.dtype), v[0], v[1], rep, m)
                                } else {
                                    b.vec_copy(dt(dst.dtype), v[0], v[1], rep, m)
                                }
                            },
                        );
                    };
                    if column {
                        for j in 0..r_tile {
                            expand_to(h, dst.offset(j * pitch * s), pitch, bc.offset(32 * j));
                        }
                    } else {
                        expand_to(h, dst, tile, bc);
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
            .map(|l| VBuf::of(l, 0, DType::F32))
            .collect();
        let mut results: Vec<VBuf> = Vec::new();
        for (j, inst) in body.iter().enumerate() {
            let need = ew::scratch(&inst.op, inst.dtype);
            let short = |l: &LocalBuf| l.bytes < SCRATCH_TABLE_BYTES;
            if layout.scratch.len() < need.tiles || (need.table && layout.scratch.iter().any(short))
            {
                return Err(format!(
                    "internal: instruction {j} needs {} scratch tiles{}",
                    need.tiles,
                    if need.table {
                        " (the first holding its table)"
                    } else {
                        ""
                    }
                ));
            }
            // A stored result's buffer is double-buffered, as `out` is.
            let copy = if also.iter().any(|(k, _)| *k == j) {
                half
            } else {
                0
            };
            let dst = match layout.temps.get(j) {
                Some(t) => VBuf::of(t, copy, inst.dtype),
                None => VBuf::of(&layout.out, half, out.dtype),
            };
            let args: Vec<VBuf> = inst
                .args
                .iter()
                .map(|a| match a {
                    EwArg::Input(k) => inputs
                        .get(*k)
                        .map(|v| VBuf::of(&layout.inputs[*k].tile, half, v.dtype))
                        .ok_or_else(|| "internal: an elementwise input out of range".to_string()),
                    EwArg::Inst(k) => results.get(*k).copied().ok_or_else(|| {
                        "internal: forward reference in an elementwise body".to_string()
                    }),
                })
                .collect::<Result<_, _>>()?;
            let accuracy = if demand.get(j) == Some(&true) {
                vector::Accuracy::Half
            } else {
                vector::Accuracy::F32
            };
            let consts: Vec<Option<Scalar>> = inst
                .args
                .iter()
                .map(|a| match a {
                    EwArg::Input(k) => match inputs.get(*k).map(|v| &v.source) {
                        Some(Source::Constant(c)) => Some(*c),
                        _ => None,
                    },
                    EwArg::Inst(_) => None,
                })
                .collect();
            vector::emit_op_with(
                &mut h,
                tile,
                (&inst.op, accuracy),
                dst,
                (&args, &consts),
                &scratch,
            )?;
            results.push(dst);
        }
        // Store the result, then the further results (the same strides
        // from their own bases).
        let o_idx = inputs.len();
        let so = size(out.dtype);
        let ob = VBuf::of(&layout.out, half, out.dtype);
        address(&mut h, o_idx, so, bases[o_idx]);
        let (rows, bytes) = extent(&mut h, so);
        let st = &t.strides[o_idx];
        let row_stride = st[st.len() - 2];
        h.op(vec![(Access::Read, ob.region(tile * so))]).mte3_ub_gm(
            addr,
            ob.addr,
            rows,
            bytes,
            pitch * so,
            row_stride * so,
        );
        for ((j, v), &base) in also.iter().zip(&also_bases) {
            let s = size(v.dtype);
            let b = results[*j];
            address(&mut h, o_idx, s, Some(base));
            let (rows, bytes) = extent(&mut h, s);
            h.op(vec![(Access::Read, b.region(tile * s))]).mte3_ub_gm(
                addr,
                b.addr,
                rows,
                bytes,
                pitch * s,
                row_stride * s,
            );
        }
        Ok(h)
    };
    // The tiles in one loop, or, joined to a matmul, a loop per phase
    // inside a loop over the phases (`join::phase_loop`; tiles go row by
    // row of tiles when there are no outer dims).
    match phases {
        None => double_buffered(&mut items, (tt, tb), bd, step, total, tile_step)?,
        Some(p) => {
            if !outer.is_empty() {
                return Err("internal: a joined elementwise stage with outer dims".into());
            }
            let shape = join::TileRows {
                rows: t.rows,
                tile_rows: r_tile,
                per_row: ncb,
                tiles: total,
            };
            join::phase_loop(ctx, &mut items, &p, shape, |h, start, end| {
                h.ins().s_alu(AluOp::Add, tt, bi, start);
                double_buffered(h, (tt, tb), bd, step, end, &tile_step)
            })?;
        }
    }
    Ok(items)
}

/// A constant input's value as a vector scalar operand of its dtype.
fn constant(c: &Scalar, d: DType) -> tessera_sim::isa::Scal {
    match *c {
        Scalar::Float(x) => scalar(d, x),
        Scalar::Int(i) => int_scalar(i),
        Scalar::Bool(b) => int_scalar(i64::from(b)),
    }
}
