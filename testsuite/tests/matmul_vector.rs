//! Vector matmuls (dtypes the cube lacks: f32 and bf16 on 910-like) with
//! narrow B (fewer than 256 columns), which the scheduler may give the
//! dot-product form (`VecMatSchedule::dot`), checked on the simulator (race
//! detector on) against the reference:
//! - as planned, at `-O0` and `-O2`: columns, transposed and sliced B, B
//!   a repeat wide and wider (a row's outputs as one instruction's repeats),
//!   batches on both sides, K of partial chunks, scale, relu and casts
//!   folded into the stage, each plan's text parsing back to the plan;
//! - forced onto one product in every tile height and chunk depth, and
//!   the outer-product form forced onto the same product;
//! - a hand-edited dot-form layout that does not match B's storage is
//!   refused.

use tessera_compiler::driver::{self, Source};
use tessera_compiler::opt::Level;
use tessera_compiler::plan::schedule::{fits, vector_layout};
use tessera_compiler::simulate;
use tessera_ir::plan::{
    Geometry, MatMul, MatMulSchedule, Plan, StageKind, VecMatB, VecMatSchedule,
};

/// Kernels of one narrow vector matmul each, with what they exercise.
const KERNELS: &str = "
// one element
kernel one(a: f32[1, 1], b: f32[1, 1]) -> f32[1, 1] { return a @ b; }
// K = 65: one whole repeat and one lane of a partial chunk
kernel odd(a: f32[5, 65], b: f32[65, 3]) -> f32[5, 3] { return a @ b; }
// a bf16 column
kernel column(a: bf16[33, 200], b: bf16[200, 1]) -> f32[33, 1] { return a @ b; }
// B stored transposed, K of several chunks and a tail
kernel bt(a: f32[17, 1000], b: f32[7, 1000]) -> f32[17, 7] { return a @ transpose(b); }
// the widest dot form
kernel wide(a: bf16[64, 64], b: bf16[64, 63]) -> f32[64, 63] { return a @ b; }
// batches on both sides
kernel batched(a: f32[2, 3, 130], b: f32[2, 130, 2]) -> f32[2, 3, 2] { return a @ b; }
// A broadcast over B's batches
kernel broadcast(a: bf16[20, 100], b: bf16[4, 2, 100, 1]) -> f32[4, 2, 20, 1] { return a @ b; }
// B's rows strided (a slice): one burst a row
kernel sliced(a: f32[9, 300], b: f32[300, 8]) -> f32[9, 3] { return a @ slice(b, axis = 1, start = 2, end = 5); }
// long K, many rows
kernel long(a: f32[70, 4500], b: f32[4500, 2]) -> f32[70, 2] { return a @ b; }
// a constant scale folded into the stage (coupled machines)
kernel scaled(a: f32[40, 129], b: f32[129, 5]) -> f32[40, 5] { return (a @ b) * 0.25; }
// relu folded into the stage
kernel relu_(a: f32[9, 300], b: f32[300, 6]) -> f32[9, 6] { return relu(a @ b); }
// a bf16 result: the output tile's rows padded to 32 bytes
kernel cast_(a: bf16[2, 33, 130], b: bf16[130, 5]) -> bf16[2, 33, 5] { return cast(a @ b, bf16); }
// B wider than a repeat: a row's outputs are one instruction's repeats
kernel n150(a: f32[20, 300], b: f32[300, 150]) -> f32[20, 150] { return a @ b; }
kernel n200(a: bf16[5, 70], b: bf16[200, 70]) -> f32[5, 200] { return a @ transpose(b); }
";

/// The kernels of [`KERNELS`], and whether the scheduler gives their
/// matmul the dot form at `-O0` (one element is as cheap either way; at
/// 200 columns the outer form's estimate is the lower).
const NAMES: [(&str, bool); 14] = [
    ("one", false),
    ("odd", true),
    ("column", true),
    ("bt", true),
    ("wide", true),
    ("batched", true),
    ("broadcast", true),
    ("sliced", true),
    ("long", true),
    ("scaled", true),
    ("relu_", true),
    ("cast_", true),
    ("n150", true),
    ("n200", false),
];

/// Kernel `name` of [`KERNELS`], lowered, and its source.
fn lowered(name: &str) -> (tessera_ir::Kernel, Source) {
    let src = Source {
        name: "narrow".into(),
        text: KERNELS.into(),
    };
    let file = driver::parse_and_check(&src).expect("checks");
    let kernel = driver::lower(&file, name, &Default::default(), &src).expect("lowers");
    (kernel, src)
}

