//! The driver: run a program on named input tensors.
//!
//! [`run`] lays out GM (each parameter, then each result, then the workspace,
//! each region 4 KiB aligned from [`crate::exec::GM_BASE`]), copies the inputs
//! in (results and workspace start zeroed), runs the [`crate::timing`] engine
//! once per launch, in order, on that one GM image (and one L2 first-touch
//! state, so lines warmed by a launch hit in the next), and returns the
//! outputs, a [`Report`] summed over the launches and optionally the timeline
//! and its Chrome trace JSON — or a [`Fault`] naming the launch that faulted,
//! which ends the run. In timing-only mode no memory is
//! allocated, inputs may be omitted, scalar loads read zero, and no outputs are
//! returned; control flow must then not depend on tensor data.

use crate::exec::{GM_BASE, GmMem, Region};
use crate::fault::Fault;
use crate::isa::{Dt, Pipe};
use crate::machine::Machine;
use crate::machine::PathId;
use crate::program::Program;
use crate::report::{LaunchReport, PathBytes, PipeReport, Report};
use crate::timing::gm::Lines;
use crate::timing::trace::{LaunchMark, Timeline};
use crate::timing::{Engine, EngineOptions, Measured};
use std::collections::HashMap;
use std::fmt;

/// A tensor: raw little-endian element bytes (bool: one byte, 0 or 1; bf16: its bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// Element type.
    pub dtype: Dt,
    /// Shape.
    pub shape: Vec<u64>,
    /// `elements × dtype.size()` bytes.
    pub data: Vec<u8>,
}

/// Run options.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Skip numerics (no memory, no outputs).
    pub timing_only: bool,
    /// Run the race detector (default on).
    pub race_detection: bool,
    /// Fault once the program's cycles (launch costs and spans) pass this
    /// many in all (default 10^10).
    pub cycle_limit: u64,
    /// Record the timeline and produce Chrome trace JSON.
    pub trace: bool,
    /// Fault past this many steps (scalar instructions and pipe events) in
    /// all; `None`: [`default_step_limit`] of the program.
    pub step_limit: Option<u64>,
    /// Fault past this much functional work in all (multiply-adds, vector
    /// lane operations, bytes moved / 16); `None`: [`default_work_limit`]
    /// of the program.
    pub work_limit: Option<u64>,
    /// Stop with fault `E0713` soon after this flag is set (an embedding
    /// caller's Ctrl-C); checked every few thousand steps, so setting it
    /// never changes what a run that finishes computes.
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// GM that starts in L2, as if an earlier launch had touched it: its
    /// first touches cost no HBM. A caller timing one stage of a kernel
    /// alone warms what the kernel's earlier stages touch (default none).
    pub warm: Vec<Warm>,
}

/// GM that a run starts with in L2 ([`RunOptions::warm`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warm {
    /// The i-th parameter, whole.
    Param(usize),
    /// The i-th result, whole.
    Result(usize),
    /// The workspace's bytes `[offset, offset + bytes)` (as far as it goes).
    Workspace {
        /// First byte.
        offset: u64,
        /// Bytes.
        bytes: u64,
    },
}

/// The default step limit of a program whose tensors and workspace take
/// `gm_bytes`: 2^24 steps plus 64 per byte. It bounds the host's time for
/// a program that loops while issuing work (a core that loops without
/// issuing work meets [`MAX_SPIN`] long before). Compiled kernels take far
/// fewer: the suite's densest, an f32 GEMM on the vector unit (2048³ on
/// 910-like), takes 15 steps per byte; that density grows with the square
/// root of its size and reaches 64 at about 8192³, which takes an hour to
/// simulate (`RunOptions::step_limit` lifts the limit).
///
/// [`MAX_SPIN`]: crate::timing::MAX_SPIN
pub fn default_step_limit(gm_bytes: u64) -> u64 {
    (1u64 << 24).saturating_add(gm_bytes.saturating_mul(64))
}

/// The largest default functional work limit: 2^37 units. The largest
/// matmul whose three tensors each fit the CLI's host limit (2^24 elements)
/// takes 2^36 multiply-adds; twice that leaves room for the rest of its data
/// work.
pub const MAX_WORK: u64 = 1 << 37;

