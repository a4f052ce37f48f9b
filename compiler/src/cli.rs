//! The `tessera` command line (cli.md): argument parsing and one function
//! per subcommand.
//!
//! [`run`] is the whole program minus the process: it takes the arguments
//! and two writers and returns the exit code, so tests drive the CLI
//! in-process. Diagnostics go to the error writer, results to the output
//! writer.

use crate::driver::{self, Failure, Source};
use crate::{inputs, simulate};
use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use tessera_ir::{Code, Diagnostic, Tensor};

/// Tessera: a kernel compiler for NPU dataflow machines.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard error is a terminal.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Compilation targets.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// The reference interpreter (`run` only).
    Ref,
    /// The NPU simulator.
    Sim,
    /// Host code through Cranelift.
    Host,
}

/// What `--emit` can print.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Emit {
    /// The syntax tree.
    Ast,
    /// The IR after lowering.
    Ir,
    /// The IR after optimisation.
    OptIr,
    /// The kernel plan (stages and schedules).
    Plan,
    /// NPU assembly.
    Asm,
    /// NPU bytecode.
    Tbc,
    /// Cranelift IR.
    Clif,
    /// A host object file.
    Obj,
    /// A C header for the host object.
    Header,
}

impl Emit {
    fn name(self) -> &'static str {
        match self {
            Emit::Ast => "ast",
            Emit::Ir => "ir",
            Emit::OptIr => "opt-ir",
            Emit::Plan => "plan",
            Emit::Asm => "asm",
            Emit::Tbc => "tbc",
            Emit::Clif => "clif",
            Emit::Obj => "obj",
            Emit::Header => "header",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Emit::Ast => "ast",
            Emit::Ir => "tir",
            Emit::OptIr => "opt.tir",
            Emit::Plan => "plan",
            Emit::Asm => "s",
            Emit::Tbc => "tbc",
            Emit::Clif => "clif",
            Emit::Obj => "o",
            Emit::Header => "h",
        }
    }
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and type-check every kernel of a file; print all diagnostics.
    #[command(after_help = "Example:\n  tessera check examples/mlp.tsr")]
    Check {
        /// The `.tsr` file.
        file: PathBuf,
    },
    /// Compile one kernel (or all with --all) and emit the requested stages.
    #[command(
        after_help = "Example:\n  tessera compile examples/softmax.tsr --dim B=4 --dim N=128 --emit ast,ir"
    )]
    Compile(CompileArgs),
    /// Run a kernel (compiling it first) and write its outputs as .npy files.
    #[command(
        after_help = "Example:\n  tessera run examples/mlp.tsr --target ref --random-inputs --seed 1 --dim M=64 --dim K=32 --dim N=16"
    )]
    Run(RunArgs),
    /// Compile and simulate a kernel (timing only); print cycles, the roofline bound and efficiency.
    #[command(
        after_help = "Example:\n  tessera bench examples/mlp.tsr -k mlp --dim M=1024 --dim K=1024 --dim N=1024"
    )]
    Bench(BenchArgs),
    /// Assemble NPU assembly text into bytecode.
    #[command(after_help = "Example:\n  tessera asm kernel.s -o kernel.tbc")]
    Asm {
        /// The assembly file.
        file: PathBuf,
        /// The bytecode file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The machine (default: the file's `.machine` directive, else 910b-like).
        #[arg(long)]
        machine: Option<String>,
    },
    /// Print the assembly text of a bytecode file.
    #[command(after_help = "Example:\n  tessera disasm kernel.tbc")]
    Disasm {
        /// The `.tbc` file.
        file: PathBuf,
    },
    /// Print a machine description (TOML) or the names of the built-in machines.
    #[command(
        after_help = "Example:\n  tessera machine list\n  tessera machine show --machine 910-like"
    )]
    Machine {
        /// `show` (default) or `list`.
        #[arg(value_enum, default_value_t = MachineAction::Show)]
        action: MachineAction,
        /// A built-in name or a TOML file.
        #[arg(long)]
        machine: Option<String>,
    },
}

/// `tessera machine` actions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum MachineAction {
    /// Print a description as TOML.
    Show,
    /// List the built-in machines.
    List,
}

