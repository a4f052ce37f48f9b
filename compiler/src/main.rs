//! The `tessera` binary.

use std::io::IsTerminal;

fn main() {
    // A panic is a bug in Tessera: reported as an internal error with exit
    // code 70 (docs/cli.md), from whichever thread it happens on.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal compiler error: {info}");
        eprintln!("note: this is a bug in Tessera; please report it with the input that caused it");
        std::process::exit(70);
    }));
    let tty = std::io::stderr().is_terminal();
    let code = tessera_compiler::cli::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        tty,
    );
    std::process::exit(code);
}
