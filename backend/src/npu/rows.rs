//! The row stage: a fused group over whole rows in UB (see
//! `tessera_ir::plan::rows`).
//!
//! Each loop iteration handles two tiles of `rows` rows on two copies of
//! the streamed buffers (ping-pong, as the elementwise stage). A tile's
//! full inputs are loaded row by row (`pitch` apart in UB; a row stride of
//! 0 repeats one row), per-row inputs as one burst, constants are filled
//! once. Then the body runs in order: elementwise instructions over the
//! whole tile (padding included) or over the per-row values; a reduction
//! converts its operand to the f32/i32 accumulator if narrower, folds each
//! row's whole repeats lane-wise (`vec.asum`), adds the partial last repeat
//! under a mask (so padding never enters), folds all rows' lanes at once
//! (`vec.rsum`) and, for `mean`, scales by `1/n`; an expansion replicates
//! the per-row values into 32-byte blocks (`vec.brcb`) and copies each
//! block along its row. The result's valid rows and columns are stored.

use super::Ctx;
use super::inst::{InstBuilder, VecOperand, int_scalar};
use super::prog::{Access, Build, Item};
use super::reduce::{combine, fold_across, fold_lanes, fold_repeats, identity};
use super::tiles::double_buffered;
use super::vector::{self, Opnd, Seq, VBuf, dt, scalar};
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::rows::{elided, row_slots};
use tessera_ir::plan::{EwArg, EwOp, Rows, RowsOp, Source, Width};
use tessera_ir::{BinaryOp, DType, ReduceOp, Scalar};
use tessera_sim::isa::{AluOp, BinOp, ScaOp};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// Generates a row stage.
pub fn generate(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
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
    if layout.inputs.len() != inputs.len() || layout.temps.len() + 1 != body.len() {
        return Err("internal: the layout does not match the row stage".into());
    }
    let (rows, pitch) = (schedule.rows, schedule.pitch);
    if pitch % LANES != 0 || pitch < n {
        return Err("internal: a row pitch that is not whole repeats of the row".into());
    }
    let tile = rows * pitch;
    let slots = row_slots(rows);
    let count = |w: Width| match w {
        Width::Full => tile,
        Width::Row => slots,
    };
    let mut items = Vec::new();
    let (bi, bd) = ctx.block(&mut items)?;
    let mut bases = Vec::with_capacity(inputs.len());
    for i in inputs {
        bases.push(match i.view.source {
            Source::Constant(_) => None,
            Source::Buffer(_) => Some(ctx.gm_view(&mut items, &i.view)?),
        });
    }
    let base_out = ctx.gm_view(&mut items, out)?;
    // Constants: filled once.
    for (k, i) in inputs.iter().enumerate() {
        if let Source::Constant(c) = &i.view.source {
            let b = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
            let value = match *c {
                Scalar::Float(x) => scalar(i.view.dtype, x),
                Scalar::Int(v) => int_scalar(v),
                Scalar::Bool(v) => int_scalar(i64::from(v)),
            };
            Seq {
                items: &mut items,
                n: count(i.width),
            }
            .dup(b, value);
        }
    }
    // Full inputs that repeat one row (a `[n]` vector): the same for every
    // tile, so loaded once (one copy, `rows` rows).
    let repeated = |k: usize| {
        let i = &inputs[k];
        i.width == Width::Full && i.view.strides.first() == Some(&0) && bases[k].is_some()
    };
    for (k, i) in inputs.iter().enumerate() {
        if let (true, Some(base)) = (repeated(k), bases[k]) {
            let s = size(i.view.dtype);
            let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
            items
                .op(vec![(Access::Write, dst.region(tile * s))])
                .mte2_gm_ub(dst.addr, base, rows, n * s, 0u64, pitch * s);
        }
    }
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
    let elided = elided(body);
    let scratch: Vec<VBuf> = layout
        .scratch
        .iter()
        .map(|l| VBuf::of(l, 0, DType::F32))
        .collect();
    double_buffered(
        &mut items,
        (tt, tb),
        bd,
        step,
        schedule.tiles,
        |half, t_reg| {
            let mut h = Vec::new();
            h.ins().s_alu(AluOp::Mul, row0, t_reg, rows);
            h.ins().s_li(rcur, outer);
            h.ins().s_alu(AluOp::Sub, rcur, rcur, row0);
            h.ins().s_alu(AluOp::Min, rcur, rcur, rows);
            // Loads.
            for (k, i) in inputs.iter().enumerate() {
                let Some(base) = bases[k] else { continue };
                if repeated(k) {
                    continue;
                }
                let s = size(i.view.dtype);
                let dst = VBuf::of(&layout.inputs[k], half, i.view.dtype);
                match i.width {
                    Width::Full => {
                        let rs = i.view.strides.first().copied().unwrap_or(0);
                        h.ins().s_alu(AluOp::Mul, addr, row0, rs * s);
                        h.ins().s_alu(AluOp::Add, addr, addr, base);
                        h.op(vec![(Access::Write, dst.region(tile * s))])
                            .mte2_gm_ub(dst.addr, addr, rcur, n * s, rs * s, pitch * s);
                    }
                    Width::Row => {
                        h.ins().s_alu(AluOp::Mul, addr, row0, s);
                        h.ins().s_alu(AluOp::Add, addr, addr, base);
                        h.ins().s_alu(AluOp::Mul, len, rcur, s);
                        h.op(vec![(Access::Write, dst.region(slots * s))])
                            .mte2_gm_ub(dst.addr, addr, 1u64, len, 0u64, 0u64);
                    }
                }
            }
            // The body. An elided expansion's users read its blocks.
            let mut results: Vec<VBuf> = Vec::with_capacity(body.len());
            let mut blocks_of: Vec<Option<VBuf>> = Vec::with_capacity(body.len());
            let mut expands = 0u64;
            for (j, inst) in body.iter().enumerate() {
                let dst = match layout.temps.get(j) {
                    Some(t) => VBuf::of(t, 0, inst.dtype),
                    None => VBuf::of(&layout.out, half, inst.dtype),
                };
                let mut args: Vec<VBuf> = Vec::with_capacity(inst.args.len());
                let mut block_args: Vec<Option<VBuf>> = Vec::with_capacity(inst.args.len());
                for a in &inst.args {
                    let (v, b) = match *a {
                        EwArg::Input(k) => (
                            inputs
                                .get(k)
                                .map(|v| VBuf::of(&layout.inputs[k], half, v.view.dtype))
                                .ok_or("internal: a row input out of range")?,
                            None,
                        ),
                        EwArg::Inst(k) => (
                            *results
                                .get(k)
                                .ok_or("internal: forward reference in a row body")?,
                            blocks_of.get(k).copied().flatten(),
                        ),
                    };
                    args.push(v);
                    block_args.push(b);
                }
                let mut my_blocks = None;
                match &inst.op {
                    RowsOp::Ew(EwOp::Binary(b)) if block_args.iter().any(Option::is_some) => {
                        // Row by row, the expanded operand read from its
                        // 32-byte block.
                        let op = bin_op(*b)?;
                        let s = size(dst.dtype);
                        for row in 0..rows {
                            let opnd = |k: usize| match block_args[k] {
                                Some(bc) => Opnd::Block(bc.offset(32 * row)),
                                None => Opnd::Run(args[k].offset(row * pitch * s)),
                            };
                            let ops = [Opnd::Run(dst.offset(row * pitch * s)), opnd(0), opnd(1)];
                            vector::emit(&mut h, pitch, &ops, |bld, v, rep, m| {
                                bld.vec_bin(op, dt(dst.dtype), v[0], v[1], v[2], rep, m)
                            });
                        }
                    }
                    RowsOp::Ew(op) => {
                        vector::emit_op(&mut h, count(inst.width), op, dst, &args, &scratch)?;
                    }
                    RowsOp::Reduce(op) => {
                        let src = *args
                            .first()
                            .ok_or("internal: a reduction without operand")?;
                        reduce_rows(&mut h, layout, *op, dst, src, rows, pitch, n)?;
                    }
                    RowsOp::Expand => {
                        let src = *args
                            .first()
                            .ok_or("internal: an expansion without operand")?;
                        let blocks = layout
                            .blocks
                            .as_ref()
                            .ok_or("internal: an expansion without its block buffer")?;
                        let bc = VBuf::of(blocks, 0, src.dtype).offset(expands * slots * 32);
                        expands += 1;
                        h.op(vec![
                            (Access::Write, bc.region(slots * 32)),
                            (Access::Read, src.region(slots * size(src.dtype))),
                        ])
                        .vec_brcb(
                            dt(src.dtype),
                            VecOperand::new(bc.addr, 1, 8),
                            src.addr,
                            slots / 8,
                        );
                        if elided[j] {
                            my_blocks = Some(bc);
                        } else {
                            let s = size(dst.dtype);
                            for row in 0..rows {
                                vector::emit(
                                    &mut h,
                                    pitch,
                                    &[
                                        Opnd::Run(dst.offset(row * pitch * s)),
                                        Opnd::Block(bc.offset(32 * row)),
                                    ],
                                    |b, v, rep, m| b.vec_copy(dt(dst.dtype), v[0], v[1], rep, m),
                                );
                            }
                        }
                    }
                }
                results.push(dst);
                blocks_of.push(my_blocks);
            }
            // Store.
            let last = body.last().ok_or("internal: an empty row body")?;
            let so = size(out.dtype);
            let ob = VBuf::of(&layout.out, half, out.dtype);
            match last.width {
                Width::Full => {
                    h.ins().s_alu(AluOp::Mul, addr, row0, n * so);
                    h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                    h.op(vec![(Access::Read, ob.region(tile * so))]).mte3_ub_gm(
                        addr,
                        ob.addr,
                        rcur,
                        n * so,
                        pitch * so,
                        n * so,
                    );
                }
                Width::Row => {
                    h.ins().s_alu(AluOp::Mul, addr, row0, so);
                    h.ins().s_alu(AluOp::Add, addr, addr, base_out);
                    h.ins().s_alu(AluOp::Mul, len, rcur, so);
                    h.op(vec![(Access::Read, ob.region(slots * so))])
                        .mte3_ub_gm(addr, ob.addr, 1u64, len, 0u64, 0u64);
                }
            }
            Ok(h)
        },
    )?;
    Ok(items)
}

