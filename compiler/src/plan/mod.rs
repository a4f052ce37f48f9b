//! Planning: a concrete IR kernel to a [`Plan`] of stages over GM views.
//!
//! Every value gets a [`View`]: parameters view their buffers; reshapes,
//! transposes, slices and broadcasts only change a view (no stage); `full`
//! is a constant view; every other op becomes a stage writing a fresh
//! buffer — the kernel's result buffer when its value is returned (through
//! reshapes, if any), workspace otherwise. A view a stage cannot read
//! directly (a transposed operand of an elementwise op, a non-contiguous
//! reduction input) is first materialised by a copy or transpose stage.
//! Each IR op is its own stage, except a fused group (nodes the optimiser
//! marked with one `group`, a contiguous run): the group is one stage of
//! its kind ([`crate::opt::group`]) — an elementwise stage with a
//! multi-instruction body, or a matmul with its epilogue. A group the
//! planner cannot build as one stage (a member used outside the group) is
//! planned op by op instead.
//!
//! [`schedule`] then chooses each stage's tiles, block count and on-chip
//! buffers from the machine description, and checks capacities.

pub mod schedule;

use crate::opt::group::{GroupKind, RowsForm, body_of, classify, ew_op, rows_form};
use crate::opt::lang::Arg;
use tessera_ir::plan::transpose::plane;
use tessera_ir::plan::{
    BufKind, Buffer, Elementwise, EwArg, EwInst, EwOp, MatMul, MatOperand, Pattern, Plan, Reduce,
    Rows, RowsInput, Source, Stage, StageKind, Transpose, View, Width, coalesce, pattern,
    row_major_strides,
};
use tessera_ir::{DType, Diagnostic, Kernel, Op, Scalar, Value};
use tessera_sim::Machine;

/// Builds the unfused plan of a concrete kernel for a machine.
pub fn plan(kernel: &Kernel, machine: &Machine) -> Result<Plan, Vec<Diagnostic>> {
    plan_or_unscheduled(kernel, machine).map_err(|(diags, _)| diags)
}

/// [`plan`], and on failure also the IR nodes of the stages that could
/// not be scheduled (none when planning failed before scheduling).
pub fn plan_or_unscheduled(
    kernel: &Kernel,
    machine: &Machine,
) -> Result<Plan, (Vec<Diagnostic>, Vec<usize>)> {
    let coupled = machine.organisation == tessera_sim::machine::Organisation::Coupled;
    let mut p = Planner::new(kernel, coupled);
    p.run().map_err(|d| (vec![d], Vec::new()))?;
    let mut plan = Plan {
        kernel: kernel.name.clone(),
        machine: machine.name.clone(),
        buffers: p.buffers,
        workspace: p.workspace,
        stages: p.stages,
    };
    schedule::schedule(&mut plan, kernel, machine)?;
    Ok(plan)
}

struct Planner<'a> {
    k: &'a Kernel,
    buffers: Vec<Buffer>,
    workspace: u64,
    stages: Vec<Stage>,
    /// The view of every value: params first, then nodes.
    views: Vec<Option<View>>,
    /// For each node: the result index its value should be written to.
    hint: Vec<Option<usize>>,
    /// Results already written by a stage.
    written: Vec<bool>,
    /// For each node: the nodes that use it.
    users: Vec<Vec<usize>>,
    /// Nodes computed by an earlier stage (members of a fused group).
    folded: Vec<bool>,
    /// Cube and vector share a core: a matmul's epilogue may scale its
    /// product.
    coupled: bool,
}

fn shape_of(k: &Kernel, v: Value) -> Vec<u64> {
    k.ty(v).shape.as_fixed().unwrap_or_default()
}

/// `view` broadcast (numpy-style, aligned right) to `shape`.
fn broadcast(view: &View, shape: &[u64]) -> View {
    let lead = shape.len() - view.shape.len();
    let mut strides = vec![0; lead];
    for (i, (&d, &s)) in view.shape.iter().zip(&view.strides).enumerate() {
        strides.push(if d == 1 && shape[lead + i] != 1 { 0 } else { s });
    }
    View {
        shape: shape.to_vec(),
        strides,
        ..view.clone()
    }
}

