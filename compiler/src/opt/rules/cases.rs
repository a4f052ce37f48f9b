//! One case per rule, and the three tests every rule gets from it:
//!
//! - *unit*: the start kernel's e-graph, with the goal added, has the goal
//!   in another class than the start's result until the rule alone runs,
//!   and in the same class after (for `fuse/*`: the result class gains a
//!   fused node holding the start's ops);
//! - *equivalence*: start and goal (for `fuse/*`: the kernel rebuilt from
//!   that fused node) agree on the reference interpreter on random inputs,
//!   for every dtype the case lists, under the spec's comparison rule (bit
//!   for bit where the ops are exact);
//! - *tidy*: every rule has a case and every case names a rule.
//!
//! Kernels are IR text with `{T}` for the dtype, `{one}`/`{two}` for
//! constants of that dtype.

use super::{Budget, Phase, all};
use crate::opt::analysis::{EGraph, Meta};
use crate::opt::lang::ENode;
use egg::{Id, Runner, SimpleScheduler};
use std::collections::HashMap;
use tessera_ir::{DType, Kernel};

/// The rule's goal.
enum Goal {
    /// This kernel's result is equal to the start's.
    Kernel(&'static str),
    /// The start's result class holds a fused node of this many ops.
    Fused(usize),
}

struct Case {
    rule: &'static str,
    /// Rules that must run with it (a seed for growth).
    with: &'static [&'static str],
    dtypes: &'static [DType],
    start: &'static str,
    goal: Goal,
}

const FLOATS: &[DType] = &[DType::F32, DType::F16, DType::BF16];
const NUMERIC: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::I32, DType::I8];
const ANY: &[DType] = &[DType::F32, DType::F16, DType::BF16, DType::I32, DType::I8];

