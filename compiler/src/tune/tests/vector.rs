//! Tuning vector matmul stages (the machine's cube lacks their dtype):
//! both forms weighed, a long K simulated on a prefix, and their entries.

use super::*;

const F32: &str = "kernel mm(a: f32[M, K], b: f32[K, N]) -> f32[M, N] { return a @ b; }";

/// 910-like, whose cube takes neither f32 nor bf16.
fn coupled() -> Machine {
    crate::simulate::machine(Some("910-like")).expect("built-in")
}

fn f32_mm(m: u64, k: u64, n: u64) -> (Kernel, Source) {
    lowered("mm", F32, &[("M", m), ("K", k), ("N", n)])
}

fn vector(plan: &Plan) -> VecMatSchedule {
    let StageKind::MatMul(mm) = &plan.stages[0].kind else {
        panic!("a matmul stage, not {}", plan.stages[0].kind.name());
    };
    let MatMulSchedule::Vector(t) = &mm.schedule else {
        panic!("a vector matmul");
    };
    t.clone()
}

#[test]
fn a_vector_matmul_weighs_both_forms_and_compiles_to_the_fastest() {
    // The cost model prefers the dot form here; the outer form is within
    // `OTHER_FORM` of it and is simulated too.
    let (k, src) = f32_mm(3, 100, 130);
    let m = coupled();
    let untuned = driver::compile_npu(&k, &m, &src, Level::O2).expect("compiles");
    let own = vector(&untuned.plan);
    let r = tune(&k, &m, &src, Level::O2, 8).expect("tunes");
    let st = &r.stages[0];
    assert!(r.entries.is_empty(), "{:?}", r.entries);
    assert_eq!((st.sample, st.k_sample), (None, None));
    // The scheduler's own choice first, as it describes it.
    let dot = if own.dot { " dot" } else { "" };
    assert_eq!(
        st.tried[0].schedule,
        format!("{}x{} k_chunk={}{dot}", own.rows, own.cols, own.k_chunk)
    );
    let forms: Vec<bool> = st
        .tried
        .iter()
        .map(|t| t.schedule.ends_with(" dot"))
        .collect();
    assert!(
        forms.contains(&true) && forms.contains(&false),
        "{:?}",
        st.tried
    );
    let fastest = st.tried.iter().map(|t| t.simulated).min().expect("tried");
    assert_eq!(st.tried[st.chosen].simulated, fastest);
    let file = merge(Tuning::default(), &r.entries, &r.vectors);
    let e = &file.vectors[0];
    assert_eq!(e.machine, "910-like");
    assert_eq!((e.simulated, e.untuned), (fastest, st.tried[0].simulated));
    let (code, notes) =
        driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
    assert!(notes.is_empty(), "{notes:?}");
    let t = vector(&code.plan);
    assert_eq!(
        (t.rows, t.cols, t.k_chunk, t.dot),
        (e.rows, e.cols, e.k_chunk, e.dot)
    );
    // One stage, simulated whole: with the file it runs as its entry did.
    let b = crate::bench::bench(&k, &m, &src, Level::O2, &file).expect("benches");
    assert_eq!(b.cycles, fastest);
    let b = crate::bench::bench(&k, &m, &src, Level::O2, &Tuning::default()).expect("benches");
    assert_eq!(b.cycles, st.tried[0].simulated);
}

#[test]
fn a_long_vector_matmul_is_tuned_on_a_prefix_of_its_k() {
    // The scheduler's dot-form choice and the outer form's cheapest, with
    // chunks of 64 and 8.
    let (k, src) = f32_mm(128, 8192, 128);
    let m = coupled();
    let r = tune(&k, &m, &src, Level::O2, 2).expect("tunes");
    let st = &r.stages[0];
    let [keep, of] = st.k_sample.expect("a prefix of K");
    assert_eq!(of, 8192);
    assert!(keep < of, "{keep}");
    // Every candidate runs whole chunks of the prefix, at least four of
    // the largest.
    let chunks: Vec<u64> = st
        .tried
        .iter()
        .map(|t| {
            let kc = t.schedule.split("k_chunk=").nth(1).expect("k_chunk");
            kc.trim_end_matches(" dot").parse().expect("a number")
        })
        .collect();
    let largest = *chunks.iter().max().expect("tried");
    assert!(chunks.iter().all(|c| keep % c == 0), "{keep} {chunks:?}");
    assert!(keep >= 4 * largest, "{keep} {chunks:?}");
    // Predicted on the prefix: the scheduler's own whole estimate is more.
    let whole = driver::compile_npu(&k, &m, &src, Level::O2).expect("compiles");
    assert!(st.tried[0].predicted < whole.plan.stages[0].estimate);
    let file = merge(Tuning::default(), &r.entries, &r.vectors);
    assert_eq!(file.vectors.len(), 1, "{file:?}");
    assert_eq!(file.vectors[0].k_sample, Some([keep, of]));
    // The stage is not the whole kernel's run, so a choice other than the
    // scheduler's needs a clear gain.
    if st.chosen != 0 {
        let (own, best) = (st.tried[0].simulated, st.tried[st.chosen].simulated);
        assert!(best as f64 * 1.02 <= own as f64, "{:?}", st.tried);
    }
}

