//! `fuse/*`: fused groups, grown by rewriting. A group is a
//! [`ENode::Fused`] node: a closed body over input classes. Seeds wrap one
//! op; growth inlines an input's own group into the body. Growth never
//! shrinks and is capped by the [`Budget`] (ops, inputs, UB bytes per
//! element, alternatives per class), so the phase saturates. The unfused
//! nodes stay in the e-graph: extraction decides, by cost, which groups to
//! keep, and whether a value used twice is recomputed in each group or
//! materialised once.

use super::{Budget, Phase, Rule};
use crate::opt::analysis::{EGraph, GrowKey, Meta, body_types, is_elementwise};
use crate::opt::group::{
    GroupKind, classify, rows_bytes_per_element, rows_form, ub_bytes_per_element,
};
use crate::opt::lang::{Arg, Body, ENode, OpKey};
use egg::{Applier, Id, PatternAst, Rewrite, Subst, Symbol};
use rustc_hash::FxHashMap;
use tessera_ir::plan::rows::ROW_ALIGN;
use tessera_ir::{Op, TensorType};

/// Smallest tile (elements) a fused elementwise group must fit in UB.
pub const MIN_TILE_ELEMENTS: u64 = 1024;

/// Smallest chunk (elements) a row group whose rows do not fit UB whole
/// must stream in (shorter chunks would spend their time on fixed costs).
pub const MIN_CHUNK: u64 = 2048;

/// The fusion rules.
pub fn rules(budget: Budget) -> Vec<Rule> {
    vec![
        super::node_rule(Phase::Fuse, "fuse/seed", seeds, seed),
        grow_rule(budget),
    ]
}

fn seeds(n: &ENode) -> bool {
    n.ir_op().is_some_and(|op| {
        is_elementwise(op)
            || matches!(
                op,
                Op::MatMul | Op::Reduce { .. } | Op::Reshape(_) | Op::BroadcastTo(_)
            )
    })
}

/// `f(x₁, …, xₙ)` ⇒ `fused[f(in0, …, inₙ₋₁)](x₁, …, xₙ)`.
fn seed(eg: &mut EGraph, _: Id, n: &ENode) -> Vec<Id> {
    let ENode::Op(key, children) = n else {
        return Vec::new();
    };
    let body = Body {
        nodes: vec![(
            key.clone(),
            (0..children.len() as u32).map(Arg::In).collect(),
        )],
    };
    let (body, children) = canonical(body, children.clone());
    let b = eg.analysis.intern(body);
    vec![eg.add(ENode::Fused(b, children))]
}

/// Renumbers a body's inputs in order of first use and drops duplicates
/// (inputs naming the same class), so that equal computations intern to
/// one body.
fn canonical(body: Body, inputs: Vec<Id>) -> (Body, Vec<Id>) {
    let mut order: Vec<Id> = Vec::new();
    let mut map = vec![0u32; inputs.len()];
    let mut seen = vec![false; inputs.len()];
    for (_, args) in &body.nodes {
        for a in args {
            if let Arg::In(i) = *a {
                let i = i as usize;
                if !seen[i] {
                    seen[i] = true;
                    let class = inputs[i];
                    map[i] = match order.iter().position(|&c| c == class) {
                        Some(p) => p as u32,
                        None => {
                            order.push(class);
                            (order.len() - 1) as u32
                        }
                    };
                }
            }
        }
    }
    let nodes = body
        .nodes
        .into_iter()
        .map(|(op, args)| {
            let args = args
                .into_iter()
                .map(|a| match a {
                    Arg::In(i) => Arg::In(map[i as usize]),
                    at @ Arg::At(_) => at,
                })
                .collect();
            (op, args)
        })
        .collect();
    (Body { nodes }, order)
}

