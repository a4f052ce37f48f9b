//! Lowering builtin calls to IR: the elementwise, reduction and shape
//! builtins, and the composites (`softmax`, `log_softmax`, `layer_norm`,
//! `rms_norm`) expanded into primitive ops.

use super::*;

impl Lowerer<'_, '_> {
    pub(super) fn builtin(&mut self, b: Builtin, args: &[Option<&Expr>], span: Span) -> Val {
        let arg = |i: usize| args.get(i).copied().flatten();
        match b {
            Builtin::Unary(u) => {
                let Some(x) = arg(0) else { return Val::Err };
                let v = self.eval_open(x);
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
                let a = self.eval_open(x);
                let b = self.eval_open(y);
                self.elementwise2(Op::Binary(op), a, b, (span, span), x.span, y.span)
            }
            Builtin::Select => {
                let (Some(c), Some(x), Some(y)) = (arg(0), arg(1), arg(2)) else {
                    return Val::Err;
                };
                let vc = self.eval(c);
                let va = self.eval_open(x);
                let vb = self.eval_open(y);
                if vc == Val::Err || va == Val::Err || vb == Val::Err {
                    return Val::Err;
                }
                if let (Val::Weak(a), Val::Weak(b)) = (va, vb) {
                    // Two literals: the dtype stays open until the select
                    // meets a tensor (or a declared type).
                    let Some(tc) = self.tensor(vc, Some(DType::Bool), c.span) else {
                        return Val::Err;
                    };
                    if self.ty(tc).dtype != DType::Bool {
                        // The select reports the condition's dtype.
                        let (Some(ta), Some(tb)) =
                            (self.tensor(va, None, x.span), self.tensor(vb, None, y.span))
                        else {
                            return Val::Err;
                        };
                        return self.push(
                            Op::Select,
                            &[(tc, c.span), (ta, x.span), (tb, y.span)],
                            span,
                        );
                    }
                    return Val::Sel(Sel {
                        c: tc,
                        a,
                        b,
                        span,
                        args: [c.span, x.span, y.span],
                    });
                }
                // An open select in a branch takes the other branch's dtype,
                // or gives its own to a literal there.
                let open = |v: Val| match v {
                    Val::Sel(s) => Some(s.default_dtype()),
                    _ => None,
                };
                let like = (self.dtype_of(va).or(self.dtype_of(vb)))
                    .or(open(va))
                    .or(open(vb));
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
                    // (`eval` settles an open select to its default dtype.)
                    Val::Err | Val::Sel(_) => Val::Err,
                    Val::Weak(w) => {
                        // Materialise in the widest type of its kind, then cast.
                        let from = match w {
                            Weak::Int(_) | Weak::Ratio { .. } => DType::I32,
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
                // `keepdims` does not depend on the operand: checked even
                // when the operand has an error of its own.
                let keep = match arg(2) {
                    None => Some(false),
                    Some(k) => self.expect_bool(k, "`keepdims`"),
                };
                let Some(t) = self.tensor(v, None, x.span) else {
                    if let Some(a) = arg(1) {
                        self.axis_form(a, false);
                    }
                    return Val::Err;
                };
                let rank = self.ty(t).shape.rank();
                let axes = match arg(1) {
                    None => Some((0..rank).collect()),
                    Some(a) => self.axes(a, rank),
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
                    if known.too_large() {
                        // The other dims alone overflow: nothing can be inferred.
                        self.report(
                            Diagnostic::new(
                                Code::E0409,
                                format!(
                                    "the other dims of this reshape multiply to {} elements, more than the {} a tensor may have",
                                    known.product_text(),
                                    tessera_ir::types::MAX_TENSOR_ELEMENTS
                                ),
                            )
                            .primary(at, "cannot be inferred"),
                        );
                        return Val::Err;
                    }
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
                    if let Some(p) = arg(1) {
                        self.axis_form(p, true);
                    }
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
                    if let Some(a) = arg(1) {
                        self.expect_int(a, "an axis");
                    }
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
                let before = self.diags.len();
                let Some(w) = self.const_weak(v) else {
                    self.report_unless_reported(
                        before,
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
                    if let Some(a) = arg(1) {
                        self.axis_form(a, false);
                    }
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
                        let before = self.diags.len();
                        let w = self.const_weak(e);
                        if !matches!(w, Some(Weak::Float(_) | Weak::Int(_) | Weak::Ratio { .. })) {
                            self.report_unless_reported(
                                before,
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
                // A bad `eps` (reported) does not hide the operands' shapes:
                // they are checked with the default, and the call is an error.
                let eps_ok = eps.is_some();
                let eps = eps.unwrap_or(Weak::Float(default_eps));
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
                let out = self.norm(
                    t,
                    (tg, g.span),
                    tb,
                    eps,
                    b == Builtin::RmsNorm,
                    span,
                    x.span,
                );
                if eps_ok { out } else { Val::Err }
            }
        }
    }

    pub(super) fn float_operand(
        &mut self,
        v: Val,
        b: Builtin,
        arg_span: Span,
        span: Span,
    ) -> Option<Value> {
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

    pub(super) fn node_val(&mut self, op: Op, args: &[(Value, Span)], span: Span) -> Option<Value> {
        match self.push(op, args, span) {
            Val::T(v) => Some(v),
            _ => None,
        }
    }

    /// A reduction, then a reshape that puts back size-1 dims if `keep`.
    pub(super) fn reduce(
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

    pub(super) fn scalar_like(&mut self, value: f64, t: Value, span: Span) -> Option<Value> {
        let dt = self.ty(t).dtype;
        match self.materialize(Weak::Float(value), dt, span) {
            Val::T(v) => Some(v),
            _ => None,
        }
    }

    /// `softmax` and `log_softmax`, expanded as language.md defines them.
    pub(super) fn softmax(&mut self, x: Value, axes: &[usize], log: bool, span: Span) -> Val {
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
    pub(super) fn norm(
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

    pub(super) fn slice(
        &mut self,
        x: Option<&Expr>,
        axis: Option<&Expr>,
        start: Option<&Expr>,
        end: Option<&Expr>,
        span: Span,
    ) -> Val {
        let Some(x) = x else { return Val::Err };
        let v = self.eval(x);
        // The bounds do not depend on the operand: checked even when the
        // operand has an error of its own.
        let s = match start {
            None => Some(Bound::Int(0)),
            Some(e) => self.slice_bound(e, "`start`"),
        };
        let e = match end {
            None => Some(None),
            Some(e) => self.slice_bound(e, "`end`").map(Some),
        };
        let Some(t) = self.tensor(v, None, x.span) else {
            if let Some(a) = axis {
                self.expect_int(a, "an axis");
            }
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
        let (Some(axis), Some(s), Some(e)) = (axis, s, e) else {
            return Val::Err;
        };
        let dim = ty.shape.dims()[axis].clone();
        // A bound naming a dim not bound yet (`end = K`): the extent is
        // known only once it is, and checked then. `[0, K)` is `K` long
        // (`[0, N)` of an axis of `N`, the whole axis).
        let (s, e) = match (s, e) {
            (Bound::Int(s), None) => (s, None),
            (Bound::Int(s), Some(Bound::Int(e))) => (s, Some(e)),
            (s, e) => {
                let extent = match (&s, &e) {
                    (Bound::Int(0), Some(Bound::Dim(k))) if *k == dim => return Val::T(t),
                    (Bound::Int(0), Some(Bound::Dim(k))) => k.clone(),
                    _ => Dim::Unknown,
                };
                return self.unbound_slice(t, &ty, axis, extent, span);
            }
        };
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
                    // The extent depends on the dim's value: checked again
                    // once dims are bound.
                    _ => self.unbound_slice(t, &ty, axis, Dim::Unknown, span),
                }
            }
        }
    }

    /// A slice whose bounds depend on dims not bound yet: only its type
    /// (`extent` on `axis`) matters until they are, when the kernel is
    /// lowered again and the bounds are checked.
    fn unbound_slice(
        &mut self,
        t: Value,
        ty: &TensorType,
        axis: usize,
        extent: Dim,
        span: Span,
    ) -> Val {
        let mut dims = ty.shape.dims().to_vec();
        dims[axis] = extent;
        self.k.nodes.push(Node {
            op: Op::Slice {
                axis,
                start: 0,
                end: 0,
            },
            args: vec![t],
            ty: TensorType::new(ty.dtype, Shape(dims)),
            span: Some(span),
            group: None,
        });
        Val::T(Value::Node((self.k.nodes.len() - 1) as u32))
    }
}
