//! Cube matmul schedules the scheduler picks only for large products (too
//! large to simulate functionally in a test), forced onto small products and
//! checked on the simulator (race detector on) against the reference:
//! - the last round cut into column strips (`tail_parts`);
//! - one operand loaded two L1 stages deep (`a_stages`, `b_stages`), with
//!   transposed operands and batches, on 910b-like (the scheduler offers
//!   deep loads only where K is whole iterations of the K loop and on
//!   machines with 8 event ids per pipe pair);
//! - tiles taken in groups of tile rows (`group_m`), with a partial last
//!   group, strips, batches and transposed operands;
//! - single-stage loads issued a stage early (`loads_early`), with odd
//!   stage counts, one partial stage, transposed operands and batches, and
//!   on random products;
//! - two L0C accumulators that tiles alternate between (`accumulators`),
//!   with odd tile counts per core, strips, batches and transposed
//!   operands (and refused with deep loads);
//! - split-K on 910b-like (`split_k`): odd K, uneven last parts, more units
//!   than cube cores, transposed operands, relu, f16/bf16/f32 outputs and
//!   reduction chunks that end partway, the same bits on every run (and
//!   refused on 910-like and where `check_split` says no);
//! - A's whole K panel kept in L1 (`a_panel`), each core a contiguous run
//!   of units, runs that cross tile rows, partial stages, loads a stage
//!   early and batches (and refused with a transposed A or two
//!   accumulators);
//! - those runs folded over their tile row (`fold`), two and three slabs,
//!   partial tiles and batches (and refused without an A panel or where
//!   the fold is not the runs' length or does not divide the columns);
//! - the accumulator in two column halves (`halves`, `matmul_forced/halves.rs`).

#[path = "matmul_forced/halves.rs"]
mod halves;

use tessera_compiler::plan::schedule::{cube_layout, fits, place_partials};
use tessera_compiler::simulate;
use tessera_ir::plan::{CubeSchedule, Geometry, MatMulSchedule, Plan, StageKind, Tail};
use tessera_sim::Organisation;

/// The plan of `kernel` for `machine` with `tiles(geometry, cube cores)`
/// forced onto its first matmul stage (tile count, layout, block count and
/// the split-K partials follow from it), the stage's geometry, and whether
/// the forced buffers fit.
fn forced_plan(
    kernel: &tessera_ir::Kernel,
    machine: &tessera_sim::Machine,
    tiles: impl FnOnce(&Geometry, u64) -> CubeSchedule,
) -> (Plan, Geometry, bool) {
    let mut plan = tessera_compiler::plan::plan(kernel, machine).expect("plan");
    let stage = plan
        .stages
        .iter_mut()
        .find(|s| matches!(s.kind, StageKind::MatMul(_)))
        .expect("a matmul stage");
    let StageKind::MatMul(mm) = &mut stage.kind else {
        unreachable!("found above")
    };
    let g = Geometry::of(mm).expect("geometry");
    let cores = u64::from(machine.cube_cores());
    let mut t = tiles(&g, cores);
    t.tiles = g.batches() * g.m.div_ceil(t.base_m) * g.n.div_ceil(t.base_n);
    t.layout = cube_layout(&g, &t, machine);
    stage.block_dim = (t.tiles * t.parts()).min(cores) as u32;
    mm.schedule = MatMulSchedule::Cube(t);
    let fitting = fits(&stage.local(), machine);
    place_partials(&mut plan);
    (plan, g, fitting)
}

/// Forces `tiles(geometry)` onto the first matmul stage of the IR kernel
/// `text` ([`forced_plan`]), compiles it for `machine_name` and checks it
/// on the simulator against the reference. Returns the assembly and the
/// stage's geometry.
fn run_forced(
    machine_name: &str,
    text: &str,
    tiles: impl FnOnce(&Geometry, u64) -> CubeSchedule,
) -> (String, Geometry) {
    let module = tessera_ir::text::parse_module(text).expect("IR text");
    let kernel = &module.kernels[0];
    let machine = simulate::machine(Some(machine_name)).expect("machine");
    let mut forced = String::new();
    let (plan, g, fitting) = forced_plan(kernel, &machine, |g, cores| {
        let t = tiles(g, cores);
        forced = format!("{t:?}");
        t
    });
    assert!(fitting, "the forced buffers fit");

    let program = tessera_backend::npu::compile(&plan, &machine)
        .unwrap_or_else(|e| panic!("{machine_name} {forced}: {e:?}"));
    let asm = tessera_sim::disassemble(&program);
    let inputs = tessera_testsuite::random_inputs(kernel, 3);
    tessera_testsuite::simulate_against_reference(kernel, &machine, &program, &inputs)
        .unwrap_or_else(|e| panic!("{machine_name}: {e}\n{asm}"));
    (asm, g)
}

