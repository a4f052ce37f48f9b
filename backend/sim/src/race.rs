//! The race detector: happens-before through flags, barriers and cross-core
//! flags, checked on every memory access of every instruction.
//!
//! Agents are the pipes of the cores of one block (up to 3 cores × 7 pipes).
//! Each pipe keeps a vector [`Clock`]: entry `a` is the number of agent `a`'s
//! instructions known to have *completed* (results visible). A pipe learns
//! through `sync.wait` (the setter's clock, whose own entry counts every
//! instruction before the `sync.set`), `sync.barrier` (its own entry becomes
//! its instruction count), cross-core waits, and, for every issued
//! instruction, what the scalar unit knew when it issued it (scalar accesses
//! happen at issue, so they are ordered before later instructions).
//!
//! A previous access `P` and the current access `X` conflict when they overlap
//! and one writes. They are ordered when `X`'s clock covers `P`; within one
//! pipe, a write followed by a read needs that too (no read-after-write
//! interlock: [`FaultKind::RawWithoutBarrier`]), while other same-pipe pairs are
//! ordered by in-order issue. Accesses of different blocks are ordered only by
//! the generations of mode-0 cross-core synchronisation (a coarse rule: `P` is
//! before `X` when `X` has seen more generations than `P` had).
//!
//! Shadow state is an interval map per memory (each core's local buffers, and
//! GM), exact to the byte.

use crate::exec::Access;
use crate::fault::{FaultKind, Space};
use crate::isa::Pipe;
use std::collections::{BTreeMap, HashMap};

/// Maximum agents per block: 3 cores × 7 pipes.
pub const AGENTS: usize = 21;

/// A vector clock over the agents of one block, plus the mode-0 generation seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Clock {
    /// Completed instruction counts per agent.
    pub c: [u32; AGENTS],
    /// Mode-0 cross-core generations seen.
    pub epoch: u32,
}

impl Clock {
    /// Pointwise maximum.
    pub fn join(&mut self, o: &Clock) {
        for (a, b) in self.c.iter_mut().zip(o.c.iter()) {
            *a = (*a).max(*b);
        }
        self.epoch = self.epoch.max(o.epoch);
    }
}

/// Who made an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// Block.
    pub block: u32,
    /// Agent index in the block.
    pub agent: u8,
    /// The agent's instruction count at the access.
    pub n: u32,
    /// Mode-0 generations seen.
    pub epoch: u32,
    /// Global core index (for messages).
    pub core: u32,
    /// Pipe (for messages).
    pub pipe: Pipe,
    /// Instruction index (for messages).
    pub pc: u32,
}

#[derive(Clone, Debug, Default)]
struct Seg {
    end: u64,
    write: Option<Who>,
    reads: Vec<Who>,
}

/// A detected race.
#[derive(Clone, Debug)]
pub struct Race {
    /// `Race` or `RawWithoutBarrier`.
    pub kind: FaultKind,
    /// The earlier access.
    pub earlier: Who,
    /// Whether the earlier access wrote.
    pub earlier_write: bool,
    /// Whether the current access writes.
    pub write: bool,
    /// The space.
    pub space: Space,
    /// First overlapping byte.
    pub addr: u64,
}

/// Which memory a shadow map covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mem {
    /// Global memory.
    Gm,
    /// A core's local buffer.
    Local(u32, Space),
}

/// Shadow memory for every space.
#[derive(Default)]
pub struct Detector {
    maps: HashMap<Mem, BTreeMap<u64, Seg>>,
}

fn ordered(p: &Who, p_write: bool, x: &Who, x_write: bool, know: &Clock) -> Option<FaultKind> {
    if !p_write && !x_write {
        return None;
    }
    if p.block != x.block {
        return if p.epoch < know.epoch {
            None
        } else {
            Some(FaultKind::Race)
        };
    }
    if p.agent == x.agent {
        // In-order issue orders everything but a read of an earlier write.
        if p_write && !x_write && know.c[usize::from(p.agent)] <= p.n {
            return Some(FaultKind::RawWithoutBarrier);
        }
        return None;
    }
    if know.c[usize::from(p.agent)] > p.n {
        None
    } else {
        Some(FaultKind::Race)
    }
}

