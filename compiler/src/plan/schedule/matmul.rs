//! Scheduling matmul stages: the unit, the tiles of every level and the
//! block count, chosen by an analytical cost model of the machine.
//!
//! **Cube** (when the cube supports the input dtype). Candidates are L0C
//! tiles `base_m × base_n`, L0 steps `base_k` and L1 stages `l1_k` (a
//! multiple of `base_k`); a candidate must fit every buffer double-buffered
//! (L1 A/B stages, L0A/L0B steps; one L0C accumulator; on coupled machines
//! two UB epilogue chunks). Its cost, per core (`block_dim = min(tiles,
//! cube cores)`, tiles dealt round-robin, so the busiest core runs
//! `⌈tiles / block_dim⌉` of them):
//! - per L0 step: the cube `head + ⌈m/16⌉⌈k/k0⌉⌈n/16⌉ × cycles_per_fractal`
//!   against the MTE1 loads `fixed + bytes / rate` (L0A and L0B); double
//!   buffering overlaps them, so a step costs the larger;
//! - per L1 stage: MTE2 `fixed + bytes / rate` for A and B (×1/0.7 for
//!   rows off 512-byte alignment; the fixed cost of L2 hits once other tiles
//!   have touched the lines), against the stage's steps; an operand loaded
//!   two stages deep (`a_stages`/`b_stages`) pays its fixed cost once per
//!   two stages. Deep loads are offered when K is a multiple of `4 · l1_k`
//!   (whole iterations of the K loop they need) on machines with 8 event ids
//!   per pipe pair;
//! - per tile: the stages, plus the pipeline fill (first stage's loads and
//!   first step's MTE1), plus the epilogue the cube waits for (FixPipe
//!   `fixed + bytes / rate`, or the L0C → UB move of the first chunk);
//! - the whole stage is at least the chip's GM traffic (each input once,
//!   the output once) over `gm.chip_bytes_per_cycle`.
//!
//! **Vector** (the cube lacks the dtype: bf16/f32 on `910-like`): output
//! tiles `rows × cols` over `k_chunk`-deep chunks; per k, `rows` scalar
//! loads and `vec.muls` of `cols / 64` repeats, one `vec.add` over the tile,
//! two barriers; per chunk the MTE2 loads and the B widening/gather.
//! The fitting candidate with the least estimate wins.
//!
//! **Last round.** When the cube tiles do not divide evenly over the cores
//! (`tiles = q·cores + r`, `0 < r`, `r·2 <= cores`), the last `r` tiles are
//! cut into `⌊cores / r⌋` column strips (`tail_parts`, see
//! [`CubeTiles::tail`]) so the busiest core runs `q` tiles and a strip
//! instead of `q + 1` tiles (4096³ f16 on 910b-like, single-stage loads:
//! 843 751 → 836 409 cycles). The estimate does not model it.

use super::fits;
use tessera_backend::npu::matmul::{
    CubeTiles, DEEP_STAGES, Geometry, Tail, VecTiles, cube_layout, deep_loads_fit, vector_layout,
};
use tessera_ir::DType;
use tessera_ir::plan::{Stage, Unit};
use tessera_sim::{Dt, Machine, Organisation};

fn dt(d: DType) -> Dt {
    match d {
        DType::F16 => Dt::F16,
        DType::BF16 => Dt::Bf16,
        DType::F32 => Dt::F32,
        DType::I8 => Dt::I8,
        DType::I32 => Dt::I32,
        DType::Bool => Dt::B8,
    }
}

fn size(d: DType) -> f64 {
    d.size_bytes() as f64
}

/// Chooses the unit, tiles, blocks and buffers of a matmul stage.
pub fn schedule(stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    let g = Geometry::of(&stage.kind)?;
    if machine.cube_dtype(dt(g.dtype)).is_some() {
        stage.unit = Unit::Cube;
        schedule_cube(stage, &g, machine)
    } else {
        stage.unit = Unit::Vector;
        schedule_vector(stage, &g, machine)
    }
}

/// The chip-wide GM traffic bound: inputs read once, output written once.
fn chip_bound(g: &Geometry, machine: &Machine) -> f64 {
    let b = g.batches() as f64;
    let s = size(g.dtype);
    let bytes = b * ((g.m * g.k + g.k * g.n) as f64 * s + (g.m * g.n) as f64 * size(g.out));
    bytes / machine.gm.chip_bytes_per_cycle
}

