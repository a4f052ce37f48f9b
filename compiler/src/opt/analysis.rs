//! What every e-class knows about its value: type and, for constants, the
//! value — the facts rules' conditions and the cost model read.
//!
//! Two classes merge only when a rule claims their values equal, so their
//! facts must agree; a disagreement means an unsound rule. It is recorded
//! (egg's `merge` cannot fail) and the optimiser turns it into an internal
//! error after the runner stops: never a panic, never a wrong answer.

use super::lang::{Arg, Body, ENode};
use egg::{DidMerge, Id};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use tessera_ir::{DType, Kernel, Op, Scalar, Tensor, TensorType, Value};

/// The e-graph of the optimiser.
pub type EGraph = egg::EGraph<ENode, Meta>;

/// Facts about one e-class.
#[derive(Clone, Debug)]
pub struct Data {
    /// Dtype and (concrete) shape.
    pub ty: TensorType,
    /// The value everywhere, for a constant.
    pub constant: Option<Scalar>,
    /// Whether a reduction or matmul is upstream: the spec then compares
    /// the value with the accumulation tolerance, not bit for bit.
    pub accumulated: bool,
    /// What is known of the value's size ([`Size`]), for the rules whose
    /// soundness needs it (`algebra/div-accumulated`).
    pub size: Size,
}

/// Facts about a value's size that softmax's structure proves: its sum of
/// exponentials is at least 1, so `x / s` may become `x · reciprocal(s)`
/// without the reciprocal overflowing. Equal values may be told apart by
/// what their forms prove, so merging keeps every fact either side has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Size {
    /// The value is `max(x, axes)`: the reduction itself, that reduced
    /// value reshaped to `x`'s shape with the axes kept as 1, or that
    /// broadcast to `x`'s shape (so it lines up with `x`'s elements):
    /// `x`'s class and the axes.
    pub max_of: Option<(Id, Vec<usize>)>,
    /// Axes along which the value's maximum is exactly 0 (`x − max(x,
    /// axes)`) or, with `true`, 1 (its `exp`).
    pub peak: Option<(bool, Vec<usize>)>,
    /// Every element is at least 1 (or NaN): a sum over `axes` of a value
    /// whose maximum over them is 1, each other term an `exp` (≥ 0), and
    /// that sum reshaped, broadcast or cast.
    pub at_least_one: bool,
}

impl Size {
    /// Takes the facts of `b` that `self` lacks; whether any was new.
    fn absorb(&mut self, b: &Size) -> bool {
        let mut changed = false;
        if self.max_of.is_none() && b.max_of.is_some() {
            self.max_of.clone_from(&b.max_of);
            changed = true;
        }
        if self.peak.is_none() && b.peak.is_some() {
            self.peak.clone_from(&b.peak);
            changed = true;
        }
        if !self.at_least_one && b.at_least_one {
            self.at_least_one = true;
            changed = true;
        }
        changed
    }