impl<'a> Planner<'a> {
    fn new(k: &'a Kernel, coupled: bool) -> Planner<'a> {
        let mut buffers = Vec::new();
        for (i, p) in k.params.iter().enumerate() {
            buffers.push(Buffer {
                name: p.name.clone(),
                kind: BufKind::Param(i),
                dtype: p.ty.dtype,
                shape: p.ty.shape.as_fixed().unwrap_or_default(),
            });
        }
        for (i, o) in k.outputs.iter().enumerate() {
            let ty = k.ty(o.value);
            buffers.push(Buffer {
                name: o.name.clone(),
                kind: BufKind::Result(i),
                dtype: ty.dtype,
                shape: ty.shape.as_fixed().unwrap_or_default(),
            });
        }
        // Results written in place: a node returned directly, or through a
        // chain of reshapes (a contiguous buffer reshapes for free).
        let mut hint = vec![None; k.nodes.len()];
        let mut uses = vec![0usize; k.nodes.len()];
        let mut users: Vec<Vec<usize>> = vec![Vec::new(); k.nodes.len()];
        for (i, n) in k.nodes.iter().enumerate() {
            for a in &n.args {
                if let Value::Node(j) = a {
                    uses[*j as usize] += 1;
                    if !users[*j as usize].contains(&i) {
                        users[*j as usize].push(i);
                    }
                }
            }
        }
        for o in &k.outputs {
            if let Value::Node(j) = o.value {
                uses[j as usize] += 1;
            }
        }
        for (i, o) in k.outputs.iter().enumerate() {
            let mut v = o.value;
            while let Value::Node(j) = v {
                let j = j as usize;
                if hint[j].is_some() {
                    break;
                }
                hint[j] = Some(i);
                // A reshape (used once, or returned itself) passes the hint
                // on to its source when the source has no other use.
                let src = k.nodes[j].args.first().copied();
                if matches!(k.nodes[j].op, Op::Reshape(_))
                    && (uses[j] <= 1 || v == o.value)
                    && let Some(src @ Value::Node(s)) = src
                    && uses[s as usize] == 1
                {
                    v = src;
                    continue;
                }
                break;
            }
        }
        let mut views = vec![None; k.params.len() + k.nodes.len()];
        for (i, p) in k.params.iter().enumerate() {
            views[i] = Some(View::contiguous(
                i,
                p.ty.dtype,
                &p.ty.shape.as_fixed().unwrap_or_default(),
            ));
        }
        let results = k.outputs.len();
        Planner {
            k,
            buffers,
            workspace: 0,
            stages: Vec::new(),
            views,
            hint,
            written: vec![false; results],
            users,
            folded: vec![false; k.nodes.len()],
            coupled,
        }
    }

    fn slot(&self, v: Value) -> usize {
        match v {
            Value::Param(i) => i as usize,
            Value::Node(i) => self.k.params.len() + i as usize,
        }
    }

    fn view(&self, v: Value) -> Result<View, Diagnostic> {
        self.views[self.slot(v)].clone().ok_or_else(|| {
            Diagnostic::with_code("ICE", "internal: a value was used before it was planned")
        })
    }

    /// A fresh contiguous buffer: the hinted result, or workspace.
    fn fresh(&mut self, dtype: DType, shape: &[u64], node: Option<usize>) -> View {
        let elements: u64 = shape.iter().product();
        if let Some(r) = node.and_then(|n| self.hint[n])
            && !self.written[r]
        {
            let b = self.k.params.len() + r;
            if self.buffers[b].dtype == dtype && self.buffers[b].elements() == elements {
                self.written[r] = true;
                return View::contiguous(b, dtype, shape);
            }
        }
        let bytes = elements * dtype.size_bytes() as u64;
        let offset = self.workspace;
        self.workspace += bytes.div_ceil(512) * 512;
        let id = self.buffers.len();
        self.buffers.push(Buffer {
            name: format!("ws{}", id - self.k.params.len() - self.k.outputs.len()),
            kind: BufKind::Workspace { offset },
            dtype,
            shape: shape.to_vec(),
        });
        View::contiguous(id, dtype, shape)
    }

    fn push(&mut self, nodes: Vec<usize>, kind: StageKind) {
        self.stages.push(Stage::new(nodes, kind));
    }

    /// A contiguous copy of `view` (a copy or transpose stage).
    fn materialise(&mut self, view: &View, node: Option<usize>) -> View {
        let out = self.fresh(view.dtype, &view.shape, node);
        self.copy_into(view, &out, node.into_iter().collect());
        out
    }

    /// A stage copying `src` into `dst` (same shape).
    fn copy_into(&mut self, src: &View, dst: &View, nodes: Vec<usize>) {
        let (_, strides) = coalesce(&dst.shape, &[&src.strides, &dst.strides]);
        let transposed = pattern(&strides[0]) == Pattern::Strided
            && src.buffer().is_some()
            && plane(src, dst).is_ok();
        if transposed {
            // The output dim along which the source is contiguous.
            let row_dim = src
                .strides
                .iter()
                .zip(&src.shape)
                .rposition(|(&s, &d)| s == 1 && d > 1)
                .unwrap_or(0);
            self.push(
                nodes,
                StageKind::Transpose(Transpose {
                    input: src.clone(),
                    out: dst.clone(),
                    row_dim,
                    schedule: Default::default(),
                }),
            );
        } else {
            self.push(
                nodes,
                StageKind::Elementwise(Elementwise {
                    inputs: vec![src.clone()],
                    body: vec![EwInst {
                        op: EwOp::Copy,
                        args: vec![EwArg::Input(0)],
                        dtype: dst.dtype,
                    }],
                    out: dst.clone(),
                    also: Vec::new(),
                    schedule: Default::default(),
                }),
            );
        }
    }

    /// The view as an operand an elementwise stage reads directly.
    fn readable(&mut self, view: View, out_shape: &[u64]) -> View {
        let b = broadcast(&view, out_shape);
        let probe = View::contiguous(0, b.dtype, out_shape);
        let (_, strides) = coalesce(out_shape, &[&b.strides, &probe.strides]);
        if pattern(&strides[0]) == Pattern::Strided {
            let m = self.materialise(&view, None);
            broadcast(&m, out_shape)
        } else {
            b
        }
    }

    fn run(&mut self) -> Result<(), Diagnostic> {
        let k = self.k;
        for (i, n) in k.nodes.iter().enumerate() {
            if self.folded[i] {
                continue; // computed by its group's stage
            }
            if let Some(g) = n.group
                && (i == 0 || k.nodes[i - 1].group != Some(g))
            {
                let end = (i..k.nodes.len())
                    .find(|&j| k.nodes[j].group != Some(g))
                    .unwrap_or(k.nodes.len());
                if self.group(i..end)? {
                    continue;
                }
            }
            let out_shape = n.ty.shape.as_fixed().unwrap_or_default();
            let view = match &n.op {
                Op::Full { value, ty } => View::constant(*value, ty.dtype, &out_shape),
                Op::Reshape(_) => {
                    let v = self.view(n.args[0])?;
                    self.reshape(v, &out_shape)
                }
                Op::Transpose(perm) => {
                    let v = self.view(n.args[0])?;
                    View {
                        shape: perm.iter().map(|&p| v.shape[p]).collect(),
                        strides: perm.iter().map(|&p| v.strides[p]).collect(),
                        ..v
                    }
                }
                Op::Slice { axis, start, .. } => {
                    let mut v = self.view(n.args[0])?;
                    if v.buffer().is_some() {
                        v.offset += start * v.strides[*axis];
                    }
                    v.shape = out_shape.clone();
                    v
                }
                Op::BroadcastTo(_) => broadcast(&self.view(n.args[0])?, &out_shape),
                Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_) => {
                    let args: Vec<View> = n
                        .args
                        .iter()
                        .map(|&a| self.view(a))
                        .collect::<Result<_, _>>()?;
                    let inputs: Vec<View> = args
                        .into_iter()
                        .map(|v| self.readable(v, &out_shape))
                        .collect();
                    let out = self.fresh(n.ty.dtype, &out_shape, Some(i));
                    let op = ew_op(&n.op).ok_or_else(|| {
                        Diagnostic::with_code("ICE", "internal: not an elementwise op")
                    })?;
                    let args = (0..inputs.len()).map(EwArg::Input).collect();
                    self.push(
                        vec![i],
                        StageKind::Elementwise(Elementwise {
                            inputs,
                            body: vec![EwInst {
                                op,
                                args,
                                dtype: n.ty.dtype,
                            }],
                            out: out.clone(),
                            also: Vec::new(),
                            schedule: Default::default(),
                        }),
                    );
                    out
                }
                Op::Reduce { op, axes } => self.reduce(i, *op, axes)?,
                Op::MatMul => self.matmul(i, &[], false, None, n.ty.dtype)?,
                Op::Concat { axis } => {
                    let out = self.fresh(n.ty.dtype, &out_shape, Some(i));
                    let mut at = 0;
                    for &a in &n.args {
                        let v = self.view(a)?;
                        let mut dst = out.clone();
                        dst.offset += at * out.strides[*axis];
                        dst.shape = v.shape.clone();
                        at += v.shape[*axis];
                        self.copy_into(&v, &dst, vec![i]);
                    }
                    out
                }
            };
            let s = self.slot(Value::Node(i as u32));
            self.views[s] = Some(view);
        }
        // Every result must end up in its buffer.
        for (r, o) in k.outputs.iter().enumerate() {
            let v = self.view(o.value)?;
            let b = k.params.len() + r;
            let in_place = v.buffer() == Some(b) && v.offset == 0 && v.is_contiguous();
            if !in_place {
                let dst = View::contiguous(b, v.dtype, &shape_of(k, o.value));
                let node = match o.value {
                    Value::Node(j) => vec![j as usize],
                    Value::Param(_) => Vec::new(),
                };
                self.copy_into(&v, &dst, node);
            }
        }
        Ok(())
    }

