//! The `tessera` command line (cli.md): argument parsing and one function
//! per subcommand.
//!
//! [`run()`] is the whole program minus the process: it takes the arguments
//! and two writers and returns the exit code, so tests drive the CLI
//! in-process. Diagnostics go to the error writer, results to the output
//! writer.

mod compile;
mod run;
mod tune;

use crate::driver::{self, Failure, Source};
use crate::{inputs, simulate};
use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use tessera_ir::{Code, Diagnostic};

/// Tessera: a kernel compiler for NPU dataflow machines.
#[derive(Parser, Debug)]
#[command(name = "tessera", version, about, long_about = None)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// How to print errors: rustc-style text, or one JSON object per line.
    #[arg(long, global = true, value_enum, default_value_t = ErrorFormat::Human)]
    pub error_format: ErrorFormat,
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

/// `--error-format`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ErrorFormat {
    /// Rendered rustc-style, with the source lines.
    Human,
    /// One JSON object per error on standard error (`docs/diagnostics.md`).
    Json,
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
        after_help = "Example:\n  tessera compile examples/softmax.tsr -k softmax_f32 --dim B=4 --dim N=128 --emit ast,ir"
    )]
    Compile(CompileArgs),
    /// Run a kernel (compiling it first) and write its outputs as .npy files.
    #[command(
        after_help = "Example:\n  tessera run examples/mlp.tsr -k mlp --target ref --random-inputs --seed 1 --dim M=64 --dim D=32 --dim H=16"
    )]
    Run(RunArgs),
    /// Compile and simulate a kernel (timing only); print cycles, the roofline bound and efficiency.
    #[command(
        after_help = "Example:\n  tessera bench examples/mlp.tsr -k mlp --dim M=256 --dim D=256 --dim H=256"
    )]
    Bench(BenchArgs),
    /// Simulate the cost model's best few schedules of each matmul stage and record the fastest in a tuning file.
    #[command(
        after_help = "Example:\n  tessera tune benches/kernels.tsr -k gemm --dim M=256 --dim N=256 --dim K=256 -o tuning.toml\n  tessera bench benches/kernels.tsr -k gemm --dim M=256 --dim N=256 --dim K=256 --tuning tuning.toml"
    )]
    Tune(TuneArgs),
    /// Assemble NPU assembly text into bytecode.
    #[command(
        after_help = "Example:\n  tessera compile examples/softmax.tsr -k softmax_f32 --dim B=4 --dim N=128 --emit asm -o softmax.s\n  tessera asm softmax.s -o softmax.tbc\n  tessera asm testsuite/cases/asm/gemm_f16_910b.s -D M=1024 -o gemm.tbc"
    )]
    Asm {
        /// The assembly file.
        file: PathBuf,
        /// The bytecode file to write.
        #[arg(short, long)]
        output: PathBuf,
        /// The machine (default: the file's `.machine` directive, else 910b-like).
        #[arg(long)]
        machine: Option<String>,
        /// Override the file's `.equ NAME`: `-D T=4096` (repeatable).
        #[arg(short = 'D', long = "define", value_name = "NAME=VALUE", value_parser = define_arg)]
        defines: Vec<(String, i64)>,
    },
    /// Print the assembly text of a bytecode file.
    #[command(after_help = "Example:\n  tessera disasm softmax.tbc")]
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
    #[arg(long = "dim", value_name = "NAME=VALUE", value_parser = dim_arg)]
    pub dims: Vec<String>,
    /// The target.
    #[arg(long, value_enum, default_value_t = Target::Sim)]
    pub target: Target,
    /// A built-in machine name or a TOML file.
    #[arg(long)]
    pub machine: Option<String>,
    /// Optimisation level: -O0 (no optimiser: one stage per op), -O1 (no
    /// fusion), -O2 (default).
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = ["0", "1", "2"])]
    pub opt_level: String,
    /// Stages to print: ast, ir, opt-ir, plan, asm, tbc, clif, obj, header
    /// (default: tbc, or obj with `--target host`; both need `-o`).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub emit: Vec<Emit>,
    /// Output file (one stage) or directory (several stages or kernels).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// A tuning file from `tessera tune` (default: `tuning.toml` in the
    /// per-user cache directory, when there is one).
    #[arg(long, value_name = "FILE")]
    pub tuning: Option<PathBuf>,
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
    #[arg(long = "input", value_name = "NAME=PATH", value_parser = input_arg)]
    pub inputs: Vec<String>,
    /// Generate the inputs not given with --input.
    #[arg(long)]
    pub random_inputs: bool,
    /// Seed for --random-inputs (0 when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Bind a symbolic dim: `--dim M=1024` (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE", value_parser = dim_arg)]
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
    /// Threads of `--target host` (default: every core); the results are
    /// the same bits for any count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Optimisation level: -O0 (no optimiser: one stage per op), -O1 (no
    /// fusion), -O2 (default).
    #[arg(short = 'O', value_name = "LEVEL", value_parser = ["0", "1", "2"])]
    pub opt_level: Option<String>,
    /// A tuning file from `tessera tune` (default: `tuning.toml` in the
    /// per-user cache directory, when there is one).
    #[arg(long, value_name = "FILE")]
    pub tuning: Option<PathBuf>,
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
    #[arg(long = "dim", value_name = "NAME=VALUE", value_parser = dim_arg)]
    pub dims: Vec<String>,
    /// A built-in machine name or a TOML file (with `--suite`: only this machine).
    #[arg(long)]
    pub machine: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Optimisation level: -O0 (no optimiser: one stage per op), -O1 (no
    /// fusion), -O2 (default).
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = ["0", "1", "2"])]
    pub opt_level: String,

    /// Run the whole benchmark suite (`benches/suite.toml`) on both built-in
    /// machines and write `RESULTS.md` and `RESULTS.json` to `--out-dir`.
    /// It runs every kernel at -O0 and -O2, untuned and tuned, itself: `-O`
    /// and `--tuning` mean nothing with it.
    #[arg(long, conflicts_with_all = ["file", "kernel", "dims", "json", "opt_level", "tuning"])]
    pub suite: bool,
    /// `sim`: simulated cycles against the roofline; `host`: wall-clock
    /// time of the host code on this machine.
    #[arg(long, value_enum, default_value = "sim")]
    pub target: Target,
    /// Threads of `--target host` (default: every core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Where `--suite` writes its tables [default: benches].
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// A tuning file from `tessera tune` (default: `tuning.toml` in the
    /// per-user cache directory, when there is one).
    #[arg(long, value_name = "FILE")]
    pub tuning: Option<PathBuf>,
}

