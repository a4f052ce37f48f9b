//! Checking and lowering: [`ast::File`](crate::ast::File) to IR kernels.
//!
//! [`check`] checks every kernel of a file with its dims symbolic and returns
//! every diagnostic; [`lower`] lowers one kernel with its dims bound, as code
//! generation needs. Both go through one path: a kernel *instance* is lowered
//! by `body::Lowerer` under a map from the signature's symbolic dims to
//! dims (symbols themselves when checking, fixed values when lowering).
//! Calls to other kernels are inlined by instantiating the callee with the
//! dims its arguments unify to.
//!
//! File-level checks live here: duplicate kernels, recursion (a call cycle
//! is reported once per back edge of a depth-first walk), and the order in
//! which kernels are checked (callees first, so that a call to a kernel that
//! has errors is silently poisoned instead of reporting them again).

mod body;
pub mod builtins;

use crate::ast::{DimExpr, Expr, ExprKind, File, Stmt, TypeExpr};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use tessera_ir::types::MAX_TENSOR_ELEMENTS;
use tessera_ir::{Code, DType, Diagnostic, Dim, DimEnv, Kernel, Shape, Span, TensorType};

/// How a kernel instance binds its symbolic dims.
#[derive(Clone, Copy)]
enum Mode<'e> {
    /// Checking: dims stay symbolic.
    Generic,
    /// Code generation: every dim must be bound by the environment.
    Concrete(&'e DimEnv),
}

/// What the whole file knows while lowering one kernel.
struct Context<'a> {
    file: &'a File,
    /// The first definition of each kernel name.
    index: HashMap<&'a str, usize>,
    /// Kernels on a call cycle (calls to them are poisoned).
    recursive: HashSet<usize>,
    /// Kernels whose own check failed (calls to them are poisoned).
    broken: HashSet<usize>,
    /// IR nodes the rest of the file may still create ([`MAX_FILE_NODES`]
    /// in all): checking inlines every call, so without it a file of many
    /// kernels each calling one large kernel would take time in the product
    /// of the two.
    nodes_left: Cell<usize>,
    /// Whether [`Self::nodes_left`] running out has been reported.
    file_limit_reported: Cell<bool>,
    /// What [`Self::nodes_left`] started from.
    node_budget: usize,
}

/// How many IR nodes checking a whole file may create, over all its
/// kernels with their calls inlined (`docs/cli.md`, limits).
pub(crate) const MAX_FILE_NODES: usize = 4_000_000;

