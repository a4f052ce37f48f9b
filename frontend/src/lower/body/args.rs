//! Decoding builtin arguments: literal folding, integers, axes (negative
//! ones count from the end), bools, dtype names and dim lists.

use super::*;

impl Lowerer<'_, '_> {
    /// Reports `d`, unless a diagnostic was reported since there were
    /// `before`: then that one (a literal that overflowed, a division by
    /// zero while folding) already says what is wrong with the argument.
    pub(super) fn report_unless_reported(&mut self, before: usize, d: Diagnostic) {
        if self.diags.len() == before {
            self.report(d);
        }
    }

    /// Folds a literal-only expression.
    pub(super) fn const_weak(&mut self, e: &Expr) -> Option<Weak> {
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Neg(_)
            | ExprKind::Binary { .. }
            | ExprKind::Call { .. } => {
                if self.is_literal_expr(e) {
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

    /// Whether an expression is made of literals, operators and calls of
    /// elementwise builtins (`sqrt(2.0)`, `maximum(1, 2)`, `gelu(1.0,
    /// approximate = "tanh")`) only: what folds to a weak literal.
    fn is_literal_expr(&self, e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) => true,
            ExprKind::Neg(x) => self.is_literal_expr(x),
            ExprKind::Binary { lhs, rhs, op, .. } => {
                *op != BinOp::MatMul && self.is_literal_expr(lhs) && self.is_literal_expr(rhs)
            }
            ExprKind::Call { callee, args } => {
                matches!(
                    Builtin::lookup(&callee.name),
                    Some(Builtin::Unary(_) | Builtin::Binary(_) | Builtin::Gelu)
                ) && self.kernel_of_call(callee).is_none()
                    && args.iter().all(|a| {
                        matches!(a.value.kind, ExprKind::Str(_)) || self.is_literal_expr(&a.value)
                    })
            }
            _ => false,
        }
    }

    pub(super) fn expect_int(&mut self, e: &Expr, what: &str) -> Option<i64> {
        let before = self.diags.len();
        match self.const_weak(e).map(Weak::integral) {
            Some(Weak::Int(i)) => Some(i),
            _ => {
                self.report_unless_reported(
                    before,
                    Diagnostic::new(Code::E0203, format!("{what} must be an integer literal"))
                        .primary(e.span, "expected an integer"),
                );
                None
            }
        }
    }

    /// A slice bound: an integer (a literal expression, or a symbolic dim
    /// bound to its value), or a symbolic dim not bound yet.
    pub(super) fn slice_bound(&mut self, e: &Expr, what: &str) -> Option<Bound> {
        if let ExprKind::Name(n) = &e.kind
            && !self.scope.contains_key(n)
            && let Some(d) = self.dims.get(n)
        {
            return Some(match d.fixed() {
                Some(v) => Bound::Int(v as i64),
                None => Bound::Dim(d.clone()),
            });
        }
        let before = self.diags.len();
        match self.const_weak(e).map(Weak::integral) {
            Some(Weak::Int(i)) => Some(Bound::Int(i)),
            _ => {
                let mut d = Diagnostic::new(
                    Code::E0203,
                    format!("{what} must be an integer literal or a symbolic dim"),
                )
                .primary(e.span, "expected an integer or a dim");
                if let ExprKind::Name(n) = &e.kind {
                    d = if self.scope.contains_key(n) {
                        d.help("slice bounds are known when the kernel is compiled, not tensors")
                    } else {
                        let mut dims: Vec<&str> = self.dims.keys().map(String::as_str).collect();
                        dims.sort_unstable();
                        d.note(if dims.is_empty() {
                            format!("`{n}` is not a symbolic dim: the kernel has none")
                        } else {
                            format!(
                                "`{n}` is not a symbolic dim of the kernel (its dims: {})",
                                dims.join(", ")
                            )
                        })
                    };
                }
                self.report_unless_reported(before, d);
                None
            }
        }
    }

    pub(super) fn norm_axis(&mut self, a: i64, rank: usize, span: Span) -> Option<usize> {
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
    pub(super) fn axes(&mut self, e: &Expr, rank: usize) -> Option<Vec<usize>> {
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

    /// The literal form of an axis argument (`A` or `[A, B, …]`; a list
    /// when `list`), checked on its own where the operand's error leaves
    /// the rank unknown: its errors are independent of the operand's.
    pub(super) fn axis_form(&mut self, e: &Expr, list: bool) {
        let items: Vec<&Expr> = match &e.kind {
            ExprKind::List(items) => items.iter().collect(),
            _ if list => {
                self.report(
                    Diagnostic::new(Code::E0203, "`axes` must be a list of axes")
                        .primary(e.span, "expected `[…]`"),
                );
                return;
            }
            _ => vec![e],
        };
        for item in items {
            self.expect_int(item, "an axis");
        }
    }

    pub(super) fn expect_bool(&mut self, e: &Expr, what: &str) -> Option<bool> {
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

    pub(super) fn expect_dtype(&mut self, e: &Expr) -> Option<DType> {
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
    pub(super) fn dim_list(&mut self, e: &Expr, allow_infer: bool) -> Option<Vec<DimArg>> {
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
            let before = self.diags.len();
            match self.const_weak(item).map(Weak::integral) {
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
                    self.report_unless_reported(
                        before,
                        Diagnostic::new(Code::E0203, "a dim must be an integer or a symbolic dim")
                            .primary(item.span, "not a dim"),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    pub(super) fn fixed_shape(&mut self, dims: Vec<DimArg>) -> Shape {
        Shape(
            dims.into_iter()
                .map(|d| match d {
                    DimArg::D(d) => d,
                    DimArg::Infer(_) => Dim::Unknown,
                })
                .collect(),
        )
    }
}
