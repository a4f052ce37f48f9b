//! The plan parser never panics: random bytes, and real plans (the codegen
//! cases' on both machines) mutated line by line and word by word, end in a
//! plan or a located error. A plan it accepts prints and reads back as the
//! same plan. Each strategy runs 10 000 cases; a failure prints the input.

use proptest::prelude::*;
use proptest::test_runner::Config;
use std::sync::OnceLock;
use tessera_compiler::{driver, simulate};
use tessera_ir::plan::Plan;
use tessera_testsuite::{case_files, crate_dir, directives, load};

/// Parse; an accepted plan must print and read back unchanged (compared as
/// values, or as text when a constant is NaN, which equals nothing).
fn parse(text: &str) {
    match Plan::parse(text) {
        Ok(p) => {
            let printed = p.text();
            let back = Plan::parse(&printed).expect("a printed plan parses");
            if printed.contains("const nan") {
                assert_eq!(back.text(), printed);
            } else {
                assert_eq!(back, p, "{printed}");
            }
        }
        Err(e) => assert!(e.line >= 1 && !e.message.is_empty()),
    }
}

/// The plan texts of the codegen cases on both built-in machines.
fn plans() -> &'static [String] {
    static PLANS: OnceLock<Vec<String>> = OnceLock::new();
    PLANS.get_or_init(|| {
        let dir = crate_dir().join("cases/codegen");
        let paths = case_files(&dir, "tsr");
        let mut out = Vec::new();
        for path in paths {
            let src = load(&path);
            let dirs = directives(&src.text).expect("directives");
            let file = driver::parse_and_check(&src).expect("checks");
            let def = driver::select_kernel(&file, dirs.kernel.as_deref()).expect("kernel");
            let kernel = driver::lower(&file, &def.name.name, &dirs.dims, &src).expect("lowers");
            for m in ["910b-like", "910-like"] {
                let machine = simulate::machine(Some(m)).expect("machine");
                let code =
                    driver::compile_npu(&kernel, &machine, &src, tessera_compiler::opt::Level::O2)
                        .expect("compiles");
                out.push(code.plan.text());
            }
        }
        out
    })
}

/// A mutation of one plan text.
#[derive(Debug, Clone)]
enum Edit {
    /// Delete line `i`.
    DropLine(usize),
    /// Repeat line `i`.
    DupLine(usize),
    /// Swap lines `i` and `j`.
    Swap(usize, usize),
    /// Replace word `w` of line `i` by a token.
    Word(usize, usize, &'static str),
    /// Truncate the text at byte `i`.
    Cut(usize),
}

const TOKENS: &[&str] = &[
    "0",
    "1",
    "-1",
    "18446744073709551615",
    "99999999999999999999",
    "x0",
    "[]",
    "[1,",
    "f16[",
    "f99[2]",
    "const",
    "nan",
    ":",
    "=",
    "+",
    "strides",
    "(transposed)",
    "cube",
    "vector",
    "stage",
    "local",
    "ub",
    "l9",
    "@",
    "B",
    "x0",
    "in7",
    "t99",
    "%",
    "",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::DropLine),
        any::<usize>().prop_map(Edit::DupLine),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
        (
            any::<usize>(),
            any::<usize>(),
            proptest::sample::select(TOKENS)
        )
            .prop_map(|(i, w, t)| Edit::Word(i, w, t)),
        any::<usize>().prop_map(Edit::Cut),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        let n = lines.len().max(1);
        match *e {
            Edit::DropLine(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::DupLine(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Swap(i, j) if !lines.is_empty() => lines.swap(i % n, j % n),
            Edit::Word(i, w, t) if !lines.is_empty() => {
                let line = &mut lines[i % n];
                let mut words: Vec<&str> = line.split(' ').collect();
                let k = w % words.len();
                words[k] = t;
                *line = words.join(" ");
            }
            Edit::Cut(i) => {
                let joined = lines.join("\n");
                let mut at = i % (joined.len() + 1);
                while !joined.is_char_boundary(at) {
                    at -= 1;
                }
                lines = joined[..at].lines().map(str::to_string).collect();
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

fn config() -> Config {
    Config {
        cases: 10_000,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_plans(which in any::<usize>(), edits in proptest::collection::vec(edit(), 1..6)) {
        let all = plans();
        parse(&apply(&all[which % all.len()], &edits));
    }
}

#[test]
fn the_unmutated_plans_parse() {
    for p in plans() {
        let plan = Plan::parse(p).unwrap_or_else(|e| panic!("{e}\n{p}"));
        assert_eq!(&plan.text(), p);
    }
}

/// Every single-word edit (each word of each line of each plan replaced by
/// each token), deterministically: the random search above may miss a
/// one-word case for many runs.
#[test]
fn every_one_word_edit_parses_or_fails_cleanly() {
    for p in plans() {
        let lines = p.lines().count();
        for i in 0..lines {
            let words = p.lines().nth(i).map_or(0, |l| l.split(' ').count());
            for w in 0..words {
                for t in TOKENS {
                    parse(&apply(p, &[Edit::Word(i, w, t)]));
                }
            }
        }
    }
}
