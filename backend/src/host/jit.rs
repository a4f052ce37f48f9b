//! The Cranelift JIT: one module per kernel, the math functions it links,
//! and the one call into the generated code.

use super::HostError;
use super::elem::MATH;
use super::module::{codegen, define_stages, isa};
use super::schedule::schedule;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, default_libcall_names};
use tessera_ir::{Kernel, Tensor};

// The math functions, linked by name: the JIT resolves them to these
// (Rust's f64 methods and `libm::erf`, the reference's own), an object file
// to the C library's.
extern "C" fn m_exp(x: f64) -> f64 {
    x.exp()
}
extern "C" fn m_log(x: f64) -> f64 {
    x.ln()
}
extern "C" fn m_tanh(x: f64) -> f64 {
    x.tanh()
}
extern "C" fn m_sin(x: f64) -> f64 {
    x.sin()
}
extern "C" fn m_cos(x: f64) -> f64 {
    x.cos()
}
extern "C" fn m_erf(x: f64) -> f64 {
    libm::erf(x)
}
extern "C" fn m_pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

fn symbols() -> [*const u8; 7] {
    [
        m_exp as *const u8,
        m_log as *const u8,
        m_tanh as *const u8,
        m_sin as *const u8,
        m_cos as *const u8,
        m_erf as *const u8,
        m_pow as *const u8,
    ]
}

/// The JIT module that owns a kernel's code. After `finalize_definitions`
/// it is never used again, only kept alive and dropped.
struct Code(#[allow(dead_code)] JITModule);

// SAFETY: `JITModule` is neither `Send` nor `Sync` because it holds raw
// pointers to its code memory and a `RefCell` of symbols. `Code` keeps the
// module only so that the memory lives as long as the kernel: nothing reads
// the module or borrows its cells after construction, and the finalized
// code it owns is immutable, so moving it to or sharing it between threads
// (an embedding caller's thread pool) cannot race.
#[allow(unsafe_code)]
unsafe impl Send for Code {}
#[allow(unsafe_code)]
unsafe impl Sync for Code {}

/// A kernel compiled for the host, ready to run (from any thread).
pub struct HostKernel {
    // Owns the code the stage entries point into.
    _module: Code,
    /// Each stage's function and the extent of its outermost axis.
    stages: Vec<(usize, u64)>,
    work_bytes: u64,
    /// Small enough to run on the calling thread: the parallel split's
    /// own cost (microseconds) would exceed the work.
    serial: bool,
    kernel: Kernel,
    clif: String,
}

/// Kernels whose tensors take at most this many bytes in all, and that do
/// no matrix multiply, run on the calling thread (results are the same bits
/// either way: the split never changes what an element computes).
const SERIAL_BYTES: u64 = 64 * 1024;

/// Bytes of a packed tensor of type `ty` (its buffers' size).
fn packed_bytes(ty: &tessera_ir::TensorType) -> usize {
    ty.shape.num_elements().unwrap_or(0) as usize * ty.dtype.size_bytes()
}

fn is_small(kernel: &Kernel) -> bool {
    let total = kernel
        .params
        .iter()
        .map(|p| packed_bytes(&p.ty))
        .chain(
            kernel
                .outputs
                .iter()
                .map(|o| packed_bytes(kernel.ty(o.value))),
        )
        .fold(0usize, usize::saturating_add);
    total as u64 <= SERIAL_BYTES
        && !kernel
            .nodes
            .iter()
            .any(|n| matches!(n.op, tessera_ir::Op::MatMul))
}

/// The thread pools of `--threads N`, made once per count.
fn pool(n: usize) -> Result<std::sync::Arc<rayon::ThreadPool>, HostError> {
    static POOLS: std::sync::Mutex<Vec<(usize, std::sync::Arc<rayon::ThreadPool>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, p)) = pools.iter().find(|(m, _)| *m == n) {
        return Ok(p.clone());
    }
    let p = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| HostError::Inputs(format!("--threads {n}: {e}")))?,
    );
    pools.push((n, p.clone()));
    Ok(p)
}

