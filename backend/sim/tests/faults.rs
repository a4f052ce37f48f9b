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
        "E0710",
    ] {
        assert!(codes.iter().any(|c| c == code), "no fault case for {code}");
    }
}
