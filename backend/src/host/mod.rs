//! Host code through Cranelift: a verified, concrete kernel compiled to
//! native functions, one per stage, run in-process (JIT) or written to an
//! object file with a C entry point (`docs/host.md`).
//!
//! - `schedule`: the host schedule (which values are stored, viewed or kept
//!   in registers; the map, row, reduce, pack/GEMM and place stages).
//! - `lower`: a stage to a CLIF function over a range of its outermost axis
//!   (`simd`: four-lane maps and reductions; `gemm`: the blocked matmul).
//! - `elem`: what one element is in registers, its loads, stores and
//!   conversions, and the elementwise ops on it.
//! - `module`: the ISA and the stage functions the JIT and objects share;
//!   `jit`: the JIT module and the parallel runner; `object`: the object
//!   file, its entry point and C header.
//!
//! **Memory.** Every tensor is packed row-major in its storage dtype: f16 and
//! bf16 as their 16-bit patterns, i8 as a byte, bool as one byte 0 or 1. A
//! stage function takes a table of parameter pointers, a table of result
//! pointers, a workspace for the values that are neither, and the range of
//! its outermost axis to run; a `reshape` is the bytes of its operand.
//!
//! **Numerics** (`docs/language-notes.md`, "Numeric semantics"). Floats are
//! f32 in registers; a value of dtype f16 or bf16 is rounded to it after every
//! op, so `+ - * /`, `sqrt`, `maximum`, `minimum`, comparisons, `select` and
//! casts give the reference's bits (f32 carries more than twice the bits of
//! f16 and bf16, so rounding twice is rounding once). Transcendentals in
//! scalar code compute as the reference does, in f64 through libm; in
//! four-lane maps they are f32 polynomials within the spec's tolerance.
//! Reductions accumulate floats in f64 (four f32 lanes first when
//! vectorised), matmuls in f32, integers in wrapping i32.
//!
//! **Status.** A stage returns 0, or `1 + node` when the integer division of
//! that node met a zero divisor (the reference's error).

mod elem;
mod jit;
mod lower;
mod module;
mod object;
mod schedule;

pub use jit::HostKernel;
pub use object::{HostObject, STATUS, compile_object};

use std::fmt;

/// The most workspace (intermediate values, packed matmul operands) a JIT
/// run allocates: 4 GiB.
pub const MAX_WORK_BYTES: u64 = 1 << 32;

/// Why a kernel could not be compiled or run on the host.
#[derive(Clone, Debug, PartialEq)]
pub enum HostError {
    /// The kernel is not one the host backend takes (symbolic dims, or an
    /// op on a dtype the IR verifier should have refused).
    Unsupported(String),
    /// Cranelift refused the function (a backend bug).
    Codegen(String),
    /// The inputs do not match the parameters.
    Inputs(String),
    /// The kernel needs more workspace than a run may take
    /// ([`MAX_WORK_BYTES`]).
    TooLarge {
        /// The bytes it needs.
        bytes: u64,
    },
    /// Integer division by zero at a node.
    DivByZero {
        /// The node.
        node: usize,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Unsupported(m) => write!(f, "the host backend cannot compile this: {m}"),
            HostError::Codegen(m) => write!(f, "internal: Cranelift refused the host code: {m}"),
            HostError::Inputs(m) => f.write_str(m),
            HostError::TooLarge { bytes } => write!(
                f,
                "the host code needs {bytes} bytes of workspace for its intermediate values; a run takes at most {MAX_WORK_BYTES}"
            ),
            HostError::DivByZero { node } => {
                write!(f, "integer division by zero (node %{node})")
            }
        }
    }
}

#[cfg(test)]
mod tests;