impl HostKernel {
    /// Compiles a verified kernel with concrete dims.
    pub fn compile(kernel: &Kernel) -> Result<HostKernel, HostError> {
        let sched = schedule(kernel)?;
        if sched.work_bytes > super::MAX_WORK_BYTES {
            return Err(HostError::TooLarge {
                bytes: sched.work_bytes,
            });
        }
        let isa = isa(false)?;
        let mut jb = JITBuilder::with_isa(isa, default_libcall_names());
        for ((name, _), f) in MATH.iter().zip(symbols()) {
            jb.symbol(*name, f);
        }
        let mut module = JITModule::new(jb);
        let defined = define_stages(&mut module, kernel, &sched, Linkage::Local)?;
        module.finalize_definitions().map_err(codegen)?;
        let stages = defined
            .stages
            .into_iter()
            .map(|(id, n)| (module.get_finalized_function(id) as usize, n))
            .collect();
        Ok(HostKernel {
            _module: Code(module),
            stages,
            work_bytes: sched.work_bytes,
            serial: is_small(kernel),
            kernel: kernel.clone(),
            clif: defined.clif,
        })
    }

    /// The Cranelift IR of the kernel's stage functions (`--emit clif`).
    pub fn clif(&self) -> &str {
        &self.clif
    }

    /// The number of stages (loop nests).
    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    /// Runs the kernel on inputs in parameter order, on `threads` threads
    /// (`None`: every core). The results are the same bits for any count.
    pub fn run(&self, inputs: &[Tensor], threads: Option<usize>) -> Result<Vec<Tensor>, HostError> {
        let (_, outs) = self.execute(inputs, threads, 1)?;
        let k = &self.kernel;
        k.outputs
            .iter()
            .zip(&outs)
            .map(|(o, bytes)| {
                let ty = k.ty(o.value);
                let shape = ty.shape.as_usize().unwrap_or_default();
                Tensor::from_le_bytes(ty.dtype, shape, bytes)
                    .map_err(|e| HostError::Codegen(format!("a result's bytes: {e:?}")))
            })
            .collect()
    }

    /// Runs the kernel `reps` times on the same buffers and returns the
    /// wall-clock seconds of each run of the compiled code (the inputs'
    /// conversion to and from packed bytes is outside).
    pub fn time(
        &self,
        inputs: &[Tensor],
        threads: Option<usize>,
        reps: usize,
    ) -> Result<Vec<f64>, HostError> {
        Ok(self.execute(inputs, threads, reps.max(1))?.0)
    }

    /// Runs the kernel on inputs given as packed little-endian bytes (each
    /// parameter's elements in row-major order, as `Tensor::to_le_bytes`
    /// makes them) and writes the results into `outputs`, sized the same
    /// way. Nothing is copied: the compiled code reads and writes these
    /// buffers in place (an embedding caller's arrays). A length that does
    /// not match its type is an error before anything runs.
    pub fn run_packed(
        &self,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        threads: Option<usize>,
    ) -> Result<(), HostError> {
        let k = &self.kernel;
        if inputs.len() != k.params.len() || outputs.len() != k.outputs.len() {
            return Err(HostError::Inputs(format!(
                "kernel `{}` takes {} inputs and {} results, not {} and {}",
                k.name,
                k.params.len(),
                k.outputs.len(),
                inputs.len(),
                outputs.len()
            )));
        }
        for (p, b) in k.params.iter().zip(inputs) {
            if b.len() != packed_bytes(&p.ty) {
                return Err(HostError::Inputs(format!(
                    "input `{}` has {} bytes, but {} takes {}",
                    p.name,
                    b.len(),
                    p.ty,
                    packed_bytes(&p.ty)
                )));
            }
        }
        for (o, b) in k.outputs.iter().zip(outputs.iter()) {
            let ty = k.ty(o.value);
            if b.len() != packed_bytes(ty) {
                return Err(HostError::Inputs(format!(
                    "result `{}` has {} bytes, but {ty} takes {}",
                    o.name,
                    b.len(),
                    packed_bytes(ty)
                )));
            }
        }
        let params: Vec<usize> = inputs.iter().map(|b| b.as_ptr() as usize).collect();
        let results: Vec<usize> = outputs
            .iter_mut()
            .map(|b| b.as_mut_ptr() as usize)
            .collect();
        self.launch(&params, &results, threads, 1).map(|_| ())
    }

