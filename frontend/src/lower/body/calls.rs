//! Calls: a name is a kernel of the file (inlined: the callee is lowered
//! as an instance under the dims its arguments unify to) or a builtin (its
//! arguments bound to its parameter list, positional then named, and
//! lowered in `builtin_calls.rs`).

use super::*;

impl Lowerer<'_, '_> {
    /// The kernel of the file a call names, if it names one. A kernel of the
    /// file shadows a builtin of its name, except in its own body: there
    /// (where a call to itself could only recurse) the name is the
    /// builtin's, so `kernel softmax` may wrap `softmax(x)`.
    pub(super) fn kernel_of_call(&self, callee: &Ident) -> Option<usize> {
        let current = self
            .calls
            .last()
            .map_or(self.k.name.as_str(), |(_, n)| n.as_str());
        let own = Builtin::lookup(&callee.name).is_some() && current == callee.name;
        match (own, self.cx.index.get(callee.name.as_str())) {
            (false, Some(&idx)) => Some(idx),
            _ => None,
        }
    }

    pub(super) fn call(&mut self, callee: &Ident, args: &[Arg], span: Span) -> Val {
        let builtin = Builtin::lookup(&callee.name);
        if let Some(idx) = self.kernel_of_call(callee) {
            return self.call_kernel(idx, callee, args, span);
        }
        let Some(b) = builtin else {
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
        let Some((bound, ok)) = self.bind_args(&callee.name, b.params(), args, span) else {
            return Val::Err;
        };
        // With an unknown, repeated or extra argument, the arguments that
        // did bind are still checked: their own errors are independent and
        // kept, but not errors of the call as a whole, which may come from
        // a default standing in for the misspelt argument
        // (`concat([a, c], axs = 1)` is not a concat along axis 0).
        let before = self.diags.len();
        let v = self.builtin(b, &bound, span);
        if ok {
            return v;
        }
        let within: Vec<Span> = bound.iter().flatten().map(|e| e.span).collect();
        let own = |d: &Diagnostic| {
            d.primary_span()
                .is_some_and(|s| within.iter().any(|a| a.start <= s.start && s.end <= a.end))
        };
        let kept: Vec<Diagnostic> = self.diags.drain(before..).filter(own).collect();
        self.diags.extend(kept);
        Val::Err
    }

    /// Matches arguments to parameters: positional first, then named. The
    /// arguments bound and whether every argument bound; `None` when a
    /// required parameter has no argument (each error is reported).
    pub(super) fn bind_args<'e>(
        &mut self,
        callee: &str,
        params: &[ParamSpec<'_>],
        args: &'e [Arg],
        span: Span,
    ) -> Option<(Vec<Option<&'e Expr>>, bool)> {
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
        let mut complete = true;
        for (p, b) in params.iter().zip(&bound) {
            if p.required && b.is_none() {
                // After an argument error, a missing one may be that
                // argument misspelt: said once, by the first error.
                if ok {
                    self.report(
                        Diagnostic::new(
                            Code::E0200,
                            format!("`{callee}` is missing its argument `{}`", p.name),
                        )
                        .primary(span, format!("`{}` is required", p.name)),
                    );
                }
                complete = false;
            }
        }
        complete.then_some((bound, ok))
    }

    /// A call to a kernel of the file as a value: the kernel must have one
    /// result.
    pub(super) fn call_kernel(
        &mut self,
        idx: usize,
        callee: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Val {
        let def = &self.cx.file.kernels[idx];
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
                .secondary(def.name.span, "declared here")
                .help(format!(
                    "a call to it may be returned whole: `return {}(…);`",
                    callee.name
                )),
            );
            return Val::Err;
        }
        match self.call_kernel_results(idx, callee, args, span) {
            Some(out) => Val::T(out[0]),
            None => Val::Err,
        }
    }

    /// Inlines a call to a kernel of the file; its results' values.
    pub(super) fn call_kernel_results(
        &mut self,
        idx: usize,
        callee: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Option<Vec<Value>> {
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
            return None;
        }
        let names: Vec<ParamSpec> = def
            .params
            .iter()
            .map(|p| ParamSpec {
                name: p.name.name.as_str(),
                required: true,
            })
            .collect();
        let (bound, true) = self.bind_args(&callee.name, &names, args, span)? else {
            return None;
        };
        // Evaluate the arguments and unify the callee's dims with theirs.
        let mut dims: HashMap<String, Dim> = HashMap::new();
        let mut bound_at: HashMap<String, Span> = HashMap::new();
        let mut params: Vec<(Ident, Value)> = Vec::new();
        let mut ok = true;
        for (p, e) in def.params.iter().zip(&bound) {
            let e = e.as_ref()?;
            let v = self.eval_open(e);
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
            return None;
        }
        for (name, dspan) in crate::lower::signature_dims(def) {
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
                return None;
            }
        }
        let results: Vec<TensorType> = def
            .results
            .iter()
            .map(|r| resolve_type(&r.ty, &dims, None))
            .collect();
        if opaque {
            let mut out = Vec::with_capacity(results.len());
            for ty in results {
                let zero = match ty.dtype {
                    DType::Bool => Scalar::Bool(false),
                    d if d.is_int() => Scalar::Int(0),
                    _ => Scalar::Float(0.0),
                };
                match self.push(Op::Full { value: zero, ty }, &[], span) {
                    Val::T(v) => out.push(v),
                    _ => return None,
                }
            }
            return Some(out);
        }
        let key = (idx, params.iter().map(|(_, v)| *v).collect::<Vec<_>>());
        if let Some(v) = self.memo.get(&key) {
            return Some(v.clone());
        }
        let mut inner = Lowerer {
            cx: self.cx,
            k: &mut *self.k,
            dims,
            scope: HashMap::new(),
            diags: &mut *self.diags,
            calls: self.calls.clone(),
            memo: std::mem::take(&mut self.memo),
        };
        inner.calls.push((span, callee.name.clone()));
        let out = inner.lower_kernel_body(def, &params, &results, Some(span));
        self.memo = std::mem::take(&mut inner.memo);
        if let Some(out) = &out {
            self.memo.insert(key, out.clone());
        }
        out
    }
}
