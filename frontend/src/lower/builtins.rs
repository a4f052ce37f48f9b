//! The language's builtins: their names and parameter lists.
//!
//! Elementwise and reduction builtins are found through the IR op table
//! (`tessera_ir::op`), so a new elementwise op needs no entry here; this file
//! lists only the builtins with their own argument shapes, and the parameter
//! list of each (`docs/language-notes.md`, "Builtin arguments").

use tessera_ir::{BinaryOp, ReduceOp, UnaryOp};

/// A builtin function of the language.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Builtin {
    /// An elementwise op of one operand (`exp`, `relu`, …).
    Unary(UnaryOp),
    /// `gelu(x, approximate = "none" | "tanh")`.
    Gelu,
    /// `maximum`, `minimum`, `pow`.
    Binary(BinaryOp),
    /// `select(c, a, b)`.
    Select,
    /// `cast(x, dtype)`.
    Cast,
    /// `sum`, `mean`, `max`, `min`.
    Reduce(ReduceOp),
    /// `reshape(x, shape)`.
    Reshape,
    /// `transpose(x, axes)`.
    Transpose,
    /// `broadcast_to(x, shape)`.
    BroadcastTo,
    /// `concat(tensors, axis)`.
    Concat,
    /// `slice(x, axis, start, end)`.
    Slice,
    /// `zeros(shape, dtype)`.
    Zeros,
    /// `full(shape, value, dtype)`.
    Full,
    /// `softmax(x, axis)`.
    Softmax,
    /// `log_softmax(x, axis)`.
    LogSoftmax,
    /// `layer_norm(x, g, b, eps)`.
    LayerNorm,
    /// `rms_norm(x, g, eps)`.
    RmsNorm,
}

/// A builtin's parameter.
#[derive(Copy, Clone, Debug)]
pub struct ParamSpec<'n> {
    /// Its name (for named arguments).
    pub name: &'n str,
    /// Whether it must be given.
    pub required: bool,
}

/// A required parameter (a promotable constant, so lists of them are `'static`).
macro_rules! req {
    ($n:literal) => {
        ParamSpec {
            name: $n,
            required: true,
        }
    };
}

/// An optional parameter.
macro_rules! opt {
    ($n:literal) => {
        ParamSpec {
            name: $n,
            required: false,
        }
    };
}

impl Builtin {
    /// Looks up a builtin by its source name.
    pub fn lookup(name: &str) -> Option<Builtin> {
        if let Some(u) = UnaryOp::from_name(name) {
            // `neg` is the `-` operator and `gelu_tanh` is `gelu`'s option.
            return match u {
                UnaryOp::Neg | UnaryOp::GeluTanh => None,
                UnaryOp::Gelu => Some(Builtin::Gelu),
                other => Some(Builtin::Unary(other)),
            };
        }
        if let Some(b) = BinaryOp::from_name(name) {
            return match b {
                BinaryOp::Maximum | BinaryOp::Minimum | BinaryOp::Pow => Some(Builtin::Binary(b)),
                // `+ - * /` are operators.
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => None,
            };
        }
        if let Some(r) = ReduceOp::from_name(name) {
            return Some(Builtin::Reduce(r));
        }
        Some(match name {
            "select" => Builtin::Select,
            "cast" => Builtin::Cast,
            "reshape" => Builtin::Reshape,
            "transpose" => Builtin::Transpose,
            "broadcast_to" => Builtin::BroadcastTo,
            "concat" => Builtin::Concat,
            "slice" => Builtin::Slice,
            "zeros" => Builtin::Zeros,
            "full" => Builtin::Full,
            "softmax" => Builtin::Softmax,
            "log_softmax" => Builtin::LogSoftmax,
            "layer_norm" => Builtin::LayerNorm,
            "rms_norm" => Builtin::RmsNorm,
            _ => return None,
        })
    }

    /// Every builtin name, for suggestions.
    pub fn names() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = UnaryOp::ALL
            .iter()
            .filter(|u| !matches!(u, UnaryOp::Neg | UnaryOp::GeluTanh))
            .map(|u| u.name())
            .collect();
        v.extend(["maximum", "minimum", "pow"]);
        v.extend(ReduceOp::ALL.iter().map(|r| r.name()));
        v.extend([
            "select",
            "cast",
            "reshape",
            "transpose",
            "broadcast_to",
            "concat",
            "slice",
            "zeros",
            "full",
            "softmax",
            "log_softmax",
            "layer_norm",
            "rms_norm",
        ]);
        v
    }

    /// The parameters, in positional order.
    pub fn params(self) -> &'static [ParamSpec<'static>] {
        match self {
            Builtin::Unary(_) => &[req!("x")],
            Builtin::Gelu => &[req!("x"), opt!("approximate")],
            Builtin::Binary(_) => &[req!("a"), req!("b")],
            Builtin::Select => &[req!("c"), req!("a"), req!("b")],
            Builtin::Cast => &[req!("x"), req!("dtype")],
            Builtin::Reduce(_) => &[req!("x"), opt!("axis"), opt!("keepdims")],
            Builtin::Reshape | Builtin::BroadcastTo => &[req!("x"), req!("shape")],
            Builtin::Transpose => &[req!("x"), opt!("axes")],
            Builtin::Concat => &[req!("tensors"), opt!("axis")],
            Builtin::Slice => &[req!("x"), opt!("axis"), opt!("start"), opt!("end")],
            Builtin::Zeros => &[req!("shape"), opt!("dtype")],
            Builtin::Full => &[req!("shape"), req!("value"), opt!("dtype")],
            Builtin::Softmax | Builtin::LogSoftmax => &[req!("x"), opt!("axis")],
            Builtin::LayerNorm => &[req!("x"), req!("g"), req!("b"), opt!("eps")],
            Builtin::RmsNorm => &[req!("x"), req!("g"), opt!("eps")],
        }
    }
}

/// Edits from `a` to `b`: insertions, deletions, substitutions and swaps
/// of two neighbours (`inptu` is one edit from `input`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i − 2, i − 1 and i of the table.
    let mut before: Vec<usize> = Vec::new();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

/// The closest candidate within a small edit distance.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = name.chars().count() / 3;
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_resolves() {
        for n in Builtin::names() {
            assert!(Builtin::lookup(n).is_some(), "{n}");
        }
        assert_eq!(Builtin::lookup("neg"), None);
        assert_eq!(Builtin::lookup("add"), None);
        assert_eq!(Builtin::lookup("gelu"), Some(Builtin::Gelu));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("sofmax", Builtin::names()), Some("softmax"));
        assert_eq!(suggest("qqqq", Builtin::names()), None);
        // A swap of neighbours is one edit.
        assert_eq!(edit_distance("inptu", "input"), 1);
        assert_eq!(edit_distance("abc", "ca"), 3);
        assert_eq!(suggest("inptu", ["input", "output"]), Some("input"));
    }
}
