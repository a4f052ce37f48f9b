//! The row scheduler's choice to fold reductions block by block: a softmax
//! whose scores an earlier stage wrote (L2 holds them, so only its result
//! crosses HBM) is vector-bound and folds block by block; the same softmax
//! over a kernel parameter is bound by its HBM reads and does not.
//!
//! Joined prologues (`plan::schedule::join`): on 910b-like a row stage
//! feeding a matmul's A runs in the matmul's launch — a GM-bound norm on
//! one vector core per cube core, the vector-bound softmax on all — with a
//! first phase of the rows the cube cores' first round reads; never on
//! 910-like, nor before a matmul whose launch has fewer vector cores than
//! the row stage has blocks; and deciding again gives the same plan.

use tessera_compiler::driver;
use tessera_compiler::opt::Level;
use tessera_ir::plan::{BufKind, CubeSchedule, MatMul, MatMulSchedule, Plan, StageKind};

const SRC: &str = "kernel att(q: f16[S, D], k: f16[S, D], v: f16[S, D]) -> f16[S, D] {
    let s = (q @ transpose(k, [1, 0])) * 0.125;
    return cast(cast(softmax(s, axis = -1), f16) @ v, f16);
}
kernel sm(x: f32[S, S]) -> f16[S, S] {
    return cast(softmax(x * 0.125, axis = -1), f16);
}
kernel rmm(x: f16[M, K], g: f16[K], w: f16[K, N]) -> f32[M, N] {
    return rms_norm(x, g) @ w;
}
kernel dec(q: f16[1, D], k: f16[S, D]) -> f16[1, S] {
    return cast(softmax((q @ transpose(k, [1, 0])) * 0.125, axis = -1), f16);
}
kernel mlp(x: f16[M, K], w: f16[K, N], b: f32[N]) -> f16[M, N] {
    return cast(gelu(x @ w + b), f16);
}
";

fn plan(kernel: &str) -> Plan {
    let dims = [("S", 2048), ("D", 64)];
    let dims = if kernel == "att" {
        &dims[..]
    } else {
        &dims[..1]
    };
    plan_on(kernel, dims, "910b-like")
}

