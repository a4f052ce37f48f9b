//! NPU code generation: a [`Plan`] to a `tessera_sim::Program`.
//!
//! Each stage becomes one launch (a joined vector stage, `join`, runs in
//! its matmul's). A stage template (`elementwise`,
//! `reduce`, `transpose`, `matmul`) builds a structured program of typed
//! instructions ([`inst`], generated from the simulator's instruction list)
//! with their on-chip accesses, over the stage's planned buffers; the sync
//! pass derives its events and barriers; [`prog::lower`] lays it out as the
//! launch's code (branches resolved, wide immediates legalised), and the
//! program is validated as the bytecode loader would. Assembly text is an
//! output only (`tessera_sim::disassemble`). Templates translate the plan —
//! tile sizes, buffers, block counts are the planner's — and compute only
//! what follows mechanically from it (addresses, loop bounds, tails).

pub mod elementwise;
pub mod inst;
mod interleave;
mod join;
pub mod matmul;
pub mod prog;
pub mod reduce;
mod rows;
pub mod sync;
mod tiles;
pub mod transpose;
pub mod vector;

pub use vector::{dt, dtype};

use inst::InstBuilder;
use prog::{Build, Item, Regs};
use tessera_ir::plan::{BufKind, Plan, Source, Stage, StageKind, Unit, View};
use tessera_sim::isa::{AluOp, CoreKind, Reg, SysReg};
use tessera_sim::{Launch, Machine, Organisation, Program, Section, TensorDecl};

/// Why code generation failed (always a compiler bug: plans are checked),
/// and the stage whose template failed, when one did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodegenError(pub String, pub Option<usize>);

impl std::fmt::Display for CodegenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CodegenError {
    fn from(s: String) -> Self {
        CodegenError(s, None)
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
    /// A vector stage joined to a matmul (run on the vector cores of its
    /// mix launch): its phases. [`Ctx::block`] then numbers the vector
    /// cores.
    pub phases: Option<join::Phases>,
}

impl Ctx<'_> {
    /// Emits code that puts a GM buffer's base address in a fresh register.
    pub fn gm_base(&mut self, items: &mut Vec<Item>, view: &View) -> Result<Reg, String> {
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
            BufKind::Param(i) => items.ins().s_arg(r, i as u64),
            BufKind::Result(i) => items.ins().s_arg(r, (self.params + i) as u64),
            BufKind::Workspace { offset } => {
                items.ins().s_sys(r, SysReg::Workspace);
                if offset != 0 {
                    items.ins().s_alu(AluOp::Add, r, r, offset);
                }
            }
        }
        Ok(r)
    }

    /// Emits code that puts the GM address of a view's first element in a
    /// fresh register.
    pub fn gm_view(&mut self, items: &mut Vec<Item>, view: &View) -> Result<Reg, String> {
        let r = self.gm_base(items, view)?;
        let off = view.offset * view.dtype.size_bytes() as u64;
        if off != 0 {
            items.ins().s_alu(AluOp::Add, r, r, off);
        }
        Ok(r)
    }

    /// Emits `s.sys` reads of this block's index and the block count.
    pub fn block(&mut self, items: &mut Vec<Item>) -> Result<(Reg, Reg), String> {
        let (bi, bd) = (self.regs.get()?, self.regs.get()?);
        items.ins().s_sys(bi, SysReg::BlockIdx);
        items.ins().s_sys(bd, SysReg::BlockDim);
        if self.phases.is_some() {
            // A joined prologue runs on the launch's first `block_dim` (the
            // stage's) vector cores, numbered `sub · blocks + block`; the
            // others an index past every tile (`+ 2³²`).
            let sub = self.regs.get()?;
            items.ins().s_sys(sub, SysReg::SubBlockIdx);
            items.ins().s_alu(AluOp::Mul, sub, sub, bd);
            items.ins().s_alu(AluOp::Add, bi, bi, sub);
            let count = u64::from(self.stage.block_dim.max(1));
            items.ins().s_alu(AluOp::Div, sub, bi, count);
            items.ins().s_alu(AluOp::Shl, sub, sub, 32u64);
            items.ins().s_alu(AluOp::Add, bi, bi, sub);
            items.ins().s_li(bd, count);
        }
        Ok((bi, bd))
    }
}

/// The kind of core a stage's code runs on.
fn core_kind(machine: &Machine, unit: Unit) -> CoreKind {
    match (machine.organisation, unit) {
        (Organisation::Coupled, _) => CoreKind::Core,
        (Organisation::Split, Unit::Cube) => CoreKind::Aic,
        (Organisation::Split, Unit::Vector) => CoreKind::Aiv,
    }
}

