//! The last round of a cube matmul cut into column strips (`tail_parts`):
//! the scheduler chooses it only for large products (where the L0C pins the
//! tile), too large to simulate functionally in a test, so this test forces
//! small tiles onto a small product, making a partial last round, and checks
//! the strips on the simulator (race detector on) against the reference.

use tessera_backend::npu::matmul::{CubeTiles, Geometry, Tail, cube_layout};
use tessera_compiler::simulate;
use tessera_ir::plan::StageKind;

/// `cast(a @ b, f16)` with `a: f16[m, 64]`, `b: f16[64, n]`, on `machine`,
/// with 32 × 128 tiles; returns the strips the stage got.
fn run(machine_name: &str, m: u64, n: u64) -> Tail {
    let text = format!(
        "kernel t(%a: f16[{m}, 64], %b: f16[64, {n}]) -> (x: f16[{m}, {n}]) {{\n  %0 = matmul %a, %b : f32[{m}, {n}]\n  %1 = cast %0 : f16[{m}, {n}]\n  return %1\n}}\n"
    );
    let module = tessera_ir::text::parse_module(&text).expect("IR text");
    let kernel = &module.kernels[0];
    let machine = simulate::machine(Some(machine_name)).expect("machine");
    let mut plan = tessera_compiler::plan::plan(kernel, &machine).expect("plan");
    let stage = plan
        .stages
        .iter_mut()
        .find(|s| matches!(s.kind, StageKind::MatMul { .. }))
        .expect("a matmul stage");
    let g = Geometry::of(&stage.kind).expect("geometry");
    let cores = u64::from(machine.cube_cores());
    let tiles = m.div_ceil(32) * n.div_ceil(128);
    let parts = cores / (tiles % cores);
    let t = CubeTiles {
        bm: 32,
        bn: 128,
        bk: 32,
        kl1: 64,
        ec: if machine.organisation == tessera_sim::Organisation::Coupled {
            128
        } else {
            0
        },
        tail: parts,
    };
    let tail = Tail::of(&g, &t, cores).expect("the shape has a partial last round with strips");
    t.store(&mut stage.schedule);
    stage.schedule.set("tiles", tiles);
    stage.block_dim = cores as u32;
    stage.local = cube_layout(&g, &t, &machine);

    let (asm, program) =
        tessera_backend::npu::compile(&plan, kernel, &machine).expect("code generation");
    assert!(asm.contains("strip"), "the strips' setup is emitted");
    let inputs = tessera_testsuite::random_inputs(kernel, 3);
    tessera_testsuite::simulate_against_reference(kernel, &machine, &program, &inputs)
        .unwrap_or_else(|e| panic!("{e}"));
    tail
}

#[test]
fn strips_of_the_last_round_compute_the_product_on_910b_like() {
    // 10 × 6 = 60 tiles on 24 cores: 48 whole, the last 12 in 2 strips of
    // 64 columns; the last column of tiles is 760 - 640 = 120 wide (a strip
    // of 64 and one of 56).
    let tail = run("910b-like", 300, 760);
    assert_eq!(
        tail,
        Tail {
            first: 48,
            parts: 2,
            width: 64,
            tiles: 60
        }
    );
    assert_eq!(tail.indices(), 48 + 12 * 2);
}

#[test]
fn strips_of_the_last_round_compute_the_product_on_910_like() {
    // 7 × 6 = 42 tiles on 32 cores: 32 whole, the last 10 in 3 strips of
    // ⌈128 / 3⌉ → 48 columns (48, 48, 32; 48, 48, 24 in the last column).
    let tail = run("910-like", 200, 760);
    assert_eq!(
        tail,
        Tail {
            first: 32,
            parts: 3,
            width: 48,
            tiles: 42
        }
    );
    assert_eq!(tail.indices(), 32 + 10 * 3);
}
