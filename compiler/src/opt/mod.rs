//! The optimiser: equality saturation (egg) between the checked IR and
//! planning.
//!
//! [`optimise`] turns a concrete kernel into an e-graph ([`lang`]: one
//! e-node per IR op, facts per class in [`analysis`]), runs the rule
//! phases of [`rules`] — canonicalise, algebra, layout, fusion — each its
//! own `Runner` bounded by iterations and e-nodes (never by time, so the
//! result is the same on any machine), extracts the cheapest program under
//! the machine's stage cost model ([`extract`]) and rebuilds a verified
//! kernel whose fused groups ([`group`]) the planner turns into one stage
//! each. [`Report`] says what happened: rules fired, e-graph size, why
//! each runner stopped, and the extracted cost against the unoptimised
//! one.
//!
//! A new rule goes in `rules/<phase>.rs`, with its case in
//! `rules/cases.rs`.

pub mod analysis;
pub mod extract;
pub mod group;
pub mod lang;
mod merge;
pub mod rules;

use analysis::{EGraph, Meta};
use egg::{Id, Language, Runner, SimpleScheduler, StopReason};
use lang::{Arg, ENode};
use rules::{Budget, Phase, Rule};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use tessera_ir::{Kernel, Op, Output, Span, Value};
use tessera_sim::Machine;

/// How much the optimiser does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Nothing: one stage per op.
    O0,
    /// Canonicalise, algebra and layout, no fusion.
    O1,
    /// Everything (the default).
    #[default]
    O2,
}

impl Level {
    /// The level of `-O<n>`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "0" => Some(Level::O0),
            "1" => Some(Level::O1),
            "2" => Some(Level::O2),
            _ => None,
        }
    }

    /// The flag: `-O0`, `-O1`, `-O2`.
    pub fn flag(self) -> &'static str {
        match self {
            Level::O0 => "-O0",
            Level::O1 => "-O1",
            Level::O2 => "-O2",
        }
    }

    fn phases(self) -> &'static [Phase] {
        match self {
            Level::O0 => &[],
            Level::O1 => &[Phase::Canon, Phase::Algebra, Phase::Layout],
            Level::O2 => &Phase::ALL,
        }
    }
}

/// The limits of one phase's runner.
#[derive(Copy, Clone, Debug)]
pub struct Limits {
    /// Most iterations.
    pub iterations: usize,
    /// Most e-nodes.
    pub nodes: usize,
}

fn limits(phase: Phase) -> Limits {
    match phase {
        Phase::Canon => Limits {
            iterations: 20,
            nodes: 20_000,
        },
        Phase::Algebra | Phase::Layout => Limits {
            iterations: 8,
            nodes: 30_000,
        },
        Phase::Fuse => Limits {
            iterations: 40,
            nodes: 40_000,
        },
    }
}

/// What one phase's runner did.
#[derive(Clone, Debug)]
pub struct PhaseReport {
    /// The phase.
    pub phase: Phase,
    /// Iterations run.
    pub iterations: usize,
    /// E-nodes and e-classes when it stopped.
    pub nodes: usize,
    /// E-classes when it stopped.
    pub classes: usize,
    /// Why it stopped: `saturated`, `iteration limit 8`, `node limit 30000`.
    pub stop: String,
    /// Whether it stopped at a limit (the result is the best term found,
    /// not necessarily the best there is).
    pub limited: bool,
    /// The most inlinings `fuse/grow` built for one e-class (the fusion
    /// budget's `builds_per_class` bounds it), over the phases so far.
    pub most_builds: usize,
}

/// What the optimiser did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The level.
    pub level: Level,
    /// Each phase run.
    pub phases: Vec<PhaseReport>,
    /// Times each rule fired (its unions that changed the e-graph).
    pub fired: BTreeMap<&'static str, usize>,
    /// The extracted program's cost in cycles (stage cost model).
    pub cost: f64,
    /// The unoptimised program's cost under the same model.
    pub cost_o0: f64,
    /// Fused groups in the result.
    pub groups: usize,
    /// Pairs of elementwise stages merged into multi-output stages after
    /// extraction (`merge.rs`).
    pub merged: usize,
    /// Fused groups whose stage could not be scheduled, split into their
    /// ops (one stage each).
    pub split: usize,
    /// Whether the optimised kernel could not be planned and the
    /// unoptimised one was compiled instead.
    pub fallback: bool,
}

