//! Multi-output groups: after extraction, two elementwise stages of one
//! output shape become one stage that stores both results, when the first's
//! result leaves for the second (the second reads it) or they read a common
//! input, and nothing else lies between them. The merged stage reads each
//! input once and writes each result once: it saves the second stage's
//! read of the first's result (or of the shared inputs) and a launch.
//!
//! The e-graph's fused nodes have one result each, so this is a pass over
//! the extracted kernel: a merged group is a contiguous run of nodes whose
//! inner values may leave it (the planner stores them, `Elementwise::also`).

use super::group::{GroupKind, body_of, classify, ub_bytes_per_element};
use super::rules::Budget;
use super::rules::fuse::MIN_TILE_ELEMENTS;
use std::collections::BTreeSet;
use tessera_ir::{Kernel, Op, Output, TensorType, Value};

/// A stage of the extracted kernel: a group's run of nodes, or one node.
#[derive(Clone, Debug)]
struct Unit {
    nodes: Vec<usize>,
    group: Option<u32>,
}

fn units(k: &Kernel) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::new();
    for (i, n) in k.nodes.iter().enumerate() {
        match (out.last_mut(), n.group) {
            (Some(u), Some(g)) if u.group == Some(g) => u.nodes.push(i),
            _ => out.push(Unit {
                nodes: vec![i],
                group: n.group,
            }),
        }
    }
    out
}

/// Whether a run of nodes is one elementwise stage, within the fusion
/// budget with `stored` of its values written besides its result.
fn elementwise(k: &Kernel, nodes: &[usize], stored: usize, budget: &Budget) -> bool {
    let (Some(&first), Some(&last)) = (nodes.first(), nodes.last()) else {
        return false;
    };
    let (body, inputs) = body_of(k, first..last + 1);
    let in_tys: Vec<TensorType> = inputs.iter().map(|&v| k.ty(v).clone()).collect();
    let consts: Vec<bool> = inputs
        .iter()
        .map(|&v| matches!(v, Value::Node(j) if matches!(k.nodes[j as usize].op, Op::Full { .. })))
        .collect();
    let tys: Vec<TensorType> = nodes.iter().map(|&j| k.nodes[j].ty.clone()).collect();
    if body.nodes.len() > budget.max_ops || inputs.len() > budget.max_inputs {
        return false;
    }
    let out_bytes = tys.last().map_or(0, |t| t.dtype.size_bytes() as u64);
    matches!(
        classify(&body, &in_tys, &consts, &tys),
        Some(GroupKind::Elementwise)
    ) && (ub_bytes_per_element(&body, &in_tys, &tys) + 2 * stored as u64 * out_bytes)
        * MIN_TILE_ELEMENTS
        <= budget.ub_bytes
}

/// Merges elementwise stages into multi-output ones while any pair
/// qualifies; returns the kernel (verified by the caller) and the number of
/// merges.
pub fn merge_outputs(k: Kernel, budget: &Budget) -> (Kernel, usize) {
    let mut k = k;
    let mut merged = 0;
    // Pairs of stages looked at, over all merges: bounded, so a kernel of
    // thousands of ops stays quick (deterministically: the same pairs in
    // the same order every time).
    let mut visits = 0usize;
    // Each merge removes a unit: at most one per node.
    for _ in 0..k.nodes.len() {
        match merge_one(&k, budget, &mut visits) {
            Some(next) => {
                k = next;
                merged += 1;
            }
            None => break,
        }
    }
    (k, merged)
}

/// Most pairs of stages [`merge_outputs`] looks at.
const MAX_PAIR_VISITS: usize = 200_000;

/// The kernel with the first qualifying pair of stages merged.
fn merge_one(k: &Kernel, budget: &Budget, visits: &mut usize) -> Option<Kernel> {
    let us = units(k);
    let unit_of: Vec<usize> = {
        let mut u = vec![0; k.nodes.len()];
        for (i, unit) in us.iter().enumerate() {
            for &j in &unit.nodes {
                u[j] = i;
            }
        }
        u
    };
    // The units each unit reads (directly).
    let deps: Vec<BTreeSet<usize>> = us
        .iter()
        .map(|u| {
            u.nodes
                .iter()
                .flat_map(|&j| k.nodes[j].args.iter())
                .filter_map(|a| match *a {
                    Value::Node(n) => Some(unit_of[n as usize]),
                    Value::Param(_) => None,
                })
                .filter(|&d| !u.nodes.contains(&us[d].nodes[0]))
                .collect()
        })
        .collect();
    let root_shape = |u: &Unit| u.nodes.last().map(|&j| k.nodes[j].ty.shape.clone());
    let reads: Vec<BTreeSet<Value>> = us
        .iter()
        .map(|u| {
            u.nodes
                .iter()
                .flat_map(|&j| k.nodes[j].args.iter().copied())
                .filter(|a| !matches!(a, Value::Node(n) if u.nodes.contains(&(*n as usize))))
                .collect()
        })
        .collect();
    for (ai, a) in us.iter().enumerate() {
        let Some(&a_root) = a.nodes.last() else {
            continue;
        };
        if !elementwise(k, &a.nodes, 0, budget) {
            continue;
        }
        for (bi, b) in us.iter().enumerate().skip(ai + 1) {
            *visits += 1;
            if *visits > MAX_PAIR_VISITS {
                return None;
            }
            if root_shape(b) != root_shape(a) {
                continue;
            }
            let direct = deps[bi].contains(&ai);
            let shared = !direct && !reads[bi].is_disjoint(&reads[ai]);
            // Nothing may lie between them: B reads A directly or not at all.
            let through_other = deps[bi]
                .iter()
                .any(|&d| d != ai && deps_reach(&deps, d, ai));
            if !(direct || shared) || through_other {
                continue;
            }
            // A's values other than its root never leave it (it was one
            // stage); its root is stored when anything but B reads it.
            let root_leaves = k
                .outputs
                .iter()
                .any(|o| o.value == Value::Node(a_root as u32))
                || k.nodes.iter().enumerate().any(|(j, n)| {
                    !b.nodes.contains(&j)
                        && !a.nodes.contains(&j)
                        && n.args.contains(&Value::Node(a_root as u32))
                });
            if !root_leaves {
                continue; // plain fusion, which the extraction declined
            }
            // The fusion budget's counts first (cheap), before building the
            // reordered kernel.
            let root = Value::Node(a_root as u32);
            let inputs = reads[ai].union(&reads[bi]).filter(|&&v| v != root).count();
            if a.nodes.len() + b.nodes.len() > budget.max_ops || inputs > budget.max_inputs {
                continue;
            }
            let Some((candidate, start)) = reorder(k, &us, ai, bi) else {
                continue;
            };
            let run: Vec<usize> = (start..start + a.nodes.len() + b.nodes.len()).collect();
            let stored = escaping(&candidate, &run);
            if elementwise(&candidate, &run, stored, budget) {
                return Some(candidate);
            }
        }
    }
    None
}

