//! The row scheduler's choice to fold reductions block by block: a softmax
//! whose scores an earlier stage wrote (L2 holds them, so only its result
//! crosses HBM) is vector-bound and folds block by block; the same softmax
//! over a kernel parameter is bound by its HBM reads and does not.

use tessera_compiler::driver;
use tessera_compiler::opt::Level;
use tessera_ir::plan::{Plan, StageKind};

const SRC: &str = "kernel att(q: f16[S, D], k: f16[S, D], v: f16[S, D]) -> f16[S, D] {
    let s = (q @ transpose(k, [1, 0])) * 0.125;
    return cast(cast(softmax(s, axis = -1), f16) @ v, f16);
}
kernel sm(x: f32[S, S]) -> f16[S, S] {
    return cast(softmax(x * 0.125, axis = -1), f16);
}
";

fn plan(kernel: &str) -> Plan {
    let src = driver::Source {
        name: "rows.tsr".into(),
        text: SRC.into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let env = [("S".to_string(), 2048), ("D".to_string(), 64)]
        .into_iter()
        .filter(|(d, _)| kernel == "att" || d == "S")
        .collect();
    let k = driver::lower(&file, kernel, &env, &src).expect("lowers");
    let m = tessera_sim::Machine::builtin("910b-like").expect("machine");
    driver::compile_npu(&k, &m, &src, Level::O2)
        .expect("compiles")
        .plan
}

/// The `blockwise` flag of the plan's one row stage.
fn blockwise(p: &Plan) -> bool {
    let rows: Vec<bool> = p
        .stages
        .iter()
        .filter_map(|s| match &s.kind {
            StageKind::Rows(r) => Some(r.schedule.blockwise),
            StageKind::Elementwise(_)
            | StageKind::Reduce(_)
            | StageKind::Transpose(_)
            | StageKind::MatMul(_) => None,
        })
        .collect();
    assert_eq!(rows.len(), 1, "one row stage");
    rows[0]
}

#[test]
fn a_softmax_over_scores_an_earlier_stage_wrote_folds_block_by_block() {
    assert!(blockwise(&plan("att")));
}

#[test]
fn a_softmax_over_a_parameter_streams_from_hbm_and_folds_as_usual() {
    assert!(!blockwise(&plan("sm")));
}