/// A GM transfer's cycles: fixed cost plus streaming, slower off alignment.
fn gm_cycles(bytes: f64, rate: f64, fixed: f64, aligned: bool, machine: &Machine) -> f64 {
    let f = if aligned {
        1.0
    } else {
        machine.gm.unaligned_factor
    };
    fixed + bytes / (rate * f)
}

/// The estimated cycles of a cube candidate (launch excluded).
pub fn cube_cost(g: &Geometry, t: &CubeTiles, machine: &Machine) -> f64 {
    let s = size(g.dtype);
    let so = size(g.out);
    let c0 = g.c0();
    let cpf = machine
        .cube_dtype(dt(g.dtype))
        .map_or(1.0, |c| f64::from(c.cycles_per_fractal));
    let r16 = |x: u64| x.div_ceil(16) * 16;
    // Effective tile extents (a tile never exceeds the padded matrix).
    let bm = t.bm.min(r16(g.m));
    let bn = t.bn.min(r16(g.n));
    let kpad = g.k.div_ceil(c0) * c0;
    let kl1 = t.kl1.min(kpad.div_ceil(t.bk) * t.bk);
    let bk = t.bk.min(kpad);
    let tm = g.m.div_ceil(t.bm);
    let tn = g.n.div_ceil(t.bn);
    let tiles = g.batches() * tm * tn;
    let cores = u64::from(machine.cube_cores());
    let block_dim = tiles.min(cores).max(1);
    let rounds = tiles.div_ceil(block_dim) as f64;
    // L0 step.
    let cube_step = f64::from(machine.cube.head_cycles)
        + (bm.div_ceil(16) * bk.div_ceil(c0) * bn.div_ceil(16)) as f64 * cpf;
    let l0a = &machine.dma.l1_to_l0a;
    let l0b = &machine.dma.l1_to_l0b;
    let mte1_step = f64::from(l0a.fixed_cycles)
        + (bm * bk) as f64 * s / l0a.bytes_per_cycle
        + f64::from(l0b.fixed_cycles)
        + (bk * bn) as f64 * s / l0b.bytes_per_cycle;
    let step = cube_step.max(mte1_step);
    // L1 stage: A and B from GM; lines other tiles already touched hit L2.
    let p = &machine.dma.gm_to_l1;
    let hit = f64::from(machine.gm.l2_hit_fixed_cycles);
    let first = f64::from(p.fixed_cycles);
    let fixed_a = if tn > 1 {
        (first + hit * (tn - 1) as f64) / tn as f64
    } else {
        first
    };
    let fixed_b = if tm > 1 {
        (first + hit * (tm - 1) as f64) / tm as f64
    } else {
        first
    };
    let al = machine.gm.aligned_bytes;
    let (a_row_bytes, b_row_bytes) = (g.a_row * s as u64, g.b_row * s as u64);
    let a_aligned =
        (a_row_bytes.is_multiple_of(al) || bm.min(g.m) == 1) && (kl1 * s as u64).is_multiple_of(al);
    let b_aligned = b_row_bytes.is_multiple_of(al) && (bn * s as u64).is_multiple_of(al);
    // Per load: A `a_stages · l1_k` deep, B `b_stages · l1_k`; a tile
    // streams exactly K (the last loads and steps are partial).
    let (ka, kb) = (kl1 * t.sa, kl1 * t.sb);
    // A load of `k` K of an operand with `width` rows (A) or columns (B).
    let load = |width: u64, k: u64, fixed: f64, aligned: bool| {
        gm_cycles(
            (width * k) as f64 * s,
            p.bytes_per_cycle,
            fixed,
            aligned,
            machine,
        )
    };
    let a_load = |k: u64| load(bm, k, fixed_a, a_aligned);
    let b_load = |k: u64| load(bn, k, fixed_b, b_aligned);
    let compute = (g.k as f64 / bk as f64).max(1.0) * step;
    let loads = (a_load(g.k) - fixed_a)
        + g.k.div_ceil(ka) as f64 * fixed_a
        + (b_load(g.k) - fixed_b)
        + g.k.div_ceil(kb) as f64 * fixed_b;
    // What the cube waits for at the end of a tile (single accumulator).
    let epi = match machine.organisation {
        Organisation::Split => machine.dma.l0c_to_gm.as_ref().map_or(0.0, |d| {
            f64::from(d.fixed_cycles) + (bm * bn) as f64 * so / d.bytes_per_cycle
        }),
        Organisation::Coupled => machine.dma.l0c_to_ub.as_ref().map_or(0.0, |d| {
            f64::from(d.fixed_cycles) + (bm * bn) as f64 * so / d.bytes_per_cycle
        }),
    };
    // Per step, the events between MTE1 and the cube add latency.
    let sync = 16.0 * (g.k as f64 / bk as f64).max(1.0);
    // Overlap is imperfect: the less loaded side still shows through a little.
    let (hi, lo) = if compute + sync + epi > loads {
        (compute + sync + epi, loads)
    } else {
        (loads, compute + sync + epi)
    };
    let tile = hi + 0.05 * lo;
    // The pipeline fills once: the next tile's loads overlap this one's end.
    let fill = a_load(ka.min(g.k)) + b_load(kb.min(g.k)) + mte1_step;
    (rounds * tile + fill).max(chip_bound(g, machine))
}

