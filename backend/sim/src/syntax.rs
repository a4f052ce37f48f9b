//! The text syntax the assembler, the instruction fields and the machine
//! loader share: constant expressions (`.equ` names, integer operators)
//! and source positions.

use std::collections::HashMap;
use std::fmt;

// ---------------------------------------------------------------------------
// Constant expressions.
// ---------------------------------------------------------------------------

/// Evaluates an integer constant expression: literals (`12`, `0x1f`, `0b101`,
/// `1_000`), `.equ` names, `+ - * / % << >> & | ^ ~`, parentheses.
pub fn eval_int(s: &str, consts: &HashMap<String, i64>) -> Result<i64, String> {
    let toks = lex_expr(s)?;
    if toks.is_empty() {
        return Err("expected an expression".into());
    }
    let mut p = ExprParser {
        toks: &toks,
        pos: 0,
        consts,
        depth: 0,
    };
    let v = p.bor()?;
    if p.pos != toks.len() {
        return Err(format!(
            "unexpected `{}` in expression `{}`",
            toks[p.pos],
            s.trim()
        ));
    }
    Ok(v)
}

/// Evaluates a scalar literal to 32 bits: with `float`, a float literal
/// (`1.5`, `-2e-3`, `inf`, `-inf`, `nan`, `nan(0xBITS)`) or an integer
/// expression converted to f32; otherwise an integer expression in
/// `-2^31..2^32`.
pub fn eval_scalar(s: &str, consts: &HashMap<String, i64>, float: bool) -> Result<u32, String> {
    let t = s.trim();
    // `nan(0xBITS)`: a NaN with these bits (sign and payload), as `disasm`
    // prints every NaN but the default one.
    if let Some(inner) = t.strip_prefix("nan(").and_then(|r| r.strip_suffix(')')) {
        if !float {
            return Err(format!(
                "`{t}` is a float literal but the instruction's type is an integer"
            ));
        }
        let hex = inner.trim();
        let bits = hex
            .strip_prefix("0x")
            .or_else(|| hex.strip_prefix("0X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("`{t}`: expected `nan(0x…)` with 32 bits in hex"))?;
        if !f32::from_bits(bits).is_nan() {
            return Err(format!(
                "`{t}`: {bits:#010x} is not a NaN (write the number itself)"
            ));
        }
        return Ok(bits);
    }
    let body = t.strip_prefix('-').unwrap_or(t);
    let looks_float = body == "inf"
        || body == "nan"
        || (!body.starts_with("0x")
            && !body.starts_with("0b")
            && body.starts_with(|c: char| c.is_ascii_digit())
            && body.contains(['.', 'e', 'E']));
    if looks_float {
        if !float {
            return Err(format!(
                "`{t}` is a float literal but the instruction's type is an integer"
            ));
        }
        let v: f64 = if body == "inf" || body == "nan" {
            let x = if body == "inf" {
                f64::INFINITY
            } else {
                f64::NAN
            };
            if t.starts_with('-') { -x } else { x }
        } else {
            t.parse()
                .map_err(|_| format!("malformed float literal `{t}`"))?
        };
        return Ok((v as f32).to_bits());
    }
    let v = eval_int(t, consts)?;
    if float {
        Ok((v as f32).to_bits())
    } else if (-(1i64 << 31)..(1i64 << 32)).contains(&v) {
        Ok(v as u32)
    } else {
        Err(format!("{v} does not fit in 32 bits"))
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(i64),
    /// `9223372036854775808` (2^63): only the operand of a negation, which
    /// makes `i64::MIN` (as `disasm` prints it).
    MinMagnitude,
    Name(String),
    Op(&'static str),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n}"),
            Tok::MinMagnitude => f.write_str("9223372036854775808"),
            Tok::Name(s) => f.write_str(s),
            Tok::Op(o) => f.write_str(o),
        }
    }
}

fn lex_expr(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let text: String = s[start..i].chars().filter(|&c| c != '_').collect();
            let v = if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                i64::from_str_radix(h, 16).or_else(|_| u64::from_str_radix(h, 16).map(|v| v as i64))
            } else if let Some(bits) = text.strip_prefix("0b").or_else(|| text.strip_prefix("0B")) {
                i64::from_str_radix(bits, 2)
            } else {
                text.parse::<i64>()
            };
            if v.is_err() && text.parse::<u64>() == Ok(1 << 63) {
                out.push(Tok::MinMagnitude);
                continue;
            }
            out.push(Tok::Num(v.map_err(|_| {
                format!("malformed integer literal `{}`", &s[start..i])
            })?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Name(s[start..i].to_string()));
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let op: &'static str = match (two, c) {
                ("<<", _) => "<<",
                (">>", _) => ">>",
                (_, b'+') => "+",
                (_, b'-') => "-",
                (_, b'*') => "*",
                (_, b'/') => "/",
                (_, b'%') => "%",
                (_, b'&') => "&",
                (_, b'|') => "|",
                (_, b'^') => "^",
                (_, b'~') => "~",
                (_, b'(') => "(",
                (_, b')') => ")",
                _ => {
                    let ch = s[i..].chars().next().unwrap_or('?');
                    return Err(format!("unexpected character `{ch}` in expression"));
                }
            };
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    Ok(out)
}

struct ExprParser<'a> {
    toks: &'a [Tok],
    pos: usize,
    consts: &'a HashMap<String, i64>,
    depth: usize,
}

