//! Reductions against the reference interpreter on the simulator (race
//! detector on), both built-in machines: long reductions split across the
//! cores (`layout/split-reduction`), chunked row stages with more per-row
//! values than registers, f16/bf16 rows converted in groups, and the online
//! variance of rows longer than UB.

use tessera_compiler::driver::{self, Source};
use tessera_compiler::simulate;
use tessera_ir::DType;

/// Runs `program` on `machine`'s simulator and checks it against the
/// reference, or panics naming `what` and the machine.
fn matches_reference(
    kernel: &tessera_ir::Kernel,
    machine: &tessera_sim::Machine,
    program: &tessera_sim::Program,
    inputs: &[tessera_ir::Tensor],
    what: &str,
) {
    tessera_testsuite::simulate_against_reference(kernel, machine, program, inputs)
        .unwrap_or_else(|e| panic!("{what} on {}: {e}", machine.name));
}

/// Long reductions over fewer tiles than the machine has vector cores (a
/// whole tensor, a column sum, a middle axis, a few long rows) split into
/// parts over all the cores and then their partials, in every reduction and
/// dtype the rule takes: sums and means of f16, bf16 and i8 keep f32 or i32
/// partials. `total_i8`'s ones then minus ones sum to 5, while each part's
/// sum is far past i8 (partials saturated in i8 would not give 5).
#[test]
fn split_reductions_match_the_reference() {
    let src = Source {
        name: "split".into(),
        text: "kernel total(x: f32[1048576]) -> f32 { return sum(x); }\n\
               kernel total_f16(x: f16[1048576]) -> f16 { return sum(x); }\n\
               kernel total_i8(x: i8[2097152]) -> i8 { return sum(x); }\n\
               kernel min_i32(x: i32[1048576]) -> i32 { return min(x); }\n\
               kernel mean_bf16(x: bf16[2, 600000]) -> bf16[2] { return mean(x, axis = -1); }\n\
               kernel kept(x: f32[2, 524288]) -> f32[2, 1] {\n\
                   return mean(x, axis = -1, keepdims = true);\n\
               }\n\
               kernel columns(x: f32[4096, 1024]) -> f32[1024] { return sum(x, axis = 0); }\n\
               kernel middle(x: f16[4, 65536, 8]) -> f16[4, 8] { return max(x, axis = 1); }\n"
            .into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let names = [
        "total",
        "total_f16",
        "total_i8",
        "min_i32",
        "mean_bf16",
        "kept",
        "columns",
        "middle",
    ];
    for machine_name in ["910b-like", "910-like"] {
        let machine = simulate::machine(Some(machine_name)).expect("machine");
        for name in names {
            let kernel = driver::lower(&file, name, &Default::default(), &src).expect("lowers");
            let opt = tessera_compiler::opt::optimise(
                &kernel,
                &machine,
                tessera_compiler::opt::Level::O2,
            )
            .expect("optimises");
            let reductions = opt
                .kernel
                .nodes
                .iter()
                .filter(|n| matches!(n.op, tessera_ir::Op::Reduce { .. }))
                .count();
            assert_eq!(reductions, 2, "{name} on {machine_name}: not split");
            let code =
                driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
                    .expect("compiles");
            let mut inputs = tessera_testsuite::random_inputs(&kernel, 5);
            if name == "total_i8" {
                let n = 2_097_152;
                let x = (0..n)
                    .map(|i| match i {
                        0 => 5.0,
                        i if i < n / 2 => 1.0,
                        i if i == n / 2 => 0.0,
                        _ => -1.0,
                    })
                    .collect();
                inputs[0] = tessera_ir::Tensor::from_f64(DType::I8, vec![n], x);
            }
            matches_reference(&kernel, &machine, &code.program, &inputs, name);
        }
    }
}

/// A chunked row stage whose arithmetic with per-row values wants more
/// scalar registers than the stage has left: the registers go to the first
/// and the rest keep the block form (the stage once failed to compile),
/// against the reference. On 910-like (4 event ids a pipe pair) the same
/// stage's six per-row inputs need more MTE2 → V events than it has: the
/// backend refuses the stage and its group is split into its ops (it once
/// failed with an internal error). Sixteen rows: with two, the cost model
/// (a row stage on as many cores as rows) fuses less, and both stages fit.
#[test]
fn chunked_rows_with_more_per_row_values_than_registers_match_the_reference() {
    let src = Source {
        name: "registers".into(),
        text: "kernel many(x: f32[16, 40000]) -> f32[16, 40000] {\n\
                   let a = mean(x, axis = -1, keepdims = true);\n\
                   let b = max(x, axis = -1, keepdims = true);\n\
                   let c = min(x, axis = -1, keepdims = true);\n\
                   let d = sum(x, axis = -1, keepdims = true);\n\
                   let e = mean(x, axis = -1, keepdims = true) * 2.0;\n\
                   let f = max(x, axis = -1, keepdims = true) * 3.0;\n\
                   return ((((((x - a) * b + c) - d) * e + f) - b) * c + a) * d - e\n\
                       + (x - f) * a;\n\
               }\n"
        .into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let kernel = driver::lower(&file, "many", &Default::default(), &src).expect("lowers");
    let inputs = tessera_testsuite::random_inputs(&kernel, 3);
    for (machine_name, split) in [("910b-like", false), ("910-like", true)] {
        let machine = simulate::machine(Some(machine_name)).expect("machine");
        let code = driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
            .unwrap_or_else(|e| panic!("{machine_name}: {e:?}"));
        assert_eq!(code.report.split > 0, split, "{machine_name}");
        assert!(!code.report.fallback, "{machine_name}");
        matches_reference(&kernel, &machine, &code.program, &inputs, "many");
    }
}

/// Row stages whose tile holds more rows than the wide buffer: reductions
/// of f16/bf16 rows convert a group of rows at a time (softmax and
/// rms_norm over 4 Ki-element rows, many rows per tile), against the
/// reference on both machines.
#[test]
fn reductions_converting_rows_in_groups_match_the_reference() {
    let src = Source {
        name: "groups".into(),
        text: "kernel sm(x: f16[240, 4096]) -> f16[240, 4096] { return softmax(x); }\n\
               kernel rms(x: bf16[400, 4096], g: bf16[4096]) -> bf16[400, 4096] {\n\
                   return rms_norm(x, g);\n\
               }\n"
        .into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let mut grouped = 0;
    for machine_name in ["910b-like", "910-like"] {
        let machine = simulate::machine(Some(machine_name)).expect("machine");
        for name in ["sm", "rms"] {
            let kernel = driver::lower(&file, name, &Default::default(), &src).expect("lowers");
            let code =
                driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
                    .expect("compiles");
            for stage in &code.plan.stages {
                if let tessera_ir::plan::StageKind::Rows(r) = &stage.kind
                    && let Some(w) = r.schedule.layout.wide
                {
                    let rows_held = w.bytes / (r.schedule.pitch * 4);
                    grouped += usize::from(rows_held < r.schedule.rows);
                }
            }
            let inputs = tessera_testsuite::random_inputs(&kernel, 7);
            matches_reference(&kernel, &machine, &code.program, &inputs, name);
        }
    }
    assert!(grouped > 0, "no tile converted its rows in groups");
}

/// The online variance of rows longer than UB (the mean and the squares
/// about the first chunk's mean in one pass, `online_variance`):
/// `layer_norm` of f32 rows (pipelined) and of f16 rows converted first
/// (rows one at a time), and a variance written out as a mean and as a sum
/// of squares, over rows built to stress the shift, against the reference
/// on both machines: unit values; an offset a thousand times the spread; a
/// first chunk a hundred spreads from the rest (the shift far from the
/// mean); a constant row (variance 0); a first chunk so far from the rest
/// that the squares of their difference overflow (f32; in f16, a large
/// one); an infinity past the first chunk; a NaN; a negative offset. And
/// a variance of values past their spread by 2.5·10⁷ (`fine`), where the
/// rounding of the mean itself shows in the squares of the differences
/// from it.
#[test]
fn online_variance_of_long_rows_matches_the_reference() {
    use tessera_ir::plan::rows::{Passes, online_variance};
    use tessera_ir::plan::{StageKind, Width};
    const N: usize = 40_000;
    let src = Source {
        name: "variance".into(),
        text: "kernel ln(x: f32[8, 40000], g: f32[40000], b: f32[40000]) -> f32[8, 40000] {\n\
                   return layer_norm(x, g, b);\n\
               }\n\
               kernel lnc(x: f16[8, 40000], g: f32[40000], b: f32[40000]) -> f16[8, 40000] {\n\
                   return cast(layer_norm(cast(x, f32), g, b), f16);\n\
               }\n\
               kernel var(x: f32[8, 40000]) -> f32[8] {\n\
                   let d = x - mean(x, axis = -1, keepdims = true);\n\
                   return mean(d * d, axis = -1);\n\
               }\n\
               kernel fine(x: f32[8, 40000]) -> f32[8] {\n\
                   let y = x * 0.00004 + 1000.0;\n\
                   let d = y - mean(y, axis = -1, keepdims = true);\n\
                   return mean(d * d, axis = -1) * 1000000.0;\n\
               }\n\
               kernel ssq(x: f32[8, 40000]) -> f32[8] {\n\
                   let d = x - mean(x, axis = -1, keepdims = true);\n\
                   return sum(d * d, axis = -1);\n\
               }\n"
        .into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    for machine_name in ["910b-like", "910-like"] {
        let machine = simulate::machine(Some(machine_name)).expect("machine");
        for (name, passes, piped) in [
            ("ln", 2, true),
            ("lnc", 2, false),
            ("var", 1, false),
            ("ssq", 1, false),
            ("fine", 1, false),
        ] {
            let kernel = driver::lower(&file, name, &Default::default(), &src).expect("lowers");
            let code =
                driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
                    .expect("compiles");
            let rows: Vec<_> = code
                .plan
                .stages
                .iter()
                .filter_map(|s| match &s.kind {
                    StageKind::Rows(r) if r.schedule.chunked() => Some(r),
                    _ => None,
                })
                .collect();
            let [r] = rows.as_slice() else {
                panic!("{name} on {machine_name}: not one chunked row stage");
            };
            let widths: Vec<Width> = r.inputs.iter().map(|i| i.width).collect();
            assert!(online_variance(&r.body, &widths).is_some(), "{name}");
            assert_eq!(Passes::of(&r.body, &widths).count, passes, "{name}");
            assert_eq!(r.schedule.pipelined, piped, "{name}");
            let c = r.schedule.pitch as usize;
            let mut inputs = tessera_testsuite::random_inputs(&kernel, 11);
            if name == "fine" {
                // Within 1e-5 of the reference, a hundred times tighter
                // than the spec's tolerance: the variance about the exact
                // mean is up to 1e-4 off the whole-row form's, which
                // squares the differences from the rounded mean.
                let reference = tessera_ir::interp::run(&kernel, &inputs).expect("reference");
                let got = tessera_testsuite::simulate(&kernel, &machine, &code.program, &inputs)
                    .expect("simulates");
                for i in 0..8 {
                    let (g, r) = (got[0].1.get_f64(i), reference[0].get_f64(i));
                    assert!(
                        (g - r).abs() <= 1e-5 * r.abs(),
                        "fine on {machine_name}: row {i}: {g} against {r}"
                    );
                }
                continue;
            }
            let unit: Vec<f64> = (0..8 * N).map(|i| inputs[0].get_f64(i)).collect();
            let dtype = kernel.params[0].ty.dtype;
            let large = if dtype == DType::F32 { 1e20 } else { 1e4 };
            let x: Vec<f64> = (0..8 * N)
                .map(|i| {
                    let (row, col, u) = (i / N, i % N, unit[i]);
                    match row {
                        1 => 1000.0 + u,
                        2 if col < c => 100.0 + u,
                        3 => 3.25,
                        4 if col < c => large + u,
                        5 if col == c + 7 => f64::INFINITY,
                        6 if col == N / 2 => f64::NAN,
                        7 => u * 1e-3 - 5.0,
                        _ => u,
                    }
                })
                .collect();
            inputs[0] = tessera_ir::Tensor::from_f64(dtype, vec![8, N], x);
            matches_reference(&kernel, &machine, &code.program, &inputs, name);
        }
    }
}