const CASES: &[Case] = &[
    Case {
        rule: "canon/fold",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {one} : {T}[]
  %1 = full {two} : {T}[]
  %2 = add %0, %1 : {T}[]
  %3 = mul %x, %2 : {T}[4, 8]
  return %3
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {three} : {T}[]
  %1 = mul %x, %0 : {T}[4, 8]
  return %1
}",
        ),
    },
    Case {
        rule: "canon/reshape-noop",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = reshape %x : {T}[4, 8]
  %1 = neg %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/reshape-reshape",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[8, 4]) {
  %0 = reshape %x : {T}[32]
  %1 = reshape %0 : {T}[8, 4]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[8, 4]) {
  %0 = reshape %x : {T}[8, 4]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/broadcast-noop",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = broadcast_to %x : {T}[4, 8]
  %1 = neg %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/broadcast-broadcast",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[8]) -> (out0: {T}[2, 4, 8]) {
  %0 = broadcast_to %x : {T}[4, 8]
  %1 = broadcast_to %0 : {T}[2, 4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[8]) -> (out0: {T}[2, 4, 8]) {
  %0 = broadcast_to %x : {T}[2, 4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/transpose-identity",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = transpose %x perm=[0, 1] : {T}[4, 8]
  %1 = neg %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/transpose-transpose",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[2, 3, 4]) -> (out0: {T}[3, 2, 4]) {
  %0 = transpose %x perm=[2, 0, 1] : {T}[4, 2, 3]
  %1 = transpose %0 perm=[2, 1, 0] : {T}[3, 2, 4]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[2, 3, 4]) -> (out0: {T}[3, 2, 4]) {
  %0 = transpose %x perm=[1, 0, 2] : {T}[3, 2, 4]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/cast-noop",
        with: &[],
        dtypes: ANY,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = cast %x : {T}[4, 8]
  %1 = neg %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "canon/cast-roundtrip",
        with: &[],
        dtypes: &[DType::F16, DType::BF16, DType::I8],
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = cast %x : f32[4, 8]
  %1 = cast %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/mul-one",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {one} : {T}[]
  %1 = mul %x, %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/one-mul",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {one} : {T}[]
  %1 = mul %0, %x : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/div-one",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {one} : {T}[]
  %1 = div %x, %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/sub-zero",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {zero} : {T}[]
  %1 = sub %x, %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/add-neg-zero",
        with: &[],
        dtypes: FLOATS,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full -0.0 : {T}[]
  %1 = add %x, %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/neg-neg",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  %1 = neg %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/abs-neg",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = neg %x : {T}[4, 8]
  %1 = abs %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = abs %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "algebra/relu-relu",
        with: &[],
        dtypes: FLOATS,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = relu %x : {T}[4, 8]
  %1 = relu %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = relu %x : {T}[4, 8]
  return %0
}",
        ),
    },
    Case {
        rule: "algebra/max-self",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = maximum %x, %x : {T}[4, 8]
  return %0
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/min-self",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = minimum %x, %x : {T}[4, 8]
  return %0
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/select-same",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full {zero} : {T}[]
  %1 = lt %x, %0 : bool[4, 8]
  %2 = select %1, %x, %x : {T}[4, 8]
  return %2
}",
        goal: Goal::Kernel(IDENTITY),
    },
    Case {
        rule: "algebra/div-pow2",
        with: &[],
        dtypes: FLOATS,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full -4.0 : {T}[]
  %1 = div %x, %0 : {T}[4, 8]
  return %1
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = full -0.25 : {T}[]
  %1 = mul %x, %0 : {T}[4, 8]
  return %1
}",
        ),
    },
    Case {
        rule: "algebra/matvec-rows",
        with: &[],
        dtypes: &[DType::F32],
        start: "kernel k(%a: {T}[2, 4, 8], %x: {T}[8, 1]) -> (out0: f32[2, 4, 1]) {
  %0 = matmul %a, %x : f32[2, 4, 1]
  return %0
}",
        goal: Goal::Kernel(
            "kernel k(%a: {T}[2, 4, 8], %x: {T}[8, 1]) -> (out0: f32[2, 4, 1]) {
  %0 = reshape %x : {T}[8]
  %1 = mul %a, %0 : f32[2, 4, 8]
  %2 = sum %1 axes=[2] : f32[2, 4]
  %3 = reshape %2 : f32[2, 4, 1]
  return %3
}",
        ),
    },
    Case {
        rule: "algebra/matvec-rows",
        with: &[],
        dtypes: &[DType::F16, DType::BF16],
        start: "kernel k(%a: {T}[2, 4, 8], %x: {T}[8, 1]) -> (out0: f32[2, 4, 1]) {
  %0 = matmul %a, %x : f32[2, 4, 1]
  return %0
}",
        goal: Goal::Kernel(
            "kernel k(%a: {T}[2, 4, 8], %x: {T}[8, 1]) -> (out0: f32[2, 4, 1]) {
  %0 = cast %a : f32[2, 4, 8]
  %1 = reshape %x : {T}[8]
  %2 = cast %1 : f32[8]
  %3 = mul %0, %2 : f32[2, 4, 8]
  %4 = sum %3 axes=[2] : f32[2, 4]
  %5 = reshape %4 : f32[2, 4, 1]
  return %5
}",
        ),
    },
    Case {
        rule: "algebra/div-accumulated",
        with: &[],
        dtypes: FLOATS,
        start: "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = max %x axes=[1] : {T}[4]
  %1 = reshape %0 : {T}[4, 1]
  %2 = sub %x, %1 : {T}[4, 8]
  %3 = exp %2 : {T}[4, 8]
  %4 = sum %3 axes=[1] : {T}[4]
  %5 = reshape %4 : {T}[4, 1]
  %6 = div %3, %5 : {T}[4, 8]
  return %6
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = max %x axes=[1] : {T}[4]
  %1 = reshape %0 : {T}[4, 1]
  %2 = sub %x, %1 : {T}[4, 8]
  %3 = exp %2 : {T}[4, 8]
  %4 = sum %3 axes=[1] : {T}[4]
  %5 = reshape %4 : {T}[4, 1]
  %6 = reciprocal %5 : {T}[4, 1]
  %7 = mul %3, %6 : {T}[4, 8]
  return %7
}",
        ),
    },
    Case {
        rule: "layout/transpose-out",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8], %y: {T}[4, 8]) -> (out0: {T}[8, 4]) {
  %0 = transpose %x perm=[1, 0] : {T}[8, 4]
  %1 = transpose %y perm=[1, 0] : {T}[8, 4]
  %2 = sub %0, %1 : {T}[8, 4]
  return %2
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[4, 8], %y: {T}[4, 8]) -> (out0: {T}[8, 4]) {
  %0 = sub %x, %y : {T}[4, 8]
  %1 = transpose %0 perm=[1, 0] : {T}[8, 4]
  return %1
}",
        ),
    },
    // A maximum over a whole tensor of 2^20 (one tile) on 910b-like's 48
    // vector cores: 128 parts of 8 192 take three waves of 9 216 elements a
    // core (a part and 1 024 of overhead a tile), the fewest of any divisor.
    Case {
        rule: "layout/split-reduction",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[1048576]) -> (out0: {T}[]) {
  %0 = max %x axes=[0] : {T}[]
  return %0
}",
        goal: Goal::Kernel(
            "kernel k(%x: {T}[1048576]) -> (out0: {T}[]) {
  %0 = reshape %x : {T}[128, 8192]
  %1 = max %0 axes=[1] : {T}[128]
  %2 = reshape %1 : {T}[1, 128]
  %3 = max %2 axes=[1] : {T}[1]
  %4 = reshape %3 : {T}[]
  return %4
}",
        ),
    },
    Case {
        rule: "fuse/seed",
        with: &[],
        dtypes: NUMERIC,
        start: "kernel k(%x: {T}[4, 8], %y: {T}[8]) -> (out0: {T}[4, 8]) {
  %0 = sub %x, %y : {T}[4, 8]
  return %0
}",
        goal: Goal::Fused(1),
    },
    Case {
        rule: "fuse/grow",
        with: &["fuse/seed"],
        dtypes: FLOATS,
        start: "kernel k(%x: {T}[4, 8], %y: {T}[8], %z: f32[4, 1]) -> (out0: f32[4, 8]) {
  %0 = sub %x, %y : {T}[4, 8]
  %1 = exp %0 : {T}[4, 8]
  %2 = mul %1, %0 : {T}[4, 8]
  %3 = cast %2 : f32[4, 8]
  %4 = add %3, %z : f32[4, 8]
  return %4
}",
        goal: Goal::Fused(5),
    },
];

