//! The rewrite rules, by phase. Each rule is named `<family>/<what>`; the
//! family is its phase (`canon`, `algebra`, `layout`, `fuse`). A rule is an
//! egg pattern pair with conditions where the ops carry no attributes
//! (`algebra/*`), or a small Rust function from a matched e-node to terms
//! of its class where attributes take computing (`canon/*`, `layout/*`,
//! `fuse/*`).
//!
//! Every rule has a case in `cases.rs`: a start kernel and a goal; the
//! tests check that the rule alone puts the goal in the start's class and
//! that start and goal agree on the reference interpreter for every dtype
//! the case lists (and a tidy test that no rule lacks its case).

pub mod algebra;
pub mod canon;
pub mod fuse;
pub mod layout;

#[cfg(test)]
mod cases;

use super::analysis::{EGraph, Meta};
use super::lang::ENode;
use egg::{Applier, Id, PatternAst, Rewrite, SearchMatches, Searcher, Subst, Symbol, Var};
use tessera_ir::Scalar;

/// The phases, run in this order, each its own `Runner`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Shrinking rules: constant folding, layout and cast no-ops.
    Canon,
    /// A bounded algebra: identities the later phases need.
    Algebra,
    /// Transposes pushed through elementwise ops.
    Layout,
    /// Fused groups grown up to what one stage holds.
    Fuse,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 4] = [Phase::Canon, Phase::Algebra, Phase::Layout, Phase::Fuse];

    /// The family prefix of the phase's rule names.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Canon => "canon",
            Phase::Algebra => "algebra",
            Phase::Layout => "layout",
            Phase::Fuse => "fuse",
        }
    }
}

/// What one stage can hold: the fusion phase's budget.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Budget {
    /// UB bytes of one core.
    pub ub_bytes: u64,
    /// Most ops in one fused body.
    pub max_ops: usize,
    /// Most inputs of one fused group.
    pub max_inputs: usize,
    /// Most fused alternatives kept per e-class.
    pub max_variants: usize,
    /// Most inlinings `fuse/grow` builds per e-class (most are rejected:
    /// too many ops, inputs or UB bytes). On long elementwise chains the
    /// pairs of a class's alternatives and its inputs' run to tens of
    /// thousands each, most of them too large; this bounds the phase's
    /// work. The suite's kernels build at most 1 815 for a class.
    pub max_builds: usize,
    /// Most inlinings `fuse/grow` builds over all classes, shared evenly
    /// ([`Budget::builds_per_class`]): a long program's classes each get
    /// fewer, so its compile time stays bounded.
    pub total_builds: usize,
    /// Cube and vector share a core (a matmul's epilogue can scale its
    /// product in UB).
    pub coupled: bool,
    /// Vector cores: a reduction over fewer tiles is split across them
    /// (`layout/split-reduction`).
    pub vector_cores: u64,
    /// The bytes a vector core loads from GM in the time of a launch: what
    /// a split reduction's second launch must save a core at least.
    pub launch_bytes: u64,
}

impl Budget {
    /// The budget on a machine.
    pub fn of(machine: &tessera_sim::Machine) -> Budget {
        Budget {
            ub_bytes: machine.memory.ub.bytes,
            max_ops: 48,
            max_inputs: 12,
            max_variants: 256,
            max_builds: 4096,
            total_builds: 1 << 17,
            coupled: machine.organisation == tessera_sim::machine::Organisation::Coupled,
            vector_cores: u64::from(machine.vector_cores()),
            launch_bytes: (machine.launch.launch_cycles as f64
                * machine.dma.gm_to_ub.bytes_per_cycle) as u64,
        }
    }
}

/// Fewest inlinings a class may build however large the e-graph.
const MIN_BUILDS: usize = 256;

impl Budget {
    /// Most inlinings `fuse/grow` builds for one class of an e-graph of
    /// `classes` classes: `max_builds`, or less where `total_builds` shared
    /// among the classes is less (at least 256). With the suite's e-graphs
    /// (at most 21 classes) it is `max_builds`; a chain of 50 elementwise
    /// statements (90 classes) gets 1 456, one of 200 (340 classes) 385.
    pub fn builds_per_class(&self, classes: usize) -> usize {
        (self.total_builds / classes.max(1)).clamp(MIN_BUILDS, self.max_builds.max(MIN_BUILDS))
    }
}

/// A named rewrite in its phase.
pub struct Rule {
    /// `<family>/<what>`.
    pub name: &'static str,
    /// The phase it runs in.
    pub phase: Phase,
    /// The rewrite.
    pub rewrite: Rewrite<ENode, Meta>,
}

