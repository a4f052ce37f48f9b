//! Shared machinery of Tessera's file-driven tests: case directives,
//! diagnostic annotations and the pipeline as the harnesses run it.
//!
//! The case formats are specified in `docs/testing.md`; this crate is the
//! only one that depends on every other, and it is never shipped.

use std::path::{Path, PathBuf};
use tessera_compiler::driver::{self, Failure, Source};
use tessera_ir::{Diagnostic, DimEnv};

/// The `//@` directives of a case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directives {
    /// `//@ kernel: NAME`.
    pub kernel: Option<String>,
    /// `//@ dims: A=1, B=2`.
    pub dims: DimEnv,
    /// Whether a `dims` directive was present.
    pub has_dims: bool,
}

/// Parses the `//@` directives; an unknown or malformed one is an error.
pub fn directives(src: &str) -> Result<Directives, String> {
    let mut d = Directives::default();
    for (i, line) in src.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("//@") else {
            continue;
        };
        let (key, value) = rest
            .split_once(':')
            .ok_or_else(|| format!("line {}: malformed directive `{line}`", i + 1))?;
        match key.trim() {
            "kernel" => d.kernel = Some(value.trim().to_string()),
            "dims" => {
                d.has_dims = true;
                for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let (n, v) = pair
                        .split_once('=')
                        .ok_or_else(|| format!("line {}: malformed dim `{pair}`", i + 1))?;
                    let v: u64 = v
                        .trim()
                        .parse()
                        .map_err(|_| format!("line {}: bad dim value `{pair}`", i + 1))?;
                    d.dims.insert(n.trim().to_string(), v);
                }
            }
            other => return Err(format!("line {}: unknown directive `{other}`", i + 1)),
        }
    }
    Ok(d)
}

/// An expected diagnostic: `//~ ERROR CODE` on a line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Annotation {
    /// 1-based line the diagnostic must start on.
    pub line: usize,
    /// The code.
    pub code: String,
}

/// Finds the `//~ ERROR …` / `//~^ ERROR …` annotations, textually.
pub fn annotations(src: &str) -> Result<Vec<Annotation>, String> {
    let mut out = Vec::new();
    for (i, line) in src.lines().enumerate() {
        let Some(at) = line.find("//~") else { continue };
        let rest = &line[at + 3..];
        let up = rest.chars().take_while(|&c| c == '^').count();
        let rest = rest[up..].trim_start();
        let codes = rest
            .strip_prefix("ERROR")
            .ok_or_else(|| format!("line {}: expected `//~ ERROR CODE`", i + 1))?;
        let target = (i + 1)
            .checked_sub(up)
            .filter(|&l| l >= 1)
            .ok_or_else(|| format!("line {}: `^` points above the file", i + 1))?;
        let mut any = false;
        for code in codes.split([' ', ',']).filter(|c| !c.is_empty()) {
            if !(code.len() == 5
                && code.starts_with('E')
                && code[1..].chars().all(|c| c.is_ascii_digit()))
            {
                return Err(format!("line {}: `{code}` is not an error code", i + 1));
            }
            out.push(Annotation {
                line: target,
                code: code.to_string(),
            });
            any = true;
        }
        if !any {
            return Err(format!("line {}: `//~ ERROR` without a code", i + 1));
        }
    }
    out.sort();
    Ok(out)
}

/// Runs the frontend as `tessera check` (and, with directives, as
/// `compile`/`run` lowering would) and returns its diagnostics.
pub fn diagnostics(src: &Source, d: &Directives) -> Vec<Diagnostic> {
    let file = match driver::parse_and_check(src) {
        Ok(f) => f,
        Err(Failure::Input { diags, .. }) => return diags,
        Err(other) => panic!("unexpected failure {other:?}"),
    };
    if d.kernel.is_none() && !d.has_dims {
        return Vec::new();
    }
    let def = match driver::select_kernel(&file, d.kernel.as_deref()) {
        Ok(def) => def,
        Err(Failure::Input { diags, .. }) => return diags,
        Err(other) => panic!("unexpected failure {other:?}"),
    };
    match driver::lower(&file, &def.name.name, &d.dims, src) {
        Ok(_) => Vec::new(),
        Err(Failure::Input { diags, .. }) => diags,
        Err(other) => panic!("unexpected failure {other:?}"),
    }
}

