//! Fuzz target: any text as IR; a module that parses prints back to text
//! that parses to the same module.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    if let Ok(m) = tessera_ir::text::parse_module(&src) {
        let printed = tessera_ir::text::print_module(&m);
        let again = tessera_ir::text::parse_module(&printed).expect("printed IR parses");
        assert_eq!(tessera_ir::text::print_module(&again), printed);
    }
});
