//! Instruction semantics on small hand-checked cases: casts, compare/select,
//! reductions, broadcast, gather/transpose, the cube path with padding and
//! tails (f16, f32, i8), L0C → UB on the coupled machine, scalar memory,
//! cross-core flags, determinism and the Chrome trace.

mod common;

use common::*;
use tessera_sim::{Dt, Machine, RunOptions, Tensor, assemble, run};

fn go(m: &Machine, src: &str, inputs: Vec<(&str, Tensor)>) -> Vec<(String, Tensor)> {
    let p = assemble(src, m).unwrap_or_else(|e| panic!("{e:?}"));
    let inputs: Vec<_> = inputs
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect();
    run(m, &p, &inputs, &RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .outputs
}

fn out<'a>(o: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &o.iter().find(|(n, _)| n == name).unwrap().1
}

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
fn casts_round_truncate_and_saturate() {
    let m = Machine::default();
    let src = r#"
.kernel casts
.param a f32[64]
.result i i32[64]
.result b i8[64]
.result h f16[64]
.result z bool[64]
.result back f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.cvt.i32.f32 [256], [0], 1, 64
    vec.cvt.i8.f32 [512, 1, 2], [0], 1, 64
    vec.cvt.f16.f32 [768, 1, 4], [0], 1, 64
    vec.cvt.b8.f32 [1024, 1, 2], [0], 1, 64
    sync.barrier v
    vec.cvt.f32.i8 [1280], [512, 1, 2], 1, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    s.arg r2, 1
    mte3.copy.ub.gm [r2], [256], 1, 256, 0, 0
    s.arg r2, 2
    mte3.copy.ub.gm [r2], [512], 1, 64, 0, 0
    s.arg r2, 3
    mte3.copy.ub.gm [r2], [768], 1, 128, 0, 0
    s.arg r2, 4
    mte3.copy.ub.gm [r2], [1024], 1, 64, 0, 0
    s.arg r2, 5
    mte3.copy.ub.gm [r2], [1280], 1, 256, 0, 0
    end
"#;
    let mut a = vec![0.0f32; 64];
    let special = [
        1.5,
        -2.7,
        1e10,
        -1e10,
        f32::NAN,
        0.0,
        127.9,
        -128.9,
        300.0,
        65520.0,
        1.0 + 1.0 / 2048.0,
        1.0 + 3.0 / 2048.0,
    ];
    a[..special.len()].copy_from_slice(&special);
    let o = go(&m, src, vec![("a", f32_tensor(&[64], &a))]);
    let i = values(out(&o, "i"));
    assert_eq!(
        &i[..10],
        &[
            1.0,
            -2.0,
            2147483647.0,
            -2147483648.0,
            0.0,
            0.0,
            127.0,
            -128.0,
            300.0,
            65520.0
        ]
    );
    let b = values(out(&o, "b"));
    assert_eq!(
        &b[..9],
        &[1.0, -2.0, 127.0, -128.0, 0.0, 0.0, 127.0, -128.0, 127.0]
    );
    let h = values(out(&o, "h"));
    // 65520 rounds to +inf in f16; 1 + 1/2048 is a tie → even (1.0); 1 + 3/2048 → 1 + 4/2048.
    assert_eq!(h[9], f64::INFINITY);
    assert_eq!(h[10], 1.0);
    assert_eq!(h[11], 1.0 + 4.0 / 2048.0);
    let z = values(out(&o, "z"));
    assert_eq!(&z[..6], &[1.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    let back = values(out(&o, "back"));
    assert_eq!(&back[..4], &[1.0, -2.0, 127.0, -128.0]);
}

#[test]
fn compare_select_iota_and_bit_masks() {
    let m = Machine::default();
    let src = r#"
.kernel sel
.param a f32[64]
.param b f32[64]
.result lo f32[64]
.result idx i32[64]
.result masked f32[64]
.aiv
    s.arg r1, 0
    s.arg r2, 1
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    mte2.copy.gm.ub [256], [r2], 1, 256, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.cmp.lt.f32 [512, 1, 2], [0], [256], 1, 64
    vec.iota.i32 [1024], 10, 1, 64
    vec.dup.f32 [1280], -1.0, 1, 64
    s.li r3, 0x5555555555555555
    sync.barrier v
    vec.sel.f32 [768], [512, 1, 2], [0], [256], 1, 64
    vec.adds.f32 [1280], [0], 100.0, 1, {r3, zr}
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    s.arg r2, 2
    mte3.copy.ub.gm [r2], [768], 1, 256, 0, 0
    s.arg r2, 3
    mte3.copy.ub.gm [r2], [1024], 1, 256, 0, 0
    s.arg r2, 4
    mte3.copy.ub.gm [r2], [1280], 1, 256, 0, 0
    end
"#;
    let a: Vec<f32> = (0..64).map(|i| (i as f32 * 7.0) % 13.0).collect();
    let b: Vec<f32> = (0..64).map(|i| (i as f32 * 5.0) % 11.0).collect();
    let o = go(
        &m,
        src,
        vec![("a", f32_tensor(&[64], &a)), ("b", f32_tensor(&[64], &b))],
    );
    let lo = values(out(&o, "lo"));
    for k in 0..64 {
        assert_eq!(lo[k], f64::from(a[k].min(b[k])));
    }
    assert_eq!(
        values(out(&o, "idx")),
        (10..74).map(f64::from).collect::<Vec<_>>()
    );
    let masked = values(out(&o, "masked"));
    for k in 0..64 {
        assert_eq!(
            masked[k],
            if k % 2 == 0 {
                f64::from(a[k] + 100.0)
            } else {
                -1.0
            }
        );
    }
}

#[test]
fn reductions_and_broadcast() {
    let m = Machine::default();
    let src = r#"
.kernel red
.param a f16[256]
.result rs f32[2]
.result bm f16[16]
.result am f16[128]
.result br f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 512, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.cvt.f32.f16 [1024], [0, 1, 4], 4, 64
    vec.bmax.f16 [3072], [0], 2, 128
    vec.amax.f16 [3584], [0], 2, 128
    sync.barrier v
    vec.asum.f32 [4096], [1024], 2, 64
    sync.barrier v
    vec.rsum.f32 [5120], [4096], 1, 64
    vec.bsum.f32 [5632], [4096], 1, 64
    sync.barrier v
    vec.brcb.f32 [6144], [5632], 1
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    s.arg r2, 1
    mte3.copy.ub.gm [r2], [5120], 1, 4, 0, 0
    s.arg r2, 2
    mte3.copy.ub.gm [r2], [3072], 1, 32, 0, 0
    s.arg r2, 3
    mte3.copy.ub.gm [r2], [3584], 1, 256, 0, 0
    s.arg r2, 4
    mte3.copy.ub.gm [r2], [6144], 1, 256, 0, 0
    end
"#;
    let a: Vec<f32> = (0..256)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 8.0)
        .collect();
    let o = go(&m, src, vec![("a", f16_tensor(&[256], &a))]);
    // rsum of (asum over the 4 f32 repeats, only the first 2 taken) = sum of a[0..128].
    let total: f32 = a[..128].iter().sum();
    assert_eq!(values(out(&o, "rs"))[0], f64::from(total));
    let bm = values(out(&o, "bm"));
    for (blk, v) in bm.iter().enumerate() {
        let want = a[blk * 16..blk * 16 + 16]
            .iter()
            .cloned()
            .fold(f32::MIN, f32::max);
        assert_eq!(*v, f64::from(want));
    }
    let am = values(out(&o, "am"));
    for l in 0..128 {
        assert_eq!(am[l], f64::from(a[l].max(a[128 + l])));
    }
    // brcb: block b of the result holds bsum's b-th value (lanes 8b..8b+8 of the folded sum).
    let br = values(out(&o, "br"));
    for blk in 0..8 {
        let folded: Vec<f32> = (0..64).map(|l| a[l] + a[64 + l]).collect();
        let want: f32 = folded[blk * 8..blk * 8 + 8].iter().sum();
        for l in 0..8 {
            assert!((br[blk * 8 + l] - f64::from(want)).abs() < 1e-5);
        }
    }
}

#[test]
fn transpose_by_trans_and_by_gather() {
    let m = Machine::default();
    let src = r#"
.kernel tr
.param a f16[16, 16]
.result t f16[16, 16]
.result g f16[16, 16]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1], 1, 512, 0, 0
    ; gather offsets: idx[l] = ((l % 16) * 16 + l / 16) * 2, built with integer vector ops
    vec.iota.i32 [4096], 0, 4, 64
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.trans.f16 [512], [0], 1
    vec.dup.i32 [5120], 16, 4, 64
    sync.barrier v
    vec.div.i32 [6144], [4096], [5120], 4, 64
    sync.barrier v
    vec.mul.i32 [7168], [6144], [5120], 4, 64
    sync.barrier v
    vec.sub.i32 [7168], [4096], [7168], 4, 64
    sync.barrier v
    vec.muls.i32 [7168], [7168], 16, 4, 64
    sync.barrier v
    vec.add.i32 [7168], [7168], [6144], 4, 64
    sync.barrier v
    vec.muls.i32 [7168], [7168], 2, 4, 64
    sync.barrier v
    vec.gather.f16 [1024, 1, 4], [0], [7168], 4, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    s.arg r2, 1
    mte3.copy.ub.gm [r2], [512], 1, 512, 0, 0
    s.arg r2, 2
    mte3.copy.ub.gm [r2], [1024], 1, 512, 0, 0
    end
"#;
    let a: Vec<f32> = (0..256).map(|i| i as f32).collect();
    let o = go(&m, src, vec![("a", f16_tensor(&[16, 16], &a))]);
    for name in ["t", "g"] {
        let t = values(out(&o, name));
        for i in 0..16 {
            for j in 0..16 {
                assert_eq!(t[i * 16 + j], f64::from(a[j * 16 + i]), "{name}[{i}][{j}]");
            }
        }
    }
}

