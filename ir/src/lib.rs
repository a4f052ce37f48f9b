//! Tessera's tensor IR, shared by the frontend, the optimiser and every
//! backend.
//!
//! # The IR in one page
//!
//! A [`Module`] holds [`Kernel`]s. A kernel has typed parameters, a list of
//! [`Node`]s in topological order and named outputs. Each node applies one
//! primitive [`Op`] to operands that are parameters or earlier nodes and
//! defines one value of a [`TensorType`]: a [`DType`] and a [`Shape`] whose
//! dims are fixed, symbolic (`M`, bound before code generation) or unknown
//! (`?`, an extent that depends on a symbolic dim in a way the IR does not
//! track).
//!
//! Ops (see [`op`], the op table) are elementwise (`Unary`, `Binary`,
//! `Compare`, `Select`, `Cast`, with numpy broadcasting), reductions over an
//! axis set (`Reduce`, axes removed), `MatMul` (rank ≥ 2, batch dims
//! broadcast, f16/bf16/f32 accumulate to f32 and i8 to i32), layout ops
//! (`Reshape`, `Transpose`, `BroadcastTo`, `Concat`, `Slice`) and constants
//! (`Full`). The language's composite builtins are expanded by the frontend;
//! `keepdims` is a `Reshape` after the reduction, and rank-1 matmul operands
//! are reshaped to rank 2.
//!
//! # Invariants
//!
//! Checked by [`verify::verify`] (and by the text parser, which builds only
//! verified kernels):
//! - operands refer to parameters or to earlier nodes; outputs to defined
//!   values; a kernel has at least one output;
//! - parameter names are distinct, output names are distinct;
//! - every node's type is exactly what [`op::infer`] computes from its op and
//!   operand types.
//!
//! [`verify::verify_concrete`] adds that every dim is fixed: the interpreter
//! and the backends accept only such kernels.
//!
//! # Text form
//!
//! [`text`] prints and parses the IR; `print(parse(t)) == t` for printed `t`.
//! Tests at later stages are written in this form.
//!
//! # Semantics
//!
//! [`interp`] is the reference interpreter: every op computes in f64 and
//! rounds once to its dtype; reductions and matmul accumulate wide. It is the
//! oracle for the backends.
//!
//! **Architecture invariant:** this crate depends on no other Tessera crate
//! and performs no I/O.

pub mod compare;
pub mod diag;
pub mod graph;
pub mod interp;
pub mod op;
pub mod plan;
pub mod tensor;
pub mod text;
pub mod types;
pub mod verify;

pub use diag::{Code, Diagnostic, Span};
pub use graph::{Kernel, Module, Node, Output, Param, Upstream, Value};
pub use op::{BinaryOp, CompareOp, Domain, Op, ReduceOp, Scalar, TypeError, UnaryOp};
pub use tensor::{Data, Tensor};
pub use types::{DType, Dim, DimEnv, Shape, TensorType};
