//! Scheduling matmul stages.

use tessera_ir::plan::Stage;
use tessera_sim::Machine;

/// Chooses the tiles, blocks and buffers of a matmul stage.
pub fn schedule(_stage: &mut Stage, machine: &Machine) -> Result<(), String> {
    Err(format!(
        "matmul stages are not generated for {} yet",
        machine.name
    ))
}
