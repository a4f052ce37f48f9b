//! Glue between the command line and the NPU model (`tessera-sim`):
//! machine selection, assembly and bytecode files, tensor conversion,
//! running a program and turning faults into diagnostics.

use crate::driver::{Failure, Source};
pub use tessera_backend::npu::{dt, dtype};
use tessera_ir::{Diagnostic, Tensor};
use tessera_sim::{Machine, Program};

/// The machine used when `--machine` is not given.
pub const DEFAULT_MACHINE: &str = "910b-like";

/// Loads `--machine NAME|PATH.toml` (or the default).
pub fn machine(name: Option<&str>) -> Result<Machine, Failure> {
    let name = name.unwrap_or(DEFAULT_MACHINE);
    Machine::load(name).map_err(|e| {
        let mut d = Diagnostic::with_code(e.code, format!("machine `{name}`: {}", e.message));
        // A syntax or type error is shown in the description itself.
        let mut source = None;
        if let Some((span, text)) = &e.at {
            d = d.primary(tessera_ir::Span::new(span.start, span.end), "here");
            source = Some(crate::driver::Source {
                name: name.to_string(),
                text: text.clone(),
            });
        }
        if let Some(f) = &e.field {
            d = d.note(format!("field `{f}`"));
        }
        if e.code == "E1003" {
            d = d.note(format!(
                "built-in machines: {}",
                Machine::builtin_names().join(", ")
            ));
        }
        match source {
            Some(src) => Failure::in_source(vec![d], &src),
            None => Failure::input(vec![d]),
        }
    })
}

/// [`machine`] for generating code: a description the code generator
/// cannot target is `E0505`, shown in the description file when it is one.
pub fn target(name: Option<&str>) -> Result<Machine, Failure> {
    let m = machine(name)?;
    let name = name.unwrap_or(DEFAULT_MACHINE);
    // A built-in is always supported; a file is read again for the labels
    // (the loader keeps no text), and without them if that fails now.
    let text = if Machine::builtin_names().contains(&name) {
        None
    } else {
        std::fs::read_to_string(name).ok()
    };
    match crate::driver::unsupported_machine(&m, text.as_deref()) {
        None => Ok(m),
        Some(d) => Err(match text {
            Some(text) if d.primary_span().is_some() => Failure::in_source(
                vec![d],
                &Source {
                    name: name.to_string(),
                    text,
                },
            ),
            _ => Failure::input(vec![d]),
        }),
    }
}

/// A host tensor as the simulator's raw tensor.
pub fn to_sim(t: &Tensor) -> tessera_sim::Tensor {
    tessera_sim::Tensor {
        dtype: dt(t.dtype),
        shape: t.shape.iter().map(|&d| d as u64).collect(),
        data: t.to_le_bytes(),
    }
}

/// A simulator tensor as a host tensor.
pub fn from_sim(t: &tessera_sim::Tensor) -> Result<Tensor, Failure> {
    let shape: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    Tensor::from_le_bytes(dtype(t.dtype), shape, &t.data).map_err(|e| {
        Failure::Internal(format!(
            "simulator output of {} bytes, expected {}",
            e.found, e.expected
        ))
    })
}

