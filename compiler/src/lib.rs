//! The Tessera compiler: the pipeline driver and the `tessera` command.
//!
//! The binary is a thin shell over [`cli::run`], so the whole command line
//! can be driven in-process by tests. [`driver`] runs the stages in order;
//! [`inputs`] and [`npy`] handle the tensors a user gives or receives.
//!
//! **Architecture invariant:** this crate owns decisions about *what* to
//! run; it contains no language semantics (frontend), no IR semantics (ir)
//! and no machine model (backend/sim).

pub mod arith;
pub mod bench;
pub mod cache;
pub mod cli;
pub mod cost;
pub mod driver;
pub mod embed;
pub mod files;
pub mod host_bench;
pub mod inputs;
pub mod npy;
pub mod opt;
pub mod plan;
pub mod simulate;
pub mod suite;
pub mod tune;
