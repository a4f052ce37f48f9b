//! Simulator-in-the-loop tuning (`tessera tune`) and the tuning file that
//! `compile`, `run` and `bench` read.
//!
//! The scheduler ranks a stage's candidate schedules with its cost model
//! and takes the cheapest. `tune` simulates (timing only) the cheapest few
//! of each cube matmul stage in the kernel's real program, and the
//! scheduler's choice in its other tile orders (up to 3), and records the
//! fastest: in a TOML file of entries keyed by the stage's canonical form
//! (its geometry: extents, strides, dtypes, transposes, epilogue), the
//! machine's name and the machine description's fingerprint. Reading a file
//! back, an entry whose fingerprint differs (the machine changed), or whose
//! schedule no longer fits, is ignored with a note, never trusted.
//!
//! Tuning is deterministic: candidates are simulated in parallel (rayon),
//! but their order, the simulated cycles and the choice (least cycles, the
//! cost model's order breaking ties) do not depend on the thread count, and
//! the file holds no times.

use crate::driver::{self, Failure, Source};
use crate::plan::schedule::finish;
use crate::plan::schedule::matmul::{apply_cube, cube_candidates, cube_cost, tile_orders};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{
    BufKind, CubeSchedule, MatMul, MatMulSchedule, Plan, Source as ViewSource, Stage, StageKind,
};
use tessera_ir::{Code, Diagnostic, Kernel};
use tessera_sim::{Machine, Warm};

/// Tile orders of the scheduler's choice `tune` simulates besides it.
const ORDER_VARIANTS: usize = 3;

/// The tuning file's name in the per-user cache directory.
pub const FILE_NAME: &str = "tuning.toml";

/// The format this build writes and reads.
pub const FORMAT: u32 = 1;

/// A tuning file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// [`FORMAT`].
    pub format: u32,
    /// The entries, sorted by machine and stage.
    #[serde(default, rename = "entry")]
    pub entries: Vec<Entry>,
    /// Whether the file was named on the command line (`--tuning`): then
    /// its entries for another machine, or that match no stage of the
    /// kernel, are noted as ignored (the per-user file holds every
    /// kernel's and stays quiet about them).
    #[serde(skip)]
    pub named: bool,
}

/// The tuned schedule of one stage on one machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The machine's name.
    pub machine: String,
    /// The machine description's fingerprint (16 hex digits).
    pub fingerprint: String,
    /// The stage's canonical form ([`stage_key`]).
    pub stage: String,
    /// Output tile rows in L0C.
    pub base_m: u64,
    /// Output tile columns in L0C.
    pub base_n: u64,
    /// K per L0 step.
    pub base_k: u64,
    /// K per L1 stage.
    pub l1_k: u64,
    /// L1 stages one A load covers.
    pub a_stages: u64,
    /// L1 stages one B load covers.
    pub b_stages: u64,
    /// The tile order (`CubeSchedule::group_m`; 1, row-major, when absent).
    #[serde(default = "one")]
    pub group_m: u64,
    /// L0C accumulators (1 when absent).
    #[serde(default = "one")]
    pub accumulators: u64,
    /// A's whole K panel kept in L1 (`CubeSchedule::a_panel`; false when
    /// absent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub a_panel: bool,
    /// An A panel's runs folded over their tile row (`CubeSchedule::fold`;
    /// 1, none, when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub fold: u64,
    /// K parts (`CubeSchedule::split_k`; 1, none, when absent).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub split_k: u64,
    /// The cost model's cycles for this schedule (on the sample, when
    /// there is one).
    pub predicted: u64,
    /// The stage's simulated cycles with it (the stage alone, launch
    /// included; on the sample, when there is one).
    pub simulated: u64,
    /// The stage's simulated cycles with the scheduler's own choice (alone,
    /// on the same sample).
    pub untuned: u64,
    /// When the stage was simulated on a sample: the items of its outermost
    /// batch dim kept, and of how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<[u64; 2]>,
}

/// The default of the fields older files lack.
fn one() -> u64 {
    1
}

/// Whether a field holds its default of 1 (and is left out of the file).
fn is_one(x: &u64) -> bool {
    *x == 1
}

fn is_false(x: &bool) -> bool {
    !*x
}

