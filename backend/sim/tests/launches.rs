//! Programs of several launches: launches run in order on one GM image (the
//! workspace carries data from one to the next), the L2 stays warm across
//! them, cycles add up launch by launch, and the assembler, disassembler,
//! bytecode, faults and trace all know about launches.

mod common;

use common::*;
use tessera_sim::{
    Dt, Machine, Pipe, Program, RunError, RunOptions, Tensor, Warm, assemble, decode, disassemble,
    encode, load, run,
};

/// Launch 0 (2 AIV blocks): `ws[i] = a[i] + 1` for 512 f32 per block.
/// Launch 1 (1 AIV block): `c = ws * 2` over the 1024 f32.
const TWO_STAGE: &str = r#"
.kernel two_stage
.param a f32[1024]
.result c f32[1024]
.workspace 4096

.launch
.block_dim 2
.aiv
    s.arg r1, 0
    s.sys r2, workspace
    s.sys r3, block_idx
    s.mul r3, r3, 2048
    s.add r1, r1, r3
    s.add r2, r2, r3
    mte2.copy.gm.ub [0], [r1], 1, 2048, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.adds.f32 [2048], [0], 1.0, 8, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r2], [2048], 1, 2048, 0, 0
    end

.launch
.block_dim 1
.aiv
    s.sys r1, workspace
    s.arg r2, 1
    mte2.copy.gm.ub [0], [r1], 1, 4096, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.muls.f32 [4096], [0], 2.0, 16, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r2], [4096], 1, 4096, 0, 0
    end
"#;

fn a_input() -> (Vec<f32>, Vec<(String, Tensor)>) {
    let a: Vec<f32> = (0..1024).map(|i| (i % 97) as f32 * 0.25 - 12.0).collect();
    let inputs = vec![("a".to_string(), f32_tensor(&[1024], &a))];
    (a, inputs)
}

/// The program with only launch `i`.
fn alone(p: &Program, i: usize) -> Program {
    Program {
        launches: vec![p.launches[i].clone()],
        ..p.clone()
    }
}