/// The default functional work limit of a program whose tensors and
/// workspace take `gm_bytes`: 2^26 units plus 4 096 per byte, at most
/// [`MAX_WORK`]. Work grows with a program's data: an f16 matmul's
/// multiply-adds per byte of its three tensors, `MNK / 2(MK + KN + MN)`,
/// are at most `(MNK)^⅓ / 6`, 683 when each tensor holds the CLI's 2^24
/// elements (`4096³`; 1 024 with an operand shared across a batch), and a
/// vector stage's lane operations are a few dozen per byte. So a small
/// program that loops on heavy instructions (a full-width `vec.exp` takes
/// the host nanoseconds a lane) faults within seconds, where 2^37 units took
/// minutes.
pub fn default_work_limit(gm_bytes: u64) -> u64 {
    (1u64 << 26)
        .saturating_add(gm_bytes.saturating_mul(4096))
        .min(MAX_WORK)
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timing_only: false,
            race_detection: true,
            cycle_limit: 10_000_000_000,
            trace: false,
            step_limit: None,
            work_limit: None,
            interrupt: None,
            warm: Vec::new(),
        }
    }
}

/// A successful run.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Results by name, in signature order (empty in timing-only mode).
    pub outputs: Vec<(String, Tensor)>,
    /// What was measured.
    pub report: Report,
    /// The timeline (with `trace`).
    pub timeline: Option<Timeline>,
    /// Chrome trace-event JSON (with `trace`).
    pub trace_json: Option<String>,
}

/// Why a run did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The inputs do not match the signature, or the program does not fit the
    /// machine (codes from the registry: E0503, E0602, E0603, E0605, E0903).
    Input {
        /// Code.
        code: &'static str,
        /// Message naming the input.
        message: String,
    },
    /// The simulated machine faulted (exit code 3).
    Fault(Box<Fault>),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Input { code, message } => write!(f, "error[{code}]: {message}"),
            RunError::Fault(fault) => write!(f, "{fault}"),
        }
    }
}

impl std::error::Error for RunError {}

/// The largest GM (all tensors and the workspace) a timing-only run accepts.
pub const MAX_RUN_GM: u64 = 64 << 30;
/// The largest GM a functional run accepts (it is allocated).
pub const MAX_FUNCTIONAL_GM: u64 = 512 << 20;

fn input_err(code: &'static str, message: String) -> RunError {
    RunError::Input { code, message }
}