    fn reshape(&mut self, v: View, shape: &[u64]) -> View {
        if let Source::Constant(c) = v.source {
            return View::constant(c, v.dtype, shape);
        }
        // Only size-1 dims change: keep the strides of the others.
        let real = |s: &[u64]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
        if real(&v.shape) == real(shape) {
            let mut kept = v
                .shape
                .iter()
                .zip(&v.strides)
                .filter(|(d, _)| **d != 1)
                .map(|(_, s)| *s);
            let strides = shape
                .iter()
                .map(|&d| if d == 1 { 0 } else { kept.next().unwrap_or(0) })
                .collect();
            return View {
                shape: shape.to_vec(),
                strides,
                ..v
            };
        }
        let v = if v.is_contiguous() {
            v
        } else {
            self.materialise(&v, None)
        };
        View {
            strides: row_major_strides(shape),
            shape: shape.to_vec(),
            ..v
        }
    }

    fn reduce(
        &mut self,
        i: usize,
        op: tessera_ir::ReduceOp,
        axes: &[usize],
    ) -> Result<View, Diagnostic> {
        let n = &self.k.nodes[i];
        let input = self.view(n.args[0])?;
        let input = if input.is_contiguous() && input.buffer().is_some() {
            input
        } else {
            self.materialise(&input, None)
        };
        let acc = if n.ty.dtype.is_float() {
            DType::F32
        } else {
            DType::I32
        };
        // Group the reduced axes into runs of adjacent (non-unit) dims; each
        // run is one stage, innermost first.
        let shape = input.shape.clone();
        let mut runs: Vec<(usize, usize)> = Vec::new();
        for &a in axes {
            if shape[a] == 1 {
                continue;
            }
            match runs.last_mut() {
                Some((_, end)) if (*end..a).all(|d| shape[d] == 1 || axes.contains(&d)) => {
                    *end = a + 1
                }
                _ => runs.push((a, a + 1)),
            }
        }
        let total: u64 = axes.iter().map(|&a| shape[a]).product();
        let out_shape = n.ty.shape.as_fixed().unwrap_or_default();
        if runs.is_empty() {
            // Nothing to reduce (axes of extent 1, or none): a copy.
            let out = self.fresh(n.ty.dtype, &out_shape, Some(i));
            let src = View {
                shape: out_shape.clone(),
                strides: row_major_strides(&out_shape),
                ..input
            };
            self.copy_into(&src, &out, vec![i]);
            return Ok(out);
        }
        let mut cur = input;
        let mut cur_shape = shape;
        for (step, &(start, end)) in runs.iter().rev().enumerate() {
            let last = step + 1 == runs.len();
            let outer: u64 = cur_shape[..start].iter().product();
            let reduced: u64 = cur_shape[start..end].iter().product();
            let inner: u64 = cur_shape[end..].iter().product();
            let mut next_shape = cur_shape.clone();
            next_shape[start..end].fill(1);
            let dtype = if last { n.ty.dtype } else { acc };
            let out = if last {
                self.fresh(dtype, &out_shape, Some(i))
            } else {
                self.fresh(dtype, &next_shape, None)
            };
            let divisor = if op == tessera_ir::ReduceOp::Mean && last {
                total
            } else {
                1
            };
            let stage_op = if op == tessera_ir::ReduceOp::Mean && !last {
                tessera_ir::ReduceOp::Sum
            } else {
                op
            };
            self.push(
                vec![i],
                StageKind::Reduce(Reduce {
                    op: stage_op,
                    input: cur.clone(),
                    out: out.clone(),
                    outer,
                    reduced,
                    inner,
                    acc,
                    divisor,
                    schedule: Default::default(),
                }),
            );
            cur = View {
                shape: next_shape.clone(),
                strides: row_major_strides(&next_shape),
                ..out
            };
            cur_shape = next_shape;
        }
        Ok(View {
            shape: out_shape.clone(),
            strides: row_major_strides(&out_shape),
            ..cur
        })
    }

