//! The lexer: source text to tokens, with byte spans.
//!
//! [`Lexer`] adapts the logos token stream to the triples lalrpop consumes.
//! A lexical error becomes a diagnostic right here and reaches the parser as
//! [`Token::Error`], a terminal the grammar never expects: the parser then
//! recovers at the next `;` as for any syntax error, and the parse error it
//! reports for that token is dropped as a duplicate.

use logos::Logos;
use tessera_ir::{Code, DType, Diagnostic, Span};

/// What went wrong while lexing.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum LexError {
    /// A character that starts no token.
    #[default]
    UnexpectedChar,
    /// `/*` without its `*/`.
    UnterminatedComment,
    /// `"` without its closing `"` on the same line.
    UnterminatedString,
    /// A numeric literal that does not fit 64 bits.
    BadNumber,
    /// A number run on into letters, digits or dots (`0x10`, `1_000`, `1e`,
    /// `1f`, `1.5e3.2`): no literal of the language.
    MalformedNumber,
}

/// A number token must end where a literal can: a letter, `_`, a digit or a
/// `.` right after it (with a sign after an exponent mark) makes the whole
/// run one malformed literal rather than a number and a stray token.
fn ends_cleanly(lex: &mut logos::Lexer<'_, Token>) -> Result<(), LexError> {
    let rest = lex.remainder().as_bytes();
    let mut n = 0;
    let mut prev = lex.slice().as_bytes().last().copied().unwrap_or(b'0');
    while let Some(&c) = rest.get(n) {
        let sign = matches!(c, b'+' | b'-') && matches!(prev, b'e' | b'E') && n > 0;
        if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || sign) {
            break;
        }
        prev = c;
        n += 1;
    }
    if n == 0 {
        return Ok(());
    }
    lex.bump(n);
    Err(LexError::MalformedNumber)
}

fn int(lex: &mut logos::Lexer<'_, Token>) -> Result<u64, LexError> {
    ends_cleanly(lex)?;
    lex.slice().parse().map_err(|_| LexError::BadNumber)
}

fn float(lex: &mut logos::Lexer<'_, Token>) -> Result<f64, LexError> {
    ends_cleanly(lex)?;
    let v: f64 = lex.slice().parse().map_err(|_| LexError::BadNumber)?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(LexError::BadNumber)
    }
}

/// Skips a (possibly nested) block comment; the lexer stands after `/*`.
fn block_comment(lex: &mut logos::Lexer<'_, Token>) -> Result<logos::Skip, LexError> {
    let rest = lex.remainder().as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < rest.len() {
        if rest[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if rest[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                lex.bump(i);
                return Ok(logos::Skip);
            }
        } else {
            i += 1;
        }
    }
    lex.bump(rest.len());
    Err(LexError::UnterminatedComment)
}

/// Reads a string literal; the lexer stands after the opening `"`.
fn string(lex: &mut logos::Lexer<'_, Token>) -> Result<String, LexError> {
    let rest = lex.remainder();
    let mut out = String::new();
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                lex.bump(i + 1);
                return Ok(out);
            }
            '\n' => break,
            '\\' => match chars.next() {
                Some((_, e @ ('"' | '\\'))) => out.push(e),
                Some((_, '\n')) | None => break,
                Some((_, e)) => {
                    out.push('\\');
                    out.push(e);
                }
            },
            c => out.push(c),
        }
    }
    let line_end = rest.find('\n').unwrap_or(rest.len());
    lex.bump(line_end);
    Err(LexError::UnterminatedString)
}