/// Generates stage `i`'s code: its sections, each with the kind of core it
/// runs on (a mix launch: a split-K matmul finishes on the vector cores; a
/// matmul with a joined stage runs it on them).
fn stage_code(
    plan: &Plan,
    params: usize,
    i: usize,
    machine: &Machine,
) -> Result<Vec<(CoreKind, Vec<Item>)>, String> {
    let stage = &plan.stages[i];
    let ctx = |stage| Ctx {
        plan,
        stage,
        machine,
        params,
        regs: Regs::default(),
        phases: None,
    };
    let items = match &stage.kind {
        StageKind::Elementwise(e) => elementwise::generate(&mut ctx(stage), e)?,
        StageKind::Reduce(r) => reduce::generate(&mut ctx(stage), r)?,
        StageKind::Transpose(t) => transpose::generate(&mut ctx(stage), t)?,
        StageKind::MatMul(m) => matmul::generate(&mut ctx(stage), m)?,
        StageKind::Rows(r) => rows::generate(&mut ctx(stage), r)?,
    };
    let mut sections = vec![(core_kind(machine, stage.unit()), items)];
    if let StageKind::MatMul(mm) = &stage.kind
        && let Some(t) = matmul::split::is_split(mm)
    {
        sections.push((
            CoreKind::Aiv,
            matmul::split::generate(&mut ctx(stage), mm, t)?,
        ));
    }
    if let Some((j, phases)) = join::joined(plan, i, machine)? {
        let mut c = ctx(&plan.stages[j]);
        c.phases = Some(phases);
        let items = match &plan.stages[j].kind {
            StageKind::Rows(r) => rows::generate(&mut c, r)?,
            StageKind::Elementwise(e) => elementwise::generate(&mut c, e)?,
            StageKind::Reduce(_) | StageKind::Transpose(_) | StageKind::MatMul(_) => {
                return Err("internal: a joined stage that is not a row or elementwise one".into());
            }
        };
        sections.push((CoreKind::Aiv, items));
    }
    sections
        .into_iter()
        .map(|(kind, items)| {
            let items = sync::insert(interleave::interleave(items), machine.sync.event_ids)?;
            Ok((kind, items))
        })
        .collect()
}

/// The stages each launch of `plan`'s program runs, in order: one, or a
/// matmul and the vector stage joined to it.
pub fn launch_stages(plan: &Plan) -> Vec<Vec<usize>> {
    let mut launches = Vec::with_capacity(plan.stages.len());
    for i in 0..plan.stages.len() {
        if join::in_matmul_launch(plan, i) {
            continue;
        }
        let mut stages = vec![i];
        stages.extend(join::partner(plan, i));
        stages.sort_unstable();
        launches.push(stages);
    }
    launches
}

/// What the code generator needs of a machine beyond the description's own
/// validity (which the simulator checks): the event ids its double buffers
/// take, and the buffer alignments its address arithmetic keeps (that of
/// the built-in machines). Each unmet need as (field, requirement, value).
/// (Cross-core counters that stop early are no obstacle: the planner then
/// runs vector stages apart from the matmuls they would join,
/// `compiler/src/plan/schedule/join.rs`.)
pub fn unsupported(machine: &Machine) -> Vec<(&'static str, String, u64)> {
    /// Fewest event ids per pipe pair (the 910-like's).
    const MIN_EVENT_IDS: u32 = 4;
    let mem = &machine.memory;
    let mut out = Vec::new();
    for (field, have, most) in [
        ("memory.l1.align", mem.l1.align, 32),
        ("memory.l0a.align", mem.l0a.align, 512),
        ("memory.l0b.align", mem.l0b.align, 512),
        ("memory.l0c.align", mem.l0c.align, 64),
        ("memory.ub.align", mem.ub.align, 32),
    ] {
        if have > most {
            out.push((field, format!("at most {most}"), have));
        }
    }
    let s = &machine.sync;
    if s.event_ids < MIN_EVENT_IDS {
        out.push((
            "sync.event_ids",
            format!("at least {MIN_EVENT_IDS}"),
            u64::from(s.event_ids),
        ));
    }
    out
}

/// Compiles a plan into a validated program: one launch per stage (a
/// joined stage's in its matmul's).
pub fn compile(plan: &Plan, machine: &Machine) -> Result<Program, CodegenError> {
    let decl = |b: &tessera_ir::plan::Buffer| TensorDecl {
        name: b.name.clone(),
        dtype: vector::dt(b.dtype),
        shape: b.shape.clone(),
    };
    let mut launches = Vec::with_capacity(plan.stages.len());
    // The stage of each launch (a joined prologue has none of its own).
    let mut launch_stage = Vec::with_capacity(plan.stages.len());
    let params = plan.params().count();
    for (i, stage) in plan.stages.iter().enumerate() {
        if join::in_matmul_launch(plan, i) {
            continue;
        }
        let at = |e: String| CodegenError(format!("stage {i}: {e}"), Some(i));
        launch_stage.push(i);
        let sections = stage_code(plan, params, i, machine)
            .map_err(at)?
            .into_iter()
            .map(|(kind, items)| {
                Ok(Section {
                    kind,
                    insns: prog::lower(&items).map_err(at)?,
                })
            })
            .collect::<Result<_, CodegenError>>()?;
        launches.push(Launch {
            block_dim: stage.block_dim,
            sections,
        });
    }
    let program = Program {
        kernel: plan.kernel.clone(),
        machine: machine.name.clone(),
        fingerprint: machine.fingerprint(),
        params: plan.params().map(decl).collect(),
        results: plan.results().map(decl).collect(),
        workspace: plan.workspace,
        launches,
    };
    program.validate(machine).map_err(|(at, e)| {
        let at = match at {
            tessera_sim::program::At::Insn((l, _, i)) => {
                let stage = launch_stage.get(l).copied().unwrap_or(l);
                format!(" (stage {stage}, instruction {i})")
            }
            _ => String::new(),
        };
        CodegenError(
            format!("internal: the generated program is invalid{at}: {e}"),
            None,
        )
    })?;
    Ok(program)
}
