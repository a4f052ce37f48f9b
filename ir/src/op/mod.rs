//! The op table: every primitive op of the IR, declared once.
//!
//! For each op this module holds its IR name, the dtypes it accepts, its type
//! and shape rule ([`infer`]) and its scalar reference semantics
//! (`eval_*`). The frontend's builtin lookup, the IR text form, the verifier
//! and the reference interpreter all derive from these declarations, so
//! adding an op starts (and mostly ends) here. Composite builtins of the
//! language (`softmax`, `layer_norm`, …) are not ops: the frontend expands
//! them into these.

use crate::types::{DType, Dim, Shape, TensorType, broadcast_shapes};
use std::fmt;

mod error;

pub use error::TypeError;

/// Which dtypes an op accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// Every dtype.
    Any,
    /// Every dtype but `bool`.
    Numeric,
    /// `f16`, `bf16`, `f32`.
    Float,
    /// `f16`, `bf16`, `f32`, `i8` (the cube's input types).
    MatMul,
}

impl Accepts {
    /// Whether `dtype` is accepted.
    pub fn allows(self, dtype: DType) -> bool {
        match self {
            Accepts::Any => true,
            Accepts::Numeric => dtype.is_numeric(),
            Accepts::Float => dtype.is_float(),
            Accepts::MatMul => matches!(dtype, DType::F16 | DType::BF16 | DType::F32 | DType::I8),
        }
    }

    /// The accepted dtypes, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Accepts::Any => "any dtype",
            Accepts::Numeric => "a numeric dtype (not bool)",
            Accepts::Float => "a float dtype (f16, bf16, f32)",
            Accepts::MatMul => "f16, bf16, f32 or i8",
        }
    }
}

/// Where an op's scalar semantics are well conditioned: the inputs for
/// which two correct implementations agree within the spec's tolerances.
/// Tests that compare implementations on random programs (the differential
/// test) feed each op such inputs; outside them, results may legitimately
/// differ (`log` near 0, `exp` of large values in f16).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Domain {
    /// Any value.
    Any,
    /// Values away from zero and negative ones (`log`, `sqrt`, divisors).
    Positive,
    /// Moderate magnitudes (`exp`: no overflow).
    Bounded,
}

macro_rules! op_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];

            /// The IR name.
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Looks up an IR name.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|o| o.name() == name)
            }
        }
    };
}

op_enum! {
    /// Elementwise ops of one operand.
    UnaryOp {
        /// `-x`.
        Neg = "neg",
        /// `|x|`.
        Abs = "abs",
        /// `max(x, 0)`.
        Relu = "relu",
        /// `e^x`.
        Exp = "exp",
        /// Natural logarithm.
        Log = "log",
        /// Square root.
        Sqrt = "sqrt",
        /// `1 / sqrt(x)`.
        Rsqrt = "rsqrt",
        /// `1 / x`.
        Reciprocal = "reciprocal",
        /// `1 / (1 + e^-x)`.
        Sigmoid = "sigmoid",
        /// Hyperbolic tangent.
        Tanh = "tanh",
        /// `x · sigmoid(x)`.
        Silu = "silu",
        /// The error function.
        Erf = "erf",
        /// `0.5·x·(1 + erf(x/√2))`.
        Gelu = "gelu",
        /// `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
        GeluTanh = "gelu_tanh",
        /// Sine (radians).
        Sin = "sin",
        /// Cosine (radians).
        Cos = "cos",
    }
}

impl UnaryOp {
    /// The dtypes accepted.
    pub fn accepts(self) -> Accepts {
        match self {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu => Accepts::Numeric,
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Silu
            | UnaryOp::Erf
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Sin
            | UnaryOp::Cos => Accepts::Float,
        }
    }

    /// Whether the op is correctly rounded (IEEE 754: its result is exact
    /// up to the one rounding, so every backend matches bit for bit;
    /// language.md, "Exactness"); transcendental ones are not.
    pub fn is_exact(self) -> bool {
        match self {
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sqrt => true,
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Silu
            | UnaryOp::Erf
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Sin
            | UnaryOp::Cos => false,
        }
    }

    /// Where the op is well conditioned ([`Domain`]).
    pub fn domain(self) -> Domain {
        match self {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Reciprocal => Domain::Positive,
            UnaryOp::Exp => Domain::Bounded,
            UnaryOp::Neg
            | UnaryOp::Abs
            | UnaryOp::Relu
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Silu
            | UnaryOp::Erf
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Sin
            | UnaryOp::Cos => Domain::Any,
        }
    }

