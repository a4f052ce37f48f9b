//! A loaded program: the kernel signature, the workspace and a sequence of
//! launches, each with its own launch shape and code sections.
//!
//! A [`Program`] is what the assembler produces, what the bytecode encoder
//! writes and the loader reads back, and what the simulator runs. Its
//! [`Launch`]es run back to back, like a stream of kernels, on one GM image:
//! the parameters, the results and the zero-initialised workspace persist from
//! one launch to the next, which is how the stages of an unfused kernel
//! communicate. Invariant (established by [`Program::validate`], which both
//! the assembler and the loader call): there are 1..=[`MAX_LAUNCHES`]
//! launches, each with at least one section; every instruction passes
//! [`crate::isa::Insn::check`] for its section's core kind, every branch
//! targets an instruction of its own section, and every section ends in `end`
//! or `s.jmp`, so control never leaves a section.

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

/// One SPMD launch: `block_dim` logical blocks running its sections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Launch {
    /// Number of logical blocks.
    pub block_dim: u32,
    /// Code sections: `aic` and/or `aiv` on split machines, `core` on coupled ones.
    pub sections: Vec<Section>,
}

impl Launch {
    /// The section for a core kind.
    pub fn section(&self, kind: CoreKind) -> Option<&Section> {
        self.sections.iter().find(|s| s.kind == kind)
    }
}

/// An instruction: launch, section and instruction index.
pub type InsnAt = (usize, usize, usize);

/// Where a [`Program::validate`] error is, so that the loader can give its
/// byte offset and the assembler its directive.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// The counts of parameters and results.
    Args,
    /// Parameter or result `i`, in [`Program::args`] order.
    Arg(usize),
    /// The workspace size.
    Workspace,
    /// The launch count.
    Launches,
    /// Launch `l` (its block count).
    Launch(usize),
    /// Section `s` of launch `l`.
    Section(usize, usize),
    /// An instruction.
    Insn(InsnAt),
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
    /// Bytes of zero-initialised GM scratch (`s.sys rd, workspace`), shared by
    /// every launch (zeroed once, before the first).
    pub workspace: u64,
    /// The launches, in execution order (at least one).
    pub launches: Vec<Launch>,
}

/// Maximum `block_dim`.
pub const MAX_BLOCK_DIM: u32 = 65535;
/// Maximum number of launches in a program.
pub const MAX_LAUNCHES: usize = 65535;
/// Maximum bytes of all tensors plus the workspace ([`gm_footprint`]).
pub const MAX_GM_BYTES: u64 = 1 << 40;
/// Maximum number of parameters and results (`s.arg` indexes them).
pub const MAX_ARGS: usize = 255;

/// The GM a program's tensors (their sizes in bytes) and workspace take,
/// as validation counts it: each tensor is charged 4 KiB more than its
/// bytes for alignment. Exact, so a caller can compare it with
/// [`MAX_GM_BYTES`] whatever the sizes.
pub fn gm_footprint(tensor_bytes: impl IntoIterator<Item = u128>, workspace: u64) -> u128 {
    tensor_bytes
        .into_iter()
        .map(|b| b + 4096)
        .fold(u128::from(workspace), |total, b| total.saturating_add(b))
}

impl Program {
    /// Parameters then results, as `s.arg` indexes them.
    pub fn args(&self) -> impl Iterator<Item = &TensorDecl> {
        self.params.iter().chain(self.results.iter())
    }

    /// The section for a core kind in launch `launch`.
    pub fn section(&self, launch: usize, kind: CoreKind) -> Option<&Section> {
        self.launches.get(launch).and_then(|l| l.section(kind))
    }

    /// `launch 2: ` when the program has several launches, else nothing (so
    /// single-launch messages read as they always did).
    pub fn launch_prefix(&self, launch: usize) -> String {
        if self.launches.len() > 1 {
            format!("launch {launch}: ")
        } else {
            String::new()
        }
    }

