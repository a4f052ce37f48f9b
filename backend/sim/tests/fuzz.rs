//! Property tests: no input makes the decoder, the loader, the assembler, the
//! machine loader or the simulator panic — they return values or errors.

use proptest::prelude::*;
use tessera_sim::{Machine, RunOptions, Tensor, assemble, decode, encode, load, run};

const VALID: &str = r#"
.kernel k
.param a f32[64]
.result c f32[64]
.workspace 1024
.aiv
    s.arg r1, 0
    s.arg r2, 1
    s.sys r3, block_idx
    s.li r4, 2
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.adds.f32 [256], [0], 1.0, 1, 64
    vec.cvt.f16.f32 [512, 1, 4], [0], 1, 64
    vec.rsum.f32 [1024], [0], 1, 64
    sync.barrier v
    vec.brcb.f32 [2048], [1024], 1
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r2], [256], 1, 256, 0, 0
    s.div r5, r4, r3
    s.br.lt r3, 1, end0
end0:
    end
.aic
    mte2.nd2nz.gm.l1.f16 [0], [r1], 4, 16, 32, 16
    sync.set mte2, mte1, 0
    sync.wait mte2, mte1, 0
    mte1.load.l0a.f16 [0], [0], 1, 1, 512
    mte1.load.l0b.t.f16 [0], [0], 1, 1, 512
    sync.set mte1, m, 0
    sync.wait mte1, m, 0
    cube.mmad.f16 [0], [0], [0], 16, 16, 16, 1
    end
"#;

/// Two launches: a vector stage writing the workspace, then a cube stage and a
/// vector stage reading it.
const VALID_MULTI: &str = r#"
.kernel k2
.param a f32[64]
.result c f32[64]
.workspace 1024
.launch
.block_dim 2
.aiv
    s.arg r1, 0
    s.sys r2, workspace
    s.sys r3, block_idx
    s.mul r3, r3, 256
    s.add r2, r2, r3
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    sync.set mte2, v, 0
    sync.wait mte2, v, 0
    vec.adds.f32 [256], [0], 1.0, 1, 64
    sync.set v, mte3, 0
    sync.wait v, mte3, 0
    mte3.copy.ub.gm [r2], [256], 1, 256, 0, 0
    end
.launch
.block_dim 3
.aic
    s.sys r1, workspace
    mte2.nd2nz.gm.l1.f16 [0], [r1], 4, 16, 32, 16
    end
.aiv
    s.sys r1, workspace
    s.arg r2, 1
    s.sys r3, block_dim
loop:
    s.sub r3, r3, 1
    s.br.gt r3, 0, loop
    mte2.copy.gm.ub [0], [r1], 1, 256, 0, 0
    s.sys r4, block_idx
    s.sys r5, sub_block_idx
    s.or r4, r4, r5
    s.br.ne r4, 0, done
    sync.set mte2, mte3, 0
    sync.wait mte2, mte3, 0
    mte3.copy.ub.gm [r2], [0], 1, 256, 0, 0
done:
    end
"#;

fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() >= 8 {
        let n = b.len() - 8;
        let sum = tessera_sim::fnv::fnv1a(&b[..n]);
        b[n..].copy_from_slice(&sum.to_le_bytes());
    }
    b
}

fn valid_bytes(multi: bool) -> Vec<u8> {
    let src = if multi { VALID_MULTI } else { VALID };
    encode(&assemble(src, &Machine::default()).unwrap())
}

#[test]
fn the_seed_programs_run() {
    let m = Machine::default();
    for multi in [false, true] {
        let p = decode(&valid_bytes(multi)).unwrap();
        assert_eq!(p.launches.len(), if multi { 2 } else { 1 });
        let inputs = vec![(
            "a".to_string(),
            Tensor {
                dtype: tessera_sim::Dt::F32,
                shape: vec![64],
                data: vec![0; 256],
            },
        )];
        // The single-launch seed divides by zero in block 0 (a fault is fine
        // for the property tests: they only ask for no panic).
        let r = run(&m, &p, &inputs, &RunOptions::default());
        assert_eq!(r.is_ok(), multi, "{r:?}");
    }
}

