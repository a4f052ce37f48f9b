//! NPU code generation: a [`Plan`] to assembly text for `tessera-sim`.
//!
//! Each stage becomes one launch. A stage template (`elementwise`,
//! `reduce`, `transpose`, `matmul`) builds a structured program of
//! micro-ops over the stage's planned on-chip buffers; the sync pass derives
//! its events and barriers; the result is printed as assembly and assembled
//! by the simulator's assembler (which validates it). Templates translate the
//! plan — tile sizes, buffers, block counts are the planner's — and compute
//! only what follows mechanically from it (addresses, loop bounds, tails).

pub mod elementwise;
pub mod matmul;
pub mod prog;
pub mod reduce;
pub mod sync;
pub mod transpose;
pub mod vector;

use prog::{Item, Labels, Regs};
use std::fmt::Write;
use tessera_ir::DType;
use tessera_ir::plan::{BufKind, LocalBuf, MemSpace, Plan, Source, Stage, StageKind, Unit, View};
use tessera_sim::{Machine, Organisation};

/// Why code generation failed (always a compiler bug: plans are checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError(pub String);

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CodegenError {
    fn from(s: String) -> Self {
        CodegenError(s)
    }
}

/// What a stage template works with.
pub struct Ctx<'a> {
    /// The whole plan (buffers).
    pub plan: &'a Plan,
    /// The stage.
    pub stage: &'a Stage,
    /// The machine.
    pub machine: &'a Machine,
    /// Number of kernel parameters (`s.arg` indexes results after them).
    pub params: usize,
    /// Scalar registers.
    pub regs: Regs,
    /// Labels.
    pub labels: Labels,
}

/// A buffer copy's synchronisation slot: unique per (buffer, copy), as
/// buffers of a space do not overlap.
pub fn slot(l: &LocalBuf, copy: u32) -> u32 {
    ((l.space as u32) << 24) | (l.copy(copy) >> 5) as u32
}

impl Ctx<'_> {
    /// Emits code that puts a GM buffer's base address in a fresh register.
    pub fn gm_base(&mut self, items: &mut Vec<Item>, view: &View) -> Result<String, String> {
        let Source::Buffer(b) = view.source else {
            return Err("internal: a constant view has no GM address".to_string());
        };
        let buf = self
            .plan
            .buffers
            .get(b)
            .ok_or_else(|| "internal: view of an unknown buffer".to_string())?;
        let r = self.regs.get()?;
        match buf.kind {
            BufKind::Param(i) => items.push(Item::Scalar(format!("s.arg {r}, {i}"))),
            BufKind::Result(i) => {
                items.push(Item::Scalar(format!("s.arg {r}, {}", self.params + i)))
            }
            BufKind::Workspace { offset } => {
                items.push(Item::Scalar(format!("s.sys {r}, workspace")));
                if offset != 0 {
                    items.push(Item::Scalar(format!("s.add {r}, {r}, {offset}")));
                }
            }
        }
        Ok(r)
    }
}

/// The section a stage's code goes in.
fn section(machine: &Machine, unit: Unit) -> &'static str {
    match (machine.organisation, unit) {
        (Organisation::Coupled, _) => ".core",
        (Organisation::Split, Unit::Cube) => ".aic",
        (Organisation::Split, Unit::Vector) => ".aiv",
    }
}

/// The assembler's name of a memory space (for `local` listings).
pub fn space_name(s: MemSpace) -> &'static str {
    s.name()
}

fn tensor_text(name: &str, dtype: DType, shape: &[u64]) -> String {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    format!("{name} {}[{}]", dtype, dims.join(", "))
}

/// Generates the assembly of a plan.
pub fn assembly(plan: &Plan, machine: &Machine) -> Result<String, CodegenError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; {} compiled by Tessera for {}",
        plan.kernel, machine.name
    );
    let _ = writeln!(out, ".kernel {}", plan.kernel);
    let _ = writeln!(out, ".machine {}", machine.name);
    for b in plan.params() {
        let _ = writeln!(out, ".param {}", tensor_text(&b.name, b.dtype, &b.shape));
    }
    for b in plan.results() {
        let _ = writeln!(out, ".result {}", tensor_text(&b.name, b.dtype, &b.shape));
    }
    let _ = writeln!(out, ".workspace {}", plan.workspace);
    for (i, stage) in plan.stages.iter().enumerate() {
        let mut ctx = Ctx {
            plan,
            stage,
            machine,
            params: plan.params().count(),
            regs: Regs::default(),
            labels: Labels::default(),
        };
        let items = match &stage.kind {
            StageKind::Elementwise(e) => elementwise::generate(&mut ctx, e)?,
            StageKind::Reduce(r) => reduce::generate(&mut ctx, r)?,
            StageKind::Transpose(t) => transpose::generate(&mut ctx, t)?,
            StageKind::MatMul(m) => matmul::generate(&mut ctx, m)?,
        };
        let items = sync::insert(items, machine.sync.event_ids)?;
        let nodes: Vec<String> = stage.nodes.iter().map(|n| format!("%{n}")).collect();
        let _ = writeln!(out, "\n.launch ; stage {i}: {}", nodes.join(", "));
        let _ = writeln!(out, ".block_dim {}", stage.block_dim);
        let _ = writeln!(out, "{}", section(machine, stage.unit()));
        prog::print(&items, &mut out);
        let _ = writeln!(out, "    end");
    }
    prog::legalize_immediates(&out).map_err(CodegenError)
}

/// Generates and assembles a plan.
pub fn compile(
    plan: &Plan,
    machine: &Machine,
) -> Result<(String, tessera_sim::Program), CodegenError> {
    let text = assembly(plan, machine)?;
    let program = tessera_sim::assemble(&text, machine).map_err(|errs| {
        let first: Vec<String> = errs
            .iter()
            .take(5)
            .map(|e| format!("line {}: {} ({})", e.line, e.message, e.code))
            .collect();
        CodegenError(format!(
            "internal: generated assembly does not assemble: {}",
            first.join("; ")
        ))
    })?;
    Ok((text, program))
}
