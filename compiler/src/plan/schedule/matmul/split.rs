//! Split-K candidates: when a stage's output has too few tiles for the
//! cube cores (at most half as many), each tile's K is cut into `S` parts
//! and the cores run `tiles · S` units at once; the vector cores add the
//! parts (`CubeSchedule::split_k`, `backend/src/npu/matmul/split.rs`).
//! Only split machines can: the cube cores meet at a cross-core barrier
//! inside the launch, and a second launch for the sum would cost more than
//! the split saves.
//!
//! The model: the cube phase is the unsplit model on the *part geometry*
//! (the parts as `S` batches of K `part_k`, each with its own A and B
//! panels, writing the accumulator dtype), at least the chip's traffic of
//! its inputs and of the partials written; then two cross-core latencies;
//! then the reduction, the busiest vector core's chunks one after another
//! (each: its `S` loads, which hit L2, `S − 1` adds, the cast and the
//! store), at least the output's traffic.

use super::{chip_bound, cube_core_cost, cube_layout, fits, size};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{CubeSchedule, MatMulSchedule, Plan, StageKind};
use tessera_sim::Machine;

/// Whether split-K may be offered for a stage of geometry `g` whose
/// `bm × bn` tiles number `tiles`: a split machine, one batch, float
/// accumulators, and at most half as many tiles as cube cores.
pub(super) fn offered(g: &Geometry, tiles: u64, machine: &Machine) -> bool {
    machine.sync.cross_core_flags > 1
        && g.batches() == 1
        && g.acc() == tessera_ir::DType::F32
        && 2 * tiles <= u64::from(machine.cube_cores())
}

/// The part counts worth trying for `tiles` tiles, with their part K:
/// every `S ≥ 2` whose units fit one round of the cube cores and whose
/// parts all hold K.
pub(super) fn part_counts(g: &Geometry, tiles: u64, machine: &Machine) -> Vec<(u64, u64)> {
    let cores = u64::from(machine.cube_cores());
    (2..=cores / tiles.max(1))
        .filter_map(|s| part_k(g, s, machine).map(|kp| (s, kp)))
        .collect()
}

/// K of each of `s` parts: `⌈k / s⌉` rounded up so that a part's first
/// element of a row-major A starts a GM burst (`gm.aligned_bytes`; off it,
/// every load of A is slower), or else to 16; `None` when a part would
/// hold no K.
fn part_k(g: &Geometry, s: u64, machine: &Machine) -> Option<u64> {
    let even = g.k.div_ceil(s);
    let aligned = (machine.gm.aligned_bytes / g.dtype.size_bytes() as u64).max(16);
    [aligned, 16]
        .into_iter()
        .map(|q| even.div_ceil(q) * q)
        .find(|&kp| (s - 1) * kp < g.k)
}

/// UB bytes a reduction chunk needs per element: the running sum, two
/// copies of the next part, and the cast result.
fn chunk_bytes_per_element(g: &Geometry) -> u64 {
    let acc = size(g.acc()) as u64;
    let cast = if g.out == g.acc() {
        0
    } else {
        g.out.size_bytes() as u64
    };
    3 * acc + cast
}

/// The reduction chunks (`red_rows`, `red_cols`) for a stage of `block_dim`
/// blocks: rows as wide as the output (up to what UB holds), cut so that
/// every vector core gets a chunk where there are enough rows.
pub(super) fn chunks(g: &Geometry, block_dim: u64, machine: &Machine) -> (u64, u64) {
    let vcores = block_dim * u64::from(machine.aiv_per_core().max(1));
    let most = machine.memory.ub.bytes / chunk_bytes_per_element(g);
    let cw = (g.n.div_ceil(16) * 16).min(most / 16 * 16).max(16);
    let across = g.n.div_ceil(cw);
    let down = vcores.div_ceil(across).max(1);
    let rr = g.m.div_ceil(down).min(most / cw).max(1);
    (rr, cw)
}

/// The parts as batches: the geometry of the cube phase.
pub(super) fn part_geometry(g: &Geometry, t: &CubeSchedule) -> Geometry {
    let kp = t.part_k;
    let a_k = if g.a_t { g.a_row } else { 1 };
    let b_k = if g.b_t { 1 } else { g.b_row };
    Geometry {
        batch: vec![t.parts()],
        a_bs: vec![kp * a_k],
        b_bs: vec![kp * b_k],
        c_bs: vec![g.m * g.n],
        k: kp,
        out: g.acc(),
        c_row: g.n,
        relu: false,
        ..g.clone()
    }
}

