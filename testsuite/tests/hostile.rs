//! Hostile inputs too large to keep as files (`cases/cli/` holds the
//! rest): generated here, run through the command line in-process, each
//! held to its exit code, its error code and a time bound. The bounds are
//! loose enough for debug builds; the point is that the time is linear in
//! the input, where it once was quadratic or worse.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Writes `text` to a fresh temporary file named `name`.
fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("written");
    p
}

/// Runs `tessera ARGS`: (exit code, stderr, elapsed).
fn tessera(args: &[&str]) -> (i32, String, Duration) {
    let start = Instant::now();
    let (code, _, err) = tessera_testsuite::run_cli(args);
    (code, err, start.elapsed())
}

#[test]
fn checking_ten_megabytes_of_kernels_is_linear() {
    // 190 000 small kernels (10.4 MB); quadratic before (37 s at 10 MB).
    let mut text = String::new();
    for i in 0..190_000 {
        text.push_str(&format!(
            "kernel k{i}(a: f32[4]) -> f32[4] {{ return a + 1.0; }}\n"
        ));
    }
    assert!(text.len() > 10_000_000);
    let p = file("many_kernels.tsr", &text);
    let (code, err, t) = tessera(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(t < Duration::from_secs(30), "{t:?}");
}

#[test]
fn an_error_cascade_is_capped() {
    // 70 000 `.launch` lines: one error (past 65 535 launches), the rest of
    // the file unread; before, 8 929 cascaded errors after 19 s.
    let mut text = String::from(".kernel k\n.param a f32[8]\n.result c f32[8]\n");
    for _ in 0..70_000 {
        text.push_str(".launch\n.aiv\n    end\n");
    }
    let p = file("launches.s", &text);
    let out = p.with_extension("tbc");
    let (code, err, t) = tessera(&["asm", p.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.matches("error[").count(), 1, "{err}");
    assert!(err.contains("error[E0807]"), "{err}");
    assert!(t < Duration::from_secs(10), "{t:?}");
    // Many independent errors: the first hundred are shown, then a count.
    let mut bad = String::new();
    for i in 0..500 {
        bad.push_str(&format!(
            "kernel k{i}(a: f32[4]) -> f32[4] {{ return a + b; }}\n"
        ));
    }
    let p = file("many_errors.tsr", &bad);
    let (code, err, _) = tessera(&["check", p.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(err.matches("error[E0100]").count(), 100, "{err}");
    assert!(err.contains("… and 400 more errors not shown"), "{err}");
}

#[test]
fn a_kernel_too_long_for_the_npu_is_refused_before_planning() {
    // 70 000 dependent ops: more launches than a program holds (65 535).
    // Refused from the op count, not after minutes of planning.
    let mut text = String::from("kernel k(x0: f32[4]) -> f32[4] {\n");
    for i in 0..70_000 {
        text.push_str(&format!("    let x{} = x{i} * 1.0001;\n", i + 1));
    }
    text.push_str("    return x70000;\n}\n");
    let p = file("chain.tsr", &text);
    let (code, err, t) = tessera(&["compile", p.to_str().unwrap(), "--emit", "asm"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error[E0504]"), "{err}");
    assert!(t < Duration::from_secs(30), "{t:?}");
}

#[test]
fn disasm_refuses_bytecode_that_the_loader_refuses() {
    // A launch of no blocks decodes but does not load: `disasm` says so
    // (E0907, with the launch's byte offset) rather than printing text that
    // would not assemble back; the file as `asm` wrote it disassembles.
    let m = tessera_sim::Machine::default();
    let src = ".kernel k\n.param a f32[4]\n.result c f32[4]\n.aiv\n    end\n";
    let mut p = tessera_sim::assemble(src, &m).expect("assembles");
    let good = file("good.tbc", "");
    std::fs::write(&good, tessera_sim::encode(&p)).expect("written");
    let (code, err, _) = tessera(&["disasm", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    p.launches[0].block_dim = 0;
    let bad = file("no_blocks.tbc", "");
    std::fs::write(&bad, tessera_sim::encode(&p)).expect("written");
    let (code, err, _) = tessera(&["disasm", bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("error[E0907]") && err.contains("block_dim"),
        "{err}"
    );
    assert!(!err.contains("(at byte 0)"), "{err}");
}
