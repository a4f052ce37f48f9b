//! The accumulator in two column halves (`halves`): forced onto small
//! products on 910b-like and checked on the simulator (race detector on)
//! against the reference.

use super::{Batch, DEEP, forced_plan, product_text, run_forced, small, split_text};
use tessera_compiler::simulate;
use tessera_ir::plan::CubeSchedule;

/// An i8 product in i32: B's L1 blocks are 32 columns.
const I8_PRODUCT: &str = "kernel t(%a: i8[90, 256], %b: i8[256, 200]) -> (x: i32[90, 200]) {\n  %0 = matmul %a, %b : i32[90, 200]\n  return %0\n}\n";

/// [`small`]'s 32 × 128 tiles (halves of 64 columns) with halves, K steps
/// of 32 in L1 stages of 64, the last round in `tail` strips.
fn halved(tail: u64, sa: u64, sb: u64) -> CubeSchedule {
    CubeSchedule {
        halves: true,
        ..small("910b-like", tail, sa, sb)
    }
}

#[test]
fn halves_compute_the_product() {
    // Eight L1 stages (K = 512); a last tile column of 150 - 128 = 22
    // (and 130 - 128 = 2) columns, all in its left half; transposed
    // operands, a batch, f32 and f16 results.
    for (i, text) in DEEP.iter().enumerate() {
        let (asm, g) = run_forced("910b-like", text, |_, _| halved(1, 1, 1));
        assert_eq!((g.a_t, g.b_t), (i == 1, i == 2), "kernel {i}");
        // Each of the K loop's two stages drains both halves (guarded to
        // the tile's last stage), and no drain follows the loop.
        assert_eq!(
            asm.matches("fix.copy.l0c.gm").count(),
            4,
            "kernel {i}\n{asm}"
        );
        // Each step of a stage is two `mmad`s, one a half.
        assert_eq!(asm.matches("cube.mmad").count(), 2 * 2 * 2, "kernel {i}");
    }
    // One L1 stage (K = 40, partial), two, and several with a partial last
    // one (K = 200); last tile columns with a partial right half (130 -
    // 128 = 2 columns is left-only; 250 - 128 = 122 and 600 - 512 = 88
    // reach into the right half); batches, one with a broadcast B.
    for (mnk, ts, batch, cast) in [
        ((70, 40, 150), (false, false), Batch::None, true),
        ((33, 128, 130), (false, true), Batch::None, false),
        ((100, 200, 300), (true, false), Batch::Both, true),
        ((64, 96, 250), (false, false), Batch::SharedB, false),
        ((300, 200, 600), (true, true), Batch::None, true),
    ] {
        let (m, k, n) = mnk;
        let text = product_text((m, k, n), ts, batch, cast);
        run_forced("910b-like", &text, |_, _| halved(1, 1, 1));
    }
}

#[test]
fn halves_combine_with_the_other_schedules() {
    let text = split_text((300, 512, 600), "f16", false, false, "f16");
    // Deep loads of either operand, tiles in groups of tile rows, strips
    // of the last round (10 × 5 = 50 tiles on 24 cores: 2 whole rounds and
    // 2 tiles in strips of 64 columns, each in its left half), A panels,
    // and relu.
    for t in [
        halved(1, 2, 1),
        halved(1, 1, 2),
        CubeSchedule {
            group_m: 3,
            ..halved(1, 1, 1)
        },
        halved(2, 1, 1),
    ] {
        run_forced("910b-like", &text, |_, _| t);
    }
    // A's whole K panel in L1, each core a run of tiles.
    let panel = split_text((300, 200, 600), "f16", false, false, "f16");
    run_forced("910b-like", &panel, |g, cores| {
        let t = CubeSchedule {
            a_panel: true,
            ..halved(1, 1, 1)
        };
        assert!(t.panel_units(g, cores) > 1, "one unit a core");
        t
    });
    let relu = split_text((100, 300, 200), "f16", true, true, "f16");
    run_forced("910b-like", &relu, |_, _| halved(1, 1, 1));
    // i8 in i32 (B's L1 blocks are 32 columns: the left half is two).
    run_forced("910b-like", I8_PRODUCT, |_, _| CubeSchedule {
        base_k: 64,
        l1_k: 128,
        ..halved(1, 1, 1)
    });
}

#[test]
fn halves_are_refused_where_the_template_has_none() {
    let text = split_text((300, 512, 600), "f16", false, false, "f16");
    let module = tessera_ir::text::parse_module(&text).expect("IR text");
    let kernel = &module.kernels[0];
    // A coupled machine (no FixPipe), two accumulators, and an i8 B whose
    // left half is not whole 32-column blocks.
    let b910 = simulate::machine(Some("910b-like")).expect("machine");
    let c910 = simulate::machine(Some("910-like")).expect("machine");
    for (machine, t) in [
        (
            &c910,
            CubeSchedule {
                epi_cols: 128,
                ..halved(1, 1, 1)
            },
        ),
        (
            &b910,
            CubeSchedule {
                accumulators: 2,
                ..halved(1, 1, 1)
            },
        ),
    ] {
        let (plan, ..) = forced_plan(kernel, machine, |_, _| t);
        let err = tessera_backend::npu::compile(&plan, machine).expect_err("refused");
        assert!(err.0.contains("halves=1"), "{err}");
    }
    let module = tessera_ir::text::parse_module(I8_PRODUCT).expect("IR text");
    let (plan, ..) = forced_plan(&module.kernels[0], &b910, |_, _| CubeSchedule {
        base_n: 96,
        base_k: 64,
        l1_k: 128,
        ..halved(1, 1, 1)
    });
    let err = tessera_backend::npu::compile(&plan, &b910).expect_err("refused");
    assert!(err.0.contains("halves=1"), "{err}");
}