    /// Reference semantics on floats (computed in f64; the caller rounds).
    pub fn eval_float(self, x: f64) -> f64 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Relu => {
                if x.is_nan() || x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Reciprocal => 1.0 / x,
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Silu => x * sigmoid(x),
            UnaryOp::Erf => libm::erf(x),
            UnaryOp::Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            UnaryOp::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
        }
    }

    /// Reference semantics on integers (two's-complement wrap is applied by
    /// the caller). `None` for float-only ops.
    pub fn eval_int(self, x: i64) -> Option<i64> {
        match self {
            UnaryOp::Neg => Some(x.wrapping_neg()),
            UnaryOp::Abs => Some(x.wrapping_abs()),
            UnaryOp::Relu => Some(x.max(0)),
            UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal
            | UnaryOp::Sigmoid
            | UnaryOp::Tanh
            | UnaryOp::Silu
            | UnaryOp::Erf
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh
            | UnaryOp::Sin
            | UnaryOp::Cos => None,
        }
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

op_enum! {
    /// Elementwise arithmetic ops of two operands (numpy broadcasting).
    BinaryOp {
        /// `a + b`.
        Add = "add",
        /// `a - b`.
        Sub = "sub",
        /// `a * b`.
        Mul = "mul",
        /// `a / b` (integers truncate toward zero).
        Div = "div",
        /// Elementwise maximum (NaN propagates).
        Maximum = "maximum",
        /// Elementwise minimum (NaN propagates).
        Minimum = "minimum",
        /// `a ^ b`, C's `pow`.
        Pow = "pow",
    }
}

/// An integer division by zero.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DivByZero;

impl BinaryOp {
    /// The dtypes accepted.
    pub fn accepts(self) -> Accepts {
        match self {
            BinaryOp::Pow => Accepts::Float,
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Maximum
            | BinaryOp::Minimum => Accepts::Numeric,
        }
    }

    /// Whether the op is correctly rounded (see [`UnaryOp::is_exact`]).
    pub fn is_exact(self) -> bool {
        match self {
            BinaryOp::Pow => false,
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Maximum
            | BinaryOp::Minimum => true,
        }
    }

    /// Where the op is well conditioned in each operand ([`Domain`]).
    pub fn domains(self) -> (Domain, Domain) {
        match self {
            BinaryOp::Div => (Domain::Any, Domain::Positive),
            BinaryOp::Pow => (Domain::Positive, Domain::Bounded),
            BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Maximum
            | BinaryOp::Minimum => (Domain::Any, Domain::Any),
        }
    }

    /// The source operator or builtin, for messages.
    pub fn surface(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Pow => "pow",
        }
    }

    /// Reference semantics on floats.
    pub fn eval_float(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            // IEEE 754-2019 maximum and minimum: NaN propagates and −0 is
            // below +0, so neither the operands' order nor a reduction's
            // decides the sign of a zero (docs/language-notes.md).
            BinaryOp::Maximum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a == b {
                    f64::from_bits(a.to_bits() & b.to_bits())
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if a == b {
                    f64::from_bits(a.to_bits() | b.to_bits())
                } else {
                    a.min(b)
                }
            }
            BinaryOp::Pow => a.powf(b),
        }
    }

    /// Reference semantics on integers, before wrapping to the dtype.
    pub fn eval_int(self, a: i64, b: i64) -> Result<i64, DivByZero> {
        Ok(match self {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div => {
                if b == 0 {
                    return Err(DivByZero);
                }
                a.wrapping_div(b)
            }
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
            // Not reachable for verified IR (pow accepts floats only).
            BinaryOp::Pow => (a as f64).powf(b as f64) as i64,
        })
    }
}

op_enum! {
    /// Elementwise comparisons; the result is `bool`.
    CompareOp {
        /// `a < b`.
        Lt = "lt",
        /// `a <= b`.
        Le = "le",
        /// `a > b`.
        Gt = "gt",
        /// `a >= b`.
        Ge = "ge",
        /// `a == b`.
        Eq = "eq",
        /// `a != b`.
        Ne = "ne",
    }
}

impl CompareOp {
    /// The dtypes accepted.
    pub fn accepts(self) -> Accepts {
        match self {
            CompareOp::Eq | CompareOp::Ne => Accepts::Any,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => Accepts::Numeric,
        }
    }

    /// The source operator.
    pub fn surface(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }

