//! Simulator speed benchmarks (run with `--release`):
//!
//! ```text
//! CARGO_TARGET_DIR=target-sim cargo run --release -p tessera-sim --example bench
//! ```
//!
//! 1. timing-only 6144³ f16 GEMM on the 24 cube cores of `910b-like` (target ≤ 1 s);
//! 2. functional 1024³ f16 GEMM (target ≥ 1 G simulated MAC per host-second);
//!
//! both with the expert kernel `testsuite/cases/asm/gemm_f16_910b.s`, race
//! detection off and then on. Prints the figures and the simulated cycles.

use std::time::Instant;
use tessera_sim::{AsmOptions, Dt, Machine, RunOptions, Tensor, assemble_with, run};

fn main() {
    let src_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testsuite/cases/asm/gemm_f16_910b.s"
    );
    let src = std::fs::read_to_string(src_path).expect("the expert GEMM kernel");
    let m = Machine::default();
    let shape = |n: i64| AsmOptions {
        defines: vec![("M".into(), n), ("N".into(), n), ("K".into(), n)],
    };

    for races in [false, true] {
        let p = assemble_with(&src, &m, &shape(6144)).expect("assembles");
        let t0 = Instant::now();
        let out = run(
            &m,
            &p,
            &[],
            &RunOptions {
                timing_only: true,
                race_detection: races,
                ..Default::default()
            },
        )
        .expect("runs");
        let dt = t0.elapsed().as_secs_f64();
        let macs = 6144f64.powi(3);
        let eff = macs / (24.0 * 4096.0) / out.report.cycles as f64;
        println!(
            "timing-only 6144^3 GEMM, 24 cores, races {}: {:.3} s host, {} simulated cycles, {:.3} of cube peak, {} instructions",
            if races { "on " } else { "off" },
            dt,
            out.report.cycles,
            eff,
            out.report.instructions
        );
    }

    let n = 1024u64;
    let p = assemble_with(&src, &m, &shape(n as i64)).expect("assembles");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        half::f16::from_f32(((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0).to_bits()
    };
    let mut tensor = || Tensor {
        dtype: Dt::F16,
        shape: vec![n, n],
        data: (0..n * n).flat_map(|_| rnd().to_le_bytes()).collect(),
    };
    let inputs = vec![("a".to_string(), tensor()), ("b".to_string(), tensor())];
    for races in [false, true] {
        let t0 = Instant::now();
        let out = run(
            &m,
            &p,
            &inputs,
            &RunOptions {
                race_detection: races,
                ..Default::default()
            },
        )
        .expect("runs");
        let dt = t0.elapsed().as_secs_f64();
        println!(
            "functional 1024^3 f16 GEMM, races {}: {:.3} s host, {:.2} G simulated MAC per host-second, {} simulated cycles",
            if races { "on " } else { "off" },
            dt,
            (n * n * n) as f64 / dt / 1e9,
            out.report.cycles
        );
    }
}
