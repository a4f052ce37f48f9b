//! Synchronisation insertion: derives every `sync.set`/`sync.wait` and
//! `sync.barrier` of a structured program from the on-chip accesses of its
//! micro-ops.
//!
//! Rules (machine.md: pipes run concurrently, in order within a pipe, with
//! no read-after-write interlock inside a pipe):
//! - Two accesses conflict when their regions overlap and one writes.
//! - A conflict between different pipes needs an event: `set` (in the first
//!   pipe) after the child of the innermost common container that holds the
//!   first op, `wait` (in the second pipe) before the child that holds the
//!   second. Events therefore live at the level of the common container, so
//!   they are never skipped by a guard that skips only one side.
//! - A conflict from an op to an op *earlier* in a loop body is loop-carried:
//!   the same placement inside the innermost common loop, plus a `set` before
//!   the loop (the first iteration has nothing to wait for). When the loop
//!   runs again inside outer loops, the pre-set moves before the outermost
//!   of them whose body uses the id nowhere else, and the last iteration's
//!   event is consumed by the next run's first wait; only when no such
//!   loop exists does a `wait` after the loop drain it.
//! - A read-after-write inside one pipe needs a `barrier` of that pipe
//!   before the reader (accumulating `mmad`s are exempt, as the cube chains
//!   them in place). Scalar accesses execute at issue and need nothing.
//! - A conflict is skipped when an event already placed covers it (its `set`
//!   after the writer, its `wait` before the reader), so there are no
//!   redundant waits.
//! - A dependency is dropped when a later write kills it: a write `z` to
//!   the same bytes that runs between the two ops on every path (its guards
//!   and loops enclose one of them) and is itself ordered after the first
//!   and before the second. Such a pair is ordered through `z` (a `set` or
//!   `barrier` waits for everything its pipe issued before it, so the two
//!   orderings compose) and needs no event of its own.
//! - Every event has its own id per pipe pair when the pair has enough ids:
//!   an event alternates set and wait through the life cycle of the buffer
//!   it protects (its producer rewrites the buffer only after the consumer
//!   released it). Otherwise events of the same pair are first merged
//!   within a container, and then share one id per set of buffer copies
//!   they protect (the events of one copy alternate through its life cycle
//!   as well), except that two events signalling the same producer's
//!   writes never share an id (both could be set before the first wait).
//! - A loop's pre-set at the place where an event of the same id is waited
//!   for (ids shared by the copies they protect) would set the id while it
//!   may still be set: both go, and the loop's first iteration waits for
//!   that event's set instead (it also says the copies are free).

use super::prog::{Access, Item, MicroOp, Region, Slot, Sync};
use std::collections::{BTreeMap, BTreeSet};
use tessera_sim::Pipe;

/// Where an op sits: the child index at every level, and which levels are
/// loop bodies.
#[derive(Clone, Debug)]
struct Loc {
    path: Vec<usize>,
    /// `loops[d]`: whether the item at `path[..=d]` (whose body holds the
    /// deeper levels) is a loop.
    loops: Vec<bool>,
}

struct Flat<'a> {
    op: &'a MicroOp,
    loc: Loc,
}

fn flatten<'a>(
    items: &'a [Item],
    path: &mut Vec<usize>,
    loops: &mut Vec<bool>,
    out: &mut Vec<Flat<'a>>,
) {
    for (i, it) in items.iter().enumerate() {
        path.push(i);
        match it {
            Item::Op(op) => out.push(Flat {
                op,
                loc: Loc {
                    path: path.clone(),
                    loops: loops.clone(),
                },
            }),
            Item::Loop { body, .. } => {
                loops.push(true);
                flatten(body, path, loops, out);
                loops.pop();
            }
            Item::Guard { body, .. } => {
                loops.push(false);
                flatten(body, path, loops, out);
                loops.pop();
            }
            Item::Scalar(_) | Item::Sync(_) => {}
        }
        path.pop();
    }
}

