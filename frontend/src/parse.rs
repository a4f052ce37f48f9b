//! Parsing: tokens to a [`File`], with every syntax error reported and
//! recovered from.
//!
//! The parser never fails: it returns the tree it could build and the
//! diagnostics (lexical errors, syntax errors with what was expected, and
//! expressions nested deeper than [`MAX_DEPTH`]).

use crate::ast::{BinOp, Expr, ExprKind, File, Ident, Stmt};
use crate::lexer::{LexError, Lexer, Token};
use lalrpop_util::{ErrorRecovery, ParseError};
use tessera_ir::{Code, Diagnostic, Span};

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, unused, missing_docs)]
    grammar
);

/// The most levels of nesting an expression may have: a leaf has none, each
/// operator, call or parenthesis around it adds one (so a chain of 256
/// binary operators is accepted, and one of 257 is not).
pub const MAX_DEPTH: u32 = 256;

/// State the grammar's actions share.
#[derive(Default)]
pub struct ParseState {
    /// Syntax errors the grammar recovered from.
    pub errors: Vec<ErrorRecovery<usize, Token, LexError>>,
    /// Spans of expressions cut off for being too deep, and whether each is
    /// a chain of binary operators (deep through its left operands only).
    pub too_deep: Vec<(Span, bool)>,
}

impl ParseState {
    /// Builds an inner node, cutting it off if it is too deep.
    pub fn node(&mut self, kind: ExprKind, span: Span) -> Expr {
        let e = Expr::node(kind, span);
        self.limit(e)
    }

    /// Builds a binary node.
    pub fn binary(&mut self, op: BinOp, op_span: Span, lhs: Expr, rhs: Expr, span: Span) -> Expr {
        self.node(
            ExprKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        )
    }

    /// A parenthesised expression: the same node, one level deeper, with the
    /// parentheses in its span.
    pub fn paren(&mut self, e: Expr, span: Span) -> Expr {
        let e = Expr {
            kind: e.kind,
            span,
            depth: e.depth + 1,
        };
        self.limit(e)
    }

    fn limit(&mut self, e: Expr) -> Expr {
        // A leaf's depth is 1: its nesting levels are one fewer.
        if e.depth - 1 <= MAX_DEPTH {
            return e;
        }
        let chain =
            matches!(&e.kind, ExprKind::Binary { lhs, rhs, .. } if lhs.depth > rhs.depth + 1);
        self.too_deep.push((e.span, chain));
        Expr::leaf(ExprKind::Error, e.span)
    }
}

/// Parses a file. Diagnostics come in source order.
pub fn parse(src: &str) -> (File, Vec<Diagnostic>) {
    let mut lexer = Lexer::new(src);
    let mut st = ParseState::default();
    let result = grammar::FileParser::new().parse(&mut st, &mut lexer);
    let last_end = lexer.last_end;
    let mut diags = std::mem::take(&mut lexer.diagnostics);
    let mut reported_deep: Vec<Span> = Vec::new();
    for (s, chain) in std::mem::take(&mut st.too_deep) {
        if reported_deep.iter().any(|r| s.contains(*r)) {
            continue;
        }
        reported_deep.push(s);
        let d = Diagnostic::new(
            Code::E0012,
            format!("expression nested more than {MAX_DEPTH} levels deep"),
        );
        diags.push(if chain {
            d.primary(s, "a chain of more operators than that")
                .note("each binary operator of a chain (`a + b + c + …`) nests its left side one level deeper")
                .help("split the chain into several `let` statements (`let s1 = a + b + …;` then `s1 + …`)")
        } else {
            d.primary(s, "too deeply nested")
                .help("split it into several `let` statements")
        });
    }
    for e in std::mem::take(&mut st.errors) {
        diags.extend(syntax_error(e.error, last_end));
    }
    let mut file = match result {
        Ok(f) => f,
        Err(e) => {
            diags.extend(syntax_error(e, last_end));
            File::default()
        }
    };
    file.recovered = std::mem::take(&mut lexer.recovered);
    for k in &mut file.kernels {
        for stmt in &mut k.body {
            if let Stmt::Error {
                span,
                names,
                returns,
            } = stmt
            {
                (*names, *returns) = broken_statement(src, *span);
            }
        }
    }
    diags.sort_by_key(|d| d.primary_span().map_or(u32::MAX, |s| s.start));
    (file, diags)
}