/// A token.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(skip(r"//[^\r\n]*", allow_greedy = true))]
#[logos(error = LexError)]
pub enum Token {
    /// `kernel`
    #[token("kernel")]
    Kernel,
    /// `let`
    #[token("let")]
    Let,
    /// `return`
    #[token("return")]
    Return,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,
    /// A dtype name.
    #[token("f16", |_| DType::F16)]
    #[token("bf16", |_| DType::BF16)]
    #[token("f32", |_| DType::F32)]
    #[token("i8", |_| DType::I8)]
    #[token("i32", |_| DType::I32)]
    #[token("bool", |_| DType::Bool)]
    DType(DType),
    /// An identifier.
    #[regex("[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    /// An integer literal.
    #[regex("[0-9]+", int)]
    Int(u64),
    /// A float literal.
    #[regex(r"[0-9]+\.[0-9]*([eE][+-]?[0-9]+)?", float)]
    #[regex(r"\.[0-9]+([eE][+-]?[0-9]+)?", float)]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+", float)]
    Float(f64),
    /// A string literal (its contents).
    #[token("\"", string)]
    Str(String),
    /// `/* … */`, skipped.
    #[token("/*", block_comment)]
    BlockComment,
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `,`
    #[token(",")]
    Comma,
    /// `:`
    #[token(":")]
    Colon,
    /// `;`
    #[token(";")]
    Semi,
    /// `->`
    #[token("->")]
    Arrow,
    /// `=`
    #[token("=")]
    Assign,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
    /// `@`
    #[token("@")]
    At,
    /// `<`
    #[token("<")]
    Lt,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>`
    #[token(">")]
    Gt,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    Ne,
    /// A lexical error, already reported.
    Error,
}

impl Token {
    /// How the token reads in a message.
    pub fn describe(&self) -> String {
        match self {
            Token::Kernel => "`kernel`".into(),
            Token::Let => "`let`".into(),
            Token::Return => "`return`".into(),
            Token::True => "`true`".into(),
            Token::False => "`false`".into(),
            Token::DType(d) => format!("dtype `{d}`"),
            Token::Ident(s) => format!("identifier `{s}`"),
            Token::Int(n) => format!("integer `{n}`"),
            Token::Float(x) => format!("float `{x:?}`"),
            Token::Str(s) => format!("string \"{s}\""),
            Token::BlockComment => "a comment".into(),
            Token::Error => "an invalid token".into(),
            other => format!("`{}`", other.punct()),
        }
    }

    fn punct(&self) -> &'static str {
        match self {
            Token::LParen => "(",
            Token::RParen => ")",
            Token::LBracket => "[",
            Token::RBracket => "]",
            Token::LBrace => "{",
            Token::RBrace => "}",
            Token::Comma => ",",
            Token::Colon => ":",
            Token::Semi => ";",
            Token::Arrow => "->",
            Token::Assign => "=",
            Token::Plus => "+",
            Token::Minus => "-",
            Token::Star => "*",
            Token::Slash => "/",
            Token::At => "@",
            Token::Lt => "<",
            Token::Le => "<=",
            Token::Gt => ">",
            Token::Ge => ">=",
            Token::EqEq => "==",
            Token::Ne => "!=",
            _ => "?",
        }
    }
}

/// Tokens as lalrpop wants them, with lexical errors turned into
/// diagnostics and [`Token::Error`].
pub struct Lexer<'a> {
    inner: logos::SpannedIter<'a, Token>,
    src: &'a str,
    /// Lexical errors seen so far.
    pub diagnostics: Vec<Diagnostic>,
    /// Where the last token ended.
    pub last_end: usize,
    /// Where each `{` still open starts.
    open_braces: Vec<usize>,
    /// Tokens to give before reading on (the `}`s closing a body that the
    /// next `kernel` shows was left open, then that `kernel`).
    pending: std::collections::VecDeque<(usize, Token, usize)>,
    /// Whether the last token was `let`.
    after_let: bool,
    /// The spans of errors read past as if the text were right.
    pub recovered: Vec<Span>,
}

impl<'a> Lexer<'a> {
    /// A lexer over `src`.
    pub fn new(src: &'a str) -> Lexer<'a> {
        let mut inner = Token::lexer(src);
        // A byte-order mark opens many editors' UTF-8 files; it is not a token.
        if src.starts_with('\u{feff}') {
            inner.bump('\u{feff}'.len_utf8());
        }
        Lexer {
            inner: inner.spanned(),
            src,
            diagnostics: Vec::new(),
            last_end: 0,
            open_braces: Vec::new(),
            pending: std::collections::VecDeque::new(),
            after_let: false,
            recovered: Vec::new(),
        }
    }

    fn report(&mut self, e: LexError, start: usize, end: usize) {
        let d = match e {
            LexError::UnexpectedChar => {
                let c = self.src[start..].chars().next().unwrap_or('?');
                Diagnostic::new(
                    Code::E0001,
                    format!("unexpected character `{}`", c.escape_debug()),
                )
                .primary(
                    Span::new(start, start + c.len_utf8()),
                    "no token starts with this",
                )
            }
            LexError::UnterminatedComment => {
                Diagnostic::new(Code::E0002, "unterminated block comment")
                    .primary(Span::new(start, start + 2), "this comment is never closed")
                    .help("close it with `*/` (comments nest: each `/*` needs its own `*/`)")
            }
            LexError::UnterminatedString => {
                Diagnostic::new(Code::E0004, "unterminated string literal")
                    .primary(Span::new(start, end), "missing the closing `\"`")
            }
            LexError::BadNumber => Diagnostic::new(Code::E0003, "numeric literal out of range")
                .primary(Span::new(start, end), "this does not fit in 64 bits"),
            LexError::MalformedNumber => Diagnostic::new(
                Code::E0003,
                format!("malformed numeric literal `{}`", &self.src[start..end]),
            )
            .primary(Span::new(start, end), "not a literal of the language")
            .help("literals are decimal: an integer (`128`) or a float (`1.5`, `.5`, `1e-5`, `2.0E3`)"),
        };
        self.diagnostics.push(d);
    }
}

