//! Command lines (`cases/cli/*.cli`): exit code, expected substrings (of
//! stdout, stderr and files the command writes), the output directory,
//! and a snapshot of stdout and stderr. Every file the
//! command could read (under `cases/`, and the case's scratch directory
//! `{work}`, prepared by `copy:` lines) is hashed before and after: an
//! unchanged hash is part of every case, whatever its exit code. A case
//! also fails past `MAX_SECONDS`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tessera_testsuite::{case_name, snapshot_settings};

/// The longest a case may take (debug builds included).
const MAX_SECONDS: u64 = 30;

/// Every file under `dirs`, with a hash of its bytes.
fn hashes(dirs: &[&Path]) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    while let Some(d) = stack.pop() {
        if d.is_file() {
            if let Ok(bytes) = std::fs::read(&d) {
                out.insert(d, tessera_sim::fnv::fnv1a(&bytes));
            }
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        stack.extend(rd.flatten().map(|e| e.path()));
    }
    out
}

type Result = datatest_stable::Result<()>;

fn cli_case(path: &Path) -> Result {
    let text = std::fs::read_to_string(path)?;
    let name = case_name(path);
    let out_dir = std::env::temp_dir().join(format!("tessera-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out_text = out_dir.display().to_string();
    let work = std::env::temp_dir().join(format!("tessera-work-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let work_text = work.display().to_string();
    let subst = |v: &str| {
        v.replace("{cases}", "cases")
            .replace("{data}", "cases/cli/data")
            .replace("{sim}", "../backend/sim/tests")
            .replace("{asm}", "cases/asm")
            .replace("{out}", &out_text)
            .replace("{work}", &work_text)
    };
    let mut commands: Vec<Vec<String>> = Vec::new();
    let mut exit: Option<i32> = None;
    let (mut stderr_has, mut stdout_has) = (Vec::new(), Vec::new());
    let mut out_empty = false;
    // (file, text): a file the command writes and what it must hold.
    let mut file_has: Vec<(PathBuf, String)> = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed line `{line}`"))?;
        let value = value.trim();
        match key.trim() {
            "args" => commands.push(subst(value).split_whitespace().map(String::from).collect()),
            "copy" => {
                let (from, to) = value
                    .split_once("->")
                    .ok_or_else(|| format!("`copy: FROM -> TO`, not `{value}`"))?;
                let to = PathBuf::from(subst(to.trim()));
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::copy(subst(from.trim()), to)?;
            }
            "exit" => exit = Some(value.parse()?),
            "stderr-contains" => stderr_has.push(value.to_string()),
            "stdout-contains" => stdout_has.push(value.to_string()),
            "out-dir" if value == "empty" => out_empty = true,
            "file-contains" => {
                let (path, what) = value
                    .split_once(' ')
                    .ok_or_else(|| format!("`file-contains: PATH TEXT`, not `{value}`"))?;
                file_has.push((PathBuf::from(subst(path)), what.trim().to_string()));
            }
            other => return Err(format!("unknown key `{other}`").into()),
        }
    }
    let (last, before) = commands.split_last().ok_or("a CLI case needs `args:`")?;
    let exit = exit.ok_or("a CLI case needs `exit:`")?;
    std::fs::create_dir_all(&out_dir)?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    // Earlier `args:` lines prepare the last one (e.g. `asm` before `run`) and must succeed.
    for args in before {
        let mut argv = vec!["tessera".to_string()];
        argv.extend(args.iter().cloned());
        let code = tessera_compiler::cli::run(&argv, &mut out, &mut err, false);
        if code != 0 {
            return Err(format!(
                "`{}` exited {code}\n{}",
                argv.join(" "),
                String::from_utf8_lossy(&err)
            )
            .into());
        }
    }
    let mut argv = vec!["tessera".to_string()];
    argv.extend(last.iter().cloned());
    // The scratch directory, the CLI data, and every file an argument names.
    let mut named: Vec<PathBuf> = vec![work.clone(), PathBuf::from("cases/cli/data")];
    for a in last {
        for part in a.split('=') {
            if Path::new(part).is_file() {
                named.push(PathBuf::from(part));
            }
        }
    }
    let watched: Vec<&Path> = named.iter().map(PathBuf::as_path).collect();
    let before = hashes(&watched);
    let start = std::time::Instant::now();
    let code = tessera_compiler::cli::run(&argv, &mut out, &mut err, false);
    let seconds = start.elapsed().as_secs();
    let after = hashes(&watched);
    let _ = std::fs::remove_dir_all(&work);
    let stdout = timeless(
        &String::from_utf8_lossy(&out)
            .replace(&out_text, "{out}")
            .replace(&work_text, "{work}"),
    );
    let stderr = String::from_utf8_lossy(&err)
        .replace(&out_text, "{out}")
        .replace(&work_text, "{work}");
    let written: Vec<String> = std::fs::read_dir(&out_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut problems = Vec::new();
    for (path, what) in &file_has {
        match std::fs::read_to_string(path) {
            Ok(t) if t.contains(what.as_str()) => {}
            Ok(_) => problems.push(format!("{} lacks `{what}`", path.display())),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    // Every text file a command writes ends in a newline.
    for name in &written {
        let text = ["json", "md", "s", "tir", "toml", "h", "clif"]
            .iter()
            .any(|e| name.ends_with(&format!(".{e}")));
        if text
            && let Ok(bytes) = std::fs::read(out_dir.join(name))
            && !bytes.is_empty()
            && !bytes.ends_with(b"\n")
        {
            problems.push(format!("{name} does not end in a newline"));
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    // Nothing outside the output directory changed (new files in it, like
    // a stray temporary, count as changes too).
    let changed: Vec<&PathBuf> = before
        .iter()
        .filter(|(p, h)| after.get(*p) != Some(h))
        .map(|(p, _)| p)
        .chain(after.keys().filter(|p| !before.contains_key(*p)))
        .collect();
    if !changed.is_empty() {
        problems.push(format!(
            "files outside the output directory changed: {changed:?}"
        ));
    }
    if seconds > MAX_SECONDS {
        problems.push(format!("took {seconds} s (more than {MAX_SECONDS})"));
    }
    if code != exit {
        problems.push(format!("exit code {code}, expected {exit}"));
    }
    for s in &stderr_has {
        if !stderr.contains(s.as_str()) {
            problems.push(format!("stderr lacks `{s}`"));
        }
    }
    for s in &stdout_has {
        if !stdout.contains(s.as_str()) {
            problems.push(format!("stdout lacks `{s}`"));
        }
    }
    if out_empty && !written.is_empty() {
        problems.push(format!("the output directory is not empty: {written:?}"));
    }
    if !problems.is_empty() {
        return Err(format!(
            "{}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            problems.join("\n")
        )
        .into());
    }
    let mut files = written;
    files.sort();
    let snap = format!("exit: {code}\nfiles: {files:?}\n--- stdout\n{stdout}--- stderr\n{stderr}");
    snapshot_settings(path).bind(|| insta::assert_snapshot!(format!("{name}@output"), snap));
    Ok(())
}

datatest_stable::harness! {
    { test = cli_case, root = "cases/cli", pattern = r"^[^/]*\.cli$" },
}

/// `text` with the seconds `tune` reports (`tuned in 0.00 s`) as `{s}`:
/// wall-clock time is no part of a snapshot.
fn timeless(text: &str) -> String {
    const AT: &str = "tuned in ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(AT) {
        let (head, tail) = rest.split_at(i + AT.len());
        out.push_str(head);
        let digits = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(tail.len());
        out.push_str(if digits > 0 { "{s}" } else { "" });
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}
