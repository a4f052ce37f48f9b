//! The frontend never panics: random bytes, random token sequences and
//! random (mostly ill-typed) programs built from the language's builtins all
//! end in a file or in diagnostics with codes. Each strategy runs 10 000
//! cases; a failure prints the input (proptest shrinks it).

use proptest::prelude::*;
use proptest::test_runner::Config;
use tessera_ir::DimEnv;

/// Parse, check, and lower every kernel as `compile` would; never panic.
fn pipeline(src: &str) {
    let (file, diags) = tessera_frontend::parse::parse(src);
    for d in &diags {
        assert!(!d.code.is_empty());
    }
    if !diags.is_empty() {
        // The kernels a syntax error left whole are checked too.
        let source = tessera_compiler::driver::Source {
            name: "fuzz.tsr".into(),
            text: src.to_string(),
        };
        assert!(tessera_compiler::driver::parse_and_check(&source).is_err());
        return;
    }
    let diags = tessera_frontend::lower::check(&file);
    if !diags.is_empty() {
        // Rendering must not panic either.
        let _ = tessera_ir::diag::render(&diags, "fuzz.tsr", src, false);
        return;
    }
    let env: DimEnv = ["M", "N", "K", "B"]
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), 1 + 3 * i as u64))
        .collect();
    for k in &file.kernels {
        if let Ok(kernel) = tessera_frontend::lower::lower(&file, &k.name.name, &env) {
            let text = tessera_ir::text::print_kernel(&kernel);
            let back = tessera_ir::text::parse_module(&text).expect("printed IR parses");
            assert_eq!(tessera_ir::text::print_module(&back), text);
        }
    }
}

const TOKENS: &[&str] = &[
    "kernel",
    "let",
    "return",
    "true",
    "false",
    "f16",
    "bf16",
    "f32",
    "i8",
    "i32",
    "bool",
    "x",
    "y",
    "M",
    "N",
    "k",
    "sum",
    "max",
    "softmax",
    "reshape",
    "transpose",
    "concat",
    "slice",
    "cast",
    "select",
    "full",
    "zeros",
    "0",
    "1",
    "-1",
    "4",
    "2.5",
    "1e-5",
    "\"tanh\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ";",
    "->",
    "=",
    "+",
    "-",
    "*",
    "/",
    "@",
    "<",
    "<=",
    "==",
    "!=",
    "/*",
    "*/",
    "//",
    "$",
    "\n",
];

fn expr(depth: u32) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        Just("x".to_string()),
        Just("y".to_string()),
        Just("z".to_string()),
        (-3i64..40).prop_map(|i| i.to_string()),
        (-2.0f64..2.0).prop_map(|f| format!("{f:.3}")),
        Just("true".to_string()),
        Just("f16".to_string()),
        Just("[M, 1]".to_string()),
        Just("[-1]".to_string()),
        Just("[0, 2, 1]".to_string()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let sub = expr(depth - 1);
    let name = prop_oneof![
        Just("exp"),
        Just("gelu"),
        Just("maximum"),
        Just("select"),
        Just("cast"),
        Just("sum"),
        Just("mean"),
        Just("reshape"),
        Just("transpose"),
        Just("broadcast_to"),
        Just("concat"),
        Just("slice"),
        Just("zeros"),
        Just("full"),
        Just("softmax"),
        Just("layer_norm"),
        Just("rms_norm"),
        Just("helper"),
        Just("nope"),
    ];
    let arg_name = prop_oneof![
        Just(""),
        Just("axis = "),
        Just("keepdims = "),
        Just("start = "),
        Just("end = "),
        Just("eps = "),
        Just("approximate = "),
        Just("x = "),
    ];
    prop_oneof![
        leaf,
        (
            sub.clone(),
            prop_oneof![
                Just("+"),
                Just("-"),
                Just("*"),
                Just("/"),
                Just("@"),
                Just("<"),
                Just("==")
            ],
            sub.clone()
        )
            .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
        sub.clone().prop_map(|a| format!("-{a}")),
        (
            name,
            proptest::collection::vec((arg_name, sub.clone()), 0..4)
        )
            .prop_map(|(f, args)| {
                let args: Vec<String> = args.into_iter().map(|(n, v)| format!("{n}{v}")).collect();
                format!("{f}({})", args.join(", "))
            }),
        proptest::collection::vec(sub, 0..3).prop_map(|v| format!("[{}]", v.join(", "))),
    ]
    .boxed()
}

fn program() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        Just("f32[M, N]"),
        Just("f16[4, N]"),
        Just("i32[M]"),
        Just("i8[2, 3]"),
        Just("f32"),
        Just("bf16[B, M, N]"),
    ];
    (
        ty.clone(),
        ty.clone(),
        ty,
        proptest::collection::vec(expr(3), 1..4),
    )
        .prop_map(|(tx, ty_, tr, exprs)| {
            let mut body = String::new();
            for (i, e) in exprs.iter().enumerate() {
                let name = ["z", "w", "v", "u"][i];
                body.push_str(&format!("    let {name} = {e};\n"));
            }
            let ret = exprs.last().cloned().unwrap_or_default();
            format!(
                "kernel helper(x: f32[K]) -> f32[K] {{ return x * 2.0; }}\n\
             kernel k(x: {tx}, y: {ty_}) -> {tr} {{\n{body}    return {ret};\n}}\n"
            )
        })
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
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        pipeline(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_token_sequences(toks in proptest::collection::vec(proptest::sample::select(TOKENS), 0..60)) {
        pipeline(&toks.join(" "));
    }

    #[test]
    fn random_programs(src in program()) {
        pipeline(&src);
    }
}
