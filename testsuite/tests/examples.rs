//! Every kernel of `examples/*.tsr` runs at small dims on the reference
//! and, with `--check` against it, on both built-in machines: the examples
//! a newcomer tries first stay correct. The dims are sizes just past tile
//! multiples (the guarded tails), different per dim.

use tessera_compiler::driver::{self, Source};

/// Small dims, one per symbolic dim in signature order.
const DIMS: [u64; 4] = [40, 72, 24, 136];

/// `tessera ARGS`: the exit code and stdout followed by stderr.
fn tessera(args: &[String]) -> (i32, String) {
    let (code, out, err) = tessera_testsuite::run_cli(args);
    (code, out + &err)
}

#[test]
fn every_example_runs_and_checks_on_both_machines() {
    let root = tessera_testsuite::crate_dir().join("../examples");
    let files = tessera_testsuite::case_files(&root, "tsr");
    assert!(files.len() >= 4, "{files:?}");
    let out = std::env::temp_dir().join(format!("tessera-examples-{}", std::process::id()));
    let mut kernels = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("readable");
        let src = Source {
            name: path.display().to_string(),
            text,
        };
        let file = driver::parse_and_check(&src).expect("examples check");
        for def in &file.kernels {
            kernels += 1;
            let mut args: Vec<String> = vec![
                "run".into(),
                path.display().to_string(),
                "-k".into(),
                def.name.name.clone(),
                "--random-inputs".into(),
                "--seed".into(),
                "3".into(),
                "--out-dir".into(),
                out.display().to_string(),
            ];
            let dims = tessera_frontend::lower::signature_dims(def);
            for ((name, _), value) in dims.iter().zip(DIMS.iter().cycle()) {
                args.extend(["--dim".into(), format!("{name}={value}")]);
            }
            let what = format!("{} -k {} {dims:?}", path.display(), def.name.name);
            let mut reference = args.clone();
            reference.extend(["--target".into(), "ref".into()]);
            let (code, text) = tessera(&reference);
            assert_eq!(code, 0, "{what} on ref:\n{text}");
            for machine in ["910b-like", "910-like"] {
                let mut sim = args.clone();
                sim.extend(["--check".into(), "--machine".into(), machine.into()]);
                let (code, text) = tessera(&sim);
                assert_eq!(code, 0, "{what} on {machine}:\n{text}");
                let checks = text.lines().filter(|l| l.starts_with("check ")).count();
                assert_eq!(
                    checks,
                    def.results.len().max(1),
                    "{what} on {machine}:\n{text}"
                );
                assert!(!text.contains("MISMATCH"), "{what} on {machine}:\n{text}");
            }
        }
    }
    assert!(kernels >= 9, "{kernels} kernels");
}