    /// The facts of `op`'s result from its operands' classes.
    fn of(egraph: &EGraph, op: &Op, children: &[Id], ty: &TensorType) -> Size {
        use tessera_ir::{BinaryOp, ReduceOp, UnaryOp};
        let data = |i: usize| children.get(i).map(|&c| &egraph[c].data);
        let mut size = Size::default();
        match op {
            Op::Reduce { op: r, axes } => {
                let Some(x) = data(0) else { return size };
                match r {
                    ReduceOp::Max => size.max_of = Some((egraph.find(children[0]), axes.clone())),
                    // Σ over the axes of a value whose maximum there is 1
                    // and whose terms are exponentials (never negative).
                    ReduceOp::Sum => size.at_least_one = x.size.peak == Some((true, axes.clone())),
                    ReduceOp::Mean | ReduceOp::Min => {}
                }
            }
            Op::Reshape(_) | Op::BroadcastTo(_) => {
                let Some(a) = data(0) else { return size };
                size.at_least_one = a.size.at_least_one;
                // A maximum lines up with its `x` once it has `x`'s rank:
                // reshaped to `x`'s shape with the axes kept as 1, or such
                // a kept maximum broadcast to `x`'s shape. Broadcasting
                // the reduced maximum itself would line its dims up with
                // `x`'s from the right, against the wrong axes.
                if let Some((x, axes)) = &a.size.max_of {
                    let full = egraph[*x].data.shape();
                    let kept: Vec<u64> = full
                        .iter()
                        .enumerate()
                        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
                        .collect();
                    let shape = ty.shape.as_fixed().unwrap_or_default();
                    let lined_up = if matches!(op, Op::Reshape(_)) {
                        shape == kept
                    } else {
                        a.shape() == kept && shape == full
                    };
                    if lined_up {
                        size.max_of = Some((*x, axes.clone()));
                    }
                }
            }
            Op::Cast(_) => size.at_least_one = data(0).is_some_and(|a| a.size.at_least_one),
            Op::Binary(BinaryOp::Sub) => {
                if let (Some(m), Some(x)) = (data(1), children.first())
                    && let Some((of, axes)) = &m.size.max_of
                    && egraph.find(*of) == egraph.find(*x)
                    && egraph[*of].data.ty.shape.rank() == m.ty.shape.rank()
                {
                    size.peak = Some((false, axes.clone()));
                }
            }
            Op::Unary(UnaryOp::Exp) => {
                if let Some(Some((false, axes))) = data(0).map(|a| &a.size.peak) {
                    size.peak = Some((true, axes.clone()));
                }
            }
            // Nothing these prove.
            Op::Full { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::MatMul
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => {}
        }
        size
    }
}

impl Data {
    /// The shape's dims.
    pub fn shape(&self) -> Vec<u64> {
        self.ty.shape.as_fixed().unwrap_or_default()
    }

    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.ty.shape.num_elements().unwrap_or(0)
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.elements() * self.ty.dtype.size_bytes() as u64
    }
}

/// One inlining `fuse/grow` tries (class ids canonical).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GrowKey {
    /// The e-graph's class count when it was tried. Growth adds each group
    /// in a class of its own and unions it at once, so the count holds
    /// still while only growth runs; it changes when two existing classes
    /// merge (a group found in another class, or a canonicalisation rule
    /// firing in the phase) or another rule adds a class, which can change
    /// what an inlining builds (`absorb` reads the input classes' op
    /// nodes).
    pub classes: usize,
    /// The outer group's body, its input classes, and the input inlined.
    pub outer: (u32, Vec<Id>, usize),
    /// The inner group's body and input classes.
    pub inner: (u32, Vec<Id>),
}

/// The analysis: the kernel's parameter types, the interned fused bodies,
/// and the first merge conflict, if any.
#[derive(Debug, Default)]
pub struct Meta {
    /// Types of the kernel's parameters.
    pub params: Vec<TensorType>,
    /// Interned bodies of fused nodes.
    pub bodies: Vec<Body>,
    ids: HashMap<Body, u32>,
    /// Inlinings `fuse/grow` has tried (see [`Meta::first_try`]).
    grown: FxHashSet<GrowKey>,
    /// Inlinings `fuse/grow` has built per class.
    built: FxHashMap<Id, usize>,
    /// What went wrong first, if the facts of two merged classes disagreed
    /// or a rule built an ill-typed node.
    pub conflict: Option<String>,
}

impl Meta {
    /// An analysis for a kernel's parameters.
    pub fn new(params: Vec<TensorType>) -> Meta {
        Meta {
            params,
            ..Meta::default()
        }
    }

    /// Whether `fuse/grow` tries inlining `key` for the first time. Its
    /// outcome depends on the two groups and their input classes' types,
    /// constants and op nodes, which stay as they were while the class
    /// count does ([`GrowKey::classes`]), so a pair tried in an earlier
    /// iteration is not built again.
    pub fn first_try(&mut self, key: GrowKey) -> bool {
        self.grown.insert(key)
    }

    /// Inlinings `fuse/grow` has built for class `root` (canonical).
    pub fn builds(&self, root: Id) -> usize {
        self.built.get(&root).copied().unwrap_or(0)
    }

    /// Counts one inlining `fuse/grow` builds for class `root`.
    pub fn count_build(&mut self, root: Id) {
        *self.built.entry(root).or_default() += 1;
    }

    /// The most inlinings `fuse/grow` built for one class.
    pub fn most_builds(&self) -> usize {
        self.built.values().copied().max().unwrap_or(0)
    }

    /// The index of `body`, interning it.
    pub fn intern(&mut self, body: Body) -> u32 {
        if let Some(&i) = self.ids.get(&body) {
            return i;
        }
        let i = self.bodies.len() as u32;
        self.bodies.push(body.clone());
        self.ids.insert(body, i);
        i
    }