/// Arguments of `tune`.
#[derive(clap::Args, Debug)]
pub struct TuneArgs {
    /// The `.tsr` file.
    pub file: PathBuf,
    /// The kernel.
    #[arg(short = 'k', long = "kernel")]
    pub kernel: Option<String>,
    /// Bind a symbolic dim (repeatable).
    #[arg(long = "dim", value_name = "NAME=VALUE", value_parser = dim_arg)]
    pub dims: Vec<String>,
    /// A built-in machine name or a TOML file.
    #[arg(long)]
    pub machine: Option<String>,
    /// Optimisation level.
    #[arg(short = 'O', value_name = "LEVEL", default_value = "2", value_parser = ["0", "1", "2"])]
    pub opt_level: String,
    /// Candidates to simulate per stage (the cost model's cheapest).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub top: u16,
    /// The tuning file to add the winners to (default: `tuning.toml` in the
    /// per-user cache directory).
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The optimiser level of an `-O` argument (clap admits only 0, 1, 2).
/// The form of a `--dim NAME=VALUE` argument, checked as clap parses it: a
/// malformed one is a usage error (exit 2, cli.md). Whether the kernel has
/// that dim is the file's business (E0606).
fn dim_arg(arg: &str) -> Result<String, String> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err("write NAME=VALUE, e.g. `--dim M=1024`".into());
    };
    let (name, value) = (name.trim(), value.trim());
    let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if name.is_empty() {
        return Err("the dim's name is missing (write NAME=VALUE, e.g. `--dim M=1024`)".into());
    }
    if !ident {
        return Err(format!(
            "`{name}` is not a dim name (write NAME=VALUE, e.g. `--dim M=1024`)"
        ));
    }
    match value.parse::<u64>() {
        Ok(v) if v > 0 => Ok(arg.to_string()),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
            Err(format!("`{value}` is too large for a dim"))
        }
        _ => Err(format!(
            "`{value}` is not a positive integer (dims are positive)"
        )),
    }
}

