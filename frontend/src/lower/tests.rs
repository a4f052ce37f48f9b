//! Unit tests of checking and lowering, with hand-derived expectations.

use super::{check, check_within, lower};
use crate::parse::parse;
use tessera_ir::DimEnv;

fn codes(src: &str) -> Vec<String> {
    let (file, mut d) = parse(src);
    d.extend(check(&file));
    d.into_iter().map(|d| d.code).collect()
}

fn ir(src: &str, kernel: &str, dims: &[(&str, u64)]) -> String {
    let (file, d) = parse(src);
    assert!(d.is_empty(), "{d:?}");
    let env: DimEnv = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    match lower(&file, kernel, &env) {
        Ok(k) => tessera_ir::text::print_kernel(&k),
        Err(d) => panic!("{d:?}"),
    }
}

#[test]
fn spec_examples_check_clean() {
    let src = r#"
kernel mlp(x: f16[M, K], w: f16[K, N], b: f32[N]) -> f16[M, N] {
    let acc = x @ w;
    return cast(gelu(acc + b), f16);
}
kernel softmax_rows(x: f32[B, N]) -> f32[B, N] {
    let m = max(x, axis = -1, keepdims = true);
    let e = exp(x - m);
    return e / sum(e, axis = -1, keepdims = true);
}
kernel attention(q: f16[H, S, D], k: f16[H, S, D], v: f16[H, S, D]) -> f16[H, S, D] {
    let s = (q @ transpose(k, [0, 2, 1])) * 0.08838834764831845;
    let p = softmax(s, axis = -1);
    return cast(cast(p, f16) @ v, f16);
}
kernel layer_stats(x: f32[M, N]) -> (mean: f32[M], rstd: f32[M]) {
    let mu = mean(x, axis = 1);
    let d = x - reshape(mu, [M, 1]);
    return (mu, rsqrt(mean(d * d, axis = 1) + 1e-5));
}
"#;
    assert_eq!(codes(src), Vec::<String>::new());
}

#[test]
fn literals_adopt_the_tensor_dtype() {
    let src = "kernel k(x: f16[2]) -> f16[2] { return x * 2 + 0.5; }";
    let text = ir(src, "k", &[]);
    assert!(text.contains("%0 = full 2.0 : f16[]"), "{text}");
    assert!(text.contains("%2 = full 0.5 : f16[]"), "{text}");
}

#[test]
fn literal_only_expressions_fold() {
    let src = "kernel k(x: f32[2]) -> f32[2] { let s = 0.5 * 4.0 - 1; return x * s; }";
    let text = ir(src, "k", &[]);
    assert!(text.contains("full 1.0 : f32[]"), "{text}");
}

#[test]
fn elementwise_builtins_of_literals_fold_where_a_literal_is_expected() {
    // Hand-derived: sqrt(4) = 2; 2 · max(1, 3) = 6; the tanh form of
    // gelu(1) = (1 + tanh(√(2/π) · 1.044715)) / 2 = 0.841192; the axis
    // max(0, -1) = 0.
    let src = "kernel k(x: f32[4, 4]) -> f32[4, 4] { \
               return x * full([4, 4], sqrt(4.0), f32) + full([4, 4], 2.0 * maximum(1, 3)) \
               + full([4, 4], gelu(1.0, approximate = \"tanh\")); } \
               kernel s(x: f32[4]) -> f32[1] { return sum(x, axis = maximum(0, -1), keepdims = true); }";
    let text = ir(src, "k", &[]);
    assert!(text.contains("full 2.0 : f32[4, 4]"), "{text}");
    assert!(text.contains("full 6.0 : f32[4, 4]"), "{text}");
    assert!(text.contains("full 0.841192 : f32[4, 4]"), "{text}");
    let text = ir(src, "s", &[]);
    assert!(text.contains("axes=[0]"), "{text}");
    // A reduction of a literal is not elementwise: not a literal.
    assert_eq!(
        codes("kernel k(x: f32[4]) -> f32[4] { return x * full([4], sum(1.0)); }"),
        ["E0203"]
    );
}

