//! Scheduling matmul stages: the unit, the tiles of every level and the
//! block count, chosen by an analytical cost model of the machine.
//!
//! **Cube** (when the cube supports the input dtype). Candidates are L0C
//! tiles `base_m × base_n`, L0 steps `base_k` and L1 stages `l1_k` (a
//! multiple of `base_k`); a candidate must fit every buffer double-buffered
//! (L1 A/B stages, L0A/L0B steps; one L0C accumulator, or two; on coupled
//! machines two UB epilogue chunks). Its cost, per core (`block_dim =
//! min(tiles, cube cores)`, tiles dealt round-robin, so the busiest core
//! runs `⌈tiles / block_dim⌉` of them):
//! - per L0 step: the cube `head + ⌈m/16⌉⌈k/k0⌉⌈n/16⌉ × cycles_per_fractal`
//!   against the MTE1 loads `fixed + bytes / rate` (L0A and L0B); double
//!   buffering overlaps them, so a step costs the larger;
//! - per L1 stage: MTE2 `fixed + bytes / rate` for A and B (×1/0.7 for
//!   bursts off 512-byte alignment: every row where the row pitch is off
//!   it, and for a row-major B the share of tile columns that start off
//!   it; the fixed cost of L2 hits once other tiles
//!   have touched the lines), against the stage's steps; an operand loaded
//!   two stages deep (`a_stages`/`b_stages`) pays its fixed cost once per
//!   two stages; with single-stage loads and an odd number of stages, a
//!   tile ends on the L1 copy the next one starts on, and the loads pay
//!   half a stage's loads more a tile (not for a one-stage tile with one
//!   accumulator, whose epilogue wait hides it). Deep loads are offered when
//!   K is a multiple of `4 · l1_k`
//!   (whole iterations of the K loop they need) on machines with 8 event ids
//!   per pipe pair;
//! - per tile: the stages, plus the epilogue the cube waits for (FixPipe
//!   `fixed + bytes / rate`, or the L0C → UB move of the first chunk). With
//!   two accumulators (`accumulators=2`: tiles alternate between them) the
//!   cube does not wait; the epilogue's whole stream (FixPipe, or MTE3 per
//!   chunk) is a third side beside the cube and the loads. Two are offered
//!   where L0C holds two tiles, a core runs more than one, loads are one
//!   stage deep, and the model has the tile at most 0.9 of its time with
//!   one: a short K, as attention's Q·Kᵀ (K = 128), whose epilogue
//!   outweighs its mmads;
//! - per round (`block_dim` tiles at once), the lines it touches first —
//!   each A row panel and B column panel the first time a tile reads it —
//!   over the chip's HBM bandwidth: a tile loads A and B chunks in turn,
//!   so the new A lines must come in during A's share of the tile and the
//!   new B lines during B's; a round that needs longer waits. Row-major,
//!   the first round of a wide product reads 16 B panels at once (4096³
//!   f16 on 910b-like: 32 MiB, 44 k cycles against B's 25 k of a tile);
//!   each candidate takes the tile order ([`CubeSchedule::group_m`]:
//!   row-major or groups of 2–16 tile rows) that waits least, the smaller
//!   group among equals, and row-major unless another order saves 1 % of
//!   its cycles. The model follows the first 16 rounds and takes the later
//!   ones to be like them;
//! - per core, the pipeline's ends: the longer of its loads path (the last
//!   stage's steps and the last epilogue after the last load) and its cube
//!   path (the first stage's loads and first MTE1 step before the first
//!   mmad), both within 5 % of balance; then the last tile's MTE3 copy
//!   (coupled machines) and the wait for HBM while every core writes its
//!   last tile (`cube_core_parts`);
//! - the whole stage is at least the chip's GM traffic (each input once,
//!   the output once) over `gm.chip_bytes_per_cycle`.
//!
//! **Vector** (the cube lacks the dtype: bf16/f32 on `910-like`;
//! `matmul/vector.rs`), in two forms:
//! - outer products: output tiles `rows × cols` over `k_chunk`-deep
//!   chunks; per k, `rows` scalar loads and `vec.muls` of `cols / 64`
//!   repeats, one `vec.add` over the tile, two barriers; per chunk the MTE2
//!   loads and the B widening/gather;
//! - dot products, for narrow B (`n < 256`) and A row-major: tiles of
//!   `rows × n`, per chunk a `vec.mul` of `k_chunk / 64` repeats an output
//!   (A's row by B's column, gathered from B's chunk; one instruction per
//!   repeat position over a row's outputs when they outnumber the
//!   repeats) and one `vec.add` over the tile; per tile the folds across
//!   repeats and lanes. The outer form uses `n` of each repeat's 64 lanes
//!   for `n < 64`, and its per-k scalar loads bound it for small tiles (on
//!   910-like, f32 `[4096, 4096] @ [4096, n]`: n = 8, 5 438 361 → 314 482
//!   cycles; n = 64, 5 439 258 → 2 580 058; n = 96, 6 269 981 → 4 329 244).
//!
//! The fitting candidate of either form with the least estimate wins.
//!
//! **Last round.** When the cube tiles do not divide evenly over the cores
//! (`tiles = q·cores + r`, `0 < r`, `r·2 <= cores`), the last `r` tiles are
//! cut into `⌊cores / r⌋` column strips (`tail_parts`, see
//! [`CubeSchedule::tail_parts`]) so the busiest core runs `q` tiles and a strip
//! instead of `q + 1` tiles (4096³ f16 on 910b-like, single-stage loads:
//! 843 751 → 836 409 cycles). Where the cores (not HBM) bound the stage,
//! the estimate counts the busiest core's last round as its strip: the
//! longer, in cycles, of its share of a tile's mmads and of its loads (1024³
//! f16 on 910b-like: 128 × 256 tiles in strips, 30 830 cycles, over 96 ×
//! 256 tiles without, 32 419).
//!
//! **A panels.** Where A's whole `base_m × K` panel fits in L1 beside B's
//! stages, each single-accumulator candidate also comes as an A panel
//! ([`CubeSchedule::a_panel`]): each core a contiguous run of units, A
//! loaded only by the first tile of each tile row in the run. Its tile
//! costs the loads with A for that first tile and without for the rest,
//! and its first touches follow the runs. It is offered only where it is
//! cheaper than the candidate as it is (not where the chip's GM traffic
//! floors both): f16 1024³ on 910b-like takes 176 × 128 tiles in panels,
//! 29 798 cycles, over 128 × 256 tiles in strips, 30 830. Where a core's
//! run stays in its tile row, the panel also comes folded over the row
//! ([`CubeSchedule::fold`]), charged the change in its first drain's wait
//! on HBM (`order::fold_delta`), and the cheaper form is offered (1024³:
//! 29 126 cycles folded).