/// Small cube tiles: 32 × 128 outputs, K steps of 32 in L1 stages of 64.
fn small(machine_name: &str, tail: u64, sa: u64, sb: u64) -> CubeSchedule {
    let coupled = simulate::machine(Some(machine_name))
        .expect("machine")
        .organisation
        == Organisation::Coupled;
    CubeSchedule {
        base_m: 32,
        base_n: 128,
        base_k: 32,
        l1_k: 64,
        a_stages: sa,
        b_stages: sb,
        epi_cols: if coupled { 128 } else { 0 },
        tail_parts: tail,
        ..CubeSchedule::default()
    }
}

/// `cast(a @ b, f16)` with `a: f16[m, 64]`, `b: f16[64, n]` in 32 × 128
/// tiles, the last round in strips; returns the strips the stage got.
fn strips(machine_name: &str, m: u64, n: u64) -> Tail {
    let text = format!(
        "kernel t(%a: f16[{m}, 64], %b: f16[64, {n}]) -> (x: f16[{m}, {n}]) {{\n  %0 = matmul %a, %b : f32[{m}, {n}]\n  %1 = cast %0 : f16[{m}, {n}]\n  return %1\n}}\n"
    );
    let mut tail = None;
    let (asm, _) = run_forced(machine_name, &text, |g, cores| {
        let tiles = m.div_ceil(32) * n.div_ceil(128);
        let t = small(machine_name, cores / (tiles % cores), 1, 1);
        tail = Some(Tail::of(g, &t, cores).expect("a partial last round with strips"));
        t
    });
    let tail = tail.expect("tiles were forced");
    // The strips' setup runs from the first strip's index on.
    let first = format!(", {}, .L", tail.first);
    assert!(
        asm.lines()
            .any(|l| l.trim_start().starts_with("s.br.lt ") && l.contains(&first)),
        "the strips' setup is emitted"
    );
    tail
}