impl Report {
    /// The report as `//` comment lines (so optimised IR text still parses).
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "// optimiser report ({})", self.level.flag());
        if self.level == Level::O0 {
            let _ = writeln!(s, "//   not run: one stage per op");
            return s;
        }
        for p in &self.phases {
            let _ = writeln!(
                s,
                "//   {:<8} {} iteration(s), {} e-nodes, {} e-classes, stopped: {}",
                p.phase.name(),
                p.iterations,
                p.nodes,
                p.classes,
                p.stop
            );
        }
        if self.fired.is_empty() {
            let _ = writeln!(s, "//   rules fired: none");
        } else {
            let _ = writeln!(s, "//   rules fired:");
            for (name, n) in &self.fired {
                let _ = writeln!(s, "//     {name:<28} {n}");
            }
        }
        let ratio = if self.cost > 0.0 {
            self.cost_o0 / self.cost
        } else {
            1.0
        };
        let _ = writeln!(
            s,
            "//   fused groups: {}; cost {:.0} cycles (-O0: {:.0}, {ratio:.2}x)",
            self.groups, self.cost, self.cost_o0
        );
        if self.merged > 0 {
            let _ = writeln!(
                s,
                "//   multi-output: {} pair(s) of elementwise stages merged",
                self.merged
            );
        }
        if self.split > 0 {
            let _ = writeln!(
                s,
                "//   {} fused group(s) did not fit the machine: split into one stage per op",
                self.split
            );
        }
        if self.fallback {
            let _ = writeln!(
                s,
                "//   the optimised kernel did not fit the machine: compiled the unoptimised one"
            );
        }
        s
    }
}

/// The optimised kernel and the report.
pub struct Optimised {
    /// The kernel (verified; fused nodes carry their group).
    pub kernel: Kernel,
    /// What happened.
    pub report: Report,
}

/// Optimises a concrete, verified kernel for a machine. An `Err` is an
/// internal error (an unsound rule, an ill-formed result): the optimiser
/// never returns a wrong kernel.
pub fn optimise(kernel: &Kernel, machine: &Machine, level: Level) -> Result<Optimised, String> {
    let mut report = Report {
        level,
        ..Report::default()
    };
    if level == Level::O0 || tessera_ir::verify::verify_concrete(kernel).is_err() {
        return Ok(Optimised {
            kernel: kernel.clone(),
            report,
        });
    }
    let (mut eg, roots, spans) = egraph_of(kernel);
    let written: Vec<(Id, ENode)> = eg
        .classes()
        .flat_map(|c| c.nodes.iter().map(move |n| (c.id, n.clone())))
        .collect();
    report.cost_o0 = unoptimised_cost(&eg, machine);
    let budget = Budget::of(machine);
    let all = rules::all(budget);
    for &phase in level.phases() {
        let rules: Vec<&Rule> = all
            .iter()
            .filter(|r| r.phase == phase || r.phase == Phase::Canon)
            .collect();
        let lim = limits(phase);
        let runner = Runner::<ENode, Meta, ()>::new(Meta::default())
            .with_egraph(eg)
            .with_iter_limit(lim.iterations)
            .with_node_limit(lim.nodes)
            .with_time_limit(std::time::Duration::MAX)
            .with_scheduler(SimpleScheduler)
            .run(rules.iter().map(|r| &r.rewrite));
        for it in &runner.iterations {
            for (name, n) in &it.applied {
                if let Some(r) = all.iter().find(|r| r.name == name.as_str()) {
                    *report.fired.entry(r.name).or_default() += n;
                }
            }
        }
        let (mut stop, mut limited) = match &runner.stop_reason {
            Some(StopReason::Saturated) | None => ("saturated".to_string(), false),
            Some(StopReason::IterationLimit(n)) => (format!("iteration limit {n}"), true),
            Some(StopReason::NodeLimit(n)) => (format!("node limit {n}"), true),
            Some(StopReason::TimeLimit(_)) => ("time limit".to_string(), true),
            Some(StopReason::Other(s)) => (s.clone(), true),
        };
        eg = runner.egraph;
        // Growth stopped short in a class: the phase did not explore all it
        // would have (`Budget::builds_per_class`).
        let most_builds = eg.analysis.most_builds();
        let cap = budget.builds_per_class(eg.number_of_classes());
        if phase == Phase::Fuse && most_builds >= cap {
            stop += &format!(", build limit {cap} in a class");
            limited = true;
        }
        report.phases.push(PhaseReport {
            phase,
            iterations: runner.iterations.len(),
            nodes: eg.total_number_of_nodes(),
            classes: eg.number_of_classes(),
            stop,
            limited,
            most_builds,
        });
        if let Some(c) = &eg.analysis.conflict {
            return Err(format!("optimiser ({} phase): {c}", phase.name()));
        }
    }
    let mut ex = extract::extract(&eg, &roots, machine).map_err(|e| format!("optimiser: {e}"))?;
    // Never worse than the kernel as written, under the same model (its
    // nodes are still in the e-graph).
    let written = extract::Extraction::of_nodes(&eg, &written, &roots, machine);
    if let Some(w) = written
        && w.cost < ex.cost
    {
        ex = w;
    }
    report.cost = ex.cost;
    let out = rebuild(kernel, &eg, &roots, &ex.best, &spans)?;
    let out = if level == Level::O2 {
        let (merged, n) = merge::merge_outputs(out, &budget);
        report.merged = n;
        merged
    } else {
        out
    };
    report.groups = out
        .nodes
        .iter()
        .filter_map(|n| n.group)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    tessera_ir::verify::verify_concrete(&out)
        .map_err(|e| format!("optimiser produced an ill-formed kernel: {e}"))?;
    Ok(Optimised {
        kernel: out,
        report,
    })
}

