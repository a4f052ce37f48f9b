//! `tessera._tessera`: the compiler crates as a Python extension module.
//!
//! This layer is thin on purpose: it moves buffers and errors across the
//! boundary and releases the GIL around everything slow. What a Python user
//! sees (dtype rules, output arrays, the in-process memo) is the pure-Python
//! package `tessera` beside it; what runs is `tessera_compiler::embed`.

use numpy::{PyReadonlyArray1, PyReadwriteArray1};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tessera_compiler::driver::Failure;
use tessera_compiler::embed;

create_exception!(
    tessera._tessera,
    CompileError,
    PyException,
    "A diagnostic: the rendered text, with `.code`, `.codes` and `.spans`."
);
create_exception!(
    tessera._tessera,
    MachineFault,
    PyException,
    "The simulated machine (or the interpreter) faulted; `.code` names the fault (`.codes` as `CompileError`'s)."
);

/// Which error class a failure becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Compiling: diagnostics are `CompileError`.
    Compile,
    /// Binding arrays: diagnostics name a parameter, `ValueError`.
    Arrays,
}

fn to_py(py: Python<'_>, f: Failure, phase: Phase) -> PyErr {
    match f {
        Failure::Fault { diags, .. } if diags.first().is_some_and(|d| d.code == "E0713") => {
            PyKeyboardInterrupt::new_err("the simulation was interrupted")
        }
        Failure::Fault { diags, source } => {
            let (msg, codes, spans) = render(&diags, source.as_ref());
            let err = MachineFault::new_err(msg);
            annotate(py, &err, codes, spans);
            err
        }
        Failure::Input { diags, source } => {
            let (msg, codes, spans) = render(&diags, source.as_ref());
            let err = match phase {
                Phase::Arrays => PyValueError::new_err(msg),
                Phase::Compile => CompileError::new_err(msg),
            };
            annotate(py, &err, codes, spans);
            err
        }
        Failure::Mismatch => PyRuntimeError::new_err("a check mismatch"),
        Failure::Usage(m) => PyValueError::new_err(m),
        Failure::Internal(m) => PyRuntimeError::new_err(format!(
            "internal compiler error: {m} (this is a bug in Tessera; please report it with the input that caused it)"
        )),
    }
}

type Spans = Vec<(u32, u32, usize, usize, String, bool)>;

/// The rendered text, every diagnostic's code in order, and every label.
fn render(
    diags: &[tessera_ir::Diagnostic],
    source: Option<&tessera_compiler::driver::Source>,
) -> (String, Vec<String>, Spans) {
    let (name, text) = source.map_or(("<input>", ""), |s| (s.name.as_str(), s.text.as_str()));
    let msg = tessera_ir::diag::render(diags, name, text, false);
    let codes = diags.iter().map(|d| d.code.clone()).collect();
    let spans = diags
        .iter()
        .flat_map(|d| &d.labels)
        .map(|l| {
            // As the rendered diagnostic counts: a column in characters,
            // a leading byte-order mark no column.
            let (line, col) = tessera_ir::diag::line_col(text, l.span.start as usize);
            (
                l.span.start,
                l.span.end,
                line,
                col,
                l.message.clone(),
                l.primary,
            )
        })
        .collect();
    (msg.trim_end().to_string(), codes, spans)
}

/// `.code` is the first diagnostic's, `.codes` every one's.
fn annotate(py: Python<'_>, err: &PyErr, codes: Vec<String>, spans: Spans) {
    let v = err.value(py);
    let _ = v.setattr("code", codes.first().cloned().unwrap_or_default());
    let _ = v.setattr("codes", codes);
    let _ = v.setattr("raw_spans", spans);
}

/// A checked source file.
#[pyclass(frozen, module = "tessera._tessera")]
struct Source {
    inner: Arc<embed::Loaded>,
}

#[pymethods]
impl Source {
    /// Parses and checks `text`; `name` names it in diagnostics.
    #[new]
    fn new(py: Python<'_>, text: String, name: String) -> PyResult<Source> {
        let loaded = py
            .detach(|| embed::Loaded::new(&name, text))
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        Ok(Source {
            inner: Arc::new(loaded),
        })
    }

