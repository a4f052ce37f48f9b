//! Fuzz target: small kernels through the whole pipeline. Any text is
//! parsed and checked; each kernel that checks is lowered with its `//@
//! dims:` (or 3, 5, 2 for M, N, K), planned and compiled for both built-in
//! machines, and run on the simulator (race detector on; the spin and
//! cycle limits stop a program that loops) against the reference
//! interpreter on seeded inputs.
//!
//! Input diagnostics are fine; an internal error, a panic, a fault or a
//! result the reference disagrees with is a crash. Kernels whose tensors
//! pass 4 096 elements are skipped, to keep executions fast.
#![no_main]

mod common;

use common::MACHINES;
use libfuzzer_sys::fuzz_target;
use tessera_compiler::driver::{self, Failure, Source};

/// Largest tensor (elements) a fuzzed kernel may have.
const MAX_ELEMENTS: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(directives) = tessera_testsuite::directives(text) else {
        return;
    };
    let src = Source {
        name: "fuzz.tsr".into(),
        text: text.into(),
    };
    let Ok(file) = driver::parse_and_check(&src) else {
        return;
    };
    for def in &file.kernels {
        let mut env = directives.dims.clone();
        for (name, value) in [("M", 3u64), ("N", 5), ("K", 2)] {
            env.entry(name.to_string()).or_insert(value);
        }
        let kernel = match driver::lower(&file, &def.name.name, &env, &src) {
            Ok(k) => k,
            Err(Failure::Internal(m)) => panic!("internal error lowering: {m}"),
            Err(_) => continue,
        };
        let types = kernel.params.iter().map(|p| &p.ty);
        let small = types.chain(kernel.nodes.iter().map(|n| &n.ty)).all(|ty| {
            ty.shape
                .dims()
                .iter()
                .try_fold(1u64, |n, d| n.checked_mul(d.fixed()?))
                .is_some_and(|n| n <= MAX_ELEMENTS)
        });
        if !small {
            continue;
        }
        let inputs = tessera_testsuite::random_inputs(&kernel, 7);
        for machine in MACHINES.iter() {
            let code = match driver::compile_npu(&kernel, machine, &src, tessera_compiler::opt::Level::O2) {
                Ok(c) => c,
                Err(Failure::Internal(m)) => panic!("internal error on {}: {m}", machine.name),
                Err(_) => continue,
            };
            if let Err(e) = tessera_testsuite::simulate_against_reference(
                &kernel,
                machine,
                &code.program,
                &inputs,
            ) {
                if !e.starts_with("reference:") {
                    panic!("{e}");
                }
            }
        }
    }
});