/// The e-graph of a kernel, its result classes, and a source span per
/// class (the first node's that has one).
pub fn egraph_of(k: &Kernel) -> (EGraph, Vec<Id>, HashMap<Id, Span>) {
    let mut eg = EGraph::new(Meta::new(k.params.iter().map(|p| p.ty.clone()).collect()));
    let params: Vec<Id> = (0..k.params.len() as u32)
        .map(|i| eg.add(ENode::Param(i)))
        .collect();
    let mut ids: Vec<Id> = Vec::with_capacity(k.nodes.len());
    let mut spans = HashMap::new();
    let id_of = |ids: &[Id], v: Value| match v {
        Value::Param(i) => params[i as usize],
        Value::Node(i) => ids[i as usize],
    };
    for n in &k.nodes {
        let children = n.args.iter().map(|&a| id_of(&ids, a)).collect();
        let id = eg.add(ENode::op(n.op.clone(), children));
        if let Some(s) = n.span {
            spans.entry(id).or_insert(s);
        }
        ids.push(id);
    }
    let roots = k.outputs.iter().map(|o| id_of(&ids, o.value)).collect();
    eg.rebuild();
    (eg, roots, spans)
}

/// The cost of the kernel as written (each op its own stage), on its
/// fresh e-graph (one node per class).
fn unoptimised_cost(eg: &EGraph, m: &Machine) -> f64 {
    eg.classes()
        .filter_map(|c| c.nodes.first())
        .map(|n| extract::node_cost(eg, n, m))
        .sum()
}