const IDENTITY: &str = "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  return %x
}";

fn instantiate(text: &str, dtype: DType) -> Kernel {
    let (zero, one, two, three) = if dtype.is_float() {
        ("0.0", "1.0", "2.0", "3.0")
    } else {
        ("0", "1", "2", "3")
    };
    let text = text
        .replace("{T}", dtype.name())
        .replace("{zero}", zero)
        .replace("{one}", one)
        .replace("{two}", two)
        .replace("{three}", three);
    match tessera_ir::text::parse_module(&text) {
        Ok(mut m) if m.kernels.len() == 1 => m.kernels.remove(0),
        Ok(_) => panic!("one kernel expected in\n{text}"),
        Err(e) => panic!("{e}\n{text}"),
    }
}

/// Adds `k`'s nodes to `eg` (parameters shared) and returns its result
/// class.
fn add_kernel(eg: &mut EGraph, k: &Kernel) -> Id {
    let params: Vec<Id> = (0..k.params.len() as u32)
        .map(|i| eg.add(ENode::Param(i)))
        .collect();
    let mut ids = Vec::new();
    for n in &k.nodes {
        let children = n
            .args
            .iter()
            .map(|&a| match a {
                tessera_ir::Value::Param(i) => params[i as usize],
                tessera_ir::Value::Node(i) => ids[i as usize],
            })
            .collect();
        ids.push(eg.add(ENode::op(n.op.clone(), children)));
    }
    match k.outputs[0].value {
        tessera_ir::Value::Param(i) => params[i as usize],
        tessera_ir::Value::Node(i) => ids[i as usize],
    }
}

fn machine() -> tessera_sim::Machine {
    tessera_sim::Machine::builtin("910b-like").expect("the default machine")
}

