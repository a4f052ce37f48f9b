//! `tessera bench`: compile a kernel, simulate it (timing only) and measure
//! it against the roofline of machine.md.
//!
//! The bound is `launch + max(cube, vector, GM)`: cube MACs per dtype over
//! every matmul of the IR; the minimal vector work — each vector op of the
//! IR once over its elements at full 256-byte repeats and the per-repeat
//! cost of its least primitive sequence (a reduction: block by block, then
//! an eighth of the repeats across); and GM bytes for reading each input
//! once and writing each output once. `efficiency = bound / simulated
//! cycles`.

use crate::cost::{Work, bytes, node_work};
use crate::driver::{self, Failure, Source};
use serde::Serialize;
use std::time::Instant;
use tessera_ir::{Kernel, TensorType};
use tessera_sim::Machine;

/// What `bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// Kernel name.
    pub kernel: String,
    /// Machine name.
    pub machine: String,
    /// Simulated cycles.
    pub cycles: u64,
    /// Simulated time at the machine's clock.
    pub micros: f64,
    /// The roofline bound in cycles.
    pub bound: f64,
    /// Which term bounds it: `cube`, `vector` or `gm`.
    pub bound_by: String,
    /// `bound / cycles`.
    pub efficiency: f64,
    /// Cube MACs of the kernel.
    pub cube_macs: u64,
    /// Minimal vector cycles (all cores together).
    pub vector_cycles_min: f64,
    /// Minimal GM bytes.
    pub gm_bytes_min: u64,
    /// Number of stages (launches).
    pub stages: usize,
    /// Host time to optimise, plan and generate, in milliseconds: the
    /// median of three compiles.
    pub compile_ms: f64,
    /// What the optimiser did.
    pub optimiser: OptSummary,
    /// Per stage: the cost model's prediction against the simulated cycles.
    pub per_stage: Vec<StageFigures>,
    /// The simulator's report.
    pub report: tessera_sim::Report,
    /// Tuning entries that matched a stage but were not used, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The roofline inputs of a kernel: cube MACs per dtype, minimal vector
/// cycles, minimal GM bytes.
pub fn roofline_inputs(k: &Kernel, m: &Machine) -> (Vec<(tessera_sim::Dt, u64)>, f64, u64) {
    let mut work = Work::default();
    for n in &k.nodes {
        let args: Vec<&TensorType> = n.args.iter().map(|&a| k.ty(a)).collect();
        work.add(&node_work(&n.op, &args, &n.ty, m));
    }
    let gm: u64 = k
        .params
        .iter()
        .map(|p| bytes(&p.ty))
        .chain(k.outputs.iter().map(|o| bytes(k.ty(o.value))))
        .sum();
    (work.macs, work.vector, gm)
}

/// A kernel's roofline bound on a machine: its cycles (launch included) and
/// which term sets it (`cube`, `vector` or `gm`).
pub fn roofline(k: &Kernel, m: &Machine) -> (f64, &'static str) {
    let (macs, vector, gm) = roofline_inputs(k, m);
    let bound = m.roofline(&macs, vector, gm);
    let cube_only = m.roofline(&macs, 0.0, 0);
    let vec_only = m.roofline(&[], vector, 0);
    let gm_only = m.roofline(&[], 0.0, gm);
    let by = if cube_only >= vec_only && cube_only >= gm_only {
        "cube"
    } else if vec_only >= gm_only {
        "vector"
    } else {
        "gm"
    };
    (bound, by)
}

/// One launch's stages with their predicted and simulated cycles (launch
/// cost included): one stage, or a matmul and the vector stage joined to
/// it (then no prediction).
#[derive(Clone, Debug, Serialize)]
pub struct StageFigures {
    /// The stage kind (`elementwise`, `rows`, `matmul`, …; joined stages'
    /// kinds with `+`, in stage order: `matmul+rows`).
    pub kind: String,
    /// The IR nodes it computes.
    pub nodes: Vec<usize>,
    /// The optimiser's cost model, when the stage is one of its groups or
    /// ops (not a copy the planner added).
    pub predicted: Option<f64>,
    /// The simulator's cycles of the launch.
    pub simulated: u64,
}

/// The optimiser's figures for one compile.
#[derive(Clone, Debug, Serialize)]
pub struct OptSummary {
    /// `-O0`, `-O1` or `-O2`.
    pub level: String,
    /// Most e-nodes of any phase's e-graph.
    pub egraph_nodes: usize,
    /// Iterations over all phases.
    pub iterations: usize,
    /// Fused groups in the result.
    pub groups: usize,
    /// The cost model's cycles for the result and for the kernel as written.
    pub cost: f64,
    /// The cost model's cycles for the kernel as written.
    pub cost_o0: f64,
    /// Whether a phase stopped at a limit.
    pub limited: bool,
}