#[test]
fn integer_literal_division_takes_the_dtype_it_meets() {
    // Hand-derived: a float tensor takes 1 / 2 = 0.5, an integer one the
    // truncated 7 / 2 = 3 (language.md: integer `/` truncates).
    let src = "kernel k(x: f32[2], y: i32[2]) -> (a: f32[2], b: i32[2], c: f32[2]) { \
               return (x * (1 / 2), y * (7 / 2), x * -((1 / 2) * 3)); }";
    let text = ir(src, "k", &[]);
    assert!(text.contains("full 0.5 : f32[]"), "{text}");
    assert!(text.contains("full 3 : i32[]"), "{text}");
    assert!(text.contains("full -1.5 : f32[]"), "{text}");
    // With no tensor to meet, an i32: 7 / 2 is 3 and 1 / 2 == 0 holds.
    let text = ir(
        "kernel k() -> (a: i32, b: bool) { return (7 / 2, 1 / 2 == 0); }",
        "k",
        &[],
    );
    assert!(text.contains("full 3 : i32[]"), "{text}");
    assert!(text.contains("full true : bool[]"), "{text}");
    // A declared result type is met as a tensor is.
    let text = ir("kernel k() -> f32 { return 7 / 2; }", "k", &[]);
    assert!(text.contains("full 3.5 : f32[]"), "{text}");
    // A divisor 0 in both readings, and an overflow in the integer one.
    assert_eq!(
        codes("kernel k(x: f32[2]) -> f32[2] { return x * ((1 / 2) / 0); }"),
        ["E0700"]
    );
    assert_eq!(
        codes("kernel k(x: f32[2]) -> f32[2] { return x * ((1 / 2) + 9223372036854775807 + 1); }"),
        ["E0303"]
    );
    // i64::MIN / -1 overflows i64 (and its remainder must not panic).
    assert_eq!(
        codes("kernel k(x: f32[2]) -> f32[2] { return x * ((0 - 9223372036854775807 - 1) / -1); }"),
        ["E0303"]
    );
    // An integer tensor cannot take 1 / (1 / 2): its divisor truncates to 0.
    assert_eq!(
        codes("kernel k(y: i32[2]) -> i32[2] { return y * (1 / (1 / 2)); }"),
        ["E0303"]
    );
    let text = ir(
        "kernel k(x: f32[2]) -> f32[2] { return x * (1 / (1 / 2)); }",
        "k",
        &[],
    );
    assert!(text.contains("full 2.0 : f32[]"), "{text}");
}

