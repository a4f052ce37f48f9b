//! The vector path of a matmul stage (the cube lacks the dtype): the
//! outer-product and dot-product forms' buffers, estimates and the choice
//! between their candidates (see the parent module's docs).

use super::{chip_bound, size};
use crate::plan::schedule::{Allocator, fits};
use tessera_ir::DType;
use tessera_ir::plan::matmul::{Geometry, dot_across_outputs, vec_pitch};
use tessera_ir::plan::{MatMul, MatMulSchedule, MemSpace, VecMatB, VecMatLayout, VecMatSchedule};
use tessera_sim::Machine;

/// The UB buffers of a vector matmul.
pub fn vector_layout(g: &Geometry, t: &VecMatSchedule, machine: &Machine) -> VecMatLayout {
    let align = machine.memory.ub.align;
    let (s, acc) = (g.dtype.size_bytes() as u64, g.acc());
    let p = vec_pitch(g, t);
    let mut l = Allocator::default();
    let mut add = |bytes: u64, copies: u32| l.add(MemSpace::Ub, bytes, copies, align);
    let widen = g.dtype != acc;
    if t.dot {
        let (n, kc) = (g.n, t.k_chunk);
        let a = add(t.rows * p.a * s, 2);
        let a_wide = widen.then(|| add(t.rows * p.a * 4, 1));
        let b_elems = if g.b_t { n * p.bt } else { kc * p.b };
        let b = VecMatB::Columns {
            b: add(b_elems * s, 2),
            widened: widen.then(|| add(b_elems * 4, 1)),
            gather: (!g.b_t).then(|| (add(n * kc * 4, 1), add(n * kc * 4, 1))),
        };
        // Every output's `k_chunk` lanes; at the tile's end `prod` takes
        // their folds (64 lanes an output) and `acc` the sums (a row of
        // the output's pitch each).
        let seg = t.rows * n * kc * 4;
        return VecMatLayout {
            a,
            a_wide,
            b,
            prod: add(seg, 1),
            acc: add(seg, 1),
            out: add(t.rows * p.out * g.out.size_bytes() as u64, 1),
        };
    }
    let a_rows = if g.a_t { t.k_chunk } else { t.rows };
    let a = add(a_rows * p.a * s, 2);
    let b = if g.b_t {
        VecMatB::Transposed {
            bt: add(t.cols * p.bt * s, 2),
            widened: widen.then(|| add(t.cols * p.bt * 4, 1)),
            idx: add(t.k_chunk * t.cols * 4, 1),
            gathered: add(t.k_chunk * t.cols * 4, 1),
        }
    } else {
        VecMatB::RowMajor {
            b: add(t.k_chunk * t.cols * s, 2),
            widened: widen.then(|| add(t.k_chunk * t.cols * 4, 1)),
        }
    };
    VecMatLayout {
        a,
        a_wide: None,
        b,
        prod: add(t.rows * t.cols * 4, 1),
        acc: add(t.rows * t.cols * 4, 1),
        out: add(t.rows * t.cols * g.out.size_bytes() as u64, 1),
    }
}

/// The estimated cycles of a vector candidate (launch excluded).
pub fn vector_cost(g: &Geometry, t: &VecMatSchedule, machine: &Machine) -> f64 {
    if t.dot {
        return dot_cost(g, t, machine);
    }
    let o = &machine.vector.ops;
    let head = f64::from(machine.vector.head_cycles);
    let s = size(g.dtype);
    let rows = t.rows.min(g.m) as f64;
    let reps = (t.cols / 64) as f64;
    let tiles = g.batches() * g.m.div_ceil(t.rows) * g.n.div_ceil(t.cols);
    let cores = u64::from(machine.vector_cores());
    let block_dim = tiles.min(cores).max(1);
    let rounds = tiles.div_ceil(block_dim) as f64;
    let kc = t.k_chunk.min(g.k) as f64;
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
        (t.k_chunk * t.cols / 64) as f64 * f64::from(o.cast.per_repeat.max(o.gather.per_repeat))
            + head
    } else {
        0.0
    };
    let chunks = g.k.div_ceil(t.k_chunk) as f64;
    let chunk = (kc * per_k + widen).max(mte2);
    let store = f64::from(machine.dma.ub_to_gm.fixed_cycles)
        + rows * t.cols as f64 * size(g.out) / machine.dma.ub_to_gm.bytes_per_cycle;
    let tile = chunks * chunk + mte2 + (t.rows * t.cols / 64) as f64 * 2.0 + store;
    (rounds * tile).max(chip_bound(g, machine))
}