/// A small matmul through nd2nz (with zero padding), MTE1, mmad and FixPipe
/// (tail clipping, relu, cast), for f16, f32 and i8 inputs.
fn cube_case(dt: &str, m_: usize, k: usize, n: usize) {
    let m = Machine::default();
    let (esz, c0, out_dt, relu) = match dt {
        "f16" => (2, 16, "f16", 1),
        "f32" => (4, 8, "f32", 0),
        _ => (1, 32, "i32", 0),
    };
    let r16 = |x: usize| x.div_ceil(16) * 16;
    let rc = |x: usize| x.div_ceil(c0) * c0;
    let (m1, k1, n1) = (r16(m_) / 16, rc(k) / c0, r16(n) / 16);
    // L1: A NZ at 0 (rows alloc r16(m)), B NZ at 65536 (rows = k, alloc rc(k) rounded to 16).
    let b_rows = r16(rc(k));
    let src = format!(
        r#"
.kernel mm
.param a {dt}[{m_}, {k}]
.param b {dt}[{k}, {n}]
.result c {out_dt}[{m_}, {n}]
.aic
    s.arg r1, 0
    s.arg r2, 1
    s.arg r3, 2
    mte2.nd2nz.gm.l1.{dt} [0], [r1], {m_}, {k}, {ka}, {ma}
    mte2.nd2nz.gm.l1.{dt} [65536], [r2], {k}, {n}, {nb}, {b_rows}
    sync.set mte2, mte1, 0
    sync.wait mte2, mte1, 0
    mte1.load.l0a.{dt} [0], [0], {m1}, {k1}, {ma} * 32
    mte1.load.l0b.t.{dt} [0], [65536], {k1}, {n1}, {b_rows} * 32
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.{dt} [0], [0], [0], {m_}, {k}, {n}, 1
    sync.set m, fix, 0
    sync.wait m, fix, 0
    fix.copy.l0c.gm.{out_dt} [r3], [0], {m_}, {n}, {ma}, {nc}, {relu}
    end
"#,
        ka = k * esz,
        ma = r16(m_),
        nb = n * esz,
        nc = n * if out_dt == "f16" { 2 } else { 4 },
    );
    let av: Vec<f64> = (0..m_ * k)
        .map(|i| ((i * 7 % 19) as f64 - 9.0) / if dt == "i8" { 1.0 } else { 8.0 })
        .collect();
    let bv: Vec<f64> = (0..k * n)
        .map(|i| ((i * 5 % 17) as f64 - 8.0) / if dt == "i8" { 1.0 } else { 4.0 })
        .collect();
    let tensor = |shape: &[u64], v: &[f64]| match dt {
        "f16" => f16_tensor(shape, &v.iter().map(|x| *x as f32).collect::<Vec<_>>()),
        "f32" => f32_tensor(shape, &v.iter().map(|x| *x as f32).collect::<Vec<_>>()),
        _ => Tensor {
            dtype: Dt::I8,
            shape: shape.to_vec(),
            data: v.iter().map(|x| *x as i8 as u8).collect(),
        },
    };
    let o = go(
        &m,
        &src,
        vec![
            ("a", tensor(&[m_ as u64, k as u64], &av)),
            ("b", tensor(&[k as u64, n as u64], &bv)),
        ],
    );
    let c = values(out(&o, "c"));
    for i in 0..m_ {
        for j in 0..n {
            let mut want: f64 = (0..k).map(|x| av[i * k + x] * bv[x * n + j]).sum();
            if relu == 1 {
                want = want.max(0.0);
            }
            let got = c[i * n + j];
            let tol = if dt == "f16" {
                1e-3 + 1e-2 * want.abs()
            } else {
                1e-4 + 1e-5 * want.abs()
            };
            assert!(
                (got - want).abs() <= tol,
                "{dt} c[{i}][{j}] = {got}, want {want}"
            );
        }
    }
}

