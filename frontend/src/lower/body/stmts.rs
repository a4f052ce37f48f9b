//! Statements: a kernel body's `let`s and its `return`, the annotations
//! they carry, and what a statement that did not parse leaves bound.

use super::*;

impl Lowerer<'_, '_> {
    /// Lowers a kernel body with its parameters bound to `params` and checks
    /// the returned values against `results`. Returns the output values.
    pub(in crate::lower) fn lower_kernel_body(
        &mut self,
        def: &KernelDef,
        params: &[(Ident, Value)],
        results: &[TensorType],
        call_span: Option<Span>,
    ) -> Option<Vec<Value>> {
        for (name, v) in params {
            // A name declared twice (E0103, reported with the signature)
            // stands for neither declaration: its uses report nothing more.
            let v = if self.scope.contains_key(&name.name) {
                Val::Err
            } else {
                Val::T(*v)
            };
            self.scope.insert(name.name.clone(), (v, name.span));
        }
        let errors_before = self.diags.len();
        let mut returned: Option<(Vec<(Val, Span)>, Span)> = None;
        // A statement that did not parse and may have been the `return`.
        let mut broken_return = false;
        let last = def.body.len().saturating_sub(1);
        for (i, stmt) in def.body.iter().enumerate() {
            match stmt {
                Stmt::Let {
                    name,
                    ty,
                    value,
                    span,
                } => {
                    let mut v = self.eval_open(value);
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
                        // Which definition a later use meant is unknown:
                        // it reports nothing more.
                        v = Val::Err;
                    }
                    let _ = span;
                    self.scope.insert(name.name.clone(), (v, name.span));
                }
                Stmt::Return { values, span } => {
                    let vals = self.returned_values(values);
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
                Stmt::Error { names, returns, .. } => {
                    // The names it may have bound (those not bound yet)
                    // stand for nothing, so that their uses report nothing
                    // more (its error is reported already); as the last
                    // statement it may have been the `return` (`retrun x;`).
                    for name in names {
                        if !self.scope.contains_key(&name.name) {
                            self.scope.insert(name.name.clone(), (Val::Err, name.span));
                        }
                    }
                    broken_return |= *returns || i == last;
                }
            }
        }
        let Some((vals, ret_span)) = returned else {
            if broken_return {
                return None;
            }
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
            let v = self.meet(v, want.dtype, span);
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
                Val::Weak(_) | Val::Sel(_) | Val::Err => {}
            }
        }
        if self.diags.len() > errors_before || out.len() != results.len() {
            return None;
        }
        Some(out)
    }

    fn check_annotation(&mut self, v: Val, ann: &crate::ast::TypeExpr, span: Span) -> Val {
        let want = resolve_type(ann, &self.dims, Some(self.diags));
        let v = self.meet(v, want.dtype, span);
        if let Val::T(t) = v {
            let got = self.ty(t).clone();
            if !compatible(&got, &want) {
                // `cast` changes a dtype only; a shape needs its own builtin.
                let help = if got.dtype != want.dtype {
                    "an annotation checks the type; it never converts (use `cast`)"
                } else {
                    "an annotation checks the type; it never reshapes (use `reshape`, `transpose` or `broadcast_to`)"
                };
                self.report(
                    Diagnostic::new(
                        Code::E0305,
                        format!("the value is {got}, but the annotation says {want}"),
                    )
                    .primary(span, format!("this is {got}"))
                    .secondary(ann.span, "annotation")
                    .help(help),
                );
                return Val::Err;
            }
        }
        v
    }

    /// The values of a `return`: its expressions, or the results of a call
    /// to a kernel with several results returned whole (`return f(x);`).
    fn returned_values(&mut self, values: &[Expr]) -> Vec<(Val, Span)> {
        if let [e] = values
            && let ExprKind::Call { callee, args } = &e.kind
            && let Some(idx) = self.kernel_of_call(callee)
            && self.cx.file.kernels[idx].results.len() != 1
        {
            let n = self.cx.file.kernels[idx].results.len();
            return match self.call_kernel_results(idx, callee, args, e.span) {
                Some(out) => out.into_iter().map(|v| (Val::T(v), e.span)).collect(),
                None => vec![(Val::Err, e.span); n],
            };
        }
        values.iter().map(|e| (self.eval_open(e), e.span)).collect()
    }
}