/// The estimated cycles of a dot-form vector candidate (launch excluded).
/// Per chunk: A's and B's loads (MTE2) against the vector unit's work
/// (widening A and B, gathering B's columns, a `vec.mul` and a `vec.add`
/// of `k_chunk / 64` repeats an output, two barriers) and the scalar
/// unit's issue of the multiplies; per tile the folds, the epilogue and
/// the store.
fn dot_cost(g: &Geometry, t: &VecMatSchedule, machine: &Machine) -> f64 {
    let o = &machine.vector.ops;
    let head = f64::from(machine.vector.head_cycles);
    let insn = f64::from(machine.scalar.insn_cycles);
    let (s, n) = (size(g.dtype), g.n as f64);
    let p = vec_pitch(g, t);
    let rows = t.rows.min(g.m) as f64;
    let reps = (t.k_chunk / 64) as f64;
    let kc = t.k_chunk as f64;
    let tiles = g.batches() * g.m.div_ceil(t.rows);
    let block_dim = tiles.min(u64::from(machine.vector_cores())).max(1);
    let rounds = tiles.div_ceil(block_dim) as f64;
    let widen = g.dtype != g.acc();
    let b_elems = if g.b_t {
        n * p.bt as f64
    } else {
        kc * p.b as f64
    };
    let per = |c: &tessera_sim::machine::OpCost, elems: f64| {
        (elems / 64.0).ceil() * f64::from(c.per_repeat)
    };
    let mut vec = 2.0 * rows * n * reps * f64::from(o.binary.per_repeat)
        + 2.0 * (head + f64::from(o.binary.tail));
    if widen {
        vec += per(&o.cast, rows * kc) + per(&o.cast, b_elems) + 2.0 * head;
    }
    if !g.b_t {
        vec += per(&o.gather, n * kc) + head;
    }
    // A row's multiplies: one instruction per repeat position over its
    // outputs when it has more outputs than repeats (as the backend does),
    // else a loop iteration per output (the instruction, address steps,
    // the branch).
    let per_row = if dot_across_outputs(g.n, t.k_chunk / 64) {
        reps + 3.0
    } else {
        n * 5.0 + 4.0
    };
    let scalar = insn * (rows * per_row + 24.0);
    let dma = &machine.dma.gm_to_ub;
    let mte2 = 2.0 * f64::from(dma.fixed_cycles) + (rows * kc + b_elems) * s / dma.bytes_per_cycle;
    let chunks = g.k.div_ceil(t.k_chunk) as f64;
    let chunk = vec.max(scalar).max(mte2);
    let fold = rows * n * (reps * f64::from(o.binary.per_repeat) + insn * 4.0)
        + rows * (n * f64::from(o.reduce.per_repeat) + insn)
        + 2.0 * head;
    let out_elems = rows * p.out as f64;
    let epilogue =
        per(&o.cast, out_elems) * (1.0 + f64::from(u8::from(g.relu || g.scale.is_some())));
    let store = f64::from(machine.dma.ub_to_gm.fixed_cycles)
        + rows * n * size(g.out) / machine.dma.ub_to_gm.bytes_per_cycle;
    let tile = chunks * chunk + mte2 + fold + epilogue + store;
    (rounds * tile).max(chip_bound(g, machine))
}

/// The vector candidates of a matmul that fit UB, with their estimates, in
/// the scheduler's order: the outer form's (rows, then columns, then K
/// chunk, each growing), then the dot form's. The scheduler takes the
/// first of the cheapest; `tune` simulates the cheapest few.
pub fn vector_candidates(g: &Geometry, machine: &Machine) -> Vec<(f64, VecMatSchedule)> {
    let mut out = Vec::new();
    let mut consider = |t: VecMatSchedule| {
        if fits(&vector_layout(g, &t, machine).named(), machine) {
            out.push((vector_cost(g, &t, machine), t));
        }
    };
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
                consider(VecMatSchedule {
                    rows,
                    cols,
                    k_chunk: kc,
                    ..VecMatSchedule::default()
                });
            }
        }
    }
    // The dot form, for B narrower than a repeat, or a few repeats wide
    // (A row-major: its rows are the dot products' runs; a row's outputs
    // are one instruction's repeats, at most 255).
    if !g.a_t && g.n < 256 {
        let k_max = g.k.div_ceil(64) * 64;
        for rows in [1u64, 2, 4, 8, 16, 32] {
            if rows > g.m.next_power_of_two() || rows * g.n > 256 {
                break;
            }
            for kc in [64u64, 128, 256, 512, 1024, 2048] {
                if kc > k_max {
                    break;
                }
                consider(VecMatSchedule {
                    rows,
                    cols: g.n,
                    k_chunk: kc,
                    dot: true,
                    ..VecMatSchedule::default()
                });
            }
        }
    }
    out
}

/// Gives `mm` (of geometry `g`) the vector schedule `t`, with its tile
/// count and buffers; returns its block count and estimate (`cost`).
pub fn apply_vector(
    mm: &mut MatMul,
    g: &Geometry,
    mut t: VecMatSchedule,
    cost: f64,
    machine: &Machine,
) -> (u32, u64) {
    let tiles = g.batches() * g.m.div_ceil(t.rows) * g.n.div_ceil(t.cols);
    let block_dim = tiles.min(u64::from(machine.vector_cores())).max(1);
    t.tiles = tiles;
    t.layout = vector_layout(g, &t, machine);
    mm.schedule = MatMulSchedule::Vector(t);
    (block_dim as u32, cost as u64)
}

pub(super) fn schedule_vector(
    mm: &mut MatMul,
    g: &Geometry,
    machine: &Machine,
) -> Result<(u32, u64), String> {
    if !matches!(g.dtype, DType::F32 | DType::BF16 | DType::I8) {
        return Err(format!(
            "neither the cube nor the vector matmul of {} handles {} inputs",
            machine.name, g.dtype
        ));
    }
    // The first of the cheapest.
    let mut best: Option<(f64, VecMatSchedule)> = None;
    for (cost, t) in vector_candidates(g, machine) {
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, t));
        }
    }
    let Some((cost, t)) = best else {
        let smallest = VecMatSchedule {
            rows: 1,
            cols: 64,
            k_chunk: 8,
            ..VecMatSchedule::default()
        };
        let layout = vector_layout(g, &smallest, machine);
        mm.schedule = MatMulSchedule::Vector(VecMatSchedule { layout, ..smallest });
        return Err("even the smallest vector matmul tiles do not fit UB".into());
    };
    Ok(apply_vector(mm, g, t, cost, machine))
}
