//! The IR's text form: a printer and a parser that round-trip exactly
//! (`print(parse(print(k))) == print(k)`).
//!
//! ```text
//! kernel softmax_rows(%x: f32[4, 8]) -> (out0: f32[4, 8]) {
//!   %0 = max %x axes=[1] : f32[4]
//!   %1 = reshape %0 : f32[4, 1]
//!   %2 = sub %x, %1 : f32[4, 8]
//!   return %2
//! }
//! ```
//!
//! Parameters print as `%name`, nodes as `%index`. Every node line ends with
//! its result type; attributes that the result type already says (the target
//! of `cast`, `reshape`, `broadcast_to`, the type of `full`) are not repeated.
//! `//` comments are allowed in parsed text. Source spans are not part of the
//! text form. A node the optimiser fused ends with `group=N`: the nodes of
//! one group are a contiguous run, planned as one stage.

use crate::graph::{Kernel, Module, Node, Output, Param, Value};
use crate::op::{BinaryOp, CompareOp, Op, ReduceOp, Scalar, UnaryOp, infer};
use crate::types::{DType, Dim, Shape, TensorType};
use std::fmt::Write;

/// Prints a module: its kernels separated by blank lines.
pub fn print_module(m: &Module) -> String {
    let mut out = String::new();
    for (i, k) in m.kernels.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&print_kernel(k));
    }
    out
}

fn value_name(k: &Kernel, v: Value) -> String {
    match v {
        Value::Param(i) => format!("%{}", k.params[i as usize].name),
        Value::Node(i) => format!("%{i}"),
    }
}

/// A constant as text: floats in the shortest form that reads back as the
/// same f32 (every f16/bf16/f32 value is an f32), so `1e-5` rather than its
/// f64 expansion.
fn scalar_text(v: Scalar) -> String {
    match v {
        Scalar::Float(x) if x.is_finite() => format!("{:?}", x as f32),
        other => other.to_string(),
    }
}

