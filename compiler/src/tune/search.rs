//! `tessera tune`: simulating each matmul stage's cheapest candidates and
//! keeping the fastest (see the parent module).

use super::{Candidate, Entry, VectorEntry, fingerprint, set_schedule, stage_key};
use crate::driver::{self, Failure, Source};
use crate::plan::schedule::finish;
use crate::plan::schedule::matmul::{
    cube_candidates, cube_cost, tile_orders, vector_candidates, vector_cost,
};
use rayon::prelude::*;
use serde::Serialize;
use tessera_ir::Kernel;
use tessera_ir::plan::matmul::Geometry;
use tessera_ir::plan::{
    BufKind, CubeSchedule, MatMul, MatMulSchedule, Plan, Source as ViewSource, Stage, StageKind,
    VecMatSchedule,
};
use tessera_sim::{Machine, Warm};

/// Tile orders of the scheduler's choice `tune` simulates besides it.
const ORDER_VARIANTS: usize = 3;

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
    /// When a vector matmul was simulated on a prefix of K: the K it kept,
    /// and of how much (`k_sample`).
    pub k_sample: Option<[u64; 2]>,
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
    /// more than 6 M cycles whose stages timed alone are not the kernel).
    pub kernel_cycles: Option<[u64; 2]>,
    /// When the fastest of each stage alone made the kernel whole slower
    /// (so the scheduler's choices stay): its cycles with them, or `None`
    /// as well when they did not generate together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_cycles: Option<Option<u64>>,
    /// Host seconds spent (not in the file).
    pub seconds: f64,
    /// The entries to record.
    pub entries: Vec<Entry>,
    /// The entries of vector matmul stages to record.
    pub vectors: Vec<VectorEntry>,
}

/// Simulates `plan` with the buffers `warm` in L2 at the start; `None`
/// when the code generator cannot generate it (its templates' limits,
/// such as a machine's event ids, are not the scheduler's: such a
/// candidate is not tried).
pub(super) fn simulate(
    plan: &Plan,
    machine: &Machine,
    warm: &[usize],
) -> Result<Option<u64>, Failure> {
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

fn describe_cube(t: &CubeSchedule) -> String {
    let halves = if t.halves { " halves=1" } else { "" };
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
        "{}x{}x{} l1_k={} depth={}x{}{halves}{order}{accs}{split}",
        t.base_m, t.base_n, t.base_k, t.l1_k, t.a_stages, t.b_stages
    )
}

/// A vector candidate as the report shows it: `rows×cols k_chunk=…`, and
/// `dot` in the dot-product form.
fn describe_vector(t: &VecMatSchedule) -> String {
    let form = if t.dot { " dot" } else { "" };
    format!("{}x{} k_chunk={}{form}", t.rows, t.cols, t.k_chunk)
}

impl Candidate {
    /// As the report shows it.
    fn describe(&self) -> String {
        match self {
            Candidate::Cube(t) => describe_cube(t),
            Candidate::Vector(t) => describe_vector(t),
        }
    }

    /// Its output tile's rows and columns, and the cores its tiles spread
    /// over.
    fn tile(&self, machine: &Machine) -> (u64, u64, u64) {
        match self {
            Candidate::Cube(t) => (t.base_m, t.base_n, u64::from(machine.cube_cores())),
            Candidate::Vector(t) => (t.rows, t.cols, u64::from(machine.vector_cores())),
        }
    }
}

/// How much dearer than the cheapest a candidate may be predicted and
/// still be simulated.
pub(super) const CLOSE: f64 = 1.05;

/// How much dearer than the cheapest the cheapest vector candidate of the
/// other form (outer or dot products) may be predicted and still be
/// simulated. The two forms' estimates err differently.
const OTHER_FORM: f64 = 1.5;

/// How much faster than the scheduler's choice, alone, another must be to
/// be chosen when the stage is not the whole kernel (several stages, or a
/// sample) and the kernel is too large to simulate whole: smaller gains
/// alone turned into losses in the whole kernel (910b-like rmsnorm-matmul
/// and attention with a mask, 0.1 %).
const SHARED_GAIN: f64 = 1.02;

