//! Fuzz target: any bytes as a `.tbc` file. The loader returns a program or
//! an error, never panics. The bytes are tried as given (the checksum rejects
//! almost all of them) and resealed with a correct checksum, so the fuzzer
//! reaches the header, signature and instruction decoding behind it (for both
//! built-in machines); a file the loader accepts is also disassembled,
//! re-encoded and run on the simulator (zero inputs, tight step and work
//! limits, tensors of at most 64 KiB), which must fault or finish, never
//! panic or hang.
#![no_main]

mod common;

use common::MACHINES;
use libfuzzer_sys::fuzz_target;
use tessera_sim::{Machine, Program, RunOptions, Tensor, bytecode, disassemble, encode};

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
                simulate(&p, machine);
            }
        }
    }
});

/// Runs an accepted program on zeros, if its tensors are small.
fn simulate(p: &Program, machine: &Machine) {
    if p.args().any(|t| t.bytes() > 1 << 16) || p.workspace > 1 << 20 {
        return;
    }
    let inputs: Vec<(String, Tensor)> = p
        .params
        .iter()
        .map(|t| {
            let data = vec![0u8; t.bytes() as usize];
            (
                t.name.clone(),
                Tensor {
                    dtype: t.dtype,
                    shape: t.shape.clone(),
                    data,
                },
            )
        })
        .collect();
    let opts = RunOptions {
        step_limit: Some(1 << 16),
        work_limit: Some(1 << 22),
        cycle_limit: 1 << 30,
        ..RunOptions::default()
    };
    let _ = tessera_sim::run(machine, p, &inputs, &opts);
}
