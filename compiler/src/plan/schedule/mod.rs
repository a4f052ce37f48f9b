//! Scheduling: tile sizes, block counts and on-chip buffers of every stage,
//! from the machine description, with an analytical cost estimate.
//!
//! The model (machine.md): a DMA costs `fixed + bytes / rate` on its pipe; a
//! vector instruction `head + repeats × per_repeat`; `mmad` `head + fractal
//! triples × cycles`; all cores share the chip GM bandwidth; double-buffered
//! tiles overlap their pipes, so a tile costs about its slowest pipe. Tiles
//! are as large as the on-chip buffers allow (fewer fixed DMA costs), but
//! not so large that cores are left idle.

mod elementwise;
mod matmul;
mod reduce;
mod transpose;

use tessera_ir::plan::{LocalBuf, MemSpace, Plan, Stage, StageKind};
use tessera_ir::{Code, Diagnostic, Kernel};
use tessera_sim::Machine;

/// Schedules every stage of a plan in place.
pub fn schedule(
    plan: &mut Plan,
    kernel: &Kernel,
    machine: &Machine,
) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    for stage in &mut plan.stages {
        let result = match &stage.kind {
            StageKind::Elementwise { .. } => elementwise::schedule(stage, machine),
            StageKind::Reduce { .. } => reduce::schedule(stage, machine),
            StageKind::Transpose { .. } => transpose::schedule(stage, machine),
            StageKind::MatMul { .. } => matmul::schedule(stage, machine),
        };
        if let Err(why) = result {
            diags.push(capacity_diagnostic(stage, kernel, machine, &why));
        }
    }
    if diags.is_empty() { Ok(()) } else { Err(diags) }
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
    let mut table = String::from("buffer      space   bytes × copies");
    for l in &stage.local {
        table.push_str(&format!(
            "\n{:<11} {:<7} {} × {}",
            l.name,
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
        let need: u64 = stage
            .local
            .iter()
            .filter(|l| l.space == space)
            .map(|l| l.bytes * u64::from(l.copies))
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

/// Bytes used in a space by a layout.
pub fn used(local: &[LocalBuf], space: MemSpace) -> u64 {
    local
        .iter()
        .filter(|l| l.space == space)
        .map(|l| l.offset + l.bytes * u64::from(l.copies))
        .max()
        .unwrap_or(0)
}

/// Whether a layout fits the machine.
pub fn fits(local: &[LocalBuf], machine: &Machine) -> bool {
    [
        MemSpace::Ub,
        MemSpace::L1,
        MemSpace::L0a,
        MemSpace::L0b,
        MemSpace::L0c,
    ]
    .into_iter()
    .all(|s| used(local, s) <= capacity(machine, s))
}
