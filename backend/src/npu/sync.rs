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
//!   the loop (the first iteration has nothing to wait for) and, when that
//!   loop runs again inside another loop, a `wait` after it that drains the
//!   last iteration's event.
//! - A read-after-write inside one pipe needs a `barrier` of that pipe
//!   before the reader (accumulating `mmad`s are exempt, as the cube chains
//!   them in place). Scalar accesses execute at issue and need nothing.
//! - A conflict is skipped when an event already placed covers it (its `set`
//!   after the writer, its `wait` before the reader), so there are no
//!   redundant waits.
//! - Every event has its own id per pipe pair: an event alternates set and
//!   wait through the life cycle of the buffer it protects (its producer
//!   rewrites the buffer only after the consumer released it).

use super::prog::{Access, Item, MicroOp, Pipe, SyncInsn};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Buffer copies involved.
    slots: BTreeSet<u32>,
}

fn conflict(a: &MicroOp, b: &MicroOp) -> Option<BTreeSet<u32>> {
    let mut slots = BTreeSet::new();
    for (ka, ra) in &a.accesses {
        for (kb, rb) in &b.accesses {
            if !ra.overlaps(rb) {
                continue;
            }
            let same_pipe = a.pipe == b.pipe;
            let hit = match (ka, kb) {
                (Access::Read, Access::Read) => false,
                (Access::Accumulate, Access::Accumulate) => !same_pipe,
                // Inside a pipe only read-after-write needs ordering.
                (_, Access::Read) if same_pipe => true,
                (Access::Read, _) if same_pipe => false,
                (_, _) if same_pipe => false,
                _ => true,
            };
            if hit {
                slots.insert(ra.slot);
                slots.insert(rb.slot);
            }
        }
    }
    (!slots.is_empty()).then_some(slots)
}

/// An inserted synchronisation instruction and where it goes.
#[derive(Clone, Debug)]
struct Insert {
    container: Vec<usize>,
    /// Insert before this child index (== len: at the end).
    at: usize,
    /// Ordering among inserts at the same place: sets, barriers, waits.
    rank: u8,
    insn: SyncInsn,
}

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
    slots: BTreeSet<u32>,
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
            let container = x.loc.path[..common.min(x.loc.path.len() - 1)].to_vec();
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
                    let slots = ej.slots.clone();
                    events[i].a = a;
                    events[i].b = b;
                    events[i].slots.extend(slots);
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
    // Event ids: one per event and pipe pair. A single event alternates set
    // and wait through its buffer's life cycle (the producer rewrites the
    // buffer only after the consumer released it); two events sharing an id
    // would have no such guarantee.
    let mut counts: BTreeMap<(Pipe, Pipe), u32> = BTreeMap::new();
    let mut inserts: Vec<Insert> = Vec::new();
    for e in &events {
        let next = counts.entry((e.src, e.dst)).or_default();
        let id = *next;
        *next += 1;
        if id >= ids {
            return Err(format!(
                "the stage needs more than {ids} events from {} to {}",
                e.src.name(),
                e.dst.name()
            ));
        }
        inserts.push(Insert {
            container: e.container.clone(),
            at: e.a + 1,
            rank: 0,
            insn: SyncInsn::Set(e.src, e.dst, id),
        });
        inserts.push(Insert {
            container: e.container.clone(),
            at: e.b,
            rank: 2,
            insn: SyncInsn::Wait(e.src, e.dst, id),
        });
        if let Some(lp) = &e.carried_loop {
            // Before the loop: the first iteration has nothing to wait for.
            let (parent, idx) = split_last(lp);
            inserts.push(Insert {
                container: parent.to_vec(),
                at: idx,
                rank: 0,
                insn: SyncInsn::Set(e.src, e.dst, id),
            });
            if inside_loop(&items, parent) {
                inserts.push(Insert {
                    container: parent.to_vec(),
                    at: idx + 1,
                    rank: 2,
                    insn: SyncInsn::Wait(e.src, e.dst, id),
                });
            }
        }
    }
    for (c, at, p) in barriers {
        inserts.push(Insert {
            container: c,
            at,
            rank: 1,
            insn: SyncInsn::Barrier(p),
        });
    }
    inserts.sort_by(|a, b| (&a.container, a.at, a.rank).cmp(&(&b.container, b.at, b.rank)));
    inserts.dedup_by(|a, b| a.container == b.container && a.at == b.at && a.insn == b.insn);
    Ok(apply(items, &mut Vec::new(), &inserts))
}