/// Assembles a `.s` file. The machine is `--machine`, else the file's
/// `.machine` directive, else the default.
pub fn assemble(
    src: &Source,
    machine_arg: Option<&str>,
    defines: &[(String, i64)],
) -> Result<(Machine, Program), Failure> {
    // A define overrides an `.equ` of the file: one naming none is a typo
    // (as a `--dim` naming no dim is).
    let declared = tessera_sim::asm::equ_names(&src.text);
    let unknown: Vec<Diagnostic> = defines
        .iter()
        .filter(|(name, _)| !declared.contains(&name.as_str()))
        .map(|(name, _)| {
            let d = Diagnostic::new(
                tessera_ir::Code::E0606,
                format!("`-D {name}` names no `.equ` of `{}`", src.name),
            );
            if declared.is_empty() {
                d.help("the file declares no `.equ`")
            } else {
                d.help(format!("its `.equ` names: {}", declared.join(", ")))
            }
        })
        .collect();
    if !unknown.is_empty() {
        return Err(Failure::input(unknown));
    }
    // `.machine NAME` picks a built-in machine only: the file's own text
    // never chooses a file to read (`--machine` gives a description).
    let m = match (machine_arg, tessera_sim::asm::machine_directive(&src.text)) {
        (Some(arg), _) => machine(Some(arg))?,
        (None, Some((name, span))) => Machine::builtin(&name).ok_or_else(|| {
            let d = Diagnostic::with_code(
                "E1003",
                format!("`.machine` names `{name}`, which is not a built-in machine"),
            )
            .primary(tessera_ir::Span::new(span.start, span.end), "")
            .help("give its description with `--machine FILE.toml`")
            .note(format!(
                "built-in machines: {}",
                Machine::builtin_names().join(", ")
            ));
            Failure::in_source(vec![d], src)
        })?,
        (None, None) => machine(None)?,
    };
    let opts = tessera_sim::AsmOptions {
        defines: defines.to_vec(),
    };
    let program = tessera_sim::assemble_with(&src.text, &m, &opts).map_err(|errs| {
        let diags = errs
            .into_iter()
            .map(|e| {
                Diagnostic::with_code(e.code, e.message)
                    .primary(tessera_ir::Span::new(e.span.start, e.span.end), "")
            })
            .collect();
        Failure::in_source(diags, src)
    })?;
    Ok((m, program))
}

/// Reads and fully validates a `.tbc` file. The machine is `--machine`,
/// else the one named in the file.
pub fn load_bytecode(
    path: &std::path::Path,
    machine_arg: Option<&str>,
) -> Result<(Machine, Program), Failure> {
    let bytes = crate::files::read(path, crate::files::MAX_BYTECODE_BYTES, "bytecode file")?;
    let bad = |e| load_error(path, e);
    let m = match machine_arg {
        Some(m) => machine(Some(m))?,
        None => header_machine(path, &tessera_sim::decode(&bytes).map_err(bad)?.machine)?,
    };
    let program = tessera_sim::load(&bytes, &m).map_err(bad)?;
    Ok((m, program))
}

/// A bytecode file the loader refuses, as a failure naming the file and
/// the byte offset.
pub fn load_error(path: &std::path::Path, e: tessera_sim::LoadError) -> Failure {
    Failure::input(vec![Diagnostic::with_code(
        e.code,
        format!("`{}`: {} (at byte {})", path.display(), e.message, e.offset),
    )])
}

/// The built-in machine a bytecode file names in its header. A name that
/// is not built in is not looked up as a path: the file's own bytes do
/// not choose a file to read; `--machine` gives the description.
pub fn header_machine(path: &std::path::Path, name: &str) -> Result<Machine, Failure> {
    Machine::builtin(name).ok_or_else(|| {
        Failure::input(vec![
            Diagnostic::with_code(
                "E1003",
                format!(
                    "`{}` was built for machine `{name}`, which is not built in",
                    path.display()
                ),
            )
            .help("give its description with `--machine FILE.toml`")
            .note(format!(
                "built-in machines: {}",
                Machine::builtin_names().join(", ")
            )),
        ])
    })
}

/// A simulator fault (or run error) as a failure with exit code 3 (faults)
/// or 1 (bad inputs).
pub fn run_error(e: tessera_sim::RunError) -> Failure {
    match e {
        tessera_sim::RunError::Input { code, message } => {
            Failure::input(vec![Diagnostic::with_code(code, message)])
        }
        tessera_sim::RunError::Fault(f) => {
            let mut d =
                Diagnostic::with_code(f.code(), format!("{}: {}", f.kind.title(), f.message));
            let mut at = if f.launches > 1 {
                format!(
                    "in launch {} of {}, at {}, pipe {}",
                    f.launch,
                    f.launches,
                    f.core,
                    f.pipe.report_name()
                )
            } else {
                format!("at {}, pipe {}", f.core, f.pipe.report_name())
            };
            if let Some(pc) = f.pc {
                at.push_str(&format!(", instruction #{pc} `{}`", f.insn));
            }
            at.push_str(&format!(", cycle {}", f.cycle));
            d = d.note(at);
            if let Some((space, addr)) = f.address {
                d = d.note(format!("address: {} {addr:#x}", space.name()));
            }
            Failure::Fault {
                diags: vec![d],
                source: None,
            }
        }
    }
}