#[test]
fn two_launches_share_the_workspace_and_their_cycles_add_up() {
    let m = Machine::default();
    let p = assemble(TWO_STAGE, &m).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.launches.len(), 2);
    assert_eq!(p.launches[0].block_dim, 2);
    assert_eq!(p.launches[1].block_dim, 1);
    let (a, inputs) = a_input();
    // The race detector is on (the default): launch 1 reads what launch 0
    // wrote with no flag between them, which is fine — launches are ordered.
    let out = run(&m, &p, &inputs, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let c = values(&out.outputs[0].1);
    for i in 0..1024 {
        assert_eq!(c[i], f64::from((a[i] + 1.0) * 2.0), "c[{i}]");
    }

    // Launch 0, per block (both blocks in parallel; 2 x 80 B/cycle is far below
    // the chip's 768, so they do not slow each other down):
    //   6 scalar instructions (t = 0..6), the load issued at 6 reaches MTE2 at 7;
    //   load: 4 new GM lines -> 200 fixed, then 2048 B / 80 = 25.6 -> 26: ends 233;
    //   sync.set mte2->v at 233 sets at 234; the vector wait ends 235;
    //   vec.adds: head 10 + 8 repeats x 1 = 18 -> free 253, visible 253 + 14 = 267;
    //   sync.set v->mte3 sets at 267; the MTE3 wait ends 268;
    //   store: new lines -> 200 fixed + 2048 / 64 = 32: ends 500.
    //   Span 500, launch 0 = 11000 + 500 = 11500 cycles.
    // Launch 1 (one block):
    //   2 scalar instructions, the load reaches MTE2 at 3;
    //   load of the 4096-B workspace: every line was touched by launch 0, so it
    //   is an L2 hit: 50 fixed + 4096 / 80 = 51.2 -> 52: ends 105;
    //   set at 106, wait ends 107; vec.muls 10 + 16 = 26 -> free 133, visible 147;
    //   MTE3 wait ends 148; store: new lines (c) -> 200 + 4096 / 64 = 64: ends 412.
    //   Span 412, launch 1 = 11000 + 412 = 11412 cycles.
    // Total = 11500 + 11412 = 22912.
    let r = &out.report;
    assert_eq!(r.cycles, 22912);
    assert_eq!(r.launch_cycles, 2 * 11000);
    assert_eq!(r.block_dim, 3);
    assert_eq!(r.waves, 2);
    let per: Vec<(u32, u32, u64)> = r
        .launches
        .iter()
        .map(|l| (l.block_dim, l.waves, l.cycles))
        .collect();
    assert_eq!(per, vec![(2, 1, 11500), (1, 1, 11412)]);
    // HBM: launch 0 misses on its loads and stores (2 x 2048 + 2 x 2048 B);
    // launch 1 only on its store to c (4096 B): its loads hit the warm L2.
    assert_eq!(r.hbm_bytes, 8192 + 4096);
    let bytes = |path: &str| r.bytes.iter().find(|b| b.path == path).unwrap().bytes;
    assert_eq!(bytes("GM->UB"), 4096 + 4096);
    assert_eq!(bytes("UB->GM"), 4096 + 4096);

    // Each launch alone, as a single-launch program, from a cold L2.
    let opts = RunOptions {
        timing_only: true,
        ..Default::default()
    };
    let r0 = run(&m, &alone(&p, 0), &[], &opts).unwrap().report;
    let r1 = run(&m, &alone(&p, 1), &[], &opts).unwrap().report;
    // Launch 0 alone is the same 11500 cycles.
    assert_eq!(r0.cycles, 11500);
    // Launch 1 alone misses on its load: 200 fixed instead of 50, so every
    // later step is 150 cycles later: 11412 + 150 = 11562.
    assert_eq!(r1.cycles, 11562);
    assert_eq!(r.cycles, r0.cycles + r1.cycles - (200 - 50));
    assert_eq!(r1.hbm_bytes, 4096 + 4096);
    // Launch 1 alone with the workspace warm, as launch 0 leaves it: its
    // load hits L2 as in the program (11412 cycles) and only its store to
    // c misses. Warming a, which it does not read, changes nothing; so
    // does a range past the workspace's end.
    let warm = |w: Vec<Warm>| RunOptions {
        timing_only: true,
        warm: w,
        ..Default::default()
    };
    let ws = Warm::Workspace {
        offset: 0,
        bytes: 4096,
    };
    let r1w = run(&m, &alone(&p, 1), &[], &warm(vec![ws.clone()]))
        .unwrap()
        .report;
    assert_eq!((r1w.cycles, r1w.hbm_bytes), (11412, 4096));
    let r1a = run(&m, &alone(&p, 1), &[], &warm(vec![Warm::Param(0)]))
        .unwrap()
        .report;
    assert_eq!((r1a.cycles, r1a.hbm_bytes), (11562, 4096 + 4096));
    let past = Warm::Workspace {
        offset: 4096,
        bytes: 1 << 40,
    };
    let r1p = run(&m, &alone(&p, 1), &[], &warm(vec![past, Warm::Result(7)]))
        .unwrap()
        .report;
    assert_eq!((r1p.cycles, r1p.hbm_bytes), (11562, 4096 + 4096));
    // Half the workspace warm: the load's first two lines hit, the other
    // two miss, so it pays the miss's fixed cost and 2048 B of HBM.
    let half = Warm::Workspace {
        offset: 0,
        bytes: 2048,
    };
    let r1h = run(&m, &alone(&p, 1), &[], &warm(vec![half]))
        .unwrap()
        .report;
    assert_eq!(r1h.hbm_bytes, 2048 + 4096);
    // The result warm: the store to c hits too.
    let r1c = run(&m, &alone(&p, 1), &[], &warm(vec![ws, Warm::Result(0)]))
        .unwrap()
        .report;
    assert_eq!(r1c.hbm_bytes, 0);
    // Sums: FLOPs, instructions and busy cycles of pipes whose work does not
    // depend on the L2 (everything but MTE2) are the sums of the parts.
    assert_eq!(r.vector_flops, r0.vector_flops + r1.vector_flops);
    assert_eq!(r.vector_flops, 1024 + 1024);
    assert_eq!(r.instructions, r0.instructions + r1.instructions);
    let pipe = |r: &tessera_sim::Report, name: &str| {
        r.pipes.iter().find(|p| p.pipe == name).cloned().unwrap()
    };
    for name in ["VECTOR", "MTE3", "SCALAR"] {
        assert_eq!(
            pipe(r, name).busy_cycles,
            pipe(&r0, name).busy_cycles + pipe(&r1, name).busy_cycles,
            "{name}"
        );
    }
    // MTE2 busy (the load, then 1 cycle for its sync.set): launch 0:
    // 2 x (233 - 7 + 1) = 454; launch 1: 105 - 3 + 1 = 103.
    assert_eq!(pipe(r, "MTE2").busy_cycles, 454 + 103);
    // Utilisation = sum busy / sum (cores x span) = 557 / (2 x 500 + 1 x 412).
    let u = pipe(r, "MTE2");
    assert_eq!(u.cores, 2);
    assert!((u.utilisation - 557.0 / 1412.0).abs() < 1e-12, "{u:?}");
    // The table shows the breakdown.
    let table = r.table();
    assert!(
        table.contains("2 launches, 3 blocks in 2 wave(s)"),
        "{table}"
    );
    assert!(
        table.contains("launch 0        11500 cycles  2 blocks in 1 wave(s)"),
        "{table}"
    );
    assert!(
        table.contains("launch 1        11412 cycles  1 blocks in 1 wave(s)"),
        "{table}"
    );
    assert!(table.contains("total  22912 cycles"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["launches"][1]["cycles"], 11412);
    assert_eq!(json["cycles"], 22912);
    // A single-launch report has one entry and the table of old.
    assert_eq!(r0.launches.len(), 1);
    assert!(
        r0.table()
            .starts_with("kernel two_stage on 910b-like: 2 blocks in 1 wave(s)")
    );
    // Timing-only runs keep their cycles (GM state persists without data too).
    let t = run(&m, &p, &[], &opts).unwrap().report;
    assert_eq!(t.cycles, 22912);
}

/// Launch 0: a cube-only GEMM on 2 AICs, `ws = a @ b` (f16 in, f32 out, 16 rows
/// per block). Launch 1: a vector-only pass on 4 AIVs, `c = relu(ws)`.
const GEMM_THEN_RELU: &str = r#"
.kernel gemm_relu
.machine 910b-like
.param a f16[32, 16]
.param b f16[16, 16]
.result c f32[32, 16]
.workspace 2048

.launch
.block_dim 2
.aic
    s.arg r1, 0
    s.arg r2, 1
    s.sys r3, workspace
    s.sys r4, block_idx
    s.mul r5, r4, 512
    s.add r1, r1, r5
    s.mul r6, r4, 1024
    s.add r3, r3, r6
    mte2.nd2nz.gm.l1.f16 [0], [r1], 16, 16, 32, 16
    mte2.nd2nz.gm.l1.f16 [512], [r2], 16, 16, 32, 16
    sync.set mte2, mte1, 0
    sync.wait mte2, mte1, 0
    mte1.load.l0a.f16 [0], [0], 1, 1, 512
    mte1.load.l0b.t.f16 [0], [512], 1, 1, 512
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], 16, 16, 16, 1
    sync.set m, fix, 0
    sync.wait m, fix, 0
    fix.copy.l0c.gm.f32 [r3], [0], 16, 16, 16, 64, 0
    end