mod order;
mod split;
mod stagger;
mod vector;

pub use order::tile_orders;
use order::{Memo, Touches, first_touches, fold_delta, least_wait, several_rounds};
use rayon::prelude::*;
pub use split::place_partials;
use split::split_candidates;
pub use stagger::stagger_strips;
use vector::schedule_vector;
pub use vector::{apply_vector, vector_candidates, vector_cost, vector_layout};

use super::{Allocator, fits};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{DEEP_STAGES, Geometry, Tail, deep_loads_fit, nz_bytes};
use tessera_ir::plan::{CubeLayout, CubeSchedule, MatMul, MatMulSchedule, MemSpace, SplitBufs};
use tessera_sim::machine::CubeDtype;
use tessera_sim::{Dt, Machine, Organisation};

fn size(d: DType) -> f64 {
    d.size_bytes() as f64
}

/// The cube's figures for an input dtype, if the cube takes it. The machine
/// description names dtypes as the language does (`f16`, `bf16`, …).
fn cube_dtype(machine: &Machine, d: DType) -> Option<&CubeDtype> {
    Dt::from_tensor_name(d.name()).and_then(|d| machine.cube_dtype(d))
}

/// Chooses the unit, tiles, blocks and buffers of a matmul stage; returns
/// the block count and the estimate.
pub fn schedule(mm: &mut MatMul, machine: &Machine) -> Result<(u32, u64), String> {
    let g = Geometry::of(mm)?;
    if cube_dtype(machine, g.dtype).is_some() {
        schedule_cube(mm, &g, machine)
    } else {
        schedule_vector(mm, &g, machine)
    }
}

/// The chip-wide GM traffic bound: inputs read once, output written once.
fn chip_bound(g: &Geometry, machine: &Machine) -> f64 {
    let b = g.batches() as f64;
    let s = size(g.dtype);
    let bytes = b * ((g.m * g.k + g.k * g.n) as f64 * s + (g.m * g.n) as f64 * size(g.out));
    bytes / machine.gm.chip_bytes_per_cycle
}

/// A GM transfer's cycles: fixed cost plus streaming, slower for the share
/// of its bursts that start off alignment (`aligned` is the share that
/// does not).
fn gm_cycles(bytes: f64, rate: f64, fixed: f64, aligned: f64, machine: &Machine) -> f64 {
    let slow = 1.0 / machine.gm.unaligned_factor;
    fixed + bytes / rate * (aligned + (1.0 - aligned) * slow)
}