#[test]
fn strips_of_the_last_round_compute_the_product_on_910b_like() {
    // 10 × 6 = 60 tiles on 24 cores: 48 whole, the last 12 in 2 strips of
    // 64 columns; the last column of tiles is 760 - 640 = 120 wide (a strip
    // of 64 and one of 56).
    let tail = strips("910b-like", 300, 760);
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
    let tail = strips("910-like", 200, 760);
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

#[test]
fn staggered_strips_compute_the_product() {
    // Odd cores take their strip second (units 0, n − 1, 1, …): products
    // whose last round of 32 × 128 tiles is cut into strips that give
    // every core the same number n of units (machine, m, n, n), the last
    // column of tiles partial, so that no strip is empty.
    for (machine_name, m, n, units) in [
        ("910b-like", 300u64, 760u64, 3u64), // 60 tiles = 2·24 + 12, 2 strips
        ("910b-like", 270, 760, 3),          // 54 = 2·24 + 6, 4 strips
        ("910b-like", 180, 1650, 4),         // 78 = 3·24 + 6, 4 strips
        ("910-like", 280, 1000, 3),          // 72 = 2·32 + 8, 4 strips
        ("910-like", 100, 2170, 3),          // 68 = 2·32 + 4, 8 strips
    ] {
        let text = format!(
            "kernel t(%a: f16[{m}, 64], %b: f16[64, {n}]) -> (x: f16[{m}, {n}]) {{\n  %0 = matmul %a, %b : f32[{m}, {n}]\n  %1 = cast %0 : f16[{m}, {n}]\n  return %1\n}}\n"
        );
        let mut got = None;
        run_forced(machine_name, &text, |g, cores| {
            let tiles = m.div_ceil(32) * n.div_ceil(128);
            let t = CubeSchedule {
                stagger: true,
                ..small(machine_name, cores / (tiles % cores), 1, 1)
            };
            got = t.staggered(g, cores);
            t
        });
        assert_eq!(got, Some(units), "{machine_name} {m} × {n}");
    }
    // Without strips there is nothing to stagger: refused.
    let text = "kernel t(%a: f16[256, 64], %b: f16[64, 768]) -> (x: f16[256, 768]) {\n  %0 = matmul %a, %b : f32[256, 768]\n  %1 = cast %0 : f16[256, 768]\n  return %1\n}\n";
    let module = tessera_ir::text::parse_module(text).expect("IR text");
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    let (plan, ..) = forced_plan(&module.kernels[0], &machine, |_, _| CubeSchedule {
        stagger: true,
        ..small("910b-like", 1, 1, 1)
    });
    let err = tessera_backend::npu::compile(&plan, &machine).expect_err("refused");
    assert!(format!("{err:?}").contains("stagger=1"), "{err:?}");
}

#[test]
fn a_panels_compute_the_product() {
    // A's whole K panel in L1 (`a_panel=1`), each core a contiguous run of
    // units: (machine, program, base_k, l1_k). Runs that cross tile rows
    // (5 tile columns, 3 units a core) reload the panel mid-run; partial
    // last rows, columns and L1 stages; loads a stage early (16 steps a
    // stage); batches with their own A and with one A for both.
    let mm = |a: &str, b: &str, out: &str| {
        format!(
            "kernel t(%a: {a}, %b: {b}) -> (x: f16{out}) {{\n  %0 = matmul %a, %b : f32{out}\n  %1 = cast %0 : f16{out}\n  return %1\n}}\n"
        )
    };
    for (machine_name, text, base_k, l1_k) in [
        (
            "910b-like",
            split_text((300, 200, 600), "f16", false, false, "f16"),
            32,
            64,
        ),
        (
            "910b-like",
            split_text((300, 600, 760), "f16", false, true, "f32"),
            16,
            256,
        ),
        (
            "910-like",
            split_text((300, 200, 600), "f16", false, false, "f16"),
            32,
            64,
        ),
        (
            "910-like",
            split_text((250, 160, 1000), "f16", false, false, "f32"),
            32,
            64,
        ),
        // As many stages as 910-like's 4 event ids, loaded a stage early.
        (
            "910-like",
            split_text((300, 1000, 600), "f16", false, false, "f16"),
            16,
            256,
        ),
        (
            "910b-like",
            mm("f16[2, 200, 72]", "f16[2, 72, 300]", "[2, 200, 300]"),
            32,
            64,
        ),
        (
            "910-like",
            mm("f16[100, 72]", "f16[3, 72, 300]", "[3, 100, 300]"),
            32,
            64,
        ),
    ] {
        run_forced(machine_name, &text, |g, cores| {
            let t = CubeSchedule {
                base_k,
                l1_k,
                a_panel: true,
                ..small(machine_name, 1, 1, 1)
            };
            assert!(
                t.panel_units(g, cores) > 1,
                "{machine_name}: one unit a core"
            );
            t
        });
    }
    // Refused with a transposed A and with two accumulators.
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    for (text, accumulators) in [
        (split_text((300, 200, 600), "f16", true, false, "f16"), 1),
        (split_text((300, 200, 600), "f16", false, false, "f16"), 2),
    ] {
        let module = tessera_ir::text::parse_module(&text).expect("IR text");
        let (plan, ..) = forced_plan(&module.kernels[0], &machine, |_, _| CubeSchedule {
            a_panel: true,
            accumulators,
            ..small("910b-like", 1, 1, 1)
        });
        let err = tessera_backend::npu::compile(&plan, &machine).expect_err("refused");
        assert!(err.0.contains("a_panel=1"), "{err}");
    }
}

#[test]
fn folded_panels_compute_the_product() {
    // A panels whose runs of `q` units spread over their tile row
    // (`fold=q`): (machine, program, q). 32 × 128 tiles; partial last
    // rows and columns, three slabs (the middle one backwards), a batch.
    let mm = |a: &str, b: &str, out: &str| {
        format!(
            "kernel t(%a: {a}, %b: {b}) -> (x: f16{out}) {{\n  %0 = matmul %a, %b : f32{out}\n  %1 = cast %0 : f16{out}\n  return %1\n}}\n"
        )
    };
    for (machine_name, text, q) in [
        (
            "910b-like",
            split_text((192, 200, 1024), "f16", false, false, "f16"),
            2,
        ),
        (
            "910b-like",
            split_text((190, 72, 1000), "f16", false, true, "f32"),
            2,
        ),
        (
            "910b-like",
            split_text((380, 136, 760), "f16", false, false, "f16"),
            3,
        ),
        (
            "910-like",
            split_text((250, 200, 1000), "f16", false, false, "f16"),
            2,
        ),
        (
            "910b-like",
            mm("f16[2, 96, 72]", "f16[2, 72, 1024]", "[2, 96, 1024]"),
            2,
        ),
    ] {
        run_forced(machine_name, &text, |g, cores| {
            let t = CubeSchedule {
                a_panel: true,
                fold: q,
                ..small(machine_name, 1, 1, 1)
            };
            assert_eq!(t.panel_units(g, cores), q, "{machine_name}: runs");
            assert_eq!(t.check_fold(g, cores), Ok(()), "{machine_name}");
            t
        });
    }
    // Refused without an A panel, where the fold does not divide the tile
    // columns and where it is not the runs' length.
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    for (shape, a_panel, fold) in [
        ((192, 200, 1024), false, 2),
        ((288, 200, 1024), true, 3),
        ((192, 200, 1024), true, 4),
    ] {
        let text = split_text(shape, "f16", false, false, "f16");
        let module = tessera_ir::text::parse_module(&text).expect("IR text");
        let (plan, ..) = forced_plan(&module.kernels[0], &machine, |_, _| CubeSchedule {
            a_panel,
            fold,
            ..small("910b-like", 1, 1, 1)
        });
        let err = tessera_backend::npu::compile(&plan, &machine).expect_err("refused");
        assert!(err.0.contains(&format!("fold={fold}")), "{err}");
    }
}

/// K = 512 = 2 iterations of the 4-stage K loop (stages of 64, chunks of
/// 128): plain, transposed A, transposed B with a cast, and a batch (each
/// batch its own tiles); m and n are not multiples of the tiles.
const DEEP: [&str; 4] = [
    "kernel t(%a: f16[70, 512], %b: f16[512, 150]) -> (x: f32[70, 150]) {\n  %0 = matmul %a, %b : f32[70, 150]\n  return %0\n}\n",
    "kernel t(%a: f16[512, 70], %b: f16[512, 150]) -> (x: f32[70, 150]) {\n  %0 = transpose %a perm=[1, 0] : f16[70, 512]\n  %1 = matmul %0, %b : f32[70, 150]\n  return %1\n}\n",
    "kernel t(%a: f16[70, 512], %b: f16[150, 512]) -> (x: f16[70, 150]) {\n  %0 = transpose %b perm=[1, 0] : f16[512, 150]\n  %1 = matmul %a, %0 : f32[70, 150]\n  %2 = cast %1 : f16[70, 150]\n  return %2\n}\n",
    "kernel t(%a: f16[2, 40, 512], %b: f16[2, 512, 130]) -> (x: f32[2, 40, 130]) {\n  %0 = matmul %a, %b : f32[2, 40, 130]\n  return %0\n}\n",
];

#[test]
fn an_operand_loaded_two_stages_deep_computes_the_product() {
    for (i, text) in DEEP.iter().enumerate() {
        for (sa, sb) in [(2, 1), (1, 2)] {
            let (asm, g) = run_forced("910b-like", text, |_, _| small("910b-like", 1, sa, sb));
            assert_eq!((g.a_t, g.b_t), (i == 1, i == 2), "kernel {i}");
            // The loop body runs 4 stages: the shallow operand loads in each,
            // the deep one its tile's first chunk (guarded to the first
            // stage) and a prefetch of the next chunk in stages 1 and 3.
            assert_eq!(
                asm.matches("mte2.nd2nz").count(),
                4 + 1 + 2,
                "kernel {i} a{sa} b{sb}"
            );
        }
    }
}

#[test]
fn deep_loads_need_whole_k_loop_iterations() {
    // K = 200 is not a multiple of 4 stages of 64: refused, not miscompiled.
    let text = "kernel t(%a: f16[70, 200], %b: f16[200, 150]) -> (x: f32[70, 150]) {\n  %0 = matmul %a, %b : f32[70, 150]\n  return %0\n}\n";
    let module = tessera_ir::text::parse_module(text).expect("IR text");
    let kernel = &module.kernels[0];
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    let (plan, ..) = forced_plan(kernel, &machine, |_, _| small("910b-like", 1, 2, 1));
    let err = tessera_backend::npu::compile(&plan, &machine).expect_err("refused");
    assert!(err.0.contains("a multiple of 256"), "{err}");
}

/// How a product's operands carry a batch of 2.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Batch {
    /// No batch.
    None,
    /// A and B both batched.
    Both,
    /// A batched, B shared by the batch (broadcast).
    SharedB,
}