/// A needed synchronisation, before merging.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Need {
    /// The container's path (prefix of both ops' paths).
    container: Vec<usize>,
    /// Child holding the first op.
    x: usize,
    /// Child holding the second op.
    y: usize,
    /// Loop-carried (the second op runs in the next iteration).
    carried: bool,
    /// For a carried need: the path of the innermost loop holding both.
    carried_loop: Option<Vec<usize>>,
    /// `None` for a barrier.
    pair: Option<(Pipe, Pipe)>,
    /// The barrier's pipe (for barriers).
    pipe: Pipe,
    /// The first op (its index in the flattened program).
    producer: usize,
    /// Buffer copies involved.
    slots: BTreeSet<Slot>,
}

fn hit(a: &MicroOp, ka: Access, b: &MicroOp, kb: Access) -> bool {
    let same_pipe = a.pipe == b.pipe;
    match (ka, kb) {
        (Access::Read, Access::Read) => false,
        (Access::Accumulate, Access::Accumulate) => !same_pipe,
        // Inside a pipe only read-after-write needs ordering.
        (_, Access::Read) if same_pipe => true,
        (Access::Read, _) if same_pipe => false,
        (_, _) if same_pipe => false,
        _ => true,
    }
}

/// The conflicting access pairs of two ops (regions of `a`, of `b`).
fn conflicts(a: &MicroOp, b: &MicroOp) -> Vec<(Region, Region)> {
    let mut out = Vec::new();
    for (ka, ra) in &a.accesses {
        for (kb, rb) in &b.accesses {
            if ra.overlaps(rb) && hit(a, *ka, b, *kb) {
                out.push((*ra, *rb));
            }
        }
    }
    out
}

fn conflict(a: &MicroOp, b: &MicroOp) -> Option<BTreeSet<Slot>> {
    let mut slots = BTreeSet::new();
    for (ra, rb) in conflicts(a, b) {
        slots.insert(ra.slot);
        slots.insert(rb.slot);
    }
    (!slots.is_empty()).then_some(slots)
}

/// Whether `b` is ordered after `a` by the rules (same pipe, or a need).
fn ordered(a: &MicroOp, b: &MicroOp) -> bool {
    a.pipe == b.pipe || !conflicts(a, b).is_empty()
}

/// Whether every guard and loop enclosing `z` also encloses `x` or `y`, so
/// `z` runs whenever both do (in the iteration between them).
fn runs_between(z: &Loc, x: &Loc, y: &Loc) -> bool {
    (0..z.path.len().saturating_sub(1)).all(|d| {
        let p = &z.path[..=d];
        x.path.starts_with(p) || y.path.starts_with(p)
    })
}