#[test]
fn cube_path_pads_clips_and_casts() {
    cube_case("f16", 20, 24, 40);
    cube_case("f32", 33, 20, 17);
    cube_case("i8", 16, 40, 24);
}

#[test]
fn coupled_l0c_to_ub_and_ub_to_l1() {
    let m = Machine::builtin("910-like").unwrap();
    // c = relu(a @ b) with a (16x16) fed back from UB to L1 through mte3.nd2nz.
    let src = r#"
.kernel mm
.param a f16[16, 16]
.param b f16[16, 16]
.result c f16[16, 16]
.core
    s.arg r1, 0
    s.arg r2, 1
    s.arg r3, 2
    mte2.copy.gm.ub [0], [r1], 1, 512, 0, 0
    mte2.nd2nz.gm.l1.f16 [8192], [r2], 16, 16, 32, 16
    sync.set mte2, mte3, 0
    sync.wait mte2, mte3, 0
    mte3.nd2nz.ub.l1.f16 [0], [0], 16, 16, 32, 16
    sync.set mte3, mte1, 0
    sync.wait mte3, mte1, 0
    sync.set mte2, mte1, 0
    sync.wait mte2, mte1, 0
    mte1.load.l0a.f16 [0], [0], 1, 1, 512
    mte1.load.l0b.t.f16 [0], [8192], 1, 1, 512
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], 16, 16, 16, 1
    sync.set m, v, 0
    sync.wait m, v, 0
    vec.copy.l0c.ub.f16 [1024], [0], 16, 16, 16, 32, 1
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r3], [1024], 1, 512, 0, 0
    end