impl Detector {
    /// Forgets a core's local buffers (a new block starts on it).
    pub fn reset_core(&mut self, core: u32) {
        self.maps
            .retain(|k, _| !matches!(k, Mem::Local(c, _) if *c == core));
    }

    /// Checks and records one instruction's accesses (reads before writes).
    pub fn access(
        &mut self,
        core: u32,
        accesses: &[Access],
        who: Who,
        know: &Clock,
    ) -> Result<(), Race> {
        for a in accesses
            .iter()
            .filter(|a| !a.write)
            .chain(accesses.iter().filter(|a| a.write))
        {
            let mem = if a.space == Space::Gm {
                Mem::Gm
            } else {
                Mem::Local(core, a.space)
            };
            let p = a.pat;
            let map = self.maps.entry(mem).or_default();
            if p.n == 1 || p.stride == p.len {
                let hi = p.addr.saturating_add(p.n.saturating_mul(p.len));
                range(map, a.space, p.addr, hi, a.write, who, know)?;
            } else {
                for i in 0..p.n {
                    let s = p.addr + i * p.stride;
                    range(map, a.space, s, s + p.len, a.write, who, know)?;
                }
            }
        }
        Ok(())
    }
}

fn add_reader(seg: &mut Seg, who: Who) {
    match seg
        .reads
        .iter_mut()
        .find(|r| r.block == who.block && r.agent == who.agent)
    {
        Some(r) => *r = who,
        None => seg.reads.push(who),
    }
}

#[allow(clippy::too_many_arguments)]
fn range(
    map: &mut BTreeMap<u64, Seg>,
    space: Space,
    lo: u64,
    hi: u64,
    write: bool,
    who: Who,
    know: &Clock,
) -> Result<(), Race> {
    if hi <= lo {
        return Ok(());
    }
    // Fast path: a read of exactly one existing segment.
    if !write
        && let Some(seg) = map.get_mut(&lo)
        && seg.end == hi
    {
        if let Some(w) = &seg.write
            && let Some(kind) = ordered(w, true, &who, false, know)
        {
            return Err(Race {
                kind,
                earlier: *w,
                earlier_write: true,
                write,
                space,
                addr: lo,
            });
        }
        add_reader(seg, who);
        return Ok(());
    }
    // Split segments at lo and hi.
    split(map, lo);
    split(map, hi);
    // Check.
    for (&start, seg) in map.range(lo..hi) {
        if let Some(w) = &seg.write
            && let Some(kind) = ordered(w, true, &who, write, know)
        {
            return Err(Race {
                kind,
                earlier: *w,
                earlier_write: true,
                write,
                space,
                addr: start.max(lo),
            });
        }
        if write {
            for r in &seg.reads {
                if let Some(kind) = ordered(r, false, &who, true, know) {
                    return Err(Race {
                        kind,
                        earlier: *r,
                        earlier_write: false,
                        write,
                        space,
                        addr: start.max(lo),
                    });
                }
            }
        }
    }
    // Record.
    if write {
        let keys: Vec<u64> = map.range(lo..hi).map(|(&k, _)| k).collect();
        for k in keys {
            map.remove(&k);
        }
        map.insert(
            lo,
            Seg {
                end: hi,
                write: Some(who),
                reads: Vec::new(),
            },
        );
    } else {
        // Fill gaps, then add the reader to every segment.
        let mut gaps = Vec::new();
        let mut cur = lo;
        for (&start, seg) in map.range(lo..hi) {
            if start > cur {
                gaps.push((cur, start));
            }
            cur = seg.end;
        }
        if cur < hi {
            gaps.push((cur, hi));
        }
        for (a, b) in gaps {
            map.insert(
                a,
                Seg {
                    end: b,
                    write: None,
                    reads: Vec::new(),
                },
            );
        }
        for (_, seg) in map.range_mut(lo..hi) {
            add_reader(seg, who);
        }
    }
    Ok(())
}

/// Splits the segment containing `at` so that a segment starts at `at`.
fn split(map: &mut BTreeMap<u64, Seg>, at: u64) {
    let Some((&start, seg)) = map.range(..at).next_back() else {
        return;
    };
    if seg.end > at {
        let mut tail = seg.clone();
        let end = seg.end;
        tail.end = end;
        if let Some(s) = map.get_mut(&start) {
            s.end = at;
        }
        map.insert(at, tail);
    }
}