/// Whether the dependency `flat[i] → flat[j]` is killed by an intermediate
/// write (see the module docs). `carried` is the loop (path) through which
/// a backward pair depends.
fn killed(flat: &[Flat<'_>], i: usize, j: usize, carried: Option<&[usize]>) -> bool {
    let (x, y) = (&flat[i], &flat[j]);
    let between = |k: usize| match carried {
        None => i < k && k < j,
        Some(lp) => flat[k].loc.path.starts_with(lp) && (k > i || k < j),
    };
    conflicts(x.op, y.op).iter().all(|(ra, rb)| {
        let (lo, hi) = (ra.start.max(rb.start), ra.end.min(rb.end));
        (0..flat.len()).any(|k| {
            let z = &flat[k];
            k != i
                && k != j
                && z.op.pipe != Pipe::S
                && between(k)
                && runs_between(&z.loc, &x.loc, &y.loc)
                && z.op.accesses.iter().any(|(kz, rz)| {
                    *kz != Access::Read && rz.space == ra.space && rz.start <= lo && hi <= rz.end
                })
                && ordered(x.op, z.op)
                && ordered(z.op, y.op)
        })
    })
}

/// An inserted synchronisation instruction and where it goes.
#[derive(Clone, Debug)]
struct Insert {
    container: Vec<usize>,
    /// Insert before this child index (== len: at the end).
    at: usize,
    /// Ordering among inserts at the same place: sets, barriers, waits.
    rank: u8,
    insn: Sync,
    /// A loop's pre-set (its first iteration has nothing to wait for).
    pre: bool,
}

/// A shared event id: the buffer copies its events protect and their
/// producers (indices in the flattened program).
type SharedId = (BTreeSet<Slot>, BTreeSet<usize>);

/// A chosen event.
#[derive(Clone, Debug)]
struct Event {
    container: Vec<usize>,
    carried_loop: Option<Vec<usize>>,
    a: usize,
    b: usize,
    carried: bool,
    src: Pipe,
    dst: Pipe,
    slots: BTreeSet<Slot>,
    /// The producers' ops (indices in the flattened program).
    producers: BTreeSet<usize>,
}

/// Inserts the synchronisation a program needs. `ids` is the number of
/// event ids per pipe pair.
pub fn insert(items: Vec<Item>, ids: u32) -> Result<Vec<Item>, String> {
    let mut flat = Vec::new();
    flatten(&items, &mut Vec::new(), &mut Vec::new(), &mut flat);
    let mut needs: Vec<Need> = Vec::new();
    for (i, x) in flat.iter().enumerate() {
        if x.op.pipe == Pipe::S {
            continue; // scalar accesses complete at issue
        }
        for (j, y) in flat.iter().enumerate() {
            let Some(slots) = conflict(x.op, y.op) else {
                continue;
            };
            let common = x
                .loc
                .path
                .iter()
                .zip(&y.loc.path)
                .take_while(|(a, b)| a == b)
                .count();
            // A container is addressed by the path of the item whose body
            // holds its children (the root is `[]`); its children sit at
            // depth `container.len()`. Both kinds of dependency are placed in
            // the innermost container holding both ops, so a guard that
            // skips them skips their events too and every event still
            // alternates set, wait, set.
            let mut container = x.loc.path[..common.min(x.loc.path.len() - 1)].to_vec();
            let (carried_loop, carried) = if i < j {
                (None, false)
            } else {
                // Loop-carried: the pre-set goes before the innermost loop
                // holding both ops.
                match (0..common.min(x.loc.loops.len()))
                    .rev()
                    .find(|&m| x.loc.loops[m])
                {
                    Some(m) => (Some(x.loc.path[..=m].to_vec()), true),
                    None => continue,
                }
            };
            if killed(&flat, i, j, carried_loop.as_deref()) {
                continue;
            }
            if let Some(lp) = &carried_loop
                && container.len() > lp.len()
                && flat.iter().any(|z| {
                    z.loc.path.starts_with(lp)
                        && !z.loc.path.starts_with(&container)
                        && z.op.accesses.iter().any(|(_, r)| slots.contains(&r.slot))
                })
            {
                // The two ops run in different iterations, each in its own
                // instance of the guard holding both. When the buffer is
                // also used elsewhere in the loop, the event lives in the
                // loop's body, where the events of those other uses can
                // cover it (two carried events on one id would both be
                // pre-set).
                container = lp.clone();
            }
            let k = container.len();
            let (cx, cy) = (x.loc.path[k], y.loc.path[k]);
            let pair = (x.op.pipe != y.op.pipe).then_some((x.op.pipe, y.op.pipe));
            needs.push(Need {
                container,
                x: cx,
                y: cy,
                carried,
                carried_loop,
                pair,
                pipe: y.op.pipe,
                producer: i,
                slots,
            });
        }
    }
    needs.sort_by(|a, b| {
        (a.carried, &a.container, a.y, std::cmp::Reverse(a.x)).cmp(&(
            b.carried,
            &b.container,
            b.y,
            std::cmp::Reverse(b.x),
        ))
    });
    // Choose events and barriers, skipping covered needs.
    let mut events: Vec<Event> = Vec::new();
    let mut barriers: Vec<(Vec<usize>, usize, Pipe)> = Vec::new();
    for n in &needs {
        match n.pair {
            Some((src, dst)) => {
                if let Some(e) = events.iter_mut().find(|e| {
                    e.container == n.container
                        && e.carried == n.carried
                        && e.src == src
                        && e.dst == dst
                        && e.a >= n.x
                        && e.b <= n.y
                }) {
                    e.slots.extend(n.slots.iter().copied());
                    e.producers.insert(n.producer);
                    continue;
                }
                // A carried need is also covered by a forward event of the
                // pair whose wait precedes the consumer (its set follows
                // everything the producer's pipe did in the previous
                // iteration), or whose set follows the producer (its wait,
                // in the same iteration, precedes the next one).
                if n.carried
                    && events.iter().any(|e| {
                        !e.carried
                            && e.container == n.container
                            && e.src == src
                            && e.dst == dst
                            && (e.b <= n.y || e.a >= n.x)
                    })
                {
                    continue;
                }
                events.push(Event {
                    container: n.container.clone(),
                    carried_loop: n.carried_loop.clone(),
                    a: n.x,
                    b: n.y,
                    carried: n.carried,
                    src,
                    dst,
                    slots: n.slots.clone(),
                    producers: BTreeSet::from([n.producer]),
                });
            }
            None => {
                let covered = barriers.iter().any(|(c, at, p)| {
                    *c == n.container
                        && *p == n.pipe
                        && if n.carried {
                            *at > n.x || *at <= n.y
                        } else {
                            *at > n.x && *at <= n.y
                        }
                });
                if !covered {
                    barriers.push((n.container.clone(), n.y, n.pipe));
                }
            }
        }
    }
    // Too many events for a pipe pair: merge two of the same container into
    // one that sets after both producers and waits before both consumers
    // (less overlap, still correct), until they fit.
    loop {
        let mut over = None;
        for e in &events {
            let n = events
                .iter()
                .filter(|o| (o.src, o.dst) == (e.src, e.dst))
                .count();
            if n as u32 > ids {
                over = Some((e.src, e.dst));
                break;
            }
        }
        let Some(pair) = over else { break };
        let idx: Vec<usize> = (0..events.len())
            .filter(|&i| (events[i].src, events[i].dst) == pair)
            .collect();
        let mut merged = false;
        'search: for (n, &i) in idx.iter().enumerate() {
            for &j in &idx[n + 1..] {
                let (ei, ej) = (&events[i], &events[j]);
                if ei.container != ej.container
                    || ei.carried != ej.carried
                    || ei.carried_loop != ej.carried_loop
                {
                    continue;
                }
                let (a, b) = (ei.a.max(ej.a), ei.b.min(ej.b));
                if ei.carried || a < b {
                    let (slots, producers) = (ej.slots.clone(), ej.producers.clone());
                    events[i].a = a;
                    events[i].b = b;
                    events[i].slots.extend(slots);
                    events[i].producers.extend(producers);
                    events.remove(j);
                    merged = true;
                    break 'search;
                }
            }
        }
        if !merged {
            break;
        }
    }
    // Event ids: one per event and pipe pair where they fit. A single event
    // alternates set and wait through its buffer's life cycle (the producer
    // rewrites the buffer only after the consumer released it). A pair with
    // more events than ids shares one id per distinct set of protected
    // buffer copies instead: the events of one buffer copy alternate too,
    // since each rewrite of the copy is ordered after the previous use.
    let mut per_pair: BTreeMap<(Pipe, Pipe), usize> = BTreeMap::new();
    for e in &events {
        *per_pair.entry((e.src, e.dst)).or_default() += 1;
    }
    let mut counts: BTreeMap<(Pipe, Pipe), u32> = BTreeMap::new();
    // Per pair: each shared id's buffer copies and the producers of its
    // events so far.
    let mut keys: BTreeMap<(Pipe, Pipe), Vec<SharedId>> = BTreeMap::new();
    let mut event_ids = Vec::with_capacity(events.len());
    for e in &events {
        let pair = (e.src, e.dst);
        let id = if per_pair[&pair] as u32 <= ids {
            let next = counts.entry(pair).or_default();
            *next += 1;
            *next - 1
        } else {
            // Two events signalling the same producers' writes could both
            // be set before the consumer's first wait: they never share.
            let list = keys.entry(pair).or_default();
            match list
                .iter()
                .position(|(k, p)| k == &e.slots && p.is_disjoint(&e.producers))
            {
                Some(i) => {
                    list[i].1.extend(e.producers.iter().copied());
                    i as u32
                }
                None => {
                    list.push((e.slots.clone(), e.producers.clone()));
                    list.len() as u32 - 1
                }
            }
        };
        if id >= ids {
            return Err(format!(
                "the stage needs more than {ids} events from {} to {}",
                e.src.name(),
                e.dst.name()
            ));
        }
        event_ids.push(id);
    }
    let mut inserts: Vec<Insert> = Vec::new();
    for (e, &id) in events.iter().zip(&event_ids) {
        inserts.push(Insert {
            container: e.container.clone(),
            at: e.a + 1,
            rank: 0,
            insn: Sync::Set(e.src, e.dst, id),
            pre: false,
        });
        inserts.push(Insert {
            container: e.container.clone(),
            at: e.b,
            rank: 2,
            insn: Sync::Wait(e.src, e.dst, id),
            pre: false,
        });
        if let Some(lp) = &e.carried_loop {
            // Before the loop: the first iteration has nothing to wait for.
            // When the loop runs inside outer loops whose bodies use the id
            // nowhere else, the pre-set goes before the outermost of them
            // and the last iteration's event is consumed by the first wait
            // of the loop's next run (no drain, so the next run's first
            // writer overlaps this run's last reader).
            let mut at = lp.clone();
            for outer in enclosing_loops(&items, lp) {
                let shared = events.iter().zip(&event_ids).any(|(f, &fid)| {
                    (f.src, f.dst, fid) == (e.src, e.dst, id)
                        && f.container.starts_with(&outer)
                        && !f.container.starts_with(lp)
                });
                if shared {
                    break;
                }
                at = outer;
            }
            let (parent, idx) = split_last(&at);
            inserts.push(Insert {
                container: parent.to_vec(),
                at: idx,
                rank: 0,
                insn: Sync::Set(e.src, e.dst, id),
                pre: true,
            });
            if inside_loop(&items, parent) {
                inserts.push(Insert {
                    container: parent.to_vec(),
                    at: idx + 1,
                    rank: 2,
                    insn: Sync::Wait(e.src, e.dst, id),
                    pre: false,
                });
            }
        }
    }
    for (c, at, p) in barriers {
        inserts.push(Insert {
            container: c,
            at,
            rank: 1,
            insn: Sync::Barrier(p),
            pre: false,
        });
    }
    inserts.sort_by(|a, b| (&a.container, a.at, a.rank).cmp(&(&b.container, b.at, b.rank)));
    // The same instruction twice at one place would set a set event (or
    // wait for one that is set once): keep one.
    let mut kept: Vec<Insert> = Vec::with_capacity(inserts.len());
    for ins in inserts {
        if !kept
            .iter()
            .any(|k| k.container == ins.container && k.at == ins.at && k.insn == ins.insn)
        {
            kept.push(ins);
        }
    }
    // A loop's pre-set where another event of its id is waited for before
    // the same loop (ids shared by the buffer copies they protect: that
    // event's set also says the copies are free) would set the id while
    // it may still be set. The loop's first iteration waits for that set
    // instead: both go.
    let mut dropped = vec![false; kept.len()];
    for i in 0..kept.len() {
        let (&Sync::Set(src, dst, id), true) = (&kept[i].insn, kept[i].pre) else {
            continue;
        };
        if let Some(w) = (0..kept.len()).find(|&j| {
            !dropped[j]
                && kept[j].container == kept[i].container
                && kept[j].at == kept[i].at
                && kept[j].insn == Sync::Wait(src, dst, id)
        }) {
            dropped[i] = true;
            dropped[w] = true;
        }
    }
    let inserts: Vec<Insert> = kept
        .into_iter()
        .zip(dropped)
        .filter_map(|(k, d)| (!d).then_some(k))
        .collect();
    Ok(apply(items, &mut Vec::new(), &inserts))
}