    /// Reference semantics on values of any ordered type (NaN compares
    /// unequal and unordered).
    pub fn eval<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
        }
    }
}

op_enum! {
    /// Reductions over a set of axes.
    ReduceOp {
        /// Sum.
        Sum = "sum",
        /// Arithmetic mean.
        Mean = "mean",
        /// Maximum (NaN propagates).
        Max = "max",
        /// Minimum (NaN propagates).
        Min = "min",
    }
}

impl ReduceOp {
    /// The dtypes accepted.
    pub fn accepts(self) -> Accepts {
        match self {
            ReduceOp::Mean => Accepts::Float,
            ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min => Accepts::Numeric,
        }
    }
}

/// A constant's value, already representable in its dtype.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A float dtype's value.
    Float(f64),
    /// An integer dtype's value.
    Int(i64),
    /// A bool.
    Bool(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Scalar::Float(x) if x.is_nan() => f.write_str("nan"),
            Scalar::Float(x) if x == f64::INFINITY => f.write_str("inf"),
            Scalar::Float(x) if x == f64::NEG_INFINITY => f.write_str("-inf"),
            Scalar::Float(x) => {
                // Shortest text that parses back to the same f64, always
                // with a `.` or exponent so it reads as a float.
                let s = format!("{x:?}");
                f.write_str(&s)
            }
            Scalar::Int(i) => write!(f, "{i}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// A primitive IR op with its attributes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A tensor of one value: no operands.
    Full {
        /// The value.
        value: Scalar,
        /// The result type.
        ty: TensorType,
    },
    /// Elementwise, one operand.
    Unary(UnaryOp),
    /// Elementwise, two operands, numpy broadcasting.
    Binary(BinaryOp),
    /// Elementwise comparison, two operands, numpy broadcasting.
    Compare(CompareOp),
    /// `select(c, a, b)`: three operands, numpy broadcasting.
    Select,
    /// Dtype conversion.
    Cast(DType),
    /// Reduction over `axes` (sorted, distinct); the axes are removed.
    Reduce {
        /// Which reduction.
        op: ReduceOp,
        /// Reduced axes, ascending.
        axes: Vec<usize>,
    },
    /// numpy `matmul` on operands of rank ≥ 2 (batch dims broadcast).
    MatMul,
    /// Row-major reshape to a shape of the same element count.
    Reshape(Shape),
    /// Axis permutation.
    Transpose(Vec<usize>),
    /// numpy `broadcast_to`.
    BroadcastTo(Shape),
    /// Join along `axis`; one or more operands.
    Concat {
        /// The joined axis.
        axis: usize,
    },
    /// `x[…, start:end, …]` on `axis`.
    Slice {
        /// The sliced axis.
        axis: usize,
        /// First index kept.
        start: u64,
        /// One past the last index kept.
        end: u64,
    },
}

impl Op {
    /// The IR name.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Full { .. } => "full",
            Op::Unary(u) => u.name(),
            Op::Binary(b) => b.name(),
            Op::Compare(c) => c.name(),
            Op::Select => "select",
            Op::Cast(_) => "cast",
            Op::Reduce { op, .. } => op.name(),
            Op::MatMul => "matmul",
            Op::Reshape(_) => "reshape",
            Op::Transpose(_) => "transpose",
            Op::BroadcastTo(_) => "broadcast_to",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
        }
    }

    /// How many operands the op takes; `None` for variadic (`concat`).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::Full { .. } => Some(0),
            Op::Unary(_)
            | Op::Cast(_)
            | Op::Reduce { .. }
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::BroadcastTo(_)
            | Op::Slice { .. } => Some(1),
            Op::Binary(_) | Op::Compare(_) | Op::MatMul => Some(2),
            Op::Select => Some(3),
            Op::Concat { .. } => None,
        }
    }

    /// Whether the op sums or reduces many inputs into each output (its
    /// results are compared with the looser tolerance).
    pub fn accumulates(&self) -> bool {
        matches!(self, Op::Reduce { .. } | Op::MatMul)
    }

    /// Whether the op's result is its exact result rounded once (IEEE 754
    /// correct rounding: arithmetic, `sqrt`, comparisons, `select`,
    /// `cast`, layout ops), so backends must agree bit for bit
    /// (language.md, "Exactness").
    pub fn is_exact(&self) -> bool {
        match self {
            Op::Unary(u) => u.is_exact(),
            Op::Binary(b) => b.is_exact(),
            Op::Reduce { .. } | Op::MatMul => false,
            Op::Full { .. }
            | Op::Compare(_)
            | Op::Select
            | Op::Cast(_)
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::BroadcastTo(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => true,
        }
    }
}