/// A `-D NAME=VALUE` of `asm`: an integer constant that overrides `.equ NAME`.
fn define_arg(arg: &str) -> Result<(String, i64), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or("write NAME=VALUE, e.g. `-D T=4096`")?;
    let name = name.trim();
    let ident = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(format!(
            "`{name}` is not a constant's name (write NAME=VALUE, e.g. `-D T=4096`)"
        ));
    }
    let value = value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("`{}` is not a 64-bit integer", value.trim()))?;
    Ok((name.to_string(), value))
}

/// The form of an `--input NAME=PATH` argument (a usage error if malformed).
fn input_arg(arg: &str) -> Result<String, String> {
    match arg.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(arg.to_string()),
        _ => Err("write NAME=PATH, e.g. `--input x=x.npy`".into()),
    }
}

pub fn level(arg: &str) -> crate::opt::Level {
    crate::opt::Level::parse(arg).unwrap_or_default()
}

/// Writers and settings of one invocation.
pub struct Io<'w> {
    /// Results.
    pub out: &'w mut dyn Write,
    /// Diagnostics.
    pub err: &'w mut dyn Write,
    /// Whether to colour diagnostics.
    pub color: bool,
    /// Whether errors are printed as JSON lines.
    pub json: bool,
    /// The first write to `out` that failed.
    out_failed: &'w std::cell::RefCell<Option<std::io::Error>>,
}

impl Io<'_> {
    /// Flushes `out`, and fails (`E0600`) if anything printed so far did not
    /// reach it (a full disk, a closed descriptor). A command calls this
    /// before putting its files in place: one whose report was lost writes
    /// none (`docs/cli.md`, outputs).
    pub fn out_reached(&mut self) -> Result<(), Failure> {
        let _ = self.out.flush();
        match &*self.out_failed.borrow() {
            Some(e) => Err(stdout_failure(e)),
            None => Ok(()),
        }
    }

    fn report(&mut self, diags: &[Diagnostic], source: Option<&Source>) {
        let (name, text) = source.map_or(("<command line>", ""), |s| {
            (s.name.as_str(), s.text.as_str())
        });
        if self.json {
            let index = tessera_ir::diag::LineIndex::new(text);
            let file = source.map(|s| s.name.as_str());
            let (shown, rest) = diags.split_at(diags.len().min(tessera_ir::diag::MAX_RENDERED));
            for d in shown {
                let _ = writeln!(self.err, "{}", diagnostic_json(d, file, text, &index));
            }
            if !rest.is_empty() {
                let v = serde_json::json!({ "kind": "more", "code": null, "count": rest.len(),
                    "message": format!("{} more errors not shown", rest.len()) });
                let _ = writeln!(self.err, "{v}");
            }
            return;
        }
        let rendered = tessera_ir::diag::render(diags, name, text, self.color);
        let _ = self.err.write_all(rendered.as_bytes());
    }

    /// A note (an ignored tuning entry, an unchecked machine), in the chosen
    /// format: `note: …`, or a JSON line of kind `note`.
    fn note(&mut self, message: &str) {
        if self.json {
            let v = serde_json::json!({ "kind": "note", "code": null, "message": message });
            let _ = writeln!(self.err, "{v}");
        } else {
            let _ = writeln!(self.err, "note: {message}");
        }
    }

    /// An error without a code (a usage or internal error), in the chosen format.
    fn plain_error(&mut self, kind: &str, message: &str) {
        if self.json {
            let v = serde_json::json!({ "kind": kind, "code": null, "message": message });
            let _ = writeln!(self.err, "{v}");
        } else if kind == "internal" {
            let _ = writeln!(self.err, "error: internal compiler error: {message}");
            let _ = writeln!(
                self.err,
                "note: this is a bug in Tessera; please report it with the input that caused it"
            );
        } else {
            let _ = writeln!(self.err, "error: {message}");
        }
    }

    /// Prints a failure and returns its exit code.
    fn fail(&mut self, f: Failure) -> i32 {
        let code = f.exit_code();
        match f {
            Failure::Input { diags, source } | Failure::Fault { diags, source } => {
                self.report(&diags, source.as_ref())
            }
            Failure::Mismatch => {}
            Failure::Usage(m) => self.plain_error("usage", &m),
            Failure::Internal(m) => self.plain_error("internal", &m),
        }
        code
    }
}

