//! Split-K's second half, on the vector cores of a split machine (a mix
//! launch: the cube path in the `.aic` section, this in `.aiv`).
//!
//! The cube cores write every unit's accumulator to the partials workspace
//! (`[S, m, n]` f32, part-major), set cross-core counter `XC_DONE` in
//! mode 0 once their FixPipe writes are done, wait for it (every cube core
//! has set it), and signal their own vector cores through `XC_READY`
//! (mode 2). Each vector core waits for that signal, then takes
//! `red_rows × red_cols` chunks of the output round-robin (vector core `j`
//! of `J = block_dim · sub_block_dim`: chunks `j, j + J, …`, row-major over
//! the chunk grid). Per chunk: part 0 is loaded into the running sum, each
//! later part into one of two UB copies and added, in the order
//! `p = 1, 2, …` (the same bits on every run); then relu and the cast to
//! the output dtype, and MTE3 writes the chunk's rows. Vector instructions
//! run over the whole chunk buffer (`red_rows · red_cols` elements), so a
//! partial chunk computes a few stale elements that are never written out.

use super::{remaining, size};
use crate::npu::Ctx;
use crate::npu::inst::{InstBuilder, float_scalar};
use crate::npu::prog::{Access, Branch, Build, Item, Region};
use crate::npu::vector::{Seq, VBuf};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{CubeSchedule, MatMul, MatMulSchedule};
use tessera_sim::Pipe;
use tessera_sim::isa::{AluOp, BinOp, Cond, Reg, ScaOp, SysReg, UnOp};

/// Cross-core counter the cube cores meet at once their partials are out.
pub(super) const XC_DONE: u64 = 0;
/// Cross-core counter by which a cube core starts its vector cores.
pub(super) const XC_READY: u64 = 1;

/// The vector cores' section of a split-K matmul stage.
pub fn generate(ctx: &mut Ctx<'_>, mm: &MatMul, t: &CubeSchedule) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    t.check_split(&g).map_err(|e| format!("internal: {e}"))?;
    let bufs = t
        .layout
        .reduce
        .ok_or_else(|| "internal: split-K without reduction buffers".to_string())?;
    let acc_dt = g.acc();
    let (sa, so) = (size(acc_dt), size(g.out));
    let (rr, cw) = (t.red_rows, t.red_cols);
    let ncc = g.n.div_ceil(cw);
    let chunks = g.m.div_ceil(rr) * ncc;
    let part_bytes = g.partial_bytes();

    let mut items = Vec::new();
    let (bi, bd) = ctx.block(&mut items)?;
    let [sub, ws, c, r0, c0, rows, cols, src, len] = {
        let mut r = [Reg(0); 9];
        for x in &mut r {
            *x = ctx.regs.get()?;
        }
        r
    };
    // This vector core's index `j` (in `c`) and the count `J` (in `bd`).
    let subs = u64::from(ctx.machine.aiv_per_core().max(1));
    items.ins().s_sys(sub, SysReg::SubBlockIdx);
    items.ins().s_alu(AluOp::Mul, c, bi, subs);
    items.ins().s_alu(AluOp::Add, c, c, sub);
    items.ins().s_alu(AluOp::Mul, bd, bd, subs);
    items.ins().s_sys(ws, SysReg::Workspace);
    items.ins().s_alu(AluOp::Add, ws, ws, t.partials);
    let out = ctx.gm_view(&mut items, &mm.out)?;
    // Every partial is in GM once this core's cube core says so.
    items.ins().xcore_wait(Pipe::S, XC_READY);

    let acc = VBuf::of(&bufs.acc, 0, acc_dt);
    let elems = rr * cw;
    let mut chunk = Vec::new();
    // The chunk's first row and column, and its extents.
    chunk.ins().s_alu(AluOp::Div, r0, c, ncc);
    chunk.ins().s_alu(AluOp::Mul, r0, r0, rr);
    chunk.ins().s_alu(AluOp::Rem, c0, c, ncc);
    chunk.ins().s_alu(AluOp::Mul, c0, c0, cw);
    remaining(&mut chunk, rows, g.m, r0, rr);
    remaining(&mut chunk, cols, g.n, c0, cw);
    // Part 0's rows of the chunk: `ws + (r0 · n + c0) · 4`.
    chunk.ins().s_alu(AluOp::Mul, src, r0, g.n);
    chunk.ins().s_alu(AluOp::Add, src, src, c0);
    chunk.ins().s_alu(AluOp::Mul, src, src, sa);
    chunk.ins().s_alu(AluOp::Add, src, src, ws);
    chunk.ins().s_alu(AluOp::Mul, len, cols, sa);
    let load = |items: &mut Vec<Item>, to: Region| {
        items
            .op(vec![(Access::Write, to)])
            .mte2_gm_ub(to.start, src, rows, len, g.n * sa, cw * sa);
    };
    load(&mut chunk, Region::copy(&bufs.acc, 0));
    for p in 1..t.parts() {
        chunk.ins().s_alu(AluOp::Add, src, src, part_bytes);
        let copy = ((p - 1) % 2) as u32;
        load(&mut chunk, Region::copy(&bufs.part, copy));
        let part = VBuf::of(&bufs.part, copy, acc_dt);
        Seq {
            items: &mut chunk,
            n: elems,
        }
        .bin(BinOp::Add, acc, acc, part);
    }
    let mut seq = Seq {
        items: &mut chunk,
        n: elems,
    };
    if let Some(c) = g.scale {
        seq.sca(ScaOp::Muls, acc, acc, float_scalar(f64::from(c)));
    }
    if g.relu {
        seq.un(UnOp::Relu, acc, acc);
    }
    // The output leaves from the running sum, or from its cast.
    let from = if g.out == acc_dt {
        bufs.acc
    } else {
        let o = bufs.out.ok_or_else(|| {
            format!(
                "internal: a split-K reduction to {} without an output buffer",
                g.out.name()
            )
        })?;
        seq.cvt(VBuf::of(&o, 0, g.out), acc);
        o
    };
    // The output rows: `out + r0 · c_row · so + c0 · so`.
    chunk.ins().s_alu(AluOp::Mul, src, r0, g.c_row * so);
    chunk.ins().s_alu(AluOp::Add, src, src, out);
    chunk.ins().s_alu(AluOp::Mul, len, c0, so);
    chunk.ins().s_alu(AluOp::Add, src, src, len);
    chunk.ins().s_alu(AluOp::Mul, len, cols, so);
    chunk
        .op(vec![(Access::Read, Region::copy(&from, 0))])
        .mte3_ub_gm(src, from.copy(0), rows, len, cw * so, g.c_row * so);

    let mut latch = Vec::new();
    latch.ins().s_alu(AluOp::Add, c, c, bd);
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, c, chunks)],
        body: chunk,
        latch,
    });
    Ok(items)
}

/// Whether a stage's matmul is split over K (its vector cores' section).
pub fn is_split(mm: &MatMul) -> Option<&CubeSchedule> {
    match &mm.schedule {
        MatMulSchedule::Cube(t) => (t.parts() > 1).then_some(t),
        MatMulSchedule::Vector(_) => None,
    }
}
