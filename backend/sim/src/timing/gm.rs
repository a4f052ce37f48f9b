//! The chip-level GM model: L2 first touch and HBM bandwidth shared by every
//! active transfer.
//!
//! A GM transfer first spends its fixed cost (latency; no bandwidth), then
//! streams its *cost bytes* — every burst rounded up to `burst_round_bytes`,
//! divided by `unaligned_factor` when its GM address is not a multiple of
//! `aligned_bytes` — at up to its path's per-core rate. The first touch of a
//! GM line (`line_bytes`) in a run is an L2 miss that costs a whole line of
//! HBM bandwidth; later touches — in the same launch or a later one of the
//! same program, as with a real L2 — hit L2 and cost none. While transfers are
//! active, the chip's HBM bandwidth is shared max-min fairly among the missing
//! ones (water-filling on their HBM demand); times are rounded up to whole
//! cycles. Everything is computed in a fixed order, so results are
//! deterministic.

use crate::exec::Pat;
use crate::machine::Gm;

/// Lines already touched in this run (a bit per GM line); it persists across
/// the launches of a program.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    bits: Vec<u64>,
    shift: u32,
    base: u64,
}

impl Lines {
    /// Lines for `bytes` of GM from `base`.
    pub fn new(base: u64, bytes: u64, line: u64) -> Lines {
        let shift = line.trailing_zeros();
        let n = (bytes >> shift) + 2;
        Lines {
            bits: vec![0; n.div_ceil(64) as usize],
            shift,
            base,
        }
    }

    /// Marks the lines of `[lo, hi)`; returns how many were new.
    pub fn touch(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return 0;
        }
        let first = (lo - self.base) >> self.shift;
        let last = (hi - 1 - self.base) >> self.shift;
        let mut new = 0;
        let mut l = first;
        while l <= last {
            let w = (l / 64) as usize;
            let b = l % 64;
            let take = (64 - b).min(last - l + 1);
            let mask = if take == 64 {
                u64::MAX
            } else {
                ((1u64 << take) - 1) << b
            };
            if let Some(word) = self.bits.get_mut(w) {
                new += u64::from((mask & !*word).count_ones());
                *word |= mask;
            }
            l += take;
        }
        new
    }
}

/// Cost bytes and HBM bytes of a transfer's GM side.
pub fn cost(g: &Gm, lines: &mut Lines, pat: &Pat) -> (f64, f64) {
    let mut cost = 0.0;
    let mut new_lines = 0;
    let round = |len: u64| len.div_ceil(g.burst_round_bytes) * g.burst_round_bytes;
    let factor = |addr: u64| {
        if addr.is_multiple_of(g.aligned_bytes) {
            1.0
        } else {
            1.0 / g.unaligned_factor
        }
    };
    if pat.is_empty() {
        return (0.0, 0.0);
    }
    if pat.stride == pat.len || pat.n == 1 {
        // One contiguous range: the first burst's alignment decides; later bursts follow.
        if pat.n == 1 {
            cost += round(pat.len) as f64 * factor(pat.addr);
        } else {
            let aligned_all =
                pat.len.is_multiple_of(g.aligned_bytes) && pat.addr.is_multiple_of(g.aligned_bytes);
            if aligned_all {
                cost += (pat.n * round(pat.len)) as f64;
            } else {
                for i in 0..pat.n {
                    cost += round(pat.len) as f64 * factor(pat.addr + i * pat.stride);
                }
            }
        }
        new_lines += lines.touch(pat.addr, pat.addr + pat.n * pat.len);
    } else {
        // Each run's cost, summed run by run (the order fixes the rounding).
        let run = round(pat.len) as f64;
        if pat.stride.is_multiple_of(g.aligned_bytes) {
            let c = run * factor(pat.addr);
            if c.fract() == 0.0 && (pat.n as f64) * c < 2f64.powi(52) {
                // Whole numbers: the sum is exact whatever its order.
                cost += pat.n as f64 * c;
            } else {
                for _ in 0..pat.n {
                    cost += c;
                }
            }
        } else {
            for i in 0..pat.n {
                cost += run * factor(pat.addr + i * pat.stride);
            }
        }
        for i in 0..pat.n {
            let a = pat.addr + i * pat.stride;
            new_lines += lines.touch(a, a + pat.len);
        }
    }
    (cost, (new_lines * g.line_bytes) as f64)
}