    /// Reads, parses and checks a file.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Source> {
        let loaded = py
            .detach(|| embed::Loaded::from_path(&path))
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        Ok(Source {
            inner: Arc::new(loaded),
        })
    }

    /// The source text.
    #[getter]
    fn text(&self) -> String {
        self.inner.source.text.clone()
    }

    /// The kernels, in order.
    fn kernels(&self) -> Vec<String> {
        self.inner.kernels()
    }

    /// The AST (`--emit ast`): of the whole file, or of `kernel` alone.
    #[pyo3(signature = (kernel=None))]
    fn ast(&self, py: Python<'_>, kernel: Option<String>) -> PyResult<String> {
        match kernel {
            None => Ok(self.inner.ast_text()),
            Some(k) => self
                .inner
                .kernel_ast_text(&k)
                .map_err(|f| to_py(py, f, Phase::Compile)),
        }
    }

    /// A kernel's parameters and results: `(name, dtype, dims)` each, a dim
    /// being an int or a symbolic dim's name.
    fn signature<'py>(
        &self,
        py: Python<'py>,
        kernel: &str,
    ) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyList>)> {
        let (params, results) = self
            .inner
            .signature(kernel)
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        let slots = |v: Vec<embed::Slot>| -> PyResult<Bound<'py, PyList>> {
            let items: Vec<Bound<'py, PyTuple>> = v
                .into_iter()
                .map(|s| {
                    let dims: Vec<Bound<'py, PyAny>> = s
                        .dims
                        .into_iter()
                        .map(|d| {
                            Ok::<_, PyErr>(match d {
                                Ok(n) => n.into_pyobject(py)?.into_any(),
                                Err(name) => name.into_pyobject(py)?.into_any(),
                            })
                        })
                        .collect::<PyResult<_>>()?;
                    PyTuple::new(
                        py,
                        [
                            s.name.into_pyobject(py)?.into_any(),
                            s.dtype.to_string().into_pyobject(py)?.into_any(),
                            PyList::new(py, dims)?.into_any(),
                        ],
                    )
                })
                .collect::<PyResult<_>>()?;
            PyList::new(py, items)
        };
        Ok((slots(params)?, slots(results)?))
    }

    /// Binds a kernel's dims from `dims` and the arrays' shapes (`None`
    /// where no array); every dim bound, in a dict.
    fn bind_dims(
        &self,
        py: Python<'_>,
        kernel: &str,
        dims: BTreeMap<String, u64>,
        shapes: Vec<Option<Vec<usize>>>,
    ) -> PyResult<BTreeMap<String, u64>> {
        let dims: Vec<(String, u64)> = dims.into_iter().collect();
        self.inner
            .bind_dims(kernel, &dims, &shapes)
            .map(|v| v.into_iter().collect())
            .map_err(|f| to_py(py, f, Phase::Arrays))
    }

    /// Lowers a kernel with every dim bound, for `machine` at `opt`, with
    /// the on-disk cache at `cache_dir` (`None`: off).
    #[pyo3(signature = (kernel, dims, machine, opt, cache_dir=None))]
    fn bind(
        &self,
        py: Python<'_>,
        kernel: String,
        dims: BTreeMap<String, u64>,
        machine: String,
        opt: u8,
        cache_dir: Option<std::path::PathBuf>,
    ) -> PyResult<Compiled> {
        let level = tessera_compiler::opt::Level::parse(&opt.to_string())
            .ok_or_else(|| PyValueError::new_err(format!("opt must be 0, 1 or 2, not {opt}")))?;
        let dims: Vec<(String, u64)> = dims.into_iter().collect();
        let options = embed::Options {
            machine,
            level,
            cache_dir,
        };
        let loaded = self.inner.clone();
        let bound = py
            .detach(|| loaded.bind(&kernel, &dims, options))
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        Ok(Compiled {
            inner: Arc::new(bound),
        })
    }
}

/// A kernel with concrete dims, compiled for each target on first use.
#[pyclass(frozen, module = "tessera._tessera")]
struct Compiled {
    inner: Arc<embed::Bound>,
}

fn slots_of(k: &tessera_ir::Kernel, params: bool) -> Vec<(String, String, Vec<usize>)> {
    if params {
        k.params
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.ty.dtype.to_string(),
                    p.ty.shape.as_usize().unwrap_or_default(),
                )
            })
            .collect()
    } else {
        k.outputs
            .iter()
            .map(|o| {
                let ty = k.ty(o.value);
                (
                    o.name.clone(),
                    ty.dtype.to_string(),
                    ty.shape.as_usize().unwrap_or_default(),
                )
            })
            .collect()
    }
}

fn target_of(name: &str) -> PyResult<embed::Target> {
    match name {
        "sim" => Ok(embed::Target::Sim),
        "host" => Ok(embed::Target::Host),
        "ref" => Ok(embed::Target::Ref),
        other => Err(PyValueError::new_err(format!(
            "target must be \"sim\", \"host\" or \"ref\", not {other:?}"
        ))),
    }
}

#[pymethods]
impl Compiled {
    /// `(name, dtype, shape)` of each parameter.
    fn params(&self) -> Vec<(String, String, Vec<usize>)> {
        slots_of(self.inner.kernel(), true)
    }