/// Arguments of `compile`.
#[derive(clap::Args, Debug)]
pub struct CompileArgs {
    /// The `.tsr` file.
    pub file: PathBuf,
    /// The kernel to compile (needed when the file has several).
    #[arg(short = 'k', long = "kernel")]
    pub kernel: Option<String>,
    /// Compile every kernel of the file.
    #[arg(long, conflicts_with = "kernel")]
    pub all: bool,
    /// Bind a symbolic dim: `--dim M=1024` (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    pub dims: Vec<String>,
    /// The target.
    #[arg(long, value_enum, default_value_t = Target::Sim)]
    pub target: Target,
    /// A built-in machine name or a TOML file.
    #[arg(long)]
    pub machine: Option<String>,
    /// Optimisation level: -O0 (no fusion), -O1, -O2.
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = ["0", "1", "2"])]
    pub opt_level: String,
    /// Stages to print: ast, ir, opt-ir, plan, asm, tbc, clif, obj, header.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub emit: Vec<Emit>,
    /// Output file (one stage) or directory (several stages or kernels).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The `.tsr` (or `.tbc`) file.
    pub file: PathBuf,
    /// The kernel to run (needed when the file has several).
    #[arg(short = 'k', long = "kernel")]
    pub kernel: Option<String>,
    /// An input tensor: `--input x=x.npy` (repeatable).
    #[arg(long = "input", value_name = "NAME=PATH")]
    pub inputs: Vec<String>,
    /// Generate the inputs not given with --input.
    #[arg(long)]
    pub random_inputs: bool,
    /// Seed for --random-inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bind a symbolic dim: `--dim M=1024` (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    pub dims: Vec<String>,
    /// The target.
    #[arg(long, value_enum, default_value_t = Target::Sim)]
    pub target: Target,
    /// A built-in machine name or a TOML file.
    #[arg(long)]
    pub machine: Option<String>,
    /// Where to write the outputs.
    #[arg(long, default_value = "out")]
    pub out_dir: PathBuf,
    /// Also run the reference interpreter and compare every output.
    #[arg(long)]
    pub check: bool,
    /// Write a Chrome trace of the simulation.
    #[arg(long, value_name = "PATH")]
    pub trace: Option<PathBuf>,
    /// Write the simulation statistics as JSON.
    #[arg(long, value_name = "PATH")]
    pub stats_json: Option<PathBuf>,
    /// Simulate timing only (no numerics).
    #[arg(long)]
    pub timing_only: bool,
}

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The `.tsr` file.
    #[arg(required_unless_present = "suite")]
    pub file: Option<PathBuf>,
    /// The kernel.
    #[arg(short = 'k', long = "kernel")]
    pub kernel: Option<String>,
    /// Bind a symbolic dim (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    pub dims: Vec<String>,
    /// A built-in machine name or a TOML file (with `--suite`: only this machine).
    #[arg(long)]
    pub machine: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run the whole benchmark suite (`benches/suite.toml`) on both built-in
    /// machines and write `RESULTS.md` and `RESULTS.json` to `--out-dir`.
    #[arg(long, conflicts_with_all = ["file", "kernel", "dims", "json"])]
    pub suite: bool,
    /// Where `--suite` writes its tables.
    #[arg(long, default_value = "benches")]
    pub out_dir: PathBuf,
}

/// Writers and settings of one invocation.
pub struct Io<'w> {
    /// Results.
    pub out: &'w mut dyn Write,
    /// Diagnostics.
    pub err: &'w mut dyn Write,
    /// Whether to colour diagnostics.
    pub color: bool,
}