/// A cube matmul stage's canonical form: what its best schedule depends on.
pub fn stage_key(mm: &MatMul) -> Option<String> {
    let g = Geometry::of(mm).ok()?;
    Some(format!(
        "matmul {}->{} batch={:?} m={} k={} n={} a_t={} b_t={} a_row={} b_row={} c_row={} a_bs={:?} b_bs={:?} c_bs={:?} relu={}",
        g.dtype,
        g.out,
        g.batch,
        g.m,
        g.k,
        g.n,
        g.a_t,
        g.b_t,
        g.a_row,
        g.b_row,
        g.c_row,
        g.a_bs,
        g.b_bs,
        g.c_bs,
        mm.relu
    ))
}

fn fingerprint(machine: &Machine) -> String {
    format!("{:016x}", machine.fingerprint())
}

/// The per-user tuning file (`tuning.toml` in the cache directory of
/// `compiler/src/cache.rs`), if there is a cache directory.
pub fn default_path() -> Option<PathBuf> {
    crate::cache::default_dir().map(|d| d.join(FILE_NAME))
}

fn malformed(path: &Path, why: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new(
        Code::E0608,
        format!("`{}` is not a tuning file: {why}", path.display()),
    )
    .help("make it again with `tessera tune`, or delete it")
}

/// Reads a tuning file.
pub fn read(path: &Path) -> Result<Tuning, Diagnostic> {
    let bytes = crate::files::read_raw(path, crate::files::MAX_TUNING_BYTES, "tuning file")
        .map_err(|e| Diagnostic::new(Code::E0600, e))?;
    let text = String::from_utf8(bytes).map_err(|_| malformed(path, "not UTF-8"))?;
    let t: Tuning = toml::from_str(&text).map_err(|e| malformed(path, e.message()))?;
    if t.format != FORMAT {
        return Err(malformed(
            path,
            format!("format {} (this build reads format {FORMAT})", t.format),
        ));
    }
    Ok(t)
}

/// The tuning `compile`, `run` and `bench` use: `--tuning FILE` (an error
/// if it cannot be read), else the per-user file if it exists (a note if it
/// cannot be read, and no tuning). Notes go to `notes`.
pub fn for_command(named: Option<&Path>, notes: &mut Vec<String>) -> Result<Tuning, Failure> {
    if let Some(p) = named {
        let mut t = read(p).map_err(|d| Failure::input(vec![d]))?;
        t.named = true;
        return Ok(t);
    }
    let Some(p) = default_path().filter(|p| p.exists()) else {
        return Ok(Tuning::default());
    };
    match read(&p) {
        Ok(t) => Ok(t),
        Err(d) => {
            notes.push(format!("{} (ignored)", d.message));
            Ok(Tuning::default())
        }
    }
}