impl<'a> Context<'a> {
    fn new(file: &'a File, diags: &mut Vec<Diagnostic>) -> Context<'a> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, k) in file.kernels.iter().enumerate() {
            if let Some(&first) = index.get(k.name.name.as_str()) {
                diags.push(
                    Diagnostic::new(
                        Code::E0102,
                        format!("kernel `{}` is defined twice", k.name.name),
                    )
                    .primary(k.name.span, "redefined here")
                    .secondary(file.kernels[first].name.span, "first defined here"),
                );
            } else {
                index.insert(&k.name.name, i);
            }
        }
        let mut cx = Context {
            file,
            index,
            recursive: HashSet::new(),
            broken: HashSet::new(),
            nodes_left: Cell::new(MAX_FILE_NODES),
            file_limit_reported: Cell::new(false),
            node_budget: MAX_FILE_NODES,
        };
        cx.find_recursion(diags);
        cx
    }

    /// The kernels called in `k`'s body: (callee, call span), in source order.
    fn calls(&self, k: usize) -> Vec<(usize, Span)> {
        let mut out = Vec::new();
        let mut stack: Vec<&Expr> = Vec::new();
        for s in self.file.kernels[k].body.iter().rev() {
            match s {
                Stmt::Let { value, .. } => stack.push(value),
                Stmt::Return { values, .. } => stack.extend(values.iter().rev()),
                Stmt::Error { .. } => {}
            }
        }
        while let Some(e) = stack.pop() {
            // In its own body a kernel's name is the builtin of that name,
            // if there is one (`Lowerer::call`).
            if let ExprKind::Call { callee, .. } = &e.kind
                && let Some(&c) = self.index.get(callee.name.as_str())
                && !(c == k && builtins::Builtin::lookup(&callee.name).is_some())
            {
                out.push((c, e.span));
            }
            let children: Vec<&Expr> = e.kind.children().collect();
            stack.extend(children.into_iter().rev());
        }
        out
    }

    /// Marks every kernel on a call cycle and reports each back edge.
    fn find_recursion(&mut self, diags: &mut Vec<Diagnostic>) {
        let n = self.file.kernels.len();
        let edges: Vec<Vec<(usize, Span)>> = (0..n).map(|k| self.calls(k)).collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut color = vec![0u8; n];
        // Redefinitions are skipped (calls resolve to the first definition).
        let mut defined = vec![false; n];
        for &i in self.index.values() {
            defined[i] = true;
        }
        for root in 0..n {
            if color[root] != 0 || !defined[root] {
                continue;
            }
            let mut path: Vec<usize> = vec![root];
            let mut next_edge: Vec<usize> = vec![0];
            color[root] = 1;
            while let Some(&k) = path.last() {
                let top = path.len() - 1;
                if let Some(&(c, span)) = edges[k].get(next_edge[top]) {
                    next_edge[top] += 1;
                    match color[c] {
                        0 => {
                            color[c] = 1;
                            path.push(c);
                            next_edge.push(0);
                        }
                        1 => {
                            let start = path.iter().position(|&p| p == c).unwrap_or(0);
                            let cycle: Vec<&str> = path[start..]
                                .iter()
                                .chain(std::iter::once(&c))
                                .map(|&i| self.file.kernels[i].name.name.as_str())
                                .collect();
                            self.recursive.extend(path[start..].iter().copied());
                            let caller = &self.file.kernels[k].name.name;
                            let callee = &self.file.kernels[c].name.name;
                            let msg = if k == c {
                                format!("kernel `{caller}` calls itself")
                            } else {
                                format!(
                                    "kernel `{caller}` calls `{callee}`, which calls `{caller}` again"
                                )
                            };
                            diags.push(
                                Diagnostic::new(Code::E0108, msg)
                                    .primary(span, "recursive call")
                                    .note(format!("call cycle: {}", cycle.join(" -> ")))
                                    .help("kernel calls are inlined, so they cannot recurse"),
                            );
                        }
                        _ => {}
                    }
                } else {
                    color[k] = 2;
                    path.pop();
                    next_edge.pop();
                }
            }
        }
    }

    /// Kernels in an order where callees come before their callers.
    fn order(&self) -> Vec<usize> {
        let n = self.file.kernels.len();
        let mut done = vec![false; n];
        let mut out = Vec::with_capacity(n);
        for root in 0..n {
            let mut stack = vec![(root, false)];
            while let Some((k, expanded)) = stack.pop() {
                if done[k] {
                    continue;
                }
                if expanded {
                    done[k] = true;
                    out.push(k);
                } else {
                    stack.push((k, true));
                    for (c, _) in self.calls(k) {
                        if !done[c] && !self.recursive.contains(&c) {
                            stack.push((c, false));
                        }
                    }
                }
            }
        }
        out
    }
}

/// Checks every kernel of a file, dims symbolic. Returns all diagnostics in
/// source order; an empty list means the file is valid.
pub fn check(file: &File) -> Vec<Diagnostic> {
    check_within(file, MAX_FILE_NODES)
}

/// [`check`] with `nodes` IR nodes for the whole file.
fn check_within(file: &File, nodes: usize) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut cx = Context::new(file, &mut diags);
    cx.nodes_left.set(nodes);
    cx.node_budget = nodes;
    for k in cx.order() {
        let mut kd = Vec::new();
        lower_instance(&cx, k, Mode::Generic, &mut kd);
        if !kd.is_empty() {
            cx.broken.insert(k);
        }
        diags.extend(kd);
    }
    let mut seen = HashSet::new();
    diags.retain(|d| seen.insert((d.code.clone(), d.primary_span(), d.message.clone())));
    diags.sort_by_key(|d| d.primary_span().map_or(u32::MAX, |s| s.start));
    diags
}

