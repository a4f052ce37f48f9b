//! The `tessera` binary.

use std::io::IsTerminal;

fn main() {
    let tty = std::io::stderr().is_terminal();
    let code = tessera_compiler::cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        tty,
    );
    std::process::exit(code);
}
