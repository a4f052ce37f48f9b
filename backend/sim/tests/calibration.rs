//! Calibration: the default machine reproduces machine.md's figures within
//! ±15 %, and small cases whose cycle counts are derived by hand from the cost
//! formulas of the machine description (the arithmetic is in the comments).

mod common;

use common::*;
use tessera_sim::{AsmOptions, Machine, Pipe, RunOptions, assemble, assemble_with, run};

fn within(value: f64, target: f64, tol: f64) -> bool {
    (value - target).abs() <= tol * target
}

const VADD_64X64: &str = r#"
.kernel vadd
.param a f32[64, 64]
.param b f32[64, 64]
.result c f32[64, 64]
.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.arg r3, 2
    mte2.copy.gm.ub [0], [r1], 1, 16384, 0, 0
    mte2.copy.gm.ub [16384], [r2], 1, 16384, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.add.f32 [32768], [0], [16384], 64, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r3], [32768], 1, 16384, 0, 0
    end
"#;

#[test]
fn vector_add_64x64_f32_costs_152_cycles() {
    let m = Machine::default();
    let p = assemble(VADD_64X64, &m).unwrap();
    let a: Vec<f32> = (0..4096).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..4096).map(|i| 1.0 - i as f32).collect();
    let inputs = vec![
        ("a".into(), f32_tensor(&[64, 64], &a)),
        ("b".into(), f32_tensor(&[64, 64], &b)),
    ];
    let out = run(
        &m,
        &p,
        &inputs,
        &RunOptions {
            trace: true,
            ..Default::default()
        },
    )
    .unwrap();
    let c = values(&out.outputs[0].1);
    assert!(
        c.iter()
            .enumerate()
            .all(|(i, &v)| v == f64::from(a[i] + b[i]))
    );
    let tl = out.timeline.unwrap();
    let add = tl
        .slices
        .iter()
        .filter(|s| s.pipe != Pipe::S)
        .find(|s| s.text.starts_with("vec.add.f32"))
        .unwrap();
    // 4096 f32 = 64 repeats of 64 lanes: head 10 (the vector unit was idle) +
    // 64 repeats x 2 cycles (tensor-tensor add) = 138 pipe cycles, + tail 14 = 152.
    assert_eq!(add.end - add.start, 10 + 64 * 2);
    assert_eq!(add.visible - add.start, 152);
    // MTE3's wait is released when the result is visible (set_flag waits for it).
    let wait = tl
        .slices
        .iter()
        .filter(|s| s.pipe != Pipe::S)
        .find(|s| s.text.starts_with("wait sync.wait v, mte3"))
        .unwrap();
    assert_eq!(wait.end, add.visible + 1);
    // The simulated add is within 15 % of the profiled 160 cycles.
    let simulated = (add.visible - add.start) as f64;
    assert!(
        within(simulated, 160.0, 0.15),
        "{simulated}: the profiled figure is 160"
    );
    // Each 16 KiB load: 200 fixed (first touch of its lines) + 16384 / 80 = 204.8 → 405 cycles.
    let loads: Vec<_> = tl
        .slices
        .iter()
        .filter(|s| s.pipe != Pipe::S)
        .filter(|s| s.text.starts_with("mte2.copy"))
        .collect();
    assert_eq!(loads[0].end - loads[0].start, 405);
    assert_eq!(loads[1].start, loads[0].end);
    // The store: 200 + 16384 / 64 = 456 cycles.
    let store = tl
        .slices
        .iter()
        .filter(|s| s.pipe != Pipe::S)
        .find(|s| s.text.starts_with("mte3.copy"))
        .unwrap();
    assert_eq!(store.end - store.start, 456);
}

#[test]
fn gemm_6144_cubed_reaches_the_published_efficiency() {
    let m = Machine::default();
    let src = std::fs::read_to_string(repo().join("testsuite/cases/asm/gemm_f16_910b.s")).unwrap();
    let defines = ["M", "N", "K"]
        .iter()
        .map(|k| (k.to_string(), 6144))
        .collect();
    let p = assemble_with(&src, &m, &AsmOptions { defines }).unwrap();
    let out = run(
        &m,
        &p,
        &[],
        &RunOptions {
            timing_only: true,
            race_detection: false,
            ..Default::default()
        },
    )
    .unwrap();
    let r = &out.report;
    let peak = f64::from(m.cube_cores()) * 4096.0;
    let efficiency = 6144f64.powi(3) / peak / r.cycles as f64;
    let mte1 = r
        .pipes
        .iter()
        .find(|p| p.pipe == "MTE1")
        .unwrap()
        .utilisation;
    println!(
        "6144^3: {} cycles, {efficiency:.3} of cube peak, MTE1 {:.1} % busy",
        r.cycles,
        mte1 * 100.0
    );
    assert!(within(efficiency, 0.85, 0.15), "efficiency {efficiency}");
    assert!(within(mte1, 0.70, 0.15), "MTE1 {mte1}");
    // Exact and deterministic.
    insta::assert_snapshot!(r.table());
}

#[test]
fn mmad_and_mte1_costs_follow_the_formulas() {
    let m = Machine::default();
    let src = r#"
.kernel cube
.param a f16[16, 16]
.result c f32[16, 16]
.aic
    mte1.load.l0a.f16 [0], [0], 8, 4, 4096
    mte1.load.l0b.t.f16 [0], [0], 4, 16, 8192
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], 128, 64, 256, 1
    cube.mmad.f32 [0], [0], [0], 17, 8, 16, 0
    end