/// Every rule, in phase order.
pub fn all(budget: Budget) -> Vec<Rule> {
    let mut rules = Vec::new();
    rules.extend(canon::rules());
    rules.extend(algebra::rules());
    rules.extend(layout::rules(budget));
    rules.extend(fuse::rules(budget));
    rules
}

/// A rule from a pattern rewrite (`rewrite!`).
fn pattern(phase: Phase, name: &'static str, rewrite: Rewrite<ENode, Meta>) -> Rule {
    Rule {
        name,
        phase,
        rewrite,
    }
}

/// A rule written in Rust: every e-node satisfying `matches` is handed to
/// `build`, which returns the ids of terms equal to the node's class (it
/// adds them to the e-graph); they are unioned with the class.
fn node_rule(
    phase: Phase,
    name: &'static str,
    matches: fn(&ENode) -> bool,
    build: impl Fn(&mut EGraph, Id, &ENode) -> Vec<Id> + Send + Sync + 'static,
) -> Rule {
    let rewrite = Rewrite::new(
        name,
        NodeSearcher { matches },
        NodeApplier { matches, build },
    )
    .unwrap_or_else(|e| unreachable!("a node rule binds no variables: {e}"));
    Rule {
        name,
        phase,
        rewrite,
    }
}

/// Matches every class holding an e-node that satisfies `matches`.
pub(super) struct NodeSearcher {
    pub(super) matches: fn(&ENode) -> bool,
}

impl Searcher<ENode, Meta> for NodeSearcher {
    fn search_eclass_with_limit(
        &self,
        egraph: &EGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, ENode>> {
        let any = limit > 0 && egraph[eclass].nodes.iter().any(|n| (self.matches)(n));
        any.then(|| SearchMatches {
            eclass,
            substs: vec![Subst::default()],
            ast: None,
        })
    }

    fn vars(&self) -> Vec<Var> {
        Vec::new()
    }
}

struct NodeApplier<B> {
    matches: fn(&ENode) -> bool,
    build: B,
}

impl<B: Fn(&mut EGraph, Id, &ENode) -> Vec<Id> + Send + Sync> Applier<ENode, Meta>
    for NodeApplier<B>
{
    fn apply_one(
        &self,
        egraph: &mut EGraph,
        eclass: Id,
        _subst: &Subst,
        _ast: Option<&PatternAst<ENode>>,
        _rule: Symbol,
    ) -> Vec<Id> {
        let nodes: Vec<ENode> = egraph[eclass]
            .nodes
            .iter()
            .filter(|n| (self.matches)(n))
            .cloned()
            .collect();
        let mut changed = Vec::new();
        for n in nodes {
            for id in (self.build)(egraph, eclass, &n) {
                if egraph.union(eclass, id) {
                    changed.push(eclass);
                }
            }
        }
        changed
    }
}

/// Whether the class of `var` holds the constant `value` (an integer
/// constant compares as its value; floats by value, so `-0.0 == 0.0`: use
/// [`is_const_bits`] where the sign of zero matters).
fn is_const(var: &str, value: f64) -> impl Fn(&mut EGraph, Id, &Subst) -> bool + use<> {
    let var: Var = var
        .parse()
        .unwrap_or_else(|_| unreachable!("a variable name"));
    move |eg: &mut EGraph, _, s: &Subst| match eg[s[var]].data.constant {
        Some(Scalar::Float(x)) => x == value,
        Some(Scalar::Int(i)) => i as f64 == value,
        Some(Scalar::Bool(_)) | None => false,
    }
}

/// Whether the class of `var` holds the float constant with exactly these
/// bits, or the integer constant of that value.
fn is_const_bits(var: &str, value: f64) -> impl Fn(&mut EGraph, Id, &Subst) -> bool + use<> {
    let var: Var = var
        .parse()
        .unwrap_or_else(|_| unreachable!("a variable name"));
    move |eg: &mut EGraph, _, s: &Subst| match eg[s[var]].data.constant {
        Some(Scalar::Float(x)) => x.to_bits() == value.to_bits(),
        Some(Scalar::Int(i)) => i as f64 == value,
        Some(Scalar::Bool(_)) | None => false,
    }
}

/// Whether the class of `var` has the matched class's type (the rewrite
/// does not drop a broadcast).
fn same_type(var: &str) -> impl Fn(&mut EGraph, Id, &Subst) -> bool + use<> {
    let var: Var = var
        .parse()
        .unwrap_or_else(|_| unreachable!("a variable name"));
    move |eg: &mut EGraph, root: Id, s: &Subst| eg[s[var]].data.ty == eg[root].data.ty
}
