//! The pipeline driver: source → AST → checked → IR, and the outcome type
//! every command returns.
//!
//! Stages run in order and stop at the first stage with errors, after that
//! stage has reported *all* of its errors. Each command turns a [`Failure`]
//! into its exit code (cli.md): 1 for bad input or a `--check` mismatch, 2
//! for usage errors, 3 for a fault of the simulated machine (or a runtime
//! fault of the reference interpreter), 70 for an internal compiler error.

use std::path::Path;
use tessera_frontend::ast::{File, KernelDef, Stmt};
use tessera_ir::{Code, Diagnostic, DimEnv, Kernel, Span, Tensor};

/// A source file and its text.
#[derive(Clone, Debug)]
pub struct Source {
    /// The path as given.
    pub name: String,
    /// The text.
    pub text: String,
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The input was wrong; exit 1.
    Input {
        /// What to report.
        diags: Vec<Diagnostic>,
        /// The source the spans point into.
        source: Option<Source>,
    },
    /// `--check` found a mismatch (already printed); exit 1.
    Mismatch,
    /// A usage error; exit 2.
    Usage(String),
    /// The simulated machine (or the interpreter) faulted; exit 3.
    Fault {
        /// What to report.
        diags: Vec<Diagnostic>,
        /// The source the spans point into.
        source: Option<Source>,
    },
    /// A compiler bug; exit 70.
    Internal(String),
}

impl Failure {
    /// Input diagnostics without a source.
    pub fn input(diags: Vec<Diagnostic>) -> Failure {
        Failure::Input {
            diags,
            source: None,
        }
    }

    /// Input diagnostics with spans into `source`.
    pub fn in_source(diags: Vec<Diagnostic>, source: &Source) -> Failure {
        Failure::Input {
            diags,
            source: Some(source.clone()),
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Input { .. } | Failure::Mismatch => 1,
            Failure::Usage(_) => 2,
            Failure::Fault { .. } => 3,
            Failure::Internal(_) => 70,
        }
    }
}

/// Reads a source file.
pub fn load_source(path: &Path) -> Result<Source, Failure> {
    let bytes = crate::files::read(path, crate::files::MAX_SOURCE_BYTES, "source file")?;
    let name = path.display().to_string();
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source { name, text }),
        Err(e) if e.as_bytes().starts_with(&tessera_sim::bytecode::MAGIC) => {
            Err(Failure::input(vec![
                Diagnostic::new(
                    Code::E0001,
                    format!("`{name}` is Tessera bytecode, not a source file"),
                )
                .help("this command takes text (a `.tsr` source; `tessera asm` an assembly file); `tessera run` and `tessera disasm` take bytecode"),
            ]))
        }
        Err(e) => {
            // The text up to the bad byte is the same in the lossy copy, where
            // the byte is U+FFFD: the diagnostic points at it with a line,
            // a column and the line around it.
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let d = Diagnostic::new(
                Code::E0001,
                format!("`{name}` is not UTF-8 (invalid byte at offset {at})"),
            )
            .primary(
                Span::new(at, at + char::REPLACEMENT_CHARACTER.len_utf8()),
                "this byte starts no UTF-8 character",
            )
            .help("source files are UTF-8: re-save the file in that encoding");
            Err(Failure::in_source(vec![d], &Source { name, text }))
        }
    }
}

/// Parses and checks a whole file; all diagnostics of the first failing
/// stage are returned together.
pub fn parse_and_check(src: &Source) -> Result<File, Failure> {
    let (file, diags) = tessera_frontend::parse::parse(&src.text);
    if !diags.is_empty() {
        return Err(Failure::in_source(
            with_independent(&file, diags, &src.text),
            src,
        ));
    }
    if file.kernels.is_empty() {
        // language.md: a source file holds one or more kernels.
        return Err(Failure::in_source(
            vec![
                Diagnostic::new(Code::E0502, "the file defines no kernel")
                    .primary(Span::new(0, 0), "expected a `kernel` definition"),
            ],
            src,
        ));
    }
    let diags = tessera_frontend::lower::check(&file);
    if !diags.is_empty() {
        return Err(Failure::in_source(diags, src));
    }
    Ok(file)
}