/// Runs `program` on `machine` with `inputs` (one per parameter, by name).
pub fn run(
    machine: &Machine,
    program: &Program,
    inputs: &[(String, Tensor)],
    opts: &RunOptions,
) -> Result<RunOutput, RunError> {
    if program.fingerprint != machine.fingerprint() {
        return Err(input_err(
            "E0903",
            format!(
                "the program was built for machine `{}`, not for `{}` (fingerprints differ)",
                program.machine, machine.name
            ),
        ));
    }
    program
        .validate(machine)
        .map_err(|(_, m)| input_err("E0907", m))?;
    // Inputs.
    for (name, _) in inputs {
        if !program.params.iter().any(|p| &p.name == name) {
            return Err(input_err(
                "E0605",
                format!(
                    "input `{name}` names no parameter of kernel `{}`",
                    program.kernel
                ),
            ));
        }
        if inputs.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(input_err("E0605", format!("input `{name}` is given twice")));
        }
    }
    let functional = !opts.timing_only;
    for p in &program.params {
        match inputs.iter().find(|(n, _)| n == &p.name) {
            None if functional => {
                return Err(input_err(
                    "E0605",
                    format!("missing input `{}` ({})", p.name, p.type_text()),
                ));
            }
            None => {}
            Some((_, t)) => {
                if t.dtype != p.dtype {
                    return Err(input_err(
                        "E0602",
                        format!(
                            "input `{}` is {} but the parameter is {}",
                            p.name,
                            t.dtype.tensor_name(),
                            p.type_text()
                        ),
                    ));
                }
                if t.shape != p.shape {
                    return Err(input_err(
                        "E0603",
                        format!(
                            "input `{}` has shape {:?} but the parameter is {}",
                            p.name,
                            t.shape,
                            p.type_text()
                        ),
                    ));
                }
                if t.data.len() as u64 != p.bytes() {
                    return Err(input_err(
                        "E0603",
                        format!(
                            "input `{}` holds {} bytes, expected {}",
                            p.name,
                            t.data.len(),
                            p.bytes()
                        ),
                    ));
                }
            }
        }
    }
    // GM layout.
    let mut regions = Vec::new();
    let mut at = GM_BASE;
    for t in program.args() {
        let b = t.bytes().max(1);
        regions.push(Region {
            start: at,
            end: at + t.bytes(),
            name: t.name.clone(),
        });
        at = (at + b).div_ceil(4096) * 4096;
    }
    regions.push(Region {
        start: at,
        end: at + program.workspace,
        name: "workspace".into(),
    });
    let total = at + program.workspace - GM_BASE;
    let cap = if functional {
        MAX_FUNCTIONAL_GM
    } else {
        MAX_RUN_GM
    };
    if total > cap {
        return Err(input_err(
            "E0503",
            format!(
                "the kernel's tensors and workspace need {total} bytes of GM; the simulator accepts at most {cap} in this mode"
            ),
        ));
    }
    let mut gm = GmMem {
        regions,
        data: None,
    };
    if functional {
        let mut data = vec![0u8; total as usize];
        for (i, p) in program.params.iter().enumerate() {
            if let Some((_, t)) = inputs.iter().find(|(n, _)| n == &p.name) {
                let off = (gm.regions[i].start - GM_BASE) as usize;
                data[off..off + t.data.len()].copy_from_slice(&t.data);
            }
        }
        gm.data = Some(data);
    }
    // The launches, in order, on one GM image and one L2 first-touch state.
    let launch = machine.launch.launch_cycles;
    let mut lines = Lines::new(GM_BASE, total, machine.gm.line_bytes);
    let ws = &gm.regions[gm.regions.len() - 1];
    for w in &opts.warm {
        let (lo, hi) = match *w {
            Warm::Param(i) => gm
                .regions
                .get(i)
                .filter(|_| i < program.params.len())
                .map_or((0, 0), |r| (r.start, r.end)),
            Warm::Result(i) => gm
                .regions
                .get(program.params.len() + i)
                .filter(|_| i < program.results.len())
                .map_or((0, 0), |r| (r.start, r.end)),
            Warm::Workspace { offset, bytes } => {
                let lo = ws.start.saturating_add(offset).min(ws.end);
                (lo, lo.saturating_add(bytes).min(ws.end))
            }
        };
        lines.touch(lo, hi);
    }
    let mut timeline = opts.trace.then(Timeline::default);
    let mut names: Vec<String> = Vec::new();
    let mut sum = Sum::default();
    let mut launches = Vec::new();
    let step_limit = opts.step_limit.unwrap_or_else(|| default_step_limit(total));
    let work_limit = opts.work_limit.unwrap_or_else(|| default_work_limit(total));
    for li in 0..program.launches.len() {
        let eo = EngineOptions {
            functional,
            races: opts.race_detection,
            cycle_limit: opts.cycle_limit,
            cycles_before: sum.cycles.saturating_add(launch),
            trace: opts.trace,
            step_limit: step_limit.saturating_sub(sum.steps),
            steps_before: sum.steps,
            work_limit: work_limit.saturating_sub(sum.work),
            interrupt: opts.interrupt.clone(),
        };
        let engine = Engine::new(machine, program, li, eo, gm, lines);
        let (mut measured, g, l) = engine.run().map_err(RunError::Fault)?;
        (gm, lines) = (g, l);
        let block_dim = program.launches[li].block_dim;
        if let Some(tl) = timeline.as_mut() {
            if let Some(t) = measured.timeline.take() {
                tl.append(t, &measured.core_names, &mut names, sum.cycles);
            }
            tl.launches.push(LaunchMark {
                block_dim,
                waves: measured.waves,
                start: sum.cycles,
                launch_cycles: launch,
                span: measured.span,
            });
        }
        launches.push(LaunchReport {
            block_dim,
            waves: measured.waves,
            cycles: launch + measured.span,
        });
        sum.add(&measured, launch, block_dim);
    }
    // Outputs.
    let mut outputs = Vec::new();
    if let Some(data) = &gm.data {
        for (i, r) in program.results.iter().enumerate() {
            let reg = &gm.regions[program.params.len() + i];
            let off = (reg.start - GM_BASE) as usize;
            outputs.push((
                r.name.clone(),
                Tensor {
                    dtype: r.dtype,
                    shape: r.shape.clone(),
                    data: data[off..off + r.bytes() as usize].to_vec(),
                },
            ));
        }
    }
    let order = [
        Pipe::Mte2,
        Pipe::Mte1,
        Pipe::M,
        Pipe::V,
        Pipe::Mte3,
        Pipe::Fix,
        Pipe::S,
    ];
    // cli.md's six pipes always (0 on a kind of core no block ran on), and
    // FIX where a core that ran has it.
    let pipes = order
        .iter()
        .filter(|p| sum.cores_with[p.index()] > 0 || **p != Pipe::Fix)
        .map(|p| {
            let i = p.index();
            PipeReport {
                pipe: p.report_name().to_string(),
                busy_cycles: sum.busy[i],
                cores: sum.cores_with[i],
                utilisation: if sum.capacity[i] > 0.0 {
                    sum.busy[i] as f64 / sum.capacity[i]
                } else {
                    0.0
                },
            }
        })
        .collect();
    let bytes = PathId::ALL
        .iter()
        .filter(|p| p.params(machine).is_some())
        .map(|p| PathBytes {
            path: p.name().to_string(),
            bytes: sum.bytes.get(p).copied().unwrap_or(0),
        })
        .collect();
    let report = Report {
        machine: machine.name.clone(),
        kernel: program.kernel.clone(),
        block_dim: sum.block_dim,
        waves: sum.waves,
        cycles: sum.cycles,
        launch_cycles: sum.launch_cycles,
        micros: sum.cycles as f64 / (machine.clock_ghz * 1000.0),
        pipes,
        bytes,
        hbm_bytes: sum.hbm,
        cube_flops: sum.cube_flops,
        vector_flops: sum.vec_flops,
        instructions: sum.insns,
        timing_only: opts.timing_only,
        launches,
    };
    let trace_json = timeline
        .as_ref()
        .map(|t| t.to_chrome_json(&names, machine.clock_ghz, launch));
    Ok(RunOutput {
        outputs,
        report,
        timeline,
        trace_json,
    })
}