    /// Plans the fused group `nodes` as one stage; `false` when it cannot
    /// be one (then its nodes are planned one by one).
    fn group(&mut self, nodes: std::ops::Range<usize>) -> Result<bool, Diagnostic> {
        let k = self.k;
        let last = nodes.end - 1;
        // Members other than the last whose values leave the group: an
        // elementwise stage stores them too (of the output's shape); other
        // stages keep one result.
        let escaping: Vec<usize> = nodes
            .clone()
            .take(nodes.len() - 1)
            .filter(|&j| {
                self.users[j].iter().any(|u| !nodes.contains(u))
                    || k.outputs.iter().any(|o| o.value == Value::Node(j as u32))
            })
            .collect();
        let (body, inputs) = body_of(k, nodes.clone());
        let tys: Vec<tessera_ir::TensorType> =
            nodes.clone().map(|j| k.nodes[j].ty.clone()).collect();
        let in_tys: Vec<tessera_ir::TensorType> = inputs.iter().map(|&v| k.ty(v).clone()).collect();
        let mut consts = Vec::with_capacity(inputs.len());
        for &v in &inputs {
            consts.push(self.view(v)?.buffer().is_none());
        }
        let out_shape = shape_of(k, Value::Node(last as u32));
        let kind = classify(&body, &in_tys, &consts, &tys);
        let stores_all = matches!(kind, Some(GroupKind::Elementwise))
            && escaping
                .iter()
                .all(|&j| shape_of(k, Value::Node(j as u32)) == out_shape);
        if !escaping.is_empty() && !stores_all {
            return Ok(false);
        }
        let mut also_views: Vec<(usize, View)> = Vec::new();
        let view = match kind {
            Some(GroupKind::Rows) => {
                let Some(form) = rows_form(&body, &in_tys, &consts, &tys) else {
                    return Ok(false);
                };
                self.rows(nodes.clone(), &form, &inputs)?
            }
            Some(GroupKind::Elementwise) => {
                let mut views = Vec::with_capacity(inputs.len());
                for &v in &inputs {
                    let view = self.view(v)?;
                    views.push(self.readable(view, &out_shape));
                }
                let mut insts = Vec::with_capacity(body.nodes.len());
                for (j, (op, args)) in body.nodes.iter().enumerate() {
                    let op = ew_op(&op.op).ok_or_else(|| {
                        Diagnostic::with_code("ICE", "internal: not an elementwise op")
                    })?;
                    let args = args
                        .iter()
                        .map(|a| match *a {
                            Arg::In(x) => EwArg::Input(x as usize),
                            Arg::At(x) => EwArg::Inst(x as usize),
                        })
                        .collect();
                    insts.push(EwInst {
                        op,
                        args,
                        dtype: tys[j].dtype,
                    });
                }
                let out = self.fresh(k.nodes[last].ty.dtype, &out_shape, Some(last));
                let mut also = Vec::with_capacity(escaping.len());
                for &j in &escaping {
                    let v = self.fresh(k.nodes[j].ty.dtype, &out_shape, Some(j));
                    also.push((j - nodes.start, v.clone()));
                    also_views.push((j, v));
                }
                self.push(
                    nodes.clone().collect(),
                    StageKind::Elementwise(Elementwise {
                        inputs: views,
                        body: insts,
                        out: out.clone(),
                        also,
                        schedule: Default::default(),
                    }),
                );
                out
            }
            Some(GroupKind::MatMulEpilogue { relu, scale, out }) => {
                // The scale: the constant input's value, as its f32.
                let scale = match (scale, inputs.get(2)) {
                    (false, _) => None,
                    (true, Some(&c)) if self.coupled => match self.view(c)?.source {
                        Source::Constant(Scalar::Float(v)) => Some(v as f32),
                        Source::Constant(_) | Source::Buffer(_) => return Ok(false),
                    },
                    (true, _) => return Ok(false),
                };
                let folded: Vec<usize> = nodes.clone().skip(1).collect();
                self.matmul(nodes.start, &folded, relu, scale, out)?
            }
            None => return Ok(false),
        };
        for j in nodes {
            self.folded[j] = true;
            let s = self.slot(Value::Node(j as u32));
            self.views[s] = Some(view.clone());
        }
        for (j, v) in also_views {
            let s = self.slot(Value::Node(j as u32));
            self.views[s] = Some(v);
        }
        Ok(true)
    }