/// Lowers the kernel `name` with its symbolic dims bound by `env`, after
/// checking the whole file. The kernel is verified and has fixed dims only.
pub fn lower(file: &File, name: &str, env: &DimEnv) -> Result<Kernel, Vec<Diagnostic>> {
    let diags = check(file);
    if !diags.is_empty() {
        return Err(diags);
    }
    let mut ignored = Vec::new();
    let cx = Context::new(file, &mut ignored);
    let Some(&idx) = cx.index.get(name) else {
        let names: Vec<&str> = file.kernels.iter().map(|k| k.name.name.as_str()).collect();
        return Err(vec![
            Diagnostic::new(Code::E0502, format!("no kernel named `{name}`"))
                .note(format!("the file defines: {}", names.join(", "))),
        ]);
    };
    let mut diags = Vec::new();
    let kernel = lower_instance(&cx, idx, Mode::Concrete(env), &mut diags);
    match kernel {
        Some(mut k) if diags.is_empty() => {
            k.remove_dead_nodes();
            tessera_ir::verify::verify_concrete(&k).map_err(|e| {
                vec![Diagnostic::with_code(
                    "ICE",
                    format!("internal compiler error: lowering produced invalid IR: {e}"),
                )]
            })?;
            Ok(k)
        }
        _ => Err(diags),
    }
}

/// The symbolic dims of a kernel's signature, with their first occurrence.
pub fn signature_dims(def: &crate::ast::KernelDef) -> Vec<(String, Span)> {
    let mut out: Vec<(String, Span)> = Vec::new();
    let types = def
        .params
        .iter()
        .map(|p| &p.ty)
        .chain(def.results.iter().map(|r| &r.ty));
    for t in types {
        for d in &t.dims {
            if let DimExpr::Sym(i) = d
                && !out.iter().any(|(n, _)| *n == i.name)
            {
                out.push((i.name.clone(), i.span));
            }
        }
    }
    out
}

/// Converts a written type under a dim map; unknown names and bad extents
/// are reported (when `diags` is given) and become [`Dim::Unknown`].
fn resolve_type(
    ty: &TypeExpr,
    dims: &HashMap<String, Dim>,
    mut diags: Option<&mut Vec<Diagnostic>>,
) -> TensorType {
    let mut out = Vec::with_capacity(ty.dims.len());
    for d in &ty.dims {
        out.push(match d {
            DimExpr::Int(0, span) => {
                if let Some(diags) = diags.as_deref_mut() {
                    diags.push(
                        Diagnostic::new(Code::E0405, "dim 0 is not a positive integer")
                            .primary(*span, "tensors have no empty dims"),
                    );
                }
                Dim::Unknown
            }
            DimExpr::Int(n, _) => Dim::Fixed(*n),
            DimExpr::Sym(i) => match dims.get(&i.name) {
                Some(d) => d.clone(),
                None => {
                    if let Some(diags) = diags.as_deref_mut() {
                        diags.push(
                            Diagnostic::new(Code::E0105, format!("unknown dim `{}`", i.name))
                                .primary(i.span, "not a dim of this kernel's signature")
                                .help("symbolic dims are declared by using them in the parameter or result types"),
                        );
                    }
                    Dim::Unknown
                }
            },
        });
    }
    let shape = Shape(out);
    if shape.too_large()
        && let Some(diags) = diags
    {
        diags.push(
            Diagnostic::new(
                Code::E0409,
                format!(
                    "a tensor of type {}{shape} has {} elements, more than the {MAX_TENSOR_ELEMENTS} a tensor may have",
                    ty.dtype,
                    shape.product_text()
                ),
            )
            .primary(ty.span, "too large"),
        );
    }
    TensorType::new(ty.dtype, shape)
}

