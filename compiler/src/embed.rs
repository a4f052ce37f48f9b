//! The compiler in-process, for embedding callers (the Python package): a
//! checked source, a kernel bound to concrete dims, and its runs on each
//! target from buffers the caller owns.
//!
//! Buffers are packed: each tensor's elements in row-major order, little
//! endian, as `Tensor::to_le_bytes` makes them (which is also a C-contiguous
//! numpy array's memory on a little-endian host). The host target reads and
//! writes them in place; the simulator copies inputs into its simulated GM
//! and results out of it, as a device upload and download would; the
//! reference interpreter converts them to its own tensors.

use crate::driver::{self, Failure, NpuCode, Source};
use crate::opt::Level;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tessera_frontend::ast::File;
use tessera_ir::{Code, DType, Diagnostic, DimEnv, Kernel, Tensor};

static COMPILES: AtomicU64 = AtomicU64::new(0);

/// How many times this process has optimised and generated code for a
/// kernel (for the NPU or the host); a cache hit does not count.
pub fn compiles() -> u64 {
    COMPILES.load(Ordering::Relaxed)
}

/// A checked source file.
pub struct Loaded {
    /// The source.
    pub source: Source,
    file: File,
}

/// A parameter or result of a kernel as written: its name, dtype and dims
/// (a fixed extent, or a symbolic dim's name).
#[derive(Clone, Debug)]
pub struct Slot {
    /// Name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Extents, outermost first.
    pub dims: Vec<Result<u64, String>>,
}

impl Loaded {
    /// Parses and checks a source text; `name` names it in diagnostics.
    pub fn new(name: &str, text: String) -> Result<Loaded, Failure> {
        let source = Source {
            name: name.to_string(),
            text,
        };
        let file = driver::parse_and_check(&source)?;
        Ok(Loaded { source, file })
    }

    /// Reads and checks a source file.
    pub fn from_path(path: &std::path::Path) -> Result<Loaded, Failure> {
        let source = driver::load_source(path)?;
        let file = driver::parse_and_check(&source)?;
        Ok(Loaded { source, file })
    }

    /// The kernels the file defines, in order.
    pub fn kernels(&self) -> Vec<String> {
        self.file
            .kernels
            .iter()
            .map(|k| k.name.name.clone())
            .collect()
    }

    /// The file's AST as `--emit ast` prints it.
    pub fn ast_text(&self) -> String {
        tessera_frontend::ast::print_file(&self.file)
    }

    /// One kernel's AST (`compile -k KERNEL --emit ast`).
    pub fn kernel_ast_text(&self, kernel: &str) -> Result<String, Failure> {
        let def = driver::select_kernel(&self.file, Some(kernel))?;
        Ok(tessera_frontend::ast::print_file(
            &tessera_frontend::ast::File {
                kernels: vec![def.clone()],
                recovered: Vec::new(),
            },
        ))
    }