impl Io<'_> {
    fn report(&mut self, diags: &[Diagnostic], source: Option<&Source>) {
        let (name, text) = source.map_or(("<command line>", ""), |s| {
            (s.name.as_str(), s.text.as_str())
        });
        let rendered = tessera_ir::diag::render(diags, name, text, self.color);
        let _ = self.err.write_all(rendered.as_bytes());
    }

    /// Prints a failure and returns its exit code.
    fn fail(&mut self, f: Failure) -> i32 {
        let code = f.exit_code();
        match f {
            Failure::Input { diags, source } | Failure::Fault { diags, source } => {
                self.report(&diags, source.as_ref())
            }
            Failure::Mismatch => {}
            Failure::Usage(m) => {
                let _ = writeln!(self.err, "error: {m}");
            }
            Failure::Internal(m) => {
                let _ = writeln!(self.err, "error: internal compiler error: {m}");
                let _ = writeln!(
                    self.err,
                    "note: this is a bug in Tessera; please report it with the input that caused it"
                );
            }
        }
        code
    }
}

/// Runs the `tessera` command line. `tty` says whether the error writer is
/// a terminal (for `--color auto`).
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write, tty: bool) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                return 2;
            }
            let _ = out.write_all(text.as_bytes());
            return 0;
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => tty,
    };
    let mut io = Io { out, err, color };
    let result = match &cli.command {
        Command::Check { file } => cmd_check(&mut io, file),
        Command::Compile(a) => cmd_compile(&mut io, a),
        Command::Run(a) => cmd_run(&mut io, a),
        Command::Bench(a) => cmd_bench(&mut io, a),
        Command::Asm {
            file,
            output,
            machine,
        } => cmd_asm(&mut io, file, output, machine.as_deref()),
        Command::Disasm { file } => cmd_disasm(&mut io, file),
        Command::Machine { action, machine } => cmd_machine(&mut io, *action, machine.as_deref()),
    };
    match result {
        Ok(()) => 0,
        Err(f) => io.fail(f),
    }
}

fn not_yet(what: &str) -> Failure {
    Failure::Usage(format!(
        "{what} is not available yet in this build of Tessera"
    ))
}

fn target_not_yet(t: Target) -> Failure {
    let what = match t {
        Target::Sim => "--target sim (the NPU code generator)",
        Target::Host => "--target host (the Cranelift backend)",
        Target::Ref => "--target ref",
    };
    not_yet(what)
}

fn cmd_machine(io: &mut Io<'_>, action: MachineAction, name: Option<&str>) -> Result<(), Failure> {
    match action {
        MachineAction::List => {
            for n in tessera_sim::Machine::builtin_names() {
                let default = if n == simulate::DEFAULT_MACHINE {
                    " (default)"
                } else {
                    ""
                };
                let _ = writeln!(io.out, "{n}{default}");
            }
        }
        MachineAction::Show => {
            let m = simulate::machine(name)?;
            let _ = io.out.write_all(m.to_toml().as_bytes());
        }
    }
    Ok(())
}

fn cmd_asm(
    io: &mut Io<'_>,
    file: &std::path::Path,
    output: &std::path::Path,
    machine: Option<&str>,
) -> Result<(), Failure> {
    let src = driver::load_source(file)?;
    let (m, program) = simulate::assemble(&src, machine)?;
    let bytes = tessera_sim::encode(&program);
    std::fs::write(output, &bytes).map_err(|e| {
        Failure::input(vec![Diagnostic::new(
            Code::E0600,
            format!("cannot write `{}`: {e}", output.display()),
        )])
    })?;
    let _ = writeln!(
        io.out,
        "{}: kernel `{}` for {}, {} bytes -> {}",
        src.name,
        program.kernel,
        m.name,
        bytes.len(),
        output.display()
    );
    Ok(())
}

fn cmd_disasm(io: &mut Io<'_>, file: &std::path::Path) -> Result<(), Failure> {
    let bytes = std::fs::read(file).map_err(|e| {
        Failure::input(vec![Diagnostic::new(
            Code::E0600,
            format!("cannot read `{}`: {e}", file.display()),
        )])
    })?;
    let program = tessera_sim::decode(&bytes).map_err(|e| {
        Failure::input(vec![Diagnostic::with_code(
            e.code,
            format!("`{}`: {} (at byte {})", file.display(), e.message, e.offset),
        )])
    })?;
    let _ = io
        .out
        .write_all(tessera_sim::disassemble(&program).as_bytes());
    Ok(())
}

