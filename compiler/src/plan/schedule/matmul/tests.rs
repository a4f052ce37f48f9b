//! The matmul scheduler's tests.

use super::*;
use tessera_ir::plan::{MatOperand, Stage, StageKind, Unit, View};

fn stage(dtype: DType, out: DType, (m, k, n): (u64, u64, u64), b_t: bool) -> MatMul {
    let a = View::contiguous(0, dtype, &[m, k]);
    let b = if b_t {
        View {
            strides: vec![1, k],
            ..View::contiguous(1, dtype, &[k, n])
        }
    } else {
        View::contiguous(1, dtype, &[k, n])
    };
    MatMul {
        a: MatOperand {
            view: a,
            transposed: false,
        },
        b: MatOperand {
            view: b,
            transposed: b_t,
        },
        out: View::contiguous(2, out, &[m, n]),
        relu: false,
        scale: None,
        schedule: MatMulSchedule::default(),
    }
}

/// Schedules a matmul as a stage.
fn scheduled(mut mm: MatMul, machine: &Machine) -> Stage {
    let (block_dim, estimate) = schedule(&mut mm, machine).unwrap();
    Stage {
        block_dim,
        estimate,
        ..Stage::new(vec![0], StageKind::MatMul(mm))
    }
}

fn cube(s: &Stage) -> &CubeSchedule {
    let StageKind::MatMul(MatMul {
        schedule: MatMulSchedule::Cube(c),
        ..
    }) = &s.kind
    else {
        panic!("not a cube matmul: {:?}", s.kind)
    };
    c
}

#[test]
fn a_large_f16_gemm_fills_l0c_and_every_core() {
    for (name, tile) in [("910b-like", 128 * 256), ("910-like", 256 * 256)] {
        let machine = Machine::builtin(name).unwrap();
        let s = scheduled(
            stage(DType::F16, DType::F16, (4096, 4096, 4096), false),
            &machine,
        );
        assert_eq!(s.unit(), Unit::Cube);
        let c = cube(&s);
        assert_eq!(c.base_m * c.base_n, tile, "{name}: {c:?}");
        assert_eq!(c.l1_k % c.base_k, 0);
        assert_eq!(s.block_dim, machine.cube_cores());
        assert!(fits(&s.local(), &machine));
        assert!(s.estimate > 0);
        // Deep loads only where the machine has the event ids for them.
        if machine.sync.event_ids < DEEP_EVENT_IDS {
            assert_eq!((c.a_stages, c.b_stages), (1, 1), "{name}: {c:?}");
        }
    }
}

#[test]
fn several_tiles_a_core_stream_an_even_number_of_single_stage_loads() {
    // 4000³ f16 on 910-like: 256 × 256 tiles, 8 a core. With 448-deep
    // stages (9 of them) each tile waits for the last stage of the one
    // before (631 474 simulated cycles); 512-deep ones (8) do not
    // (593 238). The estimates were 0.03 % apart before the model
    // charged odd counts.
    let machine = Machine::builtin("910-like").unwrap();
    let s = scheduled(
        stage(DType::F16, DType::F16, (4000, 4000, 4000), false),
        &machine,
    );
    let c = cube(&s);
    assert_eq!((c.a_stages, c.b_stages), (1, 1), "{c:?}");
    assert_eq!(4000u64.div_ceil(c.l1_k) % 2, 0, "{c:?}");
}

#[test]
fn a_wide_product_takes_its_tiles_in_groups_of_rows() {
    // 4096³ f16 in 128 × 256 tiles on 910b-like's 24 cube cores: row by
    // row, the first round reads A's panels of rows 0 and 1 (128 × 4096
    // f16 = 1 MiB each) and the first 16 B panels (4096 × 256 = 2 MiB
    // each): 2 MiB and 32 MiB at 768 B a cycle; a tile spends 1/3 of
    // its loads on A. In groups of 4 rows, it reads 4 A panels and 6 B
    // panels.
    let machine = Machine::builtin("910b-like").unwrap();
    let mm = stage(DType::F16, DType::F16, (4096, 4096, 4096), false);
    let g = Geometry::of(&mm).unwrap();
    let mib = (1 << 20) as f64 / 768.0;
    let rows = first_touches(&g, (128, 256), (1, 1, None), &machine);
    assert_eq!((rows.rounds, rows.hbm.len()), (22, 16));
    assert_eq!(rows.hbm[0], (2.0 * mib, 32.0 * mib));
    assert!((rows.a_share - 1.0 / 3.0).abs() < 1e-12);
    let groups = first_touches(&g, (128, 256), (4, 1, None), &machine);
    assert_eq!(groups.hbm[0], (4.0 * mib, 12.0 * mib));
    // Against a 36 000-cycle tile, less the round's 24 output tiles
    // (1.5 MiB), B's two thirds: 22 635 cycles. Row by row the first
    // round waits for 32 MiB of B (43 691 cycles), and no later round
    // waits; in groups of 4 (12 MiB of B, 4 of A) no round waits.
    let b_span = (36_000.0 - 1.5 * mib) * 2.0 / 3.0;
    let wait = rows.wait(36_000.0);
    assert!((wait - (32.0 * mib - b_span)).abs() < 1e-6, "{wait}");
    assert_eq!(groups.wait(36_000.0), 0.0);
    // The scheduler takes the smallest group that does not wait.
    let s = scheduled(mm, &machine);
    assert_eq!(cube(&s).group_m, 4);
}

