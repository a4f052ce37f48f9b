//! Tessera's code generators.
//!
//! - [`npu`]: a [`tessera_ir::plan::Plan`] to NPU assembly and bytecode for
//!   `tessera-sim`.
//! - [`host`]: the optimised IR to native code through Cranelift (JIT, or an
//!   object file and its C header).
//! - [`series`]: constants both share for composites near 0.
//!
//! **Architecture invariant:** the NPU backend makes no scheduling decisions;
//! it either translates a verified plan or returns an error. The host backend
//! derives its own schedule from the optimised IR alone (the NPU plan's
//! buffers and cores do not apply to a CPU), and its results never depend on
//! the thread count.

pub mod host;
pub mod npu;
pub mod series;