/// The report's totals, accumulated launch by launch.
#[derive(Default)]
struct Sum {
    /// Σ (launch cost + span): also the program cycle at which the next launch begins.
    cycles: u64,

    launch_cycles: u64,
    block_dim: u32,
    waves: u32,
    busy: [u64; 7],
    /// The most cores with the pipe in any launch.
    cores_with: [u32; 7],
    /// Σ cores with the pipe × span (the utilisation's denominator).
    capacity: [f64; 7],
    bytes: HashMap<PathId, u64>,
    hbm: u64,
    cube_flops: u64,
    vec_flops: u64,
    insns: u64,
    steps: u64,
    work: u64,
}

impl Sum {
    fn add(&mut self, m: &Measured, launch: u64, block_dim: u32) {
        self.cycles = self.cycles.saturating_add(launch + m.span);
        self.launch_cycles += launch;
        self.block_dim = self.block_dim.saturating_add(block_dim);
        self.waves = self.waves.saturating_add(m.waves);
        let span = m.span.max(1) as f64;
        for i in 0..7 {
            self.busy[i] += m.busy[i];
            self.cores_with[i] = self.cores_with[i].max(m.cores_with[i]);
            if m.cores_with[i] > 0 {
                self.capacity[i] += f64::from(m.cores_with[i]) * span;
            }
        }
        for (p, b) in &m.bytes {
            *self.bytes.entry(*p).or_default() += b;
        }
        self.hbm += m.hbm;
        self.cube_flops += m.cube_flops;
        self.vec_flops += m.vec_flops;
        self.insns += m.insns;
        self.steps += m.steps;
        self.work += m.work;
    }
}