#[test]
fn a_panels_runs_fold_so_their_first_drains_write_whole_lines() {
    // 1024³ f16 on 910b-like in 176 × 128 A panels: 6 × 8 tiles, runs of
    // 2 on 24 cores. Unfolded, core c runs tiles (c / 4, 2p) and then
    // (c / 4, 2p + 1), p = c mod 4: its first tile writes the left half
    // (256 B) of 512-byte line p of each of its rows, so the first round
    // pays for every line of the output (2 MiB) and the second for none.
    // Folded, core c's tiles are columns p and 7 − p: the first round
    // writes columns 0–3, whole lines 0 and 1 of every row (1 MiB), the
    // second lines 2 and 3.
    let machine = Machine::builtin("910b-like").unwrap();
    let mm = stage(DType::F16, DType::F16, (1024, 1024, 1024), false);
    let g = Geometry::of(&mm).unwrap();
    let mib = (1 << 20) as f64 / 768.0;
    let plain = first_touches(&g, (176, 128), (1, 1, Some(2)), &machine);
    assert_eq!(plain.drains, [2.0 * mib, 0.0]);
    let folded = first_touches(&g, (176, 128), (1, 2, Some(2)), &machine);
    assert_eq!(folded.drains, [mib, mib]);
    // FixPipe drains a 176 × 128 f16 tile in 200 + 45 056 / 64 = 904
    // cycles; the first round's wait beyond that is 2 MiB − 904 cycles
    // unfolded and 1 MiB − 904 folded, so the fold saves 1 MiB at
    // 768 B a cycle, 1 365.3 cycles; the scheduler takes it.
    let t = CubeSchedule {
        base_m: 176,
        base_n: 128,
        a_panel: true,
        fold: 2,
        accumulators: 1,
        ..CubeSchedule::default()
    };
    let delta = fold_delta(&mut Memo::default(), &g, &t, &machine);
    assert!((delta + mib).abs() < 1e-6, "{delta}");
    let s = scheduled(mm, &machine);
    let c = cube(&s);
    assert_eq!(
        (c.base_m, c.base_n, c.a_panel, c.fold),
        (176, 128, true, 2),
        "{c:?}"
    );
    // Its f32 product (the -O0 plan) takes 128 × 176 panels: 704-byte
    // output rows, wider than half a line, so no fold is offered.
    let s = scheduled(
        stage(DType::F16, DType::F32, (1024, 1024, 1024), false),
        &machine,
    );
    let c = cube(&s);
    assert!(c.a_panel && c.fold <= 1, "{c:?}");
}

#[test]
fn a_short_k_alternates_two_accumulators_and_a_long_one_does_not() {
    // Attention's Q·Kᵀ on 910b-like (K = 128): a 128 × 128 tile's 512
    // mmad cycles against its 1 224-cycle FixPipe epilogue; two fit
    // L0C's 128 KiB. At K = 4096 the epilogue is a few percent of the
    // tile.
    let machine = Machine::builtin("910b-like").unwrap();
    let short = scheduled(
        stage(DType::F16, DType::F32, (4096, 128, 4096), true),
        &machine,
    );
    assert_eq!(cube(&short).accumulators, 2, "{:?}", cube(&short));
    assert_eq!(cube(&short).layout.acc.copies, 2);
    assert!(fits(&short.local(), &machine));
    let long = scheduled(
        stage(DType::F16, DType::F16, (4096, 4096, 4096), false),
        &machine,
    );
    assert_eq!(cube(&long).accumulators, 1);
}