/// Sets the tuned schedules of a plan's cube matmul stages; a note for
/// each entry that matches a stage but is not used.
pub fn apply(plan: &mut Plan, tuning: &Tuning, machine: &Machine) -> Vec<String> {
    let mut notes = Vec::new();
    if tuning.entries.is_empty() {
        return notes;
    }
    let fp = fingerprint(machine);
    if tuning.named {
        notes.extend(unmatched(plan, tuning, machine));
    }
    // As `tune` leaves them: a matmul its joined vector stage bounds keeps
    // the scheduler's choice (an entry of its form is another stage's).
    let bounded: Vec<Option<usize>> = (0..plan.stages.len())
        .map(|i| bound_by_joined(plan, i))
        .collect();
    for (i, stage) in plan.stages.iter_mut().enumerate() {
        let StageKind::MatMul(mm) = &mut stage.kind else {
            continue;
        };
        if !matches!(mm.schedule, MatMulSchedule::Cube(_)) {
            continue;
        }
        let (Some(key), Ok(g)) = (stage_key(mm), Geometry::of(mm)) else {
            continue;
        };
        let Some(e) = tuning
            .entries
            .iter()
            .find(|e| e.machine == machine.name && e.stage == key)
        else {
            continue;
        };
        if let Some(j) = bounded[i] {
            notes.push(format!(
                "stage {i} runs in one launch with stage {j}, which bounds it: the scheduler's choice stays; its tuning is not used"
            ));
            continue;
        }
        if e.fingerprint != fp {
            notes.push(format!(
                "the tuning of stage {i} was made for another description of `{}` (fingerprint {}, now {fp}); ignored",
                machine.name, e.fingerprint
            ));
            continue;
        }
        let t = CubeSchedule {
            base_m: e.base_m,
            base_n: e.base_n,
            base_k: e.base_k,
            l1_k: e.l1_k,
            a_stages: e.a_stages,
            b_stages: e.b_stages,
            ..CubeSchedule::default()
        };
        // Only a schedule the scheduler itself would offer, in one of its
        // tile orders, is trusted.
        let found = cube_candidates(&g, machine).into_iter().find(|(_, c)| {
            (c.base_m, c.base_n, c.base_k, c.l1_k, c.a_stages, c.b_stages)
                == (t.base_m, t.base_n, t.base_k, t.l1_k, t.a_stages, t.b_stages)
                && c.accumulators == e.accumulators
                && c.parts() == e.split_k.max(1)
                && c.a_panel == e.a_panel
                && c.fold.max(1) == e.fold.max(1)
        });
        // An A panel's units go row-major, in runs.
        let ordered = found.filter(|(_, c)| {
            tile_orders(&g, c.base_m, c.base_n, machine).contains(&e.group_m)
                && (!c.a_panel || e.group_m <= 1)
        });
        let Some((_, mut t)) = ordered else {
            notes.push(format!(
                "the tuned schedule of stage {i} is not a valid schedule of it on `{}`; ignored",
                machine.name
            ));
            continue;
        };
        t.group_m = e.group_m;
        set_schedule(stage, &g, t, machine);
    }
    finish(plan, machine);
    notes
}

/// Notes for a named tuning file's entries that no stage of `plan` can
/// use: those for another machine, and those of this machine whose stage
/// form matches none of the plan's cube matmuls (a changed kernel, or
/// another kernel's).
fn unmatched(plan: &Plan, tuning: &Tuning, machine: &Machine) -> Vec<String> {
    let keys: Vec<String> = plan
        .stages
        .iter()
        .filter_map(|s| {
            let StageKind::MatMul(mm) = &s.kind else {
                return None;
            };
            matches!(mm.schedule, MatMulSchedule::Cube(_))
                .then(|| stage_key(mm))
                .flatten()
        })
        .collect();
    let mut others: Vec<&str> = Vec::new();
    let mut elsewhere = 0;
    let mut stale = 0;
    for e in &tuning.entries {
        if e.machine != machine.name {
            elsewhere += 1;
            if !others.contains(&e.machine.as_str()) {
                others.push(&e.machine);
            }
        } else if !keys.contains(&e.stage) {
            stale += 1;
        }
    }
    let mut notes = Vec::new();
    let entries = |n: usize| if n == 1 { "entry" } else { "entries" };
    if elsewhere > 0 {
        notes.push(format!(
            "{elsewhere} tuning {} {} for another machine (`{}`, not `{}`); ignored",
            entries(elsewhere),
            if elsewhere == 1 { "is" } else { "are" },
            others.join("`, `"),
            machine.name
        ));
    }
    if stale > 0 {
        notes.push(format!(
            "{stale} tuning {} for `{}` match{} no matmul stage of kernel `{}` (a changed kernel, or another one's); ignored",
            entries(stale),
            machine.name,
            if stale == 1 { "es" } else { "" },
            plan.kernel
        ));
    }
    notes
}

/// Gives cube matmul stage `i` of `plan` the cost model's `n`-th cheapest
/// candidate other than its schedule (with its tile order), and settles
/// what follows from the schedules (`finish`); false when there is no
/// such stage or candidate. The code generator's templates have limits
/// the scheduler does not see (a machine's event ids): the driver tries
/// the next candidates of a stage it could not generate.
pub fn reschedule(plan: &mut Plan, i: usize, n: usize, machine: &Machine) -> bool {
    let Some(stage) = plan.stages.get_mut(i) else {
        return false;
    };
    let StageKind::MatMul(mm) = &stage.kind else {
        return false;
    };
    let (MatMulSchedule::Cube(now), Ok(g)) = (&mm.schedule, Geometry::of(mm)) else {
        return false;
    };
    let form = |c: &CubeSchedule| {
        (
            (c.base_m, c.base_n, c.base_k, c.l1_k, c.a_stages, c.b_stages),
            (c.accumulators.max(1), c.parts(), c.a_panel, c.fold.max(1)),
        )
    };
    let now = form(now);
    let mut cands = cube_candidates(&g, machine);
    cands.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some((_, t)) = cands.into_iter().filter(|(_, c)| form(c) != now).nth(n) else {
        return false;
    };
    set_schedule(stage, &g, t, machine);
    finish(plan, machine);
    true
}

