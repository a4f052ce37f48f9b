//! `tune`'s tests: candidates, tuning files, and applying them.

use super::search::{CLOSE, choose, simulate};
use super::*;
use crate::driver::{self, Source};
use crate::opt::Level;
use tessera_ir::Kernel;

const GEMM: &str =
    "kernel gemm(a: f16[M, K], b: f16[K, N]) -> f16[M, N] { return cast(a @ b, f16); }";

fn gemm(n: u64) -> (Kernel, Source) {
    gemm_of(n, n, n)
}

/// `cast(a @ b, f16)` for an `m × k` A and a `k × n` B.
fn gemm_of(m: u64, k: u64, n: u64) -> (Kernel, Source) {
    lowered("gemm", GEMM, &[("M", m), ("N", n), ("K", k)])
}

/// Kernel `name` of the source `text`, lowered with the dims `env`.
fn lowered(name: &str, text: &str, env: &[(&str, u64)]) -> (Kernel, Source) {
    let src = Source {
        name: format!("{name}.tsr"),
        text: text.into(),
    };
    let file = driver::parse_and_check(&src).expect("parses");
    let env = env.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    (driver::lower(&file, name, &env, &src).expect("lowers"), src)
}

fn machine() -> Machine {
    crate::simulate::machine(Some("910b-like")).expect("built-in")
}

fn cube(plan: &Plan) -> CubeSchedule {
    let StageKind::MatMul(mm) = &plan.stages[0].kind else {
        panic!("a matmul stage, not {}", plan.stages[0].kind.name());
    };
    let MatMulSchedule::Cube(t) = &mm.schedule else {
        panic!("a cube matmul");
    };
    t.clone()
}

/// The first diagnostic of a failure.
fn first(f: crate::driver::Failure) -> tessera_ir::Diagnostic {
    match f {
        crate::driver::Failure::Input { mut diags, .. } => diags.remove(0),
        other => panic!("not an input failure: {other:?}"),
    }
}

#[test]
fn tuning_keeps_the_fastest_candidate_and_compiles_to_it() {
    let (k, src) = gemm_of(2560, 1024, 1024);
    let m = machine();
    let r = tune(&k, &m, &src, Level::O2, 8).expect("tunes");
    let st = &r.stages[0];
    // The cost model's cheapest within `CLOSE` of the first (at most the
    // 8 asked for), then the scheduler's choice in its other tile orders.
    let close = st.tried.len() - 3;
    assert!((2..=8).contains(&close), "{:?}", st.tried);
    let cheapest = st.tried[0].predicted as f64;
    assert!(
        st.tried[..close]
            .iter()
            .all(|t| t.predicted as f64 <= cheapest * CLOSE + 1.0),
        "{:?}",
        st.tried
    );
    let fastest = st.tried.iter().map(|t| t.simulated).min().expect("tried");
    assert_eq!(st.tried[st.chosen].simulated, fastest);
    // The first candidate is the scheduler's own choice; on this
    // product it is not the fastest. The whole stage was simulated.
    assert!(
        fastest < st.tried[0].simulated,
        "{fastest} vs {:?}",
        st.tried[0]
    );
    assert_eq!((st.sample, st.same_as), (None, None));
    // 80 tiles of 128 × 256 (20 tile rows) on 24 cores: after the cost
    // model's 8, the choice in groups of 2, 4 and 8 rows (the first 3
    // orders with fewer rows than the stage's 20).
    let orders: Vec<&str> = st.tried[close..]
        .iter()
        .map(|t| t.schedule.as_str())
        .collect();
    let first = &st.tried[0].schedule;
    assert!(!first.contains("group_m"), "{first}");
    assert_eq!(
        orders,
        [2, 4, 8].map(|g| format!("{first} group_m={g}")),
        "{orders:?}"
    );
    let file = merge(Tuning::default(), &r.entries, &r.vectors);
    let (code, notes) =
        driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
    assert!(notes.is_empty(), "{notes:?}");
    let e = &file.entries[0];
    assert_eq!(e.simulated, fastest);
    let t = cube(&code.plan);
    assert_eq!(
        (t.base_m, t.base_n, t.base_k, t.l1_k),
        (e.base_m, e.base_n, e.base_k, e.l1_k)
    );
    assert_eq!(e.untuned, st.tried[0].simulated);
    // The kernel is this one stage: with the file it runs as fast as
    // the fastest candidate did alone, without it as the first.
    let b = crate::bench::bench(&k, &m, &src, Level::O2, &file).expect("benches");
    assert_eq!(b.cycles, fastest);
    let b = crate::bench::bench(&k, &m, &src, Level::O2, &Tuning::default()).expect("benches");
    assert_eq!(b.cycles, st.tried[0].simulated);
}

