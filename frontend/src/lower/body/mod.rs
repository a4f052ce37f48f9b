//! Lowering kernel bodies: expressions, operators and weak literals here;
//! statements in `stmts.rs`; calls in `calls.rs` (inlined kernels, argument binding),
//! builtins in `builtin_calls.rs` with their argument decoding in
//! `args.rs`.
//!
//! Values are [`Val`]s: an IR value, a *weak* literal (folded at compile time
//! until it meets a tensor, whose dtype it then takes), or a poisoned value
//! whose error is already reported (every later check on it is skipped, so
//! one mistake gives one diagnostic).

mod args;
mod builtin_calls;
mod calls;
mod stmts;

use super::builtins::{Builtin, ParamSpec, suggest};
use super::{Context, resolve_type};
use crate::ast::{Arg, BinOp, Expr, ExprKind, Ident, KernelDef, Stmt};
use std::collections::HashMap;
use tessera_ir::op::{TypeError, matmul_result_dtype, scalar_fits};
use tessera_ir::{
    BinaryOp, Code, CompareOp, DType, Diagnostic, Dim, Kernel, Node, Op, ReduceOp, Scalar, Shape,
    Span, TensorType, UnaryOp, Value,
};

/// How deep kernel calls may nest.
const MAX_INLINE_DEPTH: usize = 64;
/// How many IR nodes inlining may create.
const MAX_NODES: usize = 1_000_000;

/// Where an error folding literals is: in literal arithmetic.
const CONSTANT: &str = "in this constant expression";

/// A compile-time literal value.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum Weak {
    Int(i64),
    /// An integer-literal expression whose value in floats differs from its
    /// value in integers: somewhere a division did not come out even
    /// (`1 / 2`). It takes the dtype of the tensor it meets (language.md),
    /// so a float tensor gets `real` (`x * (1 / 2)` halves `x`) and an
    /// integer one `int` (integer `/` truncates). `int` is `None` where the
    /// integer arithmetic failed (a divisor that truncates to 0, an
    /// overflow): an error only if an integer dtype takes it.
    Ratio {
        int: Option<i64>,
        real: f64,
    },
    Float(f64),
    Bool(bool),
}

impl Weak {
    fn describe(self) -> String {
        match self {
            Weak::Int(i) => format!("integer literal `{i}`"),
            Weak::Ratio { real, .. } => format!("integer constant expression (`{real}` in floats)"),
            Weak::Float(x) => format!("float literal `{x:?}`"),
            Weak::Bool(b) => format!("`{b}`"),
        }
    }

    /// [`Weak::describe`] as `dtype` reads it: an integer dtype takes an
    /// integer constant expression's integer reading (`7 / 2 * 100` is 300
    /// in an i8, 350 in floats).
    fn describe_as(self, dtype: DType) -> String {
        match self {
            Weak::Ratio { int: Some(i), .. } if dtype.is_int() => {
                format!("integer constant expression (`{i}` in integers)")
            }
            w => w.describe(),
        }
    }

    fn default_dtype(self) -> DType {
        match self {
            Weak::Int(_) | Weak::Ratio { .. } => DType::I32,
            Weak::Float(_) => DType::F32,
            Weak::Bool(_) => DType::Bool,
        }
    }

    /// An integer literal expression's values in integers and in floats.
    fn integer_parts(self) -> Option<(Option<i64>, f64)> {
        match self {
            Weak::Int(i) => Some((Some(i), i as f64)),
            Weak::Ratio { int, real } => Some((int, real)),
            Weak::Float(_) | Weak::Bool(_) => None,
        }
    }

    /// An integer literal expression from its values in integers and in
    /// floats: an `Int` where they agree.
    fn from_parts(int: Option<i64>, real: f64) -> Weak {
        match int {
            Some(i) if i as f64 == real => Weak::Int(i),
            _ => Weak::Ratio { int, real },
        }
    }

