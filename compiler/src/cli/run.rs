//! `tessera run`: a kernel (compiled for the simulator, or on the reference
//! interpreter) or a bytecode file on inputs, with `--check`, the report,
//! the trace and the outputs as `.npy` files.

use super::{Io, RunArgs, Target};
use crate::driver::{self, Failure};
use crate::files::{self, Claims};
use crate::{inputs, simulate};
use std::path::{Path, PathBuf};
use tessera_ir::{Code, Diagnostic, Tensor};

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
    if n == 0 {
        // NaN throughout: no finite extremes to show (not `inf`/`-inf`).
        (lo, hi) = (f64::NAN, f64::NAN);
    }
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

pub(super) fn cmd_run(io: &mut Io<'_>, a: &RunArgs) -> Result<(), Failure> {
    if a.seed.is_some() && !a.random_inputs {
        return Err(Failure::Usage(
            "`--seed` seeds `--random-inputs`; without it no input is drawn".into(),
        ));
    }
    if is_bytecode(&a.file) {
        return run_bytecode(io, a);
    }
    if a.check && a.target == Target::Ref {
        return Err(Failure::Usage(
            "`--check` compares a target with the reference interpreter; it has no meaning with `--target ref`".into(),
        ));
    }
    if a.threads.is_some() && a.target != Target::Host {
        return Err(Failure::Usage(
            "`--threads` sets the host's threads; it needs `--target host`".into(),
        ));
    }
    super::tune::sim_flags(a.tuning.as_deref(), a.machine.as_deref(), a.target)?;
    if a.target != Target::Sim && (a.trace.is_some() || a.stats_json.is_some() || a.timing_only) {
        return Err(Failure::Usage(
            "`--trace`, `--stats-json` and `--timing-only` need the simulator (`--target sim`)"
                .into(),
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
            // A wrong dtype points at the parameter's declared type.
            Err(d) if d.code == Code::E0602.as_str() && d.primary_span().is_none() => {
                diags.push(d.primary(p.ty.span, format!("declared {}", p.ty.text())));
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
    // Nothing the command reads is overwritten, and the host's tensors are
    // bounded before any is drawn or simulated.
    let mut claims = Claims::default();
    claims.input(&a.file, "source file");
    for (i, path) in &given {
        claims.input(path, format!("input of `{}`", def.params[*i].name.name));
    }
    claims.machine(a.machine.as_deref());
    claims.tuning(a.tuning.as_deref());
    let names: Vec<&str> = kernel.outputs.iter().map(|o| o.name.as_str()).collect();
    claim_outputs(&mut claims, a, &names)?;
    if !a.timing_only {
        for p in &kernel.params {
            files::check_host_tensor(&format!("parameter `{}`", p.name), &p.ty)?;
        }
        for o in &kernel.outputs {
            files::check_host_tensor(&format!("result `{}`", o.name), kernel.ty(o.value))?;
        }
    }
    // Timing alone needs no data: nothing is drawn.
    let inputs: Vec<Tensor> = if a.timing_only {
        Vec::new()
    } else {
        tensors
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.unwrap_or_else(|| {
                    let p = &kernel.params[i];
                    let shape = p.ty.shape.as_usize().unwrap_or_default();
                    inputs::random_tensor(p.ty.dtype, shape, a.seed.unwrap_or(0), i)
                })
            })
            .collect()
    };
    if a.target == Target::Ref {
        let outputs = driver::run_reference(&kernel, &inputs, &src)?;
        return write_tensors(
            io,
            &a.out_dir,
            &kernel,
            &outputs,
            "ref",
            files::Batch::default(),
        );
    }
    if a.target == Target::Host {
        let code =
            driver::compile_host(&kernel, super::level(a.opt_level.as_deref().unwrap_or("2")))?;
        let outputs = code
            .host
            .run(&inputs, a.threads.map(usize::from))
            .map_err(|e| driver::host_failure(e, &code.kernel, &src))?;
        let matched = !a.check || {
            let reference = driver::run_reference(&kernel, &inputs, &src)?;
            compare_outputs(io, &kernel, &outputs, &reference)
        };
        // The outputs are written even when they do not match: to inspect.
        write_tensors(
            io,
            &a.out_dir,
            &kernel,
            &outputs,
            "host",
            files::Batch::default(),
        )?;
        return if matched {
            Ok(())
        } else {
            Err(Failure::Mismatch)
        };
    }
    let machine = simulate::target(a.machine.as_deref())?;
    let tuning = super::tune::tuning(io, a.tuning.as_deref())?;
    let (code, notes) = driver::compile_npu_tuned(
        &kernel,
        &machine,
        &src,
        super::level(a.opt_level.as_deref().unwrap_or("2")),
        &tuning,
    )?;
    super::tune::notes_out(io, &notes);
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
    // The roofline of the kernel as written, as `bench` prints it.
    let (bound, by) = crate::bench::roofline(&kernel, &machine);
    let (macs, vector, gm) = crate::bench::roofline_inputs(&kernel, &machine);
    let macs: u64 = macs.iter().map(|(_, m)| m).sum();
    let efficiency = bound / out.report.cycles.max(1) as f64;
    let _ = writeln!(
        io.out,
        "bound  {bound:.0} ({by}-bound: cube MACs {macs}, vector cycles {vector:.0}, GM bytes {gm})\nefficiency {efficiency:.4}"
    );
    let roofline = Some((bound, by, efficiency));
    if a.timing_only {
        let batch = side_files(a, &out, roofline, None);
        io.out_reached()?;
        return batch.commit();
    }
    let outputs: Vec<Tensor> = out
        .outputs
        .iter()
        .map(|(_, t)| simulate::from_sim(t))
        .collect::<Result<_, _>>()?;
    let checks = if a.check {
        let reference = driver::run_reference(&kernel, &inputs, &src)?;
        Some(driver::check(&kernel, &outputs, &reference))
    } else {
        None
    };
    let matched = checks.as_ref().is_none_or(|c| print_checks(io, c));
    let batch = side_files(a, &out, roofline, checks.as_deref());
    write_tensors(io, &a.out_dir, &kernel, &outputs, &machine.name, batch)?;
    if matched {
        Ok(())
    } else {
        Err(Failure::Mismatch)
    }
}

/// Whether `path` is bytecode: named `.tbc` (in any case), or starting with
/// the bytecode's magic number whatever its name (a regular file only: a
/// pipe's first bytes are not read twice).
fn is_bytecode(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tbc"))
    {
        return true;
    }
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| head == tessera_sim::bytecode::MAGIC)
}

/// `tessera run FILE.tbc`: bytecode on the simulator.
fn run_bytecode(io: &mut Io<'_>, a: &RunArgs) -> Result<(), Failure> {
    if a.target != Target::Sim {
        return Err(Failure::Usage(
            "a `.tbc` file runs on the simulator (`--target sim`); the reference interpreter and the host need the `.tsr` file".into(),
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
    if a.opt_level.is_some() || a.tuning.is_some() {
        return Err(Failure::Usage(
            "a `.tbc` file is compiled already; `-O` and `--tuning` do not apply".into(),
        ));
    }
    let (machine, program) = simulate::load_bytecode(&a.file, a.machine.as_deref())?;
    if let Some(k) = &a.kernel
        && *k != program.kernel
    {
        return Err(Failure::input(vec![
            Diagnostic::new(
                Code::E0502,
                format!(
                    "`{}` holds kernel `{}`, not `{k}`",
                    a.file.display(),
                    program.kernel
                ),
            )
            .help("a `.tbc` file holds one kernel: drop `-k`, or give the file compiled from it"),
        ]));
    }
    let mut claims = Claims::default();
    claims.input(&a.file, "bytecode file");
    claims.machine(a.machine.as_deref());
    for arg in &a.inputs {
        if let Some((name, path)) = arg.split_once('=') {
            claims.input(Path::new(path), format!("input of `{name}`"));
        }
    }
    let names: Vec<&str> = program.results.iter().map(|r| r.name.as_str()).collect();
    claim_outputs(&mut claims, a, &names)?;
    if !a.timing_only {
        for t in program.params.iter().chain(&program.results) {
            let ty = tessera_ir::TensorType::new(
                simulate::dtype(t.dtype),
                tessera_ir::Shape::fixed(&t.shape),
            );
            files::check_host_tensor(&format!("`{}`", t.name), &ty)?;
        }
    }
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
            // Timing alone needs no data.
            None if a.timing_only => continue,
            None if a.random_inputs => inputs::random_tensor(dtype, shape, a.seed.unwrap_or(0), i),
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
    let batch = side_files(a, &out, None, None);
    if a.timing_only {
        return batch.commit();
    }
    let results: Vec<(String, Tensor)> = out
        .outputs
        .iter()
        .map(|(n, t)| simulate::from_sim(t).map(|t| (n.clone(), t)))
        .collect::<Result<_, _>>()?;
    write_named_tensors(
        io,
        &a.out_dir,
        &program.kernel,
        &results,
        &machine.name,
        batch,
    )
}

/// The `--trace` and `--stats-json` files of a simulation, to be written
/// with its outputs; the statistics end with the roofline (`bound`,
/// `bound_by`, `efficiency`, as `bench --json` names them) when the
/// kernel's IR gave one, and with `--check`'s report (`check`, one object
/// per output) when there was one.
fn side_files(
    a: &RunArgs,
    out: &tessera_sim::run::RunOutput,
    roofline: Option<(f64, &str, f64)>,
    checks: Option<&[driver::OutputCheck]>,
) -> files::Batch {
    let mut batch = files::Batch::default();
    if let Some(p) = &a.stats_json {
        let json = out.report.to_json();
        // Appended, so that the report's own keys keep their order.
        let mut keys = String::new();
        if let Some((bound, by, efficiency)) = roofline {
            let num = |x: f64| serde_json::Value::from(x).to_string();
            keys += &format!(
                ",\n  \"bound\": {},\n  \"bound_by\": \"{by}\",\n  \"efficiency\": {}",
                num(bound),
                num(efficiency)
            );
        }
        if let Some(checks) = checks {
            let report = serde_json::to_string_pretty(&driver::check_json(checks))
                .unwrap_or_default()
                .replace('\n', "\n  ");
            keys += &format!(",\n  \"check\": {report}");
        }
        let json = match json.trim_end().strip_suffix('}') {
            Some(open) if !keys.is_empty() => format!("{}{keys}\n}}\n", open.trim_end()),
            // A text file ends in a newline, with or without the keys.
            _ => format!("{}\n", json.trim_end()),
        };
        batch.add(p, json.into_bytes());
    }
    if let (Some(p), Some(json)) = (&a.trace, &out.trace_json) {
        batch.add(p, json.as_bytes().to_vec());
    }
    batch
}

/// Claims every file a run writes: `--out-dir/NAME.npy` per result (none
/// with `--timing-only`), `--trace` and `--stats-json`.
fn claim_outputs(claims: &mut Claims, a: &RunArgs, results: &[&str]) -> Result<(), Failure> {
    if !a.timing_only {
        for name in results {
            let p = a.out_dir.join(format!("{name}.npy"));
            claims.output(&p, format!("output `{name}`"))?;
        }
    }
    if let Some(p) = &a.trace {
        claims.output(p, "trace")?;
    }
    if let Some(p) = &a.stats_json {
        claims.output(p, "statistics file")?;
    }
    Ok(())
}

/// Prints the comparison of outputs with the reference; whether all match.
fn compare_outputs(
    io: &mut Io<'_>,
    kernel: &tessera_ir::Kernel,
    got: &[Tensor],
    reference: &[Tensor],
) -> bool {
    print_checks(io, &driver::check(kernel, got, reference))
}

/// Prints `--check`'s report; whether all outputs match.
fn print_checks(io: &mut Io<'_>, checks: &[driver::OutputCheck]) -> bool {
    let (lines, ok) = driver::check_lines(checks);
    for l in lines {
        let _ = writeln!(io.out, "{l}");
    }
    ok
}

/// Writes every output of a kernel with the `batch` of other files (all or
/// nothing) and prints the summary.
fn write_tensors(
    io: &mut Io<'_>,
    dir: &std::path::Path,
    kernel: &tessera_ir::Kernel,
    outputs: &[Tensor],
    target: &str,
    batch: files::Batch,
) -> Result<(), Failure> {
    let named: Vec<(String, Tensor)> = kernel
        .outputs
        .iter()
        .map(|o| o.name.clone())
        .zip(outputs.iter().cloned())
        .collect();
    write_named_tensors(io, dir, &kernel.name, &named, target, batch)
}

/// Writes named tensors as `DIR/NAME.npy` with the `batch` of other files
/// (all or nothing) and prints the summary.
fn write_named_tensors(
    io: &mut Io<'_>,
    dir: &std::path::Path,
    kernel: &str,
    outputs: &[(String, Tensor)],
    target: &str,
    mut batch: files::Batch,
) -> Result<(), Failure> {
    for (name, t) in outputs {
        let path = dir.join(format!("{name}.npy"));
        let bytes = crate::npy::encode(t).map_err(|e| {
            Failure::input(vec![Diagnostic::new(
                Code::E0600,
                format!("cannot write `{}`: {e}", path.display()),
            )])
        })?;
        batch.add(&path, bytes);
    }
    io.out_reached()?;
    batch.commit()?;
    let _ = writeln!(
        io.out,
        "kernel `{kernel}` on {target}: {} output{}",
        outputs.len(),
        if outputs.len() == 1 { "" } else { "s" }
    );
    for (name, t) in outputs {
        let _ = writeln!(
            io.out,
            "  {:<10} {:<20} {}  -> {}",
            name,
            shape_text(t),
            summary(t),
            dir.join(format!("{name}.npy")).display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::summary;
    use tessera_ir::{DType, Tensor};

    /// Values that are all NaN have no extremes: the summary says NaN, not
    /// the folds' starting `inf` and `-inf`; NaN among numbers is counted.
    #[test]
    fn a_summary_of_nan_alone_says_nan() {
        let t = Tensor::from_f64(DType::F32, vec![3], vec![f64::NAN; 3]);
        assert_eq!(summary(&t), "min NaN max NaN mean NaN (3 NaN)");
        let t = Tensor::from_f64(DType::F32, vec![3], vec![1.0, f64::NAN, -2.0]);
        assert_eq!(
            summary(&t),
            "min -2.000000 max 1.000000 mean -0.500000 (1 NaN)"
        );
    }
}