/// Lowers one instance of kernel `idx`. Diagnostics go to `diags`; the
/// kernel is returned when it could be built.
fn lower_instance(
    cx: &Context<'_>,
    idx: usize,
    mode: Mode<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Kernel> {
    let def = &cx.file.kernels[idx];
    // Signature checks.
    for (i, p) in def.params.iter().enumerate() {
        if let Some(first) = def.params[..i].iter().find(|q| q.name.name == p.name.name) {
            diags.push(
                Diagnostic::new(
                    Code::E0103,
                    format!("parameter `{}` is declared twice", p.name.name),
                )
                .primary(p.name.span, "declared again here")
                .secondary(first.name.span, "first declared here"),
            );
        }
        if p.ty.dtype == DType::Bool {
            diags.push(
                Diagnostic::new(
                    Code::E0302,
                    format!("parameter `{}` has type bool", p.name.name),
                )
                .primary(p.ty.span, "bool cannot be a parameter type")
                .help("pass an i8 or i32 tensor and compare it (`x != 0`) to get a bool"),
            );
        }
    }
    for (i, r) in def.results.iter().enumerate() {
        if let Some(name) = &r.name
            && let Some(first) = def.results[..i]
                .iter()
                .filter_map(|q| q.name.as_ref())
                .find(|q| q.name == name.name)
        {
            diags.push(
                Diagnostic::new(
                    Code::E0103,
                    format!("result `{}` is declared twice", name.name),
                )
                .primary(name.span, "declared again here")
                .secondary(first.span, "first declared here"),
            );
        }
    }
    // `(NAME: TYPE, …)` or `(TYPE, …)`: all results named, or none.
    if let Some(named) = def.results.iter().find_map(|r| r.name.as_ref())
        && let Some(bare) = def.results.iter().find(|r| r.name.is_none())
    {
        diags.push(
            Diagnostic::new(Code::E0010, "a result without a name among named results")
                .primary(bare.ty.span, "expected `NAME: TYPE`")
                .secondary(named.span, "this result is named")
                .help("name every result, or none (outputs are then `out0`, `out1`, …)"),
        );
    }
    let mut dims: HashMap<String, Dim> = HashMap::new();
    for (name, span) in signature_dims(def) {
        let d = match mode {
            Mode::Generic => Dim::sym(&name),
            Mode::Concrete(env) => match env.get(&name) {
                Some(&v) if v > 0 => Dim::Fixed(v),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            Code::E0500,
                            format!("symbolic dim `{name}` of kernel `{}` has no value", def.name.name),
                        )
                        .primary(span, "unbound")
                        .help(format!(
                            "give an input whose shape binds `{name}`, or bind it with `--dim {name}=…`"
                        )),
                    );
                    Dim::Unknown
                }
            },
        };
        dims.insert(name, d);
    }
    let mut kernel = Kernel::new(def.name.name.clone());
    let mut params = Vec::with_capacity(def.params.len());
    for p in &def.params {
        let ty = resolve_type(&p.ty, &dims, Some(diags));
        params.push((p.name.clone(), kernel.add_param(p.name.name.clone(), ty)));
    }
    let results: Vec<TensorType> = def
        .results
        .iter()
        .map(|r| resolve_type(&r.ty, &dims, Some(diags)))
        .collect();
    // A broken signature still lets the body be checked (its types are as
    // written, bad dims unknown), but code is generated only from a clean one.
    if matches!(mode, Mode::Concrete(_)) && !diags.is_empty() {
        return None;
    }
    let mut lowerer = body::Lowerer::new(cx, &mut kernel, dims, diags);
    let outputs = lowerer.lower_kernel_body(def, &params, &results, None)?;
    for (i, value) in outputs.into_iter().enumerate() {
        let name = def.results[i]
            .name
            .as_ref()
            .map_or_else(|| format!("out{i}"), |n| n.name.clone());
        kernel.outputs.push(tessera_ir::Output { name, value });
    }
    Some(kernel)
}

#[cfg(test)]
mod tests;
