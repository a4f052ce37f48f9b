//! The matmul stage: `out = epilogue(a @ b)` with numpy batch broadcasting.
//!
//! **Cube path** (`Unit::Cube`). The output is cut into `base_m × base_n`
//! tiles (one L0C accumulator each; with two accumulators the tile loop's
//! body runs two tiles, one in each, so an epilogue overlaps the next K
//! loop), handed out round-robin to the cube cores over all batches, in the
//! schedule's tile order (`group_m`). Per tile, K is streamed in L1 stages
//! of `l1_k` (A and B tiles moved GM → L1 by `mte2.nd2nz`, which zero-pads
//! tails to fractals), two stages per loop iteration on two L1 copies
//! (ping-pong; the second stage is guarded so a tail may skip it; with
//! stages of many steps, each stage first loads the next stage's chunks, see
//! `cube.rs`). Each stage is consumed in
//! `base_k` steps: MTE1 loads into L0A/L0B (two copies each, alternating
//! step by step; steps past the K tail are guarded) and one `cube.mmad`
//! accumulating into L0C. Layouts (docs/assembly.md):
//! - A row-major: L1 holds A (NZ, `base_m` rows) → `mte1.load.l0a`;
//!   A transposed (memory holds Aᵀ): L1 holds Aᵀ (NZ, `l1_k` rows) →
//!   `mte1.load.l0a.t`;
//! - B row-major: L1 holds B (NZ, `l1_k` rows) → `mte1.load.l0b.t`;
//!   B transposed: L1 holds Bᵀ (NZ, `base_n` rows) → `mte1.load.l0b`.
//!
//! The epilogue applies relu and the output cast on the way out of L0C:
//! FixPipe straight to GM on split machines; on coupled ones the vector
//! pipe's L0C → UB move in `epi_cols`-wide chunks (two UB copies) and MTE3
//! to GM. Every count that depends on a tail (`m`, `n`, `k` of a step,
//! fractal counts) is a runtime register, so any shape works.
//!
//! **Vector path** (`Unit::Vector`, for dtypes the cube lacks). Output tiles
//! of `rows × cols` accumulate in f32 (i32 for i8) in UB: for each `k` of a
//! chunk, every row's `a[i, k]` is read by the scalar unit and multiplies row
//! `k` of B (`vec.muls`) into a product tile, which one `vec.add` then adds
//! to the accumulator. bf16/i8 B chunks are widened first; a transposed B is
//! gathered into row-major order through an index table built once.
//!
//! Both paths open alike (block index, GM bases, tile registers: `open`)
//! and run their tiles round-robin over the blocks (`tile_loop`), with the
//! same per-tile address setup (`tile_setup`); `cube.rs` and `vector.rs`
//! are the paths. Synchronisation is derived by `sync.rs` from the accesses.

mod cube;
mod dot;
pub mod split;
mod vector;

use super::Ctx;
use super::inst::InstBuilder;
use super::prog::{Branch, Build, Item, count_up};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{Geometry, Tail};
use tessera_ir::plan::{MatMul, MatMulSchedule, Source};
use tessera_sim::isa::{AluOp, Cond, Reg};

fn size(d: DType) -> u64 {
    d.size_bytes() as u64
}

/// Generates a matmul stage.
pub fn generate(ctx: &mut Ctx<'_>, mm: &MatMul) -> Result<Vec<Item>, String> {
    match &mm.schedule {
        MatMulSchedule::Cube(t) => cube::generate(ctx, mm, t),
        MatMulSchedule::Vector(t) if t.dot => dot::generate(ctx, mm, t),
        MatMulSchedule::Vector(t) => vector::generate(ctx, mm, t),
    }
}

/// Registers every tile needs: its coordinates and GM addresses.
struct TileRegs {
    /// Rows of this tile.
    mcur: Reg,
    /// Columns of this tile.
    ncur: Reg,
    /// GM address of A's tile at K offset 0.
    ga: Reg,
    /// GM address of B's tile at K offset 0.
    gb: Reg,
    /// GM address of the output tile.
    gc: Reg,
}

/// What both paths open with.
struct Open {
    /// The block count (the tile loop's stride).
    bd: Reg,
    /// The tile index.
    tr: Reg,
    /// The GM addresses of A, B and the output's first elements.
    bases: [Reg; 3],
    /// The tile's registers.
    regs: TileRegs,
    /// Scratch registers of the tile setup (free after it).
    tmp: [Reg; 3],
    /// Batch digits (none without batches).
    digits: Vec<Reg>,
}