fn check_dtype(op: &'static str, accepts: Accepts, dtype: DType) -> Result<(), TypeError> {
    if accepts.allows(dtype) {
        Ok(())
    } else {
        Err(TypeError::Unsupported { op, dtype, accepts })
    }
}

fn same_dtype(a: DType, b: DType) -> Result<DType, TypeError> {
    if a == b {
        Ok(a)
    } else {
        Err(TypeError::DTypeMismatch { lhs: a, rhs: b })
    }
}

fn broadcast(a: &Shape, b: &Shape) -> Result<Shape, TypeError> {
    broadcast_shapes(a, b).ok_or_else(|| TypeError::Broadcast {
        lhs: a.clone(),
        rhs: b.clone(),
    })
}

fn check_dims_positive(shape: &Shape) -> Result<(), TypeError> {
    for d in shape.dims() {
        if let Dim::Fixed(0) = d {
            return Err(TypeError::BadDim { value: 0 });
        }
    }
    Ok(())
}

/// The accumulator (result) dtype of a matmul of `dtype` operands.
pub fn matmul_result_dtype(dtype: DType) -> DType {
    if dtype == DType::I8 {
        DType::I32
    } else {
        DType::F32
    }
}

/// Whether `value` is representable as a `dtype` value.
pub fn scalar_fits(value: Scalar, dtype: DType) -> bool {
    match (value, dtype) {
        (Scalar::Bool(_), DType::Bool) => true,
        (Scalar::Int(i), d) if d.is_int() => {
            d.int_range().is_some_and(|(lo, hi)| lo <= i && i <= hi)
        }
        (Scalar::Float(x), d) if d.is_float() => {
            x.is_nan() || x.is_infinite() || d.round_float(x) == x
        }
        _ => false,
    }
}

/// The result type of `op` applied to operands of types `args`: the type and
/// shape rule of every op. The frontend and the verifier both call this.
pub fn infer(op: &Op, args: &[&TensorType]) -> Result<TensorType, TypeError> {
    let ty = infer_shape(op, args)?;
    if ty.shape.too_large() {
        return Err(TypeError::TooLarge { shape: ty.shape });
    }
    Ok(ty)
}

