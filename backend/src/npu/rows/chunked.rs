//! Chunked row stages (rows longer than UB holds): each pass of the body
//! (`Passes`) runs over a row's chunks, streamed through the ping-pong loop
//! of the vector templates. Each step computes one chunk of one pass's full
//! instructions and folds its reductions into lanes kept across chunks;
//! after a pass's last chunk its reductions are finished and its per-row
//! values computed. The last pass stores the result chunk by chunk. Steps
//! go row by row, or, *pipelined* (`pipelines`), with one row per pass in
//! flight: step s runs pass s mod passes of the row that pass is on, so the
//! first pass's HBM reads overlap the later passes' vector work; pass p
//! keeps its row's per-row state in copy p, shifted on when the rows move
//! on a pass.

use super::{
    Opening, finish, load_scalar, online, opening, replicate, row_offset, scalar_form, size,
    spread, widened,
};
use crate::npu::Ctx;
use crate::npu::inst::InstBuilder;
use crate::npu::prog::{Access, Branch, Build, Item};
use crate::npu::reduce::{
    combine, fold_across, fold_block_partials, fold_lanes, fold_repeats, identity,
};
use crate::npu::tiles::multi_buffered;
use crate::npu::vector::{self, Opnd, Seq, VBuf, bin_op, dt};
use std::collections::BTreeMap;
use tessera_ir::plan::reduce::LANES;
use tessera_ir::plan::rows::{
    BLOCKWISE_MIN_REPEATS, Passes, elided, folds, folds_in_place, online, online_variance,
    row_slots, stream_copies,
};
use tessera_ir::plan::{EwArg, EwOp, Rows, RowsOp, Width};
use tessera_ir::{DType, ReduceOp};
use tessera_sim::isa::{AluOp, BinOp, Cond, Reg, ScaOp, Scal, UnOp};