    /// A kernel's parameters and results as written.
    pub fn signature(&self, kernel: &str) -> Result<(Vec<Slot>, Vec<Slot>), Failure> {
        let def = driver::select_kernel(&self.file, Some(kernel))?;
        let slot = |name: &str, ty: &tessera_frontend::ast::TypeExpr| Slot {
            name: name.to_string(),
            dtype: ty.dtype,
            dims: ty
                .dims
                .iter()
                .map(|d| match d {
                    tessera_frontend::ast::DimExpr::Int(n, _) => Ok(*n),
                    tessera_frontend::ast::DimExpr::Sym(s) => Err(s.name.clone()),
                })
                .collect(),
        };
        let params = def
            .params
            .iter()
            .map(|p| slot(&p.name.name, &p.ty))
            .collect();
        let results = def
            .results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let name = r
                    .name
                    .as_ref()
                    .map_or_else(|| format!("out{i}"), |n| n.name.clone());
                slot(&name, &r.ty)
            })
            .collect();
        Ok((params, results))
    }

    /// Binds a kernel's dims: `dims` given by name, then each given shape
    /// (`None`: no array for that parameter). A shape that does not fit its
    /// parameter, or that conflicts with another binding, is an input error
    /// (`E0603`, `E0501`) naming the parameter.
    pub fn bind_dims(
        &self,
        kernel: &str,
        dims: &[(String, u64)],
        shapes: &[Option<Vec<usize>>],
    ) -> Result<Vec<(String, u64)>, Failure> {
        let def = driver::select_kernel(&self.file, Some(kernel))?;
        let mut env = DimEnv::new();
        let mut origin = Vec::new();
        let mut diags = Vec::new();
        for (n, v) in dims {
            if !symbolic_dims(def).contains(n) {
                diags.push(
                    Diagnostic::new(
                        Code::E0606,
                        format!("kernel `{kernel}` has no symbolic dim `{n}`"),
                    )
                    .note(format!("its dims: {}", symbolic_dims(def).join(", "))),
                );
                continue;
            }
            env.insert(n.clone(), *v);
            origin.push((n.clone(), format!("`dims[{n:?}]`")));
        }
        for (i, shape) in shapes.iter().enumerate() {
            let (Some(shape), Some(p)) = (shape, def.params.get(i)) else {
                continue;
            };
            let what = format!("the array for `{}`", p.name.name);
            if let Err(d) = crate::inputs::bind_shape(def, i, shape, &what, &mut env, &mut origin) {
                diags.push(d);
            }
        }
        if !diags.is_empty() {
            return Err(Failure::in_source(diags, &self.source));
        }
        Ok(env.into_iter().collect())
    }

    /// Lowers a kernel with every dim bound and prepares it for `options`.
    pub fn bind(
        &self,
        kernel: &str,
        dims: &[(String, u64)],
        options: Options,
    ) -> Result<Bound, Failure> {
        let env: DimEnv = dims.iter().cloned().collect();
        let lowered = driver::lower(&self.file, kernel, &env, &self.source)?;
        let machine = crate::simulate::machine(Some(&options.machine))?;
        Ok(Bound {
            source: self.source.clone(),
            kernel: lowered,
            dims: dims.to_vec(),
            machine,
            options,
            npu: Mutex::new(None),
            program: Mutex::new(None),
            host: Mutex::new(None),
        })
    }
}

fn symbolic_dims(def: &tessera_frontend::ast::KernelDef) -> Vec<String> {
    // The parameters' and the results' (a result-only dim is bound by name).
    tessera_frontend::lower::signature_dims(def)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// How a bound kernel is compiled.
#[derive(Clone, Debug)]
pub struct Options {
    /// A built-in machine's name or a machine file.
    pub machine: String,
    /// The optimisation level.
    pub level: Level,
    /// The on-disk cache of NPU programs (`None`: off).
    pub cache_dir: Option<PathBuf>,
}

/// Where a kernel runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The simulated NPU.
    Sim,
    /// The host, through the Cranelift JIT.
    Host,
    /// The reference interpreter.
    Ref,
}

/// How to run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Also run the reference interpreter and compare.
    pub check: bool,
    /// The host's threads (`None`: every core).
    pub threads: Option<usize>,
    /// Stops a simulation soon after it is set (fault `E0713`).
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Record the simulator's timeline.
    pub trace: bool,
}

/// What a run produced besides its results.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// `check` lines as `run --check` prints them, and whether all match.
    pub check: Option<(Vec<String>, bool)>,
    /// The simulator's report, as `--stats-json` writes it.
    pub report: Option<String>,
    /// The simulator's Chrome trace, when asked for.
    pub trace: Option<String>,
    /// The addresses the compiled host code read its inputs from (the
    /// caller's buffers: nothing was copied).
    pub host_inputs: Vec<usize>,
}