/// The on-chip buffers of a cube matmul.
pub fn cube_layout(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> CubeLayout {
    let mem = &machine.memory;
    let (s, c0) = (g.dtype.size_bytes() as u64, g.c0());
    let mut l = Allocator::default();
    let (ka, kb) = (t.l1_k * t.a_stages, t.l1_k * t.b_stages);
    // An A panel: one copy of all of K, a stage's part after another.
    let (ka, a_copies) = if t.a_panel {
        (t.l1_k * t.panel_stages(g.k), 1)
    } else {
        (ka, 2)
    };
    let a_l1 = if g.a_t {
        nz_bytes(ka, t.base_m, c0)
    } else {
        nz_bytes(t.base_m, ka, c0)
    };
    let b_l1 = if g.b_t {
        nz_bytes(t.base_n, kb, c0)
    } else {
        nz_bytes(kb, t.base_n, c0)
    };
    let k_step = t.base_k.div_ceil(c0) * c0;
    CubeLayout {
        a_l1: l.add(MemSpace::L1, a_l1, a_copies, mem.l1.align),
        b_l1: l.add(MemSpace::L1, b_l1, 2, mem.l1.align),
        a_l0: l.add(MemSpace::L0a, t.base_m * k_step * s, 2, mem.l0a.align),
        // With halves, an L0 step of B holds one half's columns.
        b_l0: l.add(
            MemSpace::L0b,
            if t.halves { t.half_n() } else { t.base_n } * k_step * s,
            2,
            mem.l0b.align,
        ),
        acc: l.add(
            MemSpace::L0c,
            t.base_m * t.base_n * 4,
            t.accumulators.max(1) as u32,
            mem.l0c.align,
        ),
        out: (machine.organisation == Organisation::Coupled).then(|| {
            let so = g.out.size_bytes() as u64;
            l.add(MemSpace::Ub, t.base_m * t.epi_cols * so, 2, mem.ub.align)
        }),
        reduce: (t.parts() > 1).then(|| {
            let e = t.red_rows * t.red_cols;
            let acc = g.acc().size_bytes() as u64;
            let align = mem.ub.align;
            SplitBufs {
                acc: l.add(MemSpace::Ub, e * acc, 1, align),
                part: l.add(MemSpace::Ub, e * acc, 2, align),
                out: (g.out != g.acc())
                    .then(|| l.add(MemSpace::Ub, e * g.out.size_bytes() as u64, 1, align)),
            }
        }),
    }
}

/// The estimated cycles of a cube candidate (launch excluded): the busiest
/// core's, and at least the chip's GM traffic.
pub fn cube_cost(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> f64 {
    if t.parts() > 1 {
        return split::cost(g, t, machine);
    }
    cube_core_cost(g, t, machine).max(chip_bound(g, machine))
}

/// The busiest core's estimated cycles for a cube candidate (launch
/// excluded), before the chip's GM floor.
fn cube_core_cost(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> f64 {
    let runs = t
        .a_panel
        .then(|| t.panel_units(g, u64::from(machine.cube_cores())));
    let mut memo = Memo::default();
    let touches = first_touches(g, (t.base_m, t.base_n), (t.group_m, 1, runs), machine);
    let p = cube_core_parts(g, t, machine);
    p.base() + p.hbm + touches.wait(p.tile) + fold_delta(&mut memo, g, t, machine)
}

/// The cycles FixPipe (split machines) or the L0C → UB move (coupled ones)
/// takes to empty a `bm × bn` accumulator: what the cube waits for at the
/// end of a tile with one accumulator.
fn cube_epilogue(bm: u64, bn: u64, g: &Geometry, machine: &Machine) -> f64 {
    let so = size(g.out);
    let dma = match machine.organisation {
        Organisation::Split => machine.dma.l0c_to_gm.as_ref(),
        Organisation::Coupled => machine.dma.l0c_to_ub.as_ref(),
    };
    dma.map_or(0.0, |d| {
        f64::from(d.fixed_cycles) + (bm * bn) as f64 * so / d.bytes_per_cycle
    })
}

/// Within this share of each other, the model does not tell whether a
/// tile's loads or its cube work bind it (see [`cube_core_parts`]).
const BALANCE: f64 = 0.05;

/// Two accumulators are offered only when the model has a tile take at
/// most this share of its time with one.
const ACC_GAIN: f64 = 0.9;

/// A cube candidate's estimate on its busiest core, in parts.
#[derive(Clone, Copy, Debug)]
struct CoreParts {
    /// Rounds of tiles.
    rounds: f64,
    /// The cycles of one tile.
    tile: f64,
    /// The pipeline's ends: how it starts and stops beyond its tiles, the
    /// last tile's output drain included.
    ends: f64,
    /// The wait at the end for HBM, every core writing its last tile at
    /// once (the chip's GM floor already counts it where that binds).
    hbm: f64,
    /// What orders candidates the chip's GM floor binds alike (see
    /// [`cube_core_parts`]).
    key: f64,
}

impl CoreParts {
    /// The busiest core's own cycles, before any wait for HBM.
    fn base(&self) -> f64 {
        self.rounds * self.tile + self.ends
    }
}

/// The cube's and MTE1's cycles for an L0 step of a `bm × bn` tile, `bk`
/// deep. With halves, a step is two `mmad`s, and MTE1 loads its A part
/// once for each and B's columns in two parts.
fn step_cycles(
    g: &Geometry,
    (bm, bn, bk): (u64, u64, u64),
    halves: bool,
    machine: &Machine,
) -> (f64, f64) {
    let s = size(g.dtype);
    let cpf = cube_dtype(machine, g.dtype).map_or(1.0, |c| f64::from(c.cycles_per_fractal));
    let mmads = if halves { 2.0 } else { 1.0 };
    let cube = mmads * f64::from(machine.cube.head_cycles)
        + (bm.div_ceil(16) * bk.div_ceil(g.c0()) * bn.div_ceil(16)) as f64 * cpf;
    let l0a = &machine.dma.l1_to_l0a;
    let l0b = &machine.dma.l1_to_l0b;
    let mte1 = mmads
        * (f64::from(l0a.fixed_cycles)
            + (bm * bk) as f64 * s / l0a.bytes_per_cycle
            + f64::from(l0b.fixed_cycles))
        + (bk * bn) as f64 * s / l0b.bytes_per_cycle;
    (cube, mte1)
}

/// Whether the scheduler offers a candidate's halves form
/// ([`CubeSchedule::halves`]): every core runs two whole tiles or more
/// (the halves' drains overlap the steps around the boundary between two),
/// a tile has more than one L1 stage, MTE1 keeps `BALANCE` ahead of the
/// cube with A loaded twice, and the drain is at least `HALVES_SHARE` of a
/// tile's cube work. On 910b-like these ran slower in halves: f16
/// attention's Q·Kᵀ (K = 128, one stage) by 1 % than in two 128 × 128
/// accumulators, the i8 GEMM 4096³ (256 × 128 tiles, MTE1 5 % behind the
/// cube) by 2.3 %, f16 4096 × 11008 × 4096 (a modelled drain 1.4 % of a
/// tile) by 0.1 %, and 1024³ with an f32 product (32 tiles on 24 cores) by
/// 1.1 % than in A panels; 6144³ (2.5 %) ran 1.1 % faster.
fn halves_pay(g: &Geometry, (bm, bn, bk): (u64, u64, u64), kl1: u64, machine: &Machine) -> bool {
    let (cube, mte1) = step_cycles(g, (bm, bn, bk), true, machine);
    let work = (g.k as f64 / bk as f64).max(1.0) * cube;
    let tiles = g.batches() * g.m.div_ceil(bm) * g.n.div_ceil(bn);
    tiles >= 2 * u64::from(machine.cube_cores())
        && g.k > kl1
        && mte1 <= (1.0 - BALANCE) * cube
        && cube_epilogue(bm, bn, g, machine) >= HALVES_SHARE * work
}

/// The least share of a tile's cube work its drain must be for halves to
/// pay (see [`halves_pay`]).
const HALVES_SHARE: f64 = 0.02;

/// A cube candidate's parts (see [`CoreParts`]).
///
/// Candidates the chip's GM floor binds alike are ordered by their tiles
/// and both ends of their pipeline (the first stage's loads, the last
/// stage's steps and epilogue), which the chip's steady stream does not
/// hide, with B's bursts judged as a whole (all aligned or none, by the
/// tile's width): what HBM shares out is lines, not bursts, and the last
/// tile's drain and its wait for HBM are the floor's own. Ranked by those
/// and by their bursts' alignment, 910-like decode GEMVs ran up to 2.1 %
/// slower (N = 11 008 in 29 tiles of 384 columns, half of them aligned,
/// rather than 32 of 352); ranked by the first stage's loads alone,
/// 910b-like attention's Q·Kᵀ (K = 128, joined to its softmax) took steps
/// of 16 where steps of 64 run its kernel in 5.8 % fewer cycles at
/// S = 4096.
fn cube_core_parts(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> CoreParts {
    let (mut parts, shared) = core_parts(g, t, machine, true);
    if shared {
        parts.key = core_parts(g, t, machine, false).0.key;
    }
    parts
}

/// [`cube_core_parts`], B's alignment judged burst by burst (`bursts`) or
/// as a whole; also whether judging it burst by burst made a difference.
fn core_parts(
    g: &Geometry,
    t: &CubeSchedule,
    machine: &Machine,
    bursts: bool,
) -> (CoreParts, bool) {
    let s = size(g.dtype);
    let so = size(g.out);
    let c0 = g.c0();
    let r16 = |x: u64| x.div_ceil(16) * 16;
    // Effective tile extents (a tile never exceeds the padded matrix).
    let bm = t.base_m.min(r16(g.m));
    let bn = t.base_n.min(r16(g.n));
    let kpad = g.k.div_ceil(c0) * c0;
    let kl1 = t.l1_k.min(kpad.div_ceil(t.base_k) * t.base_k);
    let bk = t.base_k.min(kpad);
    let tm = g.m.div_ceil(t.base_m);
    let tn = g.n.div_ceil(t.base_n);
    let tiles = g.batches() * tm * tn;
    let cores = u64::from(machine.cube_cores());
    let block_dim = tiles.min(cores).max(1);
    let rounds = tiles.div_ceil(block_dim) as f64;
    // L0 step.
    let (cube_step, mte1_step) = step_cycles(g, (bm, bn, bk), t.halves, machine);
    let step = cube_step.max(mte1_step);
    // L1 stage: A and B from GM; lines other tiles already touched hit L2.
    let p = &machine.dma.gm_to_l1;
    let hit = f64::from(machine.gm.l2_hit_fixed_cycles);
    let first = f64::from(p.fixed_cycles);
    let fixed_a = if tn > 1 {
        (first + hit * (tn - 1) as f64) / tn as f64
    } else {
        first
    };
    let fixed_b = if tm > 1 {
        (first + hit * (tm - 1) as f64) / tm as f64
    } else {
        first
    };
    let al = machine.gm.aligned_bytes;
    let (a_row_bytes, b_row_bytes) = (g.a_row * s as u64, g.b_row * s as u64);
    let a_aligned =
        (a_row_bytes.is_multiple_of(al) || bm.min(g.m) == 1) && (kl1 * s as u64).is_multiple_of(al);
    let a_aligned = if a_aligned { 1.0 } else { 0.0 };
    // B's bursts start where their tile's columns do: row-major, a tile
    // column whose offset is off alignment pays for it and the others do
    // not (the simulator judges each burst by its start). The share is
    // over all tile columns: dealt round-robin in row-major order over an
    // even number of cores, a core keeps its columns' parity, but grouped
    // orders and A panels' runs mix them, and the order is chosen after
    // this estimate (judged by the busiest core's row-major columns, the
    // scheduler left 256 × 128 tiles in groups of 4 rows, 160 672 cycles,
    // for 128 × 256 ones, 161 715, on a 4096 × 1024 × 2048 product).
    let whole = f64::from(u8::from(
        b_row_bytes.is_multiple_of(al) && (bn * s as u64).is_multiple_of(al),
    ));
    let b_aligned = if bursts && whole == 0.0 && !g.b_t && b_row_bytes.is_multiple_of(al) {
        let on = (0..tn).filter(|j| (j * bn * s as u64).is_multiple_of(al));
        on.count() as f64 / tn as f64
    } else {
        whole
    };
    // Per load: A `a_stages · l1_k` deep, B `b_stages · l1_k`; a tile
    // streams exactly K (the last loads and steps are partial).
    let (ka, kb) = (kl1 * t.a_stages, kl1 * t.b_stages);
    // A load of `k` K of an operand with `width` rows (A) or columns (B).
    let load = |width: u64, k: u64, fixed: f64, aligned: f64| {
        gm_cycles(
            (width * k) as f64 * s,
            p.bytes_per_cycle,
            fixed,
            aligned,
            machine,
        )
    };
    let a_load = |k: u64| load(bm, k, fixed_a, a_aligned);
    let b_load = |k: u64| load(bn, k, fixed_b, b_aligned);
    let compute = (g.k as f64 / bk as f64).max(1.0) * step;
    let mut loads = (a_load(g.k) - fixed_a)
        + g.k.div_ceil(ka) as f64 * fixed_a
        + (b_load(g.k) - fixed_b)
        + g.k.div_ceil(kb) as f64 * fixed_b;
    // What the cube waits for at the end of a tile (single accumulator).
    // With halves, FixPipe drains the left half while the cube runs the
    // last stage's right-half steps, and the right half while it runs the
    // next tile's first left-half steps (half a stage's steps each): the
    // cube waits only for what a drain takes beyond them.
    let epi = if t.halves {
        let hn = t.half_n().min(bn);
        let pass = (kl1.min(kpad) as f64 / bk as f64).max(1.0) * step / 2.0;
        let right = if bn > hn {
            (cube_epilogue(bm, bn - hn, g, machine) - pass).max(0.0)
        } else {
            0.0
        };
        (cube_epilogue(bm, hn, g, machine) - pass).max(0.0) + right
    } else {
        cube_epilogue(bm, bn, g, machine)
    };
    // With single-stage loads and an odd number of L1 stages, a tile ends on
    // the L1 copy the next one starts on, so the next tile's first loads
    // wait for its last stage instead of overlapping it. The model charges
    // half a stage's loads (4000³ on 910-like lost 4.6–5.5 k cycles a tile
    // at 9, 11 and 13 stages, whose loads take 6–8.6 k). A tile of one
    // stage with one accumulator waits for its epilogue there anyway
    // (Q·Kᵀ on 910-like gained nothing from two stages).
    let stages = g.k.div_ceil(kl1);
    let odd = (t.a_stages, t.b_stages) == (1, 1) && stages % 2 == 1;
    if odd && rounds > 1.0 && (stages > 1 || t.accumulators > 1) {
        loads += 0.5 * (a_load(kl1) + b_load(kl1));
    }
    // Per step, the events between MTE1 and the cube add latency.
    let sync = 16.0 * (g.k as f64 / bk as f64).max(1.0);
    // MTE3's copy to GM of a coupled machine's `bm × cols` output, in
    // `epi_cols` chunks over `chunk_cols` columns.
    let mte3 = |chunk_cols: u64, cols: u64| {
        let d = &machine.dma.ub_to_gm;
        let chunks = chunk_cols.div_ceil(t.epi_cols.max(16)) as f64;
        chunks * f64::from(d.fixed_cycles) + (bm * cols) as f64 * so / d.bytes_per_cycle
    };
    // With two accumulators the cube does not wait for the epilogue; the
    // epilogue's whole stream (FixPipe, or MTE3 chunk by chunk after the
    // L0C → UB moves) is a bound of its own instead.
    let (cube, out) = if t.accumulators > 1 {
        let stream = match machine.organisation {
            Organisation::Split => epi,
            Organisation::Coupled => mte3(t.base_n, bn).max(epi),
        };
        (compute + sync, stream)
    } else {
        (compute + sync + epi, 0.0)
    };
    // Overlap is imperfect: the less loaded sides still show through a
    // little.
    let side = |loads: f64| {
        let mut sides = [cube, loads, out];
        sides.sort_by(f64::total_cmp);
        sides[2] + 0.05 * sides[1]
    };
    let mut tile = side(loads);
    // An A panel: only a core's first tile of each tile row loads A; the
    // busiest core runs `q` units, its run crossing `panels` tile rows.
    let mut rounds = rounds;
    let mut all_loads = rounds * loads;
    if t.a_panel {
        let q = t.panel_units(g, cores);
        let panels = (0..cores)
            .filter(|&c| c * q < tiles)
            .map(|c| ((c + 1) * q).min(tiles).saturating_sub(1) / tn - c * q / tn + 1)
            .max()
            .unwrap_or(1)
            .min(q);
        let b_only = loads - (a_load(g.k) - fixed_a) - g.k.div_ceil(ka) as f64 * fixed_a;
        let reuse = side(b_only);
        tile = (panels as f64 * tile + (q - panels) as f64 * reuse) / q as f64;
        rounds = q as f64;
        all_loads = panels as f64 * loads + (q - panels) as f64 * b_only;
    }
    // With strips, the busiest core's last round is one strip: about the
    // longer of its share of a tile's mmads and of its loads (in cycles: a
    // cube-bound tile's strip takes its mmads' share, however much of A it
    // loads; as fractions, the f32 product of f16 2048³ took 64 × 512
    // tiles for 128 × 256 ones, 393 365 cycles against 378 839). Only where
    // the cores bound the stage: where HBM does, every core waits on it
    // anyway, and a core with a tile and a strip reads more than its share
    // (910-like decode GEMVs ran 2 % slower in 256-column tiles with
    // strips than in 352-column ones without).
    let start = a_load(ka.min(g.k)) + b_load(kb.min(g.k)) + mte1_step;
    let (rounds, last) = match strips(g, t, machine) {
        Some(tail) if !t.a_panel && rounds * tile + start > chip_bound(g, machine) => {
            let w = tail.width.min(bn);
            let mmads = w as f64 / bn as f64 * cube.max(out);
            let moved = (bm + w) as f64 / (bm + bn) as f64 * loads;
            let share = mmads.max(moved) / tile;
            let rounds = (tiles / cores) as f64 + share;
            all_loads = rounds * loads;
            (rounds, w)
        }
        Some(_) | None => (rounds, bn),
    };
    // The last tile's share of a whole one (a strip's columns).
    let part = last as f64 / bn as f64;
    // The ends of the pipeline: its loads path (every load, then the last
    // stage's steps and the last tile's epilogue) against its cube path
    // (the first stage's loads, then every tile's work), whichever is
    // longer given the balance of the tiles between them. The two sides'
    // estimates each err by a few percent, so within `BALANCE` of each
    // other either may bind, and the ends count both (f16 2048³ on
    // 910b-like, its A loaded two stages deep: 0.5 % cube-bound by the
    // model, MTE2-bound in the simulator). The loads path ends with a
    // whole stage's steps, even where the last is partial: counting only
    // its part, 910-like 4000³ (K = 4000) ranked first a schedule that
    // runs 612 517 cycles against 593 238.
    let last_epi = cube_epilogue(bm, last, g, machine);
    let end = (kl1.min(g.k) as f64 / bk as f64).max(1.0) * (step + 16.0) * part + last_epi;
    let cubes = rounds * cube.max(out);
    let gap = all_loads - cubes;
    let slack = BALANCE * all_loads.max(cubes);
    let ends = if gap > slack {
        end.max(start - (gap - slack))
    } else if gap < -slack {
        start.max(end + gap + slack)
    } else {
        start.max(end)
    };
    // Then the last tile's output leaves: FixPipe's write is its epilogue
    // (split machines); MTE3 copies it on coupled ones. Every core writes
    // its last tile at once, through the chip's bandwidth; that wait is
    // HBM's (910-like gemm-1024, one 128 × 256 tile a core: MTE3 took
    // 2 098 cycles for its own 1 224).
    let (write, drain) = match machine.organisation {
        Organisation::Split => (last_epi, 0.0),
        Organisation::Coupled => {
            let copy = mte3(last, last);
            (copy, copy)
        }
    };
    // Every core's last tile (or strip), as if all ended together: counting
    // only the last round's tiles where it is partial, 910-like 4000³
    // ranked first a schedule that runs 617 976 cycles against 593 238.
    let chip = (block_dim * bm * last) as f64 * so / machine.gm.chip_bytes_per_cycle;
    let hbm = (chip - write).max(0.0);
    let parts = CoreParts {
        rounds,
        tile,
        ends: ends + drain,
        hbm,
        key: rounds * tile + start + end,
    };
    (parts, b_aligned != whole)
}

/// Tile extents to try: multiples of 16 up to `limit` (at most 512).
fn candidates(limit: u64) -> Vec<u64> {
    (1..=32u64)
        .map(|i| 16 * i)
        .filter(|&x| x <= limit.max(16))
        .collect()
}

/// Event ids per pipe pair a machine needs before the scheduler loads an
/// operand two stages deep: A's and B's L1 copies then have separate life
/// cycles, four buffer copies each way between MTE2 and MTE1 plus the
/// combinations the sync pass merges; 4 ids (910-like) do not cover them.
/// Two accumulators need as many (their tile pairs run two K loops).
const DEEP_EVENT_IDS: u32 = 8;

fn schedule_cube(mm: &mut MatMul, g: &Geometry, machine: &Machine) -> Result<(u32, u64), String> {
    let kq = 16u64.max(g.c0());
    // The first of the cheapest (candidates come in a fixed order).
    let best = cube_candidates(g, machine).into_iter().fold(
        None::<(f64, CubeSchedule)>,
        |best, (cost, t)| match best {
            Some((c, _)) if c <= cost => best,
            _ => Some((cost, t)),
        },
    );
    let Some((cost, t)) = best else {
        let smallest = CubeSchedule {
            base_m: 16,
            base_n: 16,
            base_k: kq,
            l1_k: kq,
            a_stages: 1,
            b_stages: 1,
            epi_cols: 16,
            tail_parts: 1,
            ..CubeSchedule::default()
        };
        let layout = cube_layout(g, &smallest, machine);
        mm.schedule = MatMulSchedule::Cube(CubeSchedule { layout, ..smallest });
        return Err("even the smallest matmul tiles do not fit the cube's buffers".into());
    };
    Ok(apply_cube(mm, g, t, cost, machine))
}

/// Every cube schedule that fits the machine's buffers, with its estimate,
/// the scheduler's choice first: by estimate, then (where the chip's GM
/// traffic floors several estimates alike, as in memory-bound GEMVs) by the
/// busiest core's tiles and the two ends of its pipeline, without what the
/// floor already counts (`cube_core_parts`), then in enumeration
/// order (tile rows, tile
/// columns, L0 step, L1 stage, load depths). `tessera tune` simulates the
/// first few.
pub fn cube_candidates(g: &Geometry, machine: &Machine) -> Vec<(f64, CubeSchedule)> {
    let coupled = machine.organisation == Organisation::Coupled;
    let c0 = g.c0();
    let kq = 16u64.max(c0);
    let r16 = |x: u64| x.div_ceil(16) * 16;
    let kpad = g.k.div_ceil(kq) * kq;
    let ub = machine.memory.ub.bytes;
    let so = g.out.size_bytes() as u64;
    let deep_ok = machine.sync.event_ids >= DEEP_EVENT_IDS;
    // Each tile height on its own thread (an indexed collect keeps the
    // enumeration order, so the result does not depend on the threads).
    let per_height = candidates(r16(g.m)).into_par_iter().map(|bm| {
        let mut memo = Memo::default();
        let mut all = Vec::new();
        for &bn in &candidates(r16(g.n)) {
            if bm * bn * 4 > machine.memory.l0c.bytes {
                continue;
            }
            let orders: Vec<(u64, Touches)> = tile_orders(g, bm, bn, machine)
                .into_iter()
                .map(|gr| (gr, first_touches(g, (bm, bn), (gr, 1, None), machine)))
                .collect();
            // The widest epilogue chunk that fits two UB copies.
            let ec = if coupled {
                let mut ec = bn;
                while ec > 16 && 2 * bm * ec * so > ub {
                    ec -= 16;
                }
                ec
            } else {
                0
            };
            for bk in [kq, 32, 64, 128, 256] {
                if bk < kq || bk % kq != 0 || (bk > kpad && bk != kq) {
                    continue;
                }
                for steps in 1..=16u64 {
                    let kl1 = bk * steps;
                    if kl1 > kpad.div_ceil(bk) * bk && steps > 1 {
                        break;
                    }
                    // One operand may load two stages at once when K is
                    // whole iterations of the K loop that needs (and the
                    // machine has the event ids, see above).
                    let depths: &[(u64, u64)] = if deep_ok && deep_loads_fit(g.k, kl1) {
                        &[(1, 1), (DEEP_STAGES, 1), (1, DEEP_STAGES)]
                    } else {
                        &[(1, 1)]
                    };
                    // Two accumulators where L0C holds two tiles and a core
                    // runs more than one, with loads one stage deep (the
                    // backend's rule), and where the machine has the event
                    // ids: a tile pair's two K loops take events of their
                    // own between them, and with 4 ids per pipe pair the
                    // sync pass shared one between a load after the first
                    // loop and one inside the second, which MTE2 could set
                    // twice before MTE1 waited (E0705 on a 910-like with a
                    // slower L0C → UB path, 4096 × 32 × 256).
                    let accs: &[u64] = if deep_ok
                        && several_rounds(g, bm, bn, machine)
                        && 2 * bm * bn * 4 <= machine.memory.l0c.bytes
                    {
                        &[1, 2]
                    } else {
                        &[1]
                    };
                    // Halves where they pay, with the machine's event ids,
                    // as the halves' drains add events between the cube and
                    // FixPipe in every stage (and where they can run:
                    // `check_halves` below).
                    let halves: &[bool] = if deep_ok
                        && halves_pay(g, (bm.min(r16(g.m)), bn.min(r16(g.n)), bk), kl1, machine)
                    {
                        &[false, true]
                    } else {
                        &[false]
                    };
                    for ((&(sa, sb), &accumulators), &halves) in depths
                        .iter()
                        .flat_map(|d| accs.iter().map(move |a| (d, a)))
                        .filter(|&(&d, &a)| a == 1 || d == (1, 1))
                        .flat_map(|da| halves.iter().map(move |h| (da, h)))
                        .filter(|&((_, &a), &h)| a == 1 || !h)
                    {
                        let mut t = CubeSchedule {
                            base_m: bm,
                            base_n: bn,
                            base_k: bk,
                            l1_k: kl1,
                            a_stages: sa,
                            b_stages: sb,
                            epi_cols: ec,
                            tail_parts: 1,
                            accumulators,
                            halves,
                            ..CubeSchedule::default()
                        };
                        if t.check_halves(g, !coupled).is_err() {
                            continue;
                        }
                        // A second accumulator halves what L0C could hold
                        // for one tile: worth it only where the epilogue is
                        // a large share of the tile (a short K).
                        let parts = cube_core_parts(g, &t, machine);
                        let overlap_pays = accumulators == 1 || {
                            let one = CubeSchedule {
                                accumulators: 1,
                                ..t.clone()
                            };
                            parts.tile < ACC_GAIN * cube_core_parts(g, &one, machine).tile
                        };
                        if overlap_pays && fits(&cube_layout(g, &t, machine).named(), machine) {
                            let base = parts.base();
                            let (group, wait) = least_wait(&orders, parts.tile, base);
                            t.group_m = group;
                            let cost = (base + parts.hbm + wait).max(chip_bound(g, machine));
                            if accumulators == 1 && (sa, sb) == (1, 1) && !halves {
                                all.extend(split_candidates(g, &t, machine));
                                all.extend(panel_candidate(&mut memo, g, &t, cost, machine));
                            }
                            all.push((cost, parts.key, t));
                        }
                    }
                }
            }
        }
        all
    });
    let mut all: Vec<(f64, f64, CubeSchedule)> = per_height
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect();
    // Stable: equal keys keep the enumeration order.
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    all.into_iter().map(|(cost, _, t)| (cost, t)).collect()
}

/// The A panel form of a candidate (`a_panel=1`, see
/// [`CubeSchedule::a_panel`]), when it applies and fits: A row-major, a
/// core running more than one tile, and a K loop of at most as many
/// stages as the machine has event ids between MTE2 and MTE1 (each stage's
/// part of the panel has its own events; 910-like, with 4, could not place
/// 8). Only where cheaper than the candidate as it is (`plain`): where the
/// chip's GM traffic bounds both, the cores' order matters more than their
/// loads (910-like attention's Q·Kᵀ in A panels, each core's run of tiles
/// contiguous, ran 1 % slower).
fn panel_candidate(
    memo: &mut Memo,
    g: &Geometry,
    t: &CubeSchedule,
    plain: f64,
    machine: &Machine,
) -> Option<(f64, f64, CubeSchedule)> {
    let cores = u64::from(machine.cube_cores());
    let tiles = g.batches() * g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    let v = CubeSchedule {
        a_panel: true,
        group_m: 1,
        ..t.clone()
    };
    let ok = tiles > cores
        && v.panel_stages(g.k) <= u64::from(machine.sync.event_ids)
        && v.check_panel(g).is_ok()
        && fits(&cube_layout(g, &v, machine).named(), machine);
    if !ok {
        return None;
    }
    let parts = cube_core_parts(g, &v, machine);
    let base = parts.base();
    let q = v.panel_units(g, cores);
    // Folded (runs of `q` spread over the tile row) where that applies and
    // a tile's output rows are at most half a GM line, so that tiles side
    // by side share lines; taken only when the model has it cheaper. Wider
    // tiles own most of their lines, and the model, which does not follow
    // the columns' alignment, has no gain to weigh (f16 1024³ at -O0, its
    // f32 product in 128 × 176 tiles of 704-byte rows: folded runs ran
    // 48 588 cycles against 46 981).
    let half_line = (t.base_n.min(g.n.div_ceil(16) * 16) * g.out.size_bytes() as u64) * 2
        <= machine.gm.line_bytes;
    let folded = half_line.then(|| CubeSchedule {
        fold: q,
        ..v.clone()
    });
    let mut best: Option<(f64, CubeSchedule)> = None;
    for f in std::iter::once(v).chain(folded) {
        if f.check_fold(g, cores).is_err() {
            continue;
        }
        let wait = memo
            .touches(g, (f.base_m, f.base_n), (1, f.fold, Some(q)), machine)
            .wait(parts.tile);
        let wait = wait + fold_delta(memo, g, &f, machine);
        let cost = (base + parts.hbm + wait).max(chip_bound(g, machine));
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, f));
        }
    }
    let (cost, f) = best?;
    (cost < plain).then_some((cost, parts.key, f))
}

/// The strips of the last round a candidate gets (see
/// [`CubeSchedule::tail_parts`]): its `r` tiles become `r · parts` column
/// strips, `parts = ⌊cores / r⌋` (at most one per 16 columns), so every
/// core has work and the busiest runs one strip, not one tile.
fn strips(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> Option<Tail> {
    let tiles = g.batches() * g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    let cores = u64::from(machine.cube_cores());
    if tiles <= cores || tiles.is_multiple_of(cores) || t.parts() > 1 {
        return None;
    }
    let cut = CubeSchedule {
        tail_parts: (cores / (tiles % cores)).min(t.base_n / 16),
        ..t.clone()
    };
    Tail::of(g, &cut, cores)
}

/// Sets a cube schedule (a candidate's tiles, steps and depths) on a matmul
/// stage: the last round's balance, the tile count and the layout; returns
/// the block count and `cost` as the estimate.
pub fn apply_cube(
    mm: &mut MatMul,
    g: &Geometry,
    mut t: CubeSchedule,
    cost: f64,
    machine: &Machine,
) -> (u32, u64) {
    t.tail_parts = 1;
    t.group_m = t.group_m.max(1);
    t.accumulators = t.accumulators.max(1);
    t.split_k = t.split_k.max(1);
    let tiles = g.batches() * g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    let cores = u64::from(machine.cube_cores());
    let block_dim = (tiles * t.parts()).min(cores).max(1);
    if let Some(tail) = strips(g, &t, machine).filter(|_| !t.a_panel) {
        t.tail_parts = tail.parts;
    }
    t.tiles = tiles;
    t.layout = cube_layout(g, &t, machine);
    mm.schedule = MatMulSchedule::Cube(t);
    (block_dim as u32, cost as u64)
}

#[cfg(test)]
mod tests;