/// Tile extents to try: multiples of 16 up to `limit` (at most 512).
fn candidates(limit: u64) -> Vec<u64> {
    (1..=32u64)
        .map(|i| 16 * i)
        .filter(|&x| x <= limit.max(16))
        .collect()
}

/// Event ids per pipe pair a machine needs before the scheduler loads an
/// operand two stages deep: A's and B's L1 copies then have separate life
/// cycles, four buffer copies each way between MTE2 and MTE1 plus the
/// combinations the sync pass merges; 4 ids (910-like) do not cover them.
const DEEP_EVENT_IDS: u32 = 8;

fn schedule_cube(stage: &mut Stage, g: &Geometry, machine: &Machine) -> Result<(), String> {
    let coupled = machine.organisation == Organisation::Coupled;
    let c0 = g.c0();
    let kq = 16u64.max(c0);
    let r16 = |x: u64| x.div_ceil(16) * 16;
    let kpad = g.k.div_ceil(kq) * kq;
    let ub = machine.memory.ub.bytes;
    let so = g.out.size_bytes() as u64;
    let deep_ok = machine.sync.event_ids >= DEEP_EVENT_IDS;
    let mut best: Option<(f64, CubeTiles)> = None;
    for &bm in &candidates(r16(g.m)) {
        for &bn in &candidates(r16(g.n)) {
            if bm * bn * 4 > machine.memory.l0c.bytes {
                continue;
            }
            // The widest epilogue chunk that fits two UB copies.
            let ec = if coupled {
                let mut ec = bn;
                while ec > 16 && 2 * bm * ec * so > ub {
                    ec -= 16;
                }
                ec
            } else {
                0
            };
            for bk in [kq, 32, 64, 128, 256] {
                if bk < kq || bk % kq != 0 || (bk > kpad && bk != kq) {
                    continue;
                }
                for steps in 1..=16u64 {
                    let kl1 = bk * steps;
                    if kl1 > kpad.div_ceil(bk) * bk && steps > 1 {
                        break;
                    }
                    // One operand may load two stages at once when K is
                    // whole iterations of the K loop that needs (and the
                    // machine has the event ids, see above).
                    let depths: &[(u64, u64)] = if deep_ok && deep_loads_fit(g.k, kl1) {
                        &[(1, 1), (DEEP_STAGES, 1), (1, DEEP_STAGES)]
                    } else {
                        &[(1, 1)]
                    };
                    for &(sa, sb) in depths {
                        let t = CubeTiles {
                            bm,
                            bn,
                            bk,
                            kl1,
                            sa,
                            sb,
                            ec,
                            tail: 1,
                        };
                        if !fits(&cube_layout(g, &t, machine), machine) {
                            continue;
                        }
                        let cost = cube_cost(g, &t, machine);
                        if best.is_none_or(|(c, _)| cost < c) {
                            best = Some((cost, t));
                        }
                    }
                }
            }
        }
    }
    let Some((cost, t)) = best else {
        stage.local = cube_layout(
            g,
            &CubeTiles {
                bm: 16,
                bn: 16,
                bk: kq,
                kl1: kq,
                sa: 1,
                sb: 1,
                ec: 16,
                tail: 1,
            },
            machine,
        );
        return Err("even the smallest matmul tiles do not fit the cube's buffers".into());
    };
    let tiles = g.batches() * g.m.div_ceil(t.bm) * g.n.div_ceil(t.bn);
    let cores = u64::from(machine.cube_cores());
    stage.block_dim = tiles.min(cores).max(1) as u32;
    // Balance the last round: its `r` tiles become `r · parts` column strips
    // so every core has work and the busiest runs one strip, not one tile.
    let mut t = t;
    if tiles > cores && !tiles.is_multiple_of(cores) {
        let parts = (cores / (tiles % cores)).min(t.bn / 16);
        let cut = CubeTiles { tail: parts, ..t };
        if parts > 1 && Tail::of(g, &cut, cores).is_some() {
            t = cut;
        }
    }
    t.store(&mut stage.schedule);
    stage.schedule.set("tiles", tiles);
    stage.local = cube_layout(g, &t, machine);
    stage.estimate = cost as u64;
    Ok(())
}

