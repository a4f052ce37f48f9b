//! What the fuzz targets share.

use std::sync::LazyLock;
use tessera_sim::Machine;

/// Both built-in machines, parsed once (not per input).
pub static MACHINES: LazyLock<Vec<Machine>> = LazyLock::new(|| {
    ["910b-like", "910-like"]
        .iter()
        .filter_map(|n| Machine::load(n).ok())
        .collect()
});
