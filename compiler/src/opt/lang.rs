//! The e-graph language: the IR's op table (one e-node per [`Op`], its
//! attributes part of the node), kernel parameters, and fused groups.
//!
//! An [`ENode::Op`] is an IR op applied to e-classes. Its identity is the
//! op with every attribute, floats compared by their bits ([`OpKey`]), so
//! the language follows the op table without a second list of ops. An
//! [`ENode::Fused`] is one stage's worth of ops: a closed [`Body`] over its
//! inputs (`in0`, `in1`, …), interned in the analysis so that equal bodies
//! are one node.

use egg::{FromOp, Id, Language};
use std::fmt;
use tessera_ir::{BinaryOp, CompareOp, Op, Scalar, Shape, UnaryOp};

/// An IR op with a total order and a hash: its attributes spelt exactly
/// (floats by their bits).
#[derive(Clone, Debug)]
pub struct OpKey {
    /// The op.
    pub op: Op,
    key: std::sync::Arc<str>,
}

impl OpKey {
    /// The key of `op`.
    pub fn new(op: Op) -> OpKey {
        let key = key_of(&op).into();
        OpKey { op, key }
    }

    /// The key that identifies the op with its attributes (what equality,
    /// order and hashing read).
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for OpKey {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for OpKey {}
impl PartialOrd for OpKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OpKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}
impl std::hash::Hash for OpKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

fn shape_key(s: &Shape) -> String {
    let dims: Vec<String> = s.dims().iter().map(|d| d.to_string()).collect();
    dims.join("x")
}

fn list_key(l: &[usize]) -> String {
    let v: Vec<String> = l.iter().map(|a| a.to_string()).collect();
    v.join(",")
}

/// The op's name followed by every attribute: `cast:f16`, `sum:1,2`,
/// `full:f32:4x8:0x3ff0000000000000`.
fn key_of(op: &Op) -> String {
    let name = op.name();
    match op {
        Op::Full { value, ty } => {
            let v = match *value {
                Scalar::Float(x) => format!("0x{:016x}", x.to_bits()),
                Scalar::Int(i) => format!("{i}"),
                Scalar::Bool(b) => format!("{b}"),
            };
            format!("{name}:{}:{}:{v}", ty.dtype, shape_key(&ty.shape))
        }
        Op::Cast(d) => format!("{name}:{d}"),
        Op::Reduce { axes, .. } => format!("{name}:{}", list_key(axes)),
        Op::Reshape(s) | Op::BroadcastTo(s) => format!("{name}:{}", shape_key(s)),
        Op::Transpose(p) => format!("{name}:{}", list_key(p)),
        Op::Concat { axis } => format!("{name}:{axis}"),
        Op::Slice { axis, start, end } => format!("{name}:{axis}:{start}:{end}"),
        Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::MatMul => name.to_string(),
    }
}

/// An operand of a fused body's node.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arg {
    /// The i-th input of the fused node.
    In(u32),
    /// The result of the i-th node of the body.
    At(u32),
}

/// A closed computation over a fused node's inputs: nodes in topological
/// order, the last is the result. Elementwise ops broadcast their operands
/// numpy-style, as in the IR.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Body {
    /// The nodes.
    pub nodes: Vec<(OpKey, Vec<Arg>)>,
}

impl Body {
    /// Number of inputs the body reads (one more than its largest `In`).
    pub fn inputs(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|(_, a)| a)
            .filter_map(|a| match a {
                Arg::In(i) => Some(*i as usize + 1),
                Arg::At(_) => None,
            })
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (op, args)) in self.nodes.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            let args: Vec<String> = args
                .iter()
                .map(|a| match a {
                    Arg::In(j) => format!("in{j}"),
                    Arg::At(j) => format!("t{j}"),
                })
                .collect();
            write!(f, "t{i} = {} {}", op.key, args.join(" "))?;
        }
        Ok(())
    }
}

/// An e-node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ENode {
    /// The i-th kernel parameter.
    Param(u32),
    /// An IR op.
    Op(OpKey, Vec<Id>),
    /// A fused group: the body (an index into the analysis' interned
    /// bodies) over the inputs.
    Fused(u32, Vec<Id>),
}

impl ENode {
    /// An op node.
    pub fn op(op: Op, children: Vec<Id>) -> ENode {
        ENode::Op(OpKey::new(op), children)
    }

    /// The IR op, for an op node.
    pub fn ir_op(&self) -> Option<&Op> {
        match self {
            ENode::Op(k, _) => Some(&k.op),
            ENode::Param(_) | ENode::Fused(..) => None,
        }
    }
}

/// What tells e-nodes apart for pattern matching: the node without its
/// children.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Discriminant {
    /// A parameter.
    Param(u32),
    /// An op (with attributes) and its arity.
    Op(OpKey, usize),
    /// A fused body and its arity.
    Fused(u32, usize),
}

impl Language for ENode {
    type Discriminant = Discriminant;

    fn discriminant(&self) -> Discriminant {
        match self {
            ENode::Param(i) => Discriminant::Param(*i),
            ENode::Op(k, c) => Discriminant::Op(k.clone(), c.len()),
            ENode::Fused(b, c) => Discriminant::Fused(*b, c.len()),
        }
    }

    fn matches(&self, other: &Self) -> bool {
        self.discriminant() == other.discriminant()
    }

    fn children(&self) -> &[Id] {
        match self {
            ENode::Param(_) => &[],
            ENode::Op(_, c) | ENode::Fused(_, c) => c,
        }
    }

    fn children_mut(&mut self) -> &mut [Id] {
        match self {
            ENode::Param(_) => &mut [],
            ENode::Op(_, c) | ENode::Fused(_, c) => c,
        }
    }
}

impl fmt::Display for ENode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ENode::Param(i) => write!(f, "param:{i}"),
            ENode::Op(k, _) => f.write_str(&k.key),
            ENode::Fused(b, _) => write!(f, "fused:{b}"),
        }
    }
}

/// Rule patterns name attribute-free ops by their IR name (`exp`, `mul`,
/// `select`, `matmul`); ops with attributes are matched by rules written
/// in Rust.
impl FromOp for ENode {
    type Error = String;

    fn from_op(op: &str, children: Vec<Id>) -> Result<Self, Self::Error> {
        let ir = if let Some(u) = UnaryOp::from_name(op) {
            Op::Unary(u)
        } else if let Some(b) = BinaryOp::from_name(op) {
            Op::Binary(b)
        } else if let Some(c) = CompareOp::from_name(op) {
            Op::Compare(c)
        } else if op == "select" {
            Op::Select
        } else if op == "matmul" {
            Op::MatMul
        } else {
            return Err(format!("`{op}` is no attribute-free op"));
        };
        if ir.arity() != Some(children.len()) {
            return Err(format!("`{op}` takes {:?} operands", ir.arity()));
        }
        Ok(ENode::op(ir, children))
    }
}