/// `outer` with its input `i` replaced by `inner` (over `inner_inputs`).
fn inline(
    outer: &Body,
    outer_inputs: &[Id],
    i: usize,
    inner: &Body,
    inner_inputs: &[Id],
) -> (Body, Vec<Id>) {
    let base = outer_inputs.len() as u32;
    let shift = inner.nodes.len() as u32;
    let mut nodes: Vec<(OpKey, Vec<Arg>)> = inner
        .nodes
        .iter()
        .map(|(op, args)| {
            let args = args
                .iter()
                .map(|a| match *a {
                    Arg::In(j) => Arg::In(base + j),
                    at @ Arg::At(_) => at,
                })
                .collect();
            (op.clone(), args)
        })
        .collect();
    for (op, args) in &outer.nodes {
        let args = args
            .iter()
            .map(|a| match *a {
                Arg::In(j) if j as usize == i => Arg::At(shift - 1),
                inp @ Arg::In(_) => inp,
                Arg::At(j) => Arg::At(j + shift),
            })
            .collect();
        nodes.push((op.clone(), args));
    }
    let mut inputs = outer_inputs.to_vec();
    inputs.extend_from_slice(inner_inputs);
    let (body, inputs) = canonical(Body { nodes }, inputs);
    (cse(body), inputs)
}

/// The body with repeated nodes (same op, same operands) computed once: a
/// value inlined along two paths of a diamond is one node. (Unchanged in
/// the odd case where the result itself repeats an earlier node.)
fn cse(body: Body) -> Body {
    let remap = |args: &[Arg], map: &[u32]| -> Vec<Arg> {
        args.iter()
            .map(|a| match *a {
                Arg::At(j) => Arg::At(map[j as usize]),
                inp @ Arg::In(_) => inp,
            })
            .collect()
    };
    // Keyed by the op's key and the renumbered operands, borrowing the
    // body: most bodies repeat nothing and come back as they are.
    let mut seen: FxHashMap<(&str, Vec<Arg>), u32> =
        FxHashMap::with_capacity_and_hasher(body.nodes.len(), Default::default());
    let mut map: Vec<u32> = Vec::with_capacity(body.nodes.len());
    let mut kept: Vec<usize> = Vec::with_capacity(body.nodes.len());
    for (i, (op, args)) in body.nodes.iter().enumerate() {
        let next = kept.len() as u32;
        let at = *seen.entry((op.key(), remap(args, &map))).or_insert(next);
        if at == next {
            kept.push(i);
        }
        map.push(at);
    }
    let repeats_earlier = map.last().is_some_and(|&l| l as usize + 1 != kept.len());
    if kept.len() == body.nodes.len() || repeats_earlier {
        return body;
    }
    let nodes = kept
        .iter()
        .map(|&i| {
            let (op, args) = &body.nodes[i];
            (op.clone(), remap(args, &map))
        })
        .collect();
    Body { nodes }
}

/// Absorbs inputs the body already computes: when an input's class holds
/// an op node whose operands are inputs of the body, and the body has that
/// very node, the body reads its own node instead (a value inlined along
/// one path of a diamond and still an input along the other).
fn absorb(eg: &EGraph, mut body: Body, mut inputs: Vec<Id>) -> (Body, Vec<Id>) {
    for _ in 0..inputs.len() {
        let mut hit: Option<(u32, u32)> = None;
        'inputs: for (j, &c) in inputs.iter().enumerate() {
            for en in &eg[c].nodes {
                let ENode::Op(key, ch) = en else { continue };
                let args: Option<Vec<Arg>> = ch
                    .iter()
                    .map(|x| {
                        let x = eg.find(*x);
                        inputs
                            .iter()
                            .position(|&y| eg.find(y) == x)
                            .map(|p| Arg::In(p as u32))
                    })
                    .collect();
                let Some(args) = args else { continue };
                if args.contains(&Arg::In(j as u32)) {
                    continue;
                }
                if let Some(k) = body
                    .nodes
                    .iter()
                    .position(|(op, a)| op == key && *a == args)
                {
                    hit = Some((j as u32, k as u32));
                    break 'inputs;
                }
            }
        }
        let Some((j, k)) = hit else { break };
        for (_, args) in &mut body.nodes {
            for a in args.iter_mut() {
                if *a == Arg::In(j) {
                    *a = Arg::At(k);
                }
            }
        }
        let (b, ins) = canonical(toposort(body), inputs);
        body = cse(b);
        inputs = ins;
    }
    (body, inputs)
}

