//! Why an op cannot be applied to its operands ([`TypeError`]): one variant
//! per rule of [`super::infer`], with its diagnostic code and message.

use super::Accepts;
use crate::diag::Code;
use crate::types::{DType, Dim, Shape, TensorType};
use std::fmt;

/// Why an op cannot be applied to its operands.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeError {
    /// Wrong operand count.
    Arity {
        /// Expected.
        expected: usize,
        /// Given.
        found: usize,
    },
    /// Operands of different dtypes.
    DTypeMismatch {
        /// First operand's dtype.
        lhs: DType,
        /// The other dtype.
        rhs: DType,
    },
    /// A dtype the op does not accept.
    Unsupported {
        /// The op.
        op: &'static str,
        /// The operand dtype.
        dtype: DType,
        /// What the op accepts.
        accepts: Accepts,
    },
    /// `select`'s condition is not bool.
    Condition {
        /// Its dtype.
        dtype: DType,
    },
    /// A result with more than [`MAX_TENSOR_ELEMENTS`] elements.
    ///
    /// [`MAX_TENSOR_ELEMENTS`]: crate::types::MAX_TENSOR_ELEMENTS
    TooLarge {
        /// The result's shape.
        shape: Shape,
    },
    /// Shapes that do not broadcast.
    Broadcast {
        /// One shape.
        lhs: Shape,
        /// The other.
        rhs: Shape,
    },
    /// Matmul's contracted dims differ.
    MatMulInner {
        /// Left shape.
        lhs: Shape,
        /// Right shape.
        rhs: Shape,
    },
    /// Matmul's batch dims do not broadcast.
    MatMulBatch {
        /// Left shape.
        lhs: Shape,
        /// Right shape.
        rhs: Shape,
    },
    /// A matmul operand below rank 2 (the IR form; the language's rank-1
    /// cases are reshaped by the frontend).
    MatMulRank {
        /// The operand's shape.
        shape: Shape,
    },
    /// An axis out of range.
    Axis {
        /// The axis as given.
        axis: i64,
        /// The operand's rank.
        rank: usize,
    },
    /// An axis given twice.
    DuplicateAxis {
        /// The axis.
        axis: usize,
    },
    /// Not a permutation of the axes.
    Permutation {
        /// As given.
        perm: Vec<i64>,
        /// The operand's rank.
        rank: usize,
    },
    /// Reshape to a different element count.
    Reshape {
        /// From.
        from: Shape,
        /// To.
        to: Shape,
    },
    /// A dim that is not positive.
    BadDim {
        /// The value.
        value: i64,
    },
    /// Slice bounds outside the axis or empty.
    Slice {
        /// Start.
        start: i64,
        /// End.
        end: i64,
        /// The axis extent.
        dim: Dim,
    },
    /// Concat of no tensors.
    ConcatEmpty,
    /// Concat operands whose rank or dims differ.
    Concat {
        /// Index of the offending operand.
        index: usize,
        /// The first operand's shape.
        first: Shape,
        /// The offending operand's shape.
        found: Shape,
    },
    /// `broadcast_to` a shape the operand does not broadcast to.
    BroadcastTo {
        /// The operand's shape.
        from: Shape,
        /// The target.
        to: Shape,
    },
    /// A scalar that is not representable in the constant's dtype.
    Constant {
        /// The constant's type.
        ty: TensorType,
    },
}

impl TypeError {
    /// The diagnostic code of this error class.
    pub fn code(&self) -> Code {
        match self {
            TypeError::Arity { .. } => Code::E0200,
            TypeError::DTypeMismatch { .. } => Code::E0300,
            TypeError::Unsupported { .. } | TypeError::Condition { .. } => Code::E0301,
            TypeError::Broadcast { .. } => Code::E0400,
            TypeError::MatMulInner { .. }
            | TypeError::MatMulBatch { .. }
            | TypeError::MatMulRank { .. } => Code::E0401,
            TypeError::Axis { .. } | TypeError::DuplicateAxis { .. } => Code::E0402,
            TypeError::Permutation { .. } => Code::E0403,
            TypeError::Reshape { .. } => Code::E0404,
            TypeError::BadDim { .. } => Code::E0405,
            TypeError::Slice { .. } => Code::E0406,
            TypeError::ConcatEmpty | TypeError::Concat { .. } => Code::E0407,
            TypeError::BroadcastTo { .. } => Code::E0408,
            TypeError::TooLarge { .. } => Code::E0409,
            TypeError::Constant { .. } => Code::E0303,
        }
    }
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeError::Arity { expected, found } => {
                write!(f, "expected {expected} operands, found {found}")
            }
            TypeError::DTypeMismatch { lhs, rhs } => {
                write!(f, "mismatched dtypes: {lhs} and {rhs}")
            }
            TypeError::Unsupported { op, dtype, accepts } => {
                write!(
                    f,
                    "`{op}` does not accept {dtype}: it needs {}",
                    accepts.describe()
                )
            }
            TypeError::Condition { dtype } => {
                write!(f, "the condition of `select` must be bool, found {dtype}")
            }
            TypeError::Broadcast { lhs, rhs } => {
                write!(f, "shapes {lhs} and {rhs} do not broadcast")
            }
            TypeError::TooLarge { shape } => write!(
                f,
                "a tensor of shape {shape} has {} elements, more than the {} a tensor may have",
                shape.product_text(),
                crate::types::MAX_TENSOR_ELEMENTS
            ),
            TypeError::MatMulInner { lhs, rhs } => {
                write!(f, "matmul of {lhs} and {rhs}: the contracted dims differ")
            }
            TypeError::MatMulBatch { lhs, rhs } => write!(
                f,
                "matmul of {lhs} and {rhs}: the batch dims do not broadcast"
            ),
            TypeError::MatMulRank { shape } => {
                write!(f, "matmul operand of shape {shape} has rank below 2")
            }
            TypeError::Axis { axis, rank } => {
                write!(f, "axis {axis} is out of range for a tensor of rank {rank}")
            }
            TypeError::DuplicateAxis { axis } => write!(f, "axis {axis} is repeated"),
            TypeError::Permutation { perm, rank } => {
                let p: Vec<String> = perm.iter().map(i64::to_string).collect();
                write!(
                    f,
                    "[{}] is not a permutation of the {rank} axes",
                    p.join(", ")
                )
            }
            TypeError::Reshape { from, to } => write!(
                f,
                "cannot reshape {from} to {to}: the element counts differ"
            ),
            TypeError::BadDim { value } => {
                write!(f, "dim {value} is not a positive integer")
            }
            TypeError::Slice { start, end, dim } => write!(
                f,
                "slice {start}:{end} is empty or outside an axis of extent {dim}"
            ),
            TypeError::ConcatEmpty => f.write_str("concat needs at least one tensor"),
            TypeError::Concat {
                index,
                first,
                found,
            } => write!(
                f,
                "concat operand {index} has shape {found}, incompatible with {first}"
            ),
            TypeError::BroadcastTo { from, to } => {
                write!(f, "cannot broadcast {from} to {to}")
            }
            TypeError::Constant { ty } => {
                write!(f, "constant is not representable as {ty}")
            }
        }
    }
}