#[test]
fn vector_entries_that_do_not_fit_the_stage_are_ignored_with_a_note() {
    let (k, src) = f32_mm(3, 100, 130);
    let m = coupled();
    let untuned = vector(
        &driver::compile_npu(&k, &m, &src, Level::O2)
            .expect("compiles")
            .plan,
    );
    let r = tune(&k, &m, &src, Level::O2, 4).expect("tunes");
    let good = merge(Tuning::default(), &r.entries, &r.vectors);
    let mut stale = good.clone();
    stale.vectors[0].fingerprint = "0000000000000000".into();
    // Rows the scheduler does not offer.
    let mut invalid = good.clone();
    invalid.vectors[0].rows = 3;
    // The dot form's columns are all of N.
    let mut narrow = good.clone();
    narrow.vectors[0].cols = 64;
    narrow.vectors[0].dot = true;
    for (file, why) in [
        (stale, "another description"),
        (invalid, "not a valid schedule"),
        (narrow, "not a valid schedule"),
    ] {
        let (code, notes) =
            driver::compile_npu_tuned(&k, &m, &src, Level::O2, &file).expect("compiles");
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains(why), "{notes:?}");
        assert_eq!(vector(&code.plan), untuned);
    }
    // Named, on a machine whose cube takes f32: the stage is a cube
    // matmul there, and the vector entry of its form matches nothing.
    let mut named = good.clone();
    named.named = true;
    for e in &mut named.vectors {
        e.machine = "910b-like".into();
    }
    let (_, notes) =
        driver::compile_npu_tuned(&k, &machine(), &src, Level::O2, &named).expect("compiles");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("no matmul stage"), "{notes:?}");
}

#[test]
fn vector_entries_round_trip_beside_cube_ones() {
    let dir = std::env::temp_dir().join(format!("tessera-tune-vec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let v = |stage: &str, rows| VectorEntry {
        machine: "910-like".into(),
        fingerprint: "00000000000000ff".into(),
        stage: stage.into(),
        rows,
        cols: 130,
        k_chunk: 64,
        dot: rows == 2,
        predicted: 1,
        simulated: 2,
        untuned: 3,
        sample: None,
        k_sample: (rows == 2).then_some([512, 4096]),
    };
    let f = merge(Tuning::default(), &[], &[v("z", 1), v("a", 1)]);
    let f = merge(f, &[], &[v("z", 2)]);
    let rows: Vec<(&str, u64, bool)> = f
        .vectors
        .iter()
        .map(|x| (x.stage.as_str(), x.rows, x.dot))
        .collect();
    assert_eq!(rows, [("a", 1, false), ("z", 2, true)]);
    let text = to_text(&f);
    assert!(text.contains("[[vector_matmul]]"), "{text}");
    assert!(
        !text.contains("[[entry]]") && !text.contains("entry = "),
        "{text}"
    );
    let p = dir.join("t.toml");
    std::fs::write(&p, &text).expect("write");
    assert_eq!(read(&p).expect("reads"), f);
    // A file of cube entries only reads with no vector entries.
    std::fs::write(&p, "format = 1\n").expect("write");
    assert!(read(&p).expect("reads").vectors.is_empty());
    std::fs::write(&p, "format = 1\n[[vector_matmul]]\nrows = 1\n").expect("write");
    assert_eq!(super::first(read(&p).expect_err("malformed")).code, "E0608");
    let _ = std::fs::remove_dir_all(&dir);
}