/// Generates a chunked row stage: one row at a time, each pass streaming
/// the row's chunks.
pub(super) fn generate(ctx: &mut Ctx<'_>, r: &Rows) -> Result<Vec<Item>, String> {
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
    let online = online(body, &widths);
    let variance = online_variance(body, &widths);
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
    // Arithmetic with a per-row value known before its pass takes the
    // scalar-operand form (`scalar_at`): the value's f32 bits (converted
    // first when it is narrower) wait in a register, loaded once per row
    // where the value becomes the pass's (`load_values`), so that the
    // register load's wait for the vector pipe comes once a row, not once
    // a chunk. Registers go per expansion, and when pipelined per pass too
    // (the passes are on different rows).
    let ready = |a: &EwArg| match *a {
        EwArg::Input(_) => -1,
        EwArg::Inst(i) => passes.of[i],
    };
    // The online softmax's running maximum in its own pass: known chunk by
    // chunk, its register is loaded after each chunk raises it. Only where
    // the vector work is the bound (blockwise): the scalar unit waits for
    // the vector pipe once a chunk, and so issues the next loads later,
    // which costs a stage bound by GM more than the halved subtraction
    // saves. The online variance's shift in its own pass: known after the
    // row's first chunk, its register loaded then (once a row).
    let online_at = |a: &EwArg, p: u64| match *a {
        EwArg::Inst(i) => {
            passes.of[i] == p as i64
                && ((schedule.blockwise && online.map(|(m, _)| m) == Some(i))
                    || variance.map(|(m, _)| m) == Some(i))
        }
        EwArg::Input(_) => false,
    };
    let candidate = |j: usize, p: u64| -> Option<(ScaOp, usize, bool, usize)> {
        let (op, x, negate) = scalar_form(body, &elided, j, true)?;
        let k = body[j].args.iter().find_map(|a| match *a {
            EwArg::Inst(k) if elided[k] => Some(k),
            EwArg::Inst(_) | EwArg::Input(_) => None,
        })?;
        let src = body[k].args.first()?;
        (ready(src) < p as i64 || online_at(src, p)).then_some((op, x, negate, k))
    };
    let key = |p: u64| if schedule.pipelined { p } else { 0 };
    // (pass or 0, expansion, negated) → its register, while registers last
    // (the stage's own take `RESERVED` more); the rest keep the block form.
    const RESERVED: u8 = 13;
    let mut sregs: BTreeMap<(u64, usize, bool), Reg> = BTreeMap::new();
    for p in 0..passes.count {
        let streamed = passes.streamed(body, p);
        for j in (0..body.len()).filter(|&j| streamed[j]) {
            if let Some((_, _, negate, k)) = candidate(j, p)
                && !sregs.contains_key(&(key(p), k, negate))
                && ctx.regs.left() > RESERVED
            {
                sregs.insert((key(p), k, negate), ctx.regs.get()?);
            }
        }
    }
    let scalar_at = |j: usize, p: u64| {
        candidate(j, p).filter(|&(_, _, negate, k)| sregs.contains_key(&(key(p), k, negate)))
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
        folds(body, inputs, &body[j])
            .map(|(_, acc)| acc)
            .ok_or_else(|| "internal: not a reduction with an operand".to_string())
    };
    // Loads the registers of `sregs` that `which` picks (by pass key and
    // the pass after which the value is known, −1 before the first) from
    // state copy `st`: the value's f32 bits (a narrower value converted
    // into its expansion's block first), negated where the form wants it.
    // With `staged`, an f32 value is copied into the block too: the
    // register load then waits for a vector instruction of its own guard,
    // not for one in another guard (an event the whole loop body would
    // wait for at every step).
    let load_values =
        |h: &mut Vec<Item>, st: u64, staged: bool, which: &dyn Fn(u64, i64) -> bool| {
            for (&(pk, k, negate), &reg) in &sregs {
                let Some(src) = body[k].args.first() else {
                    return Err("internal: an expansion without operand".to_string());
                };
                // The running maximum's own register (pipelined, its pass's
                // key) is loaded chunk by chunk instead.
                if !which(pk, ready(src)) || (schedule.pipelined && online_at(src, pk)) {
                    continue;
                }
                let v = match *src {
                    EwArg::Input(i) => VBuf::of(&layout.inputs[i], st as u32, inputs[i].view.dtype),
                    EwArg::Inst(i) => value(i, 0, st),
                };
                let bits = if v.dtype == DType::F32 && !staged {
                    v
                } else {
                    let b = layout
                        .blocks
                        .as_ref()
                        .ok_or("internal: an expansion without its block buffer")?;
                    let b = VBuf::of(b, 0, DType::F32).offset(block_of[k] * slots * 32);
                    if v.dtype == DType::F32 {
                        Seq { items: h, n: 1 }.copy(b, v);
                    } else {
                        Seq { items: h, n: 1 }.cvt(b, v);
                    }
                    b
                };
                load_scalar(h, reg, bits, negate);
            }
            Ok(())
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
        // Folds `src`, a chunk of reduction `j`'s operand (or, for an
        // online variance's mean, of the difference from its shift), into
        // `j`'s lanes; `dst` is `j`'s value.
        let reduce = |h: &mut Vec<Item>,
                      j: usize,
                      op: &ReduceOp,
                      src: VBuf,
                      dst: VBuf|
         -> Result<(), String> {
            let acc_dt = acc_of(j)?;
            let wide = widened(h, layout, src, acc_dt, c)?;
            let mine = lane(j, acc_dt, st)?;
            let part = lane(usize::MAX, acc_dt, st)?;
            // An online softmax's max folds the chunk's own maximum
            // into its lanes afresh: the first fold writes them.
            let running_max = online.map(|(m, _)| m) == Some(j);
            let per = 256 / size(acc_dt);
            // Blockwise, the partials of a converted or dead chunk
            // land in place, another's in `part`.
            let partials = if !schedule.blockwise {
                None
            } else if folds_in_place(body, inputs, j, &streamed) {
                Some(wide)
            } else {
                layout.part.as_ref().map(|p| VBuf::of(p, 0, acc_dt))
            };
            // A running maximum's lanes are folded to one value
            // right after (`raise_max`): when every chunk's block
            // partials fit one repeat of lanes after a second
            // block fold, they take that instead of a fold across
            // repeats and one of the partial repeat, and the
            // running maximum itself goes into a block of the
            // lanes (at `m_lane`) beside them (the rest keep the
            // identity), so that the fold of the lanes is the new
            // maximum: two dependent steps fewer.
            // (At least BLOCKWISE_MIN_REPEATS whole repeats give
            // at least one whole repeat of partials.)
            let block_lanes = 32 / size(acc_dt);
            let to_block = |lane: u64| lane.div_ceil(block_lanes) * block_lanes;
            let lanes_used = |valid: u64| -> Option<u64> {
                let (full, tail) = (valid / per, valid % per);
                let (reps, rest) = ((full * 8) / per, (full * 8) % per);
                (partials.is_some() && full >= BLOCKWISE_MIN_REPEATS && tail == 0).then_some(
                    if rest > 0 {
                        to_block(reps * 8) + 8
                    } else {
                        reps * 8
                    },
                )
            };
            let m_lane = lanes_used(c)
                .zip(lanes_used(last_len))
                .map(|(a, b)| to_block(a.max(b)))
                .filter(|&l| running_max && l + slots <= per);
            // Every chunk but the last folds whole repeats (long
            // enough, blockwise: their partials, whole repeats of
            // them and then a partial one); the last its valid ones
            // and a masked partial repeat.
            let fold = |h: &mut Vec<Item>, valid: u64| {
                let (full, tail) = (valid / per, valid % per);
                let (folded, reps, rest) = match partials.filter(|_| full >= BLOCKWISE_MIN_REPEATS)
                {
                    Some(to) => {
                        fold_block_partials(h, *op, acc_dt, to, wide, full, per);
                        (to, (full * 8) / per, (full * 8) % per)
                    }
                    None => (wide, full, 0),
                };
                if let Some(m_lane) = m_lane {
                    // Partials, then their second block fold into
                    // the lanes, the running maximum beside them.
                    Seq { items: h, n: per }.dup(mine, identity(*op, acc_dt));
                    fold_block_partials(h, *op, acc_dt, mine, folded, reps, per);
                    if rest > 0 {
                        // At a block boundary (the lanes between
                        // keep the identity).
                        let at = mine.offset(to_block(reps * 8) * size(acc_dt));
                        let from = folded.offset(reps * 256);
                        fold_block_partials(h, *op, acc_dt, at, from, 1, rest);
                    }
                    // Only the running maximum's first element holds
                    // it (a reduction writes one; the rest of its slots
                    // are whatever the accumulator held before): the
                    // rest of its block keeps the identity.
                    Seq { items: h, n: 1 }.copy(mine.offset(m_lane * size(acc_dt)), dst);
                    return;
                }
                // The partials' partial repeat, then the chunk's,
                // under masks of their valid lanes: into the lanes
                // as they are, alongside the fold of the whole
                // repeats into `part` (a running maximum's lanes
                // are written afresh by its fold: after it).
                let ends = |h: &mut Vec<Item>| {
                    for (n, from) in [
                        (rest, folded.offset(reps * 256)),
                        (tail, wide.offset(full * 256)),
                    ] {
                        if n > 0 {
                            Seq { items: h, n }.bin(combine(*op), mine, mine, from);
                        }
                    }
                };
                if running_max && reps > 0 {
                    fold_repeats(h, fold_across(*op), acc_dt, mine, folded, reps, 8, per);
                    ends(h);
                } else if reps > 0 {
                    fold_repeats(h, fold_across(*op), acc_dt, part, folded, reps, 8, per);
                    ends(h);
                    Seq { items: h, n: per }.bin(combine(*op), mine, mine, part);
                } else {
                    if running_max {
                        Seq { items: h, n: per }.dup(mine, identity(*op, acc_dt));
                    }
                    ends(h);
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
            if let Some((_, s)) = online.filter(|_| running_max) {
                let acc = layout
                    .acc
                    .as_ref()
                    .ok_or("internal: a reduction without its accumulator")?;
                let acc = VBuf::of(acc, 0, acc_dt);
                let sum = lane(s, DType::F32, st)?;
                // Registers of this maximum's expansions in this
                // pass take its new value's f32 bits.
                let load = |h: &mut Vec<Item>, new: VBuf| {
                    for (&(pk, k, negate), &reg) in &sregs {
                        if pk == key(p) && body[k].args.first() == Some(&EwArg::Inst(j)) {
                            load_scalar(h, reg, new, negate);
                        }
                    }
                };
                raise_max(
                    h,
                    *op,
                    (dst, mine, acc),
                    sum,
                    part,
                    (slots, m_lane.is_some()),
                    load,
                );
            }
            Ok(())
        };
        for (j, inst) in body.iter().enumerate() {
            if !streamed[j] {
                continue;
            }
            // The online variance's mean folds `x − K` (its difference
            // from the shift, `m + 2`) once it is computed.
            if let Some((m, _)) = variance
                && j == m + 3
                && passes.of[m] == p as i64
            {
                let d = value(m + 2, half, st);
                reduce(h, m, &ReduceOp::Mean, d, value(m, half, st))?;
            }
            let dst = value(j, half, st);
            let args = inst.args.iter().map(arg).collect::<Result<Vec<_>, _>>()?;
            let elided_arg = |a: &EwArg| matches!(*a, EwArg::Inst(k) if elided[k]);
            if let Some((op, x, negate, k)) = scalar_at(j, p) {
                let reg = *sregs
                    .get(&(key(p), k, negate))
                    .ok_or("internal: a scalar form without its register")?;
                let other = *args.get(x).ok_or("internal: a scalar form's operand")?;
                Seq { items: h, n: c }.sca(op, dst, other, Scal::Reg(reg));
                continue;
            }
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
                    super::ew(h, count(inst.width), (r, inst, op), dst, &args, &scratch)?;
                }
                RowsOp::Expand => {
                    let src = *args
                        .first()
                        .ok_or("internal: an expansion without operand")?;
                    let blocks_read = body.iter().enumerate().any(|(i, u)| {
                        streamed[i] && u.args.contains(&EwArg::Inst(j)) && scalar_at(i, p).is_none()
                    });
                    if elided[j] && !blocks_read {
                        // Its readers in this pass take the value itself.
                        continue;
                    }
                    let bc = block(j, src.dtype)?;
                    replicate(h, bc, src, slots);
                    if !elided[j] {
                        spread(h, dst, bc, 1, c);
                    }
                }
                RowsOp::Reduce(op) => {
                    let src = *args
                        .first()
                        .ok_or("internal: a reduction without operand")?;
                    if variance.map(|(m, _)| m) != Some(j) {
                        reduce(h, j, op, src, dst)?;
                        continue;
                    }
                    // The online variance's mean, on the row's first chunk:
                    // the chunk folded, its mean the shift `K` (0 when not
                    // finite: the row holds an infinity or a NaN, its
                    // variance NaN either way, and its mean that of the
                    // values themselves), kept as the mean's value until
                    // the pass ends and in the registers of its
                    // expansions (f32 bits); then the lanes start again,
                    // to fold `x − K` chunk by chunk (`Σ (x − K)`).
                    let acc = layout
                        .acc
                        .as_ref()
                        .ok_or("internal: a reduction without its accumulator")?;
                    let acc = VBuf::of(acc, 0, DType::F32);
                    let mine = lane(j, DType::F32, st)?;
                    let zero = lane(usize::MAX, DType::F32, st)?;
                    let finite = zero.offset(128);
                    let mut shift = Vec::new();
                    reduce(&mut shift, j, op, src, dst)?;
                    fold_lanes(&mut shift, *op, acc, mine, 1, 64);
                    finish(&mut shift, *op, dst, acc, slots, c);
                    let mut q = Seq {
                        items: &mut shift,
                        n: slots,
                    };
                    q.bin(BinOp::Sub, acc, dst, dst);
                    q.cmps(Cond::Eq, finite, acc, vector::scalar(DType::F32, 0.0));
                    q.dup(zero, vector::scalar(DType::F32, 0.0));
                    q.sel(dst, finite, dst, zero);
                    for (&(pk, k, negate), &reg) in &sregs {
                        if pk == key(p) && body[k].args.first() == Some(&EwArg::Inst(j)) {
                            load_scalar(&mut shift, reg, dst, negate);
                        }
                    }
                    Seq {
                        items: &mut shift,
                        n: 64,
                    }
                    .dup(mine, identity(*op, DType::F32));
                    h.push(Item::Guard {
                        skip_if: vec![Branch::new(Cond::Ne, cc, 0u64)],
                        body: shift,
                    });
                }
            }
        }
        Ok(())
    };
    // The per-row instructions known after pass `p` (−1: before the
    // first), in body order.
    let per_row = |h: &mut Vec<Item>, p: i64, st: u64| -> Result<(), String> {
        for (j, inst) in body.iter().enumerate() {
            if passes.of[j] != p || inst.width != Width::Row || online.map(|(m, _)| m) == Some(j) {
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
                    match variance {
                        // The mean: its lanes hold `Σ (x − K)` and its value
                        // the shift `K` until now. `a`, their mean, and
                        // `e = m − K` (exact: `m` is near `K`) wait in the
                        // spare lanes.
                        Some((m, _)) if m == j => {
                            let spare = lane(usize::MAX, DType::F32, st)?;
                            let (mean, a, e) =
                                (spare, spare.offset(slots * 4), spare.offset(slots * 8));
                            finish(h, *op, a, acc, slots, n);
                            let mut q = Seq { items: h, n: slots };
                            q.bin(BinOp::Add, mean, dst, a);
                            q.bin(BinOp::Sub, e, mean, dst);
                            q.copy(dst, mean);
                        }
                        // The squares about `K`, less `a²`, are the squares
                        // about the row's exact mean (clamped at zero); the
                        // whole-row form squares the differences from the
                        // rounded mean `m`, which adds `(a − e)²` (n of
                        // each for a sum). Where the whole-row form squares
                        // an infinite difference, so does this: an
                        // overflowed `a²` is taken off as the largest f32
                        // (the sum of squares overflowed too and stays
                        // +inf), and an infinite mean (the row holds an
                        // infinity, whose difference from the mean is NaN)
                        // adds `a − a`, NaN.
                        Some((_, v)) if v == j => {
                            let spare = lane(usize::MAX, DType::F32, st)?;
                            let (sq, a, e, nan) = (
                                spare,
                                spare.offset(slots * 4),
                                spare.offset(slots * 8),
                                spare.offset(slots * 12),
                            );
                            let f32s = |x: f64| vector::scalar(DType::F32, x);
                            let each = if *op == ReduceOp::Sum { n as f64 } else { 1.0 };
                            finish(h, *op, dst, acc, slots, n);
                            let mut q = Seq { items: h, n: slots };
                            q.bin(BinOp::Sub, nan, a, a);
                            q.bin(BinOp::Sub, e, a, e);
                            q.bin(BinOp::Mul, sq, a, a);
                            q.bin(BinOp::Mul, e, e, e);
                            if each != 1.0 {
                                q.sca(ScaOp::Muls, sq, sq, f32s(each));
                                q.sca(ScaOp::Muls, e, e, f32s(each));
                            }
                            q.sca(ScaOp::Mins, sq, sq, f32s(f64::from(f32::MAX)));
                            q.bin(BinOp::Sub, dst, dst, sq);
                            q.sca(ScaOp::Maxs, dst, dst, f32s(0.0));
                            q.bin(BinOp::Add, dst, dst, e);
                            q.bin(BinOp::Add, dst, dst, nan);
                        }
                        _ => finish(h, *op, dst, acc, slots, n),
                    }
                    if let Some((m, sum)) = online
                        && sum == j
                        && online::neg_inf_rows_show(body, (m, sum))
                    {
                        let spare = lane(usize::MAX, dst.dtype, st)?;
                        online::all_neg_inf(h, (value(m, 0, st), dst), spare, slots);
                    }
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
    // Steps take turns on the copies the layout gives every streamed
    // buffer (the planner's `stream_copies`; a plan written by hand may
    // give fewer): two or three.
    let full_out = body.last().is_some_and(|i| i.width == Width::Full);
    let copies = inputs
        .iter()
        .enumerate()
        .filter(|&(k, _)| streams[k])
        .map(|(k, _)| layout.inputs[k].copies)
        .chain(full_out.then_some(layout.out.copies))
        .min()
        .unwrap_or(2)
        .min(stream_copies(true));
    if copies < 2 {
        return Err("internal: a chunked stage's streamed buffers need two copies".into());
    }
    let mut step_regs = vec![sa, sb];
    for _ in 2..copies {
        step_regs.push(ctx.regs.get()?);
    }
    multi_buffered(&mut items, &step_regs, nsteps, |half, sr| {
        let mut h = Vec::new();
        // Step → (pass q, chunk, the pass's local row lr = base − q); a
        // step whose row is not one of this block's (filling or draining
        // the pipeline) does nothing: no loads, no compute, no stores.
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
        // Skips all but a row's first step (the first pass's first chunk).
        let row_start = || {
            vec![
                Branch::new(Cond::Ne, q, 0u64),
                Branch::new(Cond::Ne, cc, 0u64),
            ]
        };
        if !shift.is_empty() {
            h.push(Item::Guard {
                skip_if: row_start(),
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
        // Values known before the first pass (pipelined: the first pass's).
        load_values(&mut first, 0, false, &|pk, r| {
            if piped { pk == 0 } else { r < 0 }
        })?;
        if let Some((m, _)) = online {
            let v = value(m, 0, 0);
            Seq {
                items: &mut first,
                n: slots,
            }
            .dup(v, lowest(v.dtype)?);
        }
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
            skip_if: row_start()
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
            let dst = VBuf::of(&layout.inputs[k], half, i.view.dtype);
            row_offset(&mut h, off, addr, t, i);
            h.ins().s_alu(AluOp::Mul, addr, cc, c * s);
            h.ins().s_alu(AluOp::Add, addr, addr, off);
            h.ins().s_alu(AluOp::Add, addr, addr, base);
            h.ins().s_alu(AluOp::Mul, off, len, s);
            let mut load = Vec::new();
            load.op(vec![(Access::Write, dst.region(c * s))])
                .mte2_gm_ub(dst.addr, addr, 1u64, off, 0u64, c * s);
            if read_in[k].len() as u64 == passes.count && idle.is_empty() {
                h.extend(load);
            } else {
                // Only on the passes that read it, for a row of the block's.
                let skip = (0..passes.count)
                    .filter(|p| !read_in[k].contains(p))
                    .map(|p| Branch::new(Cond::Eq, q, p))
                    .chain(idle.iter().copied())
                    .collect();
                h.push(Item::Guard {
                    skip_if: skip,
                    body: load,
                });
            }
        }
        // Pipelined, at a row move pass p ≥ 1 takes its new row's values
        // from copy p, once the step's loads are on their way (the
        // register load waits for the vector pipe).
        let mut moved = Vec::new();
        for p in (1..pc).filter(|_| piped) {
            load_values(&mut moved, p, true, &|pk, _| pk == p)?;
        }
        if !moved.is_empty() {
            h.push(Item::Guard {
                skip_if: row_start(),
                body: moved,
            });
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
            if !piped {
                load_values(&mut fin, 0, false, &|_, r| r == p as i64)?;
            }
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

/// The online softmax's step after a chunk's maximum is folded into the
/// lanes `chunk` (of the running maximum `m`, a per-row value; `acc` takes
/// the fold): `m` rises to the chunk's maximum where that is larger, and
/// the sum's f32 lanes `sum` are scaled by `exp(old − new)`, computed in
/// f32; `tmp` is a spare repeat of lanes. With `folded` (the second of
/// `(slots, folded)`), `chunk` holds `m` already, so that its fold is the
/// new maximum. `then` runs once the new maximum is known, with its f32
/// bits (in `tmp`), before the sum is scaled: a scalar load there splits
/// the straight run, and the scaling after it then overlaps the chunk's
/// own work.
fn raise_max(
    h: &mut Vec<Item>,
    op: ReduceOp,
    (m, chunk, acc): (VBuf, VBuf, VBuf),
    sum: VBuf,
    tmp: VBuf,
    (slots, folded): (u64, bool),
    then: impl FnOnce(&mut Vec<Item>, VBuf),
) {
    fold_lanes(h, op, acc, chunk, 1, 256 / size(chunk.dtype));
    let (old, new) = (
        tmp.as_dtype(DType::F32),
        tmp.as_dtype(DType::F32).offset(128),
    );
    let mut q = Seq { items: h, n: slots };
    if !folded {
        q.bin(BinOp::Max, acc, acc, m);
    }
    if m.dtype == DType::F32 {
        q.copy(old, m);
        q.copy(new, acc);
    } else {
        q.cvt(old, m);
        q.cvt(new, acc);
    }
    q.copy(m, acc);
    then(h, new);
    let mut q = Seq { items: h, n: slots };
    q.bin(BinOp::Sub, old, old, new);
    q.un(UnOp::Exp, old, old);
    // exp(old − new) in every lane of one block, then the lanes scaled.
    let bc = chunk.as_dtype(DType::F32);
    replicate(h, bc, old, slots);
    vector::emit(
        h,
        256 / 4,
        &[Opnd::Run(sum), Opnd::Run(sum), Opnd::Block(bc)],
        |b, v, rep, mk| b.vec_bin(BinOp::Mul, dt(DType::F32), v[0], v[1], v[2], rep, mk),
    );
}

/// The lowest finite value of a float dtype, as a vector scalar.
fn lowest(d: DType) -> Result<tessera_sim::isa::Scal, String> {
    let v = match d {
        DType::F32 => f64::from(f32::MIN),
        DType::F16 => -65504.0,
        DType::BF16 => -3.389_531_389_251_535_5e38,
        DType::I32 | DType::I8 | DType::Bool => {
            return Err("internal: an online maximum of integers".into());
        }
    };
    Ok(vector::scalar(d, v))
}