    fn conflict(&mut self, what: String) {
        if self.conflict.is_none() {
            self.conflict = Some(what);
        }
    }
}

/// The types of a body's nodes over inputs of `inputs` types.
pub fn body_types(body: &Body, inputs: &[TensorType]) -> Result<Vec<TensorType>, String> {
    let mut tys: Vec<TensorType> = Vec::with_capacity(body.nodes.len());
    for (op, args) in &body.nodes {
        let arg_tys: Vec<&TensorType> = args
            .iter()
            .map(|a| match *a {
                Arg::In(i) => inputs.get(i as usize),
                Arg::At(i) => tys.get(i as usize),
            })
            .collect::<Option<_>>()
            .ok_or("a body operand is out of range")?;
        let ty = tessera_ir::op::infer(&op.op, &arg_tys).map_err(|e| e.to_string())?;
        tys.push(ty);
    }
    Ok(tys)
}

/// Whether an op computes each element from the same element of its
/// (broadcast) operands: whether it is an elementwise instruction.
pub fn is_elementwise(op: &Op) -> bool {
    super::group::ew_op(op).is_some()
}

/// The value of an elementwise op whose operands are all constants (the
/// reference interpreter on one element, so it rounds as the op does).
pub fn fold(op: &Op, args: &[(Scalar, DType)], dtype: DType) -> Option<Scalar> {
    let consts: Vec<Tensor> = args.iter().map(|&(c, d)| scalar_tensor(c, d)).collect();
    let mut k = Kernel::new("fold");
    let vals: Vec<Value> = consts
        .iter()
        .enumerate()
        .map(|(i, t)| k.add_param(format!("c{i}"), TensorType::scalar(t.dtype)))
        .collect();
    let v = k.push(op.clone(), vals, None).ok()?;
    k.outputs.push(tessera_ir::Output {
        name: "r".into(),
        value: v,
    });
    let out = tessera_ir::interp::run(&k, &consts).ok()?;
    let x = out.first()?.get_f64(0);
    Some(match dtype {
        DType::Bool => Scalar::Bool(x != 0.0),
        d if d.is_int() => Scalar::Int(x as i64),
        _ => Scalar::Float(x),
    })
}

fn scalar_tensor(c: Scalar, dtype: DType) -> Tensor {
    let x = match c {
        Scalar::Float(x) => x,
        Scalar::Int(i) => i as f64,
        Scalar::Bool(b) => f64::from(u8::from(b)),
    };
    Tensor::from_f64(dtype, vec![], vec![x])
}

/// Constants compare by their bits (any NaN is every NaN: folding may
/// produce another payload).
fn same_scalar(a: Scalar, b: Scalar) -> bool {
    match (a, b) {
        (Scalar::Float(x), Scalar::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Scalar::Int(x), Scalar::Int(y)) => x == y,
        (Scalar::Bool(x), Scalar::Bool(y)) => x == y,
        _ => false,
    }
}

fn placeholder() -> Data {
    Data {
        ty: TensorType::scalar(DType::F32),
        constant: None,
        accumulated: false,
        size: Size::default(),
    }
}

impl egg::Analysis<ENode> for Meta {
    type Data = Data;

