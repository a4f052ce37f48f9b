//! Invalid programs (`cases/errors/*.tsr`): the diagnostics are exactly the
//! `//~` annotations, every one has a code and a span, the CLI exits 1, and
//! the rendering is snapshotted.

use std::path::Path;
use tessera_testsuite::{
    annotations, as_annotations, case_name, diagnostics, directives, load, snapshot_settings,
};

type Result = datatest_stable::Result<()>;

fn error_case(path: &Path) -> Result {
    let src = load(path);
    let name = case_name(path);
    let dirs = directives(&src.text)?;
    let want = annotations(&src.text)?;
    if want.is_empty() {
        return Err("an error case has at least one `//~ ERROR` annotation".into());
    }
    let diags = diagnostics(&src, &dirs);
    let got = as_annotations(&src.text, &diags);
    let rendered = tessera_ir::diag::render(&diags, &src.name, &src.text, false);
    if got != want {
        return Err(
            format!("annotations {want:?}\nbut the compiler reported {got:?}\n{rendered}").into(),
        );
    }
    if let Some(d) = diags.iter().find(|d| d.primary_span().is_none()) {
        return Err(format!("diagnostic without a span: {d}").into());
    }

    // The same file through the command line, as a user runs it.
    let mut args: Vec<String> = vec!["tessera".into(), "--color".into(), "never".into()];
    if dirs.kernel.is_some() || dirs.has_dims {
        args.extend([
            "compile".into(),
            src.name.clone(),
            "--emit".into(),
            "ir".into(),
        ]);
        if let Some(k) = &dirs.kernel {
            args.extend(["-k".into(), k.clone()]);
        }
        for (n, v) in &dirs.dims {
            args.extend(["--dim".into(), format!("{n}={v}")]);
        }
    } else {
        args.extend(["check".into(), src.name.clone()]);
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tessera_compiler::cli::run(&args, &mut out, &mut err, false);
    let stderr = String::from_utf8_lossy(&err).into_owned();
    if code != 1 {
        return Err(format!("`{}` exited {code}, expected 1\n{stderr}", args.join(" ")).into());
    }
    snapshot_settings(path).bind(|| insta::assert_snapshot!(format!("{name}@stderr"), stderr));
    Ok(())
}

datatest_stable::harness! {
    { test = error_case, root = "cases/errors", pattern = r"^[^/]*\.tsr$" },
}