/// The plan's matmul stages in the dot form.
fn dot_stages(plan: &Plan) -> Vec<&MatMul> {
    plan.stages
        .iter()
        .filter_map(|s| match &s.kind {
            StageKind::MatMul(mm) if matches!(&mm.schedule, MatMulSchedule::Vector(v) if v.dot) => {
                Some(mm)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn narrow_vector_matmuls_run_as_dot_products() {
    let machine = simulate::machine(Some("910-like")).expect("machine");
    let mut folded = (false, false);
    for (name, dot) in NAMES {
        let (kernel, src) = lowered(name);
        let inputs = tessera_testsuite::random_inputs(&kernel, 3);
        for level in [Level::O0, Level::O2] {
            let code = driver::compile_npu(&kernel, &machine, &src, level)
                .unwrap_or_else(|e| panic!("{name} {level:?}: {e:?}"));
            let dots = dot_stages(&code.plan);
            // At -O2 a column may become a row reduction instead.
            if level == Level::O0 {
                assert_eq!(dots.len(), usize::from(dot), "{name}: {}", code.plan.text());
            }
            for mm in dots {
                folded.0 |= mm.scale.is_some();
                folded.1 |= mm.relu;
            }
            tessera_testsuite::plan_round_trip(&code.plan, &machine, &code.program)
                .unwrap_or_else(|e| panic!("{name} {level:?}: {e}"));
            tessera_testsuite::simulate_against_reference(
                &kernel,
                &machine,
                &code.program,
                &inputs,
            )
            .unwrap_or_else(|e| panic!("{name} {level:?}: {e}\n{}", code.plan.text()));
        }
    }
    assert_eq!(
        folded,
        (true, true),
        "a scale and a relu folded into a dot-form stage"
    );
}

/// `schedule(geometry)` forced onto the matmul stage of `name` in
/// [`KERNELS`] (planned at `-O0`), checked against the reference.
fn forced(name: &str, schedule: impl Fn(&Geometry) -> VecMatSchedule) {
    let (kernel, _) = lowered(name);
    let machine = simulate::machine(Some("910-like")).expect("machine");
    let mut plan = tessera_compiler::plan::plan(&kernel, &machine).expect("plan");
    let stage = plan
        .stages
        .iter_mut()
        .find(|s| matches!(s.kind, StageKind::MatMul(_)))
        .expect("a matmul stage");
    let StageKind::MatMul(mm) = &mut stage.kind else {
        unreachable!("found above")
    };
    let g = Geometry::of(mm).expect("geometry");
    let mut t = schedule(&g);
    t.tiles = g.batches() * g.m.div_ceil(t.rows) * g.n.div_ceil(t.cols);
    t.layout = vector_layout(&g, &t, &machine);
    stage.block_dim = t.tiles.min(u64::from(machine.vector_cores())) as u32;
    let what = format!("{name} {t:?}");
    mm.schedule = MatMulSchedule::Vector(t);
    assert!(fits(&stage.local(), &machine), "{what}: the buffers fit");
    let program =
        tessera_backend::npu::compile(&plan, &machine).unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let inputs = tessera_testsuite::random_inputs(&kernel, 5);
    tessera_testsuite::simulate_against_reference(&kernel, &machine, &program, &inputs)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[test]
fn dot_products_of_every_tile_height_and_chunk_depth_compute_the_product() {
    let small = [1, 3, 8].map(|rows| [64, 128, 256].map(|k| (rows, k)));
    let cases = ["bt", "sliced", "batched", "cast_"]
        .into_iter()
        .flat_map(|name| small.concat().into_iter().map(move |s| (name, s)))
        // 150 outputs of 128 lanes a row take half of UB twice over.
        .chain([("n150", (1, 64))]);
    for (name, (rows, k_chunk)) in cases {
        forced(name, |g| VecMatSchedule {
            rows,
            cols: g.n,
            k_chunk,
            dot: true,
            ..VecMatSchedule::default()
        });
    }
}

#[test]
fn outer_products_still_compute_a_narrow_product() {
    for name in ["odd", "bt", "sliced", "cast_"] {
        forced(name, |_| VecMatSchedule {
            rows: 4,
            cols: 64,
            k_chunk: 8,
            ..VecMatSchedule::default()
        });
    }
}

/// A dot-form stage whose B buffers do not match B's storage (a plan
/// written by hand) is refused with an error, not compiled into a wrong
/// program: a row-major B without its gather, a transposed one with it.
#[test]
fn a_dot_layout_that_does_not_match_b_is_refused() {
    let machine = simulate::machine(Some("910-like")).expect("machine");
    for name in ["odd", "bt"] {
        let (kernel, src) = lowered(name);
        let code = driver::compile_npu(&kernel, &machine, &src, Level::O0).expect("compiles");
        let mut plan = code.plan.clone();
        let Some(StageKind::MatMul(mm)) = plan.stages.first_mut().map(|s| &mut s.kind) else {
            panic!("{name}: not a matmul: {}", code.plan.text());
        };
        let MatMulSchedule::Vector(VecMatSchedule {
            dot: true, layout, ..
        }) = &mut mm.schedule
        else {
            panic!("{name}: not the dot form: {}", code.plan.text());
        };
        let VecMatB::Columns { b, gather, .. } = &mut layout.b else {
            panic!("{name}: no column buffers");
        };
        *gather = match gather {
            Some(_) => None,
            None => Some((*b, *b)),
        };
        let err = tessera_backend::npu::compile(&plan, &machine)
            .expect_err("an inconsistent layout is refused");
        assert!(
            format!("{err:?}").contains("gathers B's columns"),
            "{name}: {err:?}"
        );
    }
}
