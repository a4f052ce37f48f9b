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
//!
//! A chunked stage (rows longer than UB holds) runs each pass of the body
//! (`Passes`) over a row's chunks, streamed through the same ping-pong
//! loop: each step computes one chunk of one pass's full instructions and
//! folds its reductions into lanes kept across chunks; after a pass's last
//! chunk its reductions are finished and its per-row values computed. The
//! last pass stores the result chunk by chunk. Steps go row by row, or,
//! *pipelined* (`pipelines`), with one row per pass in flight: step s runs
//! pass s mod passes of the row that pass is on, so the first pass's HBM
//! reads overlap the later passes' vector work; pass p keeps its row's
//! per-row state in copy p, shifted on when the rows move on a pass.
//!
//! A transposed stage (short rows) loads `rows` whole rows as one burst,
//! gathers each full input into `n` column runs of `rows` elements, runs the
//! body over runs (an elementwise op is one instruction over the tile, a
//! reduction folds the `n` runs, an expansion copies its run `n` times) and
//! gathers the result back into rows. The gathers' offsets are built once.

use super::Ctx;
use super::inst::{InstBuilder, VecOperand, int_scalar};
use super::prog::{Access, Branch, Build, Item};
use super::reduce::{combine, fold_across, fold_lanes, fold_repeats, identity};
use super::tiles::double_buffered;
use super::vector::{self, Opnd, Seq, VBuf, dt, scalar};
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::rows::{Passes, elided, row_slots};
use tessera_ir::plan::{EwArg, EwOp, Rows, RowsOp, Source, Width};
use tessera_ir::{BinaryOp, DType, ReduceOp, Scalar};
use tessera_sim::isa::{AluOp, BinOp, Cond, Reg, ScaOp};

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
    if schedule.transposed {
        return generate_transposed(ctx, r);
    }
    if schedule.chunked() {
        return generate_chunked(ctx, r);
    }
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
    let Opening {
        bi,
        bd,
        bases,
        base_out,
    } = opening(ctx, r, &mut items, count)?;
    // Full inputs that repeat one row (a `[n]` vector): the same for every
    // tile and every row, so one row loaded once; the ops that read one run
    // row by row.
    let repeated = |k: usize| {
        let i = &inputs[k];
        i.width == Width::Full && i.view.strides.first() == Some(&0) && bases[k].is_some()
    };
    for (k, i) in inputs.iter().enumerate() {
        if let (true, Some(base)) = (repeated(k), bases[k]) {
            let s = size(i.view.dtype);
            let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
            items
                .op(vec![(Access::Write, dst.region(pitch * s))])
                .mte2_gm_ub(dst.addr, base, 1u64, n * s, 0u64, pitch * s);
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
            tile_rows(&mut h, (row0, rcur), t_reg, rows, outer);
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
                let one_row: Vec<bool> = inst
                    .args
                    .iter()
                    .map(|a| matches!(*a, EwArg::Input(k) if repeated(k)))
                    .collect();
                // Operand `k` of row `row`: a repeated row is the same run.
                let row_of = |v: VBuf, k: usize, row: u64| {
                    if one_row[k] {
                        v
                    } else {
                        v.offset(row * pitch * size(v.dtype))
                    }
                };
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
                                None => Opnd::Run(row_of(args[k], k, row)),
                            };
                            let ops = [Opnd::Run(dst.offset(row * pitch * s)), opnd(0), opnd(1)];
                            vector::emit(&mut h, pitch, &ops, |bld, v, rep, m| {
                                bld.vec_bin(op, dt(dst.dtype), v[0], v[1], v[2], rep, m)
                            });
                        }
                    }
                    RowsOp::Ew(op) if one_row.iter().any(|&r| r) => {
                        // Row by row (independent runs, no barrier between).
                        for row in 0..rows {
                            let row_args: Vec<VBuf> = args
                                .iter()
                                .enumerate()
                                .map(|(k, &v)| row_of(v, k, row))
                                .collect();
                            let d = dst.offset(row * pitch * size(dst.dtype));
                            vector::emit_op(&mut h, pitch, op, d, &row_args, &scratch)?;
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

/// What both forms of a row stage open with.
struct Opening {
    /// This block's index and the block count.
    bi: Reg,
    bd: Reg,
    /// Per input, its GM address (none for a constant).
    bases: Vec<Option<Reg>>,
    /// The result's GM address.
    base_out: Reg,
}

/// Reads the block registers and GM addresses, and fills the constant
/// inputs once (`count` elements of a value of each width).
fn opening(
    ctx: &mut Ctx<'_>,
    r: &Rows,
    items: &mut Vec<Item>,
    count: impl Fn(Width) -> u64,
) -> Result<Opening, String> {
    let (bi, bd) = ctx.block(items)?;
    let mut bases = Vec::with_capacity(r.inputs.len());
    for i in &r.inputs {
        bases.push(match i.view.source {
            Source::Constant(_) => None,
            Source::Buffer(_) => Some(ctx.gm_view(items, &i.view)?),
        });
    }
    let base_out = ctx.gm_view(items, &r.out)?;
    for (k, i) in r.inputs.iter().enumerate() {
        if let Source::Constant(c) = &i.view.source {
            let b = VBuf::of(&r.schedule.layout.inputs[k], 0, i.view.dtype);
            let value = match *c {
                Scalar::Float(x) => scalar(i.view.dtype, x),
                Scalar::Int(v) => int_scalar(v),
                Scalar::Bool(v) => int_scalar(i64::from(v)),
            };
            Seq {
                items,
                n: count(i.width),
            }
            .dup(b, value);
        }
    }
    Ok(Opening {
        bi,
        bd,
        bases,
        base_out,
    })
}

/// `row0 = t · rows`, `rcur = min(rows, outer − row0)`: a tile's first row
/// and its row count.
fn tile_rows(h: &mut Vec<Item>, (row0, rcur): (Reg, Reg), t: Reg, rows: u64, outer: u64) {
    h.ins().s_alu(AluOp::Mul, row0, t, rows);
    h.ins().s_li(rcur, outer);
    h.ins().s_alu(AluOp::Sub, rcur, rcur, row0);
    h.ins().s_alu(AluOp::Min, rcur, rcur, rows);
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
    let slots = row_slots(rows);
    let sa = size(acc_dt);
    // A narrower operand is converted into the wide buffer, as many rows
    // at a time as it holds (its fold of one group and the conversion of
    // the next need no barrier between them).
    let (wide, group) = if src.dtype == acc_dt {
        (None, rows)
    } else {
        let w = layout
            .wide
            .as_ref()
            .ok_or("internal: a widening reduction without its wide buffer")?;
        let group = (w.bytes / (pitch * sa)).clamp(1, rows);
        (Some(VBuf::of(w, 0, acc_dt)), group)
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
        let from = match wide {
            None => src.offset(row * pitch * sa),
            Some(w) => {
                let at = row % group;
                if at == 0 {
                    let n_rows = group.min(rows - row);
                    let from = src.offset(row * pitch * size(src.dtype));
                    Seq {
                        items: h,
                        n: n_rows * pitch,
                    }
                    .cvt(w, from);
                }
                w.offset(at * pitch * sa)
            }
        };
        let lane = lanes_buf.offset(row * 256);
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
    if op != ReduceOp::Mean && dst.dtype == acc_dt {
        // Straight into the result.
        fold_lanes(h, op, dst, lanes_buf, rows, per);
    } else {
        fold_lanes(h, op, acc, lanes_buf, rows, per);
        finish(h, op, dst, acc, slots, n);
    }
    Ok(())
}

/// `dst` = the folded accumulator `acc` (÷ `n` for `mean`), in `dst`'s
/// dtype, for `slots` per-row values.
fn finish(h: &mut Vec<Item>, op: ReduceOp, dst: VBuf, acc: VBuf, slots: u64, n: u64) {
    let mut q = Seq { items: h, n: slots };
    let scale = scalar(acc.dtype, 1.0 / n as f64);
    match (op == ReduceOp::Mean, dst.dtype == acc.dtype) {
        (true, true) => q.sca(ScaOp::Muls, dst, acc, scale),
        (true, false) => {
            q.sca(ScaOp::Muls, acc, acc, scale);
            q.cvt(dst, acc);
        }
        (false, true) => q.copy(dst, acc),
        (false, false) => q.cvt(dst, acc),
    }
}

/// Generates a chunked row stage: one row at a time, each pass streaming
/// the row's chunks.
fn generate_chunked(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
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
    let (c, chunks) = (schedule.pitch, schedule.chunks);
    let covers = |k: u64| c.saturating_mul(k);
    if schedule.rows != 1
        || c == 0
        || c % LANES != 0
        || covers(chunks - 1) >= n
        || covers(chunks) < n
    {
        return Err("internal: a chunked row stage with inconsistent chunks".into());
    }
    let last_len = n - c * (chunks - 1);
    let slots = row_slots(1);
    let count = |w: Width| match w {
        Width::Full => c,
        Width::Row => slots,
    };
    let widths: Vec<Width> = inputs.iter().map(|i| i.width).collect();
    let passes = Passes::of(body, &widths);
    let elided = elided(body);
    let last = body.len() - 1;
    let mut items = Vec::new();
    let Opening {
        bi,
        bd,
        bases,
        base_out,
    } = opening(ctx, r, &mut items, count)?;
    let scratch: Vec<VBuf> = layout
        .scratch
        .iter()
        .map(|l| VBuf::of(l, 0, DType::F32))
        .collect();
    // Per reduction, its lanes (kept across chunks); the last repeat of
    // the lanes buffer takes one chunk's fold.
    let mut lane_of = vec![None; body.len()];
    let mut reductions = 0u64;
    for (j, inst) in body.iter().enumerate() {
        if let RowsOp::Reduce(_) = inst.op {
            lane_of[j] = Some(reductions);
            reductions += 1;
        }
    }
    let lanes_buf = layout.lanes.as_ref();
    // Pipelined, one row per pass is in flight: step s runs pass s mod
    // passes of the row that pass is on, so every `passes` steps stream one
    // chunk from HBM (the first pass), re-read the others' from L2 and write
    // one (the last pass). Pass p keeps its row's per-row state (values,
    // lanes, per-row inputs) in copy p; when the rows move on a pass, the
    // copies shift. Otherwise rows go one at a time, their state in copy 0.
    let pc = passes.count;
    let piped = schedule.pipelined;
    // The state copy of pass p's row.
    let state = |p: u64| if piped { p } else { 0 };
    let state_bytes = (reductions + 1) * 256;
    let lane = |j: usize, d: DType, st: u64| -> Result<VBuf, String> {
        let b = lanes_buf.ok_or("internal: a reduction without its lanes buffer")?;
        let k = lane_of.get(j).copied().flatten().unwrap_or(reductions);
        Ok(VBuf::of(b, 0, d).offset(st * state_bytes + k * 256))
    };
    let mut block_of = vec![0u64; body.len()];
    let mut expands = 0u64;
    for (j, inst) in body.iter().enumerate() {
        if inst.op == RowsOp::Expand {
            block_of[j] = expands;
            expands += 1;
        }
    }
    // The value of an instruction: a full one's chunk (the result's of copy
    // `half`), a per-row one's copy `st` (the state of the pass's row).
    let value = |j: usize, half: u32, st: u64| -> VBuf {
        let d = body[j].dtype;
        let row = body[j].width == Width::Row;
        match layout.temps.get(j) {
            Some(t) => VBuf::of(t, if row { st as u32 } else { 0 }, d),
            None => VBuf::of(&layout.out, if row { st as u32 } else { half }, d),
        }
    };
    let mut w = [Reg(0); 12];
    for x in &mut w {
        *x = ctx.regs.get()?;
    }
    let [my_rows, nsteps, sa, sb, t, q, cc, addr, off, len, base, lr] = w;
    // Full inputs any pass streams, and the passes that read them: one load
    // per step (skipped on the passes that do not read it), so each buffer
    // copy has one producer.
    let mut streams = vec![false; inputs.len()];
    let mut read_in: Vec<Vec<u64>> = vec![Vec::new(); inputs.len()];
    for qq in 0..passes.count {
        let streamed = passes.streamed(body, qq);
        for (j, inst) in body.iter().enumerate() {
            if !streamed[j] {
                continue;
            }
            for a in &inst.args {
                if let EwArg::Input(k) = *a
                    && inputs[k].width == Width::Full
                    && bases[k].is_some()
                {
                    streams[k] = true;
                    if read_in[k].last() != Some(&qq) {
                        read_in[k].push(qq);
                    }
                }
            }
        }
    }
    let acc_of = |j: usize| -> Result<DType, String> {
        let RowsOp::Reduce(op) = body[j].op else {
            return Err("internal: not a reduction".into());
        };
        let src_dt = match body[j].args.first() {
            Some(EwArg::Input(k)) => inputs[*k].view.dtype,
            Some(EwArg::Inst(k)) => body[*k].dtype,
            None => return Err("internal: a reduction without operand".into()),
        };
        Ok(accumulator(op, src_dt))
    };
    // The full instructions of pass `p` on one chunk (`c` elements computed;
    // reductions fold `len_last` valid elements on the last chunk).
    let compute = |h: &mut Vec<Item>, p: u64, half: u32| -> Result<(), String> {
        let st = state(p);
        let streamed = passes.streamed(body, p);
        let arg = |a: &EwArg| -> Result<VBuf, String> {
            Ok(match *a {
                EwArg::Input(k) => {
                    let i = inputs.get(k).ok_or("internal: a row input out of range")?;
                    let copy = if i.width == Width::Full {
                        half
                    } else {
                        st as u32
                    };
                    VBuf::of(&layout.inputs[k], copy, i.view.dtype)
                }
                EwArg::Inst(k) => value(k, half, st),
            })
        };
        let block = |k: usize, d: DType| -> Result<VBuf, String> {
            let b = layout
                .blocks
                .as_ref()
                .ok_or("internal: an expansion without its block buffer")?;
            Ok(VBuf::of(b, 0, d).offset(block_of[k] * slots * 32))
        };
        for (j, inst) in body.iter().enumerate() {
            if !streamed[j] {
                continue;
            }
            let dst = value(j, half, st);
            let args = inst.args.iter().map(arg).collect::<Result<Vec<_>, _>>()?;
            let elided_arg = |a: &EwArg| matches!(*a, EwArg::Inst(k) if elided[k]);
            match &inst.op {
                RowsOp::Ew(EwOp::Binary(b)) if inst.args.iter().any(elided_arg) => {
                    let op = bin_op(*b)?;
                    let mut ops = vec![Opnd::Run(dst)];
                    for (a, v) in inst.args.iter().zip(&args) {
                        ops.push(match *a {
                            EwArg::Inst(k) if elided[k] => Opnd::Block(block(k, v.dtype)?),
                            _ => Opnd::Run(*v),
                        });
                    }
                    vector::emit(h, c, &ops, |bld, v, rep, m| {
                        bld.vec_bin(op, dt(dst.dtype), v[0], v[1], v[2], rep, m)
                    });
                }
                RowsOp::Ew(op) => {
                    vector::emit_op(h, count(inst.width), op, dst, &args, &scratch)?;
                }
                RowsOp::Expand => {
                    let src = *args
                        .first()
                        .ok_or("internal: an expansion without operand")?;
                    let bc = block(j, src.dtype)?;
                    h.op(vec![
                        (Access::Write, bc.region(slots * 32)),
                        (Access::Read, src.region(slots * size(src.dtype))),
                    ])
                    .vec_brcb(
                        dt(src.dtype),
                        VecOperand::new(bc.addr, 1, 8),
                        src.addr,
                        1,
                    );
                    if !elided[j] {
                        vector::emit(h, c, &[Opnd::Run(dst), Opnd::Block(bc)], |b, v, rep, m| {
                            b.vec_copy(dt(dst.dtype), v[0], v[1], rep, m)
                        });
                    }
                }
                RowsOp::Reduce(op) => {
                    let src = *args
                        .first()
                        .ok_or("internal: a reduction without operand")?;
                    let acc_dt = acc_of(j)?;
                    let wide = if src.dtype == acc_dt {
                        src
                    } else {
                        let w = layout
                            .wide
                            .as_ref()
                            .ok_or("internal: a widening reduction without its wide buffer")?;
                        let w = VBuf::of(w, 0, acc_dt);
                        Seq { items: h, n: c }.cvt(w, src);
                        w
                    };
                    let mine = lane(j, acc_dt, st)?;
                    let part = lane(usize::MAX, acc_dt, st)?;
                    let per = 256 / size(acc_dt);
                    // Every chunk but the last folds whole repeats; the last
                    // its valid ones and a masked partial repeat.
                    let fold = |h: &mut Vec<Item>, valid: u64| {
                        let (full, tail) = (valid / per, valid % per);
                        if full > 0 {
                            fold_repeats(h, fold_across(*op), acc_dt, part, wide, full, 8, per);
                            Seq { items: h, n: per }.bin(combine(*op), mine, mine, part);
                        }
                        if tail > 0 {
                            Seq { items: h, n: tail }.bin(
                                combine(*op),
                                mine,
                                mine,
                                wide.offset(full * 256),
                            );
                        }
                    };
                    if last_len == c {
                        fold(h, c);
                    } else {
                        let mut most = Vec::new();
                        fold(&mut most, c);
                        h.push(Item::Guard {
                            skip_if: vec![Branch::new(Cond::Eq, cc, chunks - 1)],
                            body: most,
                        });
                        let mut end = Vec::new();
                        fold(&mut end, last_len);
                        h.push(Item::Guard {
                            skip_if: vec![Branch::new(Cond::Ne, cc, chunks - 1)],
                            body: end,
                        });
                    }
                }
            }
        }
        Ok(())
    };
    // The per-row instructions known after pass `p` (−1: before the
    // first), in body order.
    let per_row = |h: &mut Vec<Item>, p: i64, st: u64| -> Result<(), String> {
        for (j, inst) in body.iter().enumerate() {
            if passes.of[j] != p || inst.width != Width::Row {
                continue;
            }
            let dst = value(j, 0, st);
            match &inst.op {
                RowsOp::Reduce(op) => {
                    let acc_dt = acc_of(j)?;
                    let acc = VBuf::of(
                        layout
                            .acc
                            .as_ref()
                            .ok_or("internal: a reduction without its accumulator")?,
                        0,
                        acc_dt,
                    );
                    fold_lanes(h, *op, acc, lane(j, acc_dt, st)?, 1, 256 / size(acc_dt));
                    finish(h, *op, dst, acc, slots, n);
                }
                RowsOp::Ew(op) => {
                    let args = inst
                        .args
                        .iter()
                        .map(|a| match *a {
                            EwArg::Input(k) => {
                                VBuf::of(&layout.inputs[k], st as u32, inputs[k].view.dtype)
                            }
                            EwArg::Inst(k) => value(k, 0, st),
                        })
                        .collect::<Vec<_>>();
                    vector::emit_op(h, slots, op, dst, &args, &scratch)?;
                }
                RowsOp::Expand => return Err("internal: a per-row expansion".into()),
            }
        }
        Ok(())
    };
    // This block's rows are bi, bi + bd, …: `my_rows` of them, in
    // (my_rows + passes − 1) × chunks × passes steps.
    items.ins().s_li(my_rows, outer);
    items.ins().s_alu(AluOp::Sub, my_rows, my_rows, bi);
    items.ins().s_alu(AluOp::Add, my_rows, my_rows, bd);
    items.ins().s_alu(AluOp::Sub, my_rows, my_rows, 1u64);
    items.ins().s_alu(AluOp::Div, my_rows, my_rows, bd);
    if piped {
        // The pipeline fills and drains: passes − 1 more rows' worth.
        items.ins().s_alu(AluOp::Add, nsteps, my_rows, pc - 1);
        items.ins().s_alu(AluOp::Mul, nsteps, nsteps, chunks * pc);
    } else {
        items.ins().s_alu(AluOp::Mul, nsteps, my_rows, chunks * pc);
    }
    items.ins().s_li(sa, 0u64);
    double_buffered(&mut items, (sa, sb), 1u64, 2u64, nsteps, |half, sr| {
        let mut h = Vec::new();
        // Step → (pass q, chunk, the pass's local row lr = base − q); a
        // step whose row is not one of this block's does nothing but load
        // (a clamped row: loads stay unconditional).
        if piped {
            h.ins().s_alu(AluOp::Rem, q, sr, pc);
            h.ins().s_alu(AluOp::Div, base, sr, pc);
            h.ins().s_alu(AluOp::Rem, cc, base, chunks);
            h.ins().s_alu(AluOp::Div, base, base, chunks);
            h.ins().s_alu(AluOp::Sub, lr, base, q);
            h.ins().s_alu(AluOp::Max, t, lr, 0u64);
            h.ins().s_alu(AluOp::Sub, off, my_rows, 1u64);
            h.ins().s_alu(AluOp::Min, t, t, off);
            h.ins().s_alu(AluOp::Mul, t, t, bd);
            h.ins().s_alu(AluOp::Add, t, t, bi);
        } else {
            // One row at a time: its passes, each over its chunks.
            h.ins().s_alu(AluOp::Div, t, sr, pc * chunks);
            h.ins().s_alu(AluOp::Mul, t, t, bd);
            h.ins().s_alu(AluOp::Add, t, t, bi);
            h.ins().s_alu(AluOp::Rem, cc, sr, pc * chunks);
            h.ins().s_alu(AluOp::Div, q, cc, chunks);
            h.ins().s_alu(AluOp::Rem, cc, cc, chunks);
        }
        let idle: Vec<Branch> = if piped {
            vec![
                Branch::new(Cond::Lt, lr, 0u64),
                Branch::new(Cond::Ge, lr, my_rows),
            ]
        } else {
            Vec::new()
        };
        // The rows move on a pass at a row's first step: per-row state
        // shifts from copy p − 1 to copy p, last first.
        let mut shift = Vec::new();
        for p in (1..pc).rev().filter(|_| piped) {
            let (to, from) = (p as u32, p as u32 - 1);
            for (j, inst) in body.iter().enumerate() {
                if inst.width == Width::Row && j != last {
                    let d = value(j, 0, p);
                    let sz = slots * size(inst.dtype);
                    let src = value(j, 0, p - 1);
                    Seq {
                        items: &mut shift,
                        n: sz / 4,
                    }
                    .copy(d.as_dtype(DType::I32), src.as_dtype(DType::I32));
                }
            }
            for (k, i) in inputs.iter().enumerate() {
                if i.width == Width::Row && bases[k].is_some() {
                    let d = VBuf::of(&layout.inputs[k], to, DType::I32);
                    let src = VBuf::of(&layout.inputs[k], from, DType::I32);
                    let sz = slots * size(i.view.dtype);
                    Seq {
                        items: &mut shift,
                        n: sz.div_ceil(4),
                    }
                    .copy(d, src);
                }
            }
            if let Some(b) = lanes_buf {
                let d = VBuf::of(b, 0, DType::I32).offset(p * state_bytes);
                let src = VBuf::of(b, 0, DType::I32).offset((p - 1) * state_bytes);
                Seq {
                    items: &mut shift,
                    n: state_bytes / 4,
                }
                .copy(d, src);
            }
        }
        if !shift.is_empty() {
            h.push(Item::Guard {
                skip_if: vec![
                    Branch::new(Cond::Ne, q, 0u64),
                    Branch::new(Cond::Ne, cc, 0u64),
                ],
                body: shift,
            });
        }
        // Valid elements of the chunk.
        h.ins().s_alu(AluOp::Mul, off, cc, c);
        h.ins().s_li(len, n);
        h.ins().s_alu(AluOp::Sub, len, len, off);
        h.ins().s_alu(AluOp::Min, len, len, c);
        // A row's first step: its per-row inputs and values, and every
        // reduction's lanes reset.
        let mut first = Vec::new();
        for (k, i) in inputs.iter().enumerate() {
            let (Width::Row, Some(base)) = (i.width, bases[k]) else {
                continue;
            };
            let s = size(i.view.dtype);
            let dst = VBuf::of(&layout.inputs[k], 0, i.view.dtype);
            first.ins().s_alu(AluOp::Mul, addr, t, s);
            first.ins().s_alu(AluOp::Add, addr, addr, base);
            first
                .op(vec![(Access::Write, dst.region(slots * s))])
                .mte2_gm_ub(dst.addr, addr, 1u64, s, 0u64, 0u64);
        }
        per_row(&mut first, -1, 0)?;
        for (j, inst) in body.iter().enumerate() {
            if let RowsOp::Reduce(op) = inst.op {
                let acc_dt = acc_of(j)?;
                Seq {
                    items: &mut first,
                    n: 256 / size(acc_dt),
                }
                .dup(lane(j, acc_dt, 0)?, identity(op, acc_dt));
            }
        }
        h.push(Item::Guard {
            skip_if: [
                Branch::new(Cond::Ne, q, 0u64),
                Branch::new(Cond::Ne, cc, 0u64),
            ]
            .into_iter()
            .chain(idle.iter().copied())
            .collect(),
            body: first,
        });
        // Loads.
        for (k, i) in inputs.iter().enumerate() {
            let (true, Some(base)) = (streams[k], bases[k]) else {
                continue;
            };
            let s = size(i.view.dtype);
            let rs = i.view.strides.first().copied().unwrap_or(0);
            let dst = VBuf::of(&layout.inputs[k], half, i.view.dtype);
            h.ins().s_alu(AluOp::Mul, addr, cc, c * s);
            h.ins().s_alu(AluOp::Mul, off, t, rs * s);
            h.ins().s_alu(AluOp::Add, addr, addr, off);
            h.ins().s_alu(AluOp::Add, addr, addr, base);
            h.ins().s_alu(AluOp::Mul, off, len, s);
            let mut load = Vec::new();
            load.op(vec![(Access::Write, dst.region(c * s))])
                .mte2_gm_ub(dst.addr, addr, 1u64, off, 0u64, c * s);
            if read_in[k].len() as u64 == passes.count {
                h.extend(load);
            } else {
                // Only on the passes that read it.
                let skip = (0..passes.count)
                    .filter(|p| !read_in[k].contains(p))
                    .map(|p| Branch::new(Cond::Eq, q, p))
                    .collect();
                h.push(Item::Guard {
                    skip_if: skip,
                    body: load,
                });
            }
        }
        for p in 0..passes.count {
            let mut g = Vec::new();
            compute(&mut g, p, half)?;
            let last_pass = p + 1 == passes.count;
            if last_pass && body[last].width == Width::Full {
                let so = size(out.dtype);
                let ob = VBuf::of(&layout.out, half, out.dtype);
                g.ins().s_alu(AluOp::Mul, addr, cc, c * so);
                g.ins().s_alu(AluOp::Mul, off, t, n * so);
                g.ins().s_alu(AluOp::Add, addr, addr, off);
                g.ins().s_alu(AluOp::Add, addr, addr, base_out);
                g.ins().s_alu(AluOp::Mul, off, len, so);
                g.op(vec![(Access::Read, ob.region(c * so))])
                    .mte3_ub_gm(addr, ob.addr, 1u64, off, 0u64, 0u64);
            }
            // The pass's last chunk: its reductions finished, its per-row
            // values computed (and a per-row result stored).
            let mut fin = Vec::new();
            per_row(&mut fin, p as i64, state(p))?;
            if last_pass && body[last].width == Width::Row {
                let so = size(out.dtype);
                let ob = VBuf::of(&layout.out, state(p) as u32, out.dtype);
                fin.ins().s_alu(AluOp::Mul, addr, t, so);
                fin.ins().s_alu(AluOp::Add, addr, addr, base_out);
                fin.op(vec![(Access::Read, ob.region(slots * so))])
                    .mte3_ub_gm(addr, ob.addr, 1u64, so, 0u64, 0u64);
            }
            if !fin.is_empty() {
                g.push(Item::Guard {
                    skip_if: vec![Branch::new(Cond::Ne, cc, chunks - 1)],
                    body: fin,
                });
            }
            h.push(Item::Guard {
                skip_if: std::iter::once(Branch::new(Cond::Ne, q, p))
                    .chain(idle.iter().copied())
                    .collect(),
                body: g,
            });
        }
        Ok(h)
    })?;
    Ok(items)
}

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
            super::inst::lanes(LANES),
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
fn generate_transposed(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
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
    if layout.inputs.len() != inputs.len()
        || layout.raw.len() != inputs.len()
        || layout.temps.len() + 1 != body.len()
        || rows == 0
        || rows % LANES != 0
    {
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
    // k all element k (offset `(m / rows)·s`).
    for (k, i) in inputs.iter().enumerate() {
        let repeated = i.width == Width::Full && i.view.strides.first() == Some(&0);
        let (true, Some(base), Some(raw)) = (repeated, bases[k], layout.raw[k]) else {
            continue;
        };
        let s = size(i.view.dtype);
        let small = VBuf::of(&raw, 0, i.view.dtype);
        items
            .op(vec![(Access::Write, small.region(n * s))])
            .mte2_gm_ub(small.addr, base, 1u64, n * s, 0u64, 0u64);
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
                        let rs = i.view.strides.first().copied().unwrap_or(0);
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
                if bases[k].is_none() || i.view.strides.first() == Some(&0) {
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
                        vector::emit_op(&mut h, count(inst.width), op, dst, &args, &scratch)?;
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
                        let wide = if src.dtype == acc_dt {
                            src
                        } else {
                            let w = layout
                                .wide
                                .as_ref()
                                .ok_or("internal: a widening reduction without its wide buffer")?;
                            let w = VBuf::of(w, 0, acc_dt);
                            Seq {
                                items: &mut h,
                                n: tile,
                            }
                            .cvt(w, src);
                            w
                        };
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
