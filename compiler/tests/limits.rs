//! Every limit of `docs/cli.md` ("Files and limits"), at and just past its
//! value, through the `tessera` binary under a 1 GiB address-space limit
//! (`ulimit -v`): at the limit the command gets past the check, past it the
//! command stops with the documented code, and each within a time bound.
//!
//! The bound (20 s) is loose for debug builds on a slow machine; what
//! matters is that nothing is allocated, read or simulated in proportion
//! to what was asked for before the limit is checked.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SECONDS: u64 = 20;
/// The address space every command runs in (KiB, for `ulimit -v`).
const ADDRESS_SPACE_KIB: u64 = 1 << 20;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("tessera-limits-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir().join(name);
    std::fs::write(&p, bytes).expect("written");
    p
}

struct Outcome {
    code: i32,
    stderr: String,
}

/// Runs `tessera ARGS` in the temp dir under the address-space limit.
fn tessera(args: &[&str]) -> Outcome {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let script = format!(
        "ulimit -v {ADDRESS_SPACE_KIB} && exec '{}' {}",
        env!("CARGO_BIN_EXE_tessera"),
        quoted.join(" ")
    );
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(dir())
        .output()
        .expect("sh runs");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        took < Duration::from_secs(SECONDS),
        "tessera {args:?} took {took:?}\n{stderr}"
    );
    // A signal (abort, out of memory) has no exit code.
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("tessera {args:?} died: {:?}\n{stderr}", out.status));
    Outcome { code, stderr }
}

/// Asserts exit `code` with `error[CODE]` among the diagnostics.
fn refused(o: &Outcome, code: i32, error: &str) {
    assert_eq!(o.code, code, "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("error[{error}]")),
        "{}",
        o.stderr
    );
}

fn ok(o: &Outcome) {
    assert_eq!(o.code, 0, "{}", o.stderr);
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `run SRC --target ref --dim DIM --out-dir … EXTRA…`.
fn on_ref(src: &Path, dim: &str, extra: &[&str]) -> Outcome {
    let out = dir().join("ref-out");
    let mut args = vec!["run", path(src), "--target", "ref", "--dim", dim];
    args.extend(["--out-dir", path(&out)]);
    args.extend(extra);
    tessera(&args)
}

const VECTOR: &str = "kernel k(a: f32[N]) -> f32[N] { return a + 1.0; }\n";

#[test]
fn a_source_file_of_16_mib() {
    let limit = 16 << 20;
    let mut text = VECTOR.as_bytes().to_vec();
    text.resize(limit, b'\n');
    ok(&tessera(&["check", path(&file("at.tsr", &text))]));
    text.push(b'\n');
    refused(
        &tessera(&["check", path(&file("past.tsr", &text))]),
        1,
        "E0600",
    );
}

#[test]
fn a_tensor_type_of_2_pow_48_elements() {
    let src = file("vector.tsr", VECTOR.as_bytes());
    let at = format!("N={}", 1u64 << 48);
    let past = format!("N={}", (1u64 << 48) + 1);
    ok(&tessera(&[
        "compile",
        path(&src),
        "--emit",
        "ir",
        "--dim",
        &at,
    ]));
    refused(
        &tessera(&["compile", path(&src), "--emit", "ir", "--dim", &past]),
        1,
        "E0409",
    );
}

#[test]
fn a_host_tensor_of_2_pow_24_elements() {
    // Its parameter and its result are the reference's 2^25 values.
    let src = file(
        "negate.tsr",
        b"kernel k(a: f32[N]) -> f32[N] { return -a; }\n",
    );
    let at = format!("N={}", 1u64 << 24);
    let past = format!("N={}", (1u64 << 24) + 1);
    let run = |dim: &str| on_ref(&src, dim, &["--random-inputs"]);
    ok(&run(&at));
    refused(&run(&past), 1, "E0503");
    // A complete `.npy` of one element more than the limit (64 MiB) is
    // refused after its header, before its data are converted.
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        (1u64 << 24) + 1
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.resize(npy.len() + 4 * ((1 << 24) + 1), 0);
    let npy = file("past.npy", &npy);
    let input = format!("a={}", path(&npy));
    refused(&on_ref(&src, &past, &["--input", &input]), 1, "E0503");
}

#[test]
fn an_npy_header_of_1_mib() {
    // A valid 2.0 header padded with spaces to exactly 1 MiB is read; one
    // byte more is E0601 (numpy itself refuses such headers).
    let src = file(
        "negate4.tsr",
        b"kernel k(a: f32[4]) -> f32[4] { return -a; }\n",
    );
    let npy = |len: usize| {
        let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }".to_string();
        header.push_str(&" ".repeat(len - header.len() - 1));
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 16]);
        bytes
    };
    let out = dir().join("npy-out");
    let run = |name: &str, len: usize| {
        let input = format!("a={}", path(&file(name, &npy(len))));
        tessera(&[
            "run",
            path(&src),
            "--target",
            "ref",
            "--input",
            &input,
            "--out-dir",
            path(&out),
        ])
    };
    ok(&run("header_at.npy", 1 << 20));
    refused(&run("header_past.npy", (1 << 20) + 1), 1, "E0601");
}

