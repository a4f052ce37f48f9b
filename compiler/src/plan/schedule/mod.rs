//! Scheduling: tile sizes, block counts and on-chip buffers of every stage,
//! from the machine description, with an analytical cost estimate.
//!
//! The model (machine.md): a DMA costs `fixed + bytes / rate` on its pipe; a
//! vector instruction `head + repeats × per_repeat`; `mmad` `head + fractal
//! triples × cycles`; all cores share the chip GM bandwidth; double-buffered
//! tiles overlap their pipes, so a tile costs about its slowest pipe. Tiles
//! are as large as the on-chip buffers allow (fewer fixed DMA costs), but
//! not so large that cores are left idle. Each stage kind's function fills
//! the stage's typed schedule (tiles and on-chip layout, built with
//! [`Allocator`]) and returns its block count and estimate.

pub mod elementwise;
pub mod join;
pub mod matmul;
pub mod reduce;
pub mod rows;
pub mod transpose;

use tessera_ir::plan::{BufKind, LocalBuf, MemSpace, Plan, Stage, StageKind};

pub use matmul::{cube_cost, cube_layout, place_partials, vector_layout};
use tessera_ir::{Code, Diagnostic, Kernel};
use tessera_sim::Machine;

/// Schedules every stage of a plan in place. On failure, the diagnostics
/// and the IR nodes of every stage that could not be scheduled.
pub fn schedule(
    plan: &mut Plan,
    kernel: &Kernel,
    machine: &Machine,
) -> Result<(), (Vec<Diagnostic>, Vec<usize>)> {
    let mut diags = Vec::new();
    let mut unscheduled = Vec::new();
    // Workspace buffers are written by an earlier stage: L2 holds them.
    let workspace = workspace(plan);
    for stage in &mut plan.stages {
        let result = match &mut stage.kind {
            StageKind::Elementwise(e) => elementwise::schedule(e, machine),
            StageKind::Reduce(r) => reduce::schedule(r, machine),
            StageKind::Transpose(t) => transpose::schedule(t, machine),
            StageKind::MatMul(m) => matmul::schedule(m, machine),
            StageKind::Rows(r) => {
                let resident = rows::resident(r, &workspace);
                rows::schedule(r, machine, &resident)
            }
        };
        let result = result.map(|(block_dim, estimate)| {
            stage.block_dim = block_dim;
            stage.estimate = estimate;
        });
        if let Err(why) = result {
            diags.push(capacity_diagnostic(stage, kernel, machine, &why));
            unscheduled.extend_from_slice(&stage.nodes);
        }
    }
    if diags.is_empty() {
        finish(plan, machine);
        Ok(())
    } else {
        Err((diags, unscheduled))
    }
}

/// Per buffer of `plan`, whether it is workspace (an earlier stage wrote
/// it, so L2 holds it).
pub fn workspace(plan: &Plan) -> Vec<bool> {
    plan.buffers
        .iter()
        .map(|b| matches!(b.kind, BufKind::Workspace { .. }))
        .collect()
}

/// What follows from the stages' schedules as a whole, after scheduling
/// and again after tuning: the joined stages, the staggered tail strips,
/// then the workspace's layout (a ring takes its own rows only) and the
/// split-K partials' place.
/// Idempotent.
pub fn finish(plan: &mut Plan, machine: &Machine) {
    join::join_stages(plan, machine);
    matmul::stagger_strips(plan, machine);
    place_partials(plan);
}

/// A stage that cannot be mapped: points at the source of its first node
/// and lists its buffers against the capacities.
fn capacity_diagnostic(stage: &Stage, kernel: &Kernel, machine: &Machine, why: &str) -> Diagnostic {
    let mut d = Diagnostic::new(
        Code::E0504,
        format!(
            "this operation cannot be mapped onto {}: {why}",
            machine.name
        ),
    );
    if let Some(span) = stage
        .nodes
        .iter()
        .find_map(|&n| kernel.nodes.get(n).and_then(|n| n.span))
    {
        d = d.primary(span, "cannot be mapped");
    }
    let local = stage.local();
    let mut table = String::from("buffer      space   bytes × copies");
    for (name, l) in &local {
        table.push_str(&format!(
            "\n{:<11} {:<7} {} × {}",
            name,
            l.space.name(),
            l.bytes,
            l.copies
        ));
    }
    for space in [
        MemSpace::Ub,
        MemSpace::L1,
        MemSpace::L0a,
        MemSpace::L0b,
        MemSpace::L0c,
    ] {
        let need: u64 = local
            .iter()
            .filter(|(_, l)| l.space == space)
            .map(|(_, l)| l.bytes * u64::from(l.copies))
            .sum();
        if need > 0 {
            table.push_str(&format!(
                "\n{} needed {need} of {} bytes",
                space.name(),
                capacity(machine, space)
            ));
        }
    }
    d.note(table)
}

/// Bytes of an on-chip space.
pub fn capacity(machine: &Machine, space: MemSpace) -> u64 {
    let m = &machine.memory;
    match space {
        MemSpace::L1 => m.l1.bytes,
        MemSpace::L0a => m.l0a.bytes,
        MemSpace::L0b => m.l0b.bytes,
        MemSpace::L0c => m.l0c.bytes,
        MemSpace::Ub => m.ub.bytes,
    }
}

/// Bytes used in a space by a layout (its buffers with their names).
pub fn used(local: &[(String, LocalBuf)], space: MemSpace) -> u64 {
    local
        .iter()
        .filter(|(_, l)| l.space == space)
        .map(|(_, l)| l.end())
        .max()
        .unwrap_or(0)
}

/// Whether a layout fits the machine.
pub fn fits(local: &[(String, LocalBuf)], machine: &Machine) -> bool {
    MemSpace::ALL
        .into_iter()
        .all(|s| used(local, s) <= capacity(machine, s))
}

/// Allocates local buffers one after another in each space, each at its
/// space's alignment (the order of allocation is the order of listing).
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    at: [u64; 5],
}

impl Allocator {
    /// A buffer of `copies` copies of `bytes` (at least 32, rounded up to
    /// `align`) in `space`.
    pub fn add(&mut self, space: MemSpace, bytes: u64, copies: u32, align: u64) -> LocalBuf {
        let i = space as usize;
        let bytes = bytes.max(32).div_ceil(align) * align;
        let offset = self.at[i].div_ceil(align) * align;
        self.at[i] = offset + bytes * u64::from(copies);
        LocalBuf {
            space,
            offset,
            bytes,
            copies,
        }
    }
}