/// The IR text of `x = a @ b` (cast to f16 if `cast`) for an `m × k` A and
/// a `k × n` B in f16, each stored transposed when asked (the kernel
/// transposes it back), with a batch of 2 as `batch` says.
fn product_text(
    (m, k, n): (u64, u64, u64),
    (a_t, b_t): (bool, bool),
    batch: Batch,
    cast: bool,
) -> String {
    let lead = |batched: bool| if batched { "2, " } else { "" };
    let mut body = String::new();
    let mut next = 0;
    let mut operand = |name: &str, (rows, cols): (u64, u64), t: bool, batched: bool| {
        let lead = lead(batched);
        if !t {
            return (format!("f16[{lead}{rows}, {cols}]"), format!("%{name}"));
        }
        let perm = if batched { "[0, 2, 1]" } else { "[1, 0]" };
        body += &format!("  %{next} = transpose %{name} perm={perm} : f16[{lead}{rows}, {cols}]\n");
        next += 1;
        (
            format!("f16[{lead}{cols}, {rows}]"),
            format!("%{}", next - 1),
        )
    };
    let (a, x) = operand("a", (m, k), a_t, batch != Batch::None);
    let (b, y) = operand("b", (k, n), b_t, batch == Batch::Both);
    let out = |d: &str| format!("{d}[{}{m}, {n}]", lead(batch != Batch::None));
    body += &format!("  %{next} = matmul {x}, {y} : {}\n", out("f32"));
    if cast {
        body += &format!("  %{} = cast %{next} : {}\n", next + 1, out("f16"));
        next += 1;
    }
    let result = out(if cast { "f16" } else { "f32" });
    format!("kernel t(%a: {a}, %b: {b}) -> (x: {result}) {{\n{body}  return %{next}\n}}\n")
}