    /// The value where an integer is wanted (an axis, a dim): a `Ratio` as
    /// its integer value.
    pub(super) fn integral(self) -> Weak {
        match self {
            Weak::Ratio { int: Some(i), .. } => Weak::Int(i),
            w => w,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Weak::Int(i) => i as f64,
            Weak::Ratio { real, .. } => real,
            Weak::Float(x) => x,
            Weak::Bool(b) => f64::from(u8::from(b)),
        }
    }
}

/// A value during lowering.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum Val {
    T(Value),
    Weak(Weak),
    /// `select(c, a, b)` of two literals: a tensor of `c`'s shape whose
    /// dtype is still open, as a literal's is (language.md: a literal
    /// argument of an elementwise builtin takes the dtype of the tensor it
    /// meets). `h_f16 * select(m, 1.0, 0.0)` is f16.
    Sel(Sel),
    Err,
}

/// An open `select` of two literals (see [`Val::Sel`]).
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) struct Sel {
    /// The condition (bool).
    c: Value,
    a: Weak,
    b: Weak,
    /// The select's span, then its three arguments'.
    span: Span,
    args: [Span; 3],
}

impl Sel {
    /// The dtype it takes when it meets no tensor: a float if either literal
    /// is one (numpy's `where(c, 1, 2.5)` is a float array), else the first
    /// literal's.
    pub(super) fn default_dtype(&self) -> DType {
        match (self.a, self.b) {
            (Weak::Float(_), _) | (_, Weak::Float(_)) => DType::F32,
            (a, _) => a.default_dtype(),
        }
    }
}

/// A `slice` bound: an integer, or a symbolic dim of the kernel's signature
/// that is not bound yet (its value is checked once it is).
#[derive(Clone, Debug, PartialEq)]
enum Bound {
    Int(i64),
    Dim(Dim),
}

/// A dim in a dim-list argument.
enum DimArg {
    D(Dim),
    Infer(Span),
}

/// Lowers statements and expressions of one kernel instance into a kernel
/// under construction (the caller's, when inlining).
pub(super) struct Lowerer<'c, 'a> {
    cx: &'c Context<'a>,
    k: &'c mut Kernel,
    dims: HashMap<String, Dim>,
    scope: HashMap<String, (Val, Span)>,
    diags: &'c mut Vec<Diagnostic>,
    /// Call sites of the inlined bodies we are in, outermost first.
    calls: Vec<(Span, String)>,
    /// Kernel calls already inlined, by callee and argument values: kernels
    /// are pure, so a repeated call is its first call's result (a call tree
    /// `g(a) + g(a)` stays linear in size).
    memo: HashMap<(usize, Vec<Value>), Vec<Value>>,
}

impl<'c, 'a> Lowerer<'c, 'a> {
    pub(super) fn new(
        cx: &'c Context<'a>,
        k: &'c mut Kernel,
        dims: HashMap<String, Dim>,
        diags: &'c mut Vec<Diagnostic>,
    ) -> Lowerer<'c, 'a> {
        Lowerer {
            cx,
            k,
            dims,
            scope: HashMap::new(),
            diags,
            calls: Vec::new(),
            memo: HashMap::new(),
        }
    }

    /// Reports a diagnostic; inside inlined calls, the innermost call sites
    /// are labelled (at most three, then a note counts the rest).
    fn report(&mut self, mut d: Diagnostic) {
        const SHOWN: usize = 3;
        for (span, callee) in self.calls.iter().rev().take(SHOWN) {
            d = d.secondary(*span, format!("in this call to `{callee}`"));
        }
        if self.calls.len() > SHOWN {
            d = d.note(format!(
                "inlined through {} more calls",
                self.calls.len() - SHOWN
            ));
        }
        self.diags.push(d);
    }

    fn ty(&self, v: Value) -> &TensorType {
        self.k.ty(v)
    }

    // ----- expressions -------------------------------------------------

    /// An expression's value, an open `select` of literals given its
    /// default dtype.
    pub(super) fn eval(&mut self, e: &Expr) -> Val {
        let v = self.eval_open(e);
        self.settle(v)
    }

