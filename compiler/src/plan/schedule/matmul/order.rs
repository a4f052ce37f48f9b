//! The cube's tile orders and what they cost: the GM lines each round of
//! tiles touches first (row-major, in groups of tile rows, or an A
//! panel's runs, folded or not) over the chip's HBM bandwidth, and the
//! order a candidate takes. The parent module's cost model says where
//! these waits enter a candidate's estimate.

use super::cube_epilogue;
use std::collections::HashMap;
use tessera_ir::plan::CubeSchedule;
use tessera_ir::plan::matmul::Geometry;
use tessera_sim::{Machine, Organisation};

/// What a fold ([`CubeSchedule::fold`]) changes in an A panel's cycles:
/// its first drain's HBM wait less that of the unfolded runs. The model's
/// panel costs were fitted with the unfolded runs' drains in them (f16
/// 1024³ on 910b-like: 18 680 cycles estimated, 18 798 simulated,
/// although its first drain waits 1.8 k cycles on HBM and nothing else
/// counts that wait), so a fold is charged only the difference it makes.
/// Folded runs of 2, 4 and 8 units (f16 1024³, 2048 × 1024 × 1024 and
/// 2048 × 1024 × 2048, K = 1024) ran 692, 1 818 and 4 498 cycles faster
/// than unfolded; this difference is 1 366, 1 408 and 1 408 cycles.
/// Counting every round's drains instead (3 616 cycles for the last
/// product) made that product's folded panel the estimate's choice, 2 %
/// slower than its 128 × 256 tiles: the panel's own estimate is low for
/// long runs.
pub(super) fn fold_delta(
    memo: &mut Memo,
    g: &Geometry,
    t: &CubeSchedule,
    machine: &Machine,
) -> f64 {
    if t.fold <= 1 || !t.a_panel {
        return 0.0;
    }
    let runs = Some(t.panel_units(g, u64::from(machine.cube_cores())));
    let mut wait = |fold| {
        memo.touches(g, (t.base_m, t.base_n), (1, fold, runs), machine)
            .drain_wait(g, t, machine)
    };
    wait(t.fold) - wait(1)
}

/// The [`first_touches`] of one geometry on one machine, each computed
/// once: the scheduler asks for the same tiles and order for every K step
/// and depth of a candidate (910-like `attention_mask` at S = 2048 spent
/// 29 % of its compile recomputing them).
#[derive(Default)]
pub(super) struct Memo(HashMap<(u64, u64, u64, u64, Option<u64>), Touches>);

impl Memo {
    /// `first_touches(g, tile, order, machine)`, for the `g` and `machine`
    /// every call on this memo passes.
    pub(super) fn touches(
        &mut self,
        g: &Geometry,
        (bm, bn): (u64, u64),
        (group, fold, runs): (u64, u64, Option<u64>),
        machine: &Machine,
    ) -> &Touches {
        self.0
            .entry((bm, bn, group, fold, runs))
            .or_insert_with(|| first_touches(g, (bm, bn), (group, fold, runs), machine))
    }
}

/// Tile orders the scheduler weighs: row-major, and groups of these many
/// tile rows (see [`CubeSchedule::group_m`]).
const GROUPS: [u64; 5] = [1, 2, 4, 8, 16];

/// Rounds of a stage's tile order the first-touch model follows: its cold
/// start and enough of the steady state to stand for the rest.
const ORDER_ROUNDS: u64 = 16;

/// The tile orders worth weighing for `bm × bn` tiles (row-major first):
/// groups of fewer tile rows than the stage has (a group of every row is
/// the column-major order, the last one), and none when a single round
/// takes every tile anyway or a row holds one tile (then every group walks
/// the tiles row-major).
pub fn tile_orders(g: &Geometry, bm: u64, bn: u64, machine: &Machine) -> Vec<u64> {
    let tm = g.m.div_ceil(bm);
    let several = several_rounds(g, bm, bn, machine) && g.n > bn;
    GROUPS
        .into_iter()
        .filter(|&gr| gr == 1 || (gr < tm && several))
        .collect()
}

/// Whether a core runs more than one of the stage's `bm × bn` tiles.
pub(super) fn several_rounds(g: &Geometry, bm: u64, bn: u64, machine: &Machine) -> bool {
    g.batches() * g.m.div_ceil(bm) * g.n.div_ceil(bn) > u64::from(machine.cube_cores())
}