/// An active transfer.
#[derive(Clone, Debug)]
pub struct Active {
    /// Caller's id.
    pub id: u64,
    /// Remaining cost bytes.
    pub rem: f64,
    /// Per-core rate cap.
    pub cap: f64,
    /// HBM bytes per cost byte.
    pub frac: f64,
    /// Current rate.
    pub rate: f64,
}

/// The bandwidth sharer.
#[derive(Debug, Default)]
pub struct Bandwidth {
    chip: f64,
    active: Vec<Active>,
    last: u64,
    /// Bumped whenever rates change (stale completion events are ignored).
    pub generation: u64,
}

const EPS: f64 = 1e-6;

impl Bandwidth {
    /// A sharer for `chip` bytes per cycle.
    pub fn new(chip: f64) -> Self {
        Bandwidth {
            chip,
            ..Default::default()
        }
    }

    fn advance(&mut self, t: u64) {
        if t > self.last {
            let dt = (t - self.last) as f64;
            for a in &mut self.active {
                a.rem -= a.rate * dt;
            }
            self.last = t;
        }
    }

    fn recompute(&mut self) {
        let mut idx: Vec<usize> = Vec::new();
        for (i, a) in self.active.iter_mut().enumerate() {
            if a.frac > 0.0 {
                idx.push(i);
            } else {
                a.rate = a.cap;
            }
        }
        idx.sort_by(|&x, &y| {
            let (a, b) = (&self.active[x], &self.active[y]);
            (a.cap * a.frac)
                .total_cmp(&(b.cap * b.frac))
                .then(a.id.cmp(&b.id))
        });
        let mut budget = self.chip;
        let k = idx.len();
        for (j, &i) in idx.iter().enumerate() {
            let share = budget / (k - j) as f64;
            let a = &mut self.active[i];
            let c = (a.cap * a.frac).min(share);
            a.rate = c / a.frac;
            budget -= c;
        }
        self.generation += 1;
    }

    /// Starts streaming a transfer at `t`.
    pub fn start(&mut self, t: u64, id: u64, bytes: f64, cap: f64, hbm: f64) {
        self.advance(t);
        let frac = if bytes > 0.0 { hbm / bytes } else { 0.0 };
        self.active.push(Active {
            id,
            rem: bytes,
            cap,
            frac,
            rate: cap,
        });
        self.recompute();
    }

    /// Cycle at which the next transfer completes.
    pub fn next(&self) -> Option<u64> {
        self.active
            .iter()
            .map(|a| {
                if a.rem <= EPS {
                    0.0
                } else {
                    a.rem / a.rate.max(1e-12)
                }
            })
            .min_by(f64::total_cmp)
            // A transfer at a vanishing rate (a tiny `unaligned_factor`)
            // ends past any cycle limit, not at a wrapped cycle.
            .map(|dt| self.last.saturating_add((dt - EPS).max(0.0).ceil() as u64))
    }

    /// Advances to `t` and removes the finished transfers (in start order).
    pub fn finish(&mut self, t: u64) -> Vec<u64> {
        self.advance(t);
        let mut done = Vec::new();
        self.active.retain(|a| {
            if a.rem <= EPS * a.cap.max(1.0) {
                done.push(a.id);
                false
            } else {
                true
            }
        });
        if !done.is_empty() {
            self.recompute();
        }
        done
    }

    /// Number of active transfers.
    pub fn active(&self) -> usize {
        self.active.len()
    }
}