fn cmd_bench(io: &mut Io<'_>, a: &BenchArgs) -> Result<(), Failure> {
    if a.suite {
        return crate::suite::run_suite(io.out, a.machine.as_deref(), &a.out_dir);
    }
    let file = a
        .file
        .as_deref()
        .ok_or_else(|| Failure::Usage("`tessera bench` needs a FILE.tsr (or `--suite`)".into()))?;
    let src = driver::load_source(file)?;
    let parsed = driver::parse_and_check(&src)?;
    let def = driver::select_kernel(&parsed, a.kernel.as_deref())?;
    let env = inputs::parse_dims(&a.dims, def).map_err(|d| Failure::in_source(d, &src))?;
    let kernel = driver::lower(&parsed, &def.name.name, &env, &src)?;
    let machine = simulate::machine(a.machine.as_deref())?;
    let r = crate::bench::bench(&kernel, &machine, &src)?;
    let text = if a.json {
        serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"
    } else {
        r.table()
    };
    let _ = io.out.write_all(text.as_bytes());
    Ok(())
}

fn cmd_check(io: &mut Io<'_>, file: &std::path::Path) -> Result<(), Failure> {
    let src = driver::load_source(file)?;
    let parsed = driver::parse_and_check(&src)?;
    let _ = writeln!(
        io.out,
        "{}: {} kernel{} checked, no errors",
        src.name,
        parsed.kernels.len(),
        if parsed.kernels.len() == 1 { "" } else { "s" }
    );
    Ok(())
}

fn cmd_compile(io: &mut Io<'_>, a: &CompileArgs) -> Result<(), Failure> {
    if a.target == Target::Ref {
        return Err(Failure::Usage(
            "`--target ref` runs the reference interpreter: use `tessera run`".into(),
        ));
    }
    let src = driver::load_source(&a.file)?;
    let file = driver::parse_and_check(&src)?;
    let mut emits = a.emit.clone();
    emits.dedup();
    if emits.is_empty() {
        emits.push(match a.target {
            Target::Sim => Emit::Tbc,
            Target::Host | Target::Ref => Emit::Obj,
        });
    }
    let npu_stages = [Emit::Plan, Emit::Asm, Emit::Tbc];
    let available = |e: &Emit| {
        matches!(e, Emit::Ast | Emit::Ir) || (a.target == Target::Sim && npu_stages.contains(e))
    };
    if let Some(e) = emits.iter().find(|e| !available(e)) {
        let why = match e {
            Emit::OptIr => "the optimiser",
            _ => "the host backend, `--target host`",
        };
        return Err(not_yet(&format!("`--emit {}` ({why})", e.name())));
    }
    if emits.contains(&Emit::Tbc) && a.output.is_none() {
        return Err(Failure::Usage(
            "`--emit tbc` writes binary bytecode: give `-o PATH`".into(),
        ));
    }
    let machine = if emits.iter().any(|e| npu_stages.contains(e)) {
        Some(simulate::machine(a.machine.as_deref())?)
    } else {
        None
    };
    let kernels: Vec<&tessera_frontend::ast::KernelDef> = if a.all {
        file.kernels.iter().collect()
    } else if emits == [Emit::Ast] {
        Vec::new()
    } else {
        vec![driver::select_kernel(&file, a.kernel.as_deref())?]
    };
    // (stage, kernel or file name, bytes)
    let mut outputs: Vec<(Emit, String, Vec<u8>)> = Vec::new();
    if emits.contains(&Emit::Ast) {
        let text = tessera_frontend::ast::print_file(&file);
        outputs.push((Emit::Ast, file_stem(&a.file), text.into_bytes()));
    }
    for def in &kernels {
        let env = inputs::parse_dims(&a.dims, def).map_err(|d| Failure::in_source(d, &src))?;
        let k = driver::lower(&file, &def.name.name, &env, &src)?;
        let name = def.name.name.clone();
        if emits.contains(&Emit::Ir) {
            outputs.push((
                Emit::Ir,
                name.clone(),
                tessera_ir::text::print_kernel(&k).into_bytes(),
            ));
        }
        if let Some(m) = &machine {
            let code = driver::compile_npu(&k, m, &src)?;
            for &e in &emits {
                match e {
                    Emit::Plan => outputs.push((e, name.clone(), code.plan.text().into_bytes())),
                    Emit::Asm => {
                        let text = tessera_sim::disassemble(&code.program);
                        outputs.push((e, name.clone(), text.into_bytes()));
                    }
                    Emit::Tbc => {
                        outputs.push((e, name.clone(), tessera_sim::encode(&code.program)))
                    }
                    _ => {}
                }
            }
        }
    }
    write_outputs(io, a.output.as_deref(), &outputs)
}