#[test]
fn every_truncation_of_a_multi_launch_file_is_an_error() {
    let m = Machine::default();
    for multi in [false, true] {
        let good = valid_bytes(multi);
        let body = good.len() - 8;
        for n in 0..body {
            // Cut the body, then give it a valid checksum: only the structure
            // can tell that something is missing.
            let b = reseal([&good[..n], &[0u8; 8][..]].concat());
            let e = load(&b, &m).unwrap_err();
            assert!(
                ["E0901", "E0905"].contains(&e.code),
                "{n} bytes (multi {multi}): {e}"
            );
            // Cut without a checksum: also an error, never a panic.
            let _ = decode(&good[..n]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes);
        let _ = load(&reseal(bytes), &Machine::default());
    }

    #[test]
    fn mutated_bytecode_loads_or_errors_and_runs_or_faults(multi in any::<bool>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut b = valid_bytes(multi);
        let n = b.len() - 8;
        for (i, v) in edits {
            let at = i.index(n);
            b[at] = v;
        }
        let b = reseal(b);
        let m = Machine::default();
        if let Ok(p) = decode(&b) {
            // The encoding is canonical: whatever decodes re-encodes to the same bytes.
            prop_assert_eq!(&encode(&p), &b);
        }
        if let Ok(p) = load(&b, &m) {
            let inputs: Vec<_> = p.params.iter().filter(|t| t.bytes() < (1 << 20)).map(|t| (t.name.clone(), Tensor { dtype: t.dtype, shape: t.shape.clone(), data: vec![0; t.bytes() as usize] })).collect();
            let opts = RunOptions { cycle_limit: 200_000, timing_only: inputs.len() != p.params.len(), ..Default::default() };
            let _ = run(&m, &p, &inputs, &opts);
        }
    }

    #[test]
    fn truncated_and_spliced_bytecode_only_errors(multi in any::<bool>(), cut in any::<prop::sample::Index>(), insert in proptest::collection::vec(any::<u8>(), 0..16)) {
        // A cut anywhere, random bytes spliced in, a valid checksum: the
        // loader returns an error or a program that runs or faults.
        let good = valid_bytes(multi);
        let body = &good[..good.len() - 8];
        let at = cut.index(body.len());
        let mut b = body[..at].to_vec();
        b.extend_from_slice(&insert);
        b.extend_from_slice(&body[at..]);
        let b = reseal([b, vec![0; 8]].concat());
        let m = Machine::default();
        if let Ok(p) = decode(&b) {
            prop_assert_eq!(&encode(&p), &b);
        }
        if let Ok(p) = load(&b, &m) {
            let _ = run(&m, &p, &[], &RunOptions { timing_only: true, cycle_limit: 200_000, ..Default::default() });
        }
    }

    #[test]
    fn assembling_random_text_never_panics(text in "\\PC{0,200}") {
        let _ = assemble(&text, &Machine::default());
    }

    #[test]
    fn assembling_mutated_assembly_never_panics(multi in any::<bool>(), cut in 0usize..2000, insert in "[ \\[\\]{},.:;+\\-*/a-z0-9_\\n]{0,12}") {
        let mut s = if multi { VALID_MULTI } else { VALID }.to_string();
        let at = cut.min(s.len());
        let at = (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
        s.insert_str(at, &insert);
        if let Ok(p) = assemble(&s, &Machine::default()) {
            let m = Machine::default();
            let _ = run(&m, &p, &[], &RunOptions { timing_only: true, cycle_limit: 200_000, ..Default::default() });
        }
    }

    #[test]
    fn mutated_machine_descriptions_never_panic(cut in 0usize..4000, insert in "[ \\[\\]=\"a-z0-9_.\\n-]{0,10}") {
        let mut s = Machine::default().to_toml();
        let at = cut.min(s.len());
        s.insert_str(at, &insert);
        if let Ok(m) = Machine::from_toml(&s) {
            prop_assert_eq!(Machine::from_toml(&m.to_toml()).ok(), Some(m));
        }
    }
}

/// The issue's floor, in one plain loop: 12 000 files — 4 000 of random
/// bytes, 8 000 valid files (single- and multi-launch) with 1–8 random byte
/// edits — each tried as is and resealed. Loading either errors or yields a
/// program whose encoding is canonical; nothing panics.
#[test]
fn twelve_thousand_random_and_mutated_files_load_or_error() {
    // SplitMix64, seeded: the same files on every run.
    let mut state = 0x7e55_e7a0_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let m = Machine::default();
    let seeds = [valid_bytes(false), valid_bytes(true)];
    let (mut loaded, mut tried) = (0, 0);
    for i in 0..12_000u32 {
        let b: Vec<u8> = if i < 4_000 {
            let len = (next() % 1200) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            let mut b = seeds[(i % 2) as usize].clone();
            let n = b.len() - 8;
            for _ in 0..1 + next() % 8 {
                let at = (next() % n as u64) as usize;
                b[at] = next() as u8;
            }
            b
        };
        for bytes in [b.clone(), reseal(b)] {
            tried += 1;
            if let Ok(p) = load(&bytes, &m) {
                loaded += 1;
                assert_eq!(encode(&p), bytes, "file {i}: the encoding is canonical");
            }
        }
    }
    assert_eq!(tried, 24_000);
    // Single-byte edits of valid files often still load: the loop exercised
    // the accepting path, not only the rejecting one.
    assert!(loaded > 100, "{loaded} of {tried} loaded");
}