/// The kernel of the extracted program: each chosen node in dependency
/// order, a fused node's body inlined as a contiguous group.
pub(crate) fn rebuild(
    k: &Kernel,
    eg: &EGraph,
    roots: &[Id],
    best: &HashMap<Id, ENode>,
    spans: &HashMap<Id, Span>,
) -> Result<Kernel, String> {
    let mut out = Kernel::new(k.name.clone());
    out.params = k.params.clone();
    let mut values: HashMap<Id, Value> = HashMap::new();
    let mut groups = 0u32;
    // Iterative post-order over the chosen nodes.
    let mut stack: Vec<(Id, bool)> = roots.iter().rev().map(|&r| (eg.find(r), false)).collect();
    while let Some((c, expanded)) = stack.pop() {
        if values.contains_key(&c) {
            continue;
        }
        let node = best
            .get(&c)
            .ok_or("optimiser: a needed class has no extracted node")?;
        if !expanded {
            stack.push((c, true));
            for &ch in node.children().iter().rev() {
                let ch = eg.find(ch);
                if !values.contains_key(&ch) {
                    stack.push((ch, false));
                }
            }
            continue;
        }
        let args: Vec<Value> = node
            .children()
            .iter()
            .map(|&ch| values.get(&eg.find(ch)).copied())
            .collect::<Option<_>>()
            .ok_or("optimiser: the extracted program is cyclic")?;
        let span = spans.get(&c).copied();
        let push = |out: &mut Kernel, op: Op, args: Vec<Value>, group: Option<u32>| {
            let v = out
                .push(op, args, span)
                .map_err(|e| format!("optimiser: an extracted node is ill-typed: {e}"))?;
            if let Some(n) = out.nodes.last_mut() {
                n.group = group;
            }
            Ok::<Value, String>(v)
        };
        let v = match node {
            ENode::Param(i) => Value::Param(*i),
            ENode::Op(key, _) => push(&mut out, key.op.clone(), args, None)?,
            ENode::Fused(b, _) => {
                let body = &eg.analysis.bodies[*b as usize];
                let group = (body.nodes.len() > 1).then(|| {
                    groups += 1;
                    groups - 1
                });
                let mut at: Vec<Value> = Vec::with_capacity(body.nodes.len());
                for (key, bargs) in &body.nodes {
                    let a: Vec<Value> = bargs
                        .iter()
                        .map(|x| match *x {
                            Arg::In(i) => args[i as usize],
                            Arg::At(i) => at[i as usize],
                        })
                        .collect();
                    at.push(push(&mut out, key.op.clone(), a, group)?);
                }
                *at.last().ok_or("optimiser: an empty fused body")?
            }
        };
        values.insert(c, v);
    }
    for (o, r) in k.outputs.iter().zip(roots) {
        let value = *values
            .get(&eg.find(*r))
            .ok_or("optimiser: a result was not extracted")?;
        out.outputs.push(Output {
            name: o.name.clone(),
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver;

    /// An f32 matrix times a column: on 910-like, whose cube lacks f32, the
    /// vector matmul would run 64 lanes for the one column, and the cost
    /// model takes the row reduction; on 910b-like the cube's matmul stays.
    #[test]
    fn a_column_product_is_a_row_reduction_where_the_cube_lacks_the_dtype() {
        let k = driver::test_kernel(
            "kernel k(a: f32[4096, 4096], x: f32[4096, 1]) -> f32[4096, 1] {\n    return a @ x;\n}\n",
        );
        for (machine, rows) in [("910-like", true), ("910b-like", false)] {
            let m = Machine::builtin(machine).expect("machine");
            let out = optimise(&k, &m, Level::O2).expect("optimises");
            let has = |f: fn(&Op) -> bool| out.kernel.nodes.iter().any(|n| f(&n.op));
            assert_eq!(has(|op| matches!(op, Op::Reduce { .. })), rows, "{machine}");
            assert_eq!(has(|op| matches!(op, Op::MatMul)), !rows, "{machine}");
        }
    }

    /// Two rows of 70 000 f32: a row stage holds whole rows, so it runs on
    /// two cores, where the elementwise stage after a reduction spreads
    /// over all of them.
    const FEW_ROWS: &str = "kernel k(x: f32[2, 70000]) -> (m: f32[2], d: f32[2, 70000]) {
    let m = max(x, axis = -1);
    return (m, x - reshape(m, [2, 1]));
}
kernel centred(x: f32[2, 70000]) -> f32[2, 70000] {
    return x - max(x, axis = -1, keepdims = true);
}
";

    /// Simulated cycles of kernel `name` of [`FEW_ROWS`] at `level`, and
    /// its GM→UB bytes.
    fn few_rows(name: &str, m: &Machine, level: Level) -> (u64, u64) {
        let src = driver::Source {
            name: "few.tsr".into(),
            text: FEW_ROWS.into(),
        };
        let file = driver::parse_and_check(&src).expect("parses");
        let k = driver::lower(&file, name, &tessera_ir::DimEnv::default(), &src).expect("lowers");
        let tuning = crate::tune::Tuning::default();
        let r = crate::bench::bench(&k, m, &src, level, &tuning).expect("runs");
        let gm_ub = r
            .report
            .bytes
            .iter()
            .find(|p| p.path == "GM->UB")
            .expect("path");
        (r.report.cycles, gm_ub.bytes)
    }

    /// With the maximum a result too, fusing `x - max(x)` recomputes the
    /// maximum in a row stage on two cores: the model, counting the cores
    /// a stage can use, keeps the elementwise stage (before, the roofline
    /// over all cores made the two a tie, and `-O2` ran 1.6x slower).
    #[test]
    fn a_row_stage_is_costed_on_the_cores_its_rows_use() {
        for name in ["910b-like", "910-like"] {
            let m = Machine::builtin(name).expect("machine");
            let k = driver::test_kernel(FEW_ROWS);
            let out = optimise(&k, &m, Level::O2).expect("optimises");
            assert_eq!(out.report.groups, 0, "{name}: {}", out.report.text());
            let (o2, _) = few_rows("k", &m, Level::O2);
            let (o0, _) = few_rows("k", &m, Level::O0);
            assert!(o2 <= o0, "{name}: -O2 {o2} cycles, -O0 {o0}");
        }
    }

    /// A pipelined chunked row stage on one row per core loads each chunk
    /// once per pass (x of 560 000 bytes, two passes: 1 120 000 bytes), not
    /// also for the steps that fill and drain the pipeline; fused, it beats
    /// the two unfused stages.
    #[test]
    fn a_pipelined_row_stage_loads_only_its_rows() {
        for name in ["910b-like", "910-like"] {
            let m = Machine::builtin(name).expect("machine");
            let (o2, bytes) = few_rows("centred", &m, Level::O2);
            assert_eq!(bytes, 2 * 560_000, "{name}");
            let (o0, _) = few_rows("centred", &m, Level::O0);
            assert!(o2 < o0, "{name}: -O2 {o2} cycles, -O0 {o0}");
        }
    }

    /// A chain of 120 statements (over 200 classes): each class builds at
    /// most its even share of the total, below the per-class bound.
    #[test]
    fn a_long_program_s_classes_share_the_total_builds() {
        let mut text =
            String::from("kernel k(x: f32[4096], y: f32[4096]) -> f32[4096] {\n    let v0 = x;\n");
        for i in 1..=120 {
            let f = [
                "v * 1.01 + y",
                "exp(v * 0.001)",
                "v - y * 0.5",
                "sigmoid(v) * v",
            ][i % 4];
            text += &format!(
                "    let v{i} = {};\n",
                f.replace('v', &format!("v{}", i - 1))
            );
        }
        text += "    return v120;\n}\n";
        let kernel = driver::test_kernel(&text);
        let m = Machine::builtin("910b-like").expect("machine");
        let out = optimise(&kernel, &m, Level::O2).expect("optimises");
        let fuse = out.report.phases.last().expect("phases");
        let budget = Budget::of(&m);
        let cap = budget.builds_per_class(fuse.classes);
        assert!(fuse.classes > 200, "{} classes", fuse.classes);
        assert!(cap < budget.max_builds, "{cap}");
        assert!(fuse.most_builds <= cap, "{} > {cap}", fuse.most_builds);
        assert!(fuse.limited, "{}", fuse.stop);
    }

    /// Twenty lines of `y = f(y) * 0.5 + y'` (60 ops, all one elementwise
    /// group's worth): without the bound one class built 44 464 inlinings.
    #[test]
    fn growth_builds_at_most_the_budget_per_class() {
        let mut text = String::from("kernel k(x: f32[4096]) -> f32[4096] {\n    let y0 = x;\n");
        for i in 1..=20 {
            let f = ["relu", "exp", "tanh", "sigmoid"][i % 4];
            let back = i.saturating_sub(3);
            text += &format!("    let y{i} = {f}(y{}) * 0.5 + y{back};\n", i - 1);
        }
        text += "    return y20;\n}\n";
        let kernel = driver::test_kernel(&text);
        let m = Machine::builtin("910b-like").expect("machine");
        let out = optimise(&kernel, &m, Level::O2).expect("optimises");
        let fuse = out.report.phases.last().expect("phases");
        assert_eq!(fuse.phase, Phase::Fuse);
        assert!(fuse.limited, "{}", fuse.stop);
        let cap = Budget::of(&m).builds_per_class(fuse.classes);
        assert!(
            fuse.most_builds > cap / 2 && fuse.most_builds <= cap,
            "{} inlinings built for one class (budget {cap})",
            fuse.most_builds,
        );
    }
}