fn list(items: &[usize]) -> String {
    let v: Vec<String> = items.iter().map(usize::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// Prints one kernel.
pub fn print_kernel(k: &Kernel) -> String {
    let mut out = String::new();
    let params: Vec<String> = k
        .params
        .iter()
        .map(|p| format!("%{}: {}", p.name, p.ty))
        .collect();
    let results: Vec<String> = k
        .outputs
        .iter()
        .map(|o| format!("{}: {}", o.name, k.ty(o.value)))
        .collect();
    let _ = writeln!(
        out,
        "kernel {}({}) -> ({}) {{",
        k.name,
        params.join(", "),
        results.join(", ")
    );
    for (i, n) in k.nodes.iter().enumerate() {
        let args: Vec<String> = n.args.iter().map(|&a| value_name(k, a)).collect();
        let mut line = format!("  %{i} = {}", n.op.name());
        if let Op::Full { value, .. } = &n.op {
            let _ = write!(line, " {}", scalar_text(*value));
        }
        if !args.is_empty() {
            let _ = write!(line, " {}", args.join(", "));
        }
        match &n.op {
            Op::Reduce { axes, .. } => {
                let _ = write!(line, " axes={}", list(axes));
            }
            Op::Transpose(perm) => {
                let _ = write!(line, " perm={}", list(perm));
            }
            Op::Concat { axis } => {
                let _ = write!(line, " axis={axis}");
            }
            Op::Slice { axis, start, end } => {
                let _ = write!(line, " axis={axis} start={start} end={end}");
            }
            Op::Full { .. }
            | Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast(_)
            | Op::MatMul
            | Op::Reshape(_)
            | Op::BroadcastTo(_) => {}
        }
        if let Some(g) = n.group {
            let _ = write!(line, " group={g}");
        }
        let _ = writeln!(out, "{line} : {}", n.ty);
    }
    let rets: Vec<String> = k.outputs.iter().map(|o| value_name(k, o.value)).collect();
    let _ = writeln!(out, "  return {}", rets.join(", "));
    out.push_str("}\n");
    out
}

/// A parse error in IR text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Value(String),
    Number(String),
    Punct(&'static str),
    Eof,
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

const PUNCT: [&str; 11] = ["->", "(", ")", "[", "]", "{", "}", ",", ":", "=", "?"];

impl<'a> Lexer<'a> {
    fn skip_trivia(&mut self) {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn next(&mut self) -> Result<(usize, Tok), ParseError> {
        self.skip_trivia();
        let start = self.pos;
        let rest = &self.src[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((start, Tok::Eof));
        };
        let word_len = |s: &str| {
            s.char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .map_or(s.len(), |(i, _)| i)
        };
        if c == '%' {
            let n = word_len(&rest[1..]);
            if n == 0 {
                return Err(self.error_at(start, "expected a value name after `%`"));
            }
            self.pos += 1 + n;
            return Ok((start, Tok::Value(rest[1..1 + n].to_string())));
        }
        if c.is_ascii_digit() || (c == '-' && !rest.starts_with("->")) {
            let mut end = 1;
            let bytes = rest.as_bytes();
            while end < bytes.len() {
                let b = bytes[end];
                let exp_sign = (b == b'-' || b == b'+') && matches!(bytes[end - 1], b'e' | b'E');
                if b.is_ascii_alphanumeric() || b == b'.' || exp_sign {
                    end += 1;
                } else {
                    break;
                }
            }
            self.pos += end;
            return Ok((start, Tok::Number(rest[..end].to_string())));
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let n = word_len(rest);
            self.pos += n;
            return Ok((start, Tok::Ident(rest[..n].to_string())));
        }
        for p in PUNCT {
            if rest.starts_with(p) {
                self.pos += p.len();
                return Ok((start, Tok::Punct(p)));
            }
        }
        Err(self.error_at(start, &format!("unexpected character `{c}`")))
    }

    fn error_at(&self, pos: usize, message: &str) -> ParseError {
        let (line, col) = crate::diag::line_col(self.src, pos);
        ParseError {
            line,
            col,
            message: message.to_string(),
        }
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    tok: Tok,
    at: usize,
}

/// Parses IR text into a module and verifies every kernel.
pub fn parse_module(src: &str) -> Result<Module, ParseError> {
    let mut p = Parser {
        lexer: Lexer { src, pos: 0 },
        tok: Tok::Eof,
        at: 0,
    };
    p.bump()?;
    let mut module = Module::default();
    while p.tok != Tok::Eof {
        module.kernels.push(p.kernel()?);
    }
    Ok(module)
}

impl Parser<'_> {
    fn bump(&mut self) -> Result<Tok, ParseError> {
        let (at, tok) = self.lexer.next()?;
        self.at = at;
        Ok(std::mem::replace(&mut self.tok, tok))
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        self.lexer.error_at(self.at, &message.into())
    }

    fn expect(&mut self, p: &'static str) -> Result<(), ParseError> {
        if self.tok == Tok::Punct(p) {
            self.bump()?;
            Ok(())
        } else {
            Err(self.error(format!("expected `{p}`, found {:?}", self.tok)))
        }
    }

    fn eat(&mut self, p: &'static str) -> Result<bool, ParseError> {
        if self.tok == Tok::Punct(p) {
            self.bump()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn ident(&mut self) -> Result<String, ParseError> {
        match self.bump()? {
            Tok::Ident(s) => Ok(s),
            other => Err(self.error(format!("expected a name, found {other:?}"))),
        }
    }

    fn keyword(&mut self, kw: &str) -> Result<(), ParseError> {
        match &self.tok {
            Tok::Ident(s) if s == kw => {
                self.bump()?;
                Ok(())
            }
            other => Err(self.error(format!("expected `{kw}`, found {other:?}"))),
        }
    }

    fn number(&mut self) -> Result<String, ParseError> {
        match self.bump()? {
            Tok::Number(s) => Ok(s),
            Tok::Ident(s) if s == "inf" || s == "nan" => Ok(s),
            other => Err(self.error(format!("expected a number, found {other:?}"))),
        }
    }

    fn uint(&mut self) -> Result<u64, ParseError> {
        let s = self.number()?;
        s.parse()
            .map_err(|_| self.error(format!("expected an unsigned integer, found `{s}`")))
    }

    fn usize_list(&mut self) -> Result<Vec<usize>, ParseError> {
        self.expect("[")?;
        let mut out = Vec::new();
        while !self.eat("]")? {
            if !out.is_empty() {
                self.expect(",")?;
            }
            out.push(usize::try_from(self.uint()?).map_err(|_| self.error("index too large"))?);
        }
        Ok(out)
    }

    fn ty(&mut self) -> Result<TensorType, ParseError> {
        let name = self.ident()?;
        let dtype =
            DType::from_name(&name).ok_or_else(|| self.error(format!("unknown dtype `{name}`")))?;
        self.expect("[")?;
        let mut dims = Vec::new();
        while !self.eat("]")? {
            if !dims.is_empty() {
                self.expect(",")?;
            }
            dims.push(match self.bump()? {
                Tok::Number(s) => Dim::Fixed(
                    s.parse()
                        .map_err(|_| self.error(format!("bad dim `{s}`")))?,
                ),
                Tok::Ident(s) => Dim::sym(&s),
                Tok::Punct("?") => Dim::Unknown,
                other => return Err(self.error(format!("expected a dim, found {other:?}"))),
            });
        }
        Ok(TensorType::new(dtype, Shape(dims)))
    }

    fn value(&mut self, names: &[(String, Value)]) -> Result<Value, ParseError> {
        match self.bump()? {
            Tok::Value(name) => names
                .iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| *v)
                .ok_or_else(|| self.error(format!("unknown value `%{name}`"))),
            other => Err(self.error(format!("expected a value, found {other:?}"))),
        }
    }

    fn kernel(&mut self) -> Result<Kernel, ParseError> {
        self.keyword("kernel")?;
        let mut k = Kernel::new(self.ident()?);
        let mut names: Vec<(String, Value)> = Vec::new();
        self.expect("(")?;
        while !self.eat(")")? {
            if !k.params.is_empty() {
                self.expect(",")?;
            }
            let Tok::Value(name) = self.bump()? else {
                return Err(self.error("expected a parameter `%name`"));
            };
            self.expect(":")?;
            let ty = self.ty()?;
            let v = Value::Param(k.params.len() as u32);
            k.params.push(Param {
                name: name.clone(),
                ty,
            });
            names.push((name, v));
        }
        self.expect("->")?;
        self.expect("(")?;
        let mut results: Vec<(String, TensorType)> = Vec::new();
        while !self.eat(")")? {
            if !results.is_empty() {
                self.expect(",")?;
            }
            let name = self.ident()?;
            self.expect(":")?;
            results.push((name, self.ty()?));
        }
        self.expect("{")?;
        loop {
            match self.tok.clone() {
                Tok::Ident(s) if s == "return" => {
                    self.bump()?;
                    break;
                }
                Tok::Value(name) => {
                    self.bump()?;
                    let expected = k.nodes.len().to_string();
                    if name != expected {
                        return Err(self.error(format!(
                            "nodes are numbered in order: expected `%{expected}`, found `%{name}`"
                        )));
                    }
                    self.expect("=")?;
                    let node = self.node(&k, &names)?;
                    k.nodes.push(node);
                    names.push((name, Value::Node((k.nodes.len() - 1) as u32)));
                }
                other => {
                    return Err(self.error(format!("expected a node or `return`, found {other:?}")));
                }
            }
        }
        for (i, (name, ty)) in results.iter().enumerate() {
            if i > 0 {
                self.expect(",")?;
            }
            let v = self.value(&names)?;
            if k.ty(v) != ty {
                return Err(self.error(format!(
                    "result `{name}` is declared {ty} but the returned value is {}",
                    k.ty(v)
                )));
            }
            k.outputs.push(Output {
                name: name.clone(),
                value: v,
            });
        }
        self.expect("}")?;
        Ok(k)
    }

    fn node(&mut self, k: &Kernel, names: &[(String, Value)]) -> Result<Node, ParseError> {
        let start = self.at;
        let op_name = self.ident()?;
        let full_value = if op_name == "full" {
            Some(self.number_or_bool()?)
        } else {
            None
        };
        let mut args = Vec::new();
        if matches!(self.tok, Tok::Value(_)) {
            args.push(self.value(names)?);
            while self.eat(",")? {
                args.push(self.value(names)?);
            }
        }
        let mut attrs: Vec<(String, AttrValue)> = Vec::new();
        while let Tok::Ident(name) = self.tok.clone() {
            self.bump()?;
            self.expect("=")?;
            let v = if self.tok == Tok::Punct("[") {
                AttrValue::List(self.usize_list()?)
            } else {
                AttrValue::Int(self.uint()?)
            };
            attrs.push((name, v));
        }
        self.expect(":")?;
        let ty = self.ty()?;
        let mut attr = |name: &str| -> Result<AttrValue, ParseError> {
            let at = attrs
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| self.error(format!("`{op_name}` needs the attribute `{name}`")))?;
            Ok(attrs.remove(at).1)
        };
        let op = match op_name.as_str() {
            "full" => {
                let text = full_value.unwrap_or_default();
                let value = parse_scalar(&text, ty.dtype)
                    .ok_or_else(|| self.error(format!("`{text}` is not a {} value", ty.dtype)))?;
                Op::Full {
                    value,
                    ty: ty.clone(),
                }
            }
            "select" => Op::Select,
            "cast" => Op::Cast(ty.dtype),
            "matmul" => Op::MatMul,
            "reshape" => Op::Reshape(ty.shape.clone()),
            "broadcast_to" => Op::BroadcastTo(ty.shape.clone()),
            "transpose" => Op::Transpose(attr("perm")?.list(self)?),
            "concat" => Op::Concat {
                axis: attr("axis")?.int(self)?,
            },
            "slice" => Op::Slice {
                axis: attr("axis")?.int(self)?,
                start: attr("start")?.int(self)? as u64,
                end: attr("end")?.int(self)? as u64,
            },
            name => {
                if let Some(u) = UnaryOp::from_name(name) {
                    Op::Unary(u)
                } else if let Some(b) = BinaryOp::from_name(name) {
                    Op::Binary(b)
                } else if let Some(c) = CompareOp::from_name(name) {
                    Op::Compare(c)
                } else if let Some(r) = ReduceOp::from_name(name) {
                    Op::Reduce {
                        op: r,
                        axes: attr("axes")?.list(self)?,
                    }
                } else {
                    return Err(self.error(format!("unknown op `{name}`")));
                }
            }
        };
        let group = match attrs.iter().position(|(n, _)| n == "group") {
            Some(at) => {
                let g = attrs.remove(at).1.int(self)?;
                Some(u32::try_from(g).map_err(|_| self.error("`group` is too large"))?)
            }
            None => None,
        };
        if let Some((name, _)) = attrs.first() {
            return Err(self.error(format!("unexpected attribute `{name}` on `{op_name}`")));
        }
        let tys: Vec<&TensorType> = args.iter().map(|&a| k.ty(a)).collect();
        let inferred = infer(&op, &tys)
            .map_err(|e| self.lexer.error_at(start, &format!("`{op_name}`: {e}")))?;
        if inferred != ty {
            return Err(self.lexer.error_at(
                start,
                &format!("`{op_name}` produces {inferred}, but the node says {ty}"),
            ));
        }
        Ok(Node {
            op,
            args,
            ty,
            span: None,
            group,
        })
    }

    fn number_or_bool(&mut self) -> Result<String, ParseError> {
        match &self.tok {
            Tok::Ident(s) if s == "true" || s == "false" => {
                let s = s.clone();
                self.bump()?;
                Ok(s)
            }
            _ => self.number(),
        }
    }
}

enum AttrValue {
    Int(u64),
    List(Vec<usize>),
}

impl AttrValue {
    fn int(self, p: &Parser<'_>) -> Result<usize, ParseError> {
        match self {
            AttrValue::Int(i) => usize::try_from(i).map_err(|_| p.error("attribute too large")),
            AttrValue::List(_) => Err(p.error("expected an integer attribute")),
        }
    }

    fn list(self, p: &Parser<'_>) -> Result<Vec<usize>, ParseError> {
        match self {
            AttrValue::List(l) => Ok(l),
            AttrValue::Int(_) => Err(p.error("expected a list attribute")),
        }
    }
}

fn parse_scalar(text: &str, dtype: DType) -> Option<Scalar> {
    match dtype {
        DType::Bool => match text {
            "true" => Some(Scalar::Bool(true)),
            "false" => Some(Scalar::Bool(false)),
            _ => None,
        },
        DType::I8 | DType::I32 => text.parse().ok().map(Scalar::Int),
        DType::F16 | DType::BF16 | DType::F32 => match text {
            "inf" => Some(Scalar::Float(f64::INFINITY)),
            "-inf" => Some(Scalar::Float(f64::NEG_INFINITY)),
            "nan" => Some(Scalar::Float(f64::NAN)),
            _ => text
                .parse::<f64>()
                .ok()
                .map(|x| Scalar::Float(dtype.round_float(x))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "kernel k(%x: f32[4, 8], %y: f16[M]) -> (out0: f32[4, 1], s: f16[M]) {
  %0 = max %x axes=[1] : f32[4]
  %1 = reshape %0 : f32[4, 1]
  %2 = full 0.5 : f32[]
  %3 = mul %1, %2 : f32[4, 1]
  %4 = slice %x axis=1 start=2 end=5 : f32[4, 3]
  %5 = full -inf : f16[]
  %6 = maximum %y, %5 : f16[M]
  return %3, %6
}
";

    #[test]
    fn round_trips_exactly() {
        let m = parse_module(SAMPLE).unwrap();
        assert_eq!(print_module(&m), SAMPLE);
    }

    #[test]
    fn rejects_type_errors_with_a_position() {
        let bad =
            "kernel k(%x: f32[4]) -> (out0: f32[5]) {\n  %0 = exp %x : f32[5]\n  return %0\n}\n";
        let e = parse_module(bad).unwrap_err();
        assert_eq!((e.line, e.col), (2, 8));
        assert!(e.message.contains("produces f32[4]"), "{e}");
    }

    #[test]
    fn parses_nan_and_bool_constants() {
        let src = "kernel k() -> (a: f32[], b: bool[2]) {\n  %0 = full nan : f32[]\n  %1 = full true : bool[2]\n  return %0, %1\n}\n";
        let m = parse_module(src).unwrap();
        assert_eq!(print_module(&m), src);
    }
}