/// Small tiles (32 × 128) in L1 stages of 10 steps of 16: more than MTE1's
/// queue holds, so single-stage loads go a stage early.
fn early(machine_name: &str) -> CubeSchedule {
    CubeSchedule {
        base_k: 16,
        l1_k: 160,
        ..small(machine_name, 1, 1, 1)
    }
}

/// Single-stage loads of stages of many steps ([`early`]) are prefetched a
/// stage early: products of 10 × 5 tiles (several per core on both
/// machines) whose K takes one L1 stage (partial or whole), two, three (an
/// odd count: the loop's second stage skipped in its last iteration) and
/// four, with transposed operands, and batched products (one with a
/// broadcast B).
#[test]
fn single_stage_loads_prefetched_a_stage_early_compute_the_product() {
    for machine_name in ["910b-like", "910-like"] {
        for k in [40, 160, 300, 480, 500, 640] {
            for ts in [(false, false), (true, false), (false, true)] {
                let text = product_text((300, k, 520), ts, Batch::None, false);
                let (asm, g) = run_forced(machine_name, &text, |_, _| early(machine_name));
                assert_eq!((g.a_t, g.b_t, g.k), (ts.0, ts.1, k), "{text}");
                // The first stage loads the tile's first chunks of A and B;
                // with more than one stage, each of the loop body's two
                // stages also prefetches the next chunk of both.
                let prefetches = if k > 160 { 4 } else { 0 };
                assert_eq!(
                    asm.matches("mte2.nd2nz").count(),
                    2 + prefetches,
                    "{machine_name} {text}"
                );
            }
        }
        // Batches, one of them broadcast (B shared by both), K in three
        // stages.
        for batch in [Batch::Both, Batch::SharedB] {
            let text = product_text((100, 480, 150), (false, false), batch, false);
            let (asm, g) = run_forced(machine_name, &text, |_, _| early(machine_name));
            assert_eq!(g.batches(), 2, "{text}");
            assert_eq!(
                asm.matches("mte2.nd2nz").count(),
                2 + 4,
                "{machine_name} {text}"
            );
        }
    }
}

