//! Lowering kernel bodies: statements, expressions, weak literals, builtins
//! and inlined kernel calls.
//!
//! Values are [`Val`]s: an IR value, a *weak* literal (folded at compile time
//! until it meets a tensor, whose dtype it then takes), or a poisoned value
//! whose error is already reported (every later check on it is skipped, so
//! one mistake gives one diagnostic).

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

/// A compile-time literal value.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum Weak {
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Weak {
    fn describe(self) -> String {
        match self {
            Weak::Int(i) => format!("integer literal `{i}`"),
            Weak::Float(x) => format!("float literal `{x}`"),
            Weak::Bool(b) => format!("`{b}`"),
        }
    }

    fn default_dtype(self) -> DType {
        match self {
            Weak::Int(_) => DType::I32,
            Weak::Float(_) => DType::F32,
            Weak::Bool(_) => DType::Bool,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Weak::Int(i) => i as f64,
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
    Err,
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

    /// Lowers a kernel body with its parameters bound to `params` and checks
    /// the returned values against `results`. Returns the output values.
    pub(super) fn lower_kernel_body(
        &mut self,
        def: &KernelDef,
        params: &[(Ident, Value)],
        results: &[TensorType],
        call_span: Option<Span>,
    ) -> Option<Vec<Value>> {
        for (name, v) in params {
            self.scope
                .insert(name.name.clone(), (Val::T(*v), name.span));
        }
        let errors_before = self.diags.len();
        let mut returned: Option<(Vec<(Val, Span)>, Span)> = None;
        let last = def.body.len().saturating_sub(1);
        for (i, stmt) in def.body.iter().enumerate() {
            match stmt {
                Stmt::Let {
                    name,
                    ty,
                    value,
                    span,
                } => {
                    let mut v = self.eval(value);
                    if let Some(ann) = ty {
                        v = self.check_annotation(v, ann, value.span);
                    }
                    if let Some((_, prev)) = self.scope.get(&name.name) {
                        let prev = *prev;
                        self.report(
                            Diagnostic::new(
                                Code::E0104,
                                format!("`{}` is already defined", name.name),
                            )
                            .primary(name.span, "shadows an earlier definition")
                            .secondary(prev, "first defined here")
                            .help("names are immutable: choose a new name"),
                        );
                    }
                    let _ = span;
                    self.scope.insert(name.name.clone(), (v, name.span));
                }
                Stmt::Return { values, span } => {
                    let vals: Vec<(Val, Span)> =
                        values.iter().map(|e| (self.eval(e), e.span)).collect();
                    if returned.is_some() {
                        self.report(
                            Diagnostic::new(
                                Code::E0107,
                                "a kernel returns once; this is a second `return`",
                            )
                            .primary(*span, "second return"),
                        );
                    } else {
                        let later_return = def.body[i + 1..]
                            .iter()
                            .any(|s| matches!(s, Stmt::Return { .. }));
                        if i != last && !later_return {
                            let next = def.body[i + 1].span();
                            self.report(
                                Diagnostic::new(Code::E0107, "`return` must be the last statement")
                                    .primary(*span, "returns before the end of the kernel")
                                    .secondary(next, "this statement follows it"),
                            );
                        }
                        returned = Some((vals, *span));
                    }
                }
                Stmt::Error(_) => {}
            }
        }
        let Some((vals, ret_span)) = returned else {
            let d = Diagnostic::new(
                Code::E0106,
                format!("kernel `{}` has no `return`", def.name.name),
            )
            .primary(def.name.span, "this kernel never returns a value")
            .help("end the body with `return EXPR;`");
            if call_span.is_none() {
                self.report(d);
            }
            return None;
        };
        if vals.len() != results.len() {
            self.report(
                Diagnostic::new(
                    Code::E0306,
                    format!(
                        "kernel `{}` declares {} result{}, but `return` gives {}",
                        def.name.name,
                        results.len(),
                        if results.len() == 1 { "" } else { "s" },
                        vals.len()
                    ),
                )
                .primary(ret_span, "wrong number of values")
                .secondary(def.name.span, "kernel declared here"),
            );
            return None;
        }
        let mut out = Vec::with_capacity(vals.len());
        for (i, ((v, span), want)) in vals.into_iter().zip(results).enumerate() {
            let v = match v {
                Val::Weak(w) => self.materialize(w, want.dtype, span),
                other => other,
            };
            match v {
                Val::T(v) => {
                    let got = self.ty(v).clone();
                    if !compatible(&got, want) {
                        let mut d = Diagnostic::new(
                            Code::E0304,
                            format!("returned value {i} is {got}, but the kernel declares {want}"),
                        )
                        .primary(span, format!("this is {got}"))
                        .secondary(def.results[i].ty.span, format!("declared {want}"));
                        if got.shape == want.shape {
                            d = d.help(format!("convert it with `cast(…, {})`", want.dtype));
                        }
                        self.report(d);
                    } else {
                        out.push(v);
                    }
                }
                Val::Weak(_) | Val::Err => {}
            }
        }
        if self.diags.len() > errors_before || out.len() != results.len() {
            return None;
        }
        Some(out)
    }

    fn check_annotation(&mut self, v: Val, ann: &crate::ast::TypeExpr, span: Span) -> Val {
        let want = resolve_type(ann, &self.dims, Some(self.diags));
        let v = match v {
            Val::Weak(w) => self.materialize(w, want.dtype, span),
            other => other,
        };
        if let Val::T(t) = v {
            let got = self.ty(t).clone();
            if !compatible(&got, &want) {
                self.report(
                    Diagnostic::new(
                        Code::E0305,
                        format!("the value is {got}, but the annotation says {want}"),
                    )
                    .primary(span, format!("this is {got}"))
                    .secondary(ann.span, "annotation")
                    .help("an annotation checks the type; it never converts (use `cast`)"),
                );
                return Val::Err;
            }
        }
        v
    }

    // ----- expressions -------------------------------------------------

    pub(super) fn eval(&mut self, e: &Expr) -> Val {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.eval_inner(e))
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
                let v = self.eval(x);
                self.unary(UnaryOp::Neg, v, e.span, x.span)
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let a = self.eval(lhs);
                let b = self.eval(rhs);
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
                });
            }
            return Val::Err;
        }
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
            (Weak::Int(i), d) if d.is_float() => {
                Scalar::Float(tessera_ir::interp::round_float(d, i as f64))
            }
            (Weak::Float(x), d) if d.is_float() => {
                Scalar::Float(tessera_ir::interp::round_float(d, x))
            }
            (Weak::Float(x), d) if d.is_int() => {
                self.report(
                    Diagnostic::new(
                        Code::E0303,
                        format!("float literal `{x}` cannot become {d}"),
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
                        format!("{} cannot meet a {d} tensor", w.describe()),
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
                    format!("{} does not fit {dtype}", w.describe()),
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

    /// A tensor operand: weak literals take `like`'s dtype (or their default).
    fn tensor(&mut self, v: Val, like: Option<DType>, span: Span) -> Option<Value> {
        match v {
            Val::T(t) => Some(t),
            Val::Weak(w) => match self.materialize(w, like.unwrap_or(w.default_dtype()), span) {
                Val::T(t) => Some(t),
                _ => None,
            },
            Val::Err => None,
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
            (Val::Weak(x), Val::Weak(y)) => self.fold2(&op, x, y, span.0),
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

    /// Folds an op of two literals.
    fn fold2(&mut self, op: &Op, x: Weak, y: Weak, span: Span) -> Val {
        let bad = |s: &mut Self, msg: String| {
            s.report(
                Diagnostic::new(Code::E0301, msg).primary(span, "in this constant expression"),
            );
            Val::Err
        };
        match op {
            Op::Binary(b) => match (x, y) {
                (Weak::Bool(_), _) | (_, Weak::Bool(_)) => {
                    bad(self, format!("`{}` does not accept bool", b.surface()))
                }
                (Weak::Int(i), Weak::Int(j)) if *b != BinaryOp::Pow => {
                    let r = match b {
                        BinaryOp::Add => i.checked_add(j),
                        BinaryOp::Sub => i.checked_sub(j),
                        BinaryOp::Mul => i.checked_mul(j),
                        BinaryOp::Div => {
                            if j == 0 {
                                self.report(
                                    Diagnostic::new(Code::E0700, "integer division by zero")
                                        .primary(span, "in this constant expression"),
                                );
                                return Val::Err;
                            }
                            i.checked_div(j)
                        }
                        BinaryOp::Maximum => Some(i.max(j)),
                        BinaryOp::Minimum => Some(i.min(j)),
                        BinaryOp::Pow => None,
                    };
                    match r {
                        Some(v) => Val::Weak(Weak::Int(v)),
                        None => {
                            self.report(
                                Diagnostic::new(Code::E0303, "constant arithmetic overflows i64")
                                    .primary(span, "overflows"),
                            );
                            Val::Err
                        }
                    }
                }
                (x, y) => Val::Weak(Weak::Float(b.eval_float(x.as_f64(), y.as_f64()))),
            },
            Op::Compare(c) => match (x, y) {
                (Weak::Bool(p), Weak::Bool(q)) if matches!(c, CompareOp::Eq | CompareOp::Ne) => {
                    Val::Weak(Weak::Bool(c.eval(p, q)))
                }
                (Weak::Bool(_), _) | (_, Weak::Bool(_)) => {
                    bad(self, format!("`{}` does not accept bool", c.surface()))
                }
                (Weak::Int(i), Weak::Int(j)) => Val::Weak(Weak::Bool(c.eval(i, j))),
                (x, y) => Val::Weak(Weak::Bool(c.eval(x.as_f64(), y.as_f64()))),
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
        // column; the added dim is dropped from the result.
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

    // ----- calls ------------------------------------------------------

    fn call(&mut self, callee: &Ident, args: &[Arg], span: Span) -> Val {
        if let Some(&idx) = self.cx.index.get(callee.name.as_str()) {
            return self.call_kernel(idx, callee, args, span);
        }
        let Some(b) = Builtin::lookup(&callee.name) else {
            let kernels = self.cx.index.keys().copied();
            let names = Builtin::names();
            let mut d = Diagnostic::new(Code::E0101, format!("unknown function `{}`", callee.name))
                .primary(callee.span, "neither a builtin nor a kernel of this file");
            if let Some(s) = suggest(&callee.name, names.into_iter().chain(kernels)) {
                d = d.help(format!("did you mean `{s}`?"));
            }
            self.report(d);
            return Val::Err;
        };
        let Some(bound) = self.bind_args(&callee.name, b.params(), args, span) else {
            return Val::Err;
        };
        self.builtin(b, &bound, span)
    }

    /// Matches arguments to parameters: positional first, then named.
    fn bind_args<'e>(
        &mut self,
        callee: &str,
        params: &[ParamSpec<'_>],
        args: &'e [Arg],
        span: Span,
    ) -> Option<Vec<Option<&'e Expr>>> {
        let mut bound: Vec<Option<&Expr>> = vec![None; params.len()];
        let mut ok = true;
        let mut seen_named = false;
        let mut positional = 0;
        for a in args {
            match &a.name {
                None => {
                    if seen_named {
                        self.report(
                            Diagnostic::new(Code::E0202, "positional argument after a named one")
                                .primary(a.value.span, "move it before the named arguments"),
                        );
                        ok = false;
                        continue;
                    }
                    if positional >= params.len() {
                        self.report(
                            Diagnostic::new(
                                Code::E0200,
                                format!(
                                    "`{callee}` takes at most {} argument{}, {} given",
                                    params.len(),
                                    if params.len() == 1 { "" } else { "s" },
                                    args.len()
                                ),
                            )
                            .primary(a.value.span, "unexpected argument"),
                        );
                        ok = false;
                        break;
                    }
                    bound[positional] = Some(&a.value);
                    positional += 1;
                }
                Some(name) => {
                    seen_named = true;
                    match params.iter().position(|p| p.name == name.name) {
                        None => {
                            let mut d = Diagnostic::new(
                                Code::E0201,
                                format!("`{callee}` has no parameter named `{}`", name.name),
                            )
                            .primary(name.span, "unknown argument name");
                            let names: Vec<&str> = params.iter().map(|p| p.name).collect();
                            d = match suggest(&name.name, names.iter().copied()) {
                                Some(s) => d.help(format!("did you mean `{s}`?")),
                                None => d.note(format!("its parameters are: {}", names.join(", "))),
                            };
                            self.report(d);
                            ok = false;
                        }
                        Some(i) if bound[i].is_some() => {
                            self.report(
                                Diagnostic::new(
                                    Code::E0202,
                                    format!("argument `{}` is given twice", name.name),
                                )
                                .primary(name.span, "given again here"),
                            );
                            ok = false;
                        }
                        Some(i) => bound[i] = Some(&a.value),
                    }
                }
            }
        }
        if ok {
            for (p, b) in params.iter().zip(&bound) {
                if p.required && b.is_none() {
                    self.report(
                        Diagnostic::new(
                            Code::E0200,
                            format!("`{callee}` is missing its argument `{}`", p.name),
                        )
                        .primary(span, format!("`{}` is required", p.name)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(bound)
    }

    fn call_kernel(&mut self, idx: usize, callee: &Ident, args: &[Arg], span: Span) -> Val {
        let def = &self.cx.file.kernels[idx];
        // A callee that is recursive or has errors of its own is not inlined;
        // its call still has the declared result type, so that the caller is
        // checked too (only while checking: such a file never reaches code
        // generation).
        let opaque = self.cx.recursive.contains(&idx) || self.cx.broken.contains(&idx);
        if self.calls.len() >= MAX_INLINE_DEPTH {
            self.report(
                Diagnostic::new(
                    Code::E0109,
                    format!("kernel calls nested more than {MAX_INLINE_DEPTH} deep"),
                )
                .primary(span, "too deep"),
            );
            return Val::Err;
        }
        if def.results.len() != 1 {
            self.report(
                Diagnostic::new(
                    Code::E0306,
                    format!(
                        "kernel `{}` returns {} values; a call must produce one",
                        callee.name,
                        def.results.len()
                    ),
                )
                .primary(span, "used as a single value")
                .secondary(def.name.span, "declared here"),
            );
            return Val::Err;
        }
        let names: Vec<ParamSpec> = def
            .params
            .iter()
            .map(|p| ParamSpec {
                name: p.name.name.as_str(),
                required: true,
            })
            .collect();
        let Some(bound) = self.bind_args(&callee.name, &names, args, span) else {
            return Val::Err;
        };
        // Evaluate the arguments and unify the callee's dims with theirs.
        let mut dims: HashMap<String, Dim> = HashMap::new();
        let mut bound_at: HashMap<String, Span> = HashMap::new();
        let mut params: Vec<(Ident, Value)> = Vec::new();
        let mut ok = true;
        for (p, e) in def.params.iter().zip(&bound) {
            let Some(e) = e else { return Val::Err };
            let v = self.eval(e);
            let Some(t) = self.tensor(v, Some(p.ty.dtype), e.span) else {
                ok = false;
                continue;
            };
            let got = self.ty(t).clone();
            let want_text = p.ty.text();
            if got.dtype != p.ty.dtype {
                self.report(
                    Diagnostic::new(
                        Code::E0300,
                        format!(
                            "argument `{}` of `{}` must be {}, found {}",
                            p.name.name, callee.name, p.ty.dtype, got.dtype
                        ),
                    )
                    .primary(e.span, format!("this is {got}"))
                    .secondary(p.ty.span, format!("parameter declared {want_text}"))
                    .help(format!("convert it with `cast(…, {})`", p.ty.dtype)),
                );
                ok = false;
                continue;
            }
            if got.shape.rank() != p.ty.dims.len() {
                self.report(
                    Diagnostic::new(
                        Code::E0400,
                        format!(
                            "argument `{}` of `{}` must have shape {want_text}, found {got}",
                            p.name.name, callee.name
                        ),
                    )
                    .primary(e.span, format!("rank {}", got.shape.rank()))
                    .secondary(p.ty.span, format!("rank {}", p.ty.dims.len())),
                );
                ok = false;
                continue;
            }
            for (want, have) in p.ty.dims.iter().zip(got.shape.dims()) {
                match want {
                    crate::ast::DimExpr::Int(n, _) => {
                        if *have != Dim::Fixed(*n) && *have != Dim::Unknown {
                            self.report(
                                Diagnostic::new(
                                    Code::E0400,
                                    format!("argument `{}` of `{}` must have shape {want_text}, found {got}", p.name.name, callee.name),
                                )
                                .primary(e.span, format!("this is {got}"))
                                .secondary(p.ty.span, "parameter declared here"),
                            );
                            ok = false;
                            break;
                        }
                    }
                    crate::ast::DimExpr::Sym(s) => match dims.get(&s.name) {
                        None => {
                            dims.insert(s.name.clone(), have.clone());
                            bound_at.insert(s.name.clone(), e.span);
                        }
                        Some(prev)
                            if prev == have || *prev == Dim::Unknown || *have == Dim::Unknown => {}
                        Some(prev) => {
                            let first = bound_at.get(&s.name).copied().unwrap_or(span);
                            self.report(
                                Diagnostic::new(
                                    Code::E0501,
                                    format!(
                                        "dim `{}` of `{}` is bound to both {prev} and {have}",
                                        s.name, callee.name
                                    ),
                                )
                                .primary(e.span, format!("binds `{}` = {have}", s.name))
                                .secondary(first, format!("binds `{}` = {prev}", s.name)),
                            );
                            ok = false;
                            break;
                        }
                    },
                }
            }
            params.push((p.name.clone(), t));
        }
        if !ok {
            return Val::Err;
        }
        for (name, dspan) in super::signature_dims(def) {
            if !dims.contains_key(&name) {
                self.report(
                    Diagnostic::new(
                        Code::E0500,
                        format!(
                            "dim `{name}` of `{}` is not determined by its arguments",
                            callee.name
                        ),
                    )
                    .primary(span, "cannot infer the result's shape")
                    .secondary(dspan, "appears only in the result type"),
                );
                return Val::Err;
            }
        }
        let results: Vec<TensorType> = def
            .results
            .iter()
            .map(|r| resolve_type(&r.ty, &dims, None))
            .collect();
        if opaque {
            let ty = results[0].clone();
            let zero = match ty.dtype {
                DType::Bool => Scalar::Bool(false),
                d if d.is_int() => Scalar::Int(0),
                _ => Scalar::Float(0.0),
            };
            return self.push(Op::Full { value: zero, ty }, &[], span);
        }
        let mut inner = Lowerer {
            cx: self.cx,
            k: &mut *self.k,
            dims,
            scope: HashMap::new(),
            diags: &mut *self.diags,
            calls: self.calls.clone(),
        };
        inner.calls.push((span, callee.name.clone()));
        match inner.lower_kernel_body(def, &params, &results, Some(span)) {
            Some(out) => Val::T(out[0]),
            None => Val::Err,
        }
    }

    // ----- builtin arguments --------------------------------------------

    /// Folds a literal-only expression.
    fn const_weak(&mut self, e: &Expr) -> Option<Weak> {
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Neg(_)
            | ExprKind::Binary { .. } => {
                if is_literal_expr(e) {
                    match self.eval(e) {
                        Val::Weak(w) => Some(w),
                        _ => None,
                    }
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn expect_int(&mut self, e: &Expr, what: &str) -> Option<i64> {
        match self.const_weak(e) {
            Some(Weak::Int(i)) => Some(i),
            _ => {
                self.report(
                    Diagnostic::new(Code::E0203, format!("{what} must be an integer literal"))
                        .primary(e.span, "expected an integer"),
                );
                None
            }
        }
    }

    fn norm_axis(&mut self, a: i64, rank: usize, span: Span) -> Option<usize> {
        let r = rank as i64;
        if a < -r || a >= r {
            self.report(
                Diagnostic::new(
                    Code::E0402,
                    format!("axis {a} is out of range for a tensor of rank {rank}"),
                )
                .primary(
                    span,
                    if rank == 0 {
                        "a scalar has no axes".to_string()
                    } else {
                        format!("valid axes are {} to {}", -r, r - 1)
                    },
                ),
            );
            return None;
        }
        Some(if a < 0 { (a + r) as usize } else { a as usize })
    }

    /// `axis = A` or `axis = [A, B]`: normalised, distinct, sorted.
    fn axes(&mut self, e: &Expr, rank: usize) -> Option<Vec<usize>> {
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ => vec![e],
        };
        let mut out = Vec::new();
        for item in items {
            let a = self.expect_int(item, "an axis")?;
            let n = self.norm_axis(a, rank, item.span)?;
            if out.contains(&n) {
                self.report(
                    Diagnostic::new(Code::E0402, format!("axis {a} is repeated"))
                        .primary(item.span, "repeated axis"),
                );
                return None;
            }
            out.push(n);
        }
        out.sort_unstable();
        Some(out)
    }

    fn expect_bool(&mut self, e: &Expr, what: &str) -> Option<bool> {
        match &e.kind {
            ExprKind::Bool(b) => Some(*b),
            _ => {
                self.report(
                    Diagnostic::new(Code::E0203, format!("{what} must be `true` or `false`"))
                        .primary(e.span, "expected `true` or `false`"),
                );
                None
            }
        }
    }

    fn expect_dtype(&mut self, e: &Expr) -> Option<DType> {
        match &e.kind {
            ExprKind::DType(d) => Some(*d),
            _ => {
                self.report(
                    Diagnostic::new(Code::E0203, "expected a dtype name")
                        .primary(e.span, "expected one of f16, bf16, f32, i8, i32, bool"),
                );
                None
            }
        }
    }

    /// A dim list (`[M, 1]`, with one `-1` when `allow_infer`).
    fn dim_list(&mut self, e: &Expr, allow_infer: bool) -> Option<Vec<DimArg>> {
        let ExprKind::List(items) = &e.kind else {
            self.report(
                Diagnostic::new(Code::E0203, "expected a list of dims")
                    .primary(e.span, "expected `[d0, d1, …]`"),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            if let ExprKind::Name(n) = &item.kind {
                match self.dims.get(n) {
                    Some(d) => out.push(DimArg::D(d.clone())),
                    None => {
                        let mut d = Diagnostic::new(Code::E0105, format!("unknown dim `{n}`"))
                            .primary(item.span, "not a dim of this kernel's signature");
                        if self.scope.contains_key(n) {
                            d = d.help("dim lists take integers and the kernel's symbolic dims, not tensors");
                        }
                        self.report(d);
                        ok = false;
                    }
                }
                continue;
            }
            match self.const_weak(item) {
                Some(Weak::Int(v)) if v > 0 => out.push(DimArg::D(Dim::Fixed(v as u64))),
                Some(Weak::Int(-1)) if allow_infer => out.push(DimArg::Infer(item.span)),
                Some(Weak::Int(v)) => {
                    self.report(
                        Diagnostic::new(Code::E0405, format!("dim {v} is not a positive integer"))
                            .primary(
                                item.span,
                                if allow_infer {
                                    "dims are positive (or one -1 to infer)"
                                } else {
                                    "dims are positive"
                                },
                            ),
                    );
                    ok = false;
                }
                _ => {
                    self.report(
                        Diagnostic::new(Code::E0203, "a dim must be an integer or a symbolic dim")
                            .primary(item.span, "not a dim"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn fixed_shape(&mut self, dims: Vec<DimArg>) -> Shape {
        Shape(
            dims.into_iter()
                .map(|d| match d {
                    DimArg::D(d) => d,
                    DimArg::Infer(_) => Dim::Unknown,
                })
                .collect(),
        )
    }

    // ----- builtins --------------------------------------------------------

    fn builtin(&mut self, b: Builtin, args: &[Option<&Expr>], span: Span) -> Val {
        let arg = |i: usize| args.get(i).copied().flatten();
        match b {
            Builtin::Unary(u) => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval(x);
                self.unary(u, v, span, x.span)
            }
            Builtin::Gelu => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval(x);
                let u = match arg(1).map(|e| &e.kind) {
                    None => UnaryOp::Gelu,
                    Some(ExprKind::Str(s)) if s == "none" => UnaryOp::Gelu,
                    Some(ExprKind::Str(s)) if s == "tanh" => UnaryOp::GeluTanh,
                    Some(_) => {
                        let e = arg(1).map_or(span, |e| e.span);
                        self.report(
                            Diagnostic::new(
                                Code::E0203,
                                "`approximate` must be \"none\" or \"tanh\"",
                            )
                            .primary(e, "unknown approximation"),
                        );
                        return Val::Err;
                    }
                };
                self.unary(u, v, span, x.span)
            }
            Builtin::Binary(op) => {
                let (Some(x), Some(y)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let a = self.eval(x);
                let b = self.eval(y);
                self.elementwise2(Op::Binary(op), a, b, (span, span), x.span, y.span)
            }
            Builtin::Select => {
                let (Some(c), Some(x), Some(y)) = (arg(0), arg(1), arg(2)) else {
                    return Val::Err;
                };
                let vc = self.eval(c);
                let va = self.eval(x);
                let vb = self.eval(y);
                if vc == Val::Err || va == Val::Err || vb == Val::Err {
                    return Val::Err;
                }
                let like = self.dtype_of(va).or(self.dtype_of(vb));
                let (Some(tc), Some(ta), Some(tb)) = (
                    self.tensor(vc, Some(DType::Bool), c.span),
                    self.tensor(va, like, x.span),
                    self.tensor(vb, like, y.span),
                ) else {
                    return Val::Err;
                };
                self.push(
                    Op::Select,
                    &[(tc, c.span), (ta, x.span), (tb, y.span)],
                    span,
                )
            }
            Builtin::Cast => {
                let (Some(x), Some(d)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let v = self.eval(x);
                let Some(to) = self.expect_dtype(d) else {
                    return Val::Err;
                };
                match v {
                    Val::Err => Val::Err,
                    Val::Weak(w) => {
                        // Materialise in the widest type of its kind, then cast.
                        let from = match w {
                            Weak::Int(_) => DType::I32,
                            Weak::Float(_) => DType::F32,
                            Weak::Bool(_) => DType::Bool,
                        };
                        let Some(t) = self.tensor(Val::Weak(w), Some(from), x.span) else {
                            return Val::Err;
                        };
                        if from == to {
                            return Val::T(t);
                        }
                        self.push(Op::Cast(to), &[(t, x.span)], span)
                    }
                    Val::T(t) => {
                        if self.ty(t).dtype == to {
                            return Val::T(t);
                        }
                        self.push(Op::Cast(to), &[(t, x.span)], span)
                    }
                }
            }
            Builtin::Reduce(r) => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval(x);
                let Some(t) = self.tensor(v, None, x.span) else {
                    return Val::Err;
                };
                let rank = self.ty(t).shape.rank();
                let axes = match arg(1) {
                    None => Some((0..rank).collect()),
                    Some(a) => self.axes(a, rank),
                };
                let keep = match arg(2) {
                    None => Some(false),
                    Some(k) => self.expect_bool(k, "`keepdims`"),
                };
                let (Some(axes), Some(keep)) = (axes, keep) else {
                    return Val::Err;
                };
                self.reduce(r, t, &axes, keep, span, x.span)
            }
            Builtin::Reshape => {
                let (Some(x), Some(s)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let v = self.eval(x);
                let dims = self.dim_list(s, true);
                let (Some(t), Some(dims)) = (self.tensor(v, None, x.span), dims) else {
                    return Val::Err;
                };
                let infers: Vec<Span> = dims
                    .iter()
                    .filter_map(|d| match d {
                        DimArg::Infer(s) => Some(*s),
                        DimArg::D(_) => None,
                    })
                    .collect();
                if infers.len() > 1 {
                    self.report(
                        Diagnostic::new(Code::E0404, "a reshape may infer only one dim")
                            .primary(infers[1], "second `-1`")
                            .secondary(infers[0], "first `-1`"),
                    );
                    return Val::Err;
                }
                let mut shape = self.fixed_shape(dims);
                if let Some(&at) = infers.first() {
                    let pos = shape
                        .dims()
                        .iter()
                        .position(|d| *d == Dim::Unknown)
                        .unwrap_or(0);
                    let known = Shape(
                        shape
                            .dims()
                            .iter()
                            .filter(|d| **d != Dim::Unknown)
                            .cloned()
                            .collect(),
                    );
                    let from = self.ty(t).shape.clone();
                    if let (Some(total), Some(part)) = (from.volume(), known.volume()) {
                        match total.divide(&part).and_then(|q| q.as_dim()) {
                            Some(d) => shape.0[pos] = d,
                            // Impossible for every binding: report it now.
                            None if total.syms.is_empty() && part.syms.is_empty() => {
                                self.report(
                                    Diagnostic::new(
                                        Code::E0404,
                                        format!("cannot infer the `-1` of a reshape of {from} to {known} and one more dim"),
                                    )
                                    .primary(at, "cannot be inferred")
                                    .secondary(x.span, format!("this is {}", self.ty(t))),
                                );
                                return Val::Err;
                            }
                            // Depends on the dims' values: decided once they are bound.
                            None => {}
                        }
                    }
                }
                self.push(Op::Reshape(shape), &[(t, x.span)], span)
            }
            Builtin::Transpose => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval(x);
                let Some(t) = self.tensor(v, None, x.span) else {
                    return Val::Err;
                };
                let rank = self.ty(t).shape.rank();
                let perm: Vec<usize> = match arg(1) {
                    None => (0..rank).rev().collect(),
                    Some(p) => {
                        let ExprKind::List(items) = &p.kind else {
                            self.report(
                                Diagnostic::new(Code::E0203, "`axes` must be a list of axes")
                                    .primary(p.span, "expected `[…]`"),
                            );
                            return Val::Err;
                        };
                        let mut raw = Vec::new();
                        for item in items {
                            let Some(a) = self.expect_int(item, "an axis") else {
                                return Val::Err;
                            };
                            raw.push(a);
                        }
                        let r = rank as i64;
                        let norm: Vec<Option<usize>> = raw
                            .iter()
                            .map(|&a| {
                                (a >= -r && a < r)
                                    .then(|| if a < 0 { (a + r) as usize } else { a as usize })
                            })
                            .collect();
                        let mut seen = vec![false; rank];
                        let valid = norm.len() == rank
                            && norm
                                .iter()
                                .all(|n| n.is_some_and(|n| !std::mem::replace(&mut seen[n], true)));
                        if !valid {
                            let e = TypeError::Permutation { perm: raw, rank };
                            self.report(
                                Diagnostic::new(e.code(), e.to_string())
                                    .primary(p.span, "bad permutation")
                                    .secondary(x.span, format!("this is {}", self.ty(t))),
                            );
                            return Val::Err;
                        }
                        norm.into_iter().flatten().collect()
                    }
                };
                self.push(Op::Transpose(perm), &[(t, x.span)], span)
            }
            Builtin::BroadcastTo => {
                let (Some(x), Some(s)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let v = self.eval(x);
                let dims = self.dim_list(s, false);
                let (Some(t), Some(dims)) = (self.tensor(v, None, x.span), dims) else {
                    return Val::Err;
                };
                let shape = self.fixed_shape(dims);
                self.push(Op::BroadcastTo(shape), &[(t, x.span)], span)
            }
            Builtin::Concat => {
                let Some(list) = arg(0) else { return Val::Err };
                let ExprKind::List(items) = &list.kind else {
                    self.report(
                        Diagnostic::new(Code::E0203, "`concat` takes a list of tensors")
                            .primary(list.span, "expected `[a, b, …]`"),
                    );
                    return Val::Err;
                };
                if items.is_empty() {
                    let e = TypeError::ConcatEmpty;
                    self.report(
                        Diagnostic::new(e.code(), e.to_string()).primary(list.span, "empty list"),
                    );
                    return Val::Err;
                }
                let vals: Vec<(Val, Span)> = items.iter().map(|e| (self.eval(e), e.span)).collect();
                if vals.iter().any(|(v, _)| *v == Val::Err) {
                    return Val::Err;
                }
                let like = vals.iter().find_map(|(v, _)| self.dtype_of(*v));
                let mut ts = Vec::new();
                for (v, s) in vals {
                    let Some(t) = self.tensor(v, like, s) else {
                        return Val::Err;
                    };
                    ts.push((t, s));
                }
                let rank = self.ty(ts[0].0).shape.rank();
                let axis = match arg(1) {
                    None => 0,
                    Some(a) => match self
                        .expect_int(a, "an axis")
                        .and_then(|i| self.norm_axis(i, rank, a.span))
                    {
                        Some(n) => n,
                        None => return Val::Err,
                    },
                };
                self.push(Op::Concat { axis }, &ts, span)
            }
            Builtin::Slice => self.slice(arg(0), arg(1), arg(2), arg(3), span),
            Builtin::Zeros => {
                let Some(s) = arg(0) else { return Val::Err };
                let dims = self.dim_list(s, false);
                let dtype = match arg(1) {
                    None => Some(DType::F32),
                    Some(d) => self.expect_dtype(d),
                };
                let (Some(dims), Some(dtype)) = (dims, dtype) else {
                    return Val::Err;
                };
                let value = match dtype {
                    DType::Bool => Scalar::Bool(false),
                    d if d.is_int() => Scalar::Int(0),
                    _ => Scalar::Float(0.0),
                };
                let shape = self.fixed_shape(dims);
                self.push(
                    Op::Full {
                        value,
                        ty: TensorType::new(dtype, shape),
                    },
                    &[],
                    span,
                )
            }
            Builtin::Full => {
                let (Some(s), Some(v)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let dims = self.dim_list(s, false);
                let Some(w) = self.const_weak(v) else {
                    self.report(
                        Diagnostic::new(Code::E0203, "the value of `full` must be a literal")
                            .primary(v.span, "expected a number or `true`/`false`"),
                    );
                    return Val::Err;
                };
                let dtype = match arg(2) {
                    None => Some(w.default_dtype()),
                    Some(d) => self.expect_dtype(d),
                };
                let (Some(dims), Some(dtype)) = (dims, dtype) else {
                    return Val::Err;
                };
                let Val::T(c) = self.materialize(w, dtype, v.span) else {
                    return Val::Err;
                };
                let value = match &self.k.nodes[node_index(c)].op {
                    Op::Full { value, .. } => *value,
                    _ => return Val::Err,
                };
                let shape = self.fixed_shape(dims);
                self.push(
                    Op::Full {
                        value,
                        ty: TensorType::new(dtype, shape),
                    },
                    &[],
                    span,
                )
            }
            Builtin::Softmax | Builtin::LogSoftmax => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval(x);
                let Some(t) = self.float_operand(v, b, x.span, span) else {
                    return Val::Err;
                };
                let rank = self.ty(t).shape.rank();
                let axes = match arg(1) {
                    None => self.norm_axis(-1, rank, span).map(|a| vec![a]),
                    Some(a) => self.axes(a, rank),
                };
                let Some(axes) = axes else { return Val::Err };
                self.softmax(t, &axes, b == Builtin::LogSoftmax, span)
            }
            Builtin::LayerNorm | Builtin::RmsNorm => {
                let (Some(x), Some(g)) = (arg(0), arg(1)) else {
                    return Val::Err;
                };
                let v = self.eval(x);
                let vg = self.eval(g);
                let (vb, eps_arg, default_eps) = if b == Builtin::LayerNorm {
                    (arg(2).map(|e| (self.eval(e), e.span)), arg(3), 1e-5)
                } else {
                    (None, arg(2), 1e-6)
                };
                let eps = match eps_arg {
                    None => Some(Weak::Float(default_eps)),
                    Some(e) => {
                        let w = self.const_weak(e);
                        if !matches!(w, Some(Weak::Float(_) | Weak::Int(_))) {
                            self.report(
                                Diagnostic::new(Code::E0203, "`eps` must be a number literal")
                                    .primary(e.span, "expected a number"),
                            );
                        }
                        w.filter(|w| !matches!(w, Weak::Bool(_)))
                    }
                };
                let Some(t) = self.float_operand(v, b, x.span, span) else {
                    return Val::Err;
                };
                let Some(eps) = eps else { return Val::Err };
                let dt = self.ty(t).dtype;
                let Some(tg) = self.tensor(vg, Some(dt), g.span) else {
                    return Val::Err;
                };
                let tb = match vb {
                    Some((vb, sb)) => match self.tensor(vb, Some(dt), sb) {
                        Some(tb) => Some((tb, sb)),
                        None => return Val::Err,
                    },
                    None => None,
                };
                self.norm(
                    t,
                    (tg, g.span),
                    tb,
                    eps,
                    b == Builtin::RmsNorm,
                    span,
                    x.span,
                )
            }
        }
    }

    fn float_operand(&mut self, v: Val, b: Builtin, arg_span: Span, span: Span) -> Option<Value> {
        let t = self.tensor(v, None, arg_span)?;
        let dtype = self.ty(t).dtype;
        if !dtype.is_float() {
            let name = match b {
                Builtin::Softmax => "softmax",
                Builtin::LogSoftmax => "log_softmax",
                Builtin::LayerNorm => "layer_norm",
                _ => "rms_norm",
            };
            self.report(
                Diagnostic::new(Code::E0301, format!("`{name}` does not accept {dtype}"))
                    .primary(span, format!("not defined for {dtype}"))
                    .secondary(arg_span, format!("this is {}", self.ty(t)))
                    .help("cast it to a float dtype first"),
            );
            return None;
        }
        Some(t)
    }

    fn node_val(&mut self, op: Op, args: &[(Value, Span)], span: Span) -> Option<Value> {
        match self.push(op, args, span) {
            Val::T(v) => Some(v),
            _ => None,
        }
    }

    /// A reduction, then a reshape that puts back size-1 dims if `keep`.
    fn reduce(
        &mut self,
        r: ReduceOp,
        t: Value,
        axes: &[usize],
        keep: bool,
        span: Span,
        arg_span: Span,
    ) -> Val {
        let in_shape = self.ty(t).shape.clone();
        let Some(red) = self.node_val(
            Op::Reduce {
                op: r,
                axes: axes.to_vec(),
            },
            &[(t, arg_span)],
            span,
        ) else {
            return Val::Err;
        };
        if !keep {
            return Val::T(red);
        }
        let dims: Vec<Dim> = in_shape
            .dims()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if axes.contains(&i) {
                    Dim::Fixed(1)
                } else {
                    d.clone()
                }
            })
            .collect();
        self.push(Op::Reshape(Shape(dims)), &[(red, span)], span)
    }

    fn scalar_like(&mut self, value: f64, t: Value, span: Span) -> Option<Value> {
        let dt = self.ty(t).dtype;
        match self.materialize(Weak::Float(value), dt, span) {
            Val::T(v) => Some(v),
            _ => None,
        }
    }

    /// `softmax` and `log_softmax`, expanded as language.md defines them.
    fn softmax(&mut self, x: Value, axes: &[usize], log: bool, span: Span) -> Val {
        let s = span;
        let m = match self.reduce(ReduceOp::Max, x, axes, true, s, s) {
            Val::T(m) => m,
            _ => return Val::Err,
        };
        let Some(d) = self.node_val(Op::Binary(BinaryOp::Sub), &[(x, s), (m, s)], s) else {
            return Val::Err;
        };
        let Some(e) = self.node_val(Op::Unary(UnaryOp::Exp), &[(d, s)], s) else {
            return Val::Err;
        };
        let sum = match self.reduce(ReduceOp::Sum, e, axes, true, s, s) {
            Val::T(v) => v,
            _ => return Val::Err,
        };
        if log {
            let Some(l) = self.node_val(Op::Unary(UnaryOp::Log), &[(sum, s)], s) else {
                return Val::Err;
            };
            self.push(Op::Binary(BinaryOp::Sub), &[(d, s), (l, s)], s)
        } else {
            self.push(Op::Binary(BinaryOp::Div), &[(e, s), (sum, s)], s)
        }
    }

    /// `layer_norm` (with `b`) and `rms_norm`, over the last axis.
    #[allow(clippy::too_many_arguments)]
    fn norm(
        &mut self,
        x: Value,
        g: (Value, Span),
        b: Option<(Value, Span)>,
        eps: Weak,
        rms: bool,
        span: Span,
        xs: Span,
    ) -> Val {
        let s = span;
        let rank = self.ty(x).shape.rank();
        let Some(last) = self.norm_axis(-1, rank, xs) else {
            return Val::Err;
        };
        let axes = [last];
        let centred = if rms {
            x
        } else {
            let mu = match self.reduce(ReduceOp::Mean, x, &axes, true, s, s) {
                Val::T(v) => v,
                _ => return Val::Err,
            };
            let Some(d) = self.node_val(Op::Binary(BinaryOp::Sub), &[(x, s), (mu, s)], s) else {
                return Val::Err;
            };
            d
        };
        let Some(sq) = self.node_val(Op::Binary(BinaryOp::Mul), &[(centred, s), (centred, s)], s)
        else {
            return Val::Err;
        };
        let var = match self.reduce(ReduceOp::Mean, sq, &axes, true, s, s) {
            Val::T(v) => v,
            _ => return Val::Err,
        };
        let Some(e) = self.scalar_like(eps.as_f64(), x, s) else {
            return Val::Err;
        };
        let Some(ve) = self.node_val(Op::Binary(BinaryOp::Add), &[(var, s), (e, s)], s) else {
            return Val::Err;
        };
        let Some(r) = self.node_val(Op::Unary(UnaryOp::Rsqrt), &[(ve, s)], s) else {
            return Val::Err;
        };
        let Some(n) = self.node_val(Op::Binary(BinaryOp::Mul), &[(centred, s), (r, s)], s) else {
            return Val::Err;
        };
        let Some(y) = self.node_val(Op::Binary(BinaryOp::Mul), &[(n, s), g], s) else {
            return Val::Err;
        };
        match b {
            Some(b) => self.push(Op::Binary(BinaryOp::Add), &[(y, s), b], s),
            None => Val::T(y),
        }
    }

    fn slice(
        &mut self,
        x: Option<&Expr>,
        axis: Option<&Expr>,
        start: Option<&Expr>,
        end: Option<&Expr>,
        span: Span,
    ) -> Val {
        let Some(x) = x else { return Val::Err };
        let v = self.eval(x);
        let Some(t) = self.tensor(v, None, x.span) else {
            return Val::Err;
        };
        let ty = self.ty(t).clone();
        let rank = ty.shape.rank();
        let axis = match axis {
            None => self.norm_axis(0, rank, span),
            Some(a) => self
                .expect_int(a, "an axis")
                .and_then(|i| self.norm_axis(i, rank, a.span)),
        };
        let s = match start {
            None => Some(0),
            Some(e) => self.expect_int(e, "`start`"),
        };
        let e = match end {
            None => Some(None),
            Some(e) => self.expect_int(e, "`end`").map(Some),
        };
        let (Some(axis), Some(s), Some(e)) = (axis, s, e) else {
            return Val::Err;
        };
        let dim = ty.shape.dims()[axis].clone();
        let bad = |me: &mut Self, s: i64, e: i64| {
            let err = TypeError::Slice {
                start: s,
                end: e,
                dim: dim.clone(),
            };
            me.report(
                Diagnostic::new(err.code(), err.to_string())
                    .primary(span, "bad slice")
                    .secondary(x.span, format!("this is {ty}"))
                    .note("bounds may be negative (from the end); the slice must keep at least one element"),
            );
            Val::Err
        };
        match dim.fixed() {
            Some(d) => {
                let d = d as i64;
                let e = e.unwrap_or(d);
                let ns = if s < 0 { s + d } else { s };
                let ne = if e < 0 { e + d } else { e };
                if !(0 <= ns && ns < ne && ne <= d) {
                    return bad(self, s, e);
                }
                self.push(
                    Op::Slice {
                        axis,
                        start: ns as u64,
                        end: ne as u64,
                    },
                    &[(t, x.span)],
                    span,
                )
            }
            None => {
                // A symbolic extent: check what can be checked now.
                match (s, e) {
                    (0, None) => Val::T(t),
                    (s, Some(e)) if s >= 0 && e >= 0 => {
                        if s >= e {
                            return bad(self, s, e);
                        }
                        self.push(
                            Op::Slice {
                                axis,
                                start: s as u64,
                                end: e as u64,
                            },
                            &[(t, x.span)],
                            span,
                        )
                    }
                    _ => {
                        // The extent depends on the dim's value: checked again
                        // once dims are bound. Only the type matters here.
                        let mut dims = ty.shape.dims().to_vec();
                        dims[axis] = Dim::Unknown;
                        let out = TensorType::new(ty.dtype, Shape(dims));
                        self.k.nodes.push(Node {
                            op: Op::Slice {
                                axis,
                                start: 0,
                                end: 0,
                            },
                            args: vec![t],
                            ty: out,
                            span: Some(span),
                        });
                        Val::T(Value::Node((self.k.nodes.len() - 1) as u32))
                    }
                }
            }
        }
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

/// Whether an expression is made of literals and operators only.
fn is_literal_expr(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => true,
        ExprKind::Neg(x) => is_literal_expr(x),
        ExprKind::Binary { lhs, rhs, op, .. } => {
            *op != BinOp::MatMul && is_literal_expr(lhs) && is_literal_expr(rhs)
        }
        _ => false,
    }
}