/// A file's syntax errors and the type errors of the kernels they left
/// whole or recovered: the errors of a file that are independent come in
/// one run (language.md). A kernel whose syntax errors all lie in
/// statements the parser skipped (to their `;`) is checked without those
/// statements, the names they may have bound standing for nothing (their
/// uses report nothing more) and a `return` they may have held not
/// missing; a kernel holding any other syntax error (in its signature, or
/// an expression nested too deep) is not checked, as its recovered parts
/// would give errors that are not the user's. When a
/// syntax error lies outside every kernel (a definition the parser dropped,
/// or an unfinished last one), a call to an unknown function is reported
/// only if no `kernel NAME` of the text names it, as it may name the
/// dropped kernel.
fn with_independent(file: &File, syntax: Vec<Diagnostic>, text: &str) -> Vec<Diagnostic> {
    let at = |d: &Diagnostic| d.labels.iter().find(|l| l.primary).map(|l| l.span);
    let within =
        |s: tessera_ir::Span, k: &KernelDef| k.span.start <= s.start && s.end <= k.span.end;
    let skipped = |k: &KernelDef, s: tessera_ir::Span| {
        k.body.iter().any(|st| match st {
            Stmt::Error { span, .. } => span.start <= s.start && s.end <= span.end,
            _ => false,
        })
    };
    let whole: Vec<&KernelDef> = file
        .kernels
        .iter()
        .filter(|k| {
            syntax.iter().all(|d| {
                at(d).is_none_or(|s| {
                    !within(s, k)
                        || file.recovered.contains(&s)
                        || (d.code != Code::E0012.as_str() && skipped(k, s))
                })
            })
        })
        .collect();
    let dropped = syntax
        .iter()
        .any(|d| at(d).is_none_or(|s| !file.kernels.iter().any(|k| within(s, k))));
    // A kernel the parser dropped may still have left its name: every
    // `kernel NAME` of the text. A call to a name none of them has is
    // unknown whatever the syntax error was.
    let declared = declared_kernel_names(text);
    let maybe_dropped = |d: &Diagnostic| {
        at(d).is_none_or(|s| {
            let callee = text.get(s.start as usize..s.end as usize).unwrap_or("");
            declared.iter().any(|n| n == callee) || declared.is_empty()
        })
    };
    let mut all = syntax;
    if whole.is_empty() {
        return all;
    }
    all.extend(
        tessera_frontend::lower::check(file)
            .into_iter()
            .filter(|d| {
                at(d).is_some_and(|s| whole.iter().any(|k| within(s, k)))
                    && !(dropped && d.code == Code::E0101.as_str() && maybe_dropped(d))
            }),
    );
    all
}