/// A kernel with concrete dims, compiled for each target on first use.
pub struct Bound {
    source: Source,
    kernel: Kernel,
    dims: Vec<(String, u64)>,
    machine: tessera_sim::Machine,
    options: Options,
    npu: Mutex<Option<Arc<NpuCode>>>,
    program: Mutex<Option<Arc<tessera_sim::Program>>>,
    host: Mutex<Option<Arc<driver::HostCode>>>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Bound {
    /// The lowered kernel (its parameters and results are concrete).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The dims it was bound with.
    pub fn dims(&self) -> &[(String, u64)] {
        &self.dims
    }

    /// The machine it compiles for.
    pub fn machine(&self) -> &tessera_sim::Machine {
        &self.machine
    }

    /// The NPU compilation (optimised kernel, plan, program), made once.
    pub fn npu(&self) -> Result<Arc<NpuCode>, Failure> {
        let mut slot = locked(&self.npu);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        COMPILES.fetch_add(1, Ordering::Relaxed);
        let code = Arc::new(driver::compile_npu(
            &self.kernel,
            &self.machine,
            &self.source,
            self.options.level,
        )?);
        *slot = Some(code.clone());
        Ok(code)
    }

    /// The NPU program: compiled once, or loaded from the disk cache.
    pub fn program(&self) -> Result<Arc<tessera_sim::Program>, Failure> {
        let mut slot = locked(&self.program);
        if let Some(p) = slot.as_ref() {
            return Ok(p.clone());
        }
        let key = self.options.cache_dir.as_ref().map(|dir| {
            let key = crate::cache::Key::new(
                &self.source.text,
                &self.kernel.name,
                &self.dims,
                &self.machine.to_toml(),
                self.options.level.flag(),
            );
            (dir.clone(), key)
        });
        if let Some((dir, key)) = &key
            && let Some(p) = crate::cache::load(dir, key, &self.machine)
        {
            let p = Arc::new(p);
            *slot = Some(p.clone());
            return Ok(p);
        }
        let code = self.npu()?;
        if let Some((dir, key)) = &key {
            crate::cache::store(dir, key, &code.program);
        }
        let p = Arc::new(code.program.clone());
        *slot = Some(p.clone());
        Ok(p)
    }

    /// The host compilation, made once.
    pub fn host(&self) -> Result<Arc<driver::HostCode>, Failure> {
        let mut slot = locked(&self.host);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        COMPILES.fetch_add(1, Ordering::Relaxed);
        let code = Arc::new(driver::compile_host(&self.kernel, self.options.level)?);
        *slot = Some(code.clone());
        Ok(code)
    }

    /// A stage's text: `ir`, `opt-ir`, `plan`, `asm` (the NPU's) or `clif`
    /// (the host's).
    pub fn text(&self, stage: &str) -> Result<String, Failure> {
        match stage {
            "ir" => Ok(tessera_ir::text::print_kernel(&self.kernel)),
            "opt-ir" => {
                let c = self.npu()?;
                Ok(driver::opt_ir_text(&c.kernel, &c.report))
            }
            "plan" => Ok(self.npu()?.plan.text()),
            "asm" => Ok(tessera_sim::disassemble(&*self.program()?)),
            "clif" => Ok(self.host()?.host.clif().to_string()),
            other => Err(Failure::Usage(format!(
                "no stage `{other}`: the stages are ast, ir, opt-ir, plan, asm and clif"
            ))),
        }
    }

    /// The NPU program as `.tbc` bytes.
    pub fn tbc(&self) -> Result<Vec<u8>, Failure> {
        Ok(tessera_sim::encode(&*self.program()?))
    }

    /// `tessera bench`'s result, as `bench --json` prints it; its
    /// simulation stops once `interrupt` is set.
    pub fn bench_json(&self, interrupt: Option<Arc<AtomicBool>>) -> Result<String, Failure> {
        let r = crate::bench::bench_with(
            &self.kernel,
            &self.machine,
            &self.source,
            self.options.level,
            &crate::tune::Tuning::default(),
            interrupt,
        )?;
        serde_json::to_string(&r).map_err(|e| Failure::Internal(e.to_string()))
    }

    /// Bytes of each parameter and each result.
    pub fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
        let k = &self.kernel;
        let bytes = |ty| crate::cost::bytes(ty) as usize;
        (
            k.params.iter().map(|p| bytes(&p.ty)).collect(),
            k.outputs.iter().map(|o| bytes(k.ty(o.value))).collect(),
        )
    }

    /// Makes `target`'s code (and, with `check`, asks the reference's
    /// budget), so that a kernel a target cannot take (`E0503`: past the
    /// simulated GM, the host's workspace or the interpreter's limits) is
    /// refused before a caller allocates its results.
    pub fn prepare(&self, target: Target, check: bool) -> Result<(), Failure> {
        match target {
            Target::Sim => {
                self.program()?;
            }
            Target::Host => {
                self.host()?;
            }
            Target::Ref => {}
        }
        if check || target == Target::Ref {
            tessera_ir::interp::budget(&self.kernel).map_err(|e| {
                Failure::input(vec![tessera_ir::Diagnostic::new(
                    tessera_ir::Code::E0503,
                    e.to_string(),
                )])
            })?;
        }
        Ok(())
    }

