//! Fuzz target: any text as assembly for either built-in machine. The
//! assembler returns a program or diagnostics, never panics; an accepted
//! program disassembles, and its bytecode loads back.
#![no_main]

mod common;

use common::MACHINES;
use libfuzzer_sys::fuzz_target;
use tessera_sim::{assemble, bytecode, disassemble, encode};

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
