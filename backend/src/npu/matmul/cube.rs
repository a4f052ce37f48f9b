//! The cube path of a matmul stage: L1 stages, L0 steps, `mmad` into one
//! L0C accumulator per tile, and the epilogue out of L0C (see the parent
//! module's docs).

use super::split::{XC_DONE, XC_READY};
use super::{
    Open, log2, open, panel_run, remaining, size, staggered_tile_loop, tile_loop, tile_setup,
};
use crate::npu::inst::{Address, InstBuilder, Operand, float_scalar};
use crate::npu::prog::{Access, Branch, Build, Item, Region, count_up};
use crate::npu::vector::{Seq, VBuf, dt};
use crate::npu::{Ctx, join};
use tessera_ir::DType;
use tessera_ir::plan::join::{epilogue_ends, phase_ends, phase_starts, phase_writers};
use tessera_ir::plan::matmul::{Geometry, Tail, nz_rows};
use tessera_ir::plan::{CubeSchedule, MatMul};
use tessera_sim::isa::{AluOp, Cond, Reg, ScaOp, SysReg};
use tessera_sim::{Organisation, Pipe};

/// A GM → L1 load of an operand: `(items, to, GM source, K)`.
type Load<'a> = dyn Fn(&mut Vec<Item>, Region, Reg, Reg) + 'a;

/// Scalar code: `dst = min(total - start, tile)`, `total` a constant or a
/// register.
fn remaining_to(items: &mut Vec<Item>, dst: Reg, total: Operand, start: Reg, tile: u64) {
    match total {
        Operand::Imm(v) => remaining(items, dst, v as u64, start, tile),
        Operand::Reg(r) => {
            items.ins().s_alu(AluOp::Sub, dst, r, start);
            items.ins().s_alu(AluOp::Min, dst, dst, tile);
        }
    }
}

/// The accumulator's halves ([`CubeSchedule::halves`]): their regions, and
/// the right half's `init` flag (the left's is the tile's). A piece of a
/// half computes its columns into scratch registers, which are free after
/// the tile setup.
struct Halves {
    acc: [Region; 2],
    init_r: Reg,
}

/// Scalar code: the columns of half `side` of a tile of `ncur` columns
/// (left: `min(ncur, half)`; right: the rest) into `cols`, and their
/// 16-column blocks into `blocks`.
fn half_columns(
    items: &mut Vec<Item>,
    side: usize,
    ncur: Reg,
    half: u64,
    [cols, blocks]: [Reg; 2],
) {
    if side == 0 {
        items.ins().s_alu(AluOp::Min, cols, ncur, half);
    } else {
        items.ins().s_alu(AluOp::Max, cols, ncur, half);
        items.ins().s_alu(AluOp::Sub, cols, cols, half);
    }
    items.ins().s_alu(AluOp::Add, blocks, cols, 15u64);
    items.ins().s_alu(AluOp::Shr, blocks, blocks, 4u64);
}