/// Loads a stage early on random products: shapes, transposes, batches
/// (shared or not), output casts, tile extents and stage depths of more
/// than 8 steps of 16, on both machines.
#[test]
fn loads_early_on_random_products_compute_the_product() {
    let mut rng = tessera_compiler::inputs::SplitMix64(0x10ad_ea71);
    let mut below = |n: u64| rng.next_u64() % n;
    let mut counts = [0; 3];
    for case in 0..24 {
        let machine_name = ["910b-like", "910-like"][case % 2];
        let (m, n) = (1 + below(160), 1 + below(260));
        let k = 1 + below((1 << 22) / (m * n)).min(900);
        let ts = (below(3) == 0, below(3) == 0);
        let batch = [Batch::None, Batch::Both, Batch::SharedB][below(3) as usize];
        let cast = below(2) == 0;
        let text = product_text((m, k, n), ts, batch, cast);
        let base_m = 16 * (1 + below(3));
        let base_n = 16 * (1 + below(8));
        let l1_k = 16 * (9 + below(6));
        let (_, g) = run_forced(machine_name, &text, |_, _| CubeSchedule {
            base_m,
            base_n,
            l1_k,
            epi_cols: if machine_name == "910-like" {
                base_n
            } else {
                0
            },
            ..early(machine_name)
        });
        assert_eq!(g.k, k, "{text}");
        let stages = k.div_ceil(l1_k);
        eprintln!(
            "{machine_name} m={m} n={n} k={k} {ts:?} {batch:?} cast={cast} tile {base_m}x{base_n} l1_k={l1_k}: {stages} stages"
        );
        counts[usize::from(stages > 1) + usize::from(stages > 1 && stages % 2 == 1)] += 1;
    }
    // One stage (no prefetch), an even count and an odd count all came up.
    assert!(counts.iter().all(|&c| c > 0), "{counts:?}");
}

/// Products whose tiles (32 × 128) fall in groups of 2, 3 and 4 tile rows
/// with a partial last group: 10 × 6 tiles (a partial last round on
/// 910b-like, cut into strips), a batch of 4 × 3 tiles per batch, and a
/// transposed A with a transposed B and a cast.
const GROUPED: [&str; 3] = [
    "kernel t(%a: f16[300, 64], %b: f16[64, 760]) -> (x: f16[300, 760]) {\n  %0 = matmul %a, %b : f32[300, 760]\n  %1 = cast %0 : f16[300, 760]\n  return %1\n}\n",
    "kernel t(%a: f16[2, 100, 64], %b: f16[2, 64, 300]) -> (x: f32[2, 100, 300]) {\n  %0 = matmul %a, %b : f32[2, 100, 300]\n  return %0\n}\n",
    "kernel t(%a: f16[64, 230], %b: f16[520, 64]) -> (x: f16[230, 520]) {\n  %0 = transpose %a perm=[1, 0] : f16[230, 64]\n  %1 = transpose %b perm=[1, 0] : f16[64, 520]\n  %2 = matmul %0, %1 : f32[230, 520]\n  %3 = cast %2 : f16[230, 520]\n  return %3\n}\n",
];

#[test]
fn tiles_taken_in_groups_of_rows_compute_the_product() {
    for machine_name in ["910b-like", "910-like"] {
        for (i, text) in GROUPED.iter().enumerate() {
            for group in [2, 3, 4] {
                let mut strips = None;
                let (asm, g) = run_forced(machine_name, text, |g, cores| {
                    let tiles = g.batches() * g.m.div_ceil(32) * g.n.div_ceil(128);
                    let mut t = small(machine_name, 1, 1, 1);
                    t.group_m = group;
                    if tiles > cores && !tiles.is_multiple_of(cores) {
                        t.tail_parts = cores / (tiles % cores);
                        strips = Tail::of(g, &t, cores);
                        if strips.is_none() {
                            t.tail_parts = 1;
                        }
                    }
                    t
                });
                // The group's first row and its rows: `m0 = idx / (G·tn) · G`.
                let tn = g.n.div_ceil(128);
                let setup = format!(", {}\n", group * tn);
                assert!(
                    asm.lines().any(|l| l.trim_start().starts_with("s.div ")
                        && l.ends_with(&setup[..setup.len() - 1])),
                    "{machine_name} kernel {i} group {group}: no grouped tile setup"
                );
                // 60 tiles on 24 cores: the last 12 in 2 strips each.
                if i == 0 && machine_name == "910b-like" {
                    assert!(strips.is_some(), "{machine_name} group {group}: strips");
                }
            }
        }
    }
}

#[test]
fn tiles_alternating_between_two_accumulators_compute_the_product() {
    // The grouped products: odd tile counts per core (the loop body's
    // second tile skipped), strips on 910b-like, a batch, transposed
    // operands; 910-like shares its 4 event ids between the two tiles'
    // events.
    for machine_name in ["910b-like", "910-like"] {
        for (i, text) in GROUPED.iter().enumerate() {
            let (asm, _) = run_forced(machine_name, text, |g, cores| {
                let mut t = small(machine_name, 1, 1, 1);
                t.accumulators = 2;
                let tiles = g.batches() * g.m.div_ceil(32) * g.n.div_ceil(128);
                if tiles > cores && !tiles.is_multiple_of(cores) {
                    t.tail_parts = cores / (tiles % cores);
                    if Tail::of(g, &t, cores).is_none() {
                        t.tail_parts = 1;
                    }
                }
                t
            });
            // Both accumulators (16 KiB each) take mmads.
            for acc in ["cube.mmad.f16 [0]", "cube.mmad.f16 [16384]"] {
                assert!(asm.contains(acc), "{machine_name} kernel {i}: no `{acc}`");
            }
        }
    }
}