#[test]
fn the_reference_holds_2_pow_25_values() {
    // Two values of 2^24 elements (the parameter and the result) are the
    // limit; an intermediate one and the two scalar constants pass it.
    let src = file(
        "two_ops.tsr",
        b"kernel k(a: f32[N]) -> f32[N] { return (a + 1.0) * 2.0; }\n",
    );
    let dim = format!("N={}", 1u64 << 24);
    let o = on_ref(&src, &dim, &["--random-inputs"]);
    refused(&o, 1, "E0503");
    let held = (3u64 << 24) + 2;
    assert!(
        o.stderr.contains(&format!("{held} elements")),
        "{}",
        o.stderr
    );
}

#[test]
fn an_npu_kernel_of_255_tensors() {
    let kernel = |params: usize| {
        let list: Vec<String> = (0..params).map(|i| format!("p{i}: f32[4]")).collect();
        format!("kernel k({}) -> f32[4] {{ return p0; }}\n", list.join(", "))
    };
    // Parameters and one result.
    let at = file("at255.tsr", kernel(254).as_bytes());
    let past = file("past255.tsr", kernel(255).as_bytes());
    ok(&tessera(&["compile", path(&at), "--emit", "asm"]));
    refused(
        &tessera(&["compile", path(&past), "--emit", "asm"]),
        1,
        "E0504",
    );
}

#[test]
fn a_program_of_65535_launches() {
    let program = |launches: usize| {
        let mut s = String::from(".kernel k\n.param a f32[8]\n.result c f32[8]\n");
        for _ in 0..launches {
            s.push_str(".launch\n.aiv\n    end\n");
        }
        s
    };
    let at = file("at.s", program(65_535).as_bytes());
    let past = file("past.s", program(65_536).as_bytes());
    ok(&tessera(&[
        "asm",
        path(&at),
        "-o",
        path(&dir().join("at.tbc")),
    ]));
    refused(
        &tessera(&["asm", path(&past), "-o", path(&dir().join("past.tbc"))]),
        1,
        "E0807",
    );
}

#[test]
fn gm_of_1_tib_compiled_and_64_gib_timed() {
    // f32[N] in and out: 8·N bytes of GM. N = 2^36 is 512 GiB (compiles);
    // 2^37 is 1 TiB, and 4 KiB of alignment per tensor more (refused).
    let src = file("vector.tsr", VECTOR.as_bytes());
    let dim = |n: u64| format!("N={n}");
    ok(&tessera(&[
        "compile",
        path(&src),
        "--emit",
        "asm",
        "--dim",
        &dim(1 << 36),
    ]));
    refused(
        &tessera(&[
            "compile",
            path(&src),
            "--emit",
            "asm",
            "--dim",
            &dim(1 << 37),
        ]),
        1,
        "E0503",
    );
    // Timing-only runs hold at most 64 GiB: 2^33 elements in and out are
    // exactly 64 GiB; one more element passes it. Within the limit a run
    // is simulated, not allocated: 2^33 itself simulates for about 14 s in
    // a debug build, so the run within the limit here is small.
    let bench = |n: u64| tessera(&["bench", path(&src), "--dim", &dim(n), "--json"]);
    ok(&bench(1 << 16));
    refused(&bench((1 << 33) + 1), 1, "E0503");
}