/// The vector instruction of a binary op (not `pow`, a composite).
fn bin_op(b: BinaryOp) -> Result<BinOp, String> {
    Ok(match b {
        BinaryOp::Add => BinOp::Add,
        BinaryOp::Sub => BinOp::Sub,
        BinaryOp::Mul => BinOp::Mul,
        BinaryOp::Div => BinOp::Div,
        BinaryOp::Maximum => BinOp::Max,
        BinaryOp::Minimum => BinOp::Min,
        BinaryOp::Pow => return Err("internal: pow reading an expansion's blocks".into()),
    })
}

/// The dtype a reduction of `d` values folds in: `max` and `min` of floats
/// in the values' own dtype (exact in any), sums in f32; integers in i32.
pub fn accumulator(op: ReduceOp, d: DType) -> DType {
    match (op, d.is_float()) {
        (ReduceOp::Max | ReduceOp::Min, true) => d,
        (ReduceOp::Sum | ReduceOp::Mean, true) => DType::F32,
        (_, false) => DType::I32,
    }
}

/// `dst[row]` = `op` over the first `n` elements of row `row` of `src`.
#[allow(clippy::too_many_arguments)]
fn reduce_rows(
    h: &mut Vec<Item>,
    layout: &tessera_ir::plan::RowsLayout,
    op: ReduceOp,
    dst: VBuf,
    src: VBuf,
    rows: u64,
    pitch: u64,
    n: u64,
) -> Result<(), String> {
    let acc_dt = accumulator(op, src.dtype);
    let tile = rows * pitch;
    let slots = row_slots(rows);
    let wide = if src.dtype == acc_dt {
        src
    } else {
        let w = layout
            .wide
            .as_ref()
            .ok_or("internal: a widening reduction without its wide buffer")?;
        let w = VBuf::of(w, 0, acc_dt);
        Seq { items: h, n: tile }.cvt(w, src);
        w
    };
    let lanes_buf = VBuf::of(
        layout
            .lanes
            .as_ref()
            .ok_or("internal: a reduction without its lanes buffer")?,
        0,
        acc_dt,
    );
    let acc = VBuf::of(
        layout
            .acc
            .as_ref()
            .ok_or("internal: a reduction without its accumulator")?,
        0,
        acc_dt,
    );
    // Elements of one repeat of the accumulator.
    let per = 256 / size(acc_dt);
    let (full, tail) = (n / per, n % per);
    for row in 0..rows {
        let lane = lanes_buf.offset(row * 256);
        let from = wide.offset(row * pitch * size(acc_dt));
        if full > 0 {
            fold_repeats(h, fold_across(op), acc_dt, lane, from, full, 8, per);
        } else {
            Seq { items: h, n: per }.dup(lane, identity(op, acc_dt));
        }
        if tail > 0 {
            // The partial last repeat, under a mask of its valid lanes.
            Seq { items: h, n: tail }.bin(combine(op), lane, lane, from.offset(full * 256));
        }
    }
    fold_lanes(h, op, acc, lanes_buf, rows, per);
    let mut q = Seq { items: h, n: slots };
    if op == ReduceOp::Mean {
        q.sca(ScaOp::Muls, acc, acc, scalar(acc_dt, 1.0 / n as f64));
    }
    if dst.dtype == acc_dt {
        q.copy(dst, acc);
    } else {
        q.cvt(dst, acc);
    }
    Ok(())
}
