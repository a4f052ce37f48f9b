//! Host code through Cranelift: a verified, concrete kernel lowered to one
//! native function, compiled in-process (JIT) and run on the CPU.
//!
//! - [`lower`](self::lower): the kernel to a CLIF function, one loop nest per
//!   value (the host schedule: row-major, innermost axis last).
//! - `elem`: what one element is in registers, its loads, stores and
//!   conversions, and the elementwise ops on it.
//! - `jit`: the Cranelift JIT module, the math functions it links, and the
//!   one call into native code.
//!
//! **Memory.** Every tensor is packed row-major in its storage dtype: f16 and
//! bf16 as their 16-bit patterns, i8 as a byte, bool as one byte 0 or 1. The
//! function takes a table of parameter pointers, a table of result pointers
//! and a workspace for the values that are neither; a `reshape` is the bytes
//! of its operand.
//!
//! **Numerics** (`docs/language-notes.md`, "Numeric semantics"). Floats are
//! f32 in registers; a value of dtype f16 or bf16 is rounded to it after every
//! op, so `+ - * /`, `sqrt`, `maximum`, `minimum`, comparisons, `select` and
//! casts give the reference's bits (f32 carries more than twice the bits of
//! f16 and bf16, so rounding twice is rounding once). Transcendentals compute
//! as the reference does, in f64 through libm, and round to the dtype.
//! Reductions and matmuls accumulate floats in f64 and integers in wrapping
//! i32, as the reference does.
//!
//! **Status.** The function returns 0, or `1 + node` when the integer
//! division of that node met a zero divisor (the reference's error).

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