/// What a statement that did not parse may have meant: the identifiers in
/// its text (any may be a name it was to bind), and whether it holds a
/// `return` (so that checking the rest of its kernel does not report their
/// absence).
fn broken_statement(src: &str, span: Span) -> (Vec<Ident>, bool) {
    let (start, end) = (span.start as usize, span.end as usize);
    let Some(text) = src.get(start..end) else {
        return (Vec::new(), false);
    };
    let tokens: Vec<(usize, Token, usize)> = Lexer::new(text).filter_map(Result::ok).collect();
    let mut names: Vec<Ident> = Vec::new();
    for (l, t, r) in &tokens {
        if let Token::Ident(name) = t
            && !names.iter().any(|n| n.name == *name)
        {
            names.push(Ident {
                name: name.clone(),
                span: Span::new(start + l, start + r),
            });
        }
    }
    let returns = tokens.iter().any(|(_, t, _)| *t == Token::Return);
    (names, returns)
}

fn describe_expected(expected: &[String]) -> String {
    let names: Vec<String> = expected
        .iter()
        .map(|e| {
            let t = e.trim_matches('"');
            match t {
                "ident" => "identifier".to_string(),
                "int" => "integer".to_string(),
                "float" => "float".to_string(),
                "dtype" => "dtype".to_string(),
                "string" => "string".to_string(),
                "invalid token" => String::new(),
                other => format!("`{}`", other.trim_matches('\\').replace("\\\"", "\"")),
            }
        })
        .filter(|s| !s.is_empty())
        .collect();
    // Long lists read better summarised: the tokens that start an
    // expression, and the binary operators.
    const EXPR_START: [&str; 10] = [
        "identifier",
        "integer",
        "float",
        "string",
        "dtype",
        "`true`",
        "`false`",
        "`(`",
        "`[`",
        "`-`",
    ];
    const OPERATORS: [&str; 11] = [
        "`+`", "`-`", "`*`", "`/`", "`@`", "`<`", "`<=`", "`>`", "`>=`", "`==`", "`!=`",
    ];
    let has = |set: &[&str]| set.iter().all(|t| names.iter().any(|n| n == t));
    let mut parts: Vec<String> = Vec::new();
    let mut rest: Vec<&String> = names.iter().collect();
    if has(&EXPR_START) {
        parts.push("an expression".to_string());
        rest.retain(|n| !EXPR_START.contains(&n.as_str()));
    }
    let ops: Vec<&str> = OPERATORS
        .iter()
        .copied()
        .filter(|o| names.iter().any(|n| n == o))
        .collect();
    if ops.len() >= 5 {
        rest.retain(|n| !OPERATORS.contains(&n.as_str()));
        parts.extend(rest.iter().map(|s| s.to_string()));
        parts.push("an operator".to_string());
    } else {
        parts.extend(rest.iter().map(|s| s.to_string()));
    }
    match parts.as_slice() {
        [] => "nothing more".to_string(),
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("one of {}, or {last}", init.join(", ")),
    }
}