impl Lexer<'_> {
    /// Whether the next two tokens are a name and `(`, as after a `kernel`
    /// that starts a definition.
    fn kernel_header_follows(&self) -> bool {
        let mut ahead = self.inner.clone();
        matches!(
            (ahead.next(), ahead.next()),
            (Some((Ok(Token::Ident(_)), _)), Some((Ok(Token::LParen), _)))
        )
    }
}

impl Iterator for Lexer<'_> {
    type Item = Result<(usize, Token, usize), LexError>;

    /// The next token; a keyword or dtype between `let` and `=` (or `:`) is
    /// reported and read as the name it was meant to be, so that the
    /// statement (and the rest of the body) still parses: `let kernel = x;`
    /// is one error, not a cascade from a `kernel` taken for the next
    /// definition. Elsewhere (`let` alone on a line, then `return x;`) the
    /// keyword stays one.
    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_token();
        let after_let = std::mem::replace(
            &mut self.after_let,
            matches!(next, Some(Ok((_, Token::Let, _)))),
        );
        match next {
            Some(Ok((
                l,
                tok @ (Token::Kernel | Token::Let | Token::Return | Token::DType(_)),
                r,
            ))) if after_let && self.binding_follows() => {
                let what = if matches!(tok, Token::DType(_)) {
                    "a dtype"
                } else {
                    "a keyword"
                };
                self.recovered.push(Span::new(l, r));
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::E0010,
                        format!("`{}` is {what}; it cannot name a value", &self.src[l..r]),
                    )
                    .primary(Span::new(l, r), "expected a name")
                    .help("choose another name"),
                );
                Some(Ok((l, Token::Ident(self.src[l..r].to_string()), r)))
            }
            other => other,
        }
    }
}

