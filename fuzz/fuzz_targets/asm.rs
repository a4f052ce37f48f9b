//! Fuzz target: any text as assembly for either built-in machine. The
//! assembler returns a program or diagnostics, never panics; an accepted
//! program disassembles, and its bytecode loads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tessera_sim::{Machine, assemble, bytecode, disassemble, encode};

/// Both built-in machines, parsed once (not per input).
static MACHINES: LazyLock<Vec<Machine>> = LazyLock::new(|| {
    ["910b-like", "910-like"]
        .iter()
        .filter_map(|n| Machine::load(n).ok())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    for machine in MACHINES.iter() {
        if let Ok(p) = assemble(src, machine) {
            let _ = disassemble(&p);
            let _ = bytecode::load(&encode(&p), machine);
        }
    }
});