#[test]
fn dtypes_the_cube_lacks_go_to_the_vector_unit() {
    let machine = Machine::builtin("910-like").unwrap();
    for dtype in [DType::BF16, DType::F32] {
        for b_t in [false, true] {
            let s = scheduled(stage(dtype, DType::F32, (1000, 17, 15), b_t), &machine);
            assert_eq!(s.unit(), Unit::Vector);
            let StageKind::MatMul(MatMul {
                schedule: MatMulSchedule::Vector(v),
                ..
            }) = &s.kind
            else {
                panic!("not a vector matmul");
            };
            assert!(v.cols.is_multiple_of(64));
            assert!(fits(&s.local(), &machine));
        }
    }
    // The same dtypes use the cube where it has them.
    let machine = Machine::builtin("910b-like").unwrap();
    let s = scheduled(
        stage(DType::BF16, DType::F32, (1000, 17, 15), true),
        &machine,
    );
    assert_eq!(s.unit(), Unit::Cube);
}

#[test]
fn awkward_shapes_get_tiles_that_fit() {
    for name in Machine::builtin_names() {
        let machine = Machine::builtin(name).unwrap();
        for dtype in [DType::F16, DType::I8, DType::F32] {
            for mkn in [(1, 1, 1), (15, 1000, 17), (1000, 17, 1), (17, 4097, 15)] {
                let out = if dtype == DType::I8 {
                    DType::I32
                } else {
                    DType::F32
                };
                let s = scheduled(stage(dtype, out, mkn, false), &machine);
                assert!(fits(&s.local(), &machine), "{name} {dtype} {mkn:?}");
                let StageKind::MatMul(mm) = &s.kind else {
                    panic!("not a matmul: {:?}", s.kind)
                };
                // A split stage runs every part of each tile as a unit.
                let (units, cores) = match &mm.schedule {
                    MatMulSchedule::Cube(c) => (c.tiles * c.parts(), machine.cube_cores()),
                    MatMulSchedule::Vector(v) => (v.tiles, machine.vector_cores()),
                };
                assert_eq!(u64::from(s.block_dim), units.min(u64::from(cores)));
            }
        }
    }
}

#[test]
fn the_busiest_core_runs_whole_tiles_and_a_strip() {
    // 1024³ f16 on 910b-like's 24 cube cores. 128 × 256 tiles: 32, so a
    // whole round and 8 tiles cut into ⌊24 / 8⌋ = 3 strips of
    // ⌈256 / 3⌉ = 86 → 96 columns; the strip's loads (128 + 96 of 384
    // rows and columns a K) outweigh its mmads (96 of 256 columns), so
    // the busiest core counts one round and the loads' share of a tile's
    // time: the tile is bound by its loads, and takes them and a twentieth
    // of its cube work, so the share is below 224/384 (and above the
    // mmads' 96/256). 96 × 256 tiles: 44, and 20 in the last round leave
    // no room for strips: 2 rounds.
    let machine = Machine::builtin("910b-like").unwrap();
    let g = Geometry::of(&stage(DType::F16, DType::F16, (1024, 1024, 1024), false)).unwrap();
    let t = |base_m| CubeSchedule {
        base_m,
        base_n: 256,
        base_k: 64,
        l1_k: 256,
        a_stages: 1,
        b_stages: 1,
        ..CubeSchedule::default()
    };
    let tail = strips(&g, &t(128), &machine).expect("strips");
    assert_eq!((tail.parts, tail.width), (3, 96));
    let rounds = cube_core_parts(&g, &t(128), &machine).rounds;
    assert!(
        rounds > 1.0 + 96.0 / 256.0 && rounds < 1.0 + 224.0 / 384.0,
        "{rounds}"
    );
    assert!(strips(&g, &t(96), &machine).is_none());
    assert_eq!(cube_core_parts(&g, &t(96), &machine).rounds, 2.0);
    // Of the tiles without an A panel the model takes these strips
    // (30 830 simulated cycles against the 96-row tiles' 32 419; the
    // scheduler takes an A panel, `a_short_k_keeps_a_panel_of_a_in_l1`).
    let plain = cube_candidates(&g, &machine)
        .into_iter()
        .find(|(_, c)| !c.a_panel)
        .expect("a candidate")
        .1;
    assert_eq!((plain.base_m, plain.base_n), (128, 256), "{plain:?}");
    assert!(strips(&g, &plain, &machine).is_some());
}