    /// An expression's value, which may be an open `select` of literals
    /// ([`Val::Sel`]): for the places where its dtype can still come from
    /// what it meets.
    pub(super) fn eval_open(&mut self, e: &Expr) -> Val {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.eval_inner(e))
    }

    /// An open `select` of literals as a tensor of its default dtype; any
    /// other value as it is.
    fn settle(&mut self, v: Val) -> Val {
        match v {
            Val::Sel(s) => self.tensor(v, None, s.span).map_or(Val::Err, Val::T),
            v => v,
        }
    }

    fn eval_inner(&mut self, e: &Expr) -> Val {
        match &e.kind {
            ExprKind::Int(n) => match i64::try_from(*n) {
                Ok(i) => Val::Weak(Weak::Int(i)),
                Err(_) => {
                    self.report(
                        Diagnostic::new(Code::E0303, format!("integer literal {n} is too large"))
                            .primary(e.span, "does not fit in i64"),
                    );
                    Val::Err
                }
            },
            ExprKind::Float(x) => Val::Weak(Weak::Float(*x)),
            ExprKind::Bool(b) => Val::Weak(Weak::Bool(*b)),
            ExprKind::Str(_) => self.not_a_value(
                e.span,
                "a string",
                "strings only name options, as in `gelu(x, approximate = \"tanh\")`",
            ),
            ExprKind::DType(d) => self.not_a_value(
                e.span,
                &format!("dtype `{d}`"),
                "dtype names are arguments of `cast`, `zeros` and `full`",
            ),
            ExprKind::List(_) => self.not_a_value(
                e.span,
                "a list",
                "lists are arguments of shape builtins, such as `reshape(x, [M, 1])`",
            ),
            ExprKind::Name(n) => self.eval_name(n, e.span),
            ExprKind::Neg(x) => {
                let v = self.eval_open(x);
                self.unary(UnaryOp::Neg, v, e.span, x.span)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let a = self.eval_open(lhs);
                let b = self.eval_open(rhs);
                self.binop(*op, a, b, (e.span, *op_span), lhs.span, rhs.span)
            }
            ExprKind::Call { callee, args } => self.call(callee, args, e.span),
            ExprKind::Error => Val::Err,
        }
    }

    fn not_a_value(&mut self, span: Span, what: &str, help: &str) -> Val {
        self.report(
            Diagnostic::new(Code::E0203, format!("{what} is not a tensor value"))
                .primary(span, "expected a tensor here")
                .help(help.to_string()),
        );
        Val::Err
    }

    fn eval_name(&mut self, name: &str, span: Span) -> Val {
        if let Some((v, _)) = self.scope.get(name) {
            return *v;
        }
        let mut d = Diagnostic::new(Code::E0100, format!("unknown name `{name}`"))
            .primary(span, "not found in this kernel");
        if self.dims.contains_key(name) {
            d = d.help(format!(
                "`{name}` is a symbolic dim; dims are not tensor values"
            ));
        } else if let Some(s) = suggest(name, self.scope.keys().map(String::as_str)) {
            d = d.help(format!("a value with a similar name exists: `{s}`"));
        }
        self.report(d);
        Val::Err
    }

    /// Pushes a node; a type error becomes a diagnostic at `span`, with the
    /// operands' types as labels.
    fn push(&mut self, op: Op, args: &[(Value, Span)], span: Span) -> Val {
        self.push_at(op, args, (span, span))
    }

    /// [`Self::push`] with the node's span and the span its errors point at
    /// (the operator of a binary expression) given apart.
    fn push_at(&mut self, op: Op, args: &[(Value, Span)], (span, at): (Span, Span)) -> Val {
        if self.k.nodes.len() >= MAX_NODES {
            if self.k.nodes.len() == MAX_NODES {
                self.report(
                    Diagnostic::new(
                        Code::E0109,
                        format!("kernel expands to more than {MAX_NODES} IR nodes"),
                    )
                    .primary(span, "inlining stops here"),
                );
                // Mark the limit as reported.
                self.k.nodes.push(Node {
                    op: Op::Full {
                        value: Scalar::Bool(false),
                        ty: TensorType::scalar(DType::Bool),
                    },
                    args: Vec::new(),
                    ty: TensorType::scalar(DType::Bool),
                    span: None,
                    group: None,
                });
            }
            return Val::Err;
        }
        let left = self.cx.nodes_left.get();
        if left == 0 {
            if !self.cx.file_limit_reported.replace(true) {
                self.report(
                    Diagnostic::new(
                        Code::E0109,
                        format!(
                            "the file's kernels expand to more than {} IR nodes in all",
                            self.cx.node_budget
                        ),
                    )
                    .primary(span, "inlining stops here")
                    .note("each kernel is checked with its calls inlined; split the file, or call large kernels from fewer places"),
                );
            }
            return Val::Err;
        }
        self.cx.nodes_left.set(left - 1);
        let values: Vec<Value> = args.iter().map(|(v, _)| *v).collect();
        match self.k.push(op.clone(), values, Some(span)) {
            Ok(v) => Val::T(v),
            Err(e) => {
                self.type_error(&op, e, at, args);
                Val::Err
            }
        }
    }

    fn type_error(&mut self, op: &Op, e: TypeError, span: Span, args: &[(Value, Span)]) {
        let primary = match &e {
            TypeError::DTypeMismatch { .. } => "mismatched dtypes".to_string(),
            TypeError::Unsupported { dtype, .. } => format!("not defined for {dtype}"),
            TypeError::Broadcast { .. } => "shapes do not broadcast".to_string(),
            TypeError::MatMulInner { .. }
            | TypeError::MatMulBatch { .. }
            | TypeError::MatMulRank { .. } => "invalid matmul".to_string(),
            TypeError::TooLarge { .. } => "too many elements".to_string(),
            _ => "here".to_string(),
        };
        let mut d = Diagnostic::new(e.code(), e.to_string()).primary(span, primary);
        let show_operands = matches!(
            e,
            TypeError::DTypeMismatch { .. }
                | TypeError::Broadcast { .. }
                | TypeError::MatMulInner { .. }
                | TypeError::MatMulBatch { .. }
                | TypeError::MatMulRank { .. }
                | TypeError::Condition { .. }
        );
        if show_operands && args.len() > 1 {
            for (v, s) in args {
                if *s != span {
                    let t = self.ty(*v).clone();
                    d = d.secondary(*s, format!("this is {t}"));
                }
            }
        }
        match &e {
            TypeError::DTypeMismatch { lhs, rhs } => {
                d = d.help(format!(
                    "Tessera never converts implicitly: insert a cast, e.g. `cast(…, {lhs})` or `cast(…, {rhs})`"
                ));
            }
            TypeError::Unsupported { accepts, .. }
                if *accepts == tessera_ir::op::Accepts::Float =>
            {
                d = d.help(format!(
                    "`{}` needs a float operand: `cast` it to f32 first",
                    op.name()
                ));
            }
            _ => {}
        }
        self.report(d);
    }

    /// Turns a weak literal into a rank-0 constant of `dtype`.
    fn materialize(&mut self, w: Weak, dtype: DType, span: Span) -> Val {
        let value = match (w, dtype) {
            (Weak::Bool(b), DType::Bool) => Scalar::Bool(b),
            (Weak::Int(i), d) if d.is_int() => Scalar::Int(i),
            (Weak::Int(i), d) if d.is_float() => Scalar::Float(d.round_float(i as f64)),
            (Weak::Ratio { int: Some(i), .. }, d) if d.is_int() => Scalar::Int(i),
            (Weak::Ratio { real, .. }, d) if d.is_float() => Scalar::Float(d.round_float(real)),
            (Weak::Ratio { int: None, .. }, d) if d.is_int() => {
                self.report(
                    Diagnostic::new(
                        Code::E0303,
                        format!("this constant expression has no value in {d}"),
                    )
                    .primary(span, format!("meets {} {d} tensor", article(d)))
                    .note("in integers, its arithmetic divides by zero or overflows (integer `/` truncates)"),
                );
                return Val::Err;
            }
            (Weak::Float(x), d) if d.is_float() => Scalar::Float(d.round_float(x)),
            (Weak::Float(x), d) if d.is_int() => {
                self.report(
                    Diagnostic::new(
                        Code::E0303,
                        format!("float literal `{x:?}` cannot become {d}"),
                    )
                    .primary(span, format!("meets {} {d} tensor", article(d)))
                    .help(format!(
                        "write an integer, or `cast` the {d} tensor to a float dtype"
                    )),
                );
                return Val::Err;
            }
            (w, d) => {
                self.report(
                    Diagnostic::new(
                        Code::E0300,
                        format!("{} cannot meet {} {d} tensor", w.describe(), article(d)),
                    )
                    .primary(span, format!("the other operand is {d}"))
                    .help("Tessera never converts implicitly: use `cast`"),
                );
                return Val::Err;
            }
        };
        let fits = match value {
            Scalar::Float(x) => x.is_finite() || !w.as_f64().is_finite(),
            other => scalar_fits(other, dtype),
        };
        if !fits {
            let range = match dtype.int_range() {
                Some((lo, hi)) => format!("{lo}..={hi}"),
                None => format!("±{}", dtype.float_max().unwrap_or(0.0)),
            };
            self.report(
                Diagnostic::new(
                    Code::E0303,
                    format!("{} does not fit {dtype}", w.describe_as(dtype)),
                )
                .primary(span, format!("{dtype} holds {range}")),
            );
            return Val::Err;
        }
        self.push(
            Op::Full {
                value,
                ty: TensorType::scalar(dtype),
            },
            &[],
            span,
        )
    }

    /// A tensor operand: weak literals and open selects of them take
    /// `like`'s dtype (or their default).
    fn tensor(&mut self, v: Val, like: Option<DType>, span: Span) -> Option<Value> {
        match v {
            Val::T(t) => Some(t),
            Val::Weak(w) => match self.materialize(w, like.unwrap_or(w.default_dtype()), span) {
                Val::T(t) => Some(t),
                _ => None,
            },
            Val::Sel(s) => {
                let d = like.unwrap_or(s.default_dtype());
                let [sc, sa, sb] = s.args;
                let (Val::T(a), Val::T(b)) =
                    (self.materialize(s.a, d, sa), self.materialize(s.b, d, sb))
                else {
                    return None;
                };
                match self.push(Op::Select, &[(s.c, sc), (a, sa), (b, sb)], s.span) {
                    Val::T(t) => Some(t),
                    _ => None,
                }
            }
            Val::Err => None,
        }
    }

    /// A value that meets a declared dtype (an annotation, a result type):
    /// weak literals and open selects take it; anything else is unchanged.
    fn meet(&mut self, v: Val, dtype: DType, span: Span) -> Val {
        match v {
            Val::Weak(w) => self.materialize(w, dtype, span),
            Val::Sel(_) => self.tensor(v, Some(dtype), span).map_or(Val::Err, Val::T),
            other => other,
        }
    }

    fn dtype_of(&self, v: Val) -> Option<DType> {
        match v {
            Val::T(t) => Some(self.ty(t).dtype),
            _ => None,
        }
    }

    fn unary(&mut self, u: UnaryOp, v: Val, span: Span, arg_span: Span) -> Val {
        match v {
            Val::Err => Val::Err,
            Val::Sel(s) => {
                let a = self.unary(u, Val::Weak(s.a), span, arg_span);
                let b = self.unary(u, Val::Weak(s.b), span, arg_span);
                match (a, b) {
                    (Val::Weak(a), Val::Weak(b)) => Val::Sel(Sel { a, b, span, ..s }),
                    _ => Val::Err,
                }
            }
            Val::Weak(w) => match (w, u.eval_int(0).is_some()) {
                (Weak::Bool(_), _) => {
                    self.report(
                        Diagnostic::new(
                            Code::E0301,
                            format!("`{}` does not accept bool", u.name()),
                        )
                        .primary(span, "not defined for bool"),
                    );
                    Val::Err
                }
                (Weak::Int(i), true) => match u {
                    UnaryOp::Neg => i
                        .checked_neg()
                        .map_or(Val::Err, |n| Val::Weak(Weak::Int(n))),
                    _ => Val::Weak(Weak::Int(u.eval_int(i).unwrap_or(i))),
                },
                (Weak::Ratio { int, real }, true) => {
                    let int = int.and_then(|i| match u {
                        UnaryOp::Neg => i.checked_neg(),
                        _ => u.eval_int(i),
                    });
                    Val::Weak(Weak::from_parts(int, u.eval_float(real)))
                }
                (w, _) => Val::Weak(Weak::Float(u.eval_float(w.as_f64()))),
            },
            Val::T(t) => self.push(Op::Unary(u), &[(t, arg_span)], span),
        }
    }

    fn binop(&mut self, op: BinOp, a: Val, b: Val, span: (Span, Span), sa: Span, sb: Span) -> Val {
        if op == BinOp::MatMul {
            return self.matmul(a, b, span, sa, sb);
        }
        let kind = match op {
            BinOp::Add => Ok(BinaryOp::Add),
            BinOp::Sub => Ok(BinaryOp::Sub),
            BinOp::Mul => Ok(BinaryOp::Mul),
            BinOp::Div => Ok(BinaryOp::Div),
            BinOp::Lt => Err(CompareOp::Lt),
            BinOp::Le => Err(CompareOp::Le),
            BinOp::Gt => Err(CompareOp::Gt),
            BinOp::Ge => Err(CompareOp::Ge),
            BinOp::Eq => Err(CompareOp::Eq),
            BinOp::Ne => Err(CompareOp::Ne),
            BinOp::MatMul => return Val::Err,
        };
        match kind {
            Ok(b_op) => self.elementwise2(Op::Binary(b_op), a, b, span, sa, sb),
            Err(c) => self.elementwise2(Op::Compare(c), a, b, span, sa, sb),
        }
    }

    /// A two-operand elementwise op (`Binary` or `Compare`).
    fn elementwise2(
        &mut self,
        op: Op,
        a: Val,
        b: Val,
        span: (Span, Span),
        sa: Span,
        sb: Span,
    ) -> Val {
        match (a, b) {
            (Val::Err, _) | (_, Val::Err) => Val::Err,
            (Val::Weak(x), Val::Weak(y)) => self.fold2(&op, x, y, (span.0, CONSTANT)),
            // An open select meeting a literal (or one of the same
            // condition) stays open: the op folds into each branch.
            (Val::Sel(s), Val::Weak(y)) => {
                let (a, b) = self.fold_branches(&op, (s.a, y), (s.b, y), span.0);
                self.reopen(s, a, b, span.0)
            }
            (Val::Weak(x), Val::Sel(s)) => {
                let (a, b) = self.fold_branches(&op, (x, s.a), (x, s.b), span.0);
                self.reopen(s, a, b, span.0)
            }
            (Val::Sel(s), Val::Sel(t)) if s.c == t.c => {
                let (a, b) = self.fold_branches(&op, (s.a, t.a), (s.b, t.b), span.0);
                self.reopen(s, a, b, span.0)
            }
            _ => {
                let like = self.dtype_of(a).or(self.dtype_of(b));
                let (Some(ta), Some(tb)) = (self.tensor(a, like, sa), self.tensor(b, like, sb))
                else {
                    return Val::Err;
                };
                self.push_at(op, &[(ta, sa), (tb, sb)], span)
            }
        }
    }

    /// Folds an op into both branches of an open select.
    fn fold_branches(
        &mut self,
        op: &Op,
        a: (Weak, Weak),
        b: (Weak, Weak),
        span: Span,
    ) -> (Val, Val) {
        let at = (
            span,
            "in this arithmetic on a `select` of literals (done per branch)",
        );
        (self.fold2(op, a.0, a.1, at), self.fold2(op, b.0, b.1, at))
    }

    /// An open select `s` whose branches became `a` and `b` (folded).
    fn reopen(&mut self, s: Sel, a: Val, b: Val, span: Span) -> Val {
        match (a, b) {
            (Val::Weak(a), Val::Weak(b)) => Val::Sel(Sel { a, b, span, ..s }),
            _ => Val::Err,
        }
    }

    /// Folds an op of two literals; `(span, label)` place its errors.
    fn fold2(&mut self, op: &Op, x: Weak, y: Weak, (span, label): (Span, &str)) -> Val {
        let bad = |s: &mut Self, msg: String| {
            s.report(Diagnostic::new(Code::E0301, msg).primary(span, label));
            Val::Err
        };
        match op {
            Op::Binary(b) => match (x, y) {
                (Weak::Bool(_), _) | (_, Weak::Bool(_)) => {
                    bad(self, format!("`{}` does not accept bool", b.surface()))
                }
                (x, y) => match (x.integer_parts(), y.integer_parts()) {
                    // Integer literal expressions: both readings, the
                    // integer one in checked i64 arithmetic.
                    (Some((i, xr)), Some((j, yr))) if *b != BinaryOp::Pow => {
                        if *b == BinaryOp::Div && yr == 0.0 {
                            self.report(
                                Diagnostic::new(Code::E0700, "integer division by zero")
                                    .primary(span, label),
                            );
                            return Val::Err;
                        }
                        let int = match i.zip(j) {
                            // No integer reading: a divisor that only
                            // truncates to 0 (`1 / (1 / 2)`), or none before.
                            None => None,
                            Some((_, 0)) if *b == BinaryOp::Div => None,
                            Some((i, j)) => {
                                let v = match b {
                                    BinaryOp::Add => i.checked_add(j),
                                    BinaryOp::Sub => i.checked_sub(j),
                                    BinaryOp::Mul => i.checked_mul(j),
                                    BinaryOp::Div => i.checked_div(j),
                                    BinaryOp::Maximum => Some(i.max(j)),
                                    BinaryOp::Minimum => Some(i.min(j)),
                                    BinaryOp::Pow => None,
                                };
                                if v.is_none() {
                                    self.report(
                                        Diagnostic::new(
                                            Code::E0303,
                                            "constant arithmetic overflows i64",
                                        )
                                        .primary(span, "overflows"),
                                    );
                                    return Val::Err;
                                }
                                v
                            }
                        };
                        // Between two integer literals only a division
                        // can part the readings (integer `/` truncates).
                        let real = match int {
                            Some(v)
                                if *b != BinaryOp::Div
                                    && matches!((x, y), (Weak::Int(_), Weak::Int(_))) =>
                            {
                                v as f64
                            }
                            _ => b.eval_float(xr, yr),
                        };
                        Val::Weak(Weak::from_parts(int, real))
                    }
                    _ => Val::Weak(Weak::Float(b.eval_float(x.as_f64(), y.as_f64()))),
                },
            },
            Op::Compare(c) => match (x, y) {
                (Weak::Bool(p), Weak::Bool(q)) if matches!(c, CompareOp::Eq | CompareOp::Ne) => {
                    Val::Weak(Weak::Bool(c.eval(p, q)))
                }
                (Weak::Bool(_), _) | (_, Weak::Bool(_)) => {
                    bad(self, format!("`{}` does not accept bool", c.surface()))
                }
                // With no tensor to meet, an integer expression compares as
                // an integer (its default dtype is i32).
                (x, y) => match (x.integer_parts(), y.integer_parts()) {
                    (Some((Some(i), _)), Some((Some(j), _))) => Val::Weak(Weak::Bool(c.eval(i, j))),
                    _ => Val::Weak(Weak::Bool(c.eval(x.as_f64(), y.as_f64()))),
                },
            },
            _ => Val::Err,
        }
    }

    fn matmul(&mut self, a: Val, b: Val, (span, at): (Span, Span), sa: Span, sb: Span) -> Val {
        if a == Val::Err || b == Val::Err {
            return Val::Err;
        }
        let like = self.dtype_of(a).or(self.dtype_of(b));
        let (Some(ta), Some(tb)) = (self.tensor(a, like, sa), self.tensor(b, like, sb)) else {
            return Val::Err;
        };
        let (ra, rb) = (self.ty(ta).shape.rank(), self.ty(tb).shape.rank());
        if ra == 0 || rb == 0 {
            let (s, t) = if ra == 0 { (sa, ta) } else { (sb, tb) };
            let ty = self.ty(t).clone();
            self.report(
                Diagnostic::new(Code::E0401, format!("matmul operand {ty} is a scalar"))
                    .primary(at, "invalid matmul")
                    .secondary(s, "rank 0")
                    .help("use `*` to scale a tensor by a scalar"),
            );
            return Val::Err;
        }
        // numpy: a rank-1 left operand is a row, a rank-1 right operand a
        // column; the added dim is dropped from the result. Contracted dims
        // that differ are reported with the operands as written.
        if ra == 1 || rb == 1 {
            let (a, b) = (self.ty(ta).shape.clone(), self.ty(tb).shape.clone());
            let ka = &a.dims()[ra - 1];
            let kb = &b.dims()[rb.saturating_sub(2)];
            if let (Dim::Fixed(x), Dim::Fixed(y)) = (ka, kb)
                && x != y
            {
                let e = TypeError::MatMulInner { lhs: a, rhs: b };
                self.type_error(&Op::MatMul, e, at, &[(ta, sa), (tb, sb)]);
                return Val::Err;
            }
        }
        let mut xa = ta;
        if ra == 1 {
            let mut dims = vec![Dim::Fixed(1)];
            dims.extend(self.ty(ta).shape.dims().iter().cloned());
            xa = match self.push(Op::Reshape(Shape(dims)), &[(ta, sa)], sa) {
                Val::T(v) => v,
                _ => return Val::Err,
            };
        }
        let mut xb = tb;
        if rb == 1 {
            let mut dims: Vec<Dim> = self.ty(tb).shape.dims().to_vec();
            dims.push(Dim::Fixed(1));
            xb = match self.push(Op::Reshape(Shape(dims)), &[(tb, sb)], sb) {
                Val::T(v) => v,
                _ => return Val::Err,
            };
        }
        let Val::T(m) = self.push_at(Op::MatMul, &[(xa, sa), (xb, sb)], (span, at)) else {
            return Val::Err;
        };
        if ra > 1 && rb > 1 {
            return Val::T(m);
        }
        let mut dims: Vec<Dim> = self.ty(m).shape.dims().to_vec();
        let r = dims.len();
        if rb == 1 {
            dims.remove(r - 1);
        }
        if ra == 1 {
            dims.remove(r - 2);
        }
        let _ = matmul_result_dtype;
        self.push(Op::Reshape(Shape(dims)), &[(m, span)], span)
    }
}

fn node_index(v: Value) -> usize {
    match v {
        Value::Node(i) => i as usize,
        Value::Param(_) => usize::MAX,
    }
}

/// "a" or "an" before a dtype name.
fn article(d: DType) -> &'static str {
    if matches!(d, DType::I8 | DType::I32) {
        "an"
    } else {
        "a"
    }
}

/// Types match, treating unknown dims as matching any dim.
fn compatible(a: &TensorType, b: &TensorType) -> bool {
    a.dtype == b.dtype
        && a.shape.rank() == b.shape.rank()
        && a.shape
            .dims()
            .iter()
            .zip(b.shape.dims())
            .all(|(x, y)| x == y || *x == Dim::Unknown || *y == Dim::Unknown)
}