/// Waves of the scheduler's tiles (over the cores) a sample keeps.
const SAMPLE_WAVES: u64 = 16;

/// The plan's estimated cycles up to which `tune` also simulates the kernel
/// whole, with the scheduler's choices and with the tuned ones (two
/// simulations of about a second per 3 M cycles on the development
/// machine). At 10 M, 910b-like ffn-swiglu (6.7 M cycles, three cube
/// stages whose halved schedules simulate more instructions) took 10.5 s
/// on one thread, over the 10 s a kernel's tuning may take.
const WHOLE_LIMIT: u64 = 6_000_000;

/// Matmul items (of all batch dims) a sample keeps at least: the first
/// starts with cold caches and the last drains, so that one at least runs
/// as the whole stage's do.
const SAMPLE_ITEMS: u64 = 3;

/// A batched stage with more tiles than [`SAMPLE_WAVES`] waves (over the
/// cores its tiles spread over) of the scheduler's choice `t` in fewer
/// items of its outermost batch dim than it has: that stage on the first items only (the same buffers, the same tile
/// grid per item), how many it keeps and of how many. Its candidates rank
/// on the sample as on the whole: the items are alike and the cores run
/// waves of the same tiles.
fn sample(
    mm: &MatMul,
    g: &Geometry,
    t: &Candidate,
    machine: &Machine,
) -> Option<(MatMul, u64, u64)> {
    let rank = mm.out.shape.len();
    if rank < 3 || mm.a.view.shape.len() != rank || mm.b.view.shape.len() != rank {
        return None;
    }
    let items = mm.out.shape[0];
    let inner: u64 = mm.out.shape[1..rank - 2].iter().product();
    let (rows, cols, cores) = t.tile(machine);
    let per_item = g.m.div_ceil(rows.max(1)) * g.n.div_ceil(cols.max(1)) * inner.max(1);
    let tiles = SAMPLE_WAVES * cores;
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

/// The predicted cycles (of the scheduler's choice) above which a vector
/// matmul is simulated on a prefix of K (`k_sample`): about half a second
/// of simulation on the development machine.
const K_SAMPLE_CYCLES: f64 = 250_000.0;

/// How many times slower than a cube matmul's a vector matmul's cycle
/// simulates (a scalar-issued instruction per row and step of K; 6.3 M
/// cycles of f32 `[4096, 4096] @ [4096, 128]` on 910-like take 11 s): its
/// estimate counts that many times towards [`WHOLE_LIMIT`].
const VECTOR_SIM_WEIGHT: u64 = 5;

/// A vector matmul whose scheduler's choice (the first of `cands`) is
/// predicted dearer than [`K_SAMPLE_CYCLES`], on the first `keep` of its K
/// (`[keep, k]`): the same buffers and tiles, each tile running fewer
/// chunks of K. `keep` is a multiple of every candidate's chunk, so each
/// runs whole chunks as on the whole stage, and holds at least four of the
/// largest. Every chunk does the same work, so the candidates rank on the
/// prefix as on the whole.
fn k_sample(
    mm: &MatMul,
    g: &Geometry,
    cands: &[(f64, Candidate)],
    machine: &Machine,
) -> Option<(MatMul, Geometry, [u64; 2])> {
    let Some((_, Candidate::Vector(own))) = cands.first() else {
        return None;
    };
    let cost = vector_cost(g, own, machine);
    if cost <= K_SAMPLE_CYCLES {
        return None;
    }
    let unit = cands
        .iter()
        .filter_map(|(_, c)| match c {
            Candidate::Vector(t) => Some(t.k_chunk),
            Candidate::Cube(_) => None,
        })
        .max()?
        .max(1);
    let want = ((g.k as f64 * K_SAMPLE_CYCLES / cost).ceil() as u64).max(4 * unit);
    let keep = want.div_ceil(unit) * unit;
    if keep >= g.k {
        return None;
    }
    let mut s = mm.clone();
    let r = s.out.shape.len();
    s.a.view.shape[r - 1] = keep;
    s.b.view.shape[r - 2] = keep;
    let gs = Geometry::of(&s).ok()?;
    Some((s, gs, [keep, g.k]))
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
pub(super) fn bound_by_joined(plan: &Plan, i: usize) -> Option<usize> {
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
pub(super) fn choose(cycles: &[u64], shared: bool) -> Option<usize> {
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

/// Tunes every matmul stage of a kernel's plan: simulates the stage alone
/// (on a sample of its batch when it is large, `sample`) with each of its
/// `top` cheapest candidates and, of a cube matmul, the scheduler's choice
/// in its other tile orders, of a vector matmul, the cheapest of its other
/// form (`candidates`), and keeps the fastest. A stage of the same canonical form
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
    let weight = |s: &Stage| {
        let vector = matches!(
            &s.kind,
            StageKind::MatMul(MatMul {
                schedule: MatMulSchedule::Vector(_),
                ..
            })
        );
        if vector { VECTOR_SIM_WEIGHT } else { 1 }
    };
    let whole = plan
        .stages
        .iter()
        .map(|s| s.estimate * weight(s))
        .sum::<u64>()
        <= WHOLE_LIMIT;
    let mut stages: Vec<StageReport> = Vec::new();
    let mut entries = Vec::new();
    let mut vectors = Vec::new();
    let mut winners: Vec<(usize, Candidate)> = Vec::new();
    for i in 0..plan.stages.len() {
        let StageKind::MatMul(mm) = &plan.stages[i].kind else {
            continue;
        };
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
                k_sample: None,
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
                k_sample: first.k_sample,
                same_as: Some(stage),
                bound_by: None,
            });
            continue;
        }
        let cands = candidates(mm, &g, machine, top);
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
        // A long vector matmul: on a prefix of K.
        let (target, gs, k_kept) = match k_sample(&target, &gs, &cands, machine) {
            Some((s, gs, k)) => (s, gs, Some(k)),
            None => (target, gs, None),
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
                schedule: t.describe(),
                predicted,
                simulated: cycles,
            });
            generated.push(t);
        }
        // Alone is the whole only for a kernel of one stage simulated
        // whole; otherwise the stages share L2 and GM (or the sample is not
        // the stage), and a small gain alone can be a loss together.
        let cycles: Vec<u64> = tried.iter().map(|t| t.simulated).collect();
        let sampled = kept.is_some() || k_kept.is_some();
        let shared = (plan.stages.len() > 1 || sampled) && !whole;
        let Some(chosen) = choose(&cycles, shared) else {
            continue;
        };
        let cycles = cycles[chosen];
        let t = generated[chosen];
        winners.push((i, t.clone()));
        let (fingerprint, stage, predicted) =
            (fingerprint(machine), key.clone(), tried[chosen].predicted);
        let (machine_name, untuned) = (machine.name.clone(), tried[0].simulated);
        match t {
            Candidate::Cube(t) => entries.push(Entry {
                machine: machine_name,
                fingerprint,
                stage,
                base_m: t.base_m,
                base_n: t.base_n,
                base_k: t.base_k,
                l1_k: t.l1_k,
                a_stages: t.a_stages,
                b_stages: t.b_stages,
                group_m: t.group_m,
                accumulators: t.accumulators,
                a_panel: t.a_panel,
                halves: t.halves,
                fold: t.fold.max(1),
                split_k: t.parts(),
                predicted,
                simulated: cycles,
                untuned,
                sample: kept,
            }),
            Candidate::Vector(t) => vectors.push(VectorEntry {
                machine: machine_name,
                fingerprint,
                stage,
                rows: t.rows,
                cols: t.cols,
                k_chunk: t.k_chunk,
                dot: t.dot,
                predicted,
                simulated: cycles,
                untuned,
                sample: kept,
                k_sample: k_kept,
            }),
        }
        stages.push(StageReport {
            stage: i,
            key,
            tried,
            chosen,
            sample: kept,
            k_sample: k_kept,
            same_as: None,
            bound_by: None,
        });
    }
    // The kernel whole, when it is small enough and a stage timed alone
    // is not the kernel: should the winners make it slower together, the
    // scheduler's choices stay and nothing is recorded.
    let mut kernel_cycles = None;
    let mut rejected_cycles = None;
    let changed = stages.iter().any(|s| s.chosen != 0);
    if whole
        && changed
        && (plan.stages.len() > 1
            || stages
                .iter()
                .any(|s| s.sample.is_some() || s.k_sample.is_some()))
    {
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
            (u, t) => {
                rejected_cycles = Some(t);
                entries.clear();
                vectors.clear();
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
        rejected_cycles,
        seconds: start.elapsed().as_secs_f64(),
        entries,
        vectors,
    })
}