#[test]
fn two_accumulators_with_deep_loads_are_refused() {
    let module = tessera_ir::text::parse_module(DEEP[0]).expect("IR text");
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    let (plan, ..) = forced_plan(&module.kernels[0], &machine, |_, _| CubeSchedule {
        accumulators: 2,
        ..small("910b-like", 1, 2, 1)
    });
    let err = tessera_backend::npu::compile(&plan, &machine).expect_err("refused");
    assert!(err.0.contains("one stage deep"), "{err}");
}

/// `x = [cast](relu?(a @ b))` for an `m × k` A and a `k × n` B of `dtype`
/// (A stored transposed when asked), the output of `out`.
fn split_text((m, k, n): (u64, u64, u64), dtype: &str, a_t: bool, relu: bool, out: &str) -> String {
    let (a, mut body, mut next) = if a_t {
        (
            format!("{dtype}[{k}, {m}]"),
            format!("  %0 = transpose %a perm=[1, 0] : {dtype}[{m}, {k}]\n"),
            1,
        )
    } else {
        (format!("{dtype}[{m}, {k}]"), String::new(), 0)
    };
    let x = if a_t { "%0" } else { "%a" };
    body += &format!("  %{next} = matmul {x}, %b : f32[{m}, {n}]\n");
    next += 1;
    if relu {
        body += &format!("  %{next} = relu %{} : f32[{m}, {n}]\n", next - 1);
        next += 1;
    }
    if out != "f32" {
        body += &format!("  %{next} = cast %{} : {out}[{m}, {n}]\n", next - 1);
        next += 1;
    }
    format!(
        "kernel t(%a: {a}, %b: {dtype}[{k}, {n}]) -> (x: {out}[{m}, {n}]) {{\n{body}  return %{}\n}}\n",
        next - 1
    )
}

/// A split-K schedule: `parts` parts of `⌈k / parts⌉` rounded up to 16,
/// `base_m × base_n` tiles in stages of 4 steps of 32, reduction chunks of
/// `red_rows × red_cols`.
fn split_k(
    k: u64,
    parts: u64,
    (base_m, base_n): (u64, u64),
    (red_rows, red_cols): (u64, u64),
) -> CubeSchedule {
    let part_k = k.div_ceil(parts).div_ceil(16) * 16;
    assert!((parts - 1) * part_k < k, "every part holds K");
    CubeSchedule {
        base_m,
        base_n,
        l1_k: 128,
        split_k: parts,
        part_k,
        red_rows,
        red_cols,
        ..small("910b-like", 1, 1, 1)
    }
}

/// Split-K on 910b-like against the reference: odd and prime K with an
/// uneven last part, one and several units per cube core (4 × 2 tiles × 3
/// parts = 24; 7 × 4 × 2 = 56 over 24 cores), a transposed A and B, relu,
/// f16, bf16 and f32 outputs, and reduction chunks that end partway in
/// both dims (several per vector core where chunks outnumber them).
#[test]
fn split_k_computes_the_product() {
    type Case = (
        (u64, u64, u64),
        &'static str,
        bool,
        bool,
        &'static str,
        u64,
        (u64, u64),
        (u64, u64),
    );
    let cases: [Case; 7] = [
        (
            (100, 1000, 150),
            "f16",
            false,
            true,
            "f16",
            3,
            (32, 128),
            (5, 64),
        ),
        (
            (100, 1000, 150),
            "f16",
            true,
            false,
            "f32",
            3,
            (32, 128),
            (5, 64),
        ),
        (
            (37, 777, 250),
            "f16",
            false,
            false,
            "f16",
            2,
            (32, 128),
            (3, 16),
        ),
        (
            (200, 509, 100),
            "f16",
            true,
            true,
            "f16",
            2,
            (32, 32),
            (7, 48),
        ),
        (
            (64, 333, 48),
            "bf16",
            false,
            false,
            "bf16",
            5,
            (32, 16),
            (2, 32),
        ),
        (
            (48, 2000, 64),
            "f16",
            false,
            true,
            "f32",
            12,
            (16, 32),
            (48, 64),
        ),
        (
            (16, 4096, 80),
            "f16",
            false,
            false,
            "f16",
            24,
            (16, 80),
            (1, 80),
        ),
    ];
    for ((m, k, n), dtype, a_t, relu, out, parts, tile, chunk) in cases {
        let text = split_text((m, k, n), dtype, a_t, relu, out);
        let (asm, g) = run_forced("910b-like", &text, |_, _| split_k(k, parts, tile, chunk));
        // (The planner alone leaves relu to a stage of its own; the plan
        // case `cube_split_k` has it in the reduction.)
        assert_eq!((g.k, g.a_t), (k, a_t), "{text}");
        // The cube cores' barrier and hand-off, and the vector cores'
        // section waiting for it.
        for want in [
            ".aiv",
            "xcore.set fix, 0, 0",
            "xcore.wait fix, 0",
            "xcore.set fix, 2, 1",
            "xcore.wait s, 1",
        ] {
            assert!(asm.contains(want), "{want} in {text}\n{asm}");
        }
    }
    // Transposed B (the kernel transposes it back).
    let text = product_text((90, 700, 130), (false, true), Batch::None, true);
    let (_, g) = run_forced("910b-like", &text, |_, _| {
        split_k(700, 4, (32, 64), (4, 32))
    });
    assert!(g.b_t, "{text}");
}

