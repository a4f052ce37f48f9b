//! Diagnostics shared by every stage: spans, error codes, and rustc-style
//! rendering.
//!
//! Errors are values: a stage returns [`Diagnostic`]s, the driver renders them
//! with [`render`]. The [`Code`] enum is the registry of stable error codes;
//! `docs/diagnostics.md` documents each one and a tidy test keeps the two in
//! step.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label as CsLabel};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config};
use std::fmt;

/// A byte range in a source file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets (saturating at `u32::MAX`).
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
        Span {
            start: clamp(start),
            end: clamp(end.max(start)),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// As a `usize` range.
    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Whether `other` lies inside `self`.
    pub fn contains(self, other: Span) -> bool {
        self.start <= other.start && other.end <= self.end
    }
}

macro_rules! codes {
    ($($name:ident => $summary:literal,)*) => {
        /// A stable error code. `docs/diagnostics.md` describes each.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(#[doc = $summary] $name,)*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            /// The code as printed: `E0400`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }

            /// A short description of the class of error.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$name => $summary,)*
                }
            }
        }
    };
}

codes! {
    E0001 => "unexpected character",
    E0002 => "unterminated block comment",
    E0003 => "invalid numeric literal",
    E0004 => "unterminated string literal",
    E0010 => "unexpected token",
    E0011 => "unexpected end of file",
    E0012 => "expression nested too deeply",
    E0100 => "unknown name",
    E0101 => "unknown function",
    E0102 => "duplicate kernel",
    E0103 => "duplicate parameter or result name",
    E0104 => "shadowed name",
    E0105 => "unknown symbolic dim",
    E0106 => "missing return",
    E0107 => "misplaced return",
    E0108 => "recursion",
    E0109 => "inlining too deep or too large",
    E0200 => "wrong number of arguments",
    E0201 => "unknown named argument",
    E0202 => "argument given twice or out of order",
    E0203 => "argument of the wrong kind",
    E0300 => "dtype mismatch",
    E0301 => "unsupported dtype",
    E0302 => "bool parameter",
    E0303 => "literal does not fit its dtype",
    E0304 => "return type mismatch",
    E0305 => "annotation mismatch",
    E0306 => "wrong number of values",
    E0400 => "shapes do not broadcast",
    E0401 => "matmul shape mismatch",
    E0402 => "bad axis",
    E0403 => "bad permutation",
    E0404 => "bad reshape",
    E0405 => "bad dim",
    E0406 => "bad slice",
    E0407 => "concat mismatch",
    E0408 => "bad broadcast_to",
    E0409 => "tensor too large",
    E0500 => "unbound symbolic dim",
    E0501 => "conflicting dim bindings",
    E0502 => "unknown or ambiguous kernel",
    E0503 => "tensor too large",
    E0504 => "operation cannot be mapped onto the machine",
    E0505 => "machine outside what the code generator supports",
    E0600 => "cannot read or write a file",
    E0601 => "malformed .npy file",
    E0602 => ".npy dtype mismatch",
    E0603 => ".npy shape mismatch",
    E0604 => "unsupported .npy layout",
    E0605 => "missing or unknown input",
    E0606 => "malformed command-line value",
    E0607 => "an output would overwrite an input or another output",
    E0608 => "malformed tuning file",
    E0700 => "integer division by zero",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A label on a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What to say there (may be empty).
    pub message: String,
    /// The primary label marks the offending span (`^^^`); secondary ones
    /// (`---`) give context.
    pub primary: bool,
}

/// An error report.
///
/// The code is a string so that every stage (including the simulator, which
/// does not depend on this crate) can report in one format; stages of this
/// crate and the frontend use [`Code`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code (`E0400`).
    pub code: String,
    /// One-line message.
    pub message: String,
    /// Spans, primary first.
    pub labels: Vec<Label>,
    /// Extra lines (`= note: …`).
    pub notes: Vec<String>,
    /// A suggestion (`= help: …`).
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a code and message, no span yet.
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic::with_code(code.as_str(), message)
    }

    /// A diagnostic with a code given as text (for codes of other crates).
    pub fn with_code(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code: code.to_string(),
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds the primary label.
    pub fn primary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Adds a secondary label.
    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The primary span, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error[{}]: {}", self.code, self.message)
    }
}

/// At most this many diagnostics are rendered; a count stands for the
/// rest (an error cascade is not worth reading).
pub const MAX_RENDERED: usize = 100;