/// One diagnostic as a JSON object: its code, message, notes and help, and
/// each label with its byte span and 1-based line and column (start and
/// end) in `file`.
fn diagnostic_json(
    d: &Diagnostic,
    file: Option<&str>,
    text: &str,
    index: &tessera_ir::diag::LineIndex,
) -> serde_json::Value {
    let pos = |at: u32| {
        let (line, column) = index.line_col(text, at as usize);
        serde_json::json!({ "line": line, "column": column })
    };
    let labels: Vec<serde_json::Value> = d
        .labels
        .iter()
        .map(|l| {
            serde_json::json!({
                "primary": l.primary,
                "message": l.message,
                "start": l.span.start,
                "end": l.span.end,
                "from": pos(l.span.start),
                "to": pos(l.span.end),
            })
        })
        .collect();
    let at = d
        .primary_span()
        .filter(|_| file.is_some())
        .map(|s| pos(s.start));
    serde_json::json!({
        "kind": "error",
        "code": d.code,
        "message": d.message,
        // A diagnostic without a location (an `.npy` input of the wrong
        // dtype) is about no place in the source.
        "file": file.filter(|_| at.is_some()),
        "at": at,
        "labels": labels,
        "notes": d.notes,
        "help": d.help,
    })
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
            // `--help`, `--version`: printed, or exit 1 as any command whose
            // output did not reach standard output (a full disk).
            return match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    let _ = writeln!(err, "error[E0600]: cannot write to standard output: {e}");
                    1
                }
            };
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => tty,
    };
    let json = cli.error_format == ErrorFormat::Json;
    let failed = std::cell::RefCell::new(None);
    let mut checked = CheckedOut {
        inner: out,
        failed: &failed,
    };
    let mut io = Io {
        out: &mut checked,
        err,
        color,
        json,
        out_failed: &failed,
    };
    let result = match &cli.command {
        Command::Check { file } => cmd_check(&mut io, file),
        Command::Compile(a) => compile::cmd_compile(&mut io, a),
        Command::Run(a) => run::cmd_run(&mut io, a),
        Command::Bench(a) => cmd_bench(&mut io, a),
        Command::Tune(a) => tune::cmd_tune(&mut io, a),
        Command::Asm {
            file,
            output,
            machine,
            defines,
        } => cmd_asm(&mut io, file, output, machine.as_deref(), defines),
        Command::Disasm { file } => cmd_disasm(&mut io, file),
        Command::Machine { action, machine } => cmd_machine(&mut io, *action, machine.as_deref()),
    };
    let _ = io.out.flush();
    // What the command printed did not all reach standard output (a full
    // disk, a closed descriptor): it did not do its job.
    let result = match (result, failed.borrow_mut().take()) {
        (Ok(()), Some(e)) => Err(stdout_failure(&e)),
        (result, _) => result,
    };
    match result {
        Ok(()) => 0,
        Err(f) => io.fail(f),
    }
}

fn stdout_failure(e: &std::io::Error) -> Failure {
    Failure::input(vec![Diagnostic::new(
        tessera_ir::Code::E0600,
        format!("cannot write to standard output: {e}"),
    )])
}

/// Standard output that remembers its first failed write. A closed pipe
/// (`tessera … | head`) is not a failure: the reader stopped reading.
struct CheckedOut<'w, 'f> {
    inner: &'w mut dyn Write,
    failed: &'f std::cell::RefCell<Option<std::io::Error>>,
}