fn file_stem(p: &std::path::Path) -> String {
    p.file_stem()
        .map_or_else(|| "out".to_string(), |s| s.to_string_lossy().into_owned())
}

fn write_outputs(
    io: &mut Io<'_>,
    output: Option<&std::path::Path>,
    outputs: &[(Emit, String, Vec<u8>)],
) -> Result<(), Failure> {
    let io_err = |p: &std::path::Path, e: std::io::Error| {
        Failure::input(vec![Diagnostic::new(
            Code::E0600,
            format!("cannot write `{}`: {e}", p.display()),
        )])
    };
    match output {
        None => {
            let many = outputs.len() > 1;
            for (e, name, text) in outputs {
                if many {
                    let _ = writeln!(io.out, "// ---- {} of {name}", e.name());
                }
                let _ = io.out.write_all(text);
            }
        }
        Some(path) if outputs.len() == 1 => {
            std::fs::write(path, &outputs[0].2).map_err(|e| io_err(path, e))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
            for (e, name, text) in outputs {
                let p = dir.join(format!("{name}.{}", e.extension()));
                std::fs::write(&p, text).map_err(|err| io_err(&p, err))?;
            }
        }
    }
    Ok(())
}

/// Summary statistics of a tensor for the run report.
fn summary(t: &Tensor) -> String {
    if t.is_empty() {
        return String::new();
    }
    let (mut lo, mut hi, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    let mut nan = 0usize;
    for i in 0..t.len() {
        let x = t.get_f64(i);
        if x.is_nan() {
            nan += 1;
            continue;
        }
        lo = lo.min(x);
        hi = hi.max(x);
        sum += x;
    }
    let n = t.len() - nan;
    let mean = if n > 0 { sum / n as f64 } else { f64::NAN };
    let mut s = format!("min {lo:.6} max {hi:.6} mean {mean:.6}");
    if nan > 0 {
        s.push_str(&format!(" ({nan} NaN)"));
    }
    s
}

fn shape_text(t: &Tensor) -> String {
    let dims: Vec<String> = t.shape.iter().map(usize::to_string).collect();
    format!("{}[{}]", t.dtype, dims.join(", "))
}

fn cmd_run(io: &mut Io<'_>, a: &RunArgs) -> Result<(), Failure> {
    if a.file.extension().is_some_and(|e| e == "tbc") {
        return run_bytecode(io, a);
    }
    if a.check && a.target == Target::Ref {
        return Err(Failure::Usage(
            "`--check` compares a target with the reference interpreter; it has no meaning with `--target ref`".into(),
        ));
    }
    if a.target == Target::Host {
        return Err(target_not_yet(a.target));
    }
    if a.target == Target::Ref && (a.trace.is_some() || a.stats_json.is_some() || a.timing_only) {
        return Err(Failure::Usage(
            "`--trace`, `--stats-json` and `--timing-only` need a simulated target (`--target sim`)".into(),
        ));
    }
    if a.timing_only && a.check {
        return Err(Failure::Usage(
            "`--check` needs numerics; it cannot be combined with `--timing-only`".into(),
        ));
    }
    let src = driver::load_source(&a.file)?;
    let file = driver::parse_and_check(&src)?;
    let def = driver::select_kernel(&file, a.kernel.as_deref())?;
    let mut env = inputs::parse_dims(&a.dims, def).map_err(|d| Failure::in_source(d, &src))?;
    let given = inputs::parse_inputs(&a.inputs, def).map_err(|d| Failure::in_source(d, &src))?;
    let mut origin: Vec<(String, String)> = env
        .keys()
        .map(|k| (k.clone(), format!("`--dim {k}`")))
        .collect();
    // Read the given inputs and bind dims from their shapes.
    let mut tensors: Vec<Option<Tensor>> = vec![None; def.params.len()];
    let mut diags = Vec::new();
    for (i, path) in &given {
        let p = &def.params[*i];
        match inputs::read_input(path, &p.name.name, p.ty.dtype) {
            Ok(t) => {
                let what = format!("input `{}` ({})", p.name.name, path.display());
                match inputs::bind_shape(def, *i, &t.shape, &what, &mut env, &mut origin) {
                    Ok(()) => tensors[*i] = Some(t),
                    Err(d) => diags.push(d),
                }
            }
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        return Err(Failure::in_source(diags, &src));
    }
    let missing: Vec<&str> = def
        .params
        .iter()
        .zip(&tensors)
        .filter(|(_, t)| t.is_none())
        .map(|(p, _)| p.name.name.as_str())
        .collect();
    if !missing.is_empty() && !a.random_inputs {
        return Err(Failure::input(vec![
            Diagnostic::new(
                Code::E0605,
                format!(
                    "missing input{} `{}`",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join("`, `")
                ),
            )
            .help("give each with `--input NAME=PATH.npy`, or pass `--random-inputs`"),
        ]));
    }
    let kernel = driver::lower(&file, &def.name.name, &env, &src)?;
    for p in &kernel.params {
        let n = p.ty.shape.num_elements().unwrap_or(u64::MAX);
        if n > tessera_ir::interp::MAX_ELEMENTS as u64 {
            return Err(Failure::input(vec![Diagnostic::new(
                Code::E0503,
                format!(
                    "parameter `{}` ({}) has {n} elements; the reference interpreter is limited to {}",
                    p.name,
                    p.ty,
                    tessera_ir::interp::MAX_ELEMENTS
                ),
            )]));
        }
    }
    let inputs: Vec<Tensor> = tensors
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                let p = &kernel.params[i];
                let shape = p.ty.shape.as_usize().unwrap_or_default();
                inputs::random_tensor(p.ty.dtype, shape, a.seed, i)
            })
        })
        .collect();
    if a.target == Target::Ref {
        let outputs = run_reference(&kernel, &inputs, &src)?;
        return write_tensors(io, &a.out_dir, &kernel, &outputs, "ref");
    }
    let machine = simulate::machine(a.machine.as_deref())?;
    let code = driver::compile_npu(&kernel, &machine, &src)?;
    let named: Vec<(String, tessera_sim::Tensor)> = kernel
        .params
        .iter()
        .zip(&inputs)
        .map(|(p, t)| (p.name.clone(), simulate::to_sim(t)))
        .collect();
    let opts = tessera_sim::RunOptions {
        timing_only: a.timing_only,
        trace: a.trace.is_some(),
        ..tessera_sim::RunOptions::default()
    };
    let out =
        tessera_sim::run(&machine, &code.program, &named, &opts).map_err(simulate::run_error)?;
    let _ = io.out.write_all(out.report.table().as_bytes());
    write_side_files(a, &out)?;
    if a.timing_only {
        return Ok(());
    }
    let outputs: Vec<Tensor> = out
        .outputs
        .iter()
        .map(|(_, t)| simulate::from_sim(t))
        .collect::<Result<_, _>>()?;
    if a.check {
        let reference = run_reference(&kernel, &inputs, &src)?;
        if !compare_outputs(io, &kernel, &outputs, &reference) {
            return Err(Failure::Mismatch);
        }
    }
    write_tensors(io, &a.out_dir, &kernel, &outputs, &machine.name)?;
    Ok(())
}

