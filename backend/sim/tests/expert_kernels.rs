//! The hand-written reference kernels of `testsuite/cases/asm/*.s`, run on
//! their numpy fixtures and compared within language.md's tolerances; their
//! reports are snapshotted (the simulator is deterministic, so the cycle
//! counts are exact and a change to them must be explained).

mod common;

use common::*;
use tessera_sim::{RunOptions, assemble, run};

#[test]
fn expert_kernels_match_numpy() {
    let dir = repo().join("testsuite/cases/asm");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "s"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "expected the expert kernels in {}",
        dir.display()
    );
    for path in names {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&path).unwrap();
        let m = machine_of(&src);
        let p = assemble(&src, &m).unwrap_or_else(|e| panic!("{stem}: {e:?}"));
        let inputs: Vec<_> = p
            .params
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    read_npy(
                        &dir.join(&stem)
                            .join("inputs")
                            .join(format!("{}.npy", t.name)),
                    ),
                )
            })
            .collect();
        let out =
            run(&m, &p, &inputs, &RunOptions::default()).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let (atol, rtol) = tolerance(directive(&src, "tolerance").expect("a ;@ tolerance: line"));
        // Every declared result, by name, and nothing else.
        let names: Vec<&str> = out.outputs.iter().map(|(n, _)| n.as_str()).collect();
        let results: Vec<&str> = p.results.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names, results,
            "{stem}: the outputs are not the declared results"
        );
        for (name, got) in &out.outputs {
            let want = read_npy(&dir.join(&stem).join("expected").join(format!("{name}.npy")));
            let (a, r) = assert_close(&format!("{stem}.{name}"), got, &want, atol, rtol);
            println!("{stem}.{name}: max abs err {a:.3e}, max rel err {r:.3e}");
        }
        insta::assert_snapshot!(format!("expert_{stem}"), out.report.table());
    }
}