"#;
    let a: Vec<f32> = (0..256).map(|i| ((i % 9) as f32 - 4.0) / 4.0).collect();
    let b: Vec<f32> = (0..256).map(|i| ((i % 7) as f32 - 3.0) / 2.0).collect();
    let o = go(
        &m,
        src,
        vec![
            ("a", f16_tensor(&[16, 16], &a)),
            ("b", f16_tensor(&[16, 16], &b)),
        ],
    );
    let c = values(out(&o, "c"));
    for i in 0..16 {
        for j in 0..16 {
            let want: f32 = (0..16)
                .map(|x| a[i * 16 + x] * b[x * 16 + j])
                .sum::<f32>()
                .max(0.0);
            assert!((c[i * 16 + j] - f64::from(want)).abs() <= 1e-3 + 1e-2 * f64::from(want.abs()));
        }
    }
}

#[test]
fn scalar_memory_and_float_ops() {
    let m = Machine::default();
    let src = r#"
.kernel sc
.param a i32[8]
.result c f32[8]
.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.ld.gm.i32 r3, [r1 + 4]
    s.itof r4, r3
    s.lif r5, 0.5
    s.fmul r4, r4, r5
    s.st.ub.u32 r4, [64]
    s.ld.ub.u32 r6, [64]
    s.st.gm.u32 r6, [r2]
    s.ftoi r7, r6
    s.mul r7, r7, -3
    s.itof r7, r7
    s.st.gm.u32 r7, [r2 + 4]
    end
"#;
    let a = Tensor {
        dtype: Dt::I32,
        shape: vec![8],
        data: [5i32, -9, 0, 0, 0, 0, 0, 0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect(),
    };
    let o = go(&m, src, vec![("a", a)]);
    let c = values(out(&o, "c"));
    assert_eq!(&c[..2], &[-4.5, 12.0]);
}

#[test]
fn cross_core_flags_order_cube_and_vector_cores() {
    // The AIC writes a + b (through the cube: a @ I) into the workspace; each AIV
    // waits for the mode-2 flag, reads its half, adds 1 and writes the result.
    let m = Machine::default();
    let src = r#"
.kernel mix
.param a f16[16, 16]
.param eye f16[16, 16]
.result c f32[16, 16]
.workspace 1024
.aic
    s.arg r1, 0
    s.arg r2, 1
    s.sys r3, workspace
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
    xcore.set fix, 2, 0
    end
.aiv
    s.sys r3, workspace
    s.sys r4, sub_block_idx
    s.arg r5, 2
    s.mul r6, r4, 512
    s.add r3, r3, r6
    s.add r5, r5, r6
    xcore.wait mte2, 0
    mte2.copy.gm.ub [0], [r3], 1, 512, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.adds.f32 [512], [0], 1.0, 2, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r5], [512], 1, 512, 0, 0
    end
"#;
    let a: Vec<f32> = (0..256).map(|i| (i % 13) as f32 - 6.0).collect();
    let eye: Vec<f32> = (0..256)
        .map(|i| if i / 16 == i % 16 { 1.0 } else { 0.0 })
        .collect();
    let o = go(
        &m,
        src,
        vec![
            ("a", f16_tensor(&[16, 16], &a)),
            ("eye", f16_tensor(&[16, 16], &eye)),
        ],
    );
    let c = values(out(&o, "c"));
    for k in 0..256 {
        assert_eq!(c[k], f64::from(a[k] + 1.0));
    }
}