"#;
    let p = assemble(src, &m).unwrap();
    let out = run(
        &m,
        &p,
        &[],
        &RunOptions {
            timing_only: true,
            trace: true,
            ..Default::default()
        },
    )
    .unwrap();
    let tl = out.timeline.unwrap();
    let dur = |prefix: &str| {
        let s = tl
            .slices
            .iter()
            .filter(|s| s.pipe != Pipe::S)
            .find(|s| s.text.starts_with(prefix))
            .unwrap();
        s.end - s.start
    };
    // L0A: 8 x 4 fractals x 512 B = 16384 B at 256 B/cycle = 64, + 41 fixed = 105.
    assert_eq!(dur("mte1.load.l0a"), 105);
    // L0B: 4 x 16 x 512 = 32768 B at 128 B/cycle = 256, + 41 = 297.
    assert_eq!(dur("mte1.load.l0b"), 297);
    // mmad f16 128x64x256: 6 + (128/16)(64/16)(256/16) = 6 + 512 = 518.
    assert_eq!(dur("cube.mmad.f16"), 518);
    // mmad f32 17x8x16: k0 = 8; 6 + ceil(17/16) * 1 * 1 * 2 cycles = 10.
    assert_eq!(dur("cube.mmad.f32"), 10);
}

#[test]
fn unaligned_gm_moves_at_seventy_percent() {
    let m = Machine::default();
    let src = r#"
.kernel dma
.param a f32[8192]
.result c f32[8192]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 16384, 0, 0
    mte2.copy.gm.ub [0], [r1 + 32], 1, 16000, 0, 0
    mte2.copy.gm.ub [0], [r1 + 1], 4, 100, 200, 128
    end
"#;
    let p = assemble(src, &m).unwrap();
    let out = run(
        &m,
        &p,
        &[],
        &RunOptions {
            timing_only: true,
            trace: true,
            ..Default::default()
        },
    )
    .unwrap();
    let tl = out.timeline.unwrap();
    let d: Vec<u64> = tl
        .slices
        .iter()
        .filter(|s| s.pipe != Pipe::S)
        .filter(|s| s.text.starts_with("mte2"))
        .map(|s| s.end - s.start)
        .collect();
    // 1) aligned, new lines: 200 + 16384 / 80 = 404.8 → 405.
    // 2) GM address + 32 is not 512-aligned: 16000 B (a multiple of 32) / 0.7 / 80 = 285.7 ...
    //    all of its lines were touched by 1): L2 hit, fixed 50 → 50 + 285.71 → 336.
    // 3) 4 bursts of 100 B → rounded to 128 B each, all unaligned: 512 / 0.7 / 80 = 9.14;
    //    every line was touched by 1): fixed 50 → 59.14 → 60.
    assert_eq!(d, vec![405, 336, 60]);
}

#[test]
fn chip_gm_bandwidth_limits_48_vector_cores() {
    // Every AIV streams 16 x 64 KiB of its own (never touched) GM: 48 MiB in all.
    // Alone, a core would need 16 x (200 + 65536 / 80) = 16304 cycles; the chip
    // moves 768 B/cycle, so 48 MiB take at least 50331648 / 768 = 65536 cycles.
    // The 48 cores run in lock step: each transfer is 200 fixed cycles (no
    // streaming) then 48 x 65536 B / 768 = 4096 cycles of shared streaming, so
    // the span is 16 x (200 + 4096) = 68736 cycles (plus a few scalar cycles).
    let m = Machine::default();
    let src = r#"
.kernel stream
.equ PER, 16 * 65536
.param a f32[48 * PER / 4]
.result c f32[16]
.block_dim 48
.aiv
    s.arg r1, 0
    s.sys r2, block_idx
    s.mul r2, r2, PER
    s.add r1, r1, r2
    s.li r3, 0
loop:
    mte2.copy.gm.ub [0], [r1], 1, 65536, 0, 0
    s.add r1, r1, 65536
    s.add r3, r3, 1
    s.br.lt r3, 16, loop
    end
"#;
    let p = assemble(src, &m).unwrap();
    let out = run(
        &m,
        &p,
        &[],
        &RunOptions {
            timing_only: true,
            race_detection: false,
            ..Default::default()
        },
    )
    .unwrap();
    let span = out.report.cycles - out.report.launch_cycles;
    assert_eq!(out.report.hbm_bytes, 48 * 16 * 65536);
    assert!(span >= 65536, "{span}");
    assert!(within(span as f64, 68736.0, 0.001), "{span}");
}

#[test]
fn blocks_beyond_the_cores_run_in_waves() {
    // 60 blocks on 48 AIVs: 2 waves. A block costs 1 (s.nop) + 1 (end) = 2 cycles;
    // the second wave starts 2000 cycles after the first block of its slot ends.
    let m = Machine::default();
    let src = ".kernel waves\n.result c f32[1]\n.block_dim 60\n.aiv\n    s.nop\n    end\n";
    let p = assemble(src, &m).unwrap();
    let out = run(&m, &p, &[], &RunOptions::default()).unwrap();
    assert_eq!(out.report.waves, 2);
    assert_eq!(out.report.cycles, 11000 + 2 + 2000 + 2);
}
