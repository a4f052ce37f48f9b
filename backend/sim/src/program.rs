//! A loaded program: the kernel signature, launch shape and code sections.
//!
//! A [`Program`] is what the assembler produces, what the bytecode encoder
//! writes and the loader reads back, and what the simulator runs. Invariant
//! (established by [`Program::validate`], which both the assembler and the
//! loader call): every instruction passes [`crate::isa::Insn::check`] for its
//! section's core kind, every branch targets an instruction of its own
//! section, and every section ends in `end` or `s.jmp`, so control never
//! leaves a section.

use crate::isa::{CoreKind, Dt, Insn};
use crate::machine::{Machine, Organisation};

/// A kernel parameter or result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorDecl {
    /// Name (output files are named after results).
    pub name: String,
    /// Element type (`b8` is `bool`).
    pub dtype: Dt,
    /// Static shape; empty for a scalar.
    pub shape: Vec<u64>,
}

impl TensorDecl {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.elements().saturating_mul(self.dtype.size())
    }
    /// `f32[64, 64]`.
    pub fn type_text(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(u64::to_string).collect();
        format!("{}[{}]", self.dtype.tensor_name(), dims.join(", "))
    }
}

/// The code of one core kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Section {
    /// Which cores run it.
    pub kind: CoreKind,
    /// The instructions; branch targets index this list.
    pub insns: Vec<Insn>,
}

/// A whole kernel, ready to run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Program {
    /// Kernel name.
    pub kernel: String,
    /// Name of the machine it was built for.
    pub machine: String,
    /// That machine's [`Machine::fingerprint`].
    pub fingerprint: u64,
    /// Parameters, in argument order.
    pub params: Vec<TensorDecl>,
    /// Results, after the parameters in argument order.
    pub results: Vec<TensorDecl>,
    /// Number of logical blocks.
    pub block_dim: u32,
    /// Bytes of zero-initialised GM scratch (`s.sys rd, workspace`).
    pub workspace: u64,
    /// Code sections: `aic` and/or `aiv` on split machines, `core` on coupled ones.
    pub sections: Vec<Section>,
}

/// Maximum `block_dim`.
pub const MAX_BLOCK_DIM: u32 = 65535;
/// Maximum bytes of all tensors plus the workspace.
pub const MAX_GM_BYTES: u64 = 1 << 40;

impl Program {
    /// Parameters then results, as `s.arg` indexes them.
    pub fn args(&self) -> impl Iterator<Item = &TensorDecl> {
        self.params.iter().chain(self.results.iter())
    }

    /// The section for a core kind.
    pub fn section(&self, kind: CoreKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// Checks the invariants listed in the module doc against `machine`.
    /// Errors carry the section index and instruction index when they concern one.
    pub fn validate(&self, machine: &Machine) -> Result<(), (Option<(usize, usize)>, String)> {
        if self.block_dim == 0 || self.block_dim > MAX_BLOCK_DIM {
            return Err((
                None,
                format!(
                    "block_dim must be in 1..={MAX_BLOCK_DIM}, got {}",
                    self.block_dim
                ),
            ));
        }
        if self.args().count() > 255 {
            return Err((None, "at most 255 parameters and results".into()));
        }
        let mut total: u64 = self.workspace;
        for t in self.args() {
            if t.shape.len() > 16 {
                return Err((None, format!("tensor `{}` has more than 16 dims", t.name)));
            }
            if t.shape.contains(&0) {
                return Err((None, format!("tensor `{}` has a zero dim", t.name)));
            }
            let mut n: u64 = 1;
            for &d in &t.shape {
                n = n
                    .checked_mul(d)
                    .filter(|&n| n <= MAX_GM_BYTES)
                    .ok_or_else(|| (None, format!("tensor `{}` is too large", t.name)))?;
            }
            total = total
                .saturating_add(n.saturating_mul(t.dtype.size()))
                .saturating_add(4096);
        }
        if total > MAX_GM_BYTES {
            return Err((None, "tensors and workspace exceed 1 TiB".into()));
        }
        if self.sections.is_empty() {
            return Err((None, "the program has no code section".into()));
        }
        for (si, s) in self.sections.iter().enumerate() {
            if !s.kind.on(machine.organisation) {
                let org = match machine.organisation {
                    Organisation::Split => "split (sections .aic and .aiv)",
                    Organisation::Coupled => "coupled (section .core)",
                };
                return Err((
                    None,
                    format!(
                        "section .{} does not exist on `{}`, which is {org}",
                        s.kind.name(),
                        machine.name
                    ),
                ));
            }
            if self.sections[..si].iter().any(|o| o.kind == s.kind) {
                return Err((None, format!("section .{} appears twice", s.kind.name())));
            }
            let n = s.insns.len();
            if n == 0 {
                return Err((None, format!("section .{} is empty", s.kind.name())));
            }
            if n > (1 << 24) {
                return Err((
                    None,
                    format!("section .{} has more than 2^24 instructions", s.kind.name()),
                ));
            }
            for (i, insn) in s.insns.iter().enumerate() {
                insn.check(machine, s.kind)
                    .map_err(|e| (Some((si, i)), e))?;
                if let Some(t) = insn.target()
                    && t as usize >= n
                {
                    return Err((
                        Some((si, i)),
                        format!("branch target {t} is outside the section (0..{n})"),
                    ));
                }
            }
            if !matches!(s.insns[n - 1], Insn::End {} | Insn::SJmp { .. }) {
                return Err((
                    Some((si, n - 1)),
                    format!("section .{} must end with `end` or `s.jmp`", s.kind.name()),
                ));
            }
        }
        Ok(())
    }
}
