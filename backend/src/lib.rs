//! Tessera's code generators: they translate a [`tessera_ir::plan::Plan`]
//! into target code.
//!
//! - [`npu`]: NPU assembly and bytecode for `tessera-sim`.
//!
//! **Architecture invariant:** a backend makes no scheduling decisions; it
//! either translates a verified plan or returns an error.

pub mod host;
pub mod npu;