fn syntax_error(e: ParseError<usize, Token, LexError>, last_end: usize) -> Option<Diagnostic> {
    match e {
        ParseError::UnrecognizedToken {
            token: (_, Token::Error, _),
            ..
        } => None,
        // A `}` the lexer put in (zero width, right after the last real
        // token) to close a body left open before the next kernel: the
        // statement there is unfinished.
        ParseError::UnrecognizedToken {
            token: (l, Token::RBrace, r),
            expected,
        } if l == r => Some(
            Diagnostic::new(
                Code::E0010,
                "the statement is unfinished where the next kernel starts",
            )
            .primary(
                Span::new(l, r),
                format!("expected {} here", describe_expected(&expected)),
            ),
        ),
        ParseError::UnrecognizedToken {
            token: (l, tok, r),
            expected,
        } => {
            let mut d = Diagnostic::new(Code::E0010, format!("unexpected {}", tok.describe()))
                .primary(
                    Span::new(l, r),
                    format!("expected {}", describe_expected(&expected)),
                );
            if matches!(
                tok,
                Token::Lt | Token::Le | Token::Gt | Token::Ge | Token::EqEq | Token::Ne
            ) {
                d = d.help("comparisons do not chain: compare two values at a time");
            }
            Some(d)
        }
        ParseError::UnrecognizedEof { expected, .. } => Some(
            Diagnostic::new(Code::E0011, "unexpected end of file").primary(
                Span::new(last_end, last_end),
                format!("expected {} after this", describe_expected(&expected)),
            ),
        ),
        ParseError::ExtraToken { token: (l, tok, r) } => Some(
            Diagnostic::new(Code::E0010, format!("unexpected {}", tok.describe()))
                .primary(Span::new(l, r), "expected nothing more"),
        ),
        ParseError::InvalidToken { location } => Some(
            Diagnostic::new(Code::E0001, "invalid token")
                .primary(Span::new(location, location + 1), ""),
        ),
        ParseError::User { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(src: &str) -> Vec<String> {
        parse(src).1.into_iter().map(|d| d.code).collect()
    }

    #[test]
    fn parses_the_spec_example() {
        let src = "kernel mlp(x: f16[M, K], w: f16[K, N], b: f32[N]) -> f16[M, N] {
    let acc = x @ w;
    return cast(gelu(acc + b), f16);
}
kernel stats(x: f32[M, N]) -> (mean: f32[M], rstd: f32[M]) {
    let mu = mean(x, axis = 1);
    return (mu, rsqrt(mean(x * x, axis = 1) + 1e-5));
}";
        let (file, diags) = parse(src);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(file.kernels.len(), 2);
        assert_eq!(file.kernels[1].results.len(), 2);
    }

    #[test]
    fn recovers_and_reports_every_statement_error() {
        let src = "kernel k(x: f32[4]) -> f32[4] {
    let a = x + ;
    let b = x $ x;
    let c = (x;
    return x;
}";
        assert_eq!(codes(src), vec!["E0010", "E0001", "E0010"]);
    }

    #[test]
    fn comparisons_do_not_chain() {
        let (_, d) = parse("kernel k(x: f32[4]) -> bool[4] { return x < x < x; }");
        assert_eq!(d.len(), 1);
        assert!(d[0].help.as_deref().unwrap_or("").contains("do not chain"));
    }

    #[test]
    fn eof_is_reported_after_the_last_token() {
        let src = "kernel k(x: f32[4]) -> f32[4] { return x; ";
        let (_, d) = parse(src);
        assert_eq!(d[0].code, "E0011");
        assert_eq!(d[0].primary_span(), Some(Span::new(41, 41)));
    }

    #[test]
    fn deep_nesting_is_one_error_and_no_overflow() {
        let deep = format!(
            "kernel k(x: f32[4]) -> f32[4] {{ return {}x{}; }}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        assert_eq!(codes(&deep), vec!["E0012"]);
        let long = format!(
            "kernel k(x: f32[4]) -> f32[4] {{ return x{}; }}",
            " + x".repeat(20000)
        );
        assert_eq!(codes(&long), vec!["E0012"]);
        // The bound is exact: 256 operators (or parentheses) nest 256
        // levels, one more is too many.
        for (n, want) in [(256, 0), (257, 1)] {
            let chain = format!(
                "kernel k(x: f32[4]) -> f32[4] {{ return x{}; }}",
                " + x".repeat(n)
            );
            assert_eq!(codes(&chain).len(), want, "{n} operators");
            let parens = format!(
                "kernel k(x: f32[4]) -> f32[4] {{ return {}x{}; }}",
                "(".repeat(n),
                ")".repeat(n)
            );
            assert_eq!(codes(&parens).len(), want, "{n} parentheses");
        }
        // A flat chain is told as one: it does not look nested to its author.
        let (_, d) = parse(&long);
        assert!(
            d[0].notes.iter().any(|n| n.contains("chain")),
            "{:?}",
            d[0].notes
        );
        let (_, d) = parse(&deep);
        assert!(d[0].notes.is_empty(), "{:?}", d[0].notes);
    }

    #[test]
    fn a_body_left_open_is_closed_at_the_next_kernel() {
        let src = "kernel a(x: f32[N]) -> f32[N] {\n    return x;\n\nkernel b(x: f32[N]) -> f32[N] {\n    return q;\n}\n";
        let (file, d) = parse(src);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].message, "this `{` is never closed");
        assert_eq!(d[0].primary_span(), Some(Span::new(30, 31)));
        let names: Vec<&str> = file.kernels.iter().map(|k| k.name.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // With the statement unfinished too, the closing brace the lexer adds
        // is not quoted back; the missing `;` is reported after `x`.
        let (file, d) = parse(&src.replace("return x;", "return x"));
        assert!(d.iter().all(|d| !d.message.contains("`}`")), "{d:?}");
        let unfinished: Vec<_> = d
            .iter()
            .filter(|d| d.message.contains("unfinished"))
            .collect();
        assert_eq!(unfinished.len(), 1, "{d:?}");
        assert_eq!(unfinished[0].primary_span(), Some(Span::new(44, 44)));
        assert!(file.kernels.iter().any(|k| k.name.name == "b"));
        // `kernel` misused as a name inside a body is no next kernel: the
        // body's brace is closed, and the error is the misuse.
        let (_, d) =
            parse("kernel a(x: f32[N]) -> f32[N] {\n    let kernel = x;\n    return x;\n}\n");
        assert!(
            d.iter().all(|d| !d.message.contains("never closed")),
            "{d:?}"
        );
        assert_eq!(
            d[0].message,
            "`kernel` is a keyword; it cannot name a value"
        );
        assert_eq!(d.len(), 1, "{d:?}");
    }
}