    /// Packs the inputs, runs the stages `reps` times and returns each
    /// run's seconds and the packed results.
    fn execute(
        &self,
        inputs: &[Tensor],
        threads: Option<usize>,
        reps: usize,
    ) -> Result<(Vec<f64>, Vec<Vec<u8>>), HostError> {
        let k = &self.kernel;
        tessera_ir::interp::check_inputs(k, inputs).map_err(HostError::Inputs)?;
        let ins: Vec<Vec<u8>> = inputs.iter().map(Tensor::to_le_bytes).collect();
        let mut outs: Vec<Vec<u8>> = k
            .outputs
            .iter()
            .map(|o| {
                let ty = k.ty(o.value);
                vec![0u8; packed_bytes(ty)]
            })
            .collect();
        let params: Vec<usize> = ins.iter().map(|b| b.as_ptr() as usize).collect();
        let results: Vec<usize> = outs.iter_mut().map(|b| b.as_mut_ptr() as usize).collect();
        let secs = self.launch(&params, &results, threads, reps)?;
        Ok((secs, outs))
    }

    /// Runs the stages `reps` times on the buffers at `params` and
    /// `results` (sized by the kernel's types) with a fresh workspace, and
    /// returns each run's seconds.
    fn launch(
        &self,
        params: &[usize],
        results: &[usize],
        threads: Option<usize>,
        reps: usize,
    ) -> Result<Vec<f64>, HostError> {
        let mut work = vec![0u8; self.work_bytes as usize];
        let frame = [
            params.as_ptr() as usize,
            results.as_ptr() as usize,
            work.as_mut_ptr() as usize,
        ];
        let stages = &self.stages;
        let serial = self.serial;
        let go = || {
            let mut secs = Vec::with_capacity(reps);
            for _ in 0..reps {
                let t = std::time::Instant::now();
                let status = if serial {
                    stages
                        .iter()
                        .map(|&(entry, n)| call(entry, frame, 0, n))
                        .find(|&s| s != 0)
                        .unwrap_or(0)
                } else {
                    run_stages(stages, frame)
                };
                secs.push(t.elapsed().as_secs_f64());
                if status != 0 {
                    return Err(status);
                }
            }
            Ok(secs)
        };
        let timed = match threads {
            None => go(),
            Some(_) if serial => go(),
            Some(n) => pool(n.max(1))?.install(go),
        };
        timed.map_err(|status| HostError::DivByZero {
            node: (status - 1) as usize,
        })
    }
}

/// Runs the stages in order, each split over its outermost axis into ranges
/// run in parallel; the lowest failing status, or 0.
fn run_stages(stages: &[(usize, u64)], frame: [usize; 3]) -> i32 {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads() as u64;
    for &(entry, n) in stages {
        let parts = if n < 2 || threads == 1 {
            1
        } else {
            n.min(threads * 4)
        };
        let status = (0..parts)
            .into_par_iter()
            .map(|p| call(entry, frame, n * p / parts, n * (p + 1) / parts))
            .filter(|&s| s != 0)
            .min();
        if let Some(s) = status {
            return s;
        }
    }
    0
}

/// Calls a stage function on the indices `lo..hi` of its outermost axis.
#[allow(unsafe_code)]
fn call(entry: usize, frame: [usize; 3], lo: u64, hi: u64) -> i32 {
    type Entry = unsafe extern "C" fn(usize, usize, usize, i64, i64) -> i32;
    // SAFETY: `entry` is a finalized stage function `lower_stage` built with
    // this signature, and the module that owns it outlives the call. The
    // frame holds the pointer tables of `launch`, whose buffers are sized by
    // the parameter and result types (`run_packed` checks its callers'), and a workspace of the schedule's
    // size; a stage writes only its own values' elements in `lo..hi`, so
    // ranges of one stage running at once touch disjoint bytes.
    unsafe {
        let f: Entry = std::mem::transmute::<usize, Entry>(entry);
        f(frame[0], frame[1], frame[2], lo as i64, hi as i64)
    }
}
