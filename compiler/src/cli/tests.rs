//! The command line's handling of its own output.

use super::run;
use std::io::{Error, ErrorKind, Write};

/// Standard output that fails every write with `kind`.
struct Failing(ErrorKind);

impl Write for Failing {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(Error::new(self.0, "the device is full"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tessera(args: &[&str], out: &mut dyn Write) -> (i32, String) {
    let mut err = Vec::new();
    let argv = std::iter::once("tessera").chain(args.iter().copied());
    let code = run(argv, out, &mut err, false);
    (code, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn output_that_does_not_reach_standard_output_is_an_error() {
    // cli.md: exit 0 is success; what the command prints is its result.
    // `--help` too: clap prints it before any command runs.
    for args in [
        &["machine", "list"][..],
        &["machine", "show"],
        &["--help"],
        &["run", "--help"],
    ] {
        let (code, err) = tessera(args, &mut Failing(ErrorKind::StorageFull));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("E0600"), "{err}");
        assert!(
            err.contains("cannot write to standard output: the device is full"),
            "{err}"
        );
    }
    // As a JSON line when asked.
    let (code, err) = tessera(
        &["--error-format", "json", "machine", "show"],
        &mut Failing(ErrorKind::Other),
    );
    assert_eq!(code, 1);
    let line: serde_json::Value = serde_json::from_str(err.trim()).expect("one JSON line");
    assert_eq!(line["code"], "E0600", "{line}");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // `tessera machine show | head -1`: the reader stopped reading.
    for args in [&["machine", "show"][..], &["--help"]] {
        let (code, err) = tessera(args, &mut Failing(ErrorKind::BrokenPipe));
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
    }
    // And a good writer gets the whole output.
    let mut out = Vec::new();
    assert_eq!(tessera(&["machine", "list"], &mut out).0, 0);
    assert!(String::from_utf8_lossy(&out).contains("910b-like"));
}

/// A fresh scratch directory holding `k.tsr` with `source`.
fn scratch(name: &str, source: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("tessera-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let src = dir.join("k.tsr");
    std::fs::write(&src, source).expect("the source");
    (dir, src)
}

#[test]
fn a_run_whose_report_is_lost_writes_no_files() {
    // docs/cli.md: a failed command leaves no partial output. The report
    // goes to standard output before the files are put in place.
    let (dir, src) = scratch(
        "lost-report",
        "kernel k(x: f32[64]) -> f32[64] { return x * 2.0; }\n",
    );
    let out_dir = dir.join("out");
    let stats = dir.join("stats.json");
    let (src, out_dir_s, stats_s) = (
        src.to_str().unwrap(),
        out_dir.to_str().unwrap(),
        stats.to_str().unwrap(),
    );
    let run = [
        "run",
        src,
        "--random-inputs",
        "--out-dir",
        out_dir_s,
        "--stats-json",
        stats_s,
    ];
    for extra in [&[][..], &["--timing-only"]] {
        let args = [&run[..], extra].concat();
        let (code, err) = tessera(&args, &mut Failing(ErrorKind::StorageFull));
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("E0600"), "{err}");
        assert!(!stats.exists(), "{args:?}: stats written");
        assert!(
            std::fs::read_dir(&out_dir).map_or(true, |mut d| d.next().is_none()),
            "{args:?}: outputs written"
        );
    }
    // The same command with its report delivered writes both.
    assert_eq!(tessera(&run, &mut Vec::new()).0, 0);
    assert!(stats.exists() && out_dir.join("out0.npy").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_tune_whose_report_is_lost_leaves_the_file_as_it_was() {
    let (dir, src) = scratch(
        "lost-tune",
        "kernel mm(a: f16[128, 128], b: f16[128, 128]) -> f32[128, 128] { return a @ b; }\n",
    );
    let file = dir.join("tuning.toml");
    let before = "format = 1\n";
    std::fs::write(&file, before).expect("the old file");
    let args = ["tune", src.to_str().unwrap(), "-o", file.to_str().unwrap()];
    let (code, err) = tessera(&args, &mut Failing(ErrorKind::StorageFull));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("E0600"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).expect("the file"), before);
    // Delivered, the report's tune writes its entry.
    assert_eq!(tessera(&args, &mut Vec::new()).0, 0);
    assert!(
        std::fs::read_to_string(&file)
            .expect("the file")
            .contains("[[entry]]")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