/// The estimated cycles of a split-K candidate (launch excluded).
pub(super) fn cost(g: &Geometry, t: &CubeSchedule, machine: &Machine) -> f64 {
    let gp = part_geometry(g, t);
    let whole = CubeSchedule {
        split_k: 1,
        ..t.clone()
    };
    let cube = cube_core_cost(&gp, &whole, machine).max(chip_bound(&gp, machine));
    let tiles = g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    let block_dim = (tiles * t.parts()).min(u64::from(machine.cube_cores()));
    let handoff = 2.0 * f64::from(machine.sync.cross_core_latency);
    cube + handoff + reduction(g, t, block_dim, machine)
}

/// The reduction's cycles: the busiest vector core's chunks.
fn reduction(g: &Geometry, t: &CubeSchedule, block_dim: u64, machine: &Machine) -> f64 {
    let vcores = block_dim * u64::from(machine.aiv_per_core().max(1));
    let (rr, cw) = (t.red_rows.max(1), t.red_cols.max(16));
    let chunks = g.m.div_ceil(rr) * g.n.div_ceil(cw);
    let per_core = chunks.div_ceil(vcores.max(1)) as f64;
    let (rows, cols) = (rr.min(g.m) as f64, cw.min(g.n) as f64);
    let acc = size(g.acc());
    let load = &machine.dma.gm_to_ub;
    let one_load =
        f64::from(machine.gm.l2_hit_fixed_cycles) + rows * cols * acc / load.bytes_per_cycle;
    let ops = &machine.vector.ops;
    let head = f64::from(machine.vector.head_cycles);
    let repeats = ((rr * cw) as f64 * acc / 256.0).ceil();
    let add = head + repeats * f64::from(ops.binary.per_repeat) + f64::from(ops.binary.tail);
    let cast = if g.out == g.acc() {
        0.0
    } else {
        head + repeats * f64::from(ops.cast.per_repeat) + f64::from(ops.cast.tail)
    };
    let store = &machine.dma.ub_to_gm;
    let one_store =
        f64::from(store.fixed_cycles) + rows * cols * size(g.out) / store.bytes_per_cycle;
    // Each part's load overlaps the add before it; the first does not.
    let parts = t.parts() as f64;
    let chunk = one_load + (parts - 1.0) * one_load.max(add) + add + cast + one_store;
    let out = (g.m * g.n) as f64 * size(g.out) / machine.gm.chip_bytes_per_cycle;
    (per_core * chunk).max(out)
}

/// Places the partial tiles of every split-K stage: past the plan's own
/// workspace buffers (laid out again, so that a ring takes its own rows
/// only: [`Plan::lay_out_workspace`]), one region for all of them (stages run one after
/// another), and the workspace sized to hold it (or to the buffers alone
/// when no stage is split). Idempotent: the region is placed from the
/// buffers each time.
pub fn place_partials(plan: &mut Plan) {
    let own = plan.lay_out_workspace();
    let mut need = 0;
    for stage in &mut plan.stages {
        if let StageKind::MatMul(mm) = &mut stage.kind
            && let Ok(g) = Geometry::of(mm)
            && let MatMulSchedule::Cube(t) = &mut mm.schedule
            && t.parts() > 1
        {
            t.partials = own;
            need = need.max(t.parts() * g.partial_bytes());
        }
    }
    plan.workspace = own + need.div_ceil(512) * 512;
}

/// The split-K variants of a single-stage candidate `t` with one
/// accumulator (this module), with their estimates (twice: the sort's
/// second key is the estimate too).
pub(super) fn split_candidates(
    g: &Geometry,
    t: &CubeSchedule,
    machine: &Machine,
) -> Vec<(f64, f64, CubeSchedule)> {
    let tiles = g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    if !offered(g, tiles, machine) {
        return Vec::new();
    }
    let cores = u64::from(machine.cube_cores());
    part_counts(g, tiles, machine)
        .into_iter()
        .filter_map(|(parts, part_k)| {
            let (red_rows, red_cols) = chunks(g, (tiles * parts).min(cores), machine);
            let v = CubeSchedule {
                split_k: parts,
                part_k,
                red_rows,
                red_cols,
                group_m: 1,
                ..t.clone()
            };
            let fitting =
                v.check_split(g).is_ok() && fits(&cube_layout(g, &v, machine).named(), machine);
            fitting.then(|| {
                let cost = cost(g, &v, machine);
                (cost, cost, v)
            })
        })
        .collect()
}