/// The candidates `tune` simulates for matmul `mm` (of geometry `g`), the
/// scheduler's own first, with their predicted cycles: its `top` cheapest,
/// and of a cube matmul the scheduler's choice in its other tile orders
/// (up to [`ORDER_VARIANTS`]), each at most [`CLOSE`] dearer than the
/// cheapest; of a vector matmul also the cheapest of the other form at
/// most [`OTHER_FORM`] dearer.
fn candidates(mm: &MatMul, g: &Geometry, machine: &Machine, top: usize) -> Vec<(f64, Candidate)> {
    // Stable sorts: equal estimates keep the scheduler's order, so the
    // first is the scheduler's own choice.
    if let MatMulSchedule::Vector(_) = mm.schedule {
        let mut cands = vector_candidates(g, machine);
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        let Some((cheapest, own)) = cands.first().cloned() else {
            return Vec::new();
        };
        let other = cands.iter().find(|(_, t)| t.dot != own.dot).cloned();
        cands.truncate(top.max(1));
        cands.retain(|(c, _)| *c <= cheapest * CLOSE);
        if let Some((c, t)) = other
            && c <= cheapest * OTHER_FORM
            && !cands.iter().any(|(_, u)| *u == t)
        {
            cands.push((c, t));
        }
        return cands
            .into_iter()
            .map(|(c, t)| (c, Candidate::Vector(t)))
            .collect();
    }
    let mut cands = cube_candidates(g, machine);
    cands.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Then the scheduler's choice in its other tile orders (up to 3):
    // the order's model is the coarsest part.
    let first = cands.first().map(|(_, t)| t.clone());
    let orders: Vec<(f64, CubeSchedule)> = first
        .iter()
        .filter(|t| !t.a_panel)
        .flat_map(|t| {
            tile_orders(g, t.base_m, t.base_n, machine)
                .into_iter()
                .filter(|&gr| gr != t.group_m)
                .take(ORDER_VARIANTS)
                .map(|gr| {
                    let v = CubeSchedule {
                        group_m: gr,
                        ..t.clone()
                    };
                    (cube_cost(g, &v, machine), v)
                })
        })
        .collect();
    cands.truncate(top.max(1));
    cands.extend(orders);
    // Only those the cost model finds close to its cheapest.
    let cheapest = cands.first().map_or(0.0, |(c, _)| *c);
    cands.retain(|(c, _)| *c <= cheapest * CLOSE);
    cands
        .into_iter()
        .map(|(c, t)| (c, Candidate::Cube(t)))
        .collect()
}

impl Report {
    /// The report as a table.
    pub fn table(&self) -> String {
        let whole = match (self.kernel_cycles, self.rejected_cycles) {
            (Some([a, _]), Some(Some(r))) => format!(
                "the kernel {a} cycles with the scheduler's choices, {r} with the fastest of each stage alone: the scheduler's stay"
            ),
            (Some([a, _]), Some(None)) => format!(
                "the kernel {a} cycles with the scheduler's choices; the fastest of each stage alone do not generate together: the scheduler's stay"
            ),
            (Some([a, b]), None) => format!(
                "the kernel {a} -> {b} cycles ({:.3}x)",
                a as f64 / b.max(1) as f64
            ),
            (None, _) => "each alone; `bench --tuning FILE` times the kernel".into(),
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
            let mut on: Vec<String> = Vec::new();
            if let Some([keep, of]) = st.sample {
                on.push(format!(
                    "{keep} of the {of} items of its outermost batch dim"
                ));
            }
            if let Some([keep, of]) = st.k_sample {
                on.push(format!("the first {keep} of its K of {of}"));
            }
            let on = if on.is_empty() {
                String::new()
            } else {
                format!(" (on a sample: {})", on.join(", "))
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