/// Gives matmul `stage` (of geometry `g`) the cube schedule `t`, with its
/// block count and estimate; returns the cost model's cycles for it.
fn set_schedule(stage: &mut Stage, g: &Geometry, t: CubeSchedule, machine: &Machine) -> f64 {
    let cost = cube_cost(g, &t, machine);
    if let StageKind::MatMul(mm) = &mut stage.kind {
        let (block_dim, estimate) = apply_cube(mm, g, t, cost, machine);
        stage.block_dim = block_dim;
        stage.estimate = estimate;
    }
    cost
}

/// One candidate `tune` simulated.
#[derive(Clone, Debug, Serialize)]
pub struct Tried {
    /// `base_m×base_n×base_k l1_k=… a×b`.
    pub schedule: String,
    /// The cost model's cycles for the stage.
    pub predicted: u64,
    /// The stage's simulated cycles (alone, launch included).
    pub simulated: u64,
}

/// What `tune` did for one stage.
#[derive(Clone, Debug, Serialize)]
pub struct StageReport {
    /// The stage's index in the plan.
    pub stage: usize,
    /// Its canonical form.
    pub key: String,
    /// The candidates, the cost model's cheapest first.
    pub tried: Vec<Tried>,
    /// The index in `tried` of the fastest (of the stage it is the same
    /// as, with `same_as`); 0, the scheduler's own, when the winners made
    /// the kernel slower whole, or, in a kernel too large to simulate
    /// whole, when the stage is not the kernel (it has several stages or
    /// was sampled) and the fastest is not 2 % faster.
    pub chosen: usize,
    /// The items of the outermost batch dim its sample kept, and of how
    /// many (none: the whole stage was simulated).
    pub sample: Option<[u64; 2]>,
    /// The stage of the same canonical form this one takes its choice from
    /// (then nothing was simulated for it).
    pub same_as: Option<usize>,
    /// The vector stage joined to this one whose estimate exceeds its own
    /// (then nothing was simulated for it: see `bound_by_joined`).
    pub bound_by: Option<usize>,
}

/// What `tune` did for a kernel.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The kernel.
    pub kernel: String,
    /// The machine.
    pub machine: String,
    /// Each tuned stage.
    pub stages: Vec<StageReport>,
    /// The kernel's simulated cycles with the scheduler's choices and with
    /// the tuned ones, when it was simulated whole (a plan estimated at no
    /// more than 10 M cycles whose stages timed alone are not the kernel).
    pub kernel_cycles: Option<[u64; 2]>,
    /// Host seconds spent (not in the file).
    pub seconds: f64,
    /// The entries to record.
    pub entries: Vec<Entry>,
}

/// Simulates `plan` with the buffers `warm` in L2 at the start; `None`
/// when the code generator cannot generate it (its templates' limits,
/// such as a machine's event ids, are not the scheduler's: such a
/// candidate is not tried).
fn simulate(plan: &Plan, machine: &Machine, warm: &[usize]) -> Result<Option<u64>, Failure> {
    let mut plan = plan.clone();
    finish(&mut plan, machine);
    // Where the buffers are in this plan's workspace (its layout depends
    // on its stages).
    let warm = warm
        .iter()
        .filter_map(|&b| {
            Some(match plan.buffers.get(b)?.kind {
                BufKind::Param(p) => Warm::Param(p),
                BufKind::Result(r) => Warm::Result(r),
                BufKind::Workspace { offset } => Warm::Workspace {
                    offset,
                    bytes: plan.footprint(b),
                },
            })
        })
        .collect();
    let Ok(program) = tessera_backend::npu::compile(&plan, machine) else {
        return Ok(None);
    };
    let opts = tessera_sim::RunOptions {
        timing_only: true,
        race_detection: false,
        warm,
        ..tessera_sim::RunOptions::default()
    };
    let out =
        tessera_sim::run(machine, &program, &[], &opts).map_err(crate::simulate::run_error)?;
    Ok(Some(out.report.cycles))
}