    fn make(egraph: &mut EGraph, enode: &ENode, _id: Id) -> Data {
        match enode {
            ENode::Param(i) => match egraph.analysis.params.get(*i as usize) {
                Some(ty) => Data {
                    ty: ty.clone(),
                    constant: None,
                    accumulated: false,
                    size: Size::default(),
                },
                None => {
                    egraph
                        .analysis
                        .conflict(format!("parameter {i} does not exist"));
                    placeholder()
                }
            },
            ENode::Op(key, children) => {
                let tys: Vec<&TensorType> = children.iter().map(|&c| &egraph[c].data.ty).collect();
                let ty = match tessera_ir::op::infer(&key.op, &tys) {
                    Ok(ty) => ty,
                    Err(e) => {
                        let what = format!("a rule built an ill-typed `{}`: {e}", key.op.name());
                        egraph.analysis.conflict(what);
                        return placeholder();
                    }
                };
                let consts: Option<Vec<(Scalar, DType)>> = children
                    .iter()
                    .map(|&c| {
                        egraph[c]
                            .data
                            .constant
                            .map(|v| (v, egraph[c].data.ty.dtype))
                    })
                    .collect();
                let constant = match &key.op {
                    Op::Full { value, .. } => Some(*value),
                    Op::Reshape(_) | Op::BroadcastTo(_) | Op::Transpose(_) | Op::Slice { .. } => {
                        consts.and_then(|c| c.first().map(|&(v, _)| v))
                    }
                    Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_) => {
                        consts.and_then(|c| fold(&key.op, &c, ty.dtype))
                    }
                    Op::Reduce { .. } | Op::MatMul | Op::Concat { .. } => None,
                };
                let accumulated =
                    key.op.accumulates() || children.iter().any(|&c| egraph[c].data.accumulated);
                let size = Size::of(egraph, &key.op, children, &ty);
                Data {
                    ty,
                    constant,
                    accumulated,
                    size,
                }
            }
            ENode::Fused(b, children) => {
                let inputs: Vec<TensorType> = children
                    .iter()
                    .map(|&c| egraph[c].data.ty.clone())
                    .collect();
                let body = &egraph.analysis.bodies[*b as usize];
                let accumulated = body.nodes.iter().any(|(op, _)| op.op.accumulates())
                    || children.iter().any(|&c| egraph[c].data.accumulated);
                match body_types(body, &inputs) {
                    Ok(tys) => Data {
                        ty: tys.last().cloned().unwrap_or_else(|| placeholder().ty),
                        constant: None,
                        accumulated,
                        size: Size::default(),
                    },
                    Err(e) => {
                        egraph
                            .analysis
                            .conflict(format!("a fused body is ill-typed: {e}"));
                        placeholder()
                    }
                }
            }
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        // Equal values, one form with a reduction upstream: the class is
        // held to the looser tolerance either way.
        let mut b_size = b.size.clone();
        let b_gains = b_size.absorb(&a.size);
        let a_gains = a.size.absorb(&b.size);
        let acc = DidMerge(
            (!a.accumulated && b.accumulated) || a_gains,
            (a.accumulated && !b.accumulated) || b_gains,
        );
        a.accumulated |= b.accumulated;
        if a.ty != b.ty {
            self.conflict(format!(
                "a rule equated values of types {} and {}",
                a.ty, b.ty
            ));
            return DidMerge(false, false);
        }
        match (a.constant, b.constant) {
            (Some(x), Some(y)) if !same_scalar(x, y) => {
                self.conflict(format!("a rule equated the constants {x} and {y}"));
                DidMerge(false, false)
            }
            (None, Some(y)) => {
                a.constant = Some(y);
                DidMerge(true, acc.1)
            }
            (Some(_), None) => DidMerge(acc.0, true),
            _ => acc,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::lang::ENode;
    use tessera_ir::Shape;

    fn graph() -> (EGraph, Id, Id) {
        let f32s = |n| TensorType::new(DType::F32, Shape::fixed(&[n]));
        let mut eg = EGraph::new(Meta::new(vec![f32s(4), f32s(8)]));
        let x = eg.add(ENode::Param(0));
        let y = eg.add(ENode::Param(1));
        (eg, x, y)
    }

    #[test]
    fn merging_values_of_different_types_is_reported() {
        let (mut eg, x, y) = graph();
        assert_eq!(eg.analysis.conflict, None);
        eg.union(x, y);
        eg.rebuild();
        let c = eg.analysis.conflict.clone().expect("a conflict");
        assert!(c.contains("f32[4]") && c.contains("f32[8]"), "{c}");
    }

    #[test]
    fn merging_different_constants_is_reported() {
        let (mut eg, _, _) = graph();
        let ty = TensorType::scalar(DType::F32);
        let one = eg.add(ENode::op(
            Op::Full {
                value: Scalar::Float(1.0),
                ty: ty.clone(),
            },
            vec![],
        ));
        let two = eg.add(ENode::op(
            Op::Full {
                value: Scalar::Float(2.0),
                ty,
            },
            vec![],
        ));
        eg.union(one, two);
        eg.rebuild();
        assert!(eg.analysis.conflict.is_some());
    }

    #[test]
    fn an_ill_typed_node_is_reported() {
        let (mut eg, x, y) = graph();
        eg.add(ENode::op(Op::Binary(tessera_ir::BinaryOp::Add), vec![x, y]));
        let c = eg.analysis.conflict.clone().expect("a conflict");
        assert!(c.contains("ill-typed"), "{c}");
    }
}