/// [`infer`] before the size check.
fn infer_shape(op: &Op, args: &[&TensorType]) -> Result<TensorType, TypeError> {
    if let Some(n) = op.arity()
        && args.len() != n
    {
        return Err(TypeError::Arity {
            expected: n,
            found: args.len(),
        });
    }
    match op {
        Op::Full { value, ty } => {
            check_dims_positive(&ty.shape)?;
            if !scalar_fits(*value, ty.dtype) {
                return Err(TypeError::Constant { ty: ty.clone() });
            }
            Ok(ty.clone())
        }
        Op::Unary(u) => {
            check_dtype(u.name(), u.accepts(), args[0].dtype)?;
            Ok(args[0].clone())
        }
        Op::Binary(b) => {
            let dtype = same_dtype(args[0].dtype, args[1].dtype)?;
            check_dtype(b.surface(), b.accepts(), dtype)?;
            Ok(TensorType::new(
                dtype,
                broadcast(&args[0].shape, &args[1].shape)?,
            ))
        }
        Op::Compare(c) => {
            let dtype = same_dtype(args[0].dtype, args[1].dtype)?;
            check_dtype(c.surface(), c.accepts(), dtype)?;
            Ok(TensorType::new(
                DType::Bool,
                broadcast(&args[0].shape, &args[1].shape)?,
            ))
        }
        Op::Select => {
            if args[0].dtype != DType::Bool {
                return Err(TypeError::Condition {
                    dtype: args[0].dtype,
                });
            }
            let dtype = same_dtype(args[1].dtype, args[2].dtype)?;
            let ab = broadcast(&args[1].shape, &args[2].shape)?;
            Ok(TensorType::new(dtype, broadcast(&args[0].shape, &ab)?))
        }
        Op::Cast(to) => Ok(TensorType::new(*to, args[0].shape.clone())),
        Op::Reduce { op: r, axes } => {
            check_dtype(r.name(), r.accepts(), args[0].dtype)?;
            let rank = args[0].shape.rank();
            let mut seen = vec![false; rank];
            for &a in axes {
                if a >= rank {
                    return Err(TypeError::Axis {
                        axis: a as i64,
                        rank,
                    });
                }
                if seen[a] {
                    return Err(TypeError::DuplicateAxis { axis: a });
                }
                seen[a] = true;
            }
            let dims = args[0]
                .shape
                .dims()
                .iter()
                .enumerate()
                .filter(|(i, _)| !seen[*i])
                .map(|(_, d)| d.clone())
                .collect();
            Ok(TensorType::new(args[0].dtype, Shape(dims)))
        }
        Op::MatMul => infer_matmul(args[0], args[1]),
        Op::Reshape(to) => {
            check_dims_positive(to)?;
            // Symbolic counts are checked again once the dims are bound.
            if let (Some(a), Some(b)) = (args[0].shape.volume(), to.volume())
                && !a.may_equal(&b)
            {
                return Err(TypeError::Reshape {
                    from: args[0].shape.clone(),
                    to: to.clone(),
                });
            }
            Ok(TensorType::new(args[0].dtype, to.clone()))
        }
        Op::Transpose(perm) => {
            let rank = args[0].shape.rank();
            let mut seen = vec![false; rank];
            let ok = perm.len() == rank
                && perm
                    .iter()
                    .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true));
            if !ok {
                return Err(TypeError::Permutation {
                    perm: perm.iter().map(|&p| p as i64).collect(),
                    rank,
                });
            }
            let dims = perm
                .iter()
                .map(|&p| args[0].shape.dims()[p].clone())
                .collect();
            Ok(TensorType::new(args[0].dtype, Shape(dims)))
        }
        Op::BroadcastTo(to) => {
            check_dims_positive(to)?;
            match broadcast_shapes(&args[0].shape, to) {
                Some(s) if s.rank() == to.rank() && dims_match(&s, to) => {
                    Ok(TensorType::new(args[0].dtype, to.clone()))
                }
                _ => Err(TypeError::BroadcastTo {
                    from: args[0].shape.clone(),
                    to: to.clone(),
                }),
            }
        }
        Op::Concat { axis } => infer_concat(*axis, args),
        Op::Slice { axis, start, end } => {
            let rank = args[0].shape.rank();
            if *axis >= rank {
                return Err(TypeError::Axis {
                    axis: *axis as i64,
                    rank,
                });
            }
            let dim = &args[0].shape.dims()[*axis];
            let bad = start >= end || dim.fixed().is_some_and(|d| *end > d);
            if bad {
                return Err(TypeError::Slice {
                    start: *start as i64,
                    end: *end as i64,
                    dim: dim.clone(),
                });
            }
            let mut dims = args[0].shape.dims().to_vec();
            dims[*axis] = Dim::Fixed(end - start);
            Ok(TensorType::new(args[0].dtype, Shape(dims)))
        }
    }
}

/// `broadcast_to`: the broadcast result equals the target (an unknown dim on
/// either side matches).
fn dims_match(a: &Shape, b: &Shape) -> bool {
    a.dims()
        .iter()
        .zip(b.dims())
        .all(|(x, y)| x == y || *x == Dim::Unknown || *y == Dim::Unknown)
}

fn infer_matmul(a: &TensorType, b: &TensorType) -> Result<TensorType, TypeError> {
    let dtype = same_dtype(a.dtype, b.dtype)?;
    check_dtype("@", Accepts::MatMul, dtype)?;
    for s in [&a.shape, &b.shape] {
        if s.rank() < 2 {
            return Err(TypeError::MatMulRank { shape: s.clone() });
        }
    }
    let (ra, rb) = (a.shape.rank(), b.shape.rank());
    let (m, ka) = (&a.shape.dims()[ra - 2], &a.shape.dims()[ra - 1]);
    let (kb, n) = (&b.shape.dims()[rb - 2], &b.shape.dims()[rb - 1]);
    if ka != kb && *ka != Dim::Unknown && *kb != Dim::Unknown {
        return Err(TypeError::MatMulInner {
            lhs: a.shape.clone(),
            rhs: b.shape.clone(),
        });
    }
    let batch = broadcast_shapes(
        &Shape(a.shape.dims()[..ra - 2].to_vec()),
        &Shape(b.shape.dims()[..rb - 2].to_vec()),
    )
    .ok_or_else(|| TypeError::MatMulBatch {
        lhs: a.shape.clone(),
        rhs: b.shape.clone(),
    })?;
    let mut dims = batch.0;
    dims.push(m.clone());
    dims.push(n.clone());
    Ok(TensorType::new(matmul_result_dtype(dtype), Shape(dims)))
}