#[test]
fn tail_strips_are_staggered_where_the_drain_is_worth_it() {
    // (machine, out dtype, m k n, staggered): f16 2048³ on 910b-like, a
    // round's drain over HBM 2 048 cycles against FixPipe's 1 224, about a
    // tenth of a tile; K = 11008 makes it a fiftieth; 910-like's epilogue
    // goes through UB; an i32 output is not staggered.
    for (name, dtype, out, (m, k, n), want) in [
        (
            "910b-like",
            DType::F16,
            DType::F16,
            (2048, 2048, 2048),
            true,
        ),
        (
            "910b-like",
            DType::F16,
            DType::F16,
            (4096, 11008, 4096),
            false,
        ),
        (
            "910-like",
            DType::F16,
            DType::F16,
            (4096, 4096, 11008),
            false,
        ),
        (
            "910b-like",
            DType::I8,
            DType::I32,
            (4096, 4096, 4096),
            false,
        ),
    ] {
        let machine = Machine::builtin(name).unwrap();
        let s = scheduled(stage(dtype, out, (m, k, n), false), &machine);
        let StageKind::MatMul(mm) = &s.kind else {
            panic!("not a matmul: {:?}", s.kind)
        };
        let g = Geometry::of(mm).unwrap();
        // Each has the strips that could be staggered.
        assert!(
            cube(&s).staggered(&g, u64::from(s.block_dim)).is_some(),
            "{name} {m}×{k}×{n}: {:?}",
            cube(&s)
        );
        let mut plan = tessera_ir::plan::Plan {
            kernel: "t".into(),
            machine: name.into(),
            buffers: Vec::new(),
            workspace: 0,
            stages: vec![s],
        };
        stagger_strips(&mut plan, &machine);
        assert_eq!(cube(&plan.stages[0]).stagger, want, "{name} {m}×{k}×{n}");
    }
}

#[test]
fn a_short_k_keeps_a_panel_of_a_in_l1() {
    // f16 1024³ on 910b-like: 48 tiles of 176 × 128, two a core, each
    // core's pair in one tile row, so A (176 × 1024, 352 KiB) loads once
    // a core. Every panel candidate is one the backend takes.
    let machine = Machine::builtin("910b-like").unwrap();
    let s = scheduled(
        stage(DType::F16, DType::F16, (1024, 1024, 1024), false),
        &machine,
    );
    let t = cube(&s);
    assert!(t.a_panel, "{t:?}");
    assert_eq!(t.layout.a_l1.copies, 1);
    let StageKind::MatMul(mm) = &s.kind else {
        panic!("not a matmul: {:?}", s.kind)
    };
    let g = Geometry::of(mm).unwrap();
    assert!(t.panel_units(&g, u64::from(s.block_dim)) > 1, "{t:?}");
    assert!(
        cube_candidates(&g, &machine)
            .iter()
            .filter(|(_, c)| c.a_panel)
            .all(|(_, c)| c.check_panel(&g).is_ok()
                && c.panel_stages(g.k) <= u64::from(machine.sync.event_ids))
    );
}

/// f16 1024³ on 910-like and a cube schedule of it, one accumulator.
fn gemm_1024_910(base_m: u64, base_n: u64, a_panel: bool) -> (Geometry, CubeSchedule, Machine) {
    let machine = Machine::builtin("910-like").unwrap();
    let g = Geometry::of(&stage(DType::F16, DType::F16, (1024, 1024, 1024), false)).unwrap();
    let t = CubeSchedule {
        base_m,
        base_n,
        base_k: 64,
        l1_k: 256,
        a_stages: 1,
        b_stages: 1,
        epi_cols: base_n,
        tail_parts: 1,
        accumulators: 1,
        a_panel,
        ..CubeSchedule::default()
    };
    (g, t, machine)
}

#[test]
fn a_loads_bound_tile_ends_with_its_last_stage_and_its_drain() {
    // One 128 × 256 tile a core (32 tiles, 32 cores), K = 1024 in four
    // L1 stages of 256, steps of 64. Its loads (10 455.4 cycles) exceed
    // its cube work (16 steps of 6 + 8·4·16 = 518 cycles, 16 cycles of
    // events each, and the 256-cycle L0C → UB move: 8 800) by more than
    // a twentieth, so it ends with the last stage's 4 steps and the
    // move: 4 · (518 + 16) + 256 = 2 392 (its first stage's loads,
    // 87.5 + 819.2 + 68.75 + 1 638.4 + an MTE1 step of 242 = 2 855.85,
    // overlap the loads after them). Then MTE3 writes its 64 KiB in one
    // chunk: 200 + 65 536 / 64 = 1 224 cycles, while the 32 cores' 2 MiB
    // take 2 048 at 1 024 bytes a cycle: 824 more for HBM.
    let (g, t, machine) = gemm_1024_910(128, 256, false);
    let p = cube_core_parts(&g, &t, &machine);
    assert_eq!(p.rounds, 1.0);
    assert!((p.ends - (2392.0 + 1224.0)).abs() < 1e-9, "{p:?}");
    assert_eq!(p.hbm, 824.0);
    // Tiles of 128 × 128 in A panels, two a core (the first tile row's
    // A loaded once): the second tile's loads are B's alone, and the
    // model ranks them first, as the simulator does (25 444 cycles
    // against 26 251 for one 128 × 256 tile a core).
    let first = cube_candidates(&g, &machine)[0].1.clone();
    assert!(first.a_panel, "{first:?}");
    assert_eq!((first.base_m, first.base_n), (128, 128), "{first:?}");
}

