//! The optimiser and code generator are deterministic: the same kernel
//! compiled twice in one process, and in two processes of the `tessera`
//! binary, gives byte-identical bytecode (egg's `deterministic` feature,
//! runners bounded by iterations and e-nodes only, extraction in class
//! order). Every kernel of the benchmark suite's file, at small dims, on
//! both built-in machines.

use std::path::Path;
use std::process::Command;
use tessera_compiler::driver;
use tessera_compiler::opt::Level;

/// (kernel, dims) of `benches/kernels.tsr`.
const KERNELS: &[(&str, &[(&str, u64)])] = &[
    ("gemm", &[("M", 64), ("K", 96), ("N", 80)]),
    ("mlp", &[("M", 64), ("K", 96), ("N", 80)]),
    ("softmax_f16", &[("B", 33), ("N", 1000)]),
    ("layernorm", &[("B", 17), ("N", 300)]),
    ("rmsnorm", &[("B", 64), ("N", 256)]),
    ("rmsnorm_matmul", &[("M", 32), ("K", 64), ("N", 48)]),
    ("ew_chain", &[("M", 40), ("N", 72)]),
    ("swiglu_gate", &[("N", 5000)]),
    ("softmax_f32", &[("A", 3), ("B", 5), ("N", 3)]),
    ("attention", &[("H", 2), ("S", 64), ("D", 32)]),
    ("attention_mask", &[("H", 2), ("S", 64), ("D", 32)]),
    ("ffn_swiglu", &[("T", 32), ("D", 64), ("F", 96)]),
];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn in_process(kernel: &str, dims: &[(&str, u64)], machine: &str) -> Vec<u8> {
    let src = driver::load_source(&root().join("benches/kernels.tsr")).expect("source");
    let file = driver::parse_and_check(&src).expect("checks");
    let env = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let k = driver::lower(&file, kernel, &env, &src).expect("lowers");
    let m = tessera_sim::Machine::builtin(machine).expect("machine");
    let code = driver::compile_npu(&k, &m, &src, Level::O2).expect("compiles");
    tessera_sim::encode(&code.program)
}

fn in_a_process(kernel: &str, dims: &[(&str, u64)], machine: &str, out: &Path) -> Vec<u8> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.current_dir(root())
        .args([
            "compile",
            "benches/kernels.tsr",
            "-k",
            kernel,
            "--machine",
            machine,
        ])
        .args(["--emit", "tbc", "-o"])
        .arg(out);
    for (k, v) in dims {
        cmd.arg("--dim").arg(format!("{k}={v}"));
    }
    let o = cmd.output().expect("runs");
    assert!(
        o.status.success(),
        "{kernel} on {machine}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).expect("written")
}

#[test]
fn the_same_kernel_compiles_to_the_same_bytes_in_one_and_in_two_processes() {
    let dir = std::env::temp_dir().join(format!("tessera-determinism-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for machine in ["910b-like", "910-like"] {
        for (kernel, dims) in KERNELS {
            let a = in_process(kernel, dims, machine);
            let b = in_process(kernel, dims, machine);
            assert!(
                a == b,
                "{kernel} on {machine}: two compiles in one process differ"
            );
            let p1 = in_a_process(kernel, dims, machine, &dir.join("1.tbc"));
            let p2 = in_a_process(kernel, dims, machine, &dir.join("2.tbc"));
            assert!(p1 == p2, "{kernel} on {machine}: two processes differ");
            assert!(
                a == p1,
                "{kernel} on {machine}: the binary differs from the library"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