    /// The row stage of the group `nodes` in row form `form`, reading
    /// `inputs`; returns the result's view.
    fn rows(
        &mut self,
        nodes: std::ops::Range<usize>,
        form: &RowsForm,
        inputs: &[Value],
    ) -> Result<View, Diagnostic> {
        let k = self.k;
        let last = nodes.end - 1;
        let outer: u64 = form.lead.iter().product();
        let n = form.n;
        let mut full = form.lead.clone();
        full.push(n);
        let mut views = Vec::with_capacity(inputs.len());
        for (&v, &w) in inputs.iter().zip(&form.inputs) {
            let view = self.view(v)?;
            let flat = match (w, view.source.clone()) {
                (Width::Full, Source::Constant(c)) => View::constant(c, view.dtype, &[outer, n]),
                (Width::Row, Source::Constant(c)) => View::constant(c, view.dtype, &[outer]),
                (Width::Full, Source::Buffer(_)) => match rows_view(&broadcast(&view, &full)) {
                    Some(f) => f,
                    None => {
                        // Rows neither in one stride nor periodic (rows
                        // repeated within a head: `[H, 1, n]` over
                        // `[H, S, n]`): copied out whole.
                        let m = self.materialise(&broadcast(&view, &full), None);
                        rows_view(&m).ok_or_else(|| {
                            Diagnostic::with_code("ICE", "internal: a row input stays strided")
                        })?
                    }
                },
                (Width::Row, Source::Buffer(_)) => {
                    let m = if view.is_contiguous() {
                        view
                    } else {
                        self.materialise(&view, None)
                    };
                    View {
                        shape: vec![outer],
                        strides: vec![1],
                        ..m
                    }
                }
            };
            views.push(RowsInput {
                view: flat,
                width: w,
            });
        }
        let node = &k.nodes[last];
        let out_shape = node.ty.shape.as_fixed().unwrap_or_default();
        let out = self.fresh(node.ty.dtype, &out_shape, Some(last));
        let flat_out = match form.insts.last().map(|i| i.width) {
            Some(Width::Row) => vec![outer],
            _ => vec![outer, n],
        };
        self.push(
            nodes.collect(),
            StageKind::Rows(Rows {
                outer,
                n,
                inputs: views,
                body: form.insts.clone(),
                out: View {
                    strides: row_major_strides(&flat_out),
                    shape: flat_out,
                    ..out.clone()
                },
                schedule: Default::default(),
            }),
        );
        Ok(out)
    }