/// The common opening: block index and count, the GM bases of the
/// operands and the output, the tile index (starting at this block's
/// index) and the per-tile registers.
fn open(
    ctx: &mut Ctx<'_>,
    mm: &MatMul,
    g: &Geometry,
    items: &mut Vec<Item>,
) -> Result<Open, String> {
    let (bi, bd) = ctx.block(items)?;
    let mut bases = [Reg(0); 3];
    for (b, v) in bases.iter_mut().zip([&mm.a.view, &mm.b.view, &mm.out]) {
        if let Source::Constant(_) = v.source {
            return Err("internal: a matmul operand is a constant".into());
        }
        *b = ctx.gm_view(items, v)?;
    }
    let tr = ctx.regs.get()?;
    items.ins().s_mov(tr, bi);
    let regs = TileRegs {
        mcur: ctx.regs.get()?,
        ncur: ctx.regs.get()?,
        ga: ctx.regs.get()?,
        gb: ctx.regs.get()?,
        gc: ctx.regs.get()?,
    };
    let tmp = [ctx.regs.get()?, ctx.regs.get()?, ctx.regs.get()?];
    let digits: Vec<Reg> = if g.batches() > 1 {
        (0..g.batch.len())
            .map(|_| ctx.regs.get())
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(Open {
        bd,
        tr,
        bases,
        regs,
        tmp,
        digits,
    })
}

/// The tiles `tr, tr + bd, …` below `total`, each running `tile`.
fn tile_loop(items: &mut Vec<Item>, o: &Open, total: u64, tile: Vec<Item>) {
    let mut latch = Vec::new();
    latch.ins().s_alu(AluOp::Add, o.tr, o.tr, o.bd);
    items.push(Item::Loop {
        exit_if: vec![Branch::new(Cond::Ge, o.tr, total)],
        body: tile,
        latch,
    });
}

/// The tile loop of a core running `n ≥ 3` units (`tr, tr + bd, …`, the
/// last a tail strip), odd cores taking their strip second: units `0, n −
/// 1, 1, 2, …, n − 2`. Every core would otherwise finish each whole tile at
/// the same moment, and their output writes, all new lines, share HBM: 24
/// FixPipes draining 64 KiB at once take 2 048 cycles at 768 bytes a cycle
/// against 1 224 at FixPipe's rate, while MTE2, its L1 copies full, waits.
/// The strip puts the odd cores a strip behind, so half the cores drain at
/// a time. Second rather than first: at the start every core reads new
/// lines, and a strip there took twice as long as at the end, where the
/// even cores run theirs (f16 2048³ on 910b-like, 123 445 cycles in order;
/// the strip first 124 486, second 121 343, third 122 420).
fn staggered_tile_loop(
    ctx: &mut Ctx<'_>,
    items: &mut Vec<Item>,
    o: &Open,
    n: u64,
    tile: Vec<Item>,
) -> Result<(), String> {
    let [first, odd, k, t] = [
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
        ctx.regs.get()?,
    ];
    items.ins().s_mov(first, o.tr);
    items.ins().s_alu(AluOp::And, odd, first, 1u64);
    items.ins().s_li(k, 0u64);
    let mut body = Vec::new();
    // t = min(k, 1) · (((k + 2n − 4) mod (n − 1)) + 1): 0, n − 1, 1, 2, …
    body.ins().s_alu(AluOp::Add, t, k, 2 * n - 4);
    body.ins().s_alu(AluOp::Rem, t, t, n - 1);
    body.ins().s_alu(AluOp::Add, t, t, 1u64);
    body.ins().s_alu(AluOp::Min, o.tr, k, 1u64);
    body.ins().s_alu(AluOp::Mul, t, t, o.tr);
    // tr = k + odd · (t − k), as the unit's index, then its tile.
    body.ins().s_alu(AluOp::Sub, t, t, k);
    body.ins().s_alu(AluOp::Mul, t, t, odd);
    body.ins().s_alu(AluOp::Add, o.tr, t, k);
    body.ins().s_alu(AluOp::Mul, o.tr, o.tr, o.bd);
    body.ins().s_alu(AluOp::Add, o.tr, o.tr, first);
    body.extend(tile);
    count_up(items, k, n, body);
    Ok(())
}

/// The run of units of a core with an A panel: a contiguous `q` of them
/// (`bi·q …`, below `total`), so that its tiles mostly share A's rows
/// (`CubeSchedule::a_panel`). Sets the tile index to the run's first
/// unit and returns the register holding its end.
fn panel_run(
    ctx: &mut Ctx<'_>,
    items: &mut Vec<Item>,
    o: &Open,
    q: u64,
    total: u64,
) -> Result<Reg, String> {
    let end = ctx.regs.get()?;
    items.ins().s_alu(AluOp::Mul, o.tr, o.tr, q);
    items.ins().s_alu(AluOp::Add, end, o.tr, q);
    items.ins().s_alu(AluOp::Min, end, end, total);
    Ok(end)
}

/// Scalar code: `dst = min(total - start, tile)`.
fn remaining(items: &mut Vec<Item>, dst: Reg, total: u64, start: Reg, tile: u64) {
    items.ins().s_li(dst, total);
    items.ins().s_alu(AluOp::Sub, dst, dst, start);
    items.ins().s_alu(AluOp::Min, dst, dst, tile);
}

fn log2(x: u64) -> u32 {
    x.trailing_zeros()
}

/// Scalar code: the tile row `m0` and column `n0` of the tile whose index
/// within its batch is in `n0`, in groups of `group` tile rows walked
/// column by column (`CubeSchedule::tile_at`); `mcur` and `ncur` are
/// scratch (the caller sets them after).
fn tile_coords(
    items: &mut Vec<Item>,
    (tm, tn, group, fold): (u64, u64, u64, u64),
    [m0, n0]: [Reg; 2],
    r: &TileRegs,
) {
    if group <= 1 {
        items.ins().s_alu(AluOp::Div, m0, n0, tn);
        items.ins().s_alu(AluOp::Rem, n0, n0, tn);
        if fold > 1 && tn.is_multiple_of(fold) {
            fold_column(items, (tn, fold), n0, r);
        }
        return;
    }
    let (rows, within) = (r.ncur, r.mcur);
    // The group's first row, and its rows (fewer in the last group).
    items.ins().s_alu(AluOp::Div, m0, n0, group * tn);
    items.ins().s_alu(AluOp::Mul, m0, m0, group);
    items.ins().s_li(rows, tm);
    items.ins().s_alu(AluOp::Sub, rows, rows, m0);
    items.ins().s_alu(AluOp::Min, rows, rows, group);
    // The index within the group: its row is the fast digit.
    items.ins().s_alu(AluOp::Rem, n0, n0, group * tn);
    items.ins().s_alu(AluOp::Rem, within, n0, rows);
    items.ins().s_alu(AluOp::Add, m0, m0, within);
    items.ins().s_alu(AluOp::Div, n0, n0, rows);
}

/// Position `n0` of a tile row in the order of `CubeSchedule::fold`: with
/// `s = tn / fold`, position `j·fold + i` becomes column `i·s + j` (`i`
/// even) or `(i + 1)·s − 1 − j` (`i` odd), that is
/// `i·s + j + (i mod 2)·(s − 1 − 2j)`. The extents and the output address
/// are computed after this, so their registers serve as scratch.
fn fold_column(items: &mut Vec<Item>, (tn, fold): (u64, u64), n0: Reg, r: &TileRegs) {
    let s = tn / fold;
    let (i, odd, back) = (r.ncur, r.mcur, r.gc);
    items.ins().s_alu(AluOp::Rem, i, n0, fold);
    items.ins().s_alu(AluOp::Div, n0, n0, fold);
    // back = (s − 1 − 2j)·(i mod 2)
    items.ins().s_alu(AluOp::Rem, odd, i, 2);
    items.ins().s_alu(AluOp::Mul, back, n0, 2);
    items.ins().s_li(r.ga, s - 1);
    items.ins().s_alu(AluOp::Sub, back, r.ga, back);
    items.ins().s_alu(AluOp::Mul, back, back, odd);
    // column = j + i·s + back
    items.ins().s_alu(AluOp::Mul, i, i, s);
    items.ins().s_alu(AluOp::Add, n0, n0, i);
    items.ins().s_alu(AluOp::Add, n0, n0, back);
}

/// Per-tile setup shared by both paths: batch digits and the GM addresses
/// of tile `t`'s A rows, B columns and output, plus its extents; tiles in
/// the order of `group` (see [`tile_coords`]).
fn tile_setup(
    g: &Geometry,
    (tile_m, tile_n, group, fold): (u64, u64, u64, u64),
    (o, t): (&Open, Reg),
    tail: Option<&Tail>,
    items: &mut Vec<Item>,
) {
    let (s, so) = (size(g.dtype), size(g.out));
    let tm = g.m.div_ceil(tile_m);
    let tn = g.n.div_ceil(tile_n);
    let per_batch = tm * tn;
    let r = &o.regs;
    let [q, m0, n0] = o.tmp;
    let mut whole = Vec::new();
    whole.ins().s_alu(AluOp::Div, q, t, per_batch);
    whole.ins().s_alu(AluOp::Rem, n0, t, per_batch);
    tile_coords(&mut whole, (tm, tn, group, fold), [m0, n0], r);
    whole.ins().s_alu(AluOp::Mul, m0, m0, tile_m);
    whole.ins().s_alu(AluOp::Mul, n0, n0, tile_n);
    remaining(&mut whole, r.mcur, g.m, m0, tile_m);
    remaining(&mut whole, r.ncur, g.n, n0, tile_n);
    match tail {
        None => items.extend(whole),
        Some(tl) => {
            // Index `t >= first` is strip `p` of tile `first + q`
            // (`t - first = q·parts + p`); a single batch, so `q` is free.
            items.push(Item::Guard {
                skip_if: vec![Branch::new(Cond::Ge, t, tl.first)],
                body: whole,
            });
            let mut strip = Vec::new();
            strip.ins().s_alu(AluOp::Sub, q, t, tl.first);
            strip.ins().s_alu(AluOp::Div, n0, q, tl.parts);
            strip.ins().s_alu(AluOp::Add, n0, n0, tl.first);
            tile_coords(&mut strip, (tm, tn, group, fold), [m0, n0], r);
            strip.ins().s_alu(AluOp::Mul, m0, m0, tile_m);
            strip.ins().s_alu(AluOp::Mul, n0, n0, tile_n);
            remaining(&mut strip, r.mcur, g.m, m0, tile_m);
            // ncur = min(tile end, n) - strip start, at most the width.
            strip.ins().s_alu(AluOp::Add, r.ncur, n0, tile_n);
            strip.ins().s_alu(AluOp::Min, r.ncur, r.ncur, g.n);
            strip.ins().s_alu(AluOp::Rem, q, q, tl.parts);
            strip.ins().s_alu(AluOp::Mul, q, q, tl.width);
            strip.ins().s_alu(AluOp::Add, n0, n0, q);
            strip.ins().s_alu(AluOp::Sub, r.ncur, r.ncur, n0);
            strip.ins().s_alu(AluOp::Min, r.ncur, r.ncur, tl.width);
            items.push(Item::Guard {
                skip_if: vec![Branch::new(Cond::Lt, t, tl.first)],
                body: strip,
            });
        }
    }
    let [ra, rb, rc] = o.bases;
    // A: rows m0.. (row-major: m strided by a_row; transposed: m contiguous).
    let a_m = if g.a_t { 1 } else { g.a_row };
    items.ins().s_alu(AluOp::Mul, r.ga, m0, a_m * s);
    items.ins().s_alu(AluOp::Add, r.ga, r.ga, ra);
    // B: columns n0.. (row-major: contiguous; transposed: strided by b_row).
    let b_n = if g.b_t { g.b_row } else { 1 };
    items.ins().s_alu(AluOp::Mul, r.gb, n0, b_n * s);
    items.ins().s_alu(AluOp::Add, r.gb, r.gb, rb);
    // Output.
    items.ins().s_alu(AluOp::Mul, r.gc, m0, g.c_row * so);
    items.ins().s_alu(AluOp::Add, r.gc, r.gc, rc);
    items.ins().s_alu(AluOp::Mul, n0, n0, so);
    items.ins().s_alu(AluOp::Add, r.gc, r.gc, n0);
    // Batch digits.
    if g.batches() > 1 {
        for (d, &ext) in g.batch.iter().enumerate().rev() {
            items.ins().s_alu(AluOp::Rem, o.digits[d], q, ext);
            items.ins().s_alu(AluOp::Div, q, q, ext);
        }
        for (d, &dg) in o.digits.iter().enumerate() {
            for (reg, st, e) in [
                (r.ga, g.a_bs[d], s),
                (r.gb, g.b_bs[d], s),
                (r.gc, g.c_bs[d], so),
            ] {
                if st != 0 {
                    items.ins().s_alu(AluOp::Mul, q, dg, st * e);
                    items.ins().s_alu(AluOp::Add, reg, reg, q);
                }
            }
        }
    }
}