    /// Checks the invariants listed in the module doc against `machine`.
    /// Errors carry the launch, section and instruction index when they
    /// concern an instruction; messages about one launch of a multi-launch
    /// program start with `launch N: `.
    pub fn validate(&self, machine: &Machine) -> Result<(), (At, String)> {
        if self.args().count() > MAX_ARGS {
            return Err((
                At::Args,
                format!("at most {MAX_ARGS} parameters and results"),
            ));
        }
        for (i, t) in self.args().enumerate() {
            if t.shape.len() > 16 {
                return Err((
                    At::Arg(i),
                    format!("tensor `{}` has more than 16 dims", t.name),
                ));
            }
            if t.shape.contains(&0) {
                return Err((At::Arg(i), format!("tensor `{}` has a zero dim", t.name)));
            }
            let mut n: u64 = 1;
            for &d in &t.shape {
                n = n
                    .checked_mul(d)
                    .filter(|&n| n <= MAX_GM_BYTES)
                    .ok_or_else(|| (At::Arg(i), format!("tensor `{}` is too large", t.name)))?;
            }
        }
        let bytes = self
            .args()
            .map(|t| u128::from(t.elements()) * u128::from(t.dtype.size()));
        if gm_footprint(bytes, self.workspace) > u128::from(MAX_GM_BYTES) {
            return Err((At::Workspace, "tensors and workspace exceed 1 TiB".into()));
        }
        if self.launches.is_empty() {
            return Err((At::Launches, "the program has no launch".into()));
        }
        if self.launches.len() > MAX_LAUNCHES {
            return Err((
                At::Launches,
                format!(
                    "the program has {} launches; at most {MAX_LAUNCHES} are allowed",
                    self.launches.len()
                ),
            ));
        }
        for li in 0..self.launches.len() {
            self.validate_launch(machine, li)?;
        }
        Ok(())
    }

    fn validate_launch(&self, machine: &Machine, li: usize) -> Result<(), (At, String)> {
        let launch = &self.launches[li];
        let pre = self.launch_prefix(li);
        if launch.block_dim == 0 || launch.block_dim > MAX_BLOCK_DIM {
            return Err((
                At::Launch(li),
                format!(
                    "{pre}block_dim must be in 1..={MAX_BLOCK_DIM}, got {}",
                    launch.block_dim
                ),
            ));
        }
        if launch.sections.is_empty() {
            let what = if self.launches.len() > 1 {
                "the launch"
            } else {
                "the program"
            };
            return Err((At::Launch(li), format!("{pre}{what} has no code section")));
        }
        for (si, s) in launch.sections.iter().enumerate() {
            if !s.kind.on(machine.organisation) {
                let org = match machine.organisation {
                    Organisation::Split => "split (sections .aic and .aiv)",
                    Organisation::Coupled => "coupled (section .core)",
                };
                return Err((
                    At::Section(li, si),
                    format!(
                        "{pre}section .{} does not exist on `{}`, which is {org}",
                        s.kind.name(),
                        machine.name
                    ),
                ));
            }
            if launch.sections[..si].iter().any(|o| o.kind == s.kind) {
                return Err((
                    At::Section(li, si),
                    format!("{pre}section .{} appears twice", s.kind.name()),
                ));
            }
            let n = s.insns.len();
            if n == 0 {
                return Err((
                    At::Section(li, si),
                    format!("{pre}section .{} is empty", s.kind.name()),
                ));
            }
            if n > (1 << 24) {
                return Err((
                    At::Section(li, si),
                    format!(
                        "{pre}section .{} has more than 2^24 instructions",
                        s.kind.name()
                    ),
                ));
            }
            for (i, insn) in s.insns.iter().enumerate() {
                insn.check(machine, s.kind)
                    .map_err(|e| (At::Insn((li, si, i)), e))?;
                if let Some(t) = insn.target()
                    && t as usize >= n
                {
                    return Err((
                        At::Insn((li, si, i)),
                        format!("branch target {t} is outside the section (0..{n})"),
                    ));
                }
            }
            if !s.insns[n - 1].ends_section() {
                return Err((
                    At::Insn((li, si, n - 1)),
                    format!("section .{} must end with `end` or `s.jmp`", s.kind.name()),
                ));
            }
        }
        Ok(())
    }
}