/// Runs only the case's rules on the start kernel (and the goal kernel, if
/// any); returns the e-graph and the start's and goal's classes.
fn saturate(case: &Case, dtype: DType) -> (EGraph, Id, Option<Id>, Kernel) {
    let start = instantiate(case.start, dtype);
    let mut eg = EGraph::new(Meta::new(
        start.params.iter().map(|p| p.ty.clone()).collect(),
    ));
    let root = add_kernel(&mut eg, &start);
    let goal = match case.goal {
        Goal::Kernel(text) => Some(add_kernel(&mut eg, &instantiate(text, dtype))),
        Goal::Fused(_) => None,
    };
    eg.rebuild();
    if let Some(g) = goal {
        assert_ne!(
            eg.find(root),
            eg.find(g),
            "{} ({dtype}): start and goal are equal before the rule runs",
            case.rule
        );
    }
    let rules = all(Budget::of(&machine()));
    let chosen: Vec<_> = rules
        .iter()
        .filter(|r| r.name == case.rule || case.with.contains(&r.name))
        .map(|r| &r.rewrite)
        .collect();
    assert!(!chosen.is_empty(), "no rule named {}", case.rule);
    let runner = Runner::<ENode, Meta, ()>::new(Meta::default())
        .with_egraph(eg)
        .with_iter_limit(20)
        .with_node_limit(10_000)
        .with_time_limit(std::time::Duration::MAX)
        .with_scheduler(SimpleScheduler)
        .run(chosen);
    let fired: usize = runner
        .iterations
        .iter()
        .filter_map(|it| it.applied.get(&egg::Symbol::from(case.rule)))
        .sum();
    assert!(fired > 0, "{} ({dtype}) did not fire", case.rule);
    let eg = runner.egraph;
    assert_eq!(eg.analysis.conflict, None, "{} ({dtype})", case.rule);
    (eg, root, goal, start)
}

/// The largest fused node of `class` (fewest inputs among those), if any.
fn largest_fused(eg: &EGraph, class: Id) -> Option<(ENode, usize)> {
    eg[class]
        .nodes
        .iter()
        .filter_map(|n| match n {
            ENode::Fused(b, ins) => Some((
                n.clone(),
                eg.analysis.bodies[*b as usize].nodes.len(),
                ins.len(),
            )),
            ENode::Param(_) | ENode::Op(..) => None,
        })
        .max_by_key(|&(_, len, ins)| (len, std::cmp::Reverse(ins)))
        .map(|(n, len, _)| (n, len))
}

#[test]
fn each_rule_puts_its_goal_in_the_start_class() {
    for case in CASES {
        for &dtype in case.dtypes {
            let (eg, root, goal, _) = saturate(case, dtype);
            match (&case.goal, goal) {
                (Goal::Kernel(_), Some(g)) => assert_eq!(
                    eg.find(root),
                    eg.find(g),
                    "{} ({dtype}): the goal is not in the start's class",
                    case.rule
                ),
                (Goal::Fused(n), _) => {
                    let got = largest_fused(&eg, root).map(|(_, len)| len);
                    assert_eq!(got, Some(*n), "{} ({dtype})", case.rule);
                }
                (Goal::Kernel(_), None) => unreachable!("a kernel goal is added"),
            }
        }
    }
}

#[test]
fn each_rule_keeps_the_reference_results() {
    for case in CASES {
        for &dtype in case.dtypes {
            let start = instantiate(case.start, dtype);
            let goal = match case.goal {
                Goal::Kernel(text) => instantiate(text, dtype),
                Goal::Fused(_) => {
                    // The kernel of the fused node: every other class by its
                    // first node (the start's ops).
                    let (eg, root, _, _) = saturate(case, dtype);
                    let mut best: HashMap<Id, ENode> =
                        eg.classes().map(|c| (c.id, c.nodes[0].clone())).collect();
                    let (fused, len) = largest_fused(&eg, root).expect("a fused node");
                    best.insert(eg.find(root), fused);
                    let k = crate::opt::rebuild(&start, &eg, &[root], &best, &HashMap::new())
                        .expect("rebuilds");
                    // (A one-op body is no group: it plans as the op.)
                    assert!(
                        len == 1 || k.nodes.iter().all(|n| n.group.is_some()),
                        "{}: not one group:\n{}",
                        case.rule,
                        tessera_ir::text::print_kernel(&k)
                    );
                    k
                }
            };
            tessera_ir::verify::verify_concrete(&goal).expect("the goal verifies");
            for seed in 0..4 {
                let inputs: Vec<tessera_ir::Tensor> = start
                    .params
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let shape = p.ty.shape.as_usize().unwrap_or_default();
                        crate::inputs::random_tensor(p.ty.dtype, shape, seed, i)
                    })
                    .collect();
                let want = tessera_ir::interp::run(&start, &inputs).expect("start runs");
                let got = tessera_ir::interp::run(&goal, &inputs).expect("goal runs");
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let rule = tessera_ir::compare::Rule::for_value(&start, start.outputs[i].value);
                    let c = tessera_ir::compare::compare(g, w, rule);
                    assert!(c.ok(), "{} ({dtype}, seed {seed}): {c:?}", case.rule);
                }
            }
        }
    }
}