impl CheckedOut<'_, '_> {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            let mut failed = self.failed.borrow_mut();
            if failed.is_none() {
                *failed = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl Write for CheckedOut<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

fn cmd_machine(io: &mut Io<'_>, action: MachineAction, name: Option<&str>) -> Result<(), Failure> {
    match action {
        MachineAction::List => {
            if name.is_some() {
                return Err(Failure::Usage(
                    "`machine list` prints the built-in names; `--machine` goes with `machine show`"
                        .into(),
                ));
            }
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
    defines: &[(String, i64)],
) -> Result<(), Failure> {
    let mut claims = crate::files::Claims::default();
    claims.input(file, "assembly source");
    claims.machine(machine);
    claims.output(output, "bytecode file")?;
    // As `--dim`: the same name given twice with different values is an
    // error, not the last one winning.
    for (i, (name, value)) in defines.iter().enumerate() {
        if let Some((_, prev)) = defines[..i].iter().find(|(n, v)| n == name && v != value) {
            return Err(Failure::input(vec![Diagnostic::new(
                Code::E0501,
                format!("`-D {name}` is given twice, as {prev} and as {value}"),
            )]));
        }
    }
    let src = driver::load_source(file)?;
    let (m, program) = simulate::assemble(&src, machine, defines)?;
    let bytes = tessera_sim::encode(&program);
    crate::files::write(output, &bytes)?;
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
    let bytes = crate::files::read(file, crate::files::MAX_BYTECODE_BYTES, "bytecode file")?;
    let bad = |e| crate::simulate::load_error(file, e);
    let program = tessera_sim::decode(&bytes).map_err(bad)?;
    // Checked as `run` checks it, so that what is printed assembles back
    // (a machine that is not built in cannot be checked: said so).
    // A machine file named like a built-in, or an older build's built-in
    // (another fingerprint), cannot be checked either.
    let unchecked = match tessera_sim::Machine::builtin(&program.machine) {
        Some(m) => match tessera_sim::load(&bytes, &m) {
            Ok(_) => None,
            Err(e) if e.code == "E0903" => {
                Some("is not this build's built-in machine of that name")
            }
            Err(e) => return Err(bad(e)),
        },
        None => Some("is not built in"),
    };
    if let Some(why) = unchecked {
        io.note(&format!(
            "machine `{}` {why}; the instructions were not checked against it",
            program.machine
        ));
    }
    let _ = io
        .out
        .write_all(tessera_sim::disassemble(&program).as_bytes());
    Ok(())
}

fn cmd_bench(io: &mut Io<'_>, a: &BenchArgs) -> Result<(), Failure> {
    match (a.target, a.threads.is_some(), a.suite) {
        (Target::Ref, ..) => {
            return Err(Failure::Usage(
                "`bench` measures the simulator (`--target sim`) or the host (`--target host`)"
                    .into(),
            ));
        }
        (Target::Sim, true, _) => {
            return Err(Failure::Usage(
                "`--threads` sets the host's threads; it needs `--target host`".into(),
            ));
        }
        (Target::Host, _, true) => {
            return Err(Failure::Usage(
                "`--suite` runs on the simulator; time a host kernel with `--target host FILE -k KERNEL`".into(),
            ));
        }
        _ => {}
    }
    tune::sim_flags(a.tuning.as_deref(), a.machine.as_deref(), a.target)?;
    if a.suite {
        let out_dir = a
            .out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("benches"));
        let batch = crate::suite::run_suite(io.out, a.machine.as_deref(), &out_dir)?;
        io.out_reached()?;
        // Committing makes `out_dir` (each file's directory) if need be.
        batch.commit()?;
        let _ = writeln!(
            io.out,
            "wrote {}/RESULTS.md and RESULTS.json",
            out_dir.display()
        );
        return Ok(());
    }
    if a.out_dir.is_some() {
        return Err(Failure::Usage(
            "`--out-dir` is where `--suite` writes its tables; a single kernel's figures go to standard output".into(),
        ));
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
    if a.target == Target::Host {
        let r = crate::host_bench::bench_host(
            &kernel,
            &src,
            level(&a.opt_level),
            a.threads.map(usize::from),
        )?;
        let text = if a.json {
            serde_json::to_string_pretty(&r).unwrap_or_default() + "\n"
        } else {
            r.table()
        };
        let _ = io.out.write_all(text.as_bytes());
        return Ok(());
    }
    let machine = simulate::target(a.machine.as_deref())?;
    let tuning = tune::tuning(io, a.tuning.as_deref())?;
    let r = crate::bench::bench(&kernel, &machine, &src, level(&a.opt_level), &tuning)?;
    tune::notes_out(io, &r.notes);
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

#[cfg(test)]
mod tests;