#[test]
fn a_large_batch_is_tuned_on_a_sample_and_a_repeated_stage_once() {
    // Two products of one form (and an add), each its own stage at -O0:
    // 512 items of 128 × 128 × 32.
    let src = Source {
        name: "twice.tsr".into(),
        text: "kernel twice(a: f16[B, M, K], b: f16[B, K, N], c: f16[B, K, N]) -> f32[B, M, N] \
               { return a @ b + a @ c; }"
            .into(),
    };
    let file = driver::parse_and_check(&src).expect("parses");
    let env = [("B", 512), ("M", 128), ("N", 128), ("K", 32)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let k = driver::lower(&file, "twice", &env, &src).expect("lowers");
    let m = machine();
    let r = tune(&k, &m, &src, Level::O0, 4).expect("tunes");
    assert_eq!(r.stages.len(), 2, "{}", r.table());
    let (first, second) = (&r.stages[0], &r.stages[1]);
    // The scheduler's first candidate has one or a few tiles an item:
    // the sample keeps the items of 16 waves on the 24 cube cores.
    let [keep, of] = first.sample.expect("sampled");
    assert_eq!(of, 512);
    let dims: Vec<u64> = first.tried[0]
        .schedule
        .split(' ')
        .next()
        .expect("tiles")
        .split('x')
        .map(|d| d.parse().expect("a number"))
        .collect();
    let per_item = 128u64.div_ceil(dims[0]) * 128u64.div_ceil(dims[1]);
    assert_eq!(keep, (16 * 24u64).div_ceil(per_item), "{dims:?}");
    assert!(!first.tried.is_empty());
    // Small enough to simulate whole: the fastest alone, kept since
    // the kernel is not slower with it.
    let cycles: Vec<u64> = first.tried.iter().map(|t| t.simulated).collect();
    assert_eq!(choose(&cycles, false), Some(first.chosen));
    let [untuned, tuned] = r.kernel_cycles.expect("simulated whole");
    assert!(tuned <= untuned, "{tuned} vs {untuned}");
    assert_eq!(second.same_as, Some(first.stage));
    assert!(second.tried.is_empty());
    assert_eq!(r.entries.len(), 1);
    assert_eq!(r.entries[0].sample, Some([keep, of]));
    assert!(
        r.table()
            .contains(&format!("the same as stage {}", first.stage))
    );
    // Both stages take the choice, and the whole kernel is no slower
    // with it.
    let tuned = merge(Tuning::default(), &r.entries, &r.vectors);
    let with = crate::bench::bench(&k, &m, &src, Level::O0, &tuned).expect("benches");
    let without =
        crate::bench::bench(&k, &m, &src, Level::O0, &Tuning::default()).expect("benches");
    assert!(
        with.cycles <= without.cycles,
        "{} vs {}",
        with.cycles,
        without.cycles
    );
    let (code, notes) =
        driver::compile_npu_tuned(&k, &m, &src, Level::O0, &tuned).expect("compiles");
    assert!(notes.is_empty(), "{notes:?}");
    let e = &r.entries[0];
    let cubes: Vec<(u64, u64, u64)> = code
        .plan
        .stages
        .iter()
        .filter_map(|s| {
            let StageKind::MatMul(mm) = &s.kind else {
                return None;
            };
            let MatMulSchedule::Cube(t) = &mm.schedule else {
                return None;
            };
            Some((t.base_m, t.base_n, t.group_m))
        })
        .collect();
    assert_eq!(cubes, [(e.base_m, e.base_n, e.group_m); 2]);
}

#[test]
fn a_stage_shared_with_others_changes_only_for_a_clear_gain() {
    // Alone (the whole kernel): the fastest, the first of equals.
    assert_eq!(choose(&[100, 99, 98, 98], false), Some(2));
    assert_eq!(choose(&[100, 100], false), Some(0));
    // Shared: 2 % faster than the scheduler's own, else its own.
    assert_eq!(choose(&[1000, 990, 985, 990], true), Some(0));
    assert_eq!(choose(&[102, 101, 100], true), Some(2));
    assert_eq!(choose(&[103, 99, 101], true), Some(1));
    assert_eq!(choose(&[], true), None);
}

#[test]
fn tuning_does_not_depend_on_the_thread_count() {
    let (k, src) = gemm(512);
    let m = machine();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let r = pool.install(|| tune(&k, &m, &src, Level::O2, 6).expect("tunes"));
        let tried: Vec<(String, u64, u64)> = r.stages[0]
            .tried
            .iter()
            .map(|t| (t.schedule.clone(), t.predicted, t.simulated))
            .collect();
        (
            to_text(&merge(Tuning::default(), &r.entries, &r.vectors)),
            tried,
        )
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn split_k_entries_apply_with_their_partials() {
    // 512 × 512 × 8192: too few tiles for 910b-like's cube cores, so
    // the scheduler splits K; its partials follow the workspace.
    let src = Source {
        name: "gemm.tsr".into(),
        text: GEMM.into(),
    };
    let file = driver::parse_and_check(&src).expect("parses");
    let env = [("M", 512), ("N", 512), ("K", 8192)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let k = driver::lower(&file, "gemm", &env, &src).expect("lowers");
    let m = machine();
    let untuned = driver::compile_npu(&k, &m, &src, Level::O2).expect("compiles");
    let t = cube(&untuned.plan);
    assert!(t.parts() > 1, "{}", untuned.plan.text());
    assert_eq!(untuned.plan.workspace, t.parts() * 512 * 512 * 4);
    let StageKind::MatMul(mm) = &untuned.plan.stages[0].kind else {
        panic!("not a matmul: {}", untuned.plan.text());
    };
    let entry = |split_k| Entry {
        machine: m.name.clone(),
        fingerprint: fingerprint(&m),
        stage: stage_key(mm).expect("a key"),
        base_m: t.base_m,
        base_n: t.base_n,
        base_k: t.base_k,
        l1_k: t.l1_k,
        a_stages: 1,
        b_stages: 1,
        group_m: 1,
        accumulators: 1,
        a_panel: false,
        halves: false,
        fold: 1,
        split_k,
        predicted: 0,
        simulated: 0,
        untuned: 0,
        sample: None,
    };
    // The same tiles unsplit: no partials, no workspace.
    let file = merge(Tuning::default(), &[entry(1)], &[]);
    let (code, notes) =
        driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(cube(&code.plan).parts(), 1);
    assert_eq!(code.plan.workspace, 0);
    // More parts than one round of units: not offered, so ignored.
    let file = merge(Tuning::default(), &[entry(7)], &[]);
    let (code, notes) =
        driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
    assert!(
        notes.len() == 1 && notes[0].contains("not a valid schedule"),
        "{notes:?}"
    );
    assert_eq!(cube(&code.plan), t);
}

#[test]
fn stale_and_invalid_entries_are_ignored_with_a_note() {
    let (k, src) = gemm(1024);
    let m = machine();
    let untuned = driver::compile_npu(&k, &m, &src, Level::O2).expect("compiles");
    let r = tune(&k, &m, &src, Level::O2, 4).expect("tunes");
    let good = merge(Tuning::default(), &r.entries, &r.vectors);
    let mut stale = good.clone();
    stale.entries[0].fingerprint = "0000000000000000".into();
    let mut invalid = good.clone();
    invalid.entries[0].base_m = 7;
    // Tile orders are groups of 2, 4, 8 or 16 rows.
    let mut disorder = good.clone();
    disorder.entries[0].group_m = 3;
    // The scheduler's choice keeps an A panel, whose units go in runs,
    // not in groups of tile rows.
    assert!(good.entries[0].a_panel, "{good:?}");
    let mut grouped = good.clone();
    grouped.entries[0].group_m = 4;
    // Its runs of two fold over the tile row (`fold=2`); unfolded, or
    // folded otherwise, the scheduler does not offer it.
    assert_eq!(good.entries[0].fold, 2, "{good:?}");
    let mut unfolded = good.clone();
    unfolded.entries[0].fold = 1;
    let mut refolded = good.clone();
    refolded.entries[0].fold = 4;
    let mut no_fold = good.clone();
    no_fold.entries[0].fold = 0;
    // K in no parts is no schedule (an absent `split_k` is 1).
    assert_eq!(good.entries[0].split_k, 1, "{good:?}");
    let mut no_parts = good.clone();
    no_parts.entries[0].split_k = 0;
    for (file, why) in [
        (stale, "another description"),
        (invalid, "not a valid schedule"),
        (disorder, "not a valid schedule"),
        (grouped, "not a valid schedule"),
        (unfolded, "not a valid schedule"),
        (refolded, "not a valid schedule"),
        (no_fold, "not a valid schedule"),
        (no_parts, "not a valid schedule"),
    ] {
        let (code, notes) =
            driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(why), "{notes:?}");
        assert_eq!(cube(&code.plan), cube(&untuned.plan));
    }
    // On another machine the entry matches nothing.
    let other = crate::simulate::machine(Some("910-like")).expect("built-in");
    let (_, notes) =
        driver::compile_npu_tuned(&k, &other, &src, Level::O2, &good).expect("compiles");
    assert!(notes.is_empty());
}

#[test]
fn files_round_trip_and_bad_ones_are_e0608() {
    let dir = std::env::temp_dir().join(format!("tessera-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let e = |stage: &str, base_m| Entry {
        machine: "910b-like".into(),
        fingerprint: "00000000000000ff".into(),
        stage: stage.into(),
        base_m,
        base_n: 16,
        base_k: 16,
        l1_k: 16,
        a_stages: 1,
        b_stages: 1,
        group_m: 4,
        accumulators: 1,
        a_panel: false,
        halves: false,
        fold: 1,
        split_k: if base_m == 32 { 3 } else { 1 },
        predicted: 1,
        simulated: 2,
        untuned: 3,
        sample: (base_m == 32).then_some([1, 8]),
    };
    // Merging replaces the same stage and sorts.
    let f = merge(Tuning::default(), &[e("z", 16), e("a", 16)], &[]);
    let f = merge(f, &[e("z", 32)], &[]);
    let stages: Vec<(&str, u64)> = f
        .entries
        .iter()
        .map(|x| (x.stage.as_str(), x.base_m))
        .collect();
    assert_eq!(stages, [("a", 16), ("z", 32)]);
    let p = dir.join("t.toml");
    std::fs::write(&p, to_text(&f)).expect("write");
    assert_eq!(read(&p).expect("reads"), f);
    // A file from before tile orders: row-major.
    let old = to_text(&f).replace("group_m = 4\n", "");
    assert_ne!(old, to_text(&f));
    std::fs::write(&p, old).expect("write");
    let back = read(&p).expect("reads");
    assert!(back.entries.iter().all(|x| x.group_m == 1), "{back:?}");
    for bad in [
        "format = 1\n[[entry]]\nmachine = 3\n",
        "not toml [",
        "format = 2\n",
        "\u{0}\u{ff}",
    ] {
        std::fs::write(&p, bad).expect("write");
        let d = first(read(&p).expect_err("malformed"));
        assert_eq!(d.code, "E0608", "{bad:?}: {}", d.message);
    }
    // A key the format does not have (a misspelt `group_m`, which would
    // read as row-major) is refused where it stands.
    let typo = to_text(&f).replacen("group_m = 4", "group_M = 4", 1);
    let line = 1 + typo[..typo.find("group_M").expect("the key")]
        .matches('\n')
        .count();
    std::fs::write(&p, &typo).expect("write");
    let d = first(read(&p).expect_err("an unknown key"));
    assert_eq!(d.code, "E0608");
    assert!(
        d.message.contains("unknown field `group_M`"),
        "{}",
        d.message
    );
    assert!(
        d.message.contains(&format!("(line {line}, column 1)")),
        "{}",
        d.message
    );
    assert!(d.primary_span().is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `softmax(q @ kᵀ · s) @ v` (f16) with `h` heads of `s × d`.
fn attention(h: u64, s: u64, d: u64) -> (Kernel, Source) {
    lowered(
        "attention",
        "kernel attention(q: f16[H, S, D], k: f16[H, S, D], v: f16[H, S, D]) -> f16[H, S, D] {
            let s = (q @ transpose(k, [0, 2, 1])) * 0.125;
            return cast(cast(softmax(s, axis = -1), f16) @ v, f16);
        }",
        &[("H", h), ("S", s), ("D", d)],
    )
}

/// The fastest of each stage alone can make the kernel slower together
/// (attention at S = 256 on 910b-like: P·V's winner moves the softmax's
/// join): the scheduler's choices stay, nothing is recorded, and the report
/// gives both figures and says which stayed.
#[test]
fn winners_slower_together_are_reported_and_not_kept() {
    let (k, src) = attention(32, 256, 128);
    let m = machine();
    let r = tune(&k, &m, &src, Level::O2, 8).expect("tunes");
    let [untuned, kept] = r.kernel_cycles.expect("simulated whole");
    assert_eq!(untuned, kept);
    let Some(Some(rejected)) = r.rejected_cycles else {
        panic!("the winners were kept: {}", r.table())
    };
    assert!(rejected > untuned, "{rejected} against {untuned}");
    assert!(r.entries.is_empty() && r.vectors.is_empty());
    assert!(r.stages.iter().all(|s| s.chosen == 0));
    let table = r.table();
    assert!(
        table.contains(&format!(
            "the kernel {untuned} cycles with the scheduler's choices, {rejected} with the fastest of each stage alone: the scheduler's stay"
        )),
        "{table}"
    );
}

#[test]
fn a_stage_is_timed_with_the_l2_its_kernel_leaves_and_a_bounded_joined_one_is_left() {
    let (k, src) = attention(4, 512, 64);
    let m = machine();
    // Q·Kᵀ runs in one launch with the softmax (joined, the heavier), and
    // P·V in a launch of its own.
    let mut plan = driver::compile_npu(&k, &m, &src, Level::O2)
        .expect("compiles")
        .plan;
    assert_eq!(plan.stages.len(), 3);
    assert!(cube(&plan).epilogue > 0, "{:?}", cube(&plan));
    assert!(plan.stages[1].estimate > plan.stages[0].estimate);
    let r = tune(&k, &m, &src, Level::O2, 8).expect("tunes");
    let joined = r.stages.iter().find(|s| s.stage == 0).expect("stage 0");
    assert_eq!(joined.bound_by, Some(1));
    assert!(joined.tried.is_empty());
    // P·V alone, on the kernel's buffers with what Q·Kᵀ and the softmax
    // touched in L2, takes exactly the cycles of its launch in the kernel.
    let pv = r.stages.iter().find(|s| s.stage == 2).expect("stage 2");
    assert_eq!(pv.sample, None);
    finish(&mut plan, &m);
    let program = tessera_backend::npu::compile(&plan, &m).expect("generates");
    let opts = tessera_sim::RunOptions {
        timing_only: true,
        race_detection: false,
        ..tessera_sim::RunOptions::default()
    };
    let whole = tessera_sim::run(&m, &program, &[], &opts).expect("runs");
    assert_eq!(whole.report.launches.len(), 2);
    assert_eq!(pv.tried[0].simulated, whole.report.launches[1].cycles);
    // Cold, it would miss on P.
    let alone = Plan {
        stages: vec![plan.stages[2].clone()],
        ..plan.clone()
    };
    let cold = simulate(&alone, &m, &[])
        .expect("simulates")
        .expect("generates");
    assert!(cold > pv.tried[0].simulated, "{cold}");
}

/// Two products of one canonical form: `q @ k`, joined to a heavier
/// softmax, and `r @ k`, a result of its own, in the order `first`.
fn twins(bound_first: bool) -> (Kernel, Source) {
    let body = if bound_first {
        "return (cast(softmax((q @ k) * 0.125, axis = -1), f16), r @ k);"
    } else {
        "return (r @ k, cast(softmax((q @ k) * 0.125, axis = -1), f16));"
    };
    let outs = if bound_first {
        "(f16[S, S], f32[S, S])"
    } else {
        "(f32[S, S], f16[S, S])"
    };
    let text = format!(
        "kernel twins(q: f16[H, S, D], k: f16[H, D, S], r: f16[H, S, D]) -> {outs} {{ {body} }}"
    );
    let text = text
        .replace("f16[S, S]", "f16[H, S, S]")
        .replace("f32[S, S]", "f32[H, S, S]");
    lowered("twins", &text, &[("H", 4), ("S", 512), ("D", 64)])
}

#[test]
fn a_bounded_stage_neither_lends_nor_borrows_a_choice_of_its_form() {
    let m = machine();
    for bound_first in [true, false] {
        let (k, src) = twins(bound_first);
        let plan = driver::compile_npu(&k, &m, &src, Level::O2)
            .expect("compiles")
            .plan;
        let r = tune(&k, &m, &src, Level::O2, 8).expect("tunes");
        let bounded: Vec<_> = r.stages.iter().filter(|s| s.bound_by.is_some()).collect();
        let free: Vec<_> = r.stages.iter().filter(|s| s.bound_by.is_none()).collect();
        assert_eq!((bounded.len(), free.len()), (1, 1), "{}", plan.text());
        assert_eq!(bounded[0].key, free[0].key);
        // The free one is tuned on its own, whichever comes first, and the
        // bounded one is left as scheduled.
        assert_eq!(free[0].same_as, None, "bound first: {bound_first}");
        assert!(!free[0].tried.is_empty(), "bound first: {bound_first}");
        assert_eq!((bounded[0].same_as, bounded[0].chosen), (None, 0));
        // A tuning entry of their form applies to the free one only.
        let schedule = |p: &Plan, i: usize| {
            let StageKind::MatMul(mm) = &p.stages[i].kind else {
                panic!("a matmul, not {}", p.stages[i].kind.name());
            };
            let MatMulSchedule::Cube(t) = &mm.schedule else {
                panic!("a cube matmul");
            };
            (mm.clone(), t.clone())
        };
        let (mm, own) = schedule(&plan, free[0].stage);
        let g = Geometry::of(&mm).expect("geometry");
        let (_, other) = cube_candidates(&g, &m)
            .into_iter()
            .find(|(_, c)| (c.base_m, c.base_n) != (own.base_m, own.base_n) && c.parts() == 1)
            .expect("another tile");
        let entry = Entry {
            machine: m.name.clone(),
            fingerprint: fingerprint(&m),
            stage: free[0].key.clone(),
            base_m: other.base_m,
            base_n: other.base_n,
            base_k: other.base_k,
            l1_k: other.l1_k,
            a_stages: other.a_stages,
            b_stages: other.b_stages,
            group_m: 1,
            accumulators: other.accumulators,
            a_panel: other.a_panel,
            halves: other.halves,
            fold: other.fold.max(1),
            split_k: 1,
            predicted: 0,
            simulated: 0,
            untuned: 0,
            sample: None,
        };
        let file = merge(Tuning::default(), &[entry], &[]);
        let mut tuned = plan.clone();
        let notes = apply(&mut tuned, &file, &m);
        let (_, t) = schedule(&tuned, free[0].stage);
        assert_eq!((t.base_m, t.base_n), (other.base_m, other.base_n));
        let (_, t) = schedule(&tuned, bounded[0].stage);
        let (_, before) = schedule(&plan, bounded[0].stage);
        assert_eq!(t, before);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("the scheduler's choice stays"),
            "{notes:?}"
        );
    }
}

mod vector;
