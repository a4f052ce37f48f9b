//! Build script: generates the parser from `src/grammar.lalrpop`.
fn main() {
    lalrpop::process_src().unwrap();
}