impl Lexer<'_> {
    /// Whether the next token is `=` or `:`, as after the name of a `let`.
    fn binding_follows(&self) -> bool {
        let binds = |t: &Token| matches!(t, Token::Assign | Token::Colon);
        match self.pending.front() {
            Some((_, t, _)) => binds(t),
            None => matches!(self.inner.clone().next(), Some((Ok(t), _)) if binds(&t)),
        }
    }

    /// The next token, before the check of names after `let`.
    fn next_token(&mut self) -> Option<Result<(usize, Token, usize), LexError>> {
        if let Some(t) = self.pending.pop_front() {
            return Some(Ok(t));
        }
        let (tok, span) = self.inner.next()?;
        let prev_end = self.last_end;
        self.last_end = span.end;
        Some(match tok {
            Ok(Token::LBrace) => {
                self.open_braces.push(span.start);
                Ok((span.start, Token::LBrace, span.end))
            }
            Ok(Token::RBrace) => {
                self.open_braces.pop();
                Ok((span.start, Token::RBrace, span.end))
            }
            // `kernel NAME(` opens a definition and appears nowhere inside
            // one: a body still open here lacks its `}`. It is closed right
            // after the last token before it (where a missing `;` is then
            // reported), so the next kernel parses on its own; the `{` is
            // reported once.
            Ok(Token::Kernel) if !self.open_braces.is_empty() && self.kernel_header_follows() => {
                let open = self.open_braces[0];
                self.diagnostics.push(
                    Diagnostic::new(Code::E0010, "this `{` is never closed")
                        .primary(Span::new(open, open + 1), "unclosed `{`")
                        .secondary(
                            Span::new(span.start, span.end),
                            "the next kernel starts here",
                        )
                        .help("close the body with `}` before the next `kernel`"),
                );
                for _ in self.open_braces.drain(..) {
                    self.pending.push_back((prev_end, Token::RBrace, prev_end));
                }
                self.pending
                    .push_back((span.start, Token::Kernel, span.end));
                self.pending.pop_front().map(Ok)?
            }
            Ok(t) => Ok((span.start, t, span.end)),
            Err(e) => {
                self.report(e, span.start, span.end);
                Ok((span.start, Token::Error, span.end))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Token> {
        Lexer::new(src).map(|t| t.unwrap().1).collect()
    }

    #[test]
    fn keywords_dtypes_numbers() {
        assert_eq!(
            toks("let x: f16 = 1.5e-3 + 2;"),
            vec![
                Token::Let,
                Token::Ident("x".into()),
                Token::Colon,
                Token::DType(DType::F16),
                Token::Assign,
                Token::Float(1.5e-3),
                Token::Plus,
                Token::Int(2),
                Token::Semi
            ]
        );
        assert_eq!(
            toks("f16x bf16"),
            vec![Token::Ident("f16x".into()), Token::DType(DType::BF16)]
        );
        // numpy's and Python's spellings: `1.`, `.5`, `1.e3`.
        assert_eq!(
            toks("1. .5 1.e3 2.5E-1"),
            vec![
                Token::Float(1.0),
                Token::Float(0.5),
                Token::Float(1000.0),
                Token::Float(0.25)
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_opens_a_file_and_keeps_the_offsets() {
        let src = "\u{feff}let x";
        let mut lx = Lexer::new(src);
        let first = lx.next().and_then(Result::ok).expect("a token");
        assert_eq!(first, (3, Token::Let, 6));
        // Elsewhere it is an unexpected character, as any other.
        let mut lx = Lexer::new("let \u{feff}x");
        let _: Vec<_> = lx.by_ref().collect();
        assert_eq!(lx.diagnostics.len(), 1);
        assert_eq!(lx.diagnostics[0].code, "E0001");
    }

    #[test]
    fn comments_nest() {
        assert_eq!(
            toks("a /* x /* y */ z */ b // c"),
            vec![Token::Ident("a".into()), Token::Ident("b".into())]
        );
    }

    #[test]
    fn errors_become_tokens_and_diagnostics() {
        let mut lx = Lexer::new("a $ /* open");
        let t: Vec<Token> = lx.by_ref().map(|t| t.unwrap().1).collect();
        assert_eq!(
            t,
            vec![Token::Ident("a".into()), Token::Error, Token::Error]
        );
        let codes: Vec<&str> = lx.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, vec!["E0001", "E0002"]);
    }

    #[test]
    fn strings_and_big_numbers() {
        assert_eq!(toks(r#""tanh""#), vec![Token::Str("tanh".into())]);
        let mut lx = Lexer::new("99999999999999999999999 \"abc");
        let _ = lx.by_ref().count();
        let codes: Vec<&str> = lx.diagnostics.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, vec!["E0003", "E0004"]);
    }

    #[test]
    fn a_number_run_on_into_letters_or_dots_is_one_malformed_literal() {
        for bad in [
            "0x10", "1_000", "1e", "1e+", "1.e", "1f", "1ee5", "1.5e3.2", "1..2", ".5x",
        ] {
            let src = format!("a * {bad} ;");
            let mut lx = Lexer::new(&src);
            let t: Vec<Token> = lx.by_ref().map(|t| t.unwrap().1).collect();
            assert_eq!(
                t,
                vec![
                    Token::Ident("a".into()),
                    Token::Star,
                    Token::Error,
                    Token::Semi
                ],
                "{bad}"
            );
            assert_eq!(lx.diagnostics.len(), 1, "{bad}");
            let d = &lx.diagnostics[0];
            assert_eq!(d.code.as_str(), "E0003", "{bad}");
            assert!(
                d.message.contains(&format!("`{bad}`")),
                "{bad}: {}",
                d.message
            );
        }
        // The literal forms of language.md (and `.5`, `1.`) stay numbers, and
        // an operator right after a number ends it.
        assert_eq!(
            toks("1.e3 .5 1. 1e5 2E-3 2-3 4+x"),
            vec![
                Token::Float(1000.0),
                Token::Float(0.5),
                Token::Float(1.0),
                Token::Float(1e5),
                Token::Float(2e-3),
                Token::Int(2),
                Token::Minus,
                Token::Int(3),
                Token::Int(4),
                Token::Plus,
                Token::Ident("x".into()),
            ]
        );
    }
}