/// The body's nodes in dependency order (operands first, the result last),
/// dropping nodes the result does not need.
fn toposort(body: Body) -> Body {
    let n = body.nodes.len();
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut state = vec![0u8; n]; // 0 new, 1 open, 2 done
    let mut stack: Vec<(usize, bool)> = vec![(n.saturating_sub(1), false)];
    while let Some((i, done)) = stack.pop() {
        if i >= n || state[i] == 2 {
            continue;
        }
        if done {
            state[i] = 2;
            order.push(i);
            continue;
        }
        if state[i] == 1 {
            continue; // a cycle: cannot happen for a body built from a DAG
        }
        state[i] = 1;
        stack.push((i, true));
        for a in body.nodes[i].1.iter().rev() {
            if let Arg::At(k) = *a
                && state[k as usize] == 0
            {
                stack.push((k as usize, false));
            }
        }
    }
    let mut map = vec![0u32; n];
    for (new, &old) in order.iter().enumerate() {
        map[old] = new as u32;
    }
    let nodes = order
        .iter()
        .map(|&old| {
            let (op, args) = &body.nodes[old];
            let args = args
                .iter()
                .map(|a| match *a {
                    Arg::At(k) => Arg::At(map[k as usize]),
                    inp @ Arg::In(_) => inp,
                })
                .collect();
            (op.clone(), args)
        })
        .collect();
    Body { nodes }
}

fn grow_rule(budget: Budget) -> Rule {
    let name = "fuse/grow";
    let searcher = super::NodeSearcher {
        matches: |n| matches!(n, ENode::Fused(..)),
    };
    let rewrite = Rewrite::new(name, searcher, Grow { budget })
        .unwrap_or_else(|e| unreachable!("the grow rule binds no variables: {e}"));
    Rule {
        name,
        phase: Phase::Fuse,
        rewrite,
    }
}

/// `fused[B](…, x, …)` where `x`'s class holds `fused[C](ys…)` ⇒
/// `fused[B with C inlined for x](…, ys…)`, when the result is a group
/// kind one stage computes and fits the budget.
struct Grow {
    budget: Budget,
}

/// The fused nodes of a class, largest body first (ties in node order), so
/// that growth reaches the largest groups before the per-class cap.
fn fused_nodes(eg: &EGraph, class: Id) -> Vec<(u32, Vec<Id>)> {
    let mut nodes: Vec<(u32, Vec<Id>)> = eg[class]
        .nodes
        .iter()
        .filter_map(|n| match n {
            ENode::Fused(b, c) => Some((*b, c.clone())),
            ENode::Param(_) | ENode::Op(..) => None,
        })
        .collect();
    nodes.sort_by_key(|(b, _)| std::cmp::Reverse(eg.analysis.bodies[*b as usize].nodes.len()));
    nodes
}

impl Grow {
    fn admits(&self, eg: &EGraph, body: &Body, inputs: &[Id]) -> bool {
        if body.nodes.len() > self.budget.max_ops || inputs.len() > self.budget.max_inputs {
            return false;
        }
        let in_tys: Vec<TensorType> = inputs.iter().map(|&c| eg[c].data.ty.clone()).collect();
        let consts: Vec<bool> = inputs
            .iter()
            .map(|&c| eg[c].data.constant.is_some())
            .collect();
        let Ok(tys) = body_types(body, &in_tys) else {
            return false;
        };
        match classify(body, &in_tys, &consts, &tys) {
            Some(GroupKind::Elementwise) => {
                ub_bytes_per_element(body, &in_tys, &tys) * MIN_TILE_ELEMENTS
                    <= self.budget.ub_bytes
            }
            Some(GroupKind::Rows) => rows_form(body, &in_tys, &consts, &tys).is_some_and(|f| {
                // One row (padded to whole repeats) fits, or the row
                // streams in chunks of at least MIN_CHUNK elements (the
                // cost model weighs that against smaller groups).
                let pitch = f.n.div_ceil(ROW_ALIGN) * ROW_ALIGN;
                let ub = self.budget.ub_bytes;
                let per = rows_bytes_per_element(&f, &in_tys);
                per * pitch <= ub || per * MIN_CHUNK <= ub
            }),
            Some(GroupKind::MatMulEpilogue { scale, .. }) => !scale || self.budget.coupled,
            None => {
                // A partial row group (a reshape or expansion without its
                // reduction yet) may still grow into one.
                partial_rows(body)
            }
        }
    }
}