/// What the first touches of GM lines cost a stage's rounds in one tile
/// order.
pub(super) struct Touches {
    /// HBM cycles of the A and of the B lines each of the first
    /// [`ORDER_ROUNDS`] rounds touches first.
    pub(super) hbm: Vec<(f64, f64)>,
    /// A's share of a tile's GM → L1 bytes.
    pub(super) a_share: f64,
    /// HBM cycles of a round's output tiles (new lines too), which the
    /// misses share the round with.
    pub(super) writes: f64,
    /// Rounds of the whole stage.
    pub(super) rounds: u64,
    /// With A panels' runs, the HBM cycles of the output lines each round
    /// writes first (empty otherwise): a run's tiles side by side write
    /// the two halves of a line in different rounds, and the first pays
    /// for the whole line.
    pub(super) drains: Vec<f64>,
}

impl Touches {
    /// The cycles rounds of `tile` cycles each wait on HBM. A tile loads A
    /// and B chunks in turn, so a round's new A lines must come in during
    /// the A loads (A's share of the tile, less the time HBM spends on the
    /// round's output) and its new B lines during the B loads; a round
    /// that needs longer for either waits the difference. The rounds past
    /// those followed are taken to be like the followed ones after the
    /// first.
    pub(super) fn wait(&self, tile: f64) -> f64 {
        let span = (tile - self.writes).max(0.0);
        let over = |&(a, b): &(f64, f64)| {
            (a - span * self.a_share).max(0.0) + (b - span * (1.0 - self.a_share)).max(0.0)
        };
        let Some((first, rest)) = self.hbm.split_first() else {
            return 0.0;
        };
        let later: f64 = rest.iter().map(over).sum();
        let scale = if rest.is_empty() {
            0.0
        } else {
            (self.rounds - 1) as f64 / rest.len() as f64
        };
        over(first) + later * scale
    }

    /// The cycles the cube waits beyond its epilogue (split machines, one
    /// accumulator) when the first round's output lines come in over HBM
    /// more slowly than FixPipe drains a tile: the cores start together,
    /// so they all drain at once, and the one accumulator holds the next
    /// tile back until it is done. Later rounds are not counted: the cores
    /// drift apart, and their drains overlap less.
    fn drain_wait(&self, g: &Geometry, t: &CubeSchedule, machine: &Machine) -> f64 {
        if machine.organisation != Organisation::Split || t.accumulators > 1 {
            return 0.0;
        }
        let r16 = |x: u64| x.div_ceil(16) * 16;
        let epi = cube_epilogue(t.base_m.min(r16(g.m)), t.base_n.min(r16(g.n)), g, machine);
        self.drains.first().map_or(0.0, |&d| (d - epi).max(0.0))
    }
}

