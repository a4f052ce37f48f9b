//! Valid programs (`cases/run/*.tsr`): check, AST and IR snapshots, IR text
//! round trip, the plan text round trip on both built-in machines, and the
//! reference interpreter, the simulator (both built-in machines, race
//! detector on) and the host against numpy fixtures.

use std::path::Path;
use tessera_compiler::{driver, inputs};
use tessera_ir::compare::{Rule, compare};
use tessera_ir::{DimEnv, Tensor, text};
use tessera_testsuite::{case_name, directives, load, snapshot_settings};

type Result = datatest_stable::Result<()>;

fn render(f: driver::Failure, src: &driver::Source) -> String {
    match f {
        driver::Failure::Input { diags, .. } => {
            tessera_ir::diag::render(&diags, &src.name, &src.text, false)
        }
        other => format!("{other:?}"),
    }
}

fn run_case(path: &Path) -> Result {
    let src = load(path);
    let name = case_name(path);
    let dirs = directives(&src.text)?;
    if !src.text.lines().any(|l| l.starts_with("//!")) {
        return Err("a case starts with a `//!` description".into());
    }
    let file = driver::parse_and_check(&src).map_err(|f| render(f, &src))?;
    let settings = snapshot_settings(path);
    settings.bind(|| {
        insta::assert_snapshot!(
            format!("{name}@ast"),
            tessera_frontend::ast::print_file(&file)
        )
    });

    let def = driver::select_kernel(&file, dirs.kernel.as_deref()).map_err(|f| render(f, &src))?;
    let data = path.with_extension("");
    let mut env: DimEnv = dirs.dims.clone();
    let mut origin = Vec::new();
    for (i, p) in def.params.iter().enumerate() {
        let file = data.join("inputs").join(format!("{}.npy", p.name.name));
        let t = inputs::read_input(&file, &p.name.name, p.ty.dtype).map_err(|d| d.to_string())?;
        inputs::bind_shape(def, i, &t.shape, &p.name.name, &mut env, &mut origin)
            .map_err(|d| d.to_string())?;
    }
    let kernel = driver::lower(&file, &def.name.name, &env, &src).map_err(|f| render(f, &src))?;
    let ir = text::print_kernel(&kernel);
    settings.bind(|| insta::assert_snapshot!(format!("{name}@ir"), ir));

    let reparsed =
        text::parse_module(&ir).map_err(|e| format!("IR text does not parse back: {e}\n{ir}"))?;
    let again = text::print_module(&reparsed);
    if again != ir {
        return Err(format!(
            "IR text does not round-trip:\n--- printed\n{ir}--- reprinted\n{again}"
        )
        .into());
    }
    tessera_ir::verify::verify_concrete(&kernel).map_err(|e| e.to_string())?;
    // The plan of each machine round-trips through its text form.
    for machine_name in ["910b-like", "910-like"] {
        let machine = tessera_compiler::simulate::machine(Some(machine_name))
            .map_err(|f| format!("{f:?}"))?;
        let code = driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
            .map_err(|f| render(f, &src))?;
        tessera_testsuite::plan_round_trip(&code.plan, &machine, &code.program)
            .map_err(|e| format!("{machine_name}: {e}"))?;
    }

    // Run it as a user would: `tessera run` with the fixture inputs on the
    // reference interpreter, on the simulator of both built-in machines
    // (race detector on) and on the host, optimised (`-O2`, the default) and
    // not (`-O0`), then compare the .npy files each writes with numpy's.
    let mut failures = Vec::new();
    for target in [
        &["--target", "ref"][..],
        &["--target", "sim", "--machine", "910b-like"],
        &["--target", "sim", "--machine", "910-like"],
        &["--target", "sim", "--machine", "910b-like", "-O0"],
        &["--target", "sim", "--machine", "910-like", "-O0"],
        &["--target", "host"],
        &["--target", "host", "-O0"],
    ] {
        let what = target.join(" ");
        for f in run_target(&src, &name, def, &dirs, &kernel, &data, target)? {
            failures.push(format!("{what}: {f}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

/// Runs the case through the CLI with `target` and returns one line per
/// output that disagrees with the numpy fixture.
fn run_target(
    src: &driver::Source,
    name: &str,
    def: &tessera_frontend::ast::KernelDef,
    dirs: &tessera_testsuite::Directives,
    kernel: &tessera_ir::Kernel,
    data: &Path,
    target: &[&str],
) -> datatest_stable::Result<Vec<String>> {
    let out_dir = std::env::temp_dir().join(format!(
        "tessera-run-{name}-{}-{}",
        target.join("-"),
        std::process::id()
    ));
    let mut args: Vec<String> = vec!["tessera".into(), "run".into(), src.name.clone()];
    args.extend(target.iter().map(|s| s.to_string()));
    args.extend([
        "-k".into(),
        def.name.name.clone(),
        "--out-dir".into(),
        out_dir.display().to_string(),
    ]);
    for p in &def.params {
        args.push("--input".into());
        args.push(format!(
            "{}={}",
            p.name.name,
            data.join("inputs")
                .join(format!("{}.npy", p.name.name))
                .display()
        ));
    }
    for (n, v) in &dirs.dims {
        args.extend(["--dim".into(), format!("{n}={v}")]);
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tessera_compiler::cli::run(&args, &mut out, &mut err, false);
    if code != 0 {
        let _ = std::fs::remove_dir_all(&out_dir);
        return Err(format!(
            "`{}` exited {code}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&err)
        )
        .into());
    }
    let mut failures = Vec::new();
    // Exactly the kernel's outputs were written, each compared by name.
    let mut written: Vec<String> = std::fs::read_dir(&out_dir)?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    written.sort();
    let mut declared: Vec<String> = kernel
        .outputs
        .iter()
        .map(|o| format!("{}.npy", o.name))
        .collect();
    declared.sort();
    if written != declared {
        failures.push(format!(
            "wrote {written:?}, the kernel declares {declared:?}"
        ));
    }
    for o in &kernel.outputs {
        let dtype = kernel.ty(o.value).dtype;
        let got = inputs::read_input(&out_dir.join(format!("{}.npy", o.name)), &o.name, dtype)
            .map_err(|d| d.to_string())?;
        let file = data.join("expected").join(format!("{}.npy", o.name));
        let want: Tensor = inputs::read_input(&file, &o.name, dtype).map_err(|d| d.to_string())?;
        let c = compare(&got, &want, Rule::for_value(kernel, o.value));
        if !c.ok() {
            failures.push(format!(
                "output `{}`: {} mismatches (shape ok: {}), max abs {:.3e}, max rel {:.3e}, first {:?}",
                o.name, c.mismatches, c.same_type, c.max_abs, c.max_rel, c.first_mismatch
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    Ok(failures)
}

datatest_stable::harness! {
    { test = run_case, root = "cases/run", pattern = r"^[^/]*\.tsr$" },
}