fn split_last(p: &[usize]) -> (&[usize], usize) {
    match p.split_last() {
        Some((last, rest)) => (rest, *last),
        None => (p, 0),
    }
}

/// The loops enclosing the item at `path`, innermost first (their paths).
fn enclosing_loops(items: &[Item], path: &[usize]) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut level = items;
    for (d, &i) in path.iter().enumerate().take(path.len().saturating_sub(1)) {
        match level.get(i) {
            Some(Item::Loop { body, .. }) => {
                out.push(path[..=d].to_vec());
                level = body;
            }
            Some(Item::Guard { body, .. }) => level = body,
            _ => break,
        }
    }
    out.reverse();
    out
}

/// Whether the container at `path` lies inside some loop.
fn inside_loop(items: &[Item], path: &[usize]) -> bool {
    let mut level = items;
    for &i in path {
        match level.get(i) {
            Some(Item::Loop { .. }) => return true,
            Some(Item::Guard { body, .. }) => level = body,
            _ => return false,
        }
    }
    false
}

fn apply(items: Vec<Item>, path: &mut Vec<usize>, inserts: &[Insert]) -> Vec<Item> {
    let here: Vec<&Insert> = inserts.iter().filter(|i| i.container == *path).collect();
    let n = items.len();
    let mut out = Vec::with_capacity(n + here.len());
    for (i, it) in items.into_iter().enumerate() {
        for ins in here.iter().filter(|x| x.at == i) {
            out.push(Item::Sync(ins.insn.clone()));
        }
        path.push(i);
        let it = match it {
            Item::Loop {
                exit_if,
                body,
                latch,
            } => Item::Loop {
                exit_if,
                body: apply(body, path, inserts),
                latch,
            },
            Item::Guard { skip_if, body } => Item::Guard {
                skip_if,
                body: apply(body, path, inserts),
            },
            other => other,
        };
        path.pop();
        out.push(it);
    }
    for ins in here.iter().filter(|x| x.at >= n) {
        out.push(Item::Sync(ins.insn.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npu::inst::Inst;
    use crate::npu::prog::{Branch, Region, Slot};
    use tessera_ir::plan::MemSpace;
    use tessera_sim::isa::{Cond, Reg};

    /// A micro-op tagged `name` (its text in [`text`]) on `pipe` with
    /// accesses `(kind, start, end, slot)` in UB.
    fn op(name: &'static str, pipe: Pipe, acc: &[(Access, u64, u64, u64)]) -> Item {
        Item::Op(MicroOp {
            inst: Inst::SLi {
                rd: Reg(0),
                imm: NAMES.iter().position(|n| *n == name).unwrap_or(0) as i128,
            },
            pipe,
            accesses: acc
                .iter()
                .map(|&(a, start, end, slot)| {
                    (
                        a,
                        Region {
                            space: MemSpace::Ub,
                            start,
                            end,
                            slot: Slot {
                                space: MemSpace::Ub,
                                start: slot,
                            },
                        },
                    )
                })
                .collect(),
        })
    }

    const NAMES: [&str; 14] = [
        "load", "compute", "store", "a", "b", "mmad0", "mmad1", "load a", "load b", "add", "load0",
        "load1", "mmad", "inc",
    ];

    /// A loop exit or guard skip on `r0`.
    fn when(n: i64) -> Vec<Branch> {
        vec![Branch::new(Cond::Ge, Reg(0), n)]
    }

    /// A scalar instruction, printed `inc`.
    fn inc() -> Item {
        Item::Scalar(Inst::SLi {
            rd: Reg(0),
            imm: 13,
        })
    }

    /// The program after sync insertion, as text: ops by name, loops as
    /// `L<n>:` … `jmp L<n>` `L<n>_end:`, guards ending in `G<n>_skip:`.
    fn text(items: Vec<Item>) -> String {
        fn go(items: &[Item], out: &mut String, n: &mut u32) {
            for it in items {
                match it {
                    Item::Op(MicroOp {
                        inst: Inst::SLi { imm, .. },
                        ..
                    })
                    | Item::Scalar(Inst::SLi { imm, .. }) => {
                        out.push_str(&format!("    {}\n", NAMES[*imm as usize]));
                    }
                    Item::Op(_) | Item::Scalar(_) => out.push_str("    ?\n"),
                    Item::Sync(s) => out.push_str(&match s {
                        Sync::Set(a, b, i) => {
                            format!("    sync.set {}, {}, {i}\n", a.name(), b.name())
                        }
                        Sync::Wait(a, b, i) => {
                            format!("    sync.wait {}, {}, {i}\n", a.name(), b.name())
                        }
                        Sync::Barrier(p) => format!("    sync.barrier {}\n", p.name()),
                    }),
                    Item::Loop {
                        exit_if,
                        body,
                        latch,
                    } => {
                        *n += 1;
                        let l = *n;
                        out.push_str(&format!("L{l}:\n"));
                        for _ in exit_if {
                            out.push_str(&format!("    br L{l}_end\n"));
                        }
                        go(body, out, n);
                        go(latch, out, n);
                        out.push_str(&format!("    jmp L{l}\nL{l}_end:\n"));
                    }
                    Item::Guard { skip_if, body } => {
                        *n += 1;
                        let g = *n;
                        for _ in skip_if {
                            out.push_str(&format!("    br G{g}_skip\n"));
                        }
                        go(body, out, n);
                        out.push_str(&format!("G{g}_skip:\n"));
                    }
                }
            }
        }
        let mut s = String::new();
        go(&insert(items, 8).unwrap(), &mut s, &mut 0);
        s
    }

    use Access::{Accumulate, Read, Write};

    #[test]
    fn straight_line_load_compute_store() {
        // MTE2 writes [0,64); V reads it and writes [64,128); MTE3 reads that.
        let items = vec![
            op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
            op(
                "compute",
                Pipe::V,
                &[(Read, 0, 64, 0), (Write, 64, 128, 64)],
            ),
            op("store", Pipe::Mte3, &[(Read, 64, 128, 64)]),
        ];
        assert_eq!(
            text(items),
            "    load\n    sync.set mte2, v, 0\n    sync.wait mte2, v, 0\n    compute\n    sync.set v, mte3, 0\n    sync.wait v, mte3, 0\n    store\n"
        );
    }

    #[test]
    fn a_dependent_op_in_the_same_pipe_gets_a_barrier_but_accumulation_does_not() {
        let items = vec![
            op("a", Pipe::V, &[(Write, 0, 64, 0)]),
            op("b", Pipe::V, &[(Read, 0, 64, 0)]),
            op("mmad0", Pipe::M, &[(Accumulate, 256, 512, 256)]),
            op("mmad1", Pipe::M, &[(Accumulate, 256, 512, 256)]),
        ];
        assert_eq!(
            text(items),
            "    a\n    sync.barrier v\n    b\n    mmad0\n    mmad1\n"
        );
    }

    #[test]
    fn a_ping_pong_loop_pre_sets_its_carried_events() {
        // Each iteration loads a buffer and computes from it; the next load
        // overwrites what the compute read: a carried V -> MTE2 event, set
        // before the loop for the first iteration.
        let items = vec![Item::Loop {
            exit_if: when(4),
            body: vec![
                op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
                op("compute", Pipe::V, &[(Read, 0, 64, 0)]),
            ],
            latch: vec![inc()],
        }];
        assert_eq!(
            text(items),
            "    sync.set v, mte2, 0\nL1:\n    br L1_end\n    sync.wait v, mte2, 0\n    load\n    sync.set mte2, v, 0\n    sync.wait mte2, v, 0\n    compute\n    sync.set v, mte2, 0\n    inc\n    jmp L1\nL1_end:\n"
        );
    }

    #[test]
    fn events_of_ops_inside_one_guard_stay_inside_it() {
        // Both ends of the carried event are in the guard: when it is
        // skipped, neither the set nor the wait runs.
        let guard = Item::Guard {
            skip_if: when(4),
            body: vec![
                op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
                op("compute", Pipe::V, &[(Read, 0, 64, 0)]),
            ],
        };
        let items = vec![Item::Loop {
            exit_if: vec![],
            body: vec![guard],
            latch: vec![],
        }];
        let t = text(items);
        let inside = t.split("br G2_skip\n").nth(1).unwrap_or("");
        assert!(inside.contains("sync.wait v, mte2, 0\n    load"), "{t}");
        assert!(
            inside.contains("compute\n    sync.set v, mte2, 0\nG2_skip:"),
            "{t}"
        );
        assert!(t.starts_with("    sync.set v, mte2, 0\nL1:"), "{t}");
    }

    #[test]
    fn several_producers_share_one_event() {
        // Two loads feed one compute: one event after the second load.
        let items = vec![
            op("load a", Pipe::Mte2, &[(Write, 0, 64, 0)]),
            op("load b", Pipe::Mte2, &[(Write, 64, 128, 64)]),
            op("add", Pipe::V, &[(Read, 0, 64, 0), (Read, 64, 128, 64)]),
        ];
        assert_eq!(
            text(items),
            "    load a\n    load b\n    sync.set mte2, v, 0\n    sync.wait mte2, v, 0\n    add\n"
        );
    }

    #[test]
    fn a_write_between_kills_the_older_dependency() {
        // Two steps on one buffer per iteration: the second load's data is
        // never read by the next iteration's first mmad (the first load
        // overwrites it), so no loop-carried load -> mmad event exists.
        let body = vec![
            op("load0", Pipe::Mte1, &[(Write, 0, 512, 0)]),
            op("mmad0", Pipe::M, &[(Read, 0, 512, 0)]),
            op("load1", Pipe::Mte1, &[(Write, 0, 512, 0)]),
            op("mmad1", Pipe::M, &[(Read, 0, 512, 0)]),
        ];
        let out = text(vec![Item::Loop {
            exit_if: vec![],
            body,
            latch: vec![],
        }]);
        let before_loop = out.split("L1:").next().unwrap();
        assert!(!before_loop.contains("sync.set mte1, m"), "{out}");
        // The write-after-read back edge is real: pre-set once.
        assert_eq!(before_loop.matches("sync.set m, mte1").count(), 1, "{out}");
    }

    #[test]
    fn a_nested_loops_carried_event_is_not_drained_per_outer_iteration() {
        let inner = Item::Loop {
            exit_if: vec![],
            body: vec![
                op("load", Pipe::Mte1, &[(Write, 0, 512, 0)]),
                op("mmad", Pipe::M, &[(Read, 0, 512, 0)]),
            ],
            latch: vec![],
        };
        let out = text(vec![Item::Loop {
            exit_if: vec![],
            body: vec![inner],
            latch: vec![],
        }]);
        // Pre-set before the outer loop, no wait after the inner one.
        let (before, rest) = out.split_once("L1:").unwrap();
        assert!(before.contains("sync.set m, mte1, 0"), "{out}");
        let after_inner = rest.split("L2_end:").nth(1).unwrap();
        assert!(!after_inner.contains("sync.wait m, mte1"), "{out}");
    }
}
