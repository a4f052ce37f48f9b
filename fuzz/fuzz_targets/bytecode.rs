//! Fuzz target: any bytes as a `.tbc` file. The loader returns a program or
//! an error, never panics. The bytes are tried as given (the checksum rejects
//! almost all of them) and resealed with a correct checksum, so the fuzzer
//! reaches the header, signature and instruction decoding behind it (for both
//! built-in machines); a file the loader accepts is also disassembled and
//! re-encoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tessera_sim::{Machine, bytecode, disassemble, encode};

/// Both built-in machines, parsed once (not per input).
static MACHINES: LazyLock<Vec<Machine>> = LazyLock::new(|| {
    ["910b-like", "910-like"]
        .iter()
        .filter_map(|n| Machine::load(n).ok())
        .collect()
});

fuzz_target!(|data: &[u8]| {
    if let Some(m) = MACHINES.first() {
        let _ = bytecode::load(data, m);
    }
    if data.len() >= 8 {
        let mut b = data.to_vec();
        let n = b.len() - 8;
        let sum = tessera_sim::fnv::fnv1a(&b[..n]);
        b[n..].copy_from_slice(&sum.to_le_bytes());
        for machine in MACHINES.iter() {
            if let Ok(p) = bytecode::load(&b, machine) {
                let _ = disassemble(&p);
                let _ = encode(&p);
            }
        }
    }
});