    /// `(name, dtype, shape)` of each result.
    fn results(&self) -> Vec<(String, String, Vec<usize>)> {
        slots_of(self.inner.kernel(), false)
    }

    /// The dims it was bound with.
    fn dims(&self) -> BTreeMap<String, u64> {
        self.inner.dims().iter().cloned().collect()
    }

    /// The machine's name.
    fn machine(&self) -> String {
        self.inner.machine().name.clone()
    }

    /// Runs on `target` from packed inputs into packed outputs (byte views
    /// of C-contiguous arrays). Returns `(check_lines or None, ok,
    /// host_input_addresses)`. A simulation can be interrupted with Ctrl-C.
    #[pyo3(signature = (target, inputs, outputs, check=false, threads=None))]
    fn run(
        &self,
        py: Python<'_>,
        target: &str,
        inputs: Vec<PyReadonlyArray1<'_, u8>>,
        mut outputs: Vec<PyReadwriteArray1<'_, u8>>,
        check: bool,
        threads: Option<usize>,
    ) -> PyResult<(Option<Vec<String>>, bool, Vec<usize>)> {
        let target = target_of(target)?;
        let ins: Vec<&[u8]> = inputs
            .iter()
            .map(|a| a.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| PyValueError::new_err(format!("an input is not contiguous: {e}")))?;
        let mut outs: Vec<&mut [u8]> = outputs
            .iter_mut()
            .map(|a| a.as_slice_mut())
            .collect::<Result<_, _>>()
            .map_err(|e| PyValueError::new_err(format!("an output is not contiguous: {e}")))?;
        let interrupt = Arc::new(AtomicBool::new(false));
        let opts = embed::RunOptions {
            check,
            threads,
            interrupt: Some(interrupt.clone()),
            trace: false,
        };
        let bound = &*self.inner;
        let result = if target == embed::Target::Sim {
            interruptible(py, &interrupt, || bound.run(target, &ins, &mut outs, &opts))?
        } else {
            py.detach(|| bound.run(target, &ins, &mut outs, &opts))
        };
        let info = result.map_err(|f| to_py(py, f, Phase::Compile))?;
        let (lines, ok) = match info.check {
            Some((lines, ok)) => (Some(lines), ok),
            None => (None, true),
        };
        Ok((lines, ok, info.host_inputs))
    }

    /// Makes `target`'s code (with `check`, the reference's too): a
    /// `CompileError` (`E0503`) for a kernel the target cannot take, before
    /// the caller allocates its results.
    #[pyo3(signature = (target, check=false))]
    fn prepare(&self, py: Python<'_>, target: &str, check: bool) -> PyResult<()> {
        let target = target_of(target)?;
        let bound = &*self.inner;
        py.detach(|| bound.prepare(target, check))
            .map_err(|f| to_py(py, f, Phase::Compile))
    }

    /// A stage's text: `ir`, `opt-ir`, `plan`, `asm` or `clif`.
    fn text(&self, py: Python<'_>, stage: &str) -> PyResult<String> {
        let bound = &*self.inner;
        py.detach(|| bound.text(stage))
            .map_err(|f| to_py(py, f, Phase::Compile))
    }

    /// The NPU program as `.tbc` bytes.
    fn tbc<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bound = &*self.inner;
        let bytes = py
            .detach(|| bound.tbc())
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// `tessera bench --json` as a JSON string (Ctrl-C stops it).
    fn bench(&self, py: Python<'_>) -> PyResult<String> {
        let bound = &*self.inner;
        let interrupt = Arc::new(AtomicBool::new(false));
        let flag = interrupt.clone();
        interruptible(py, &interrupt, move || bound.bench_json(Some(flag)))?
            .map_err(|f| to_py(py, f, Phase::Compile))
    }

    /// A simulation's Chrome trace (JSON text): on the given packed inputs,
    /// or timing only when `inputs` is `None`.
    #[pyo3(signature = (inputs=None))]
    fn trace(
        &self,
        py: Python<'_>,
        inputs: Option<Vec<PyReadonlyArray1<'_, u8>>>,
    ) -> PyResult<String> {
        let bound = &*self.inner;
        let interrupt = Arc::new(AtomicBool::new(false));
        let Some(inputs) = inputs else {
            let flag = interrupt.clone();
            let r = interruptible(py, &interrupt, move || bound.trace_timing(Some(flag)))?;
            return r.map(|(_, t)| t).map_err(|f| to_py(py, f, Phase::Compile));
        };
        let ins: Vec<&[u8]> = inputs
            .iter()
            .map(|a| a.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| PyValueError::new_err(format!("an input is not contiguous: {e}")))?;
        // The program first: a kernel past the simulated GM is E0503, and
        // results the host cannot hold are a MemoryError, never an abort.
        py.detach(|| bound.program())
            .map_err(|f| to_py(py, f, Phase::Compile))?;
        let (_, sizes) = bound.sizes();
        let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(sizes.len());
        for &n in &sizes {
            let mut b = Vec::new();
            b.try_reserve_exact(n).map_err(|_| {
                PyMemoryError::new_err(format!(
                    "cannot allocate {n} bytes for a result of the traced run"
                ))
            })?;
            b.resize(n, 0u8);
            bufs.push(b);
        }
        let mut outs: Vec<&mut [u8]> = bufs.iter_mut().map(Vec::as_mut_slice).collect();
        let opts = embed::RunOptions {
            trace: true,
            interrupt: Some(interrupt.clone()),
            ..embed::RunOptions::default()
        };
        let r = interruptible(py, &interrupt, || {
            bound.run(embed::Target::Sim, &ins, &mut outs, &opts)
        })?;
        r.map(|info| info.trace.unwrap_or_default())
            .map_err(|f| to_py(py, f, Phase::Compile))
    }
}

static INTERRUPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether a run stopped because its interrupt flag was set (`E0713`).
fn was_interrupted<T>(r: &Result<T, Failure>) -> bool {
    matches!(r, Err(Failure::Fault { diags, .. }) if diags.first().is_some_and(|d| d.code == "E0713"))
}

/// Runs `f` on another thread with the GIL released, checking for signals
/// (Ctrl-C) every 50 ms. On one, it sets `interrupt` (which stops a
/// simulation), waits for `f` to return and raises the signal's exception;
/// `stats()["interrupts"]` counts the runs a signal actually stopped.
fn interruptible<T: Send>(
    py: Python<'_>,
    interrupt: &AtomicBool,
    f: impl FnOnce() -> Result<T, Failure> + Send,
) -> PyResult<Result<T, Failure>> {
    let done = (std::sync::Mutex::new(false), std::sync::Condvar::new());
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let r = f();
            *done
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
            done.1.notify_all();
            r
        });
        loop {
            let finished = py.detach(|| {
                let g = done
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let (g, _) = done
                    .1
                    .wait_timeout_while(g, std::time::Duration::from_millis(50), |d| !*d)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *g
            });
            if finished {
                break;
            }
            if let Err(e) = py.check_signals() {
                interrupt.store(true, Ordering::Relaxed);
                if let Ok(r) = py.detach(|| worker.join())
                    && was_interrupted(&r)
                {
                    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
                }
                return Err(e);
            }
        }
        py.detach(|| worker.join())
            .map_err(|_| PyRuntimeError::new_err("internal compiler error: the run panicked"))
    })
}

/// The built-in machines' names, the default first.
#[pyfunction]
fn machines() -> Vec<String> {
    let default = tessera_compiler::simulate::DEFAULT_MACHINE;
    let mut names: Vec<String> = tessera_sim::Machine::builtin_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.sort_by_key(|n| n != default);
    names
}

/// Reads a machine (a built-in name or a machine file): a `CompileError`
/// when there is none.
#[pyfunction]
fn check_machine(py: Python<'_>, name: &str) -> PyResult<()> {
    tessera_compiler::simulate::machine(Some(name))
        .map(|_| ())
        .map_err(|f| to_py(py, f, Phase::Compile))
}

/// Counters of this process: compilations, the disk cache's hits, misses
/// and entries found but not trusted, and runs stopped by a signal.
#[pyfunction]
fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let (hits, misses, stale) = tessera_compiler::cache::counters();
    let d = PyDict::new(py);
    d.set_item("compiles", tessera_compiler::embed::compiles())?;
    d.set_item("cache_hits", hits)?;
    d.set_item("cache_misses", misses)?;
    d.set_item("cache_stale", stale)?;
    d.set_item("interrupts", INTERRUPTS.load(Ordering::Relaxed))?;
    Ok(d)
}

/// The default on-disk cache directory (`None`: turned off).
#[pyfunction]
fn default_cache_dir() -> Option<std::path::PathBuf> {
    tessera_compiler::cache::default_dir()
}

#[pymodule]
fn _tessera(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "DEFAULT_MACHINE",
        tessera_compiler::simulate::DEFAULT_MACHINE,
    )?;
    m.add("CompileError", m.py().get_type::<CompileError>())?;
    m.add("MachineFault", m.py().get_type::<MachineFault>())?;
    m.add_class::<Source>()?;
    m.add_class::<Compiled>()?;
    m.add_function(wrap_pyfunction!(machines, m)?)?;
    m.add_function(wrap_pyfunction!(check_machine, m)?)?;
    m.add_function(wrap_pyfunction!(stats, m)?)?;
    m.add_function(wrap_pyfunction!(default_cache_dir, m)?)?;
    Ok(())
}