impl OptSummary {
    fn of(r: &crate::opt::Report) -> OptSummary {
        OptSummary {
            level: r.level.flag().to_string(),
            egraph_nodes: r.phases.iter().map(|p| p.nodes).max().unwrap_or(0),
            iterations: r.phases.iter().map(|p| p.iterations).sum(),
            groups: r.groups,
            cost: r.cost,
            cost_o0: r.cost_o0,
            limited: r.phases.iter().any(|p| p.limited),
        }
    }
}

/// Compiles timed for [`BenchResult::compile_ms`], the median taken.
const COMPILES: usize = 3;

/// Compiles and simulates (timing only, race detection off) one kernel.
pub fn bench(
    kernel: &Kernel,
    machine: &Machine,
    src: &Source,
    level: crate::opt::Level,
    tuning: &crate::tune::Tuning,
) -> Result<BenchResult, Failure> {
    bench_with(kernel, machine, src, level, tuning, None)
}

/// [`bench()`], its simulation stopped (fault `E0713`) once `interrupt` is
/// set: how an embedding caller (Python's Ctrl-C) stops a long one.
pub fn bench_with(
    kernel: &Kernel,
    machine: &Machine,
    src: &Source,
    level: crate::opt::Level,
    tuning: &crate::tune::Tuning,
    interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
) -> Result<BenchResult, Failure> {
    // The compile time is the median of three compiles (they give the
    // same code): one wall-clock sample is at the host's mercy.
    let timed = || {
        let start = Instant::now();
        driver::compile_npu_tuned(kernel, machine, src, level, tuning)
            .map(|out| (out, start.elapsed().as_secs_f64() * 1e3))
    };
    let ((code, notes), first) = timed()?;
    let mut times = vec![first];
    for _ in 1..COMPILES {
        times.push(timed()?.1);
    }
    times.sort_by(f64::total_cmp);
    let compile_ms = times[COMPILES / 2];
    let opts = tessera_sim::RunOptions {
        timing_only: true,
        race_detection: false,
        interrupt,
        ..tessera_sim::RunOptions::default()
    };
    let out =
        tessera_sim::run(machine, &code.program, &[], &opts).map_err(crate::simulate::run_error)?;
    let (macs, vector, gm) = roofline_inputs(kernel, machine);
    let (bound, bound_by) = roofline(kernel, machine);
    let cycles = out.report.cycles;
    Ok(BenchResult {
        kernel: kernel.name.clone(),
        machine: machine.name.clone(),
        cycles,
        micros: out.report.micros,
        bound,
        bound_by: bound_by.to_string(),
        efficiency: bound / cycles.max(1) as f64,
        cube_macs: macs.iter().map(|(_, m)| m).sum(),
        vector_cycles_min: vector,
        gm_bytes_min: gm,
        stages: code.plan.stages.len(),
        compile_ms,
        optimiser: OptSummary::of(&code.report),
        per_stage: tessera_backend::npu::launch_stages(&code.plan)
            .iter()
            .zip(&out.report.launches)
            .map(|(group, l)| {
                let stages: Vec<_> = group.iter().map(|&i| &code.plan.stages[i]).collect();
                // A node planned as several stages (reduction runs, copies)
                // has no one prediction; nor has a launch of joined stages.
                let alone = match group.as_slice() {
                    [i] => code.plan.stages.iter().enumerate().all(|(j, o)| {
                        j == *i || o.nodes.iter().all(|n| !stages[0].nodes.contains(n))
                    }),
                    _ => false,
                };
                let kinds: Vec<&str> = stages.iter().map(|st| st.kind.name()).collect();
                let nodes: Vec<usize> = stages.iter().flat_map(|st| st.nodes.clone()).collect();
                StageFigures {
                    kind: kinds.join("+"),
                    predicted: alone
                        .then(|| crate::opt::extract::stage_cost(&code.kernel, &nodes, machine))
                        .flatten(),
                    nodes,
                    simulated: l.cycles,
                }
            })
            .collect(),
        report: out.report,
        notes,
    })
}

impl BenchResult {
    /// The result as a text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "bench {} on {}: {} stage{}, compiled in {:.1} ms\n",
            self.kernel,
            self.machine,
            self.stages,
            if self.stages == 1 { "" } else { "s" },
            self.compile_ms
        ));
        s.push_str(&format!(
            "cycles {}  ({:.3} us)\nbound  {:.0} ({}-bound: cube MACs {}, vector cycles {:.0}, GM bytes {})\nefficiency {:.4}\n",
            self.cycles, self.micros, self.bound, self.bound_by, self.cube_macs, self.vector_cycles_min, self.gm_bytes_min, self.efficiency
        ));
        let o = &self.optimiser;
        s.push_str(&format!(
            "optimiser {}: {} fused group(s), e-graph {} e-nodes, {} iteration(s){}; model {:.0} cycles (as written {:.0})\n",
            o.level,
            o.groups,
            o.egraph_nodes,
            o.iterations,
            if o.limited { " (a phase hit its limit)" } else { "" },
            o.cost,
            o.cost_o0
        ));
        s.push_str(&self.report.table());
        s
    }
}