fn describe(t: &CubeSchedule) -> String {
    let order = if t.group_m > 1 {
        format!(" group_m={}", t.group_m)
    } else {
        String::new()
    };
    let accs = if t.accumulators > 1 {
        format!(" accumulators={}", t.accumulators)
    } else {
        String::new()
    };
    let split = if t.fold > 1 {
        format!(" a_panel=1 fold={}", t.fold)
    } else if t.a_panel {
        " a_panel=1".to_string()
    } else if t.parts() > 1 {
        format!(" split_k={}", t.parts())
    } else {
        String::new()
    };
    format!(
        "{}x{}x{} l1_k={} depth={}x{}{order}{accs}{split}",
        t.base_m, t.base_n, t.base_k, t.l1_k, t.a_stages, t.b_stages
    )
}

/// How much dearer than the cheapest a candidate may be predicted and
/// still be simulated.
const CLOSE: f64 = 1.05;

/// How much faster than the scheduler's choice, alone, another must be to
/// be chosen when the stage is not the whole kernel (several stages, or a
/// sample) and the kernel is too large to simulate whole: smaller gains
/// alone turned into losses in the whole kernel (910b-like rmsnorm-matmul
/// and attention with a mask, 0.1 %).
const SHARED_GAIN: f64 = 1.02;

/// Waves of the scheduler's tiles (over the cube cores) a sample keeps.
const SAMPLE_WAVES: u64 = 16;

/// The plan's estimated cycles up to which `tune` also simulates the kernel
/// whole, with the scheduler's choices and with the tuned ones (two
/// simulations of about a second per 3 M cycles on the development
/// machine).
const WHOLE_LIMIT: u64 = 10_000_000;

/// Matmul items (of all batch dims) a sample keeps at least: the first
/// starts with cold caches and the last drains, so that one at least runs
/// as the whole stage's do.
const SAMPLE_ITEMS: u64 = 3;

/// A batched stage with more tiles than [`SAMPLE_WAVES`] waves of the
/// scheduler's choice `t` in fewer items of its outermost batch dim than it
/// has: that stage on the first items only (the same buffers, the same tile
/// grid per item), how many it keeps and of how many. Its candidates rank
/// on the sample as on the whole: the items are alike and the cores run
/// waves of the same tiles.
fn sample(
    mm: &MatMul,
    g: &Geometry,
    t: &CubeSchedule,
    machine: &Machine,
) -> Option<(MatMul, u64, u64)> {
    let rank = mm.out.shape.len();
    if rank < 3 || mm.a.view.shape.len() != rank || mm.b.view.shape.len() != rank {
        return None;
    }
    let items = mm.out.shape[0];
    let inner: u64 = mm.out.shape[1..rank - 2].iter().product();
    let per_item = g.m.div_ceil(t.base_m.max(1)) * g.n.div_ceil(t.base_n.max(1)) * inner.max(1);
    let tiles = SAMPLE_WAVES * u64::from(machine.cube_cores());
    let keep = tiles
        .div_ceil(per_item.max(1))
        .max(SAMPLE_ITEMS.div_ceil(inner.max(1)));
    if keep >= items {
        return None;
    }
    let mut s = mm.clone();
    for v in [&mut s.a.view, &mut s.b.view, &mut s.out] {
        // A broadcast operand keeps its one item.
        if v.shape[0] == items {
            v.shape[0] = keep;
        }
    }
    Some((s, keep, items))
}

/// The buffers that stage `i` of `plan` finds in L2 in the kernel: every
/// one an earlier stage reads or writes (the simulator's L2 keeps every
/// line once touched). Timed alone without them, a stage pays HBM for
/// operands an earlier launch left in L2.
fn warm_before(plan: &Plan, i: usize) -> Vec<usize> {
    let mut bufs: Vec<usize> = plan.stages[..i]
        .iter()
        .flat_map(|s| s.reads().into_iter().chain(s.writes()))
        .filter_map(|v| match v.source {
            ViewSource::Buffer(b) => Some(b),
            ViewSource::Constant(_) => None,
        })
        .collect();
    bufs.sort_unstable();
    bufs.dedup();
    bufs
}