fn infer_concat(axis: usize, args: &[&TensorType]) -> Result<TensorType, TypeError> {
    let first = args.first().ok_or(TypeError::ConcatEmpty)?;
    let rank = first.shape.rank();
    if axis >= rank {
        return Err(TypeError::Axis {
            axis: axis as i64,
            rank,
        });
    }
    let mut total = Some(0u64);
    for (i, t) in args.iter().enumerate() {
        same_dtype(first.dtype, t.dtype)?;
        let compatible = t.shape.rank() == rank
            && (0..rank).all(|d| {
                d == axis
                    || t.shape.dims()[d] == first.shape.dims()[d]
                    || t.shape.dims()[d] == Dim::Unknown
                    || first.shape.dims()[d] == Dim::Unknown
            });
        if !compatible {
            return Err(TypeError::Concat {
                index: i,
                first: first.shape.clone(),
                found: t.shape.clone(),
            });
        }
        total = match (total, t.shape.dims()[axis].fixed()) {
            (Some(acc), Some(n)) => acc.checked_add(n),
            _ => None,
        };
    }
    let mut dims = first.shape.dims().to_vec();
    dims[axis] = total.map_or(Dim::Unknown, Dim::Fixed);
    Ok(TensorType::new(first.dtype, Shape(dims)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(dtype: DType, dims: &[u64]) -> TensorType {
        TensorType::new(dtype, Shape::fixed(dims))
    }

    #[test]
    fn matmul_broadcasts_batch_and_widens() {
        let a = t(DType::F16, &[2, 1, 4, 8]);
        let b = t(DType::F16, &[3, 8, 5]);
        assert_eq!(
            infer(&Op::MatMul, &[&a, &b]),
            Ok(t(DType::F32, &[2, 3, 4, 5]))
        );
        let a = t(DType::I8, &[4, 8]);
        let b = t(DType::I8, &[8, 2]);
        assert_eq!(infer(&Op::MatMul, &[&a, &b]), Ok(t(DType::I32, &[4, 2])));
        let b = t(DType::F16, &[7, 5]);
        assert!(matches!(
            infer(&Op::MatMul, &[&t(DType::F16, &[4, 8]), &b]),
            Err(TypeError::MatMulInner { .. })
        ));
    }

    #[test]
    fn reduce_removes_axes() {
        let x = t(DType::F32, &[2, 3, 4]);
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes: vec![0, 2],
        };
        assert_eq!(infer(&op, &[&x]), Ok(t(DType::F32, &[3])));
        let op = Op::Reduce {
            op: ReduceOp::Mean,
            axes: vec![0],
        };
        assert!(matches!(
            infer(&op, &[&t(DType::I32, &[2])]),
            Err(TypeError::Unsupported { .. })
        ));
    }

    #[test]
    fn slice_and_concat_extents() {
        let x = t(DType::F32, &[4, 10]);
        let s = Op::Slice {
            axis: 1,
            start: 2,
            end: 7,
        };
        assert_eq!(infer(&s, &[&x]), Ok(t(DType::F32, &[4, 5])));
        let s = Op::Slice {
            axis: 1,
            start: 2,
            end: 11,
        };
        assert!(infer(&s, &[&x]).is_err());
        let y = t(DType::F32, &[4, 3]);
        assert_eq!(
            infer(&Op::Concat { axis: 1 }, &[&x, &y]),
            Ok(t(DType::F32, &[4, 13]))
        );
    }

    #[test]
    fn scalar_semantics_match_hand_values() {
        assert_eq!(UnaryOp::Relu.eval_float(-2.0), 0.0);
        assert!(UnaryOp::Relu.eval_float(f64::NAN).is_nan());
        assert_eq!(BinaryOp::Div.eval_int(-7, 2), Ok(-3));
        assert_eq!(BinaryOp::Div.eval_int(1, 0), Err(DivByZero));
        assert_eq!(BinaryOp::Pow.eval_float(-2.0, 3.0), -8.0);
        assert!(BinaryOp::Maximum.eval_float(f64::NAN, 1.0).is_nan());
        // gelu(1) = 0.5 * (1 + erf(1/sqrt 2)) = 0.8413447460685429
        assert!((UnaryOp::Gelu.eval_float(1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
    }
}