/// Renders diagnostics rustc-style (at most [`MAX_RENDERED`]). `source` is
/// the text the spans point into (empty when there is none).
pub fn render(diags: &[Diagnostic], file_name: &str, source: &str, color: bool) -> String {
    // A byte-order mark is not shown, nor counted as a column: spans
    // (byte offsets into `source`) move back over its bytes.
    let bom = if source.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let shown_source = displayable(&source[bom..]);
    let file = SimpleFile::new(file_name, shown_source.as_str());
    let config = Config::default();
    let mut out = String::new();
    let (shown, rest) = diags.split_at(diags.len().min(MAX_RENDERED));
    for d in shown {
        let mut cs = CsDiagnostic::error()
            .with_code(d.code.clone())
            .with_message(clip(&d.message));
        let len = shown_source.len();
        let at = |offset: u32| (offset as usize).saturating_sub(bom).min(len);
        // A label on a line too long to print is given by its position in
        // a note instead (a one-line file of megabytes would be echoed whole).
        let (labels, long): (Vec<&Label>, Vec<&Label>) = d
            .labels
            .iter()
            .partition(|l| line_len(&shown_source, at(l.span.start)) <= MAX_SHOWN_LINE);
        let long_notes: Vec<String> = long
            .iter()
            .map(|l| {
                let (line, col) = line_col(&shown_source, at(l.span.start));
                format!(
                    "{} at {file_name}:{line}:{col}: {} (the line is {} bytes long; not shown)",
                    if l.primary { "error" } else { "see" },
                    clip(&l.message),
                    line_len(&shown_source, at(l.span.start))
                )
            })
            .collect();
        cs = cs.with_labels(
            labels
                .into_iter()
                .map(|l| {
                    let start = at(l.span.start);
                    let end = at(l.span.end).max(start);
                    let range = start..end;
                    let label = if l.primary {
                        CsLabel::primary((), range)
                    } else {
                        CsLabel::secondary((), range)
                    };
                    label.with_message(clip(&l.message))
                })
                .collect(),
        );
        let mut notes: Vec<String> = long_notes;
        notes.extend(d.notes.iter().map(|n| format!("note: {}", clip(n))));
        if let Some(h) = &d.help {
            notes.push(format!("help: {}", clip(h)));
        }
        cs = cs.with_notes(notes);
        let rendered = if color {
            let mut buf = term::termcolor::Buffer::ansi();
            match term::emit_to_write_style(&mut buf, &config, &file, &cs) {
                Ok(()) => String::from_utf8_lossy(buf.as_slice()).into_owned(),
                Err(_) => format!("{d}\n"),
            }
        } else {
            term::emit_into_string(&config, &file, &cs).unwrap_or_else(|_| format!("{d}\n"))
        };
        // A CRLF's `\r` shows as a space: no line ends in one.
        for line in rendered.split_inclusive('\n') {
            let text = line.strip_suffix('\n').unwrap_or(line);
            out.push_str(text.trim_end_matches(' '));
            if text.len() < line.len() {
                out.push('\n');
            }
        }
    }
    if !rest.is_empty() {
        out.push_str(&format!(
            "error: … and {} more error{} not shown (the first {MAX_RENDERED} are; fix those first)\n",
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

/// Lines longer than this (in bytes) are not printed in a snippet.
pub const MAX_SHOWN_LINE: usize = 1000;

/// The source as snippets print it, byte for byte as long, so every span
/// stays where it was: a lone `\r` (old Mac line ends) breaks the line, a
/// `\r` before `\n` and every other control character but the tab show as
/// a space, `?` or (for the two-byte C1 controls) `¿` (a NUL or an escape
/// byte would print raw or take no column, leaving the caret nowhere).
fn displayable(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => out.push(' '),
            '\r' => out.push('\n'),
            '\t' | '\n' => out.push(c),
            // One printable character of the control character's length:
            // offsets and columns both stay where they were.
            c if c.is_control() && c.len_utf8() == 1 => out.push('?'),
            c if c.is_control() => out.push('¿'),
            c => out.push(c),
        }
    }
    out
}

/// Message text of at most [`MAX_SHOWN_LINE`] bytes: a longer one (a
/// megabyte identifier quoted in "unknown name") is cut with `…`. Control
/// characters a message quotes from its input (an escape byte in an
/// assembler operand) show escaped, `\u{1b}`: the terminal gets none raw.
fn clip(text: &str) -> String {
    let text = &if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        text.chars()
            .map(|c| match c {
                '\n' | '\t' => c.to_string(),
                c if c.is_control() => c.escape_unicode().to_string(),
                c => c.to_string(),
            })
            .collect::<String>()
    } else {
        text.to_string()
    };
    if text.len() <= MAX_SHOWN_LINE {
        return text.to_string();
    }
    let mut end = MAX_SHOWN_LINE / 2;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// The length in bytes of the line holding byte `at`.
fn line_len(source: &str, at: usize) -> usize {
    let bytes = source.as_bytes();
    let start = bytes[..at]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let end = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |i| at + i);
    end - start
}

/// The 1-based line and column of a byte offset.
/// Lines end at `\n`, `\r\n` or a lone `\r`, as snippets show them.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(source).line_col(source, offset)
}