impl ExprParser<'_> {
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.toks.get(self.pos), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn binary(
        &mut self,
        ops: &[&'static str],
        next: fn(&mut Self) -> Result<i64, String>,
    ) -> Result<i64, String> {
        let mut v = next(self)?;
        'outer: loop {
            for &op in ops {
                if self.eat(op) {
                    let r = next(self)?;
                    let ovf = || format!("overflow in `{v} {op} {r}`");
                    v = match op {
                        "|" => v | r,
                        "^" => v ^ r,
                        "&" => v & r,
                        "<<" => u32::try_from(r)
                            .ok()
                            .filter(|&r| r < 64)
                            .and_then(|r| v.checked_shl(r))
                            .ok_or_else(ovf)?,
                        ">>" => u32::try_from(r)
                            .ok()
                            .filter(|&r| r < 64)
                            .and_then(|r| v.checked_shr(r))
                            .ok_or_else(ovf)?,
                        "+" => v.checked_add(r).ok_or_else(ovf)?,
                        "-" => v.checked_sub(r).ok_or_else(ovf)?,
                        "*" => v.checked_mul(r).ok_or_else(ovf)?,
                        "/" => {
                            if r == 0 {
                                return Err("division by zero in expression".into());
                            }
                            v.checked_div(r).ok_or_else(ovf)?
                        }
                        _ => {
                            if r == 0 {
                                return Err("division by zero in expression".into());
                            }
                            v.checked_rem(r).ok_or_else(ovf)?
                        }
                    };
                    continue 'outer;
                }
            }
            return Ok(v);
        }
    }
    fn bor(&mut self) -> Result<i64, String> {
        self.binary(&["|"], Self::bxor)
    }
    fn bxor(&mut self) -> Result<i64, String> {
        self.binary(&["^"], Self::band)
    }
    fn band(&mut self) -> Result<i64, String> {
        self.binary(&["&"], Self::shift)
    }
    fn shift(&mut self) -> Result<i64, String> {
        self.binary(&["<<", ">>"], Self::add)
    }
    fn add(&mut self) -> Result<i64, String> {
        self.binary(&["+", "-"], Self::mul)
    }
    fn mul(&mut self) -> Result<i64, String> {
        self.binary(&["*", "/", "%"], Self::unary)
    }
    fn unary(&mut self) -> Result<i64, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("expression nested too deeply".into());
        }
        let v = if self.eat("-") {
            if self.toks.get(self.pos) == Some(&Tok::MinMagnitude) {
                self.pos += 1;
                self.depth -= 1;
                return Ok(i64::MIN);
            }
            self.unary()?.checked_neg().ok_or("overflow in negation")?
        } else if self.eat("+") {
            self.unary()?
        } else if self.eat("~") {
            !self.unary()?
        } else if self.eat("(") {
            let v = self.bor()?;
            if !self.eat(")") {
                return Err("expected `)`".into());
            }
            v
        } else {
            match self.toks.get(self.pos) {
                Some(Tok::Num(n)) => {
                    self.pos += 1;
                    *n
                }
                Some(Tok::Name(name)) => {
                    self.pos += 1;
                    *self.consts.get(name).ok_or_else(|| {
                        format!("unknown constant `{name}` (define it with `.equ {name}, VALUE`)")
                    })?
                }
                Some(Tok::MinMagnitude) => {
                    return Err(
                        "integer literal `9223372036854775808` is out of range (it may only be negated)"
                            .into(),
                    );
                }
                Some(t) => return Err(format!("unexpected `{t}` in expression")),
                None => return Err("expression ends early".into()),
            }
        };
        self.depth -= 1;
        Ok(v)
    }
}

/// Where each line of a text starts, so that positions are found in
/// logarithmic time (a file with an error on every line stays linear).
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes `text`.
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { starts }
    }

    /// [`line_col`] of the indexed `text`.
    pub fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = String::from_utf8_lossy(&text.as_bytes()[start..offset])
            .chars()
            .count()
            + 1;
        (line, col)
    }
}

/// The 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_a_scan_at_every_offset() {
        for text in ["", "\n", "a\nbc\n\nd", "é\nü x\r\n  ;\n", "no newline"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 2 {
                assert_eq!(
                    index.line_col(text, offset),
                    line_col(text, offset),
                    "{text:?} at {offset}"
                );
            }
        }
    }
}