#[test]
fn functional_gm_of_512_mib() {
    // The workspace is the one part of GM no host tensor bounds.
    let program = |workspace: u64| {
        format!(
            ".kernel k\n.param a f32[8]\n.result c f32[8]\n.workspace {workspace}\n.launch\n.aiv\n    end\n"
        )
    };
    // Each tensor takes a 4 KiB-aligned region: the two take 8 KiB.
    let limit: u64 = (512 << 20) - 8192;
    for (name, workspace, code) in [("at", limit, 0), ("past", limit + 1, 1)] {
        let s = file(&format!("ws_{name}.s"), program(workspace).as_bytes());
        let tbc = dir().join(format!("ws_{name}.tbc"));
        ok(&tessera(&["asm", path(&s), "-o", path(&tbc)]));
        let o = tessera(&[
            "run",
            path(&tbc),
            "--random-inputs",
            "--out-dir",
            path(&dir().join(format!("ws-out-{name}"))),
        ]);
        if code == 0 {
            ok(&o);
        } else {
            refused(&o, 1, "E0503");
        }
    }
}

#[test]
fn a_bytecode_file_of_256_mib() {
    // At the limit the file is read and rejected by the loader (E09xx);
    // past it, it is not read at all.
    let limit = 256usize << 20;
    let mut bytes = vec![0u8; limit];
    let at = file("at.tbc", &bytes);
    let o = tessera(&["disasm", path(&at)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("error[E09"), "{}", o.stderr);
    bytes.push(0);
    let past = file("past.tbc", &bytes);
    drop(bytes);
    refused(&tessera(&["disasm", path(&past)]), 1, "E0600");
    let _ = std::fs::remove_file(at);
    let _ = std::fs::remove_file(past);
}

#[test]
fn a_machine_file_of_1_mib() {
    let limit = 1usize << 20;
    let mut text = include_str!("../../backend/sim/src/machines/910-like.toml")
        .as_bytes()
        .to_vec();
    text.push(b'\n');
    text.resize(limit, b'#');
    let src = file("vector.tsr", VECTOR.as_bytes());
    let at = file("at.toml", &text);
    let compile = |m: &Path| {
        tessera(&[
            "compile",
            path(&src),
            "--emit",
            "asm",
            "--dim",
            "N=64",
            "--machine",
            path(m),
        ])
    };
    ok(&compile(&at));
    text.push(b'#');
    let past = file("past.toml", &text);
    refused(&compile(&past), 1, "E1003");
}

#[test]
fn the_spin_limit_stops_a_loop_on_many_blocks() {
    // 2^16 scalar instructions in a row without pipe work: s.li, N times
    // (s.add, s.br), end = 2N + 2. N = 32767 is at the limit, 32768 past it.
    let program = |n: u64, blocks: u32| {
        format!(
            ".kernel spin\n.param a f32[8]\n.result c f32[8]\n.block_dim {blocks}\n.aiv\n    s.li r1, {n}\ntop:\n    s.add r1, r1, -1\n    s.br.ne r1, 0, top\n    end\n"
        )
    };
    let run = |name: &str, text: &str| {
        let s = file(&format!("{name}.s"), text.as_bytes());
        let tbc = dir().join(format!("{name}.tbc"));
        ok(&tessera(&["asm", path(&s), "-o", path(&tbc)]));
        tessera(&[
            "run",
            path(&tbc),
            "--random-inputs",
            "--out-dir",
            path(&dir().join(format!("{name}-out"))),
        ])
    };
    ok(&run("spin_at", &program(32_767, 48)));
    refused(&run("spin_past", &program(32_768, 48)), 3, "E0711");
    // A loop that issues work (a barrier) is not spinning; it meets the
    // step limit, 2^24 + 64 per GM byte (8 KiB here): 2^23 iterations of
    // three steps pass it.
    refused(
        &run(
            "busy_loop",
            &program(1 << 23, 1).replace("top:\n", "top:\n    sync.barrier all\n"),
        ),
        3,
        "E0711",
    );
    // A loop without end, on as many blocks as a launch takes.
    let forever = ".kernel spin\n.param a f32[8]\n.result c f32[8]\n.block_dim 65535\n.aiv\ntop:\n    s.jmp top\n";
    refused(&run("spin_forever", forever), 3, "E0711");
}