/// The first touches of `bm × bn` tiles taken in the order of `group`,
/// round by round (`block_dim` tiles a round): every A row panel and B
/// column panel (all of K) that several tiles read is an L2 miss the
/// first time one reads it, and misses share the chip's HBM bandwidth
/// (machine.md's L2 model).
/// With `runs = Some(q)` each core runs a contiguous run of `q` units
/// instead (an A panel's order): round `r` takes unit `c·q + r` of each
/// core `c`, and the rounds' first writes of output lines are followed too.
/// `fold` is [`CubeSchedule::fold`].
pub(super) fn first_touches(
    g: &Geometry,
    (bm, bn): (u64, u64),
    (group, fold, runs): (u64, u64, Option<u64>),
    machine: &Machine,
) -> Touches {
    let s = g.dtype.size_bytes() as u64;
    let (tm, tn) = (g.m.div_ceil(bm), g.n.div_ceil(bn));
    let tiles = g.batches() * tm * tn;
    let cores = u64::from(machine.cube_cores());
    let block_dim = tiles.min(cores).max(1);
    let rounds = runs.unwrap_or_else(|| tiles.div_ceil(block_dim));
    let order = CubeSchedule {
        group_m: group,
        fold,
        ..CubeSchedule::default()
    };
    // The batch whose panels an operand's batch `q` reads: `q` with the
    // digits of the dims it is broadcast over zeroed (never above `q`).
    let source = |q: u64, strides: &[u64]| {
        let (mut q, mut src, mut place) = (q, 0, 1);
        for (d, &ext) in g.batch.iter().enumerate().rev() {
            if strides[d] != 0 {
                src += (q % ext) * place;
            }
            q /= ext;
            place *= ext;
        }
        src
    };
    // Only panels more than one tile reads depend on the order; a panel
    // read once misses in any order (the chip's GM floor counts it).
    let shared = |strides: &[u64]| {
        g.batch
            .iter()
            .zip(strides)
            .any(|(&e, &st)| e > 1 && st == 0)
    };
    let a_reused = tn > 1 || shared(&g.a_bs);
    let b_reused = tm > 1 || shared(&g.b_bs);
    // The unit of slot `c` in round `r`, if any.
    let unit = |r: u64, c: u64| {
        let idx = match runs {
            Some(q) => c * q + r,
            None => r * block_dim + c,
        };
        (idx < tiles).then_some(idx)
    };
    let followed = match runs {
        Some(_) => tiles,
        None => (rounds.min(ORDER_ROUNDS) * block_dim).min(tiles),
    };
    let batches = followed.div_ceil(tm * tn) as usize;
    let (mut seen_a, mut seen_b) = (
        vec![false; batches * tm as usize],
        vec![false; batches * tn as usize],
    );
    let first = |seen: &mut Vec<bool>, at: u64| !std::mem::replace(&mut seen[at as usize], true);
    let chip = machine.gm.chip_bytes_per_cycle;
    // Output lines, per tile row and 512-byte column of the output's rows
    // (rows taken to start on a line).
    let (so, line) = (g.out.size_bytes() as u64, machine.gm.line_bytes.max(1));
    let line_cols = (g.n * so).div_ceil(line);
    let mut seen_c = vec![
        false;
        if runs.is_some() {
            batches * (tm * line_cols) as usize
        } else {
            0
        }
    ];
    let mut hbm = Vec::new();
    let mut drains = Vec::new();
    for round in 0..rounds.min(ORDER_ROUNDS) {
        let (mut a, mut b, mut c) = (0, 0, 0);
        for idx in (0..block_dim).filter_map(|c| unit(round, c)) {
            let (q, mi, ni) = order.tile_at(idx, tm, tn);
            if runs.is_some() {
                let (lo, hi) = (ni * bn * so, ((ni + 1) * bn).min(g.n) * so);
                let rows = bm.min(g.m - mi * bm);
                let base = (q * tm + mi) * line_cols;
                for l in lo / line..hi.div_ceil(line) {
                    if first(&mut seen_c, base + l) {
                        c += rows * line;
                    }
                }
            }
            if a_reused && first(&mut seen_a, source(q, &g.a_bs) * tm + mi) {
                a += bm.min(g.m - mi * bm) * g.k * s;
            }
            if b_reused && first(&mut seen_b, source(q, &g.b_bs) * tn + ni) {
                b += bn.min(g.n - ni * bn) * g.k * s;
            }
        }
        hbm.push((a as f64 / chip, b as f64 / chip));
        if runs.is_some() {
            drains.push(c as f64 / chip);
        }
    }
    let (a_tile, b_tile) = (bm.min(g.m), bn.min(g.n));
    let out = block_dim * a_tile * b_tile * g.out.size_bytes() as u64;
    Touches {
        hbm,
        a_share: a_tile as f64 / (a_tile + b_tile) as f64,
        writes: out as f64 / chip,
        rounds,
        drains,
    }
}

/// The tile order of `orders` (row-major first) that waits least for a
/// candidate of `tile` cycles a tile and `base` cycles in all, and its
/// wait. Another order is taken only when it saves more than
/// [`ORDER_GAIN`] of `base`: below that the model cannot tell orders
/// apart (the simulator has them within a few hundred cycles either way).
pub(super) fn least_wait(orders: &[(u64, Touches)], tile: f64, base: f64) -> (u64, f64) {
    let waits = orders.iter().map(|(gr, touches)| (*gr, touches.wait(tile)));
    let Some((row_major, plain)) = waits.clone().next() else {
        return (1, 0.0);
    };
    let (group, wait) = waits.fold(
        (row_major, plain),
        |best, (gr, w)| {
            if w < best.1 { (gr, w) } else { best }
        },
    );
    if plain - wait > ORDER_GAIN * base {
        (group, wait)
    } else {
        (row_major, plain)
    }
}

/// The share of a candidate's cycles another tile order must save.
const ORDER_GAIN: f64 = 0.01;
