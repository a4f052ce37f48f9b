//! Fuzz target: any bytes as an `.npy` file; parsing and conversion to a
//! tensor return errors, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_ir::DType;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = tessera_compiler::npy::parse(data) {
        for d in DType::ALL {
            let _ = tessera_compiler::npy::to_tensor(&a, d, "fuzz");
        }
    }
});
