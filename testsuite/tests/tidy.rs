//! Conventions that keep the repository honest, checked as tests: module
//! docs, the error-code registry, a case per code, case names, and paths in
//! the documentation that really exist.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    tessera_testsuite::crate_dir()
        .parent()
        .expect("the testsuite crate is inside the workspace")
        .to_path_buf()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !(name.starts_with("target") || name.starts_with('.') || name == "snapshots") {
                walk(&p, out);
            }
        } else {
            out.push(p);
        }
    }
}

fn files_with_ext(ext: &str) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for d in [
        "ir",
        "frontend",
        "compiler",
        "backend",
        "testsuite",
        "benches",
        "fuzz",
    ] {
        walk(&root().join(d), &mut all);
    }
    all.retain(|p| p.extension().is_some_and(|e| e == ext));
    all.sort();
    all
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let missing: Vec<String> = files_with_ext("rs")
        .into_iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` module doc: {missing:#?}"
    );
}

fn registry_in_docs() -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    text.lines()
        .filter_map(|l| l.strip_prefix("| E"))
        .map(|l| format!("E{}", &l[..4]))
        .collect()
}

#[test]
fn error_code_registry_matches_its_documentation() {
    let declared: Vec<String> = tessera_ir::Code::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    assert_eq!(
        registry_in_docs(),
        declared,
        "docs/diagnostics.md and ir::diag::Code disagree"
    );
}

#[test]
fn every_error_code_is_exercised_by_a_case() {
    let mut seen = BTreeSet::new();
    let cases = tessera_testsuite::crate_dir().join("cases");
    let mut files = Vec::new();
    walk(&cases.join("errors"), &mut files);
    walk(&cases.join("cli"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let is_error_case =
            f.extension().is_some_and(|e| e == "tsr") && f.starts_with(cases.join("errors"));
        for line in text.lines() {
            let relevant =
                (is_error_case && line.contains("//~")) || line.starts_with("stderr-contains:");
            if relevant {
                for w in line.split(|c: char| !c.is_ascii_alphanumeric()) {
                    if w.len() == 5
                        && w.starts_with('E')
                        && w[1..].chars().all(|c| c.is_ascii_digit())
                    {
                        seen.insert(w.to_string());
                    }
                }
            }
        }
    }
    let missing: Vec<&str> = tessera_ir::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !seen.contains(*c))
        .collect();
    assert!(
        missing.is_empty(),
        "codes no error or CLI case exercises: {missing:?}"
    );
}

#[test]
fn case_names_are_snake_case() {
    let mut files = Vec::new();
    walk(&tessera_testsuite::crate_dir().join("cases"), &mut files);
    let bad: Vec<String> = files
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "tsr" || e == "cli" || e == "s")
        })
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| {
            !s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    assert!(bad.is_empty(), "case names must be snake_case: {bad:?}");
}

#[test]
fn paths_named_in_the_docs_exist() {
    let mut docs = vec![root().join("README.md"), root().join("ARCHITECTURE.md")];
    walk(&root().join("docs"), &mut docs);
    let tops = [
        "ir/",
        "frontend/",
        "compiler/",
        "backend/",
        "testsuite/",
        "docs/",
        "examples/",
        "benches/",
        "fuzz/",
        ".ci/",
    ];
    let mut missing = Vec::new();
    for doc in docs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(doc).unwrap_or_default();
        for (i, chunk) in text.split('`').enumerate() {
            let placeholder = chunk
                .chars()
                .any(|c| c.is_ascii_uppercase() || "*{}<>…$ ".contains(c));
            if i % 2 == 1
                && !placeholder
                && tops.iter().any(|t| chunk.starts_with(t))
                && !root().join(chunk).exists()
            {
                missing.push(format!("{}: `{chunk}`", doc.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths in the docs that do not exist: {missing:#?}"
    );
}

#[test]
fn the_code_map_names_every_crate() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .expect("workspace members");
    for m in members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
    {
        assert!(
            map.contains(&format!("### `{m}`")),
            "ARCHITECTURE.md has no section for `{m}`"
        );
    }
}