/// The vector stage joined to matmul stage `i` (its epilogue after it or
/// its prologue before it, in its launch) whose estimate exceeds the
/// matmul's, if any. Such a launch takes about the vector stage's time, so a
/// faster matmul alone does not make it faster, and the tile order that
/// times best alone can pace the vector cores' phases worse: on 910b-like,
/// attention's Q·Kᵀ (joined to its softmax) tuned alone to `group_m=4`, 7 %
/// faster, made the kernel 0.1 % slower at S = 4096 and 0.4 % at S = 8192.
/// `tune` leaves such a stage as scheduled and simulates none of its
/// candidates.
fn bound_by_joined(plan: &Plan, i: usize) -> Option<usize> {
    let StageKind::MatMul(MatMul {
        schedule: MatMulSchedule::Cube(t),
        ..
    }) = &plan.stages.get(i)?.kind
    else {
        return None;
    };
    let own = plan.stages[i].estimate;
    let heavier = |j: usize| plan.stages.get(j).is_some_and(|s| s.estimate > own);
    if t.epilogue > 0 && heavier(i + 1) {
        return Some(i + 1);
    }
    if t.prologue > 0 && i > 0 && heavier(i - 1) {
        return Some(i - 1);
    }
    None
}

/// The candidate to keep of those simulated (`cycles`, the scheduler's
/// own first): the fastest, the first of equals; when the stage is not
/// the whole kernel (`shared`), the scheduler's own unless the fastest is
/// [`SHARED_GAIN`] faster.
fn choose(cycles: &[u64], shared: bool) -> Option<usize> {
    let (&own, _) = cycles.split_first()?;
    let mut best = 0;
    for (j, &c) in cycles.iter().enumerate() {
        if c < cycles[best] {
            best = j;
        }
    }
    if shared && (cycles[best] as f64) * SHARED_GAIN > own as f64 {
        return Some(0);
    }
    Some(best)
}