#[test]
fn b_bursts_pay_for_misalignment_where_their_tile_column_starts_off_it() {
    // Row-major B, 128 columns of f16 a tile: 256-byte bursts, so every
    // other tile column starts on a 512-byte boundary. A tile streams
    // 1 024 · 128 · 2 bytes of B at 80 bytes a cycle: 3 276.8 cycles
    // aligned, 3 276.8 / 0.7 not; half of each is 1 638.4 · 0.3 / 0.7 =
    // 702.17 cycles less than judging every burst unaligned. The tile is
    // bound by its loads, so its cycles drop by as much.
    let (g, t, machine) = gemm_1024_910(128, 128, false);
    let (bursts, shared) = core_parts(&g, &t, &machine, true);
    let (whole, _) = core_parts(&g, &t, &machine, false);
    assert!(shared);
    let gain = 1638.4 * (1.0 / 0.7 - 1.0);
    assert!(
        (whole.tile - bursts.tile - gain).abs() < 1e-6,
        "{whole:?} {bursts:?}"
    );
    // Candidates HBM binds alike keep the whole-tile judgement as their
    // order.
    assert_eq!(cube_core_parts(&g, &t, &machine).key, whole.key);
}

#[test]
fn halves_go_to_long_k_products_whose_drains_the_cube_waits_for() {
    let b910 = Machine::builtin("910b-like").unwrap();
    // f16 6144³: 128 × 256 tiles, steps of 128 (whose B no longer fits
    // L0B twice without halves), the halves' model below the plain form's.
    let s = scheduled(
        stage(DType::F16, DType::F16, (6144, 6144, 6144), false),
        &b910,
    );
    let c = cube(&s);
    assert_eq!(
        (c.base_m, c.base_n, c.base_k, c.halves),
        (128, 256, 128, true),
        "{c:?}"
    );
    let StageKind::MatMul(mm) = &s.kind else {
        unreachable!("scheduled above")
    };
    let g = Geometry::of(mm).unwrap();
    let plain = CubeSchedule {
        base_k: 64,
        halves: false,
        ..c.clone()
    };
    assert!(cube_cost(&g, c, &b910) < cube_cost(&g, &plain, &b910));
    // Not offered: one L1 stage a tile (K = 128); MTE1 not 5 % ahead of
    // the cube (i8 in 256 × 128 tiles: A loaded twice, 548 cycles a step
    // against the cube's 524); a drain under 2 % of a tile's cube work
    // (K = 11008: 1 224 cycles against 89 k); fewer than two whole tiles a
    // core (1024³).
    let geo = |dt: DType, out: DType, mkn: (u64, u64, u64)| {
        Geometry::of(&stage(dt, out, mkn, false)).unwrap()
    };
    let f16 = geo(DType::F16, DType::F16, (4096, 128, 4096));
    assert!(!halves_pay(&f16, (128, 256, 128), 256, &b910));
    let i8 = geo(DType::I8, DType::I32, (4096, 4096, 4096));
    assert!(!halves_pay(&i8, (256, 128, 128), 512, &b910));
    assert!(halves_pay(
        &geo(DType::F16, DType::F16, (4096, 4096, 4096)),
        (128, 256, 128),
        256,
        &b910
    ));
    let long = geo(DType::F16, DType::F16, (4096, 11008, 4096));
    assert!(!halves_pay(&long, (128, 256, 128), 256, &b910));
    let small = geo(DType::F16, DType::F32, (1024, 1024, 1024));
    assert!(!halves_pay(&small, (128, 256, 128), 256, &b910));
    // Nor on a coupled machine (no FixPipe).
    let s = scheduled(
        stage(DType::F16, DType::F16, (6144, 6144, 6144), false),
        &Machine::builtin("910-like").unwrap(),
    );
    assert!(!cube(&s).halves);
}