/// The diagnostics as annotations (line of the primary span's start).
pub fn as_annotations(src: &str, diags: &[Diagnostic]) -> Vec<Annotation> {
    let mut out: Vec<Annotation> = diags
        .iter()
        .map(|d| Annotation {
            line: d
                .primary_span()
                .map_or(0, |s| tessera_ir::diag::line_col(src, s.start as usize).0),
            code: d.code.clone(),
        })
        .collect();
    out.sort();
    out
}

/// The testsuite crate's directory (tests run with it as working directory).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` whose extension is `ext`, sorted by path.
pub fn case_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    paths.sort();
    paths
}

/// Runs the `tessera` command line in-process on `args` (without the
/// program name): its exit code, stdout and stderr.
pub fn run_cli<S: AsRef<str>>(args: &[S]) -> (i32, String, String) {
    let mut argv = vec!["tessera".to_string()];
    argv.extend(args.iter().map(|a| a.as_ref().to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tessera_compiler::cli::run(&argv, &mut out, &mut err, false);
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A case's name: its file stem.
pub fn case_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}

/// Loads a case file as a [`Source`] named by its path relative to the
/// testsuite crate (stable across machines, for snapshots).
pub fn load(path: &Path) -> Source {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path
        .strip_prefix(crate_dir())
        .unwrap_or(path)
        .display()
        .to_string()
        .replace('\\', "/");
    Source { name, text }
}

/// insta settings that put a case's snapshots in `DIR/snapshots/NAME@STAGE.snap`
/// and record the case file in the snapshot header.
pub fn snapshot_settings(case: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    let dir = crate_dir().join(case.parent().unwrap_or(Path::new(".")));
    s.set_snapshot_path(dir.join("snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let rel = case
        .strip_prefix(crate_dir())
        .unwrap_or(case)
        .display()
        .to_string();
    s.set_input_file(rel.replace('\\', "/"));
    s
}

/// Seeded random inputs for every parameter of `kernel` (as `run
/// --random-inputs --seed seed` draws them).
pub fn random_inputs(kernel: &tessera_ir::Kernel, seed: u64) -> Vec<tessera_ir::Tensor> {
    kernel
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            tessera_compiler::inputs::random_tensor(
                p.ty.dtype,
                p.ty.shape.as_usize().unwrap_or_default(),
                seed,
                i,
            )
        })
        .collect()
}

/// Runs `program` on the simulator of `machine` (race detector on) with
/// `inputs`, and compares every output with the reference interpreter's
/// under the spec's rules; `Err` names the first output that differs.
pub fn simulate_against_reference(
    kernel: &tessera_ir::Kernel,
    machine: &tessera_sim::Machine,
    program: &tessera_sim::Program,
    inputs: &[tessera_ir::Tensor],
) -> Result<(), String> {
    let reference =
        tessera_ir::interp::run(kernel, inputs).map_err(|e| format!("reference: {e}"))?;
    let got = simulate(kernel, machine, program, inputs)?;
    compare_outputs(kernel, &got, &reference).map_err(|e| format!("{e} on {}", machine.name))
}

/// Runs `program` on the simulator of `machine` (race detector on) with
/// `inputs` (the parameters of `kernel`): its named outputs.
pub fn simulate(
    kernel: &tessera_ir::Kernel,
    machine: &tessera_sim::Machine,
    program: &tessera_sim::Program,
    inputs: &[tessera_ir::Tensor],
) -> Result<Vec<(String, tessera_ir::Tensor)>, String> {
    use tessera_compiler::simulate;
    let named: Vec<(String, tessera_sim::Tensor)> = kernel
        .params
        .iter()
        .zip(inputs)
        .map(|(p, t)| (p.name.clone(), simulate::to_sim(t)))
        .collect();
    let out = tessera_sim::run(
        machine,
        program,
        &named,
        &tessera_sim::RunOptions::default(),
    )
    .map_err(|e| format!("simulator on {}: {e}", machine.name))?;
    out.outputs
        .iter()
        .map(|(n, t)| {
            Ok((
                n.clone(),
                simulate::from_sim(t).map_err(|e| format!("{e:?}"))?,
            ))
        })
        .collect()
}

/// Compiles a kernel that has no source text (a generated one) for
/// `machine` at `-O2`.
pub fn compile_generated(
    kernel: &tessera_ir::Kernel,
    machine: &tessera_sim::Machine,
) -> Result<tessera_compiler::driver::NpuCode, String> {
    let src = Source {
        name: kernel.name.clone(),
        text: String::new(),
    };
    driver::compile_npu(kernel, machine, &src, tessera_compiler::opt::Level::O2)
        .map_err(|e| format!("compile: {e:?}"))
}

/// Compiles `kernel` for the host (`-O2`) and compares its results on
/// `inputs` with the reference interpreter's.
pub fn host_against_reference(
    kernel: &tessera_ir::Kernel,
    inputs: &[tessera_ir::Tensor],
) -> Result<(), String> {
    let reference =
        tessera_ir::interp::run(kernel, inputs).map_err(|e| format!("reference: {e}"))?;
    let code = tessera_compiler::driver::compile_host(kernel, tessera_compiler::opt::Level::O2)
        .map_err(|e| format!("host compile: {e:?}"))?;
    let out = code
        .host
        .run(inputs, None)
        .map_err(|e| format!("host: {e}"))?;
    let got: Vec<(String, tessera_ir::Tensor)> = kernel
        .outputs
        .iter()
        .map(|o| o.name.clone())
        .zip(out)
        .collect();
    compare_outputs(kernel, &got, &reference).map_err(|e| format!("{e} on the host"))
}

/// Compares named results with the reference interpreter's, output by
/// output under the spec's rule for each ([`Rule::for_value`]): a missing,
/// extra, misnamed or reordered output fails, as does any mismatch.
///
/// [`Rule::for_value`]: tessera_ir::compare::Rule::for_value
pub fn compare_outputs(
    kernel: &tessera_ir::Kernel,
    got: &[(String, tessera_ir::Tensor)],
    reference: &[tessera_ir::Tensor],
) -> Result<(), String> {
    use tessera_ir::compare::{Rule, compare};
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    let want: Vec<&str> = kernel.outputs.iter().map(|o| o.name.as_str()).collect();
    if names != want || reference.len() != want.len() {
        return Err(format!(
            "outputs {names:?} (reference: {} of them) where the kernel declares {want:?}",
            reference.len()
        ));
    }
    for ((o, (_, got)), want) in kernel.outputs.iter().zip(got).zip(reference) {
        let c = compare(got, want, Rule::for_value(kernel, o.value));
        if !c.ok() {
            return Err(format!(
                "output `{}`: {} mismatches (same type: {}), first {:?}, max abs {:.3e}, max rel {:.3e}",
                o.name, c.mismatches, c.same_type, c.first_mismatch, c.max_abs, c.max_rel
            ));
        }
    }
    Ok(())
}

/// Checks that a plan's text form round-trips: print → parse gives the same
/// plan (so print → parse → print is the identity), and the parsed plan
/// compiles to the same program.
pub fn plan_round_trip(
    plan: &tessera_ir::plan::Plan,
    machine: &tessera_sim::Machine,
    program: &tessera_sim::Program,
) -> Result<(), String> {
    let text = plan.text();
    let back = tessera_ir::plan::Plan::parse(&text)
        .map_err(|e| format!("the plan text does not parse back: {e}\n{text}"))?;
    if back.text() != text {
        return Err(format!(
            "the plan text does not round-trip:\n--- printed\n{text}--- reprinted\n{}",
            back.text()
        ));
    }
    if &back != plan {
        return Err(format!(
            "the plan read back differs from the plan printed:\n{text}"
        ));
    }
    let again = tessera_backend::npu::compile(&back, machine).map_err(|e| e.to_string())?;
    if &again != program {
        return Err("the plan read back compiles to another program".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_point_at_lines() {
        let src = "a //~ ERROR E0100\nb\n//~^ ERROR E0300 E0400\n";
        let a = annotations(src).unwrap();
        assert_eq!(
            a,
            vec![
                Annotation {
                    line: 1,
                    code: "E0100".into()
                },
                Annotation {
                    line: 2,
                    code: "E0300".into()
                },
                Annotation {
                    line: 2,
                    code: "E0400".into()
                },
            ]
        );
        assert!(annotations("x //~ ERROR\n").is_err());
        assert!(annotations("x //~ WARN E0001\n").is_err());
    }

    #[test]
    fn directives_parse_and_reject_unknown_keys() {
        let d = directives("//@ kernel: k\n//@ dims: M=4, N=8\n").unwrap();
        assert_eq!(d.kernel.as_deref(), Some("k"));
        assert_eq!(d.dims.get("N"), Some(&8));
        assert!(directives("//@ color: red\n").is_err());
    }
}

/// The less common cube schedules a plan uses, counted over its stages:
/// tiles taken in groups of rows, two alternating accumulators,
/// single-stage loads issued a stage early, and the others below.
#[derive(Clone, Copy, Debug, Default)]
pub struct CubeForms {
    /// Stages with `group_m > 1`.
    pub grouped: usize,
    /// Stages with two accumulators.
    pub two_accumulators: usize,
    /// Stages whose loads go a stage early ([`CubeSchedule::loads_early`]).
    ///
    /// [`CubeSchedule::loads_early`]: tessera_ir::plan::CubeSchedule::loads_early
    pub loads_early: usize,
    /// Stages split over K (`split_k > 1`).
    pub split_k: usize,
    /// Stages running the row stage before them as a joined prologue
    /// (`prologue > 0`).
    pub prologue: usize,
    /// Stages running the vector stage after them as a joined epilogue
    /// (`epilogue > 0`).
    pub epilogue: usize,
    /// Matmul stages (either unit) scaling their product by a constant.
    pub scaled: usize,
    /// Cube stages whose odd cores take their tail strip second
    /// ([`CubeSchedule::staggered`]).
    ///
    /// [`CubeSchedule::staggered`]: tessera_ir::plan::CubeSchedule::staggered
    pub staggered: usize,
    /// Cube stages keeping A's whole K panel in L1
    /// ([`CubeSchedule::a_panel`]).
    ///
    /// [`CubeSchedule::a_panel`]: tessera_ir::plan::CubeSchedule::a_panel
    pub a_panel: usize,
    /// Cube stages whose A panel runs are folded over their tile row
    /// ([`CubeSchedule::fold`]).
    ///
    /// [`CubeSchedule::fold`]: tessera_ir::plan::CubeSchedule::fold
    pub folded: usize,
    /// Cube stages with the accumulator in two column halves
    /// ([`CubeSchedule::halves`]).
    ///
    /// [`CubeSchedule::halves`]: tessera_ir::plan::CubeSchedule::halves
    pub halves: usize,
}

impl CubeForms {
    /// The forms of `plan`'s matmul stages on `machine` (the cube schedules',
    /// and every matmul's scale).
    pub fn of(plan: &tessera_ir::plan::Plan, machine: &tessera_sim::Machine) -> CubeForms {
        let mut forms = CubeForms::default();
        for stage in &plan.stages {
            let tessera_ir::plan::StageKind::MatMul(mm) = &stage.kind else {
                continue;
            };
            forms.scaled += usize::from(mm.scale.is_some());
            if let tessera_ir::plan::MatMulSchedule::Cube(t) = &mm.schedule {
                forms.grouped += usize::from(t.group_m > 1);
                forms.two_accumulators += usize::from(t.accumulators > 1);
                forms.loads_early += usize::from(t.loads_early(machine.sync.queue_depth));
                forms.split_k += usize::from(t.parts() > 1);
                forms.prologue += usize::from(t.prologue > 0);
                forms.epilogue += usize::from(t.epilogue > 0);
                forms.staggered += usize::from(t.stagger);
                forms.a_panel += usize::from(t.a_panel);
                forms.folded += usize::from(t.fold > 1);
                forms.halves += usize::from(t.halves);
            }
        }
        forms
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: CubeForms) {
        self.grouped += other.grouped;
        self.two_accumulators += other.two_accumulators;
        self.loads_early += other.loads_early;
        self.split_k += other.split_k;
        self.prologue += other.prologue;
        self.epilogue += other.epilogue;
        self.scaled += other.scaled;
        self.staggered += other.staggered;
        self.a_panel += other.a_panel;
        self.folded += other.folded;
        self.halves += other.halves;
    }
}

/// The built-in machine a randomised test runs seed `seed` on: 910b-like
/// for even seeds, 910-like for odd ones.
pub fn machine_of_seed(seed: u64) -> &'static str {
    if seed.is_multiple_of(2) {
        "910b-like"
    } else {
        "910-like"
    }
}

/// A count or seed from environment variable `key`, else `default`.
pub fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The failures of a randomised test: the first five, each with its seed,
/// machine, reason and the kernel's IR text.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records a failure; true once five are kept (stop generating).
    pub fn record(
        &mut self,
        seed: u64,
        machine: &str,
        why: &str,
        kernel: &tessera_ir::Kernel,
    ) -> bool {
        let ir = tessera_ir::text::print_kernel(kernel);
        self.0.push(format!("seed {seed} ({machine}): {why}\n{ir}"));
        self.0.len() >= 5
    }

    /// Panics listing the failures, if any: `what` names the programs, and
    /// `PREFIX_SEED=<seed> PREFIX_CASES=1` replays one.
    pub fn assert_none(self, what: &str, prefix: &str) {
        assert!(
            self.0.is_empty(),
            "{} of the {what} failed (replay with {prefix}_SEED=<seed> {prefix}_CASES=1):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}
