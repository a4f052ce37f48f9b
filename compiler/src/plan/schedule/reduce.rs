//! Scheduling reduce stages.

use tessera_ir::plan::Stage;
use tessera_sim::Machine;

/// Chooses the tiles, blocks and buffers of a reduce stage.
pub fn schedule(_stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    Err(format!(
        "reduce stages are not generated for {} yet",
        machine.name
    ))
}
