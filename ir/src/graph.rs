//! The tensor dataflow graph: a kernel is parameters, a list of nodes in
//! topological order, and named results.
//!
//! Every node defines one value; operands refer to parameters or to earlier
//! nodes, so a kernel is acyclic by construction and a single forward pass
//! visits values in dependency order. Nodes keep the source span they came
//! from, so later stages can point diagnostics at the user's expression.

use crate::diag::Span;
use crate::op::{Op, TypeError, infer};
use crate::types::{DimEnv, TensorType};

/// A value: a kernel parameter or a node's result.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// The i-th parameter.
    Param(u32),
    /// The result of the i-th node.
    Node(u32),
}

/// A kernel parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Name (as in the source).
    pub name: String,
    /// Type.
    pub ty: TensorType,
}

/// One op application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The op and its attributes.
    pub op: Op,
    /// Operands.
    pub args: Vec<Value>,
    /// Result type.
    pub ty: TensorType,
    /// The source expression, if the node came from source.
    pub span: Option<Span>,
    /// The fused group the node belongs to, if the optimiser fused it: the
    /// planner turns each group (a contiguous run of nodes) into one stage.
    pub group: Option<u32>,
}

/// A kernel result.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Name: the declared result name, or `out0`, `out1`, ….
    pub name: String,
    /// The value returned.
    pub value: Value,
}

/// What a value's computation went through, from least to most rounding
/// (ordered, so the most of a value's inputs is the max).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Upstream {
    /// Only correctly rounded ops: results are exact (bit for bit).
    Exact,
    /// An op held to a tolerance (a transcendental, `pow`), but no
    /// reduction or matmul.
    Rounded,
    /// A reduction or matmul.
    Accumulated,
}

/// A kernel: the unit that is compiled and run.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Kernel {
    /// Name.
    pub name: String,
    /// Parameters, in signature order.
    pub params: Vec<Param>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Results, in signature order.
    pub outputs: Vec<Output>,
}

/// Kernels of one source file (or IR text file), in order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Module {
    /// The kernels.
    pub kernels: Vec<Kernel>,
}

impl Kernel {
    /// An empty kernel.
    pub fn new(name: impl Into<String>) -> Kernel {
        Kernel {
            name: name.into(),
            ..Kernel::default()
        }
    }

    /// Adds a parameter.
    pub fn add_param(&mut self, name: impl Into<String>, ty: TensorType) -> Value {
        self.params.push(Param {
            name: name.into(),
            ty,
        });
        Value::Param((self.params.len() - 1) as u32)
    }

    /// Adds a node after checking its operands with [`infer`].
    pub fn push(
        &mut self,
        op: Op,
        args: Vec<Value>,
        span: Option<Span>,
    ) -> Result<Value, TypeError> {
        let tys: Vec<&TensorType> = args.iter().map(|&v| self.ty(v)).collect();
        let ty = infer(&op, &tys)?;
        self.nodes.push(Node {
            op,
            args,
            ty,
            span,
            group: None,
        });
        Ok(Value::Node((self.nodes.len() - 1) as u32))
    }

    /// The type of a value. Panics on a value of another kernel; verified
    /// kernels only hold their own values.
    pub fn ty(&self, v: Value) -> &TensorType {
        match v {
            Value::Param(i) => &self.params[i as usize].ty,
            Value::Node(i) => &self.nodes[i as usize].ty,
        }
    }

    /// The node defining a value, if it is not a parameter.
    pub fn node(&self, v: Value) -> Option<&Node> {
        match v {
            Value::Param(_) => None,
            Value::Node(i) => self.nodes.get(i as usize),
        }
    }

    /// The result types, in order.
    pub fn output_types(&self) -> Vec<&TensorType> {
        self.outputs.iter().map(|o| self.ty(o.value)).collect()
    }

    /// Removes nodes no output depends on and renumbers the rest, keeping
    /// their order.
    pub fn remove_dead_nodes(&mut self) {
        let mut live = vec![false; self.nodes.len()];
        for o in &self.outputs {
            if let Value::Node(i) = o.value {
                live[i as usize] = true;
            }
        }
        for i in (0..self.nodes.len()).rev() {
            if live[i] {
                for a in &self.nodes[i].args {
                    if let Value::Node(j) = *a {
                        live[j as usize] = true;
                    }
                }
            }
        }
        let mut new_index = vec![0u32; self.nodes.len()];
        let mut kept = Vec::with_capacity(self.nodes.len());
        for (i, node) in std::mem::take(&mut self.nodes).into_iter().enumerate() {
            if live[i] {
                new_index[i] = kept.len() as u32;
                kept.push(node);
            }
        }
        let remap = |v: Value| match v {
            Value::Node(i) => Value::Node(new_index[i as usize]),
            p => p,
        };
        for node in &mut kept {
            for a in &mut node.args {
                *a = remap(*a);
            }
        }
        for o in &mut self.outputs {
            o.value = remap(o.value);
        }
        self.nodes = kept;
    }

    /// What computed `v` (transitively, inclusively): only correctly
    /// rounded ops, also an op held to a tolerance (a transcendental), or
    /// a reduction or matmul ([`Upstream`]).
    pub fn upstream(&self, v: Value) -> Upstream {
        let mut up = vec![Upstream::Exact; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let own = if n.op.accumulates() {
                Upstream::Accumulated
            } else if n.op.is_exact() {
                Upstream::Exact
            } else {
                Upstream::Rounded
            };
            up[i] = n.args.iter().fold(own, |u, a| match a {
                Value::Node(j) => u.max(up[*j as usize]),
                Value::Param(_) => u,
            });
        }
        match v {
            Value::Node(i) => up[i as usize],
            Value::Param(_) => Upstream::Exact,
        }
    }

    /// Substitutes bound symbolic dims in every type and shape attribute.
    pub fn substitute_dims(&mut self, env: &DimEnv) {
        for p in &mut self.params {
            p.ty = p.ty.substitute(env);
        }
        for n in &mut self.nodes {
            n.ty = n.ty.substitute(env);
            match &mut n.op {
                Op::Full { ty, .. } => *ty = ty.substitute(env),
                Op::Reshape(s) | Op::BroadcastTo(s) => *s = s.substitute(env),
                Op::Unary(_)
                | Op::Binary(_)
                | Op::Compare(_)
                | Op::Select
                | Op::Cast(_)
                | Op::Reduce { .. }
                | Op::MatMul
                | Op::Transpose(_)
                | Op::Concat { .. }
                | Op::Slice { .. } => {}
            }
        }
    }
}
