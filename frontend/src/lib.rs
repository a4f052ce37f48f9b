//! Tessera's frontend: `.tsr` source to typed IR.
//!
//! [`parse::parse`] turns source into an [`ast::File`] (it never fails; it
//! returns the diagnostics it recovered from), and [`lower`] checks kernels
//! and lowers them to [`tessera_ir::Kernel`]s: names, kernel-call inlining,
//! symbolic-dim unification, broadcasting, the dtype rules and every builtin.
//!
//! **Architecture invariant:** the frontend depends on `tessera-ir` only,
//! never panics on any input, and reports every independent error of a file
//! in one run.

pub mod ast;
pub mod lexer;
pub mod lower;
pub mod parse;