/// Tunes every cube matmul stage of a kernel's plan: simulates the stage
/// alone (on a sample of its batch when it is large, `sample`) with each
/// of its `top` cheapest candidates and the scheduler's choice in its other
/// tile orders, and keeps the fastest. A stage of the same canonical form
/// as one tuned before takes that one's choice. A kernel estimated at no
/// more than `WHOLE_LIMIT` cycles is then simulated whole, and keeps the
/// scheduler's choices if the winners make it slower; a larger one is
/// not (`bench --tuning` times it), and its stages follow `choose`.
pub fn tune(
    kernel: &Kernel,
    machine: &Machine,
    src: &Source,
    level: crate::opt::Level,
    top: usize,
) -> Result<Report, Failure> {
    let start = std::time::Instant::now();
    let code = driver::compile_npu(kernel, machine, src, level)?;
    let plan = code.plan;
    // Small enough to simulate whole: then the choices are checked in the
    // kernel, else a stage that is not the kernel changes only for a clear
    // gain alone.
    let whole = plan.stages.iter().map(|s| s.estimate).sum::<u64>() <= WHOLE_LIMIT;
    let mut stages: Vec<StageReport> = Vec::new();
    let mut entries = Vec::new();
    let mut winners: Vec<(usize, CubeSchedule)> = Vec::new();
    for i in 0..plan.stages.len() {
        let StageKind::MatMul(mm) = &plan.stages[i].kind else {
            continue;
        };
        if !matches!(mm.schedule, MatMulSchedule::Cube(_)) {
            continue;
        }
        let (Some(key), Ok(g)) = (stage_key(mm), Geometry::of(mm)) else {
            continue;
        };
        // A stage its joined vector stage bounds is left as scheduled: it
        // neither takes nor gives a choice of its form.
        if let Some(j) = bound_by_joined(&plan, i) {
            stages.push(StageReport {
                stage: i,
                key,
                tried: Vec::new(),
                chosen: 0,
                sample: None,
                same_as: None,
                bound_by: Some(j),
            });
            continue;
        }
        if let Some(first) = stages
            .iter()
            .find(|s| s.key == key && s.same_as.is_none() && s.bound_by.is_none())
        {
            let stage = first.stage;
            if let Some((_, t)) = winners.iter().find(|(j, _)| *j == stage) {
                winners.push((i, t.clone()));
            }
            stages.push(StageReport {
                stage: i,
                key,
                tried: Vec::new(),
                chosen: first.chosen,
                sample: first.sample,
                same_as: Some(stage),
                bound_by: None,
            });
            continue;
        }
        let mut cands = cube_candidates(&g, machine);
        // Stable: equal estimates keep the scheduler's order, so the first
        // is the scheduler's own choice.
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Then the scheduler's choice in its other tile orders (up to 3):
        // the order's model is the coarsest part.
        let first = cands.first().map(|(_, t)| t.clone());
        let orders: Vec<(f64, CubeSchedule)> = first
            .iter()
            .filter(|t| !t.a_panel)
            .flat_map(|t| {
                tile_orders(&g, t.base_m, t.base_n, machine)
                    .into_iter()
                    .filter(|&gr| gr != t.group_m)
                    .take(ORDER_VARIANTS)
                    .map(|gr| {
                        let v = CubeSchedule {
                            group_m: gr,
                            ..t.clone()
                        };
                        (cube_cost(&g, &v, machine), v)
                    })
            })
            .collect();
        cands.truncate(top.max(1));
        cands.extend(orders);
        // Only those the cost model finds close to its cheapest.
        let cheapest = cands.first().map_or(0.0, |(c, _)| *c);
        cands.retain(|(c, _)| *c <= cheapest * CLOSE);
        let Some((_, own)) = cands.first() else {
            continue;
        };
        // What is simulated: the stage, or its sample, and its geometry.
        let (target, gs, kept) = match sample(mm, &g, own, machine) {
            Some((s, keep, of)) => match Geometry::of(&s) {
                Ok(gs) => (s, gs, Some([keep, of])),
                Err(_) => (mm.clone(), g.clone(), None),
            },
            None => (mm.clone(), g.clone(), None),
        };
        // Each candidate runs as the stage alone (one launch on the
        // kernel's buffers, with L2 holding what the earlier stages
        // touched): the other stages do not change with it.
        let warm = warm_before(&plan, i);
        let runs: Vec<Result<Option<(u64, u64)>, Failure>> = cands
            .par_iter()
            .map(|(_, t)| {
                let mut st = Stage {
                    kind: StageKind::MatMul(target.clone()),
                    ..plan.stages[i].clone()
                };
                let cost = set_schedule(&mut st, &gs, t.clone(), machine);
                let alone = Plan {
                    stages: vec![st],
                    ..plan.clone()
                };
                Ok(simulate(&alone, machine, &warm)?.map(|c| (cost as u64, c)))
            })
            .collect();
        // The candidates the code generator generates, in order.
        let mut tried = Vec::new();
        let mut generated = Vec::new();
        for (r, (_, t)) in runs.into_iter().zip(&cands) {
            let Some((predicted, cycles)) = r? else {
                continue;
            };
            tried.push(Tried {
                schedule: describe(t),
                predicted,
                simulated: cycles,
            });
            generated.push(t);
        }
        // Alone is the whole only for a kernel of one stage simulated
        // whole; otherwise the stages share L2 and GM (or the sample is not
        // the stage), and a small gain alone can be a loss together.
        let cycles: Vec<u64> = tried.iter().map(|t| t.simulated).collect();
        let shared = (plan.stages.len() > 1 || kept.is_some()) && !whole;
        let Some(chosen) = choose(&cycles, shared) else {
            continue;
        };
        let cycles = cycles[chosen];
        let t = generated[chosen];
        winners.push((i, t.clone()));
        entries.push(Entry {
            machine: machine.name.clone(),
            fingerprint: fingerprint(machine),
            stage: key.clone(),
            base_m: t.base_m,
            base_n: t.base_n,
            base_k: t.base_k,
            l1_k: t.l1_k,
            a_stages: t.a_stages,
            b_stages: t.b_stages,
            group_m: t.group_m,
            accumulators: t.accumulators,
            a_panel: t.a_panel,
            fold: t.fold.max(1),
            split_k: t.parts(),
            predicted: tried[chosen].predicted,
            simulated: cycles,
            untuned: tried[0].simulated,
            sample: kept,
        });
        stages.push(StageReport {
            stage: i,
            key,
            tried,
            chosen,
            sample: kept,
            same_as: None,
            bound_by: None,
        });
    }
    // The kernel whole, when it is small enough and a stage timed alone
    // is not the kernel: should the winners make it slower together, the
    // scheduler's choices stay and nothing is recorded.
    let mut kernel_cycles = None;
    let changed = stages.iter().any(|s| s.chosen != 0);
    if whole && changed && (plan.stages.len() > 1 || stages.iter().any(|s| s.sample.is_some())) {
        let mut tuned_plan = plan.clone();
        for (i, t) in &winners {
            let st = &mut tuned_plan.stages[*i];
            if let StageKind::MatMul(mm) = &st.kind
                && let Ok(g) = Geometry::of(mm)
            {
                set_schedule(st, &g, t.clone(), machine);
            }
        }
        // The winners together may not generate (each was generated
        // alone): then, as when they are slower together, the compiled
        // plan's choices stay and nothing is recorded.
        let untuned = simulate(&plan, machine, &[])?;
        let tuned = simulate(&tuned_plan, machine, &[])?;
        let kept = match (untuned, tuned) {
            (Some(u), Some(t)) if t <= u => Some([u, t]),
            (u, _) => {
                entries.clear();
                for st in &mut stages {
                    st.chosen = 0;
                }
                u.map(|u| [u, u])
            }
        };
        kernel_cycles = kept;
    }
    Ok(Report {
        kernel: kernel.name.clone(),
        machine: machine.name.clone(),
        stages,
        kernel_cycles,
        seconds: start.elapsed().as_secs_f64(),
        entries,
    })
}

