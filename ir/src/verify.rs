//! The IR verifier: checks exactly the invariants `lib.rs` states.
//!
//! A verified kernel has distinct parameter and result names, operands that
//! refer to parameters or earlier nodes, and node types equal to what
//! [`crate::op::infer`] computes. [`verify_concrete`] adds that every dim is
//! fixed, which the interpreter and the backends require.

use crate::graph::{Kernel, Value};
use crate::op::infer;
use crate::types::TensorType;
use std::fmt;

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The kernel.
    pub kernel: String,
    /// The node, if the error is at one.
    pub node: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "kernel `{}`, node %{n}: {}", self.kernel, self.message),
            None => write!(f, "kernel `{}`: {}", self.kernel, self.message),
        }
    }
}

/// Checks the structural and type invariants.
pub fn verify(k: &Kernel) -> Result<(), VerifyError> {
    let err = |node: Option<usize>, message: String| VerifyError {
        kernel: k.name.clone(),
        node,
        message,
    };
    for (i, p) in k.params.iter().enumerate() {
        if k.params[..i].iter().any(|q| q.name == p.name) {
            return Err(err(
                None,
                format!("parameter `{}` is declared twice", p.name),
            ));
        }
    }
    for (i, o) in k.outputs.iter().enumerate() {
        if k.outputs[..i].iter().any(|q| q.name == o.name) {
            return Err(err(None, format!("result `{}` is declared twice", o.name)));
        }
    }
    let defined = |v: Value, before: usize| match v {
        Value::Param(i) => (i as usize) < k.params.len(),
        Value::Node(i) => (i as usize) < before,
    };
    for (i, n) in k.nodes.iter().enumerate() {
        if let Some(bad) = n.args.iter().find(|&&a| !defined(a, i)) {
            return Err(err(
                Some(i),
                format!("operand {bad:?} is not defined before use"),
            ));
        }
        let tys: Vec<&TensorType> = n.args.iter().map(|&a| k.ty(a)).collect();
        let inferred = infer(&n.op, &tys).map_err(|e| err(Some(i), e.to_string()))?;
        if inferred != n.ty {
            return Err(err(
                Some(i),
                format!(
                    "`{}` produces {inferred}, but the node says {}",
                    n.op.name(),
                    n.ty
                ),
            ));
        }
    }
    // A fused group is one contiguous run of nodes (so it is convex: no
    // path leaves it and comes back).
    for (i, n) in k.nodes.iter().enumerate() {
        if let Some(g) = n.group
            && i > 0
            && k.nodes[i - 1].group != Some(g)
            && k.nodes[..i - 1].iter().any(|m| m.group == Some(g))
        {
            return Err(err(
                Some(i),
                format!("group {g} is not one contiguous run of nodes"),
            ));
        }
    }
    for o in &k.outputs {
        if !defined(o.value, k.nodes.len()) {
            return Err(err(None, format!("result `{}` is not defined", o.name)));
        }
    }
    if k.outputs.is_empty() {
        return Err(err(None, "a kernel has at least one result".to_string()));
    }
    Ok(())
}

/// [`verify`], plus: every dim of every value is fixed.
pub fn verify_concrete(k: &Kernel) -> Result<(), VerifyError> {
    verify(k)?;
    let err = |node: Option<usize>, ty: &TensorType| VerifyError {
        kernel: k.name.clone(),
        node,
        message: format!("type {ty} is not concrete"),
    };
    if let Some(p) = k.params.iter().find(|p| !p.ty.shape.is_concrete()) {
        return Err(err(None, &p.ty));
    }
    if let Some((i, n)) = k
        .nodes
        .iter()
        .enumerate()
        .find(|(_, n)| !n.ty.shape.is_concrete())
    {
        return Err(err(Some(i), &n.ty));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Node, Output};
    use crate::op::{Op, UnaryOp};
    use crate::types::{DType, Dim, Shape};

    #[test]
    fn catches_forward_references_and_wrong_types() {
        let mut k = Kernel::new("k");
        let x = k.add_param("x", TensorType::new(DType::F32, Shape::fixed(&[4])));
        k.nodes.push(Node {
            op: Op::Unary(UnaryOp::Exp),
            args: vec![Value::Node(1)],
            ty: TensorType::new(DType::F32, Shape::fixed(&[4])),
            span: None,
            group: None,
        });
        k.outputs.push(Output {
            name: "out0".into(),
            value: Value::Node(0),
        });
        assert!(verify(&k).unwrap_err().message.contains("not defined"));
        k.nodes[0].args = vec![x];
        assert!(verify(&k).is_ok());
        k.nodes[0].ty = TensorType::new(DType::F16, Shape::fixed(&[4]));
        assert!(verify(&k).unwrap_err().message.contains("produces f32[4]"));
    }

    #[test]
    fn concrete_rejects_symbolic_dims() {
        let mut k = Kernel::new("k");
        let x = k.add_param("x", TensorType::new(DType::F32, Shape(vec![Dim::sym("M")])));
        k.outputs.push(Output {
            name: "out0".into(),
            value: x,
        });
        assert!(verify(&k).is_ok());
        assert!(verify_concrete(&k).is_err());
    }
}