/// At a clock above 10 GHz a cycle is shorter than 0.1 ns: the trace prints
/// more decimals, so that no slice's duration rounds to 0 (at 100 GHz,
/// 5 decimals: a cycle is 0.00001 µs).
#[test]
fn a_trace_at_a_high_clock_keeps_every_cycle() {
    let m = Machine {
        clock_ghz: 100.0,
        ..Default::default()
    };
    let src = ".kernel f\n.result c i32[64]\n.aiv\n    vec.dup.i32 [0], 5, 1, 64\n    sync.barrier v\n    vec.dup.i32 [256], 7, 1, 64\n    end\n";
    let p = assemble(src, &m).unwrap();
    let opts = RunOptions {
        trace: true,
        ..Default::default()
    };
    let r = run(&m, &p, &[], &opts).unwrap();
    let json: serde_json::Value = serde_json::from_str(r.trace_json.as_deref().unwrap()).unwrap();
    let slices: Vec<_> = json["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .collect();
    assert!(!slices.is_empty());
    for e in &slices {
        let dur = e["dur"].as_f64().unwrap();
        assert!(dur >= 1e-5, "a slice of {dur} µs: {e}");
        // Whole cycles of 0.01 ns.
        let cycles = dur * 1e5;
        assert!((cycles - cycles.round()).abs() < 1e-6, "{e}");
    }
}

#[test]
fn runs_are_deterministic_and_the_trace_is_valid_chrome_json() {
    let m = Machine::default();
    let dir = repo().join("testsuite/cases/asm");
    let src = std::fs::read_to_string(dir.join("vadd_f32_910b.s")).unwrap();
    let p = assemble(&src, &m).unwrap();
    let inputs: Vec<_> = ["a", "b"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                read_npy(&dir.join("vadd_f32_910b/inputs").join(format!("{n}.npy"))),
            )
        })
        .collect();
    let opts = RunOptions {
        trace: true,
        ..Default::default()
    };
    let r1 = run(&m, &p, &inputs, &opts).unwrap();
    let r2 = run(&m, &p, &inputs, &opts).unwrap();
    assert_eq!(r1.outputs, r2.outputs);
    assert_eq!(r1.report, r2.report);
    assert_eq!(r1.trace_json, r2.trace_json);
    let json: serde_json::Value = serde_json::from_str(r1.trace_json.as_deref().unwrap()).unwrap();
    let events = json["traceEvents"].as_array().unwrap();
    let names = |ph: &str, key: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["ph"] == ph && e["name"] == key)
            .map(|e| e["args"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let processes = names("M", "process_name");
    assert!(
        processes.contains(&"AIV 0".to_string()) && processes.contains(&"AIV 5".to_string()),
        "{processes:?}"
    );
    let threads = names("M", "thread_name");
    for t in ["MTE2", "VECTOR", "MTE3", "SCALAR"] {
        assert!(threads.iter().any(|x| x == t), "{t} in {threads:?}");
    }
    let slices: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert!(slices.iter().any(|e| e["name"] == "vec.add.f32"));
    assert!(
        slices
            .iter()
            .any(|e| e["name"].as_str().unwrap().starts_with("wait")),
        "flag waits are visible"
    );
    let starts = events.iter().filter(|e| e["ph"] == "s").count();
    let ends = events.iter().filter(|e| e["ph"] == "f").count();
    assert!(starts > 0 && starts == ends);
    // Times in the trace's unit (0.1 ns): slices on one track meet or keep
    // apart, never overlap, and every flow starts and ends inside a slice of
    // its track (viewers bind flows to the slice around them).
    let tick = |v: &serde_json::Value| (v.as_f64().unwrap() * 1e4).round() as u64;
    let mut tracks: std::collections::BTreeMap<(u64, u64), Vec<(u64, u64)>> = Default::default();
    for e in &slices {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = tick(&e["ts"]);
        tracks
            .entry(key)
            .or_default()
            .push((ts, ts + tick(&e["dur"])));
    }
    for (track, spans) in &mut tracks {
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "track {track:?}: {:?} overlaps {:?}",
                w[0],
                w[1]
            );
        }
    }
    for e in events.iter().filter(|e| e["ph"] == "s" || e["ph"] == "f") {
        let key = (e["pid"].as_u64().unwrap(), e["tid"].as_u64().unwrap());
        let ts = tick(&e["ts"]);
        assert!(
            tracks[&key].iter().any(|&(a, b)| a <= ts && ts <= b),
            "flow event outside every slice of its track: {e}"
        );
    }
}