/// Split-K sums the parts in a fixed order: two runs give the same bits.
#[test]
fn split_k_results_are_the_same_bits_on_every_run() {
    let text = split_text((100, 1000, 150), "f16", false, false, "f32");
    let module = tessera_ir::text::parse_module(&text).expect("IR text");
    let kernel = &module.kernels[0];
    let machine = simulate::machine(Some("910b-like")).expect("machine");
    let (plan, ..) = forced_plan(kernel, &machine, |_, _| {
        split_k(1000, 3, (32, 128), (5, 64))
    });
    let program = tessera_backend::npu::compile(&plan, &machine).expect("compiles");
    let inputs: Vec<(String, tessera_sim::Tensor)> = kernel
        .params
        .iter()
        .zip(tessera_testsuite::random_inputs(kernel, 5))
        .map(|(p, t)| (p.name.clone(), simulate::to_sim(&t)))
        .collect();
    let run = || {
        tessera_sim::run(
            &machine,
            &program,
            &inputs,
            &tessera_sim::RunOptions::default(),
        )
        .expect("runs")
        .outputs
    };
    assert_eq!(run(), run());
    // And they are the product.
    let inputs = tessera_testsuite::random_inputs(kernel, 5);
    tessera_testsuite::simulate_against_reference(kernel, &machine, &program, &inputs)
        .expect("the product");
}

/// Split-K needs cross-core flags (not on 910-like) and a stage it applies
/// to (`check_split`): the code generator refuses the rest.
#[test]
fn split_k_is_refused_where_it_cannot_run() {
    let text = split_text((100, 1000, 150), "f16", false, false, "f16");
    let module = tessera_ir::text::parse_module(&text).expect("IR text");
    let kernel = &module.kernels[0];
    let refused = |machine_name: &str, t: CubeSchedule| {
        let machine = simulate::machine(Some(machine_name)).expect("machine");
        let (plan, ..) = forced_plan(kernel, &machine, |_, _| t);
        tessera_backend::npu::compile(&plan, &machine)
            .expect_err("refused")
            .0
    };
    let t = split_k(1000, 3, (32, 128), (5, 64));
    let coupled = CubeSchedule {
        epi_cols: 128,
        ..t.clone()
    };
    assert!(refused("910-like", coupled).contains("cross-core"));
    // A part that holds no K, deep loads, two accumulators, no chunks.
    for (bad, why) in [
        (
            CubeSchedule {
                part_k: 512,
                ..t.clone()
            },
            "no K",
        ),
        (
            CubeSchedule {
                part_k: 320,
                ..t.clone()
            },
            "cover K",
        ),
        (
            CubeSchedule {
                b_stages: 2,
                ..t.clone()
            },
            "deep",
        ),
        (
            CubeSchedule {
                accumulators: 2,
                ..t.clone()
            },
            "two accumulators",
        ),
        (
            CubeSchedule {
                red_cols: 40,
                ..t.clone()
            },
            "chunks",
        ),
    ] {
        let e = refused("910b-like", bad);
        assert!(e.contains("split_k=3") && e.contains(why), "{why}: {e}");
    }
}