/// `tessera run FILE.tbc`: bytecode on the simulator.
fn run_bytecode(io: &mut Io<'_>, a: &RunArgs) -> Result<(), Failure> {
    if a.target != Target::Sim && a.target != Target::Ref {
        return Err(Failure::Usage(
            "a `.tbc` file runs on the simulator (`--target sim`)".into(),
        ));
    }
    if a.check {
        return Err(Failure::Usage(
            "`--check` needs the kernel's source to run the reference interpreter; give the `.tsr` file".into(),
        ));
    }
    if !a.dims.is_empty() {
        return Err(Failure::Usage(
            "a `.tbc` file has static shapes; `--dim` does not apply".into(),
        ));
    }
    let (machine, program) = simulate::load_bytecode(&a.file, a.machine.as_deref())?;
    // Inputs, by the signature in the file.
    let mut given: Vec<(usize, PathBuf)> = Vec::new();
    let mut diags = Vec::new();
    for arg in &a.inputs {
        let Some((name, path)) = arg.split_once('=') else {
            diags.push(
                Diagnostic::new(Code::E0606, format!("malformed `--input {arg}`"))
                    .help("write `--input NAME=PATH.npy`"),
            );
            continue;
        };
        match program.params.iter().position(|p| p.name == name) {
            Some(i) if given.iter().any(|(j, _)| *j == i) => {
                diags.push(Diagnostic::new(
                    Code::E0605,
                    format!("input `{name}` is given twice"),
                ));
            }
            Some(i) => given.push((i, PathBuf::from(path))),
            None => diags.push(Diagnostic::new(
                Code::E0605,
                format!("kernel `{}` has no parameter `{name}`", program.kernel),
            )),
        }
    }
    let mut tensors: Vec<(String, tessera_sim::Tensor)> = Vec::new();
    for (i, p) in program.params.iter().enumerate() {
        let dtype = simulate::dtype(p.dtype);
        let shape: Vec<usize> = p.shape.iter().map(|&d| d as usize).collect();
        let t = match given.iter().find(|(j, _)| *j == i) {
            Some((_, path)) => match inputs::read_input(path, &p.name, dtype) {
                Ok(t) if t.shape == shape => t,
                Ok(t) => {
                    diags.push(Diagnostic::new(
                        Code::E0603,
                        format!(
                            "input `{}` ({}) has shape {:?}, but the parameter is {}",
                            p.name,
                            path.display(),
                            t.shape,
                            p.type_text()
                        ),
                    ));
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
            None if a.random_inputs || a.timing_only => {
                inputs::random_tensor(dtype, shape, a.seed, i)
            }
            None => {
                diags.push(
                    Diagnostic::new(
                        Code::E0605,
                        format!("missing input `{}` ({})", p.name, p.type_text()),
                    )
                    .help("give it with `--input NAME=PATH.npy`, or pass `--random-inputs`"),
                );
                continue;
            }
        };
        tensors.push((p.name.clone(), simulate::to_sim(&t)));
    }
    if !diags.is_empty() {
        return Err(Failure::input(diags));
    }
    let opts = tessera_sim::RunOptions {
        timing_only: a.timing_only,
        trace: a.trace.is_some(),
        ..tessera_sim::RunOptions::default()
    };
    let out = tessera_sim::run(&machine, &program, &tensors, &opts).map_err(simulate::run_error)?;
    let _ = io.out.write_all(out.report.table().as_bytes());
    write_side_files(a, &out)?;
    if a.timing_only {
        return Ok(());
    }
    let results: Vec<(String, Tensor)> = out
        .outputs
        .iter()
        .map(|(n, t)| simulate::from_sim(t).map(|t| (n.clone(), t)))
        .collect::<Result<_, _>>()?;
    write_named_tensors(io, &a.out_dir, &program.kernel, &results, &machine.name)
}

/// Writes `--trace` and `--stats-json` files of a simulation.
fn write_side_files(a: &RunArgs, out: &tessera_sim::run::RunOutput) -> Result<(), Failure> {
    let write = |p: &std::path::Path, text: &str| {
        std::fs::write(p, text).map_err(|e| {
            Failure::input(vec![Diagnostic::new(
                Code::E0600,
                format!("cannot write `{}`: {e}", p.display()),
            )])
        })
    };
    if let Some(p) = &a.stats_json {
        write(p, &out.report.to_json())?;
    }
    if let (Some(p), Some(json)) = (&a.trace, &out.trace_json) {
        write(p, json)?;
    }
    Ok(())
}

/// Compares outputs with the reference under the spec's tolerances; prints
/// one line per output and returns whether all match.
fn compare_outputs(
    io: &mut Io<'_>,
    kernel: &tessera_ir::Kernel,
    got: &[Tensor],
    reference: &[Tensor],
) -> bool {
    use tessera_ir::compare::{Tolerance, compare};
    let mut ok = true;
    for ((o, g), r) in kernel.outputs.iter().zip(got).zip(reference) {
        let tol = Tolerance::for_output(r.dtype, kernel.accumulated(o.value));
        let c = compare(g, r, tol);
        let verdict = if c.ok() { "ok" } else { "MISMATCH" };
        let _ = writeln!(
            io.out,
            "check {:<10} max abs err {:.3e}  max rel err {:.3e}  (tolerance {:.0e} + {:.0e}·|ref|)  {verdict}",
            o.name, c.max_abs, c.max_rel, tol.atol, tol.rtol
        );
        if let Some((i, g, r)) = c.first_mismatch {
            let _ = writeln!(
                io.out,
                "      first mismatch at flat index {i}: got {g}, reference {r} ({} mismatches)",
                c.mismatches
            );
        }
        ok &= c.ok();
    }
    ok
}

/// Runs the reference interpreter, mapping its errors to failures.
fn run_reference(
    kernel: &tessera_ir::Kernel,
    inputs: &[Tensor],
    src: &Source,
) -> Result<Vec<Tensor>, Failure> {
    use tessera_ir::interp::{InterpError, run};
    run(kernel, inputs).map_err(|e| match e {
        InterpError::DivByZero { span, .. } => {
            let mut d = Diagnostic::new(Code::E0700, "integer division by zero");
            if let Some(s) = span {
                d = d.primary(s, "a divisor is zero");
            }
            Failure::Fault {
                diags: vec![d],
                source: Some(src.clone()),
            }
        }
        InterpError::TooLarge { .. } => {
            Failure::input(vec![Diagnostic::new(Code::E0503, e.to_string())])
        }
        InterpError::Inputs(m) | InterpError::NotConcrete(m) => Failure::Internal(m),
    })
}

/// Writes every output of a kernel (all or nothing) and prints the summary.
fn write_tensors(
    io: &mut Io<'_>,
    dir: &std::path::Path,
    kernel: &tessera_ir::Kernel,
    outputs: &[Tensor],
    target: &str,
) -> Result<(), Failure> {
    let named: Vec<(String, Tensor)> = kernel
        .outputs
        .iter()
        .map(|o| o.name.clone())
        .zip(outputs.iter().cloned())
        .collect();
    write_named_tensors(io, dir, &kernel.name, &named, target)
}

/// Writes named tensors as `DIR/NAME.npy` (all or nothing) and prints the summary.
fn write_named_tensors(
    io: &mut Io<'_>,
    dir: &std::path::Path,
    kernel: &str,
    outputs: &[(String, Tensor)],
    target: &str,
) -> Result<(), Failure> {
    let io_err = |p: &std::path::Path, e: std::io::Error| {
        Failure::input(vec![Diagnostic::new(
            Code::E0600,
            format!("cannot write `{}`: {e}", p.display()),
        )])
    };
    let encoded: Vec<Vec<u8>> = outputs
        .iter()
        .map(|(_, t)| crate::npy::encode(t))
        .collect::<Result<_, _>>()
        .map_err(|e| io_err(dir, e))?;
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut temps = Vec::new();
    for ((name, _), bytes) in outputs.iter().zip(&encoded) {
        let tmp = dir.join(format!(".{name}.npy.partial"));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            for t in &temps {
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&tmp, e));
        }
        temps.push(tmp);
    }
    let _ = writeln!(
        io.out,
        "kernel `{kernel}` on {target}: {} output{}",
        outputs.len(),
        if outputs.len() == 1 { "" } else { "s" }
    );
    for ((name, t), tmp) in outputs.iter().zip(&temps) {
        let path = dir.join(format!("{name}.npy"));
        std::fs::rename(tmp, &path).map_err(|e| io_err(&path, e))?;
        let _ = writeln!(
            io.out,
            "  {:<10} {:<20} {}  -> {}",
            name,
            shape_text(t),
            summary(t),
            path.display()
        );
    }
    Ok(())
}