/// Generates the cube path of a matmul stage.
pub(super) fn generate(
    ctx: &mut Ctx<'_>,
    mm: &MatMul,
    t: &CubeSchedule,
) -> Result<Vec<Item>, String> {
    let g = Geometry::of(mm)?;
    let layout = &t.layout;
    let coupled = ctx.machine.organisation == Organisation::Coupled;
    t.check_split(&g).map_err(|e| format!("internal: {e}"))?;
    let split = t.parts() > 1;
    if split && u64::from(ctx.machine.sync.cross_core_flags) <= XC_READY {
        return Err("internal: split-K needs two cross-core flags".into());
    }
    // Split-K writes each unit's accumulator, unconverted, to its part of
    // the partials workspace (`[S, m, n]`); the vector cores finish it
    // (`split.rs`).
    let ge = if split {
        Geometry {
            out: g.acc(),
            c_row: g.n,
            relu: false,
            scale: None,
            ..g.clone()
        }
    } else {
        g.clone()
    };
    let (s, so, c0) = (size(g.dtype), size(ge.out), g.c0());
    let (dt_in, dt_out) = (dt(g.dtype), dt(ge.out));
    let tm = g.m.div_ceil(t.base_m);
    let tn = g.n.div_ceil(t.base_n);
    let tail = Tail::of(&g, t, u64::from(ctx.stage.block_dim));
    if t.tail_parts > 1 && tail.is_none() {
        return Err(format!(
            "internal: tail_parts={} does not fit this stage's last round",
            t.tail_parts
        ));
    }
    t.check_depths(g.k).map_err(|e| format!("internal: {e}"))?;
    t.check_panel(&g).map_err(|e| format!("internal: {e}"))?;
    t.check_fold(&g, u64::from(ctx.stage.block_dim))
        .map_err(|e| format!("internal: {e}"))?;
    if layout.acc.copies > 1 && (t.a_stages, t.b_stages) != (1, 1) {
        return Err("internal: two accumulators need loads one stage deep".into());
    }
    let total = tail.map_or(g.batches() * tm * tn, |tl| tl.indices());
    let steps = t.l1_k / t.base_k;
    // An A panel: stage `h` of the one K loop iteration loads (or finds)
    // its part `h` of `base_m × K` in L1, a fixed place of its own.
    let pstages = t.panel_stages(g.k);
    let chunk_bytes = t.l1_k / c0 * nz_rows(t.base_m, 16) * 32;
    if t.a_panel && layout.a_l1.bytes < pstages * chunk_bytes {
        return Err("internal: an A panel larger than its L1 buffer".into());
    }
    let a_chunk = |h: u64| Region::copy(&layout.a_l1, 0).part(h * chunk_bytes, chunk_bytes);
    // K of a unit: the whole of K, or a part of it.
    let kp = t.unit_k(g.k);

    // A joined prologue's phases, each first read at a unit; a joined
    // epilogue's, each written by units before one.
    let block_dim = u64::from(ctx.stage.block_dim);
    let rows = g.batches() * g.m;
    let phase_starts = match t.prologue {
        0 => Vec::new(),
        first => phase_starts(t, &g, &phase_ends(first, rows)),
    };
    let writers = match t.epilogue {
        0 => Vec::new(),
        size => phase_writers(t, &g, &epilogue_ends(size, rows)),
    };
    let mut items = Vec::new();
    let o = open(ctx, mm, &g, &mut items)?;
    // The epilogue's phases signalled so far.
    let sent = if writers.is_empty() {
        None
    } else {
        let r = ctx.regs.get()?;
        items.ins().s_li(r, 0u64);
        Some(r)
    };
    // With a ring: the phases the vector cores have read (as far as this
    // core has waited), and two scratch registers.
    let ring = match (t.ring, sent) {
        (0, _) => None,
        (_, None) => return Err("internal: a ring without an epilogue".into()),
        (_, Some(sent)) => {
            let read = ctx.regs.get()?;
            items.ins().s_li(read, 0u64);
            Some((sent, read, [ctx.regs.get()?, ctx.regs.get()?]))
        }
    };
    let mut r8 = [Reg(0); 8];
    for r in &mut r8 {
        *r = ctx.regs.get()?;
    }
    let [m16, m1, n1, init, ks, kc, kk, k1] = r8;
    // An A panel: this tile's A address and the previous tile's (none at
    // first); a tile with the previous one's A loads none.
    let panel_regs = if t.a_panel {
        let (pa, prev) = (ctx.regs.get()?, ctx.regs.get()?);
        // Below A's first element: no tile's A address.
        items.ins().s_alu(AluOp::Sub, prev, o.bases[0], 1u64);
        Some((pa, prev))
    } else {
        None
    };
    let kept = |body: Vec<Item>| match panel_regs {
        Some((pa, prev)) => vec![Item::Guard {
            skip_if: vec![Branch::new(Cond::Eq, pa, prev)],
            body,
        }],
        None => body,
    };
    // Split-K: the unit's tile and part, and the end of its K (`kend`) and
    // the K from which no stage follows (`klast`), in registers.
    let parts = if split {
        let mut r4 = [Reg(0); 4];
        for r in &mut r4 {
            *r = ctx.regs.get()?;
        }
        // The output base becomes the partials' (`open` read the output's).
        items.ins().s_sys(o.bases[2], SysReg::Workspace);
        items
            .ins()
            .s_alu(AluOp::Add, o.bases[2], o.bases[2], t.partials);
        Some(r4)
    } else {
        None
    };
    let (kend, klast): (Operand, Operand) = match parts {
        Some([_, _, ke, kl]) => (ke.into(), kl.into()),
        None => (g.k.into(), g.k.saturating_sub(t.l1_k).into()),
    };

    let Open { regs, tmp, .. } = &o;
    let (mcur, ncur, ga, gb, gc) = (regs.mcur, regs.ncur, regs.ga, regs.gb, regs.gc);
    let halves = if t.halves {
        t.check_halves(&g, !coupled)
            .map_err(|e| format!("internal: {e}"))?;
        let acc = Region::copy(&layout.acc, 0);
        let left = t.base_m * t.half_n() * 4;
        Some(Halves {
            acc: [
                acc.part(0, left),
                acc.part(left, acc.end - acc.start - left),
            ],
            init_r: ctx.regs.get()?,
        })
    } else {
        None
    };
    // One L1 stage `h` of an iteration, as pieces: the loads, each L0 step
    // (with the K offset it skips at), the advance. An iteration runs
    // `2 · max(a_stages, b_stages)` stages so every buffer copy sits at a
    // fixed place: A's load `h / a_stages` goes to copy `(h / a_stages) % 2`
    // and stage `h` reads its part `h % a_stages` (likewise B). Later stages
    // of an iteration guard every piece on its own (rather than the whole
    // stage at once), so the events into its steps wait for the matching
    // step of the first stage only.
    let (ka, kb) = (t.l1_k * t.a_stages, t.l1_k * t.b_stages);
    let (ka_rows, kb_rows) = (nz_rows(ka, c0), nz_rows(kb, c0));
    // GM → L1 loads of A and B: `ke` K into `to` from GM address `src`.
    let a_load = |items: &mut Vec<Item>, to: Region, src: Reg, ke: Reg| {
        let (rows, cols, dst_rows) = if g.a_t {
            (ke, mcur, ka_rows)
        } else {
            (mcur, ke, nz_rows(t.base_m, 16))
        };
        items.op(vec![(Access::Write, to)]).mte2_nd2nz(
            dt_in,
            to.start,
            src,
            rows,
            cols,
            g.a_row * s,
            dst_rows,
        );
    };
    let b_load = |items: &mut Vec<Item>, to: Region, src: Reg, ke: Reg| {
        let (rows, cols, dst_rows) = if g.b_t {
            (ncur, ke, nz_rows(t.base_n, 16))
        } else {
            (ke, ncur, kb_rows)
        };
        items.op(vec![(Access::Write, to)]).mte2_nd2nz(
            dt_in,
            to.start,
            src,
            rows,
            cols,
            g.b_row * s,
            dst_rows,
        );
    };
    // GM bytes per K of each operand's rows / columns.
    let a_k = if g.a_t { g.a_row } else { 1 } * s;
    let b_k = if g.b_t { 1 } else { g.b_row } * s;
    // An operand loaded `stages > 1` deep is prefetched one L1 stage early:
    // the last stage of each of its chunks (after its own loads) loads the
    // next chunk, from the next stage's K on, into the other copy. Issued
    // later, the large load would sit in MTE2's queue behind the wait for
    // the other operand's buffer and starve the cube. With single-stage
    // loads (one accumulator, many steps a stage) both operands are
    // prefetched so: the scalar unit issues in program order, and a stage's
    // loads placed after the previous stage's steps reach MTE2 only once
    // MTE1's queue has taken those steps, which left MTE2 idle between
    // loads.
    // `klast`: K from which no stage follows (no next chunk to prefetch).
    let prefetch_reg = tmp[0];
    // A half's columns and its drain's GM address (halves).
    let (hcols, hgm) = (tmp[1], tmp[2]);
    let prefetch = |st: &mut Vec<Item>,
                    load: &Load<'_>,
                    to: Region,
                    step_bytes: u64,
                    gsrc: Reg,
                    depth: u64| {
        let mut body = Vec::new();
        remaining_to(&mut body, kk, klast, ks, depth);
        body.ins()
            .s_alu(AluOp::Add, prefetch_reg, gsrc, t.l1_k * step_bytes);
        load(&mut body, to, prefetch_reg, kk);
        st.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ge, ks, klast)],
            body,
        });
    };
    // The tile's first chunk of a deep operand: in the first stage, so its
    // buffer's release is the previous tile's last reader of it, not the
    // end of the previous tile's K loop.
    let first_chunk = |st: &mut Vec<Item>, load: &Load<'_>, to: Region, src: Reg, depth: u64| {
        let mut body = Vec::new();
        match kend {
            Operand::Imm(k) => body.ins().s_li(kk, depth.min(k as u64)),
            Operand::Reg(ke) => {
                body.ins().s_li(kk, depth);
                body.ins().s_alu(AluOp::Min, kk, kk, ke);
            }
        }
        load(&mut body, to, src, kk);
        st.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ge, ks, t.l1_k)],
            body,
        });
    };
    // Which operands are prefetched a stage early: a deep one; with
    // single-stage loads, both when the schedule says so.
    let single = t.loads_early(ctx.machine.sync.queue_depth);
    let early = [single || t.a_stages > 1, single || t.b_stages > 1];
    // A tile of one stage has no next chunk to prefetch.
    let prefetches = kp > t.l1_k;
    let stage = |h: u64, acc: Region| -> Vec<(Vec<Item>, u64)> {
        let mut pieces = Vec::new();
        let mut st = Vec::new();
        let (a_part, b_part) = (h % t.a_stages, h % t.b_stages);
        remaining_to(&mut st, kc, kend, ks, t.l1_k);
        let a1 = if t.a_panel {
            a_chunk(h)
        } else {
            Region::copy(&layout.a_l1, ((h / t.a_stages) % 2) as u32)
        };
        let b1 = Region::copy(&layout.b_l1, ((h / t.b_stages) % 2) as u32);
        if !early[0] {
            let mut load = Vec::new();
            a_load(&mut load, a1, ga, kc);
            st.extend(kept(load));
        } else if h == 0 {
            let mut load = Vec::new();
            first_chunk(&mut load, &a_load, a1, ga, ka);
            st.extend(kept(load));
        }
        if !early[1] {
            b_load(&mut st, b1, gb, kc);
        } else if h == 0 {
            first_chunk(&mut st, &b_load, b1, gb, kb);
        }
        pieces.push((std::mem::take(&mut st), 0));
        // Its own piece, so the events of this stage's loads are set
        // before it.
        if t.a_panel {
            // The next part of the panel, when there is one.
            if early[0] && h + 1 < pstages {
                let mut load = Vec::new();
                load.ins().s_li(kk, (g.k - (h + 1) * t.l1_k).min(t.l1_k));
                load.ins().s_alu(AluOp::Add, prefetch_reg, ga, t.l1_k * a_k);
                a_load(&mut load, a_chunk(h + 1), prefetch_reg, kk);
                st.extend(kept(load));
            }
        } else if prefetches && early[0] && a_part == t.a_stages - 1 {
            let to = Region::copy(&layout.a_l1, ((h / t.a_stages + 1) % 2) as u32);
            prefetch(&mut st, &a_load, to, a_k, ga, ka);
        }
        if prefetches && early[1] && b_part == t.b_stages - 1 {
            let to = Region::copy(&layout.b_l1, ((h / t.b_stages + 1) % 2) as u32);
            prefetch(&mut st, &b_load, to, b_k, gb, kb);
        }
        if !st.is_empty() {
            pieces.push((std::mem::take(&mut st), 0));
        }
        // With halves, the stage's steps go into the left half, then the
        // right, and its drains follow each (the tile's last stage only).
        let passes: &[Option<usize>] = match &halves {
            Some(_) => &[Some(0), Some(1)],
            None => &[None],
        };
        for (pi, pass) in passes.iter().enumerate() {
            for step in 0..steps {
                let idx = (h * passes.len() as u64 + pi as u64) * steps + step;
                let c = (idx % 2) as u32;
                let a0 = Region::copy(&layout.a_l0, c);
                let b0 = Region::copy(&layout.b_l0, c);
                let koff = step * t.base_k;
                // A panel's part `h` is a region of its own.
                let a_part = if t.a_panel { 0 } else { a_part };
                let (ak, bk) = (a_part * t.l1_k + koff, b_part * t.l1_k + koff);
                // The columns of this pass: the whole tile, or a half
                // (its columns and blocks in scratch registers).
                let mut body = Vec::new();
                let (acc_at, n_reg, init_reg, col0) = match (pass, &halves) {
                    (Some(side), Some(hv)) => {
                        half_columns(&mut body, *side, ncur, t.half_n(), [hcols, n1]);
                        let init = if *side == 0 { init } else { hv.init_r };
                        (hv.acc[*side], hcols, init, *side as u64 * t.half_n())
                    }
                    _ => (acc, ncur, init, 0),
                };
                body.ins().s_alu(AluOp::Sub, kk, kc, koff);
                body.ins().s_alu(AluOp::Min, kk, kk, t.base_k);
                body.ins().s_alu(AluOp::Add, k1, kk, c0 - 1);
                body.ins().s_alu(AluOp::Shr, k1, k1, u64::from(log2(c0)));
                // L1 → L0A.
                let a_in = body.op(vec![(Access::Write, a0), (Access::Read, a1)]);
                if g.a_t {
                    a_in.mte1_l0a_t(dt_in, a0.start, a1.start + ak * 32, m1, k1, ka_rows * 32);
                } else {
                    let rows = nz_rows(t.base_m, 16);
                    a_in.mte1_l0a(
                        dt_in,
                        a0.start,
                        a1.start + ak / c0 * rows * 32,
                        m1,
                        k1,
                        rows * 32,
                    );
                }
                let b_in = body.op(vec![(Access::Write, b0), (Access::Read, b1)]);
                if g.b_t {
                    let rows = nz_rows(t.base_n, 16);
                    b_in.mte1_l0b(
                        dt_in,
                        b0.start,
                        b1.start + bk / c0 * rows * 32 + col0 * 32,
                        k1,
                        n1,
                        rows * 32,
                    );
                } else {
                    b_in.mte1_l0b_t(
                        dt_in,
                        b0.start,
                        b1.start + col0 / c0 * kb_rows * 32 + bk * 32,
                        k1,
                        n1,
                        kb_rows * 32,
                    );
                }
                body.op(vec![
                    (Access::Accumulate, acc_at),
                    (Access::Read, a0),
                    (Access::Read, b0),
                ])
                .cube_mmad(
                    dt_in,
                    acc_at.start,
                    a0.start,
                    b0.start,
                    mcur,
                    kk,
                    n_reg,
                    init_reg,
                );
                body.ins().s_li(init_reg, 0u64);
                // The right half of a tile no wider than the left is empty.
                let body = match pass {
                    Some(1) => vec![Item::Guard {
                        skip_if: vec![Branch::new(Cond::Le, ncur, t.half_n())],
                        body,
                    }],
                    _ => body,
                };
                pieces.push((body, koff));
            }
            if let (Some(side), Some(hv)) = (pass, &halves) {
                // The tile's last stage drains this half.
                let mut body = Vec::new();
                half_columns(&mut body, *side, ncur, t.half_n(), [hcols, n1]);
                body.ins()
                    .s_alu(AluOp::Add, hgm, gc, *side as u64 * t.half_n() * so);
                body.op(vec![(Access::Read, hv.acc[*side])]).fix_l0c_gm(
                    dt_out,
                    hgm,
                    hv.acc[*side].start,
                    mcur,
                    hcols,
                    m16,
                    ge.c_row * so,
                    u64::from(ge.relu),
                );
                let mut skip = vec![Branch::new(Cond::Lt, ks, klast)];
                if *side == 1 {
                    skip.push(Branch::new(Cond::Le, ncur, t.half_n()));
                }
                pieces.push((
                    vec![Item::Guard {
                        skip_if: skip,
                        body,
                    }],
                    0,
                ));
            }
        }
        // Advance to the next stage.
        st.ins().s_alu(AluOp::Add, ks, ks, t.l1_k);
        st.ins().s_alu(AluOp::Add, ga, ga, t.l1_k * a_k);
        st.ins().s_alu(AluOp::Add, gb, gb, t.l1_k * b_k);
        pieces.push((st, 0));
        pieces
    };
    // One tile into accumulator `acc`: its setup, K loop and epilogue.
    let build = |acc: Region| -> Result<Vec<Item>, String> {
        // Joined stages: the signals for the phases whose rows this core
        // has all written before this unit, and the waits for the phases
        // this unit is the core's first reader of.
        let mut tile = match (sent, ring) {
            (Some(sent), None) => join::unit_signals(o.tr, sent, &writers, block_dim),
            (Some(_), Some(_)) | (None, _) => Vec::new(),
        };
        tile.extend(join::unit_waits(o.tr, &phase_starts, total, block_dim));
        // Split-K: unit `u` is part `u / tiles` of tile `u % tiles`.
        let at = match parts {
            Some([ut, p, ..]) => {
                tile.ins().s_alu(AluOp::Rem, ut, o.tr, total);
                tile.ins().s_alu(AluOp::Div, p, o.tr, total);
                ut
            }
            None => o.tr,
        };
        tile_setup(
            &ge,
            (t.base_m, t.base_n, t.group_m, t.fold),
            (&o, at),
            tail.as_ref(),
            &mut tile,
        );
        if let Some((sent, read, scratch)) = ring {
            join::ring_unit(
                &mut tile,
                (gc, o.bases[2]),
                (sent, read),
                scratch,
                (g.n, so),
                (t.epilogue, t.ring),
            );
        }
        if let Some([_, p, ke, kl]) = parts {
            // The part's partial tile, and its K from `p · kp` on.
            tile.ins().s_alu(AluOp::Mul, kl, p, g.partial_bytes());
            tile.ins().s_alu(AluOp::Add, gc, gc, kl);
            tile.ins().s_alu(AluOp::Mul, p, p, kp);
            tile.ins().s_alu(AluOp::Mul, kl, p, a_k);
            tile.ins().s_alu(AluOp::Add, ga, ga, kl);
            tile.ins().s_alu(AluOp::Mul, kl, p, b_k);
            tile.ins().s_alu(AluOp::Add, gb, gb, kl);
            remaining(&mut tile, ke, g.k, p, kp);
            tile.ins().s_alu(AluOp::Max, kl, ke, t.l1_k);
            tile.ins().s_alu(AluOp::Sub, kl, kl, t.l1_k);
        }
        tile.ins().s_alu(AluOp::Add, m1, mcur, 15u64);
        tile.ins().s_alu(AluOp::Shr, m1, m1, 4u64);
        tile.ins().s_alu(AluOp::Shl, m16, m1, 4u64);
        tile.ins().s_alu(AluOp::Add, n1, ncur, 15u64);
        tile.ins().s_alu(AluOp::Shr, n1, n1, 4u64);
        tile.ins().s_li(init, 1u64);
        tile.ins().s_li(ks, 0u64);
        if let Some(hv) = &halves {
            tile.ins().s_li(hv.init_r, 1u64);
        }
        if let Some((pa, _)) = panel_regs {
            tile.ins().s_mov(pa, ga);
        }
        let mut kbody = Vec::new();
        // An A panel's K loop is one iteration of every stage.
        let per_iteration = if t.a_panel {
            pstages
        } else {
            2 * t.a_stages.max(t.b_stages)
        };
        for h in 0..per_iteration {
            for (body, koff) in stage(h, acc) {
                let mut skip = Vec::new();
                if h > 0 {
                    skip.push(Branch::new(Cond::Ge, ks, kend));
                }
                if koff > 0 {
                    skip.push(Branch::new(Cond::Le, kc, koff));
                }
                if skip.is_empty() {
                    kbody.extend(body);
                } else {
                    kbody.push(Item::Guard {
                        skip_if: skip,
                        body,
                    });
                }
            }
        }
        tile.push(Item::Loop {
            exit_if: vec![Branch::new(Cond::Ge, ks, kend)],
            body: kbody,
            latch: Vec::new(),
        });
        if let Some((pa, prev)) = panel_regs {
            tile.ins().s_mov(prev, pa);
        }

        // Epilogue.
        let relu = u64::from(ge.relu);
        if coupled {
            let out_buf = layout
                .out
                .as_ref()
                .ok_or_else(|| "internal: a coupled cube epilogue without UB".to_string())?;
            let chunks = t.base_n.div_ceil(t.epi_cols);
            let [ecur, la, gaddr] = *tmp;
            for ch in 0..chunks {
                let ub = Region::copy(out_buf, (ch % 2) as u32);
                let mut body = Vec::new();
                body.ins().s_alu(AluOp::Sub, ecur, ncur, ch * t.epi_cols);
                body.ins().s_alu(AluOp::Min, ecur, ecur, t.epi_cols);
                body.ins()
                    .s_alu(AluOp::Mul, la, m16, ch * (t.epi_cols / 16) * 64);
                body.op(vec![(Access::Read, acc), (Access::Write, ub)])
                    .vec_l0c_ub(
                        dt_out,
                        ub.start,
                        Address::at(la, acc.start),
                        mcur,
                        ecur,
                        m16,
                        t.epi_cols * so,
                        relu,
                    );
                if let Some(c) = ge.scale {
                    // The product scaled in UB (f32, relu-free: the plan's
                    // rule), the whole chunk's rows.
                    let v = VBuf::of(out_buf, (ch % 2) as u32, DType::F32);
                    Seq {
                        items: &mut body,
                        n: t.base_m * t.epi_cols,
                    }
                    .sca(ScaOp::Muls, v, v, float_scalar(f64::from(c)));
                }
                body.ins()
                    .s_alu(AluOp::Add, gaddr, gc, ch * t.epi_cols * so);
                body.ins().s_alu(AluOp::Mul, ecur, ecur, so);
                body.op(vec![(Access::Read, ub)]).mte3_ub_gm(
                    gaddr,
                    ub.start,
                    mcur,
                    ecur,
                    t.epi_cols * so,
                    ge.c_row * so,
                );
                if ch == 0 {
                    tile.extend(body);
                } else {
                    tile.push(Item::Guard {
                        skip_if: vec![Branch::new(Cond::Le, ncur, ch * t.epi_cols)],
                        body,
                    });
                }
            }
        } else if ge.scale.is_some() {
            return Err("a matmul's scale needs a coupled machine (FixPipe does not scale)".into());
        } else if halves.is_none() {
            // With halves, the last stage drains them (above).
            tile.op(vec![(Access::Read, acc)]).fix_l0c_gm(
                dt_out,
                gc,
                acc.start,
                mcur,
                ncur,
                m16,
                ge.c_row * so,
                relu,
            );
        }
        Ok(tile)
    };
    // With two accumulators, tiles alternate between them, so a tile's
    // epilogue (reading one) overlaps the next tile's K loop (writing the
    // other): the loop body runs two tiles.
    let mut tile = build(Region::copy(&layout.acc, 0))?;
    if layout.acc.copies > 1 {
        tile.ins().s_alu(AluOp::Add, o.tr, o.tr, o.bd);
        tile.push(Item::Guard {
            skip_if: vec![Branch::new(Cond::Ge, o.tr, total)],
            body: build(Region::copy(&layout.acc, 1))?,
        });
    }
    // With an A panel (one accumulator), a core's units are a contiguous
    // run: `tr, tr + 1, …` below `end`.
    let run_end = if t.a_panel {
        let q = t.panel_units(&g, block_dim);
        Some(panel_run(ctx, &mut items, &o, q, total)?)
    } else {
        None
    };
    // Whole tiles and tail strips: odd cores take their strip second.
    match (run_end, t.stagger, t.staggered(&g, block_dim)) {
        (Some(end), ..) => count_up(&mut items, o.tr, end, tile),
        (None, true, Some(n)) => staggered_tile_loop(ctx, &mut items, &o, n, tile)?,
        (None, true, None) => {
            return Err(
                "stagger=1 needs every core to run the same number (3 or more) of whole tiles and one tail strip, with one accumulator, no split-K and no joins".into(),
            );
        }
        (None, false, _) => tile_loop(&mut items, &o, total * t.parts(), tile),
    }
    match (sent, ring) {
        (_, Some((sent, read, [a, _]))) => {
            join::ring_signals(&mut items, (sent, read), a, writers.len() as u64)
        }
        (Some(sent), None) => join::last_signals(&mut items, sent, writers.len() as u64),
        (None, None) => {}
    }
    if split {
        // Every cube core's partial tiles are in GM (a set in FIX waits for
        // its earlier writes): meet the others, then hand the reduction to
        // this core's vector cores.
        items.op(Vec::new()).xcore_set(Pipe::Fix, 0u64, XC_DONE);
        items.op(Vec::new()).xcore_wait(Pipe::Fix, XC_DONE);
        items.op(Vec::new()).xcore_set(Pipe::Fix, 2u64, XC_READY);
    }
    Ok(items)
}