    /// Runs on `target` from packed `inputs` into packed `outputs` (each
    /// sized as [`Bound::sizes`] says; otherwise a usage error before
    /// anything runs).
    pub fn run(
        &self,
        target: Target,
        inputs: &[&[u8]],
        outputs: &mut [&mut [u8]],
        opts: &RunOptions,
    ) -> Result<RunInfo, Failure> {
        let (ins, outs) = self.sizes();
        let k = &self.kernel;
        let lens_ok = inputs.len() == ins.len()
            && outputs.len() == outs.len()
            && inputs.iter().zip(&ins).all(|(b, &n)| b.len() == n)
            && outputs.iter().zip(&outs).all(|(b, &n)| b.len() == n);
        if !lens_ok {
            return Err(Failure::Usage(format!(
                "kernel `{}` takes buffers of {ins:?} bytes and gives {outs:?}",
                k.name
            )));
        }
        let tensors = || -> Result<Vec<Tensor>, Failure> {
            k.params
                .iter()
                .zip(inputs)
                .map(|(p, b)| {
                    let shape = p.ty.shape.as_usize().unwrap_or_default();
                    Tensor::from_le_bytes(p.ty.dtype, shape, b)
                        .map_err(|e| Failure::Internal(format!("{e:?}")))
                })
                .collect()
        };
        let mut info = RunInfo::default();
        match target {
            Target::Ref => {
                let results = driver::run_reference(k, &tensors()?, &self.source)?;
                for (t, out) in results.iter().zip(outputs.iter_mut()) {
                    out.copy_from_slice(&t.to_le_bytes());
                }
                return Ok(info);
            }
            Target::Host => {
                let code = self.host()?;
                code.host
                    .run_packed(inputs, outputs, opts.threads)
                    .map_err(|e| driver::host_failure(e, &code.kernel, &self.source))?;
                info.host_inputs = inputs.iter().map(|b| b.as_ptr() as usize).collect();
            }
            Target::Sim => {
                let program = self.program()?;
                let named: Vec<(String, tessera_sim::Tensor)> = k
                    .params
                    .iter()
                    .zip(inputs)
                    .map(|(p, b)| {
                        (
                            p.name.clone(),
                            tessera_sim::Tensor {
                                dtype: crate::simulate::dt(p.ty.dtype),
                                shape: p
                                    .ty
                                    .shape
                                    .as_usize()
                                    .unwrap_or_default()
                                    .iter()
                                    .map(|&d| d as u64)
                                    .collect(),
                                data: b.to_vec(),
                            },
                        )
                    })
                    .collect();
                let o = tessera_sim::RunOptions {
                    trace: opts.trace,
                    interrupt: opts.interrupt.clone(),
                    ..tessera_sim::RunOptions::default()
                };
                let out = tessera_sim::run(&self.machine, &program, &named, &o)
                    .map_err(crate::simulate::run_error)?;
                for ((_, t), b) in out.outputs.iter().zip(outputs.iter_mut()) {
                    if t.data.len() != b.len() {
                        return Err(Failure::Internal(format!(
                            "the simulator gave {} bytes for a result of {}",
                            t.data.len(),
                            b.len()
                        )));
                    }
                    b.copy_from_slice(&t.data);
                }
                info.report = Some(out.report.to_json());
                info.trace = out.trace_json;
            }
        }
        if opts.check {
            let reference = driver::run_reference(k, &tensors()?, &self.source)?;
            let got: Vec<Tensor> = k
                .outputs
                .iter()
                .zip(outputs.iter())
                .map(|(o, b)| {
                    let ty = k.ty(o.value);
                    Tensor::from_le_bytes(ty.dtype, ty.shape.as_usize().unwrap_or_default(), b)
                        .map_err(|e| Failure::Internal(format!("{e:?}")))
                })
                .collect::<Result<_, _>>()?;
            info.check = Some(driver::check_outputs(k, &got, &reference));
        }
        Ok(info)
    }

    /// A timing-only simulation's report and Chrome trace (no data); it
    /// stops once `interrupt` is set.
    pub fn trace_timing(
        &self,
        interrupt: Option<Arc<AtomicBool>>,
    ) -> Result<(String, String), Failure> {
        let program = self.program()?;
        let o = tessera_sim::RunOptions {
            timing_only: true,
            trace: true,
            interrupt,
            ..tessera_sim::RunOptions::default()
        };
        let out = tessera_sim::run(&self.machine, &program, &[], &o)
            .map_err(crate::simulate::run_error)?;
        Ok((out.report.to_json(), out.trace_json.unwrap_or_default()))
    }
}