fn plan_on(kernel: &str, dims: &[(&str, u64)], machine: &str) -> Plan {
    let src = driver::Source {
        name: "rows.tsr".into(),
        text: SRC.into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let env = dims.iter().map(|&(d, v)| (d.to_string(), v)).collect();
    let k = driver::lower(&file, kernel, &env, &src).expect("lowers");
    let m = tessera_sim::Machine::builtin(machine).expect("machine");
    driver::compile_npu(&k, &m, &src, Level::O2)
        .expect("compiles")
        .plan
}

/// The joined prologue's first phase of the plan's last stage (a matmul)
/// and the block counts of the last two stages.
fn joined(p: &Plan) -> (u64, u32, u32) {
    let [.., rows, mm] = &p.stages[..] else {
        panic!("two stages at least")
    };
    let StageKind::MatMul(m) = &mm.kind else {
        panic!("a matmul last")
    };
    let MatMulSchedule::Cube(t) = &m.schedule else {
        panic!("on the cube")
    };
    assert!(
        matches!(rows.kind, StageKind::Rows(_)),
        "a row stage before"
    );
    (t.prologue, rows.block_dim, mm.block_dim)
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

#[test]
fn a_norm_before_a_matmul_runs_in_its_launch_on_one_vector_core_per_cube_core() {
    let p = plan_on("rmm", &[("M", 4096), ("K", 1024), ("N", 2048)], "910b-like");
    let (first, rows, cube) = joined(&p);
    assert_eq!((rows, cube), (24, 24));
    // Tiles of 128 × 256 with the accumulator in halves, taken in groups
    // of 4 tile rows, column by column (140 894 simulated cycles; 256 × 128
    // tiles without halves in the same order, 160 672): the first round's
    // 24 tiles are the first 6 columns of the first group, so they read
    // its 4 tile rows.
    let StageKind::MatMul(m) = &p.stages[1].kind else {
        unreachable!()
    };
    let MatMulSchedule::Cube(t) = &m.schedule else {
        unreachable!()
    };
    assert_eq!(
        (t.base_m, t.base_n, t.group_m, t.halves),
        (128, 256, 4, true)
    );
    assert_eq!(first, 4 * 128);
}

/// Stage `i`, a cube matmul, and its schedule.
fn on_cube(p: &Plan, i: usize) -> (&MatMul, &CubeSchedule) {
    let StageKind::MatMul(m) = &p.stages[i].kind else {
        panic!("stage {i} is not a matmul")
    };
    let MatMulSchedule::Cube(t) = &m.schedule else {
        panic!("on the cube")
    };
    (m, t)
}

/// A cube matmul stage's `(prologue, epilogue)` and block count.
fn cube(p: &Plan, i: usize) -> (u64, u64, u32) {
    let (_, t) = on_cube(p, i);
    (t.prologue, t.epilogue, p.stages[i].block_dim)
}

#[test]
fn a_softmax_after_a_matmul_runs_in_its_launch_through_a_ring() {
    // Q·Kᵀ, the softmax, P·V: the softmax joins the first product as its
    // epilogue, on every vector core, its scores kept in a ring of two
    // phases (at most 64 MiB; at least 16 phases; whole tiles of the row
    // stage and whole groups of the tile order), so the second product
    // takes no prologue.
    let p = plan_on("att", &[("S", 8192), ("D", 64)], "910b-like");
    let StageKind::Rows(r) = &p.stages[1].kind else {
        panic!("a row stage second")
    };
    let (m, t) = on_cube(&p, 0);
    let (epi, ring) = (t.epilogue, t.ring);
    assert_eq!((t.prologue, ring), (0, 2 * epi));
    assert!(epi > 0 && epi % r.schedule.rows == 0 && epi % (t.base_m * t.group_m.max(1)) == 0);
    assert!(ring * 8192 * 4 <= 64 << 20 && epi <= 8192 / 16, "{epi}");
    // A softmax is no light epilogue: its phases stay large.
    assert!(2 * p.stages[1].estimate > p.stages[0].estimate && epi > 8192 / 64);
    assert_eq!(p.stages[1].block_dim, 48);
    assert_eq!(cube(&p, 2).0, 0);
    // The workspace holds the ring's rows of f32 scores, then the f16
    // probabilities whole (the second product reads them all).
    let scores = m.out.buffer().expect("scores in a buffer");
    let probs = r.out.buffer().expect("probabilities in a buffer");
    assert_eq!(p.footprint(scores), ring * 8192 * 4);
    assert_eq!(p.footprint(probs), 8192 * 8192 * 2);
    let offset = |b: usize| match p.buffers[b].kind {
        BufKind::Workspace { offset } => offset,
        ref k => panic!("{k:?} is not workspace"),
    };
    assert_eq!((offset(scores), offset(probs)), (0, ring * 8192 * 4));
    assert_eq!(p.workspace, ring * 8192 * 4 + 8192 * 8192 * 2);
}

#[test]
fn an_elementwise_stage_after_a_matmul_runs_in_its_launch() {
    let p = plan_on("mlp", &[("M", 4096), ("K", 1024), ("N", 2048)], "910b-like");
    let StageKind::Elementwise(e) = &p.stages[1].kind else {
        panic!("an elementwise stage second")
    };
    let (_, epi, _) = cube(&p, 0);
    assert!(epi > 0 && epi % e.schedule.rows == 0, "{epi}");
    assert!(4096u64.div_ceil(epi) <= 15);
    let coupled = plan_on("mlp", &[("M", 4096), ("K", 1024), ("N", 2048)], "910-like");
    assert_eq!(cube(&coupled, 0).1, 0);
}

#[test]
fn a_light_elementwise_epilogue_runs_through_a_ring_of_small_phases() {
    // `gelu(x @ w + b)`: the elementwise stage's estimate is a small share
    // of the matmul's, so its ring has at least 64 phases (its last phase
    // is what the cube does not hide), in whole groups of the tile order
    // and whole tiles of the stage; the workspace is the ring's rows.
    let p = plan_on("mlp", &[("M", 8192), ("K", 4096), ("N", 4096)], "910b-like");
    let StageKind::Elementwise(e) = &p.stages[1].kind else {
        panic!("an elementwise stage second")
    };
    assert!(2 * p.stages[1].estimate <= p.stages[0].estimate);
    let (_, t) = on_cube(&p, 0);
    let (epi, ring) = (t.epilogue, t.ring);
    assert_eq!((t.prologue, ring), (0, 2 * epi));
    assert!(epi > 0 && epi <= 8192 / 64, "{epi}");
    assert!(epi % e.schedule.rows == 0 && epi % (t.base_m * t.group_m.max(1)) == 0);
    assert_eq!(p.workspace, ring * 4096 * 4);
}

#[test]
fn no_prologue_is_joined_on_a_coupled_machine_or_before_a_small_matmul() {
    let (first, rows, _) = joined(&plan_on(
        "rmm",
        &[("M", 4096), ("K", 1024), ("N", 2048)],
        "910-like",
    ));
    assert_eq!((first, rows), (0, 32));
    // The product's launch has 12 cube cores, 24 vector cores; the norm
    // has 48 blocks of its own.
    let p = plan_on("rmm", &[("M", 96), ("K", 512), ("N", 32)], "910b-like");
    assert_eq!(joined(&p), (0, 48, 12));
}

#[test]
fn joining_again_gives_the_same_plan() {
    let m = tessera_sim::Machine::builtin("910b-like").expect("machine");
    for p in [
        plan_on("att", &[("S", 8192), ("D", 64)], "910b-like"),
        plan_on("mlp", &[("M", 4096), ("K", 1024), ("N", 2048)], "910b-like"),
        plan_on("rmm", &[("M", 4096), ("K", 1024), ("N", 2048)], "910b-like"),
        plan_on("rmm", &[("M", 96), ("K", 512), ("N", 32)], "910b-like"),
    ] {
        let mut again = p.clone();
        tessera_compiler::plan::schedule::finish(&mut again, &m);
        assert_eq!(again, p);
    }
}

#[test]
fn a_softmax_over_one_row_of_a_product_is_not_joined() {
    // The row stage loads a single row once, before its tiles (a repeated
    // row): it would read the scores before the cube wrote them.
    let p = plan_on("dec", &[("S", 200), ("D", 16)], "910b-like");
    assert!(matches!(p.stages[1].kind, StageKind::Rows(_)));
    assert_eq!(cube(&p, 0).1, 0);
}

#[test]
fn a_joined_stage_runs_in_its_matmuls_launch() {
    let launches = |p: &Plan| tessera_backend::npu::launch_stages(p);
    let dims = [("M", 4096), ("K", 1024), ("N", 2048)];
    assert_eq!(
        launches(&plan_on("rmm", &dims, "910b-like")),
        vec![vec![0, 1]]
    );
    assert_eq!(
        launches(&plan_on("mlp", &dims, "910b-like")),
        vec![vec![0, 1]]
    );
    assert_eq!(
        launches(&plan_on("att", &[("S", 8192), ("D", 64)], "910b-like")),
        vec![vec![0, 1], vec![2]]
    );
    assert_eq!(
        launches(&plan_on("rmm", &dims, "910-like")),
        vec![vec![0], vec![1]]
    );
}