#[test]
fn every_rule_has_a_case_and_every_case_a_rule() {
    let rules = all(Budget::of(&machine()));
    let mut names: Vec<&str> = rules.iter().map(|r| r.name).collect();
    for r in &rules {
        let family = r.name.split('/').next().unwrap_or_default();
        assert!(
            Phase::ALL
                .iter()
                .any(|p| p.name() == family && *p == r.phase),
            "{} is not named `<its phase>/<what>`",
            r.name
        );
    }
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two rules share a name");
    let mut cases: Vec<&str> = CASES.iter().map(|c| c.rule).collect();
    cases.sort();
    cases.dedup();
    assert_eq!(names, cases, "rules and cases differ");
}

/// `algebra/div-accumulated` in f16/bf16 leaves a quotient that a sum
/// reads (the reciprocal's rounding would move every quotient the sum adds
/// up), and still fires on the same division in f32 and on a quotient that
/// is a result.
#[test]
fn div_accumulated_keeps_narrow_quotients_that_are_summed() {
    let summed = div_accumulated_start()
        .replace("-> (out0: {T}[4, 8])", "-> (out0: {T}[4])")
        .replace("return %6", "%7 = sum %6 axes=[1] : {T}[4]\n  return %7");
    for (dtype, fires) in [
        (DType::F16, false),
        (DType::BF16, false),
        (DType::F32, true),
    ] {
        assert_eq!(div_accumulated_fires(&summed, dtype), fires, "{dtype}");
    }
}

/// `algebra/div-accumulated` only where the divisor is at least 1: a sum
/// of exponentials over the axes of the maximum they are shifted by
/// (softmax's). Another divisor may be tiny, and its reciprocal overflow
/// (an f16 row summing to 1e-5 made every quotient `inf`); so may a sum
/// over other axes than the maximum's, or of values shifted by another
/// tensor's maximum.
#[test]
fn div_accumulated_needs_a_divisor_of_at_least_one() {
    let plain = "kernel k(%x: {T}[4, 8]) -> (out0: {T}[4, 8]) {
  %0 = sum %x axes=[1] : {T}[4]
  %1 = reshape %0 : {T}[4, 1]
  %2 = div %x, %1 : {T}[4, 8]
  return %2
}";
    let softmax = div_accumulated_start();
    let other_axis = softmax.replace(
        "%4 = sum %3 axes=[1] : {T}[4]\n  %5 = reshape %4 : {T}[4, 1]",
        "%4 = sum %3 axes=[0] : {T}[8]\n  %5 = reshape %4 : {T}[1, 8]",
    );
    let other_max = softmax
        .replace("(%x: {T}[4, 8])", "(%x: {T}[4, 8], %y: {T}[4, 8])")
        .replace("max %x", "max %y");
    let no_exp = softmax.replace("exp %2", "abs %2");
    // The reduced maximum broadcast straight to [4, 4] lines up with the
    // columns, not the rows: m[i, j] is row j's maximum.
    let misaligned = "kernel k(%x: {T}[4, 4]) -> (out0: {T}[4, 4]) {
  %0 = max %x axes=[1] : {T}[4]
  %1 = broadcast_to %0 : {T}[4, 4]
  %2 = sub %x, %1 : {T}[4, 4]
  %3 = exp %2 : {T}[4, 4]
  %4 = sum %3 axes=[1] : {T}[4]
  %5 = reshape %4 : {T}[4, 1]
  %6 = div %3, %5 : {T}[4, 4]
  return %6
}";
    let kept_then_broadcast = "kernel k(%x: {T}[4, 4]) -> (out0: {T}[4, 4]) {
  %0 = max %x axes=[1] : {T}[4]
  %1 = reshape %0 : {T}[4, 1]
  %2 = broadcast_to %1 : {T}[4, 4]
  %3 = sub %x, %2 : {T}[4, 4]
  %4 = exp %3 : {T}[4, 4]
  %5 = sum %4 axes=[1] : {T}[4]
  %6 = reshape %5 : {T}[4, 1]
  %7 = div %4, %6 : {T}[4, 4]
  return %7
}";
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        assert!(div_accumulated_fires(softmax, dtype), "softmax, {dtype}");
        assert!(
            div_accumulated_fires(kept_then_broadcast, dtype),
            "kept, then broadcast, {dtype}"
        );
    }
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        for (name, k) in [
            ("plain", plain),
            ("other axis", &other_axis),
            ("other max", &other_max),
            ("no exp", &no_exp),
            ("misaligned broadcast", misaligned),
        ] {
            assert!(!div_accumulated_fires(k, dtype), "{name}, {dtype}");
        }
    }
}