    /// A matmul stage for node `i`, with the epilogue nodes `folded` (whose
    /// values are the stage's output): `relu`, the scale and the output
    /// dtype.
    fn matmul(
        &mut self,
        i: usize,
        folded: &[usize],
        relu: bool,
        scale: Option<f32>,
        dtype: DType,
    ) -> Result<View, Diagnostic> {
        let n = &self.k.nodes[i];
        let out_shape = n.ty.shape.as_fixed().unwrap_or_default();
        let batch = &out_shape[..out_shape.len() - 2];
        let mut operands = Vec::new();
        for &a in &n.args {
            let v = self.view(a)?;
            let r = v.shape.len();
            let (rs, cs) = (v.strides[r - 2], v.strides[r - 1]);
            let (rows, cols) = (v.shape[r - 2], v.shape[r - 1]);
            let row_major = (cs == 1 || cols == 1) && (rs >= cols || rows == 1);
            let transposed = !row_major && (rs == 1 || rows == 1) && (cs >= rows || cols == 1);
            let (v, transposed) = if v.buffer().is_some() && (row_major || transposed) {
                (v, transposed)
            } else {
                (self.materialise(&v, None), false)
            };
            // Batch dims broadcast to the output's (stride 0).
            let mut target = batch.to_vec();
            target.extend_from_slice(&v.shape[r - 2..]);
            operands.push(MatOperand {
                view: broadcast(&v, &target),
                transposed,
            });
        }
        let last = folded.last().copied().unwrap_or(i);
        let out = self.fresh(dtype, &out_shape, Some(last));
        let b = operands
            .pop()
            .ok_or_else(|| Diagnostic::with_code("ICE", "internal: matmul arity"))?;
        let a = operands
            .pop()
            .ok_or_else(|| Diagnostic::with_code("ICE", "internal: matmul arity"))?;
        let mut nodes = vec![i];
        for &j in folded {
            // The folded nodes' values are the stage's output.
            self.folded[j] = true;
            let s = self.slot(Value::Node(j as u32));
            self.views[s] = Some(out.clone());
            nodes.push(j);
        }
        self.push(
            nodes,
            StageKind::MatMul(MatMul {
                a,
                b,
                out: out.clone(),
                relu,
                scale,
                schedule: Default::default(),
            }),
        );
        Ok(out)
    }
}

