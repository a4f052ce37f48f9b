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

/// The op and instruction enums: adding a variant must be a compile error
/// wherever it needs handling, so no `match` over them may end in a
/// catch-all arm (`_ =>` or a bare binding).
const EXHAUSTIVE: &[&str] = &[
    // IR ops and plan stages.
    "Op",
    "UnaryOp",
    "BinaryOp",
    "CompareOp",
    "ReduceOp",
    "EwOp",
    "StageKind",
    "MatMulSchedule",
    // Instructions and their op fields.
    "Insn",
    "ScalarInsn",
    "SyncInsn",
    "PipeInsn",
    "Opcode",
    "Inst",
    "AluOp",
    "FOp",
    "BinOp",
    "ScaOp",
    "UnOp",
    "RRed",
    "BRed",
    "ARed",
];

/// Finds `match`es whose arms name a variant of an [`EXHAUSTIVE`] enum and
/// that also have a catch-all arm.
struct CatchAll {
    file: String,
    /// The function being walked.
    func: String,
    found: Vec<String>,
}

fn enum_of(p: &syn::Pat) -> Option<String> {
    let path = match p {
        syn::Pat::Path(p) => &p.path,
        syn::Pat::TupleStruct(p) => &p.path,
        syn::Pat::Struct(p) => &p.path,
        syn::Pat::Or(o) => return o.cases.iter().find_map(enum_of),
        syn::Pat::Tuple(t) => return t.elems.iter().find_map(enum_of),
        syn::Pat::Reference(r) => return enum_of(&r.pat),
        _ => return None,
    };
    let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let name = segs.len().checked_sub(2).map(|i| segs[i].clone())?;
    EXHAUSTIVE.contains(&name.as_str()).then_some(name)
}

fn is_catch_all(p: &syn::Pat) -> bool {
    match p {
        syn::Pat::Wild(_) => true,
        syn::Pat::Ident(i) => i.subpat.is_none(),
        syn::Pat::Or(o) => o.cases.iter().any(is_catch_all),
        _ => false,
    }
}

impl<'a> syn::visit::Visit<'a> for CatchAll {
    fn visit_expr_match(&mut self, m: &'a syn::ExprMatch) {
        if let Some(name) = m.arms.iter().find_map(|a| enum_of(&a.pat))
            && m.arms.iter().any(|a| is_catch_all(&a.pat))
        {
            self.found.push(format!(
                "{}, in `{}`: a catch-all arm over `{name}`",
                self.file, self.func
            ));
        }
        syn::visit::visit_expr_match(self, m);
    }

    fn visit_item_fn(&mut self, f: &'a syn::ItemFn) {
        self.func = f.sig.ident.to_string();
        syn::visit::visit_item_fn(self, f);
    }

    fn visit_impl_item_fn(&mut self, f: &'a syn::ImplItemFn) {
        self.func = f.sig.ident.to_string();
        syn::visit::visit_impl_item_fn(self, f);
    }
}

#[test]
fn no_catch_all_arms_over_op_and_instruction_enums() {
    let mut files = Vec::new();
    for d in ["backend/src", "backend/sim/src", "ir/src", "compiler/src"] {
        walk(&root().join(d), &mut files);
    }
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let mut v = CatchAll {
            file: f.strip_prefix(root()).unwrap_or(&f).display().to_string(),
            func: String::new(),
            found: Vec::new(),
        };
        syn::visit::Visit::visit_file(&mut v, &ast);
        found.extend(v.found);
    }
    assert!(
        found.is_empty(),
        "matches that would let a new op or instruction through silently: {found:#?}"
    );
}