/// A body that is not a stage yet but may become a row stage by growing:
/// it holds layout ops of per-row values (`reshape`, `broadcast_to`) and
/// elementwise ops, or reductions, and no matmul.
fn partial_rows(body: &Body) -> bool {
    body.nodes.iter().all(|(op, _)| match &op.op {
        Op::Reduce { .. } | Op::Reshape(_) | Op::BroadcastTo(_) => true,
        o @ (Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_)) => {
            is_elementwise(o)
        }
        Op::Full { .. } | Op::MatMul | Op::Transpose(_) | Op::Concat { .. } | Op::Slice { .. } => {
            false
        }
    })
}

impl Applier<ENode, Meta> for Grow {
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<ENode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let cap = self.budget.builds_per_class(egraph.number_of_classes());
        let mine = fused_nodes(egraph, eclass);
        let mut variants = mine.len();
        let mut changed = Vec::new();
        // Each input class's fused nodes as the application began (the
        // nodes it adds go to `eclass`, which no input is).
        let mut theirs: FxHashMap<Id, Vec<(u32, Vec<Id>)>> = FxHashMap::default();
        for (b, inputs) in mine {
            let outer = egraph.analysis.bodies[b as usize].clone();
            for (i, &x) in inputs.iter().enumerate() {
                if x == eclass {
                    continue;
                }
                let inners: &[(u32, Vec<Id>)] =
                    theirs.entry(x).or_insert_with(|| fused_nodes(egraph, x));
                for (c, ys) in inners {
                    let c = *c;
                    if variants >= self.budget.max_variants {
                        return changed;
                    }
                    if ys.contains(&eclass) {
                        continue; // would make the group read its own result
                    }
                    let root = egraph.find(eclass);
                    if egraph.analysis.builds(root) >= cap {
                        return changed;
                    }
                    let canon = |v: &[Id]| v.iter().map(|&y| egraph.find(y)).collect();
                    let key = GrowKey {
                        classes: egraph.number_of_classes(),
                        outer: (b, canon(&inputs), i),
                        inner: (c, canon(ys)),
                    };
                    if !egraph.analysis.first_try(key) {
                        continue;
                    }
                    egraph.analysis.count_build(root);
                    let inner = &egraph.analysis.bodies[c as usize];
                    let (body, ins) = inline(&outer, &inputs, i, inner, ys);
                    let (body, ins) = absorb(egraph, body, ins);
                    if !self.admits(egraph, &body, &ins) {
                        continue;
                    }
                    let nb = egraph.analysis.intern(body);
                    let id = egraph.add(ENode::Fused(nb, ins));
                    if egraph.union(eclass, id) {
                        variants += 1;
                        changed.push(eclass);
                    }
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlining_renumbers_inputs_by_first_use_and_shares_them() {
        let k = |op| OpKey::new(op);
        let add = Op::Binary(tessera_ir::BinaryOp::Add);
        let exp = Op::Unary(tessera_ir::UnaryOp::Exp);
        // outer: in0 + in1 over [a, b]; inner: exp(in0) over [a].
        let outer = Body {
            nodes: vec![(k(add), vec![Arg::In(0), Arg::In(1)])],
        };
        let inner = Body {
            nodes: vec![(k(exp), vec![Arg::In(0)])],
        };
        let (a, b) = (Id::from(7), Id::from(9));
        let (body, ins) = inline(&outer, &[a, b], 1, &inner, &[a]);
        // exp(a) + a: one input, read twice.
        assert_eq!(ins, vec![a]);
        assert_eq!(body.nodes[0].1, vec![Arg::In(0)]);
        assert_eq!(body.nodes[1].1, vec![Arg::In(0), Arg::At(0)]);
        assert_eq!(body.inputs(), 1);
    }
}
