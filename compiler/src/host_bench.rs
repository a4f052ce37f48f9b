//! `tessera bench --target host`: the wall-clock time of the host code on
//! this machine, as the median of repeated runs, with the rates it reaches.
//!
//! The time is the compiled code's alone: inputs are drawn (`--random-inputs
//! --seed 1`) and packed once, then the kernel runs on the same buffers
//! (one warm-up run, then enough runs for about a second, at least 5 and at
//! most 200). GFLOP/s counts 2 flops per multiply-add of the kernel's
//! matmuls; GB/s counts each input read once and each result written once,
//! as the roofline's GM term does.

use crate::driver::{self, Failure};
use crate::inputs;
use serde::Serialize;
use std::time::Instant;
use tessera_ir::{Kernel, Op, Tensor};

/// What `bench --target host` measured.
#[derive(Clone, Debug, Serialize)]
pub struct HostBenchResult {
    /// Kernel name.
    pub kernel: String,
    /// Always `host`.
    pub target: String,
    /// Threads the runs used.
    pub threads: usize,
    /// Stages (loop nests) of the host code.
    pub stages: usize,
    /// Time to optimise and compile, in milliseconds.
    pub compile_ms: f64,
    /// Timed runs.
    pub runs: usize,
    /// Median, fastest and slowest run, in milliseconds.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
    /// 2 × the multiply-adds of the kernel's matmuls.
    pub flops: u64,
    /// `flops / median`, in GFLOP/s.
    pub gflops: f64,
    /// Bytes of the inputs and results.
    pub bytes: u64,
    /// `bytes / median`, in GB/s.
    pub gbps: f64,
}

/// Multiply-adds of a kernel's matmuls.
fn macs(k: &Kernel) -> u64 {
    k.nodes
        .iter()
        .filter(|n| matches!(n.op, Op::MatMul))
        .map(|n| {
            let kk = k
                .ty(n.args[0])
                .shape
                .dims()
                .last()
                .and_then(|d| d.fixed())
                .unwrap_or(0);
            n.ty.shape.num_elements().unwrap_or(0) * kk
        })
        .sum()
}

/// Compiles `kernel` for the host (at `level`) and times it.
pub fn bench_host(
    kernel: &Kernel,
    src: &driver::Source,
    level: crate::opt::Level,
    threads: Option<usize>,
) -> Result<HostBenchResult, Failure> {
    for p in &kernel.params {
        crate::files::check_host_tensor(&format!("parameter `{}`", p.name), &p.ty)?;
    }
    let t = Instant::now();
    let code = driver::compile_host(kernel, level)?;
    let compile_ms = t.elapsed().as_secs_f64() * 1e3;
    let inputs: Vec<Tensor> = kernel
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let shape = p.ty.shape.as_usize().unwrap_or_default();
            inputs::random_tensor(p.ty.dtype, shape, 1, i)
        })
        .collect();
    // A zero divisor in the random inputs is the reference's fault (E0700
    // at the division, exit 3), as on `run --target host`.
    let fault = |e| driver::host_failure(e, &code.kernel, src);
    let warm = code.host.time(&inputs, threads, 1).map_err(fault)?;
    let once = warm.first().copied().unwrap_or(1.0).max(1e-9);
    let reps = ((1.0 / once).ceil() as usize).clamp(5, 200);
    let mut secs = code.host.time(&inputs, threads, reps).map_err(fault)?;
    secs.sort_by(f64::total_cmp);
    let median = secs[secs.len() / 2];
    let flops = 2 * macs(kernel);
    let bytes: u64 = kernel
        .params
        .iter()
        .map(|p| crate::cost::bytes(&p.ty))
        .chain(
            kernel
                .outputs
                .iter()
                .map(|o| crate::cost::bytes(kernel.ty(o.value))),
        )
        .sum();
    Ok(HostBenchResult {
        kernel: kernel.name.clone(),
        target: "host".into(),
        threads: threads.unwrap_or_else(rayon::current_num_threads),
        stages: code.host.stages(),
        compile_ms,
        runs: secs.len(),
        median_ms: median * 1e3,
        min_ms: secs[0] * 1e3,
        max_ms: secs[secs.len() - 1] * 1e3,
        flops,
        gflops: flops as f64 / median / 1e9,
        bytes,
        gbps: bytes as f64 / median / 1e9,
    })
}

impl HostBenchResult {
    /// The human-readable report.
    pub fn table(&self) -> String {
        let mut s = format!(
            "bench {} on host: {} stage(s), {} thread(s), compiled in {:.1} ms\n",
            self.kernel, self.stages, self.threads, self.compile_ms
        );
        s.push_str(&format!(
            "median {} over {} runs (min {}, max {})\n",
            duration(self.median_ms),
            self.runs,
            duration(self.min_ms),
            duration(self.max_ms)
        ));
        if self.flops > 0 {
            s.push_str(&format!(
                "{:.2} GFLOP/s ({} flops: 2 per matmul multiply-add)\n",
                self.gflops, self.flops
            ));
        }
        s.push_str(&format!(
            "{:.2} GB/s ({} bytes: inputs read once, results written once)\n",
            self.gbps, self.bytes
        ));
        s
    }
}
/// A time in milliseconds as text: in µs below a millisecond, so that a
/// small kernel's runs do not print as 0.000.
fn duration(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{:.3} µs", ms * 1000.0)
    }
}
