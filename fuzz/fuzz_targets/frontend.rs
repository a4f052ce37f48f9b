//! Fuzz target: any bytes through the lexer, parser and checker, and every
//! kernel that checks through lowering; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let (file, diags) = tessera_frontend::parse::parse(&src);
    if !diags.is_empty() {
        return;
    }
    if !tessera_frontend::lower::check(&file).is_empty() {
        return;
    }
    let env = [("M", 3u64), ("N", 5), ("K", 2)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    for k in &file.kernels {
        let _ = tessera_frontend::lower::lower(&file, &k.name.name, &env);
    }
});