.launch
.block_dim 4
.aiv
    s.sys r1, workspace
    s.arg r2, 2
    s.sys r3, block_idx
    s.mul r3, r3, 512
    s.add r1, r1, r3
    s.add r2, r2, r3
    mte2.copy.gm.ub [0], [r1], 1, 512, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.relu.f32 [512], [0], 2, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r2], [512], 1, 512, 0, 0
    end
"#;

fn f16_tensor(shape: &[u64], v: &[f32]) -> Tensor {
    Tensor {
        dtype: Dt::F16,
        shape: shape.to_vec(),
        data: v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_bits().to_le_bytes())
            .collect(),
    }
}

#[test]
fn a_cube_launch_then_a_vector_launch_on_910b() {
    let m = Machine::builtin("910b-like").unwrap();
    let p = assemble(GEMM_THEN_RELU, &m).unwrap_or_else(|e| panic!("{e:?}"));
    let a: Vec<f32> = (0..512).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
    let b: Vec<f32> = (0..256).map(|i| ((i * 5) % 9) as f32 - 4.0).collect();
    let inputs = vec![
        ("a".to_string(), f16_tensor(&[32, 16], &a)),
        ("b".to_string(), f16_tensor(&[16, 16], &b)),
    ];
    let out = run(&m, &p, &inputs, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let c = values(&out.outputs[0].1);
    for i in 0..32 {
        for j in 0..16 {
            let dot: f32 = (0..16).map(|k| a[i * 16 + k] * b[k * 16 + j]).sum();
            assert_eq!(c[i * 16 + j], f64::from(dot.max(0.0)), "c[{i}][{j}]");
        }
    }
    let r = &out.report;
    // Launch 0 ran 2 AICs (cube pipes), launch 1 ran 4 AIVs (vector pipes).
    let pipe = |name: &str| r.pipes.iter().find(|p| p.pipe == name).cloned();
    assert_eq!(pipe("CUBE").unwrap().cores, 2);
    assert_eq!(pipe("FIX").unwrap().cores, 2);
    assert_eq!(pipe("VECTOR").unwrap().cores, 4);
    assert_eq!(pipe("MTE3").unwrap().cores, 4);
    assert_eq!(pipe("SCALAR").unwrap().cores, 4);
    assert_eq!(r.cube_flops, 2 * 32 * 16 * 16);
    assert_eq!(r.vector_flops, 512);
    assert_eq!(
        r.cycles,
        r.launches.iter().map(|l| l.cycles).sum::<u64>(),
        "total = sum of the launches"
    );
    let per: Vec<(u32, u32)> = r.launches.iter().map(|l| (l.block_dim, l.waves)).collect();
    assert_eq!(per, vec![(2, 1), (4, 1)]);
    // Launch 0 alone costs what it costs in the program; launch 1 alone reads a
    // cold workspace: 200 fixed cycles instead of 50 for its load.
    let opts = RunOptions {
        timing_only: true,
        ..Default::default()
    };
    let r0 = run(&m, &alone(&p, 0), &[], &opts).unwrap().report;
    let r1 = run(&m, &alone(&p, 1), &[], &opts).unwrap().report;
    println!(
        "gemm then relu: {} cycles = {} + {} (alone: {} and {})",
        r.cycles, r.launches[0].cycles, r.launches[1].cycles, r0.cycles, r1.cycles
    );
    assert_eq!(r.launches[0].cycles, r0.cycles);
    assert_eq!(r.launches[1].cycles + 150, r1.cycles);
    assert_eq!(r.cycles, r0.cycles + r1.cycles - 150);
}

#[test]
fn multi_launch_programs_round_trip_through_text_and_bytecode() {
    for (src, machine) in [(TWO_STAGE, "910b-like"), (GEMM_THEN_RELU, "910b-like")] {
        let m = Machine::builtin(machine).unwrap();
        let p = assemble(src, &m).unwrap();
        let text = disassemble(&p);
        assert_eq!(text.matches("\n.launch").count(), 2, "{text}");
        let p2 = assemble(&text, &m).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(p2, p);
        assert_eq!(disassemble(&p2), text);
        let bytes = encode(&p);
        assert_eq!(decode(&bytes).unwrap(), p);
        assert_eq!(load(&bytes, &m).unwrap(), p);
        assert_eq!(encode(&p2), bytes);
    }
    // A single launch prints no `.launch`; an explicit leading `.launch` on a
    // one-launch file is the same program.
    let m = Machine::default();
    let one = ".kernel k\n.block_dim 3\n.aiv\n    end\n";
    let p = assemble(one, &m).unwrap();
    assert!(!disassemble(&p).contains(".launch"));
    let explicit = assemble(".kernel k\n.launch\n.block_dim 3\n.aiv\n    end\n", &m).unwrap();
    assert_eq!(explicit, p);
    // Text before the first `.launch` that has a section is launch 0 of its own;
    // labels are local to their section, so each launch may reuse them.
    let src = ".kernel k\n.aiv\nl:\n    s.jmp done\ndone:\n    end\n.launch\n.block_dim 5\n.aiv\nl:\n    s.br.eq zr, 0, done\ndone:\n    end\n";
    let p = assemble(src, &m).unwrap();
    assert_eq!(p.launches.len(), 2);
    assert_eq!(p.launches[0].block_dim, 1);
    assert_eq!(p.launches[1].block_dim, 5);
    insta::assert_snapshot!(disassemble(&p));
}

#[test]
fn assembler_checks_launches() {
    let m = Machine::default();
    let errors = |src: &str| -> Vec<String> {
        assemble(src, &m)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(
        errors(".kernel k\n.launch\n.aiv\n    end\n.launch\n.launch\n.aiv\n    end\n"),
        vec!["error[E0807]: 5:1: launch 1: no code section (.aic, .aiv or .core)"]
    );
    assert_eq!(
        errors(".kernel k\n.launch 2\n.aiv\n    end\n"),
        vec!["error[E0807]: 2:1: `.launch` takes no arguments"]
    );
    assert_eq!(
        errors(".kernel k\n.block_dim 2\n.block_dim 3\n.aiv\n    end\n"),
        vec![
            "error[E0805]: 3:1: `.block_dim` is given twice for this launch (start the next one with `.launch`)"
        ]
    );
    assert_eq!(
        errors(".kernel k\n.aiv\n    end\n.launch\n.aiv\n    end\n.aiv\n    end\n"),
        vec!["error[E0805]: 7:1: section `.aiv` appears twice in this launch"]
    );
    // A `.block_dim` before the first `.launch` belongs to launch 0, which then
    // has no section.
    assert_eq!(
        errors(".kernel k\n.block_dim 2\n.launch\n.aiv\n    end\n"),
        vec!["error[E0807]: 1:1: launch 0: no code section (.aic, .aiv or .core)"]
    );
    // Labels do not cross launches.
    assert_eq!(
        errors(".kernel k\n.aiv\nhere:\n    end\n.launch\n.aiv\n    s.jmp here\n"),
        vec!["error[E0804]: 7:11: operand 1 of `s.jmp`: unknown label `here`"]
    );
}

fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    let n = b.len() - 8;
    let sum = tessera_sim::fnv::fnv1a(&b[..n]);
    b[n..].copy_from_slice(&sum.to_le_bytes());
    b
}

/// The first `n` bytes of the body of `bytes`, with a checksum.
fn truncated(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut b = bytes[..n].to_vec();
    b.extend_from_slice(&[0; 8]);
    reseal(b)
}

#[test]
fn the_loader_rejects_truncated_and_inconsistent_multi_launch_files() {
    let m = Machine::default();
    let p = assemble(TWO_STAGE, &m).unwrap();
    let good = encode(&p);
    let body = good.len() - 8;
    // Where launch 1 starts: the encoding of launch 0 alone ends there.
    let mut first = p.clone();
    first.launches.truncate(1);
    let launch1_at = encode(&first).len() - 8;
    let mut out = Vec::new();
    let mut show = |what: &str, bytes: &[u8]| {
        let e = load(bytes, &m).unwrap_err();
        assert!(decode(bytes).is_err() || e.code == "E0907", "{what}: {e}");
        out.push(format!("{what}: {e}"));
    };
    // Cut exactly between the launches: the launch count says 2.
    show("no launch 1", &truncated(&good, launch1_at));
    // Cut inside launch 1's header, and inside its code.
    show("launch 1 header", &truncated(&good, launch1_at + 3));
    show("launch 1 code", &truncated(&good, body - 1));
    // The launch count says 1: launch 1 is trailing garbage.
    let count_at = 16 + 2 + "910b-like".len() + 2 + "two_stage".len() + 8;
    let mut b = good.clone();
    assert_eq!(&b[count_at..count_at + 2], &[2, 0]);
    b[count_at] = 1;
    show("count 1", &reseal(b.clone()));
    // ... 3: launch 2 is missing.
    b[count_at] = 3;
    show("count 3", &reseal(b.clone()));
    // ... 0: no launch at all (and launch 0's bytes are trailing).
    let mut none = p.clone();
    none.launches.clear();
    show("no launches", &encode(&none));
    // An invalid block_dim in launch 1.
    let mut b = good.clone();
    b[launch1_at..launch1_at + 4].copy_from_slice(&0u32.to_le_bytes());
    show("block_dim 0", &reseal(b));
    // Launch 1's `end` replaced by `s.nop`: the offset points at it.
    let mut b = good.clone();
    b[body - 1] = 0;
    show("launch 1 falls off", &reseal(b));
    // Every strict prefix of the file is rejected.
    for n in 0..body {
        assert!(
            load(&truncated(&good, n), &m).is_err(),
            "prefix of {n} bytes loads"
        );
    }
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn a_fault_names_its_launch_and_the_cycle_limit_spans_launches() {
    let m = Machine::default();
    let src = ".kernel k\n.launch\n.aiv\n    end\n.launch\n.block_dim 2\n.aiv\n    s.sys r1, block_idx\n    s.li r2, 7\n    s.div r3, r2, r1\n    end\n";
    let p = assemble(src, &m).unwrap();
    let RunError::Fault(f) = run(&m, &p, &[], &RunOptions::default()).unwrap_err() else {
        panic!("expected a fault");
    };
    assert_eq!((f.code(), f.launch, f.launches), ("E0700", 1, 2));
    let text = f.to_string();
    assert!(
        text.contains(
            "--> launch 1, AIV 0 (block 0), pipe SCALAR, instruction #2 `s.div r3, r2, r1`, cycle 2"
        ),
        "{text}"
    );
    // A single-launch program does not mention launches.
    let p1 = alone(&p, 1);
    let RunError::Fault(f) = run(&m, &p1, &[], &RunOptions::default()).unwrap_err() else {
        panic!("expected a fault");
    };
    assert_eq!((f.launch, f.launches), (0, 1));
    assert!(!f.to_string().contains("launch"), "{f}");

    // The cycle limit bounds the program's cycles, launch costs included:
    // launch 0 of TWO_STAGE takes 11 000 + 500 cycles, launch 1 11 000 +
    // 412, so a limit of 22 911 stops launch 1, whose blocks begin at 22 500.
    let p = assemble(TWO_STAGE, &m).unwrap();
    let opts = RunOptions {
        timing_only: true,
        cycle_limit: 22_911,
        ..Default::default()
    };
    let RunError::Fault(f) = run(&m, &p, &[], &opts).unwrap_err() else {
        panic!("expected a fault");
    };
    assert_eq!((f.code(), f.launch), ("E0707", 1));
    assert!(
        f.message.contains(
            "cycle limit of 22911 cycles (22500 of them before this launch's blocks began"
        ),
        "{f}"
    );
    let opts = RunOptions {
        cycle_limit: 22_912,
        ..opts
    };
    assert_eq!(run(&m, &p, &[], &opts).unwrap().report.cycles, 22912);
    // A launch cost past the limit stops the first launch.
    let opts = RunOptions {
        cycle_limit: 10_999,
        ..opts
    };
    let RunError::Fault(f) = run(&m, &p, &[], &opts).unwrap_err() else {
        panic!("expected a fault");
    };
    assert_eq!((f.code(), f.launch), ("E0707", 0));
}

#[test]
fn the_trace_of_two_launches_shows_both_one_after_the_other() {
    let m = Machine::default();
    let p = assemble(TWO_STAGE, &m).unwrap();
    let (_, inputs) = a_input();
    let opts = RunOptions {
        trace: true,
        ..Default::default()
    };
    let out = run(&m, &p, &inputs, &opts).unwrap();
    let tl = out.timeline.as_ref().unwrap();
    // Timeline cycles count from launch 0's kernel start: launch 1's kernel
    // starts at 500 (launch 0's span) + 11000 (launch 1's launch cost).
    assert_eq!(tl.launches.len(), 2);
    assert_eq!((tl.launches[0].start, tl.launches[0].span), (0, 500));
    assert_eq!((tl.launches[1].start, tl.launches[1].span), (11500, 412));
    let l0_end = tl
        .slices
        .iter()
        .filter(|s| s.launch == 0)
        .map(|s| s.end)
        .max()
        .unwrap();
    let l1_start = tl
        .slices
        .iter()
        .filter(|s| s.launch == 1)
        .map(|s| s.start)
        .min()
        .unwrap();
    assert_eq!(l0_end, 500);
    assert_eq!(l1_start, 11500);
    // Launch 1's store ends at 412 into its kernel.
    let store = tl
        .slices
        .iter()
        .filter(|s| s.launch == 1 && s.pipe == Pipe::Mte3)
        .find(|s| s.text.starts_with("mte3.copy"))
        .unwrap();
    assert_eq!(store.end, 11500 + 412);

    let json: serde_json::Value = serde_json::from_str(out.trace_json.as_deref().unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let us = |c: f64| c / 1800.0;
    // The `launches` track: one slice per launch, launch cost included.
    let pid = events
        .iter()
        .find(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "launches")
        .unwrap()["pid"]
        .clone();
    let launches: Vec<_> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] == pid)
        .collect();
    assert_eq!(launches.len(), 2);
    assert_eq!(launches[0]["name"], "launch 0");
    assert_eq!(launches[1]["name"], "launch 1");
    let ts = |e: &serde_json::Value| e["ts"].as_f64().unwrap();
    let dur = |e: &serde_json::Value| e["dur"].as_f64().unwrap();
    assert!((ts(launches[0]) - 0.0).abs() < 1e-3);
    assert!((dur(launches[0]) - us(11500.0)).abs() < 1e-3);
    assert!((ts(launches[1]) - us(11500.0)).abs() < 1e-3);
    assert!((dur(launches[1]) - us(11412.0)).abs() < 1e-3);
    // Instruction slices of launch 1 begin after launch 1's launch cost.
    let first1 = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["pid"] != pid && e["args"]["launch"] == 1)
        .map(ts)
        .fold(f64::INFINITY, f64::min);
    assert!((first1 - us(22500.0)).abs() < 1e-3, "{first1}");
    // AIV 0 ran in both launches: one track.
    let aiv0 = events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "process_name" && e["args"]["name"] == "AIV 0")
        .count();
    assert_eq!(aiv0, 1);
    // Flow ids stay unique across launches, and every start has its end.
    let mut ids: Vec<u64> = events
        .iter()
        .filter(|e| e["ph"] == "s")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert_eq!(n, events.iter().filter(|e| e["ph"] == "f").count());
    assert!(n >= 2 * 2 + 2);
}

/// The step-limit fault names the program's limit, also when a later
/// launch passes it (it once named what the earlier launches left).
#[test]
fn the_step_limit_fault_names_the_programs_limit() {
    let m = Machine::default();
    let p = assemble(TWO_STAGE, &m).unwrap();
    let mut in_launch_1 = false;
    for limit in 1..400 {
        let opts = RunOptions {
            timing_only: true,
            step_limit: Some(limit),
            ..Default::default()
        };
        match run(&m, &p, &[], &opts) {
            Err(RunError::Fault(f)) => {
                assert_eq!(f.code(), "E0711", "{f}");
                let named = format!("took more than {limit} steps");
                assert!(f.message.contains(&named), "limit {limit}: {f}");
                in_launch_1 |= f.launch == 1;
            }
            Err(e) => panic!("{e}"),
            Ok(_) => break,
        }
    }
    assert!(in_launch_1, "no limit stopped launch 1");
}