/// The start term of `algebra/div-accumulated`'s case: softmax's division.
fn div_accumulated_start() -> &'static str {
    CASES
        .iter()
        .find(|c| c.rule == "algebra/div-accumulated")
        .expect("the case")
        .start
}

/// Whether `algebra/div-accumulated` fires on kernel text `k` in `dtype`.
fn div_accumulated_fires(k: &str, dtype: DType) -> bool {
    fires("algebra/div-accumulated", k, dtype)
}

/// `algebra/matvec-rows` takes a column a stage reads densely (a
/// parameter, a computed value, a reshape of either), not a strided view,
/// which the planner would copy out, broadcast, in a stage of its own.
#[test]
fn matvec_rows_needs_a_dense_column() {
    for (op, dense) in [
        ("reshape %v", true),
        ("exp %c", true),
        ("slice %w axis=1 start=0 end=1", false),
        ("transpose %r perm=[1, 0]", false),
    ] {
        let k = format!(
            "kernel k(%a: {{T}}[4, 8], %v: {{T}}[8], %c: {{T}}[8, 1], %w: {{T}}[8, 2], %r: {{T}}[1, 8]) -> (out0: f32[4, 1]) {{
  %0 = {op} : {{T}}[8, 1]
  %1 = matmul %a, %0 : f32[4, 1]
  return %1
}}"
        );
        assert_eq!(fires("algebra/matvec-rows", &k, DType::F32), dense, "{op}");
    }
}

/// `algebra/matvec-rows` leaves a batched column to the matmul: as a row
/// it would be broadcast over `a`'s rows, a strided view the planner
/// copies out in a stage of its own.
#[test]
fn matvec_rows_leaves_a_batched_column_to_the_matmul() {
    for (a, x, out) in [
        ("[4, 8]", "[2, 8, 1]", "[2, 4, 1]"),
        ("[1, 4, 8]", "[3, 8, 1]", "[3, 4, 1]"),
        ("[3, 4, 8]", "[1, 8, 1]", "[3, 4, 1]"),
    ] {
        let k = format!(
            "kernel k(%a: {{T}}{a}, %x: {{T}}{x}) -> (out0: f32{out}) {{
  %0 = matmul %a, %x : f32{out}
  return %0
}}"
        );
        assert!(!fires("algebra/matvec-rows", &k, DType::F32), "{a} @ {x}");
    }
}

/// Whether rule `name` fires on kernel text `k` in `dtype`.
fn fires(name: &str, k: &str, dtype: DType) -> bool {
    let rule = all(Budget::of(&machine()))
        .into_iter()
        .find(|r| r.name == name)
        .expect("the rule");
    {
        let start = instantiate(k, dtype);
        let mut eg = EGraph::new(Meta::new(
            start.params.iter().map(|p| p.ty.clone()).collect(),
        ));
        add_kernel(&mut eg, &start);
        eg.rebuild();
        let runner = Runner::<ENode, Meta, ()>::new(Meta::default())
            .with_egraph(eg)
            .with_iter_limit(5)
            .with_time_limit(std::time::Duration::MAX)
            .with_scheduler(SimpleScheduler)
            .run([&rule.rewrite]);
        let fired: usize = runner
            .iterations
            .iter()
            .filter_map(|it| it.applied.get(&egg::Symbol::from(rule.name)))
            .sum();
        fired > 0
    }
}
