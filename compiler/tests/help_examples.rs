//! Every subcommand's `--help` ends with an example (cli.md); the examples
//! run as printed, from a directory that holds the repository's `examples/`,
//! `benches/` and `testsuite/`, in the order of the subcommands (the `asm`
//! example makes the file the `disasm` one reads).

use std::path::Path;
use std::process::Command;

fn tessera(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the tessera binary runs")
}

#[test]
fn every_help_example_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("tessera-help-examples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for d in ["examples", "benches", "testsuite"] {
        std::os::unix::fs::symlink(root.join(d).canonicalize().unwrap(), dir.join(d)).unwrap();
    }
    let commands = [
        "check", "compile", "run", "bench", "tune", "asm", "disasm", "machine",
    ];
    let mut ran = 0;
    for c in commands {
        let help = tessera(&dir, &[c, "--help"]);
        assert!(help.status.success(), "{c} --help");
        let text = String::from_utf8(help.stdout).unwrap();
        let (_, example) = text
            .split_once("Example:\n")
            .unwrap_or_else(|| panic!("`{c} --help` has no example:\n{text}"));
        for line in example.lines().filter(|l| !l.trim().is_empty()) {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words[0], "tessera", "{c}: {line}");
            let out = tessera(&dir, &words[1..]);
            assert!(
                out.status.success(),
                "`{line}` failed ({}):\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= commands.len(), "{ran} examples");
    std::fs::remove_dir_all(&dir).unwrap();
}
