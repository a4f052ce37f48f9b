//! `tessera compile`: the stages `--emit` asks for, written to stdout, a
//! file or a directory.

use super::{CompileArgs, Emit, Io, Target};
use crate::driver::{self, Failure};
use crate::files::{self, Claims};
use crate::{inputs, simulate};
use tessera_ir::{Code, Diagnostic};

pub(super) fn cmd_compile(io: &mut Io<'_>, a: &CompileArgs) -> Result<(), Failure> {
    if a.target == Target::Ref {
        return Err(Failure::Usage(
            "`--target ref` runs the reference interpreter: use `tessera run`".into(),
        ));
    }
    super::tune::sim_flags(a.tuning.as_deref(), a.machine.as_deref(), a.target)?;
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
    let npu_stages = [Emit::OptIr, Emit::Plan, Emit::Asm, Emit::Tbc];
    let available = |e: &Emit| match a.target {
        Target::Sim => matches!(e, Emit::Ast | Emit::Ir) || npu_stages.contains(e),
        Target::Host => matches!(
            e,
            Emit::Ast | Emit::Ir | Emit::OptIr | Emit::Clif | Emit::Obj | Emit::Header
        ),
        Target::Ref => false,
    };
    if let Some(e) = emits.iter().find(|e| !available(e)) {
        let (stage, fix) = if npu_stages.contains(e) {
            ("the NPU backend's", "`--target sim` (the default)")
        } else {
            ("the host backend's", "`--target host`")
        };
        let target = match a.target {
            Target::Sim => "sim",
            Target::Host => "host",
            Target::Ref => "ref",
        };
        return Err(Failure::Usage(format!(
            "`--emit {}` is {stage} output, which `--target {target}` does not produce: use {fix}",
            e.name()
        )));
    }
    if emits.contains(&Emit::Tbc) && a.output.is_none() {
        return Err(Failure::Usage(if a.emit.is_empty() {
            "`compile` writes bytecode (`--emit tbc`) unless told otherwise: give `-o PATH`, or `--emit` a text stage (ir, opt-ir, plan, asm)".into()
        } else {
            "`--emit tbc` writes binary bytecode: give `-o PATH`".into()
        }));
    }
    if emits.contains(&Emit::Obj) && a.output.is_none() {
        return Err(Failure::Usage(
            "`--emit obj` writes an object file: give `-o PATH` (a directory with `--emit obj,header`)".into(),
        ));
    }
    let machine = if a.target == Target::Sim && emits.iter().any(|e| npu_stages.contains(e)) {
        Some(simulate::target(a.machine.as_deref())?)
    } else {
        None
    };
    // A tuning file named for stages not emitted is read all the same: a
    // bad one is an error whatever is asked.
    let tuning = if machine.is_some() || a.tuning.is_some() {
        super::tune::tuning(io, a.tuning.as_deref())?
    } else {
        crate::tune::Tuning::default()
    };
    // The syntax tree needs no dims: only the other stages lower a kernel.
    let lowers = emits.iter().any(|e| *e != Emit::Ast);
    let kernels: Vec<&tessera_frontend::ast::KernelDef> = if !lowers {
        Vec::new()
    } else if a.all {
        file.kernels.iter().collect()
    } else {
        vec![driver::select_kernel(&file, a.kernel.as_deref())?]
    };
    // (stage, kernel or file name, bytes)
    let mut outputs: Vec<(Emit, String, Vec<u8>)> = Vec::new();
    if emits.contains(&Emit::Ast) {
        // The syntax tree of the kernel `-k` names (as `KERNEL.ast`), else of
        // the whole file (as `FILE.ast`).
        match (&a.kernel, a.all) {
            (Some(_), false) => {
                let def = driver::select_kernel(&file, a.kernel.as_deref())?;
                let one = tessera_frontend::ast::File {
                    kernels: vec![def.clone()],
                    recovered: Vec::new(),
                };
                let text = tessera_frontend::ast::print_file(&one);
                outputs.push((Emit::Ast, def.name.name.clone(), text.into_bytes()));
            }
            _ => {
                let text = tessera_frontend::ast::print_file(&file);
                outputs.push((Emit::Ast, file_stem(&a.file), text.into_bytes()));
            }
        }
    }
    // With `--all`, each kernel takes the dims it has; a dim no kernel has
    // is still an error (a typo).
    let dim_names = |def: &tessera_frontend::ast::KernelDef| -> Vec<String> {
        tessera_frontend::lower::signature_dims(def)
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let named = |arg: &String| arg.split_once('=').map(|(n, _)| n.trim().to_string());
    // The kernels a `--dim` must belong to one of, where no one kernel's
    // binding checks it: `--all` over several kernels, or `--emit ast`
    // alone (which lowers nothing) without `-k`; `--emit ast -k K` checks
    // K's dims as lowering would.
    let scope: Vec<&tessera_frontend::ast::KernelDef> = if lowers {
        if a.all && kernels.len() > 1 {
            kernels.clone()
        } else {
            Vec::new()
        }
    } else if a.kernel.is_some() && !a.all {
        let def = driver::select_kernel(&file, a.kernel.as_deref())?;
        inputs::parse_dims(&a.dims, def).map_err(|d| Failure::in_source(d, &src))?;
        Vec::new()
    } else {
        file.kernels.iter().collect()
    };
    if !scope.is_empty() {
        let unknown: Vec<Diagnostic> = a
            .dims
            .iter()
            .filter_map(named)
            .filter(|n| !scope.iter().any(|def| dim_names(def).contains(n)))
            .map(|n| {
                let mut all: Vec<String> = scope.iter().flat_map(|d| dim_names(d)).collect();
                all.sort();
                all.dedup();
                Diagnostic::new(
                    Code::E0606,
                    format!("no kernel of the file has a symbolic dim `{n}`"),
                )
                .note(format!(
                    "the kernels' symbolic dims: {}",
                    if all.is_empty() {
                        "none".to_string()
                    } else {
                        all.join(", ")
                    }
                ))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(Failure::in_source(unknown, &src));
        }
    }
    let mut noted: Vec<String> = Vec::new();
    // With `--all`, an error in one kernel does not hide the next kernel's:
    // every kernel is tried, the errors of all are reported, and nothing
    // is written unless every kernel compiled.
    let mut errors: Vec<tessera_ir::Diagnostic> = Vec::new();
    for def in &kernels {
        let mut one = || -> Result<(), Failure> {
            let dims: Vec<String> = if a.all && kernels.len() > 1 {
                let own = dim_names(def);
                a.dims
                    .iter()
                    .filter(|arg| named(arg).is_none_or(|n| own.contains(&n)))
                    .cloned()
                    .collect()
            } else {
                a.dims.clone()
            };
            let env = inputs::parse_dims(&dims, def).map_err(|d| Failure::in_source(d, &src))?;
            let k = driver::lower(&file, &def.name.name, &env, &src)?;
            let name = def.name.name.clone();
            if emits.contains(&Emit::Ir) {
                outputs.push((
                    Emit::Ir,
                    name.clone(),
                    tessera_ir::text::print_kernel(&k).into_bytes(),
                ));
            }
            if a.target == Target::Host
                && emits.iter().any(|e| matches!(e, Emit::OptIr | Emit::Clif))
            {
                let code = driver::compile_host(&k, super::level(&a.opt_level))?;
                for &e in &emits {
                    match e {
                        Emit::OptIr => {
                            outputs.push((e, name.clone(), opt_ir(&code.kernel, &code.report)))
                        }
                        Emit::Clif => {
                            outputs.push((e, name.clone(), code.host.clif().as_bytes().to_vec()))
                        }
                        _ => {}
                    }
                }
            }
            if emits.iter().any(|e| matches!(e, Emit::Obj | Emit::Header)) {
                let dims: Vec<(String, u64)> = env.iter().map(|(n, v)| (n.clone(), *v)).collect();
                let obj = driver::compile_host_object(&k, super::level(&a.opt_level), &dims)?;
                for &e in &emits {
                    match e {
                        Emit::Obj => outputs.push((e, name.clone(), obj.object.clone())),
                        Emit::Header => {
                            outputs.push((e, name.clone(), obj.header.clone().into_bytes()))
                        }
                        _ => {}
                    }
                }
            }
            if let Some(m) = &machine {
                let (code, notes) =
                    driver::compile_npu_tuned(&k, m, &src, super::level(&a.opt_level), &tuning)?;
                // Once per command (`--all` compiles every kernel with the file).
                let fresh: Vec<String> = notes.into_iter().filter(|n| !noted.contains(n)).collect();
                super::tune::notes_out(io, &fresh);
                noted.extend(fresh);
                for &e in &emits {
                    match e {
                        Emit::OptIr => {
                            outputs.push((e, name.clone(), opt_ir(&code.kernel, &code.report)))
                        }
                        Emit::Plan => {
                            outputs.push((e, name.clone(), code.plan.text().into_bytes()))
                        }
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
            Ok(())
        };
        match one() {
            Ok(()) => {}
            // This file's diagnostics, and those of the code generator that
            // name no file (a stage the machine cannot hold, E0504).
            Err(Failure::Input { diags, source })
                if a.all && source.as_ref().is_none_or(|s| s.name == src.name) =>
            {
                errors.extend(diags)
            }
            Err(f) => return Err(f),
        }
    }
    if !errors.is_empty() {
        return Err(Failure::in_source(errors, &src));
    }
    write_outputs(io, a, &outputs)
}

fn opt_ir(kernel: &tessera_ir::Kernel, report: &crate::opt::Report) -> Vec<u8> {
    driver::opt_ir_text(kernel, report).into_bytes()
}

fn file_stem(p: &std::path::Path) -> String {
    p.file_stem()
        .map_or_else(|| "out".to_string(), |s| s.to_string_lossy().into_owned())
}

fn write_outputs(
    io: &mut Io<'_>,
    a: &CompileArgs,
    outputs: &[(Emit, String, Vec<u8>)],
) -> Result<(), Failure> {
    let Some(path) = a.output.as_deref() else {
        let many = outputs.len() > 1;
        for (e, name, text) in outputs {
            if many {
                let _ = writeln!(io.out, "// ---- {} of {name}", e.name());
            }
            let _ = io.out.write_all(text);
        }
        return Ok(());
    };
    // One file, or a directory of `KERNEL.EXT`; none may be the source
    // (or a machine file), each written whole or not at all.
    let mut claims = Claims::default();
    claims.input(&a.file, "source file");
    claims.machine(a.machine.as_deref());
    claims.tuning(a.tuning.as_deref());
    let targets: Vec<std::path::PathBuf> = if outputs.len() == 1 {
        vec![path.to_path_buf()]
    } else {
        outputs
            .iter()
            .map(|(e, name, _)| path.join(format!("{name}.{}", e.extension())))
            .collect()
    };
    for (t, (e, name, _)) in targets.iter().zip(outputs) {
        claims.output(t, format!("`--emit {}` of `{name}`", e.name()))?;
    }
    // Every file complete before any is put in place.
    let mut batch = files::Batch::default();
    for (t, (_, _, bytes)) in targets.iter().zip(outputs) {
        batch.add(t, bytes.clone());
    }
    batch.commit()
}
