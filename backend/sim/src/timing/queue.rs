//! The engine's event queue: events in `(cycle, sequence)` order, exactly as
//! a binary heap of those pairs pops them, but faster for the engine's use.
//!
//! It is a radix heap (Ahuja, Mehlhorn, Orlin and Tarjan, 1990) on the key
//! `cycle · 2⁶⁴ + sequence`. Such a heap needs every pushed key to be at
//! least the last popped one, which the engine keeps: it schedules nothing
//! before the cycle it is at, and sequence numbers grow. A key below the
//! last popped one would still come out in order, from a small binary heap
//! beside the buckets, so the order never depends on that promise.
//!
//! Bucket `i > 0` holds the keys whose highest bit differing from the last
//! popped key is bit `i − 1`; bucket 0 holds keys equal to it. A pop empties
//! the first non-empty bucket into lower ones around its least key, so each
//! key moves down at most 128 times and usually a few. The least key is
//! cached for `peek`, which the scalar units call before each instruction.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-queue of `(cycle, sequence, payload)`, popped in `(cycle, sequence)`
/// order; sequences are unique.
#[derive(Clone, Debug)]
pub(super) struct EventQueue<E> {
    buckets: Vec<Vec<(u128, E)>>,
    /// The last popped key (0 before any pop).
    last: u128,
    /// Keys pushed below `last` (keys are unique, so a payload is never
    /// compared).
    early: BinaryHeap<Reverse<(u128, E)>>,
    /// The least key in the buckets, once known.
    least: Option<u128>,
}

fn key(t: u64, seq: u64) -> u128 {
    (u128::from(t) << 64) | u128::from(seq)
}

fn split(k: u128) -> (u64, u64) {
    ((k >> 64) as u64, k as u64)
}

impl<E: Copy + Ord> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            buckets: (0..129).map(|_| Vec::new()).collect(),
            last: 0,
            early: BinaryHeap::new(),
            least: None,
        }
    }
}

impl<E: Copy + Ord> EventQueue<E> {
    fn bucket(&self, k: u128) -> usize {
        if k == self.last {
            0
        } else {
            128 - (k ^ self.last).leading_zeros() as usize
        }
    }

    /// Adds `payload` at `(t, seq)`.
    pub fn push(&mut self, t: u64, seq: u64, payload: E) {
        let k = key(t, seq);
        if k < self.last {
            self.early.push(Reverse((k, payload)));
            return;
        }
        let b = self.bucket(k);
        self.buckets[b].push((k, payload));
        if let Some(l) = self.least {
            self.least = Some(l.min(k));
        }
    }

    /// The least key in the buckets.
    fn least(&mut self) -> Option<u128> {
        if self.least.is_none() {
            let b = self.buckets.iter().find(|b| !b.is_empty())?;
            self.least = b.iter().map(|&(k, _)| k).min();
        }
        self.least
    }

    /// The cycle of the next event.
    pub fn peek_time(&mut self) -> Option<u64> {
        let b = self.least();
        let e = self.early.peek().map(|Reverse((k, _))| *k);
        match (b, e) {
            (Some(b), Some(e)) => Some(split(b.min(e)).0),
            (Some(k), None) | (None, Some(k)) => Some(split(k).0),
            (None, None) => None,
        }
    }

    /// Removes and returns the next event.
    pub fn pop(&mut self) -> Option<(u64, u64, E)> {
        let b = self.least();
        if let Some(Reverse((e, _))) = self.early.peek()
            && b.is_none_or(|b| *e < b)
        {
            let Reverse((k, p)) = self.early.pop()?;
            let (t, s) = split(k);
            return Some((t, s, p));
        }
        let least = b?;
        if self.buckets[0].is_empty() {
            // Empty the first non-empty bucket around its least key.
            let i = self.buckets.iter().position(|b| !b.is_empty())?;
            self.last = least;
            let items = std::mem::take(&mut self.buckets[i]);
            for (k, p) in items.iter().copied() {
                let to = self.bucket(k);
                self.buckets[to].push((k, p));
            }
            // Keep the emptied bucket's allocation.
            let mut items = items;
            items.clear();
            self.buckets[i] = items;
        }
        // Bucket 0 holds the one key equal to `last`.
        let (k, p) = self.buckets[0].pop()?;
        self.least = None;
        let (t, s) = split(k);
        Some((t, s, p))
    }

    /// Events queued.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.early.len() + self.buckets.iter().map(Vec::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::EventQueue;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Pops in the order a binary heap of `(cycle, sequence)` does, under
    /// the engine's pattern (pushes at or after the current cycle) and
    /// with pushes before it.
    #[test]
    fn pops_in_the_order_of_a_binary_heap() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..4 {
            let mut q = EventQueue::<u32>::default();
            let mut h = BinaryHeap::new();
            let (mut seq, mut now) = (0u64, 0u64);
            for step in 0..20_000u32 {
                let pushes = next() % 3;
                for _ in 0..pushes {
                    seq += 1;
                    let ahead = match next() % 4 {
                        0 => 0,
                        1 => next() % 4,
                        2 => next() % 300,
                        _ => next() % 100_000,
                    };
                    // Rounds 2 and 3 also push before the current cycle.
                    let t = if round >= 2 && next() % 50 == 0 {
                        now.saturating_sub(next() % 500)
                    } else {
                        now + ahead
                    };
                    q.push(t, seq, step);
                    h.push(Reverse((t, seq, step)));
                }
                assert_eq!(q.len(), h.len());
                assert_eq!(q.peek_time(), h.peek().map(|Reverse((t, _, _))| *t));
                if next() % 2 == 0 {
                    let got = q.pop();
                    let want = h.pop().map(|Reverse(x)| x);
                    assert_eq!(got, want);
                    if let Some((t, _, _)) = got {
                        now = now.max(t);
                    }
                }
            }
            while let Some(Reverse(want)) = h.pop() {
                assert_eq!(q.pop(), Some(want));
            }
            assert_eq!(q.pop(), None);
        }
    }
}