/// The estimated cycles of a vector candidate (launch excluded).
pub fn vector_cost(g: &Geometry, t: &VecTiles, machine: &Machine) -> f64 {
    let o = &machine.vector.ops;
    let head = f64::from(machine.vector.head_cycles);
    let s = size(g.dtype);
    let rows = t.rows.min(g.m) as f64;
    let reps = (t.cols / 64) as f64;
    let tiles = g.batches() * g.m.div_ceil(t.rows) * g.n.div_ceil(t.cols);
    let cores = u64::from(machine.vector_cores());
    let block_dim = tiles.min(cores).max(1);
    let rounds = tiles.div_ceil(block_dim) as f64;
    let kc = t.kc.min(g.k) as f64;
    // Per k: the scalar unit loads each a[i, k] and issues a muls; the
    // vector unit runs the muls, then (after a barrier) the add.
    let scalar = rows * (f64::from(machine.scalar.ub_load_cycles) + 6.0) + 8.0;
    let vec = rows * reps * f64::from(o.scalar.per_repeat)
        + t.rows as f64 * reps * f64::from(o.binary.per_repeat)
        + 2.0 * (head + f64::from(o.binary.tail));
    let per_k = vec.max(scalar);
    // Per chunk: loads and the B widening / gather.
    let p = &machine.dma.gm_to_ub;
    let mte2 =
        2.0 * f64::from(p.fixed_cycles) + (rows * kc + kc * t.cols as f64) * s / p.bytes_per_cycle;
    let widen = if g.dtype.size_bytes() != 4 || g.b_t {
        (t.kc * t.cols / 64) as f64 * f64::from(o.cast.per_repeat.max(o.gather.per_repeat)) + head
    } else {
        0.0
    };
    let chunks = g.k.div_ceil(t.kc) as f64;
    let chunk = (kc * per_k + widen).max(mte2);
    let store = f64::from(machine.dma.ub_to_gm.fixed_cycles)
        + rows * t.cols as f64 * size(g.out) / machine.dma.ub_to_gm.bytes_per_cycle;
    let tile = chunks * chunk + mte2 + (t.rows * t.cols / 64) as f64 * 2.0 + store;
    (rounds * tile).max(chip_bound(g, machine))
}