/// Whether unit `from` depends on unit `to` at all.
fn deps_reach(deps: &[BTreeSet<usize>], from: usize, to: usize) -> bool {
    let mut seen = vec![false; deps.len()];
    let mut stack = vec![from];
    while let Some(u) = stack.pop() {
        if u == to {
            return true;
        }
        if std::mem::replace(&mut seen[u], true) {
            continue;
        }
        stack.extend(deps[u].iter().copied());
    }
    false
}

/// How many values of a run of nodes, besides its last, leave it.
fn escaping(k: &Kernel, run: &[usize]) -> usize {
    run.iter()
        .take(run.len().saturating_sub(1))
        .filter(|&&j| {
            let v = Value::Node(j as u32);
            k.outputs.iter().any(|o| o.value == v)
                || k.nodes
                    .iter()
                    .enumerate()
                    .any(|(i, n)| !run.contains(&i) && n.args.contains(&v))
        })
        .count()
}

/// The kernel with units `a` and `b` one group (a's nodes then b's), the
/// other units in their order where dependencies allow: a topological
/// order of the units, earliest original position first. Returns the
/// kernel and the merged run's first node.
fn reorder(k: &Kernel, us: &[Unit], a: usize, b: usize) -> Option<(Kernel, usize)> {
    // Merged units: `b` folds into `a`.
    let mut order_units: Vec<Vec<usize>> = us.iter().map(|u| u.nodes.clone()).collect();
    let b_nodes = std::mem::take(&mut order_units[b]);
    order_units[a].extend(b_nodes);
    let alive: Vec<usize> = (0..us.len()).filter(|&i| i != b).collect();
    let unit_of_node: Vec<usize> = {
        let mut v = vec![0; k.nodes.len()];
        for &u in &alive {
            for &j in &order_units[u] {
                v[j] = u;
            }
        }
        v
    };
    let mut placed = vec![false; us.len()];
    let mut order: Vec<usize> = Vec::with_capacity(alive.len());
    while order.len() < alive.len() {
        let next = alive.iter().copied().find(|&u| {
            !placed[u]
                && order_units[u].iter().all(|&j| {
                    k.nodes[j].args.iter().all(|arg| match *arg {
                        Value::Node(n) => {
                            let d = unit_of_node[n as usize];
                            d == u || placed[d]
                        }
                        Value::Param(_) => true,
                    })
                })
        })?;
        placed[next] = true;
        order.push(next);
    }
    let group = us[a].group.or(us[b].group).unwrap_or_else(|| {
        k.nodes
            .iter()
            .filter_map(|n| n.group)
            .max()
            .map_or(0, |g| g + 1)
    });
    let mut out = Kernel::new(k.name.clone());
    out.params = k.params.clone();
    let mut map: Vec<Option<Value>> = vec![None; k.nodes.len()];
    let mut start = 0;
    for u in order {
        if u == a {
            start = out.nodes.len();
        }
        for &j in &order_units[u] {
            let n = &k.nodes[j];
            let args: Vec<Value> = n
                .args
                .iter()
                .map(|&v| match v {
                    Value::Node(i) => map[i as usize],
                    p @ Value::Param(_) => Some(p),
                })
                .collect::<Option<_>>()?;
            let v = out.push(n.op.clone(), args, n.span).ok()?;
            if let Some(last) = out.nodes.last_mut() {
                last.group = if u == a { Some(group) } else { n.group };
            }
            map[j] = Some(v);
        }
    }
    for o in &k.outputs {
        let value = match o.value {
            Value::Node(i) => map[i as usize]?,
            p @ Value::Param(_) => p,
        };
        out.outputs.push(Output {
            name: o.name.clone(),
            value,
        });
    }
    Some((out, start))
}