/// `file` with `entries` added (an entry for the same machine, fingerprint
/// and stage replaced), sorted so that the same entries give the same file.
pub fn merge(mut file: Tuning, entries: &[Entry]) -> Tuning {
    file.format = FORMAT;
    for e in entries {
        file.entries
            .retain(|o| !(o.machine == e.machine && o.stage == e.stage));
        file.entries.push(e.clone());
    }
    file.entries.sort_by(|a, b| {
        (&a.machine, &a.stage, &a.fingerprint).cmp(&(&b.machine, &b.stage, &b.fingerprint))
    });
    file
}

/// The file's text.
pub fn to_text(file: &Tuning) -> String {
    let mut s = String::from(
        "# Tessera tuning file: the fastest simulated schedule of each stage, made by `tessera tune`.\n",
    );
    s.push_str(&toml::to_string(file).unwrap_or_default());
    s
}

impl Report {
    /// The report as a table.
    pub fn table(&self) -> String {
        let whole = match self.kernel_cycles {
            Some([a, b]) => format!(
                "the kernel {a} -> {b} cycles ({:.3}x)",
                a as f64 / b.max(1) as f64
            ),
            None => "each alone; `bench --tuning FILE` times the kernel".into(),
        };
        let mut s = format!(
            "tune {} on {}: {} stage{} tuned in {:.2} s ({whole})\n",
            self.kernel,
            self.machine,
            self.stages.len(),
            if self.stages.len() == 1 { "" } else { "s" },
            self.seconds
        );
        for st in &self.stages {
            s.push_str(&format!("stage {}: {}\n", st.stage, st.key));
            if let Some(first) = st.same_as {
                s.push_str(&format!("    the same as stage {first}: its choice\n"));
                continue;
            }
            if let Some(j) = st.bound_by {
                s.push_str(&format!(
                    "    joined to stage {j}, which bounds their launch: the scheduler's choice\n"
                ));
                continue;
            }
            let (Some(own), Some(best)) = (st.tried.first(), st.tried.get(st.chosen)) else {
                continue;
            };
            let on = match st.sample {
                Some([keep, of]) => {
                    format!(" (on a sample: {keep} of the {of} items of its outermost batch dim)")
                }
                None => String::new(),
            };
            s.push_str(&format!(
                "    scheduler's {} -> chosen {} cycles ({:.3}x){on}\n",
                own.simulated,
                best.simulated,
                own.simulated as f64 / best.simulated.max(1) as f64
            ));
            s.push_str("    candidate                          predicted    simulated\n");
            for (j, t) in st.tried.iter().enumerate() {
                let mark = if j == st.chosen { "  <- chosen" } else { "" };
                s.push_str(&format!(
                    "    {:<32} {:>11} {:>12}{mark}\n",
                    t.schedule, t.predicted, t.simulated
                ));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