fn schedule_vector(stage: &mut Stage, g: &Geometry, machine: &Machine) -> Result<(), String> {
    if !matches!(g.dtype, DType::F32 | DType::BF16 | DType::I8) {
        return Err(format!(
            "neither the cube nor the vector matmul of {} handles {} inputs",
            machine.name, g.dtype
        ));
    }
    let mut best: Option<(f64, VecTiles)> = None;
    let cols_max = g.n.div_ceil(64) * 64;
    for rows in [1u64, 2, 4, 8, 16, 32, 64, 128] {
        if rows > g.m.next_power_of_two() {
            break;
        }
        for cols in [64u64, 128, 256, 512, 1024, 2048] {
            if cols > cols_max {
                break;
            }
            for kc in [8u64, 16, 32, 64, 128] {
                if kc > g.k.next_power_of_two().max(8) {
                    break;
                }
                let t = VecTiles { rows, cols, kc };
                if !fits(&vector_layout(g, &t, machine), machine) {
                    continue;
                }
                let cost = vector_cost(g, &t, machine);
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((cost, t));
                }
            }
        }
    }
    let Some((cost, t)) = best else {
        stage.local = vector_layout(
            g,
            &VecTiles {
                rows: 1,
                cols: 64,
                kc: 8,
            },
            machine,
        );
        return Err("even the smallest vector matmul tiles do not fit UB".into());
    };
    let tiles = g.batches() * g.m.div_ceil(t.rows) * g.n.div_ceil(t.cols);
    stage.block_dim = tiles.min(u64::from(machine.vector_cores())).max(1) as u32;
    t.store(&mut stage.schedule);
    stage.schedule.set("tiles", tiles);
    stage.local = vector_layout(g, &t, machine);
    stage.estimate = cost as u64;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_ir::plan::{MatOperand, Schedule, StageKind, View};

    fn stage(dtype: DType, out: DType, (m, k, n): (u64, u64, u64), b_t: bool) -> Stage {
        let a = View::contiguous(0, dtype, &[m, k]);
        let b = if b_t {
            View {
                strides: vec![1, k],
                ..View::contiguous(1, dtype, &[k, n])
            }
        } else {
            View::contiguous(1, dtype, &[k, n])
        };
        Stage {
            nodes: vec![0],
            kind: StageKind::MatMul {
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
            },
            unit: Unit::Cube,
            block_dim: 1,
            schedule: Schedule::default(),
            local: Vec::new(),
            estimate: 0,
        }
    }

    #[test]
    fn a_large_f16_gemm_fills_l0c_and_every_core() {
        for (name, tile) in [("910b-like", 128 * 256), ("910-like", 256 * 256)] {
            let machine = Machine::builtin(name).unwrap();
            let mut s = stage(DType::F16, DType::F16, (4096, 4096, 4096), false);
            schedule(&mut s, &machine).unwrap();
            let p = |n: &str| s.schedule.get(n);
            assert_eq!(s.unit, Unit::Cube);
            let p1 = |n: &str| p(n).unwrap();
            assert_eq!(
                p1("base_m") * p1("base_n"),
                tile,
                "{name}: {:?}",
                s.schedule
            );
            assert_eq!(p1("l1_k") % p1("base_k"), 0);
            assert_eq!(s.block_dim, machine.cube_cores());
            assert!(fits(&s.local, &machine));
            assert!(s.estimate > 0);
            // Deep loads only where the machine has the event ids for them.
            let deep = p("a_stages").max(p("b_stages"));
            if machine.sync.event_ids < DEEP_EVENT_IDS {
                assert!(deep.is_none(), "{name}: {:?}", s.schedule);
            }
        }
    }

    #[test]
    fn dtypes_the_cube_lacks_go_to_the_vector_unit() {
        let machine = Machine::builtin("910-like").unwrap();
        for dtype in [DType::BF16, DType::F32] {
            for b_t in [false, true] {
                let mut s = stage(dtype, DType::F32, (1000, 17, 15), b_t);
                schedule(&mut s, &machine).unwrap();
                assert_eq!(s.unit, Unit::Vector);
                assert!(s.schedule.get("cols").unwrap().is_multiple_of(64));
                assert!(fits(&s.local, &machine));
            }
        }
        // The same dtypes use the cube where it has them.
        let machine = Machine::builtin("910b-like").unwrap();
        let mut s = stage(DType::BF16, DType::F32, (1000, 17, 15), true);
        schedule(&mut s, &machine).unwrap();
        assert_eq!(s.unit, Unit::Cube);
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
                    let mut s = stage(dtype, out, mkn, false);
                    schedule(&mut s, &machine).unwrap();
                    assert!(fits(&s.local, &machine), "{name} {dtype} {mkn:?}");
                    let tiles = s.schedule.get("tiles").unwrap();
                    let cores = match s.unit {
                        Unit::Cube => machine.cube_cores(),
                        Unit::Vector => machine.vector_cores(),
                    };
                    assert_eq!(u64::from(s.block_dim), tiles.min(u64::from(cores)));
                }
            }
        }
    }
}