/// Where each line of a text starts, for many [`line_col`] lookups in one
/// text (each a binary search, not a scan from the start).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// The line starts of `source` (lines end as in [`line_col`]).
    pub fn new(source: &str) -> LineIndex {
        let bytes = source.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// The 1-based line and column (in characters) of a byte offset of the
    /// text the index was built from.
    pub fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(source.len());
        let line = self.starts.partition_point(|&s| s <= offset);
        let mut start = self.starts[line - 1];
        // A leading byte-order mark is no column (editors do not show it).
        if line == 1 && source.starts_with('\u{feff}') {
            start = '\u{feff}'.len_utf8().min(offset);
        }
        let col = String::from_utf8_lossy(&source.as_bytes()[start..offset])
            .chars()
            .count()
            + 1;
        (line, col)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message quoting an escape byte or a NUL from its input shows them
    /// escaped: no raw control byte reaches the terminal.
    #[test]
    fn control_characters_in_messages_show_escaped() {
        let src = "x\u{1b}[31m\n";
        let d = Diagnostic::new(Code::E0100, "unexpected character `\u{1b}` and `\0`")
            .primary(Span::new(1, 2), "here `\u{1b}`")
            .note("note `\u{7}`")
            .help("help\tstays");
        let text = render(&[d], "k.s", src, false);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t')),
            "{text:?}"
        );
        assert!(
            text.contains("unexpected character `\\u{1b}` and `\\u{0}`"),
            "{text}"
        );
        assert!(text.contains("here `\\u{1b}`"), "{text}");
        assert!(text.contains("note `\\u{7}`"), "{text}");
        assert!(text.contains("help\tstays"), "{text}");
    }

    #[test]
    fn renders_code_label_and_help() {
        let src = "let a = b + c;\n";
        let d = Diagnostic::new(Code::E0100, "unknown name `b`")
            .primary(Span::new(8, 9), "not found")
            .help("declare it first");
        let text = render(&[d], "k.tsr", src, false);
        assert!(text.contains("error[E0100]: unknown name `b`"), "{text}");
        assert!(text.contains("k.tsr:1:9"), "{text}");
        assert!(text.contains("^ not found"), "{text}");
        assert!(text.contains("= help: declare it first"), "{text}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
        // Old-Mac line ends break lines; a CRLF is one break.
        assert_eq!(line_col("ab\rcd", 4), (2, 2));
        assert_eq!(line_col("ab\r\ncd\r\nef", 9), (3, 2));
        // A leading byte-order mark is three bytes and no column.
        assert_eq!(line_col("\u{feff}ab\ncd", 4), (1, 2));
        assert_eq!(line_col("\u{feff}ab\ncd", 0), (1, 1));
        assert_eq!(line_col("\u{feff}ab\ncd", 7), (2, 2));
    }

    #[test]
    fn snippets_break_lone_carriage_returns_and_show_control_characters() {
        let d =
            |at: usize| Diagnostic::new(Code::E0100, "x").primary(Span::new(at, at + 1), "here");
        // Old-Mac line ends: the second line, and no raw `\r` in the output.
        let text = render(&[d(17)], "k.tsr", "kernel a() {\r    q;\r}\r", false);
        assert!(text.contains("k.tsr:2:5"), "{text}");
        assert!(text.contains("2 │     q;"), "{text}");
        assert!(!text.contains('\r'), "{text:?}");
        // A NUL shows as `?` with the caret under it, never raw.
        let text = render(&[d(3)], "k.tsr", "ab \0;\n", false);
        assert!(text.contains("ab ?;"), "{text}");
        assert!(text.contains("   ^ here"), "{text}");
        assert!(!text.contains('\0'), "{text:?}");
    }

    #[test]
    fn snippets_hide_byte_order_marks_and_crlf() {
        let d = Diagnostic::new(Code::E0100, "x").primary(Span::new(10, 11), "here");
        // The mark's three bytes are no column and not shown.
        let text = render(&[d], "k.tsr", "\u{feff}ab\r\ncd q;\r\n", false);
        assert!(text.contains("k.tsr:2:4"), "{text}");
        assert!(!text.contains('\u{feff}'), "{text:?}");
        let d = Diagnostic::new(Code::E0100, "x").primary(Span::new(7, 8), "here");
        let text = render(&[d], "k.tsr", "\u{feff}let q;\r\n", false);
        assert!(text.contains("k.tsr:1:5"), "{text}");
        assert!(text.contains("1 │ let q;\n"), "{text:?}");
        assert!(text.contains("  │     ^ here"), "{text}");
        // No line ends in the space a CRLF's `\r` shows as.
        assert!(text.lines().all(|l| !l.ends_with(' ')), "{text:?}");
    }

    #[test]
    fn a_line_too_long_to_print_is_located_not_echoed() {
        let name = "y".repeat(100_000);
        let src = format!("let a = {name};\n");
        let d = Diagnostic::new(Code::E0100, format!("unknown name `{name}`"))
            .primary(Span::new(8, 100_008), "not found");
        let text = render(&[d], "k.tsr", &src, false);
        assert!(text.len() < 2 * MAX_SHOWN_LINE, "{} bytes", text.len());
        assert!(text.contains("error at k.tsr:1:9: not found"), "{text}");
        assert!(text.contains("… (100015 bytes)"), "{text}");
    }
}