/// The names after every `kernel` keyword of a source text, parsed or not.
fn declared_kernel_names(text: &str) -> Vec<String> {
    use tessera_frontend::lexer::{Lexer, Token};
    let tokens: Vec<Token> = Lexer::new(text)
        .filter_map(|t| t.ok().map(|t| t.1))
        .collect();
    tokens
        .windows(2)
        .filter_map(|w| match w {
            [Token::Kernel, Token::Ident(n)] => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// Picks the kernel named by `-k`, or the only kernel of the file.
pub fn select_kernel<'f>(file: &'f File, name: Option<&str>) -> Result<&'f KernelDef, Failure> {
    let names: Vec<&str> = file.kernels.iter().map(|k| k.name.name.as_str()).collect();
    match name {
        Some(n) => file
            .kernels
            .iter()
            .find(|k| k.name.name == n)
            .ok_or_else(|| {
                Failure::input(vec![
                    Diagnostic::new(Code::E0502, format!("no kernel named `{n}`"))
                        .note(format!("the file defines: {}", names.join(", "))),
                ])
            }),
        None => match file.kernels.as_slice() {
            [only] => Ok(only),
            [] => Err(Failure::input(vec![Diagnostic::new(
                Code::E0502,
                "the file defines no kernel",
            )])),
            _ => Err(Failure::input(vec![
                Diagnostic::new(
                    Code::E0502,
                    "the file defines several kernels; choose one with `-k`",
                )
                .note(format!("the file defines: {}", names.join(", "))),
            ])),
        },
    }
}

/// Lowers a checked kernel with its dims bound.
pub fn lower(file: &File, name: &str, env: &DimEnv, src: &Source) -> Result<Kernel, Failure> {
    tessera_frontend::lower::lower(file, name, env).map_err(|diags| {
        if let Some(ice) = diags.iter().find(|d| d.code == "ICE") {
            Failure::Internal(ice.message.clone())
        } else {
            Failure::in_source(diags, src)
        }
    })
}

/// A kernel compiled for the NPU: the optimised kernel, its plan and
/// program.
pub struct NpuCode {
    /// The kernel the plan was made from (the optimiser's output).
    pub kernel: Kernel,
    /// What the optimiser did.
    pub report: crate::opt::Report,
    /// The plan.
    pub plan: tessera_ir::plan::Plan,
    /// The program (its assembly text is `tessera_sim::disassemble`).
    pub program: tessera_sim::Program,
}

/// Candidates a cube matmul stage the backend could not generate is tried
/// with before the failure stands.
const RESCHEDULES: usize = 16;

/// Optimises (at `level`), plans and generates a concrete kernel for a
/// machine. The optimiser never fails a kernel that `-O0` compiles: a fused
/// group whose stage cannot be scheduled (a capacity error) or generated
/// (the backend's templates have limits the planner does not see, such as
/// a machine's event ids) is split into its ops, one stage each, and
/// planning tried again, the other groups kept (a cube matmul stage first
/// takes the cost model's next candidates); when planning or code
/// generation still fails with no group left to split, the unoptimised
/// kernel is planned instead.
pub fn compile_npu(
    kernel: &Kernel,
    machine: &tessera_sim::Machine,
    src: &Source,
    level: crate::opt::Level,
) -> Result<NpuCode, Failure> {
    compile_npu_tuned(kernel, machine, src, level, &crate::tune::Tuning::default())
        .map(|(code, _)| code)
}

/// [`compile_npu`] with the tuned schedules of `tuning` (`tessera tune`)
/// where they match a stage; with a note for each matching entry not used.
pub fn compile_npu_tuned(
    kernel: &Kernel,
    machine: &tessera_sim::Machine,
    src: &Source,
    level: crate::opt::Level,
    tuning: &crate::tune::Tuning,
) -> Result<(NpuCode, Vec<String>), Failure> {
    fits_the_npu(kernel)?;
    supported_machine(machine)?;
    let optimised = crate::opt::optimise(kernel, machine, level).map_err(Failure::Internal)?;
    let mut report = optimised.report;
    let mut candidate = optimised.kernel;
    loop {
        let (planned, mut plan) =
            plan_optimised(candidate, kernel, machine, src, level, &mut report)?;
        let notes = crate::tune::apply(&mut plan, tuning, machine);
        fits_gm(&planned, &plan)?;
        if plan.stages.len() > tessera_sim::program::MAX_LAUNCHES {
            return Err(Failure::input(vec![Diagnostic::new(
                Code::E0504,
                format!(
                    "kernel `{}` plans to {} stages; the NPU program holds at most {} launches",
                    planned.name,
                    plan.stages.len(),
                    tessera_sim::program::MAX_LAUNCHES
                ),
            )]));
        }
        let mut result = tessera_backend::npu::compile(&plan, machine);
        // A cube matmul stage the backend cannot generate (its templates'
        // limits, such as a machine's event ids, are not the scheduler's)
        // takes the cost model's next candidates, up to RESCHEDULES. Stages
        // are generated in order, so when one takes a candidate a later one
        // may fail next: each failing stage gets its own candidates.
        let failed_stage = |r: &Result<_, tessera_backend::npu::CodegenError>| match r {
            Err(e) => e.1,
            Ok(_) => None,
        };
        let mut rescheduled = Vec::new();
        while let Some(i) = failed_stage(&result).filter(|i| !rescheduled.contains(i)) {
            rescheduled.push(i);
            for n in 0..RESCHEDULES {
                let mut other = plan.clone();
                if !crate::tune::reschedule(&mut other, i, n, machine) {
                    break;
                }
                let r = tessera_backend::npu::compile(&other, machine);
                // Taken when it generates, or fails at a stage not yet
                // rescheduled (a later one, which then gets its own turn).
                let taken = match &r {
                    Ok(_) => true,
                    Err(e) => e.1.is_some_and(|j| j != i && !rescheduled.contains(&j)),
                };
                if taken {
                    (result, plan) = (r, other);
                    break;
                }
            }
        }
        let e = match result {
            Ok(program) => {
                let code = NpuCode {
                    kernel: planned,
                    report,
                    plan,
                    program,
                };
                return Ok((code, notes));
            }
            Err(e) => e,
        };
        // A fused group whose stage the backend cannot generate is split
        // into its ops, as one the planner cannot schedule; with no group
        // to split, the kernel as written; then the failure stands.
        if level == crate::opt::Level::O0 || report.fallback {
            return Err(Failure::Internal(format!(
                "code generation for `{}`: {e}",
                kernel.name
            )));
        }
        candidate = planned;
        let failed = e.1.and_then(|i| plan.stages.get(i));
        if !split_groups(
            &mut candidate,
            failed.map_or(&[][..], |st| &st.nodes),
            &mut report,
        ) {
            candidate = kernel.clone();
            report.fallback = true;
        }
    }
}

/// `E0505` when the code generator cannot target `machine` (a valid
/// description the simulator runs, but outside what the generated code
/// assumes: `tessera_backend::npu::unsupported`).
fn supported_machine(machine: &tessera_sim::Machine) -> Result<(), Failure> {
    match unsupported_machine(machine, None) {
        None => Ok(()),
        Some(d) => Err(Failure::input(vec![d])),
    }
}

/// The `E0505` of a machine the code generator cannot target, naming each
/// field; with the description's `text`, each field also gets a label where
/// it is (`tessera_sim::Machine::field_span`).
pub fn unsupported_machine(
    machine: &tessera_sim::Machine,
    text: Option<&str>,
) -> Option<Diagnostic> {
    let unmet = tessera_backend::npu::unsupported(machine);
    if unmet.is_empty() {
        return None;
    }
    let mut d = Diagnostic::new(
        Code::E0505,
        format!(
            "the code generator cannot target machine `{}`",
            machine.name
        ),
    );
    for (i, (field, need, have)) in unmet.into_iter().enumerate() {
        let what = format!("field `{field}` is {have}; the code generator needs {need}");
        d = match text.and_then(|t| tessera_sim::Machine::field_span(t, field)) {
            Some(r) if i == 0 => d.primary(Span::new(r.start, r.end), what),
            Some(r) => d.secondary(Span::new(r.start, r.end), what),
            None => d.note(what),
        };
    }
    Some(d)
}

/// Splits the fused groups of `nodes` (indices into `kernel`'s nodes) into
/// their ops, counting them in `report`; whether there was any.
fn split_groups(kernel: &mut Kernel, nodes: &[usize], report: &mut crate::opt::Report) -> bool {
    let groups: std::collections::BTreeSet<u32> = nodes
        .iter()
        .filter_map(|&j| kernel.nodes.get(j).and_then(|n| n.group))
        .collect();
    for n in &mut kernel.nodes {
        if n.group.is_some_and(|g| groups.contains(&g)) {
            n.group = None;
        }
    }
    report.split += groups.len();
    report.groups -= groups.len().min(report.groups);
    !groups.is_empty()
}

/// A kernel compiled for the host (`--target host`).
pub struct HostCode {
    /// The kernel the host code was made from (the optimiser's output).
    pub kernel: Kernel,
    /// What the optimiser did.
    pub report: crate::opt::Report,
    /// The compiled code.
    pub host: tessera_backend::host::HostKernel,
}

/// Optimises (at `level`, weighing with the default machine's cost model)
/// and compiles a concrete kernel for the host.
pub fn compile_host(kernel: &Kernel, level: crate::opt::Level) -> Result<HostCode, Failure> {
    let machine = crate::simulate::machine(None)?;
    let optimised = crate::opt::optimise(kernel, &machine, level).map_err(Failure::Internal)?;
    let host = tessera_backend::host::HostKernel::compile(&optimised.kernel).map_err(|e| {
        if let tessera_backend::host::HostError::TooLarge { .. } = e {
            Failure::input(vec![Diagnostic::new(Code::E0503, e.to_string())])
        } else {
            Failure::Internal(format!("host code for `{}`: {e}", kernel.name))
        }
    })?;
    Ok(HostCode {
        kernel: optimised.kernel,
        report: optimised.report,
        host,
    })
}

/// Optimises a concrete kernel (as [`compile_host`]) and compiles it ahead
/// of time: an object whose entry point takes `dims` (the symbolic dims'
/// names and compiled values, in the C signature's order) and its header.
pub fn compile_host_object(
    kernel: &Kernel,
    level: crate::opt::Level,
    dims: &[(String, u64)],
) -> Result<tessera_backend::host::HostObject, Failure> {
    let machine = crate::simulate::machine(None)?;
    let optimised = crate::opt::optimise(kernel, &machine, level).map_err(Failure::Internal)?;
    tessera_backend::host::compile_object(&optimised.kernel, dims)
        .map_err(|e| Failure::Internal(format!("host object for `{}`: {e}", kernel.name)))
}

/// Plans an optimised kernel, splitting the fused groups whose stages
/// cannot be scheduled (see [`compile_npu`]); `original` is the kernel as
/// written, planned when no group is left to split.
pub fn plan_optimised(
    optimised: Kernel,
    original: &Kernel,
    machine: &tessera_sim::Machine,
    src: &Source,
    level: crate::opt::Level,
    report: &mut crate::opt::Report,
) -> Result<(Kernel, tessera_ir::plan::Plan), Failure> {
    let failure = |diags: Vec<Diagnostic>| {
        if let Some(ice) = diags.iter().find(|d| d.code == "ICE") {
            Failure::Internal(ice.message.clone())
        } else {
            Failure::in_source(diags, src)
        }
    };
    let mut candidate = optimised;
    let (kernel, plan) = loop {
        let (diags, unscheduled) = match crate::plan::plan_or_unscheduled(&candidate, machine) {
            Ok(plan) => break (candidate, plan),
            Err(e) => e,
        };
        let failed = failure(diags);
        if matches!(failed, Failure::Internal(_)) || level == crate::opt::Level::O0 {
            return Err(failed);
        }
        if !split_groups(&mut candidate, &unscheduled, report) {
            let plan = crate::plan::plan(original, machine).map_err(failure)?;
            report.fallback = true;
            break (original.clone(), plan);
        }
    };
    Ok((kernel, plan))
}

/// The NPU's kernel calls take at most [`MAX_ARGS`] tensors of at most 16
/// dims each (the bytecode's tensor declarations).
///
/// [`MAX_ARGS`]: tessera_sim::program::MAX_ARGS
fn fits_the_npu(kernel: &Kernel) -> Result<(), Failure> {
    use tessera_sim::program::MAX_ARGS;
    let args = kernel.params.len() + kernel.outputs.len();
    if args > MAX_ARGS {
        return Err(Failure::input(vec![Diagnostic::new(
            Code::E0504,
            format!(
                "kernel `{}` has {} parameter(s) and {} result(s); an NPU kernel takes at most {MAX_ARGS} tensors",
                kernel.name,
                kernel.params.len(),
                kernel.outputs.len()
            ),
        )]));
    }
    // Until fusion every op that computes is a stage, and every stage a
    // launch: refuse before planning what the program could not hold.
    let computing = kernel
        .nodes
        .iter()
        .filter(|n| {
            !matches!(
                n.op,
                tessera_ir::Op::Full { .. }
                    | tessera_ir::Op::Reshape(_)
                    | tessera_ir::Op::Transpose(_)
                    | tessera_ir::Op::BroadcastTo(_)
                    | tessera_ir::Op::Slice { .. }
            )
        })
        .count();
    let most = tessera_sim::program::MAX_LAUNCHES;
    if computing > most {
        return Err(Failure::input(vec![Diagnostic::new(
            Code::E0504,
            format!(
                "kernel `{}` has {computing} ops that compute; each is one launch of the NPU program, which holds at most {most}",
                kernel.name
            ),
        )]));
    }
    let types = kernel
        .params
        .iter()
        .map(|p| (p.name.as_str(), &p.ty))
        .chain(
            kernel
                .outputs
                .iter()
                .map(|o| (o.name.as_str(), kernel.ty(o.value))),
        );
    for (name, ty) in types {
        if ty.shape.rank() > 16 {
            return Err(Failure::input(vec![Diagnostic::new(
                Code::E0504,
                format!(
                    "`{name}` ({ty}) has {} dims; an NPU kernel's tensors have at most 16",
                    ty.shape.rank()
                ),
            )]));
        }
    }
    Ok(())
}

/// The kernel's tensors and the plan's workspace must fit the simulator's
/// GM (each tensor 4 KiB aligned), at most `MAX_GM_BYTES`.
fn fits_gm(kernel: &Kernel, plan: &tessera_ir::plan::Plan) -> Result<(), Failure> {
    use tessera_sim::program::{MAX_GM_BYTES, gm_footprint};
    let bytes: Vec<u128> = plan
        .params()
        .chain(plan.results())
        .map(|b| {
            let n: u128 = b.shape.iter().map(|&d| u128::from(d)).product();
            n * b.dtype.size_bytes() as u128
        })
        .collect();
    let total = gm_footprint(bytes.iter().copied(), plan.workspace);
    let tensors: u128 = bytes.iter().sum();
    let alignment = total - tensors - u128::from(plan.workspace);
    if total > u128::from(MAX_GM_BYTES) {
        return Err(Failure::input(vec![Diagnostic::new(
            Code::E0503,
            format!(
                "kernel `{}` needs {total} bytes of GM: {tensors} bytes for its tensors, {alignment} of alignment and {} of workspace; the simulated machine's GM holds {MAX_GM_BYTES} (1 TiB)",
                kernel.name, plan.workspace
            ),
        )]));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

/// Kernel `k` of source `text`, checked and lowered with no dims bound
/// (for unit tests elsewhere in the crate).
#[cfg(test)]
pub(crate) fn test_kernel(text: &str) -> Kernel {
    let src = Source {
        name: "t.tsr".into(),
        text: text.into(),
    };
    let Ok(file) = parse_and_check(&src) else {
        panic!("does not parse")
    };
    let Ok(kernel) = lower(&file, "k", &tessera_ir::DimEnv::default(), &src) else {
        panic!("does not lower")
    };
    kernel
}

/// One output's comparison with the reference, as `run --check` reports it.
pub struct OutputCheck {
    /// The output's name.
    pub name: String,
    /// The rule applied, in words (`exact: bit for bit`, a tolerance).
    pub rule: String,
    /// The comparison under that rule.
    pub comparison: tessera_ir::compare::Comparison,
}

/// Compares outputs with the reference under the spec's tolerances.
pub fn check(kernel: &Kernel, got: &[Tensor], reference: &[Tensor]) -> Vec<OutputCheck> {
    use tessera_ir::compare::{Rule, compare};
    kernel
        .outputs
        .iter()
        .zip(got)
        .zip(reference)
        .map(|((o, g), r)| {
            let rule = Rule::for_value(kernel, o.value);
            let c = compare(g, r, rule);
            OutputCheck {
                name: o.name.clone(),
                rule: rule.describe(c.max_ref),
                comparison: c,
            }
        })
        .collect()
}

/// The lines `run --check` prints (one per output, two where it
/// mismatches, the first mismatch named), and whether all match.
pub fn check_lines(checks: &[OutputCheck]) -> (Vec<String>, bool) {
    let mut lines = Vec::new();
    for k in checks {
        let c = &k.comparison;
        let verdict = if c.ok() { "ok" } else { "MISMATCH" };
        lines.push(format!(
            "check {:<10} max abs err {:.3e}  max rel err {:.3e}  ({})  {verdict}",
            k.name, c.max_abs, c.max_rel, k.rule
        ));
        if let Some((i, g, r)) = c.first_mismatch {
            lines.push(format!(
                "      first mismatch at flat index {i}: got {g}, reference {r} ({} mismatches)",
                c.mismatches
            ));
        }
    }
    (lines, checks.iter().all(|k| k.comparison.ok()))
}

/// The same report as JSON (`run --check --stats-json`'s `check`): one
/// object per output. A figure that is not a finite number (an infinite
/// error where a NaN or an infinity is not matched) is a string: `"inf"`,
/// `"-inf"` or `"NaN"`.
pub fn check_json(checks: &[OutputCheck]) -> serde_json::Value {
    let num = |x: f64| {
        if x.is_finite() {
            serde_json::Value::from(x)
        } else if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    };
    checks
        .iter()
        .map(|k| {
            let c = &k.comparison;
            serde_json::json!({
                "output": k.name,
                "ok": c.ok(),
                "max_abs_err": num(c.max_abs),
                "max_rel_err": num(c.max_rel),
                "rule": k.rule,
                "mismatches": c.mismatches,
                "first_mismatch": c.first_mismatch.map(|(i, g, r)| serde_json::json!({
                    "index": i,
                    "got": num(g),
                    "reference": num(r),
                })),
            })
        })
        .collect()
}

/// [`check`] and [`check_lines`] together.
pub fn check_outputs(kernel: &Kernel, got: &[Tensor], reference: &[Tensor]) -> (Vec<String>, bool) {
    check_lines(&check(kernel, got, reference))
}

/// The runtime fault of an integer division by zero at `span`.
fn div_by_zero(span: Option<tessera_ir::Span>, src: &Source) -> Failure {
    let mut d = Diagnostic::new(Code::E0700, "integer division by zero");
    if let Some(s) = span {
        d = d.primary(s, "a divisor is zero");
    }
    Failure::Fault {
        diags: vec![d],
        source: Some(src.clone()),
    }
}

/// A host run's error as the reference's would be.
pub fn host_failure(e: tessera_backend::host::HostError, kernel: &Kernel, src: &Source) -> Failure {
    use tessera_backend::host::HostError;
    match e {
        HostError::DivByZero { node } => {
            div_by_zero(kernel.nodes.get(node).and_then(|n| n.span), src)
        }
        HostError::TooLarge { .. } => {
            Failure::input(vec![Diagnostic::new(Code::E0503, e.to_string())])
        }
        HostError::Unsupported(_) | HostError::Codegen(_) | HostError::Inputs(_) => {
            Failure::Internal(e.to_string())
        }
    }
}

/// Runs the reference interpreter, mapping its errors to failures.
pub fn run_reference(
    kernel: &Kernel,
    inputs: &[Tensor],
    src: &Source,
) -> Result<Vec<Tensor>, Failure> {
    use tessera_ir::interp::{InterpError, run};
    run(kernel, inputs).map_err(|e| match e {
        InterpError::DivByZero { span, .. } => div_by_zero(span, src),
        InterpError::TooLarge { .. } => {
            Failure::input(vec![Diagnostic::new(Code::E0503, e.to_string())])
        }
        InterpError::Inputs(m) | InterpError::NotConcrete(m) => Failure::Internal(m),
    })
}

/// `--emit opt-ir`: the optimised kernel and the optimiser's report.
pub fn opt_ir_text(kernel: &Kernel, report: &crate::opt::Report) -> String {
    tessera_ir::text::print_kernel(kernel) + &report.text()
}
