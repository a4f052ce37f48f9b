//! One minimal program per fault and race kind (`tests/faults/*.s`): each must
//! fault with the code of its `;@ expect:` line, and the full message (core,
//! pipe, instruction, address) is snapshotted.

mod common;

use common::*;
use tessera_sim::{RunError, RunOptions, Tensor, assemble, run};

#[test]
fn every_fault_kind_is_reported_with_its_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faults");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "s"))
        .collect();
    files.sort();
    let mut codes = Vec::new();
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let m = machine_of(&src);
        let p = assemble(&src, &m).unwrap_or_else(|e| panic!("{stem}: {e:?}"));
        let expect = directive(&src, "expect").expect("an ;@ expect: line");
        let mut opts = RunOptions::default();
        if let Some(limit) = directive(&src, "cycle_limit") {
            opts.cycle_limit = limit.parse().unwrap();
        }
        if let Some(limit) = directive(&src, "step_limit") {
            opts.step_limit = Some(limit.parse().unwrap());
        }
        if let Some(limit) = directive(&src, "work_limit") {
            opts.work_limit = Some(limit.parse().unwrap());
        }
        let inputs: Vec<_> = p
            .params
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    Tensor {
                        dtype: t.dtype,
                        shape: t.shape.clone(),
                        data: vec![0; t.bytes() as usize],
                    },
                )
            })
            .collect();
        match run(&m, &p, &inputs, &opts) {
            Err(RunError::Fault(f)) => {
                assert_eq!(f.code(), expect, "{stem}: {f}");
                codes.push(expect.to_string());
                insta::assert_snapshot!(format!("fault_{stem}"), f.to_string());
            }
            Err(e) => panic!("{stem}: expected a fault, got {e}"),
            Ok(_) => panic!("{stem}: expected fault {expect}, the run succeeded"),
        }
    }
    for code in [
        "E0700", "E0701", "E0702", "E0703", "E0704", "E0705", "E0706", "E0707", "E0708", "E0709",
        "E0710", "E0711", "E0712",
    ] {
        assert!(codes.iter().any(|c| c == code), "no fault case for {code}");
    }
}

/// A transfer at a vanishing rate (an unaligned copy with
/// `unaligned_factor = 1e-20`, valid) ends past the cycle limit: `E0707`
/// promptly, where its end cycle once wrapped past 2^64 and the run spun
/// to the step limit (`E0711`).
#[test]
fn a_transfer_at_a_vanishing_rate_passes_the_cycle_limit() {
    let text = tessera_sim::Machine::default().to_toml();
    let old = "unaligned_factor = 0.7";
    assert!(text.contains(old), "the machine description changed");
    let m = tessera_sim::Machine::from_toml(&text.replace(old, "unaligned_factor = 1e-20"))
        .expect("a valid machine");
    let src = ".kernel f
.param a f32[1024]
.result c f32[64]
.aiv
    s.arg r1, 0
    mte2.copy.gm.ub [0], [r1 + 4], 1, 2048, 0, 0
    end
";
    let p = assemble(src, &m).expect("assembles");
    let inputs = [(
        "a".to_string(),
        Tensor {
            dtype: p.params[0].dtype,
            shape: p.params[0].shape.clone(),
            data: vec![0; 4096],
        },
    )];
    match run(&m, &p, &inputs, &RunOptions::default()) {
        Err(RunError::Fault(f)) => assert_eq!(f.code(), "E0707", "{f}"),
        Err(e) => panic!("expected E0707, got {e}"),
        Ok(out) => panic!("expected E0707, ran {} cycles", out.report.cycles),
    }
}
