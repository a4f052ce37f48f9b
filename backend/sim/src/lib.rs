//! `tessera-sim`: the NPU that Tessera compiles for — machine descriptions, the
//! instruction set, the `.tbc` bytecode and a cycle-approximate simulator.
//!
//! **Architecture invariant:** this crate depends on no other Tessera crate
//! (as Cranelift's Pulley interpreter stands alone): it knows bytecode, not IR.
//! No input — TOML, assembly text, bytecode, tensors — can make it panic;
//! every failure is a value with a stable code (E07xx runtime faults, E08xx
//! assembler, E09xx bytecode loader, E10xx machine descriptions).
//!
//! Entry points:
//! - [`Machine`]: load a built-in or TOML description, print it as TOML;
//! - [`assemble`] / [`disassemble`]: text ↔ [`Program`];
//! - [`encode`] / [`decode`] / [`load`]: [`Program`] ↔ `.tbc` bytes;
//! - [`run()`]: simulate a program on named input tensors, returning outputs,
//!   a [`Report`] and optionally a Chrome trace, or a [`Fault`].
//!
//! A [`Program`] is a sequence of one or more [`Launch`]es (SPMD kernels with
//! their own `block_dim` and code) that run back to back on one GM image, so
//! the stages of an unfused kernel communicate through the workspace.
//!
//! Code map: `machine` (descriptions), `isa` (the one instruction list),
//! `asm`, `disasm`, `bytecode`, `program`, `exec/` (functional semantics per
//! unit), `timing/` (the event-driven cycle model, GM bandwidth, trace),
//! `race` (happens-before race detector), `fault`, `report`, `run` (the
//! driver tying them together).

pub mod asm;
pub mod bytecode;
pub mod disasm;
pub mod exec;
pub mod fault;
pub mod fnv;
pub mod isa;
pub mod machine;
pub mod program;
pub mod race;
pub mod report;
pub mod run;
pub mod syntax;
pub mod timing;

pub use asm::{AsmError, AsmOptions, assemble, assemble_with};
pub use bytecode::{LoadError, decode, encode, load};
pub use disasm::disassemble;
pub use fault::{Fault, FaultKind, Space};
pub use isa::{CoreKind, Dt, Insn, Pipe};
pub use machine::{Machine, MachineError, Organisation};
pub use program::{Launch, Program, Section, TensorDecl};
pub use report::{LaunchReport, Report};
pub use run::{RunError, RunOptions, RunOutput, Tensor, Warm, run};