#[test]
fn symbolic_reshapes_wait_for_their_dims_unless_impossible() {
    let split = "kernel k(x: f32[S, D]) -> f32[S, H, E] { return reshape(x, [S, H, E]); }";
    assert_eq!(codes(split), Vec::<String>::new());
    let text = ir(split, "k", &[("S", 4), ("D", 8), ("H", 2), ("E", 4)]);
    assert!(text.contains("reshape %x : f32[4, 2, 4]"), "{text}");
    let (file, _) = parse(split);
    let env: DimEnv = [("S", 4), ("D", 8), ("H", 2), ("E", 3)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    let err = lower(&file, "k", &env).expect_err("32 elements are not 24");
    assert_eq!(err[0].code, "E0404");
    // No binding makes M·4 equal M·8, nor 6 equal 4·N.
    for src in [
        "kernel k(x: f32[M, 4]) -> f32[M, 8] { return reshape(x, [M, 8]); }",
        "kernel k(x: f32[6]) -> f32[4, N] { return reshape(x, [4, N]); }",
    ] {
        assert_eq!(codes(src), ["E0404"], "{src}");
    }
}

#[test]
fn results_are_all_named_or_none() {
    assert_eq!(
        codes("kernel k(x: f32[4]) -> (a: f32[4], f32[4]) { return (x, x); }"),
        ["E0010"]
    );
    assert_eq!(
        codes("kernel k(x: f32[4]) -> (f32[4], f32[4]) { return (x, x); }"),
        Vec::<String>::new()
    );
}

#[test]
fn keepdims_is_a_reshape() {
    let src = "kernel k(x: f32[B, N]) -> f32[B, 1] { return sum(x, axis = -1, keepdims = true); }";
    let text = ir(src, "k", &[("B", 3), ("N", 4)]);
    assert!(text.contains("%0 = sum %x axes=[1] : f32[3]"), "{text}");
    assert!(text.contains("%1 = reshape %0 : f32[3, 1]"), "{text}");
}

#[test]
fn rank1_matmul_drops_the_added_dims() {
    let src = "kernel k(a: f32[4], b: f32[4, 3]) -> f32[3] { return a @ b; }";
    let text = ir(src, "k", &[]);
    assert!(text.contains("matmul %0, %b : f32[1, 3]"), "{text}");
    assert!(text.contains("reshape %1 : f32[3]"), "{text}");
}

#[test]
fn kernel_calls_inline_and_unify_dims() {
    let src = "
kernel scale(x: f32[A, B]) -> f32[A, B] { return x * 2.0; }
kernel main(y: f32[M, 8]) -> f32[M, 8] { return scale(y) + scale(x = y); }";
    let text = ir(src, "main", &[("M", 5)]);
    // The same kernel on the same value is inlined once (kernels are pure).
    assert_eq!(text.matches("mul %y").count(), 1, "{text}");
    assert!(text.contains("add %1, %1 : f32[5, 8]"), "{text}");
}

#[test]
fn calls_on_different_values_inline_apart() {
    let src = "
kernel scale(x: f32[A]) -> f32[A] { return x * 2.0; }
kernel main(y: f32[4], z: f32[4]) -> f32[4] { return scale(y) + scale(z) + scale(y); }";
    let text = ir(src, "main", &[]);
    assert_eq!(text.matches("mul %y").count(), 1, "{text}");
    assert_eq!(text.matches("mul %z").count(), 1, "{text}");
}

#[test]
fn errors_are_all_reported_once() {
    let src = "
kernel a(x: f32[4]) -> f32[4] { let y = x + z; return y * 2.0; }
kernel b(x: f16[4], y: f32[4]) -> f32[4] { return x + y; }
kernel c(x: f32[4]) -> f32[4] { return a(x) + q; }";
    assert_eq!(codes(src), vec!["E0100", "E0300", "E0100"]);
}

#[test]
fn recursion_is_reported_at_the_back_edge() {
    let src = "
kernel a(x: f32[4]) -> f32[4] { return b(x); }
kernel b(x: f32[4]) -> f32[4] { return a(x); }
kernel c(x: f32[4]) -> f32[4] { return c(x); }";
    assert_eq!(codes(src), vec!["E0108", "E0108"]);
}

#[test]
fn unbound_dims_are_reported_when_lowering() {
    let src = "kernel k(x: f32[M]) -> f32[M] { return x; }";
    let (file, _) = parse(src);
    let err = lower(&file, "k", &DimEnv::new()).unwrap_err();
    assert_eq!(err[0].code, "E0500");
}

#[test]
fn slices_of_symbolic_dims_are_checked_once_bound() {
    let src = "kernel k(x: f32[M]) -> f32[M] { let y = slice(x, start = -2); return x; }";
    assert_eq!(codes(src), Vec::<String>::new());
    let (file, _) = parse("kernel k(x: f32[M]) -> f32[2] { return slice(x, start = 3, end = 5); }");
    let env: DimEnv = [("M".to_string(), 4)].into_iter().collect();
    assert_eq!(lower(&file, "k", &env).unwrap_err()[0].code, "E0406");
}

#[test]
fn slice_bounds_may_name_symbolic_dims() {
    // Symbolic: `[0, K)` is `K` long, so the declared `f32[M, K]` checks;
    // `[K, N)` is known once both are bound; a wrong declared extent is
    // caught while symbolic.
    let src = "kernel k(x: f32[M, N], y: f32[M, K]) -> (a: f32[M, K], r: f32[M]) {\n\
               let r = sum(slice(x, axis = 1, start = K), axis = 1);\n\
               return (slice(x, axis = 1, end = K) + y, r); }";
    assert_eq!(codes(src), Vec::<String>::new());
    let wrong =
        "kernel k(x: f32[M, N], y: f32[M, K]) -> f32[M, N] { return slice(x, axis = 1, end = K); }";
    assert_eq!(codes(wrong), ["E0304"]);
    // Bound, a dim is its value: `end = K` of 3 on an axis of 8.
    let text = ir(src, "k", &[("M", 2), ("N", 8), ("K", 3)]);
    assert!(
        text.contains("slice %x axis=1 start=3 end=8 : f32[2, 5]"),
        "{text}"
    );
    assert!(
        text.contains("slice %x axis=1 start=0 end=3 : f32[2, 3]"),
        "{text}"
    );
    // ... and checked: `K` past the axis, or `[N, N)` empty.
    let (file, _) = parse(src);
    let env: DimEnv = [("M", 2), ("N", 8), ("K", 9)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(lower(&file, "k", &env).unwrap_err()[0].code, "E0406");
    let empty = "kernel k(x: f32[N]) -> f32[N] { let e = slice(x, start = N); return x; }";
    assert_eq!(codes(empty), Vec::<String>::new());
    let (file, _) = parse(empty);
    let env: DimEnv = [("N".to_string(), 4)].into_iter().collect();
    assert_eq!(lower(&file, "k", &env).unwrap_err()[0].code, "E0406");
    // A tensor is not a bound, nor is a name that is neither.
    for bad in [
        "kernel k(x: f32[N]) -> f32[N] { let y = x; let e = slice(x, end = y); return x; }",
        "kernel k(x: f32[N]) -> f32[N] { let e = slice(x, end = Q); return x; }",
    ] {
        assert_eq!(codes(bad), ["E0203"], "{bad}");
    }
}

#[test]
fn a_kernel_shadows_a_builtin_of_its_name_except_in_its_own_body() {
    // `kernel relu` wraps the builtin (no recursion); another kernel's
    // `relu(x)` calls the kernel, which is inlined (here, the builtin).
    let src = r#"
kernel relu(x: f32[4]) -> f32[4] {
    return relu(x);
}
kernel twice(x: f32[4]) -> f32[4] {
    return relu(x) * 2.0;
}
kernel silu(x: f32[4]) -> f32[4] {
    return x * 100.0;
}
kernel uses(x: f32[4]) -> f32[4] {
    return silu(x);
}
"#;
    assert_eq!(codes(src), Vec::<String>::new());
    let wrapped = ir(src, "relu", &[]);
    assert!(wrapped.contains("= relu %x"), "{wrapped}");
    let caller = ir(src, "twice", &[]);
    assert!(caller.contains("= relu %x"), "{caller}");
    // The user's `silu` is inlined, not the builtin's.
    let user = ir(src, "uses", &[]);
    assert!(user.contains("mul %x"), "{user}");
    assert!(!user.contains("silu %x"), "{user}");
    // Through another kernel a kernel's own name is a call, hence a cycle.
    let cycle = r#"
kernel gelu(x: f32[4]) -> f32[4] {
    return helper(x);
}
kernel helper(x: f32[4]) -> f32[4] {
    return gelu(x);
}
"#;
    assert!(
        codes(cycle).contains(&"E0108".to_string()),
        "{:?}",
        codes(cycle)
    );
}

/// Kernels `k0`..`k{depth}`, each calling the one below twice on different
/// values (so inlining doubles), then `callers` kernels each calling the top.
fn call_fan(depth: usize, callers: usize) -> String {
    let mut src = String::from("kernel k0(x: f32[4]) -> f32[4] { return x + 1.0; }\n");
    for i in 1..=depth {
        src += &format!(
            "kernel k{i}(x: f32[4]) -> f32[4] {{ return k{j}(x) + k{j}(-x); }}\n",
            j = i - 1
        );
    }
    for c in 0..callers {
        src += &format!("kernel c{c}(x: f32[4]) -> f32[4] {{ return k{depth}(x); }}\n");
    }
    src
}

#[test]
fn checking_a_file_creates_a_bounded_number_of_nodes() {
    // k8 inlined is a few thousand nodes (2^9 `add`s and about as many
    // negations); 200 callers of it pass a budget of 100 000, where the
    // kernels alone do not. One E0109 for the whole file, at the node where
    // the budget ran out.
    let file = |src: &str| {
        let (file, d) = parse(src);
        assert!(d.is_empty(), "{d:?}");
        file
    };
    assert!(check_within(&file(&call_fan(8, 0)), 100_000).is_empty());
    let d = check_within(&file(&call_fan(8, 200)), 100_000);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].code, "E0109");
    assert!(
        d[0].message
            .contains("the file's kernels expand to more than 100000 IR nodes in all"),
        "{}",
        d[0].message
    );
    // The file's own budget (4 000 000) holds all of it.
    assert!(check(&file(&call_fan(8, 200))).is_empty());
}