fn split_last(p: &[usize]) -> (&[usize], usize) {
    match p.split_last() {
        Some((last, rest)) => (rest, *last),
        None => (p, 0),
    }
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
                label,
                header,
                body,
                latch,
            } => Item::Loop {
                label,
                header,
                body: apply(body, path, inserts),
                latch,
            },
            Item::Guard {
                label,
                skip_if,
                body,
            } => Item::Guard {
                label,
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
    use crate::npu::prog::{Region, Space, print};

    fn op(text: &str, pipe: Pipe, acc: &[(Access, u64, u64, u32)]) -> Item {
        Item::Op(MicroOp {
            text: text.to_string(),
            pipe,
            accesses: acc
                .iter()
                .map(|&(a, start, end, slot)| {
                    (
                        a,
                        Region {
                            space: Space::Ub,
                            start,
                            end,
                            slot,
                        },
                    )
                })
                .collect(),
        })
    }

    fn text(items: Vec<Item>) -> String {
        let mut s = String::new();
        print(&insert(items, 8).unwrap(), &mut s);
        s
    }

    use Access::{Accumulate, Read, Write};

    #[test]
    fn straight_line_load_compute_store() {
        // MTE2 writes [0,64); V reads it and writes [64,128); MTE3 reads that.
        let items = vec![
            op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
            op("compute", Pipe::V, &[(Read, 0, 64, 0), (Write, 64, 128, 1)]),
            op("store", Pipe::Mte3, &[(Read, 64, 128, 1)]),
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
            op("mmad0", Pipe::M, &[(Accumulate, 256, 512, 1)]),
            op("mmad1", Pipe::M, &[(Accumulate, 256, 512, 1)]),
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
            label: "L".into(),
            header: vec!["s.br.ge r0, 4, L_end".into()],
            body: vec![
                op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
                op("compute", Pipe::V, &[(Read, 0, 64, 0)]),
            ],
            latch: vec!["s.add r0, r0, 1".into()],
        }];
        assert_eq!(
            text(items),
            "    sync.set v, mte2, 0\nL:\n    s.br.ge r0, 4, L_end\n    sync.wait v, mte2, 0\n    load\n    sync.set mte2, v, 0\n    sync.wait mte2, v, 0\n    compute\n    sync.set v, mte2, 0\n    s.add r0, r0, 1\n    s.jmp L\nL_end:\n"
        );
    }

    #[test]
    fn events_of_ops_inside_one_guard_stay_inside_it() {
        // Both ends of the carried event are in the guard: when it is
        // skipped, neither the set nor the wait runs.
        let guard = Item::Guard {
            label: "G".into(),
            skip_if: "s.br.ge r1, 4, G_skip".into(),
            body: vec![
                op("load", Pipe::Mte2, &[(Write, 0, 64, 0)]),
                op("compute", Pipe::V, &[(Read, 0, 64, 0)]),
            ],
        };
        let items = vec![Item::Loop {
            label: "L".into(),
            header: vec![],
            body: vec![guard],
            latch: vec![],
        }];
        let t = text(items);
        let inside = t.split("G_skip\n").nth(1).unwrap_or("");
        assert!(inside.contains("sync.wait v, mte2, 0\n    load"), "{t}");
        assert!(
            inside.contains("compute\n    sync.set v, mte2, 0\nG_skip:"),
            "{t}"
        );
        assert!(t.starts_with("    sync.set v, mte2, 0\nL:"), "{t}");
    }

    #[test]
    fn several_producers_share_one_event() {
        // Two loads feed one compute: one event after the second load.
        let items = vec![
            op("load a", Pipe::Mte2, &[(Write, 0, 64, 0)]),
            op("load b", Pipe::Mte2, &[(Write, 64, 128, 1)]),
            op("add", Pipe::V, &[(Read, 0, 64, 0), (Read, 64, 128, 1)]),
        ];
        assert_eq!(
            text(items),
            "    load a\n    load b\n    sync.set mte2, v, 0\n    sync.wait mte2, v, 0\n    add\n"
        );
    }
}