/// A `[lead.., n]` view (column stride 1) as the view of a row stage's
/// full input: `[rows, n]` with one row stride over the flattened leading
/// dims (0 for a repeated row), or, when the leading dims coalesce to two
/// with a nonzero inner stride, `[rows / p, p, n]` rows that repeat with
/// period `p` (a `[S, S]` mask broadcast over heads: strides `[0, S, 1]`; see
/// [`tessera_ir::plan::RowsInput::period`]); `None` otherwise.
fn rows_view(v: &View) -> Option<View> {
    let (&n, lead) = v.shape.split_last()?;
    let (&cs, lead_strides) = v.strides.split_last()?;
    if cs != 1 && n > 1 {
        return None;
    }
    let (dims, strides) = coalesce(lead, &[lead_strides]);
    let (shape, strides) = match (dims.as_slice(), strides[0].as_slice()) {
        (&[rows], &[rs]) => (vec![rows, n], vec![rs, 1]),
        (&[b, p], &[hs, rs]) if rs != 0 && p > 1 => (vec![b, p, n], vec![hs, rs, 1]),
        _ => return None,
    };
    Some(View {
        shape,
        strides,
        ..v.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver;

    fn plan_of(text: &str, machine: &str) -> Plan {
        let kernel = driver::test_kernel(text);
        let m = Machine::builtin(machine).expect("machine");
        let k = crate::opt::optimise(&kernel, &m, crate::opt::Level::O2).expect("optimises");
        plan(&k.kernel, &m).expect("plans")
    }

    #[test]
    fn relu_and_cast_fold_into_the_matmul_stage() {
        let p = plan_of(
            "kernel k(a: f16[17, 40], b: f16[40, 15]) -> f16[17, 15] {\n    return cast(relu(a @ b), f16);\n}\n",
            "910b-like",
        );
        assert_eq!(p.stages.len(), 1, "{}", p.text());
        let s = &p.stages[0];
        assert_eq!(s.nodes, vec![0, 1, 2]);
        let StageKind::MatMul(MatMul { out, relu, .. }) = &s.kind else {
            panic!("not a matmul: {}", p.text());
        };
        assert!(*relu);
        assert_eq!(out.dtype, DType::F16);
        assert_eq!(out.buffer(), Some(2), "written straight into the result");
    }

    #[test]
    fn a_constant_scale_folds_into_the_matmul_stage_on_a_coupled_machine() {
        // The scale 0.1 rounds to its f32 (0.1f32) as the reference's f32
        // constant does; either operand order of the `mul`.
        for body in ["(a @ b) * 0.1", "0.1 * (a @ b)"] {
            let text = format!(
                "kernel k(a: f16[64, 32], b: f16[32, 48]) -> f32[64, 48] {{\n    return {body};\n}}\n"
            );
            let p = plan_of(&text, "910-like");
            assert_eq!(p.stages.len(), 1, "{}", p.text());
            let StageKind::MatMul(MatMul { scale, relu, .. }) = &p.stages[0].kind else {
                panic!("not a matmul: {}", p.text());
            };
            assert_eq!((*scale, *relu), (Some(0.1f32), false), "{}", p.text());
            // FixPipe does not scale: on the split machine the `mul` is a
            // stage of its own.
            let p = plan_of(&text, "910b-like");
            assert_eq!(p.stages.len(), 2, "{}", p.text());
            let StageKind::MatMul(MatMul { scale, .. }) = &p.stages[0].kind else {
                panic!("not a matmul: {}", p.text());
            };
            assert_eq!(*scale, None);
        }
        // Only an f32 product, scaled by a constant: an f16 result's `mul`
        // rounds the product first; a parameter is no constant.
        for (sig, body) in [
            (
                "a: f16[64, 32], b: f16[32, 48]) -> f16[64, 48]",
                "cast(a @ b, f16) * 0.5",
            ),
            (
                "a: f16[64, 32], b: f16[32, 48], s: f32[48]) -> f32[64, 48]",
                "(a @ b) * s",
            ),
        ] {
            let p = plan_of(
                &format!("kernel k({sig} {{\n    return {body};\n}}\n"),
                "910-like",
            );
            assert!(
                p.stages
                    .iter()
                    .all(|s| !matches!(&s.kind, StageKind::MatMul(MatMul { scale: Some(_), .. }))),
                "{}",
                p.text()
            );
        }
    }

    #[test]
    fn an_epilogue_with_other_uses_is_not_folded() {
        // The accumulator is also returned: a product of this depth is
        // computed once, and relu and cast become one elementwise stage
        // after it (not a second matmul with the epilogue; for a tiny
        // product, launch-bound either way, the cost model recomputes).
        let p = plan_of(
            "kernel k(a: f16[512, 16384], b: f16[16384, 512]) -> (x: f32[512, 512], y: f16[512, 512]) {\n    let c = a @ b;\n    return (c, cast(relu(c), f16));\n}\n",
            "910-like",
        );
        assert_eq!(p.stages.len(), 2, "{}", p.text());
        let StageKind::MatMul(MatMul { out, relu, .. }) = &p.stages[0].kind else {
            panic!("not a matmul: {}", p.text());
        };
        assert!(!*relu);
        assert_eq!(out.dtype, DType::F32);
        let StageKind::Elementwise(e) = &p.stages[1].kind else {
            panic!("not elementwise: {}", p.text());
        };
        assert_eq!(e.body.len(), 2, "{}", p.text());
        // A cast to f32 of an i8 matmul's i32 accumulator is no hardware
        // cast: only f16/bf16 casts of float accumulators fold.
        let p = plan_of(
            "kernel k(a: i8[16, 32], b: i8[32, 16]) -> f32[16, 16] {\n    return cast(relu(a @ b), f32);\n}\n",
            "910b-like",
        );
        assert_eq!(p.stages.len(), 2, "{}", p.text());
        assert_eq!(p.stages[0].nodes, vec![0, 1]);
    }

    #[test]
    fn batch_dims_broadcast_to_the_output() {
        let p = plan_of(
            "kernel k(a: f16[17, 40], b: f16[3, 15, 40]) -> f32[3, 17, 15] {\n    return a @ transpose(b, [0, 2, 1]);\n}\n",
            "910b-like",
        );
        let StageKind::MatMul(MatMul { a, b, .. }) = &p.stages[0].kind else {
            panic!("not a matmul: {}", p.text());
        };
        assert_eq!(a.view.shape, vec![3, 17, 40]);
        assert_eq!(a.view.strides, vec![0, 40, 1]);
        assert!(b.transposed);
        assert_eq!(b.view.strides, vec![600, 1, 40]);
    }
}
