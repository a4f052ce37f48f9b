//! A kernel to one CLIF function: `(params, results, work) -> status`, one
//! loop nest per value in node order.
//!
//! Every value is packed row-major, so an operand's element is found by one
//! strided index map from the loop indices: broadcasting, transposes and
//! slices only change the strides (as in the reference interpreter).

use super::HostError;
use super::elem::{El, Emit, Math, mem};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, InstBuilder, Type, Value as ClValue, types};
use cranelift_frontend::FunctionBuilder;
use tessera_ir::{DType, Kernel, Op, ReduceOp, Value};

/// Where a value's bytes live.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Loc {
    Param(usize),
    Result(usize),
    /// A byte offset in the workspace.
    Work(u64),
}

/// What the caller provides besides inputs and results.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Layout {
    /// Bytes of workspace.
    pub work_bytes: u64,
}

/// A strided view of a value: element `offset + Σ idx_d · strides[d]`.
struct View {
    base: ClValue,
    dtype: DType,
    strides: Vec<i64>,
    offset: i64,
}

fn dims_of(k: &Kernel, v: Value) -> Result<Vec<u64>, HostError> {
    k.ty(v).shape.as_fixed().ok_or_else(|| {
        HostError::Unsupported(format!("`{}` has symbolic dims; bind them first", k.name))
    })
}

/// Row-major strides of `dims`, in elements.
fn contiguous(dims: &[u64]) -> Vec<i64> {
    let mut s = vec![1i64; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1] as i64;
    }
    s
}

/// The strides that read a value of `from` dims as `to` dims under numpy
/// broadcasting (right-aligned; size-1 and missing axes repeat).
fn broadcast(from: &[u64], to: &[u64]) -> Vec<i64> {
    let s = contiguous(from);
    let lead = to.len() - from.len();
    (0..to.len())
        .map(|d| {
            if d < lead || from[d - lead] == 1 {
                0
            } else {
                s[d - lead]
            }
        })
        .collect()
}

fn size(d: DType) -> i64 {
    d.size_bytes() as i64
}

/// Lowers `k` into the function under construction in `fb`, whose
/// signature is `(params: ptr, results: ptr, work: ptr) -> i32`.
pub(super) fn lower(
    k: &Kernel,
    fb: &mut FunctionBuilder<'_>,
    math: Math,
    ptr: Type,
) -> Result<Layout, HostError> {
    // Where each value lives.
    let mut locs: Vec<Loc> = (0..k.params.len()).map(Loc::Param).collect();
    let mut work = 0u64;
    for (i, n) in k.nodes.iter().enumerate() {
        let out = k
            .outputs
            .iter()
            .position(|o| o.value == Value::Node(i as u32));
        let loc = match (&n.op, out) {
            (_, Some(j)) => Loc::Result(j),
            (Op::Reshape(_), None) => locs[value_index(k, n.args[0])],
            (_, None) => {
                let bytes = n.ty.shape.num_elements().unwrap_or(0) * n.ty.dtype.size_bytes() as u64;
                let at = work;
                work = (work + bytes).next_multiple_of(64);
                Loc::Work(at)
            }
        };
        locs.push(loc);
    }

    let entry = fb.create_block();
    fb.append_block_params_for_function_params(entry);
    fb.switch_to_block(entry);
    let [tp, tr, tw] = [0, 1, 2].map(|i| fb.block_params(entry)[i]);
    let step = i32::try_from(ptr.bytes()).unwrap_or(8);
    let bases: Vec<ClValue> = locs
        .iter()
        .map(|l| match *l {
            Loc::Param(i) => fb.ins().load(ptr, mem(), tp, step * i as i32),
            Loc::Result(j) => fb.ins().load(ptr, mem(), tr, step * j as i32),
            Loc::Work(off) => fb.ins().iadd_imm_s(tw, off as i64),
        })
        .collect();
    let result_bases: Vec<ClValue> = (0..k.outputs.len())
        .map(|j| fb.ins().load(ptr, mem(), tr, step * j as i32))
        .collect();

    let mut l = Lower {
        e: Emit { fb, math },
        k,
        bases,
    };
    for i in 0..k.nodes.len() {
        l.node(i, &locs)?;
    }
    // Results that are not computed in place: parameters, a value returned
    // twice.
    for (j, o) in k.outputs.iter().enumerate() {
        let vi = value_index(k, o.value);
        if locs[vi] != Loc::Result(j) {
            let ty = k.ty(o.value);
            let bytes = ty.shape.num_elements().unwrap_or(0) * ty.dtype.size_bytes() as u64;
            let src = l.bases[vi];
            l.copy_bytes(src, result_bases[j], bytes);
        }
    }
    let ok = l.e.fb.ins().iconst(types::I32, 0);
    l.e.fb.ins().return_(&[ok]);
    l.e.fb.seal_all_blocks();
    Ok(Layout { work_bytes: work })
}

fn value_index(k: &Kernel, v: Value) -> usize {
    match v {
        Value::Param(p) => p as usize,
        Value::Node(n) => k.params.len() + n as usize,
    }
}

struct Lower<'k, 'a, 'b> {
    e: Emit<'a, 'b>,
    k: &'k Kernel,
    bases: Vec<ClValue>,
}

type Body<'f, 'k, 'a, 'b> =
    dyn FnMut(&mut Lower<'k, 'a, 'b>, &[ClValue]) -> Result<(), HostError> + 'f;

impl<'k, 'a, 'b> Lower<'k, 'a, 'b> {
    fn fb(&mut self) -> &mut FunctionBuilder<'b> {
        self.e.fb
    }

    /// Runs `body` for every index of `dims`, row-major.
    fn nest(&mut self, dims: &[u64], body: &mut Body<'_, 'k, 'a, 'b>) -> Result<(), HostError> {
        let mut idx = Vec::with_capacity(dims.len());
        self.nest_from(dims, &mut idx, body)
    }

    fn nest_from(
        &mut self,
        dims: &[u64],
        idx: &mut Vec<ClValue>,
        body: &mut Body<'_, 'k, 'a, 'b>,
    ) -> Result<(), HostError> {
        let Some(&n) = dims.get(idx.len()) else {
            return body(self, idx);
        };
        let fb = self.fb();
        let head = fb.create_block();
        let inner = fb.create_block();
        let exit = fb.create_block();
        fb.append_block_param(head, types::I64);
        let zero = fb.ins().iconst(types::I64, 0);
        fb.ins().jump(head, &[zero.into()]);
        fb.switch_to_block(head);
        let i = fb.block_params(head)[0];
        let more = fb.ins().icmp_imm_s(IntCC::UnsignedLessThan, i, n as i64);
        fb.ins().brif(more, inner, &[], exit, &[]);
        fb.switch_to_block(inner);
        idx.push(i);
        self.nest_from(dims, idx, body)?;
        idx.pop();
        let fb = self.fb();
        let next = fb.ins().iadd_imm_s(i, 1);
        fb.ins().jump(head, &[next.into()]);
        fb.switch_to_block(exit);
        Ok(())
    }

    /// The address of `view`'s element at `idx`.
    fn addr(&mut self, view: &View, idx: &[ClValue]) -> ClValue {
        let fb = self.fb();
        let mut lin = fb.ins().iconst(types::I64, view.offset);
        for (&i, &s) in idx.iter().zip(&view.strides) {
            if s != 0 {
                let t = fb.ins().imul_imm_s(i, s);
                lin = fb.ins().iadd(lin, t);
            }
        }
        let bytes = fb.ins().imul_imm_s(lin, size(view.dtype));
        fb.ins().iadd(view.base, bytes)
    }

    fn view(&self, v: Value, strides: Vec<i64>, offset: i64) -> View {
        View {
            base: self.bases[value_index(self.k, v)],
            dtype: self.k.ty(v).dtype,
            strides,
            offset,
        }
    }

    /// A block that returns the status of a division by zero at `node`.
    fn fail_block(&mut self, node: usize) -> Block {
        let fb = self.fb();
        let here = fb.current_block();
        let fail = fb.create_block();
        fb.switch_to_block(fail);
        let code = fb.ins().iconst(types::I32, 1 + node as i64);
        fb.ins().return_(&[code]);
        if let Some(b) = here {
            fb.switch_to_block(b);
        }
        fail
    }

    fn node(&mut self, i: usize, locs: &[Loc]) -> Result<(), HostError> {
        let k = self.k;
        let n = &k.nodes[i];
        let me = Value::Node(i as u32);
        let out_dims = dims_of(k, me)?;
        let out = self.view(me, contiguous(&out_dims), 0);
        let arg_dims: Vec<Vec<u64>> = n
            .args
            .iter()
            .map(|&a| dims_of(k, a))
            .collect::<Result<_, _>>()?;
        let dtype = n.ty.dtype;
        match &n.op {
            Op::Full { value, .. } => {
                let value = *value;
                self.nest(&out_dims, &mut |l, idx| {
                    let c = l.e.constant(dtype, value);
                    let at = l.addr(&out, idx);
                    l.e.store(dtype, c, at);
                    Ok(())
                })
            }
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::Cast(_)
            | Op::BroadcastTo(_) => {
                let srcs: Vec<View> = n
                    .args
                    .iter()
                    .zip(&arg_dims)
                    .map(|(&a, d)| self.view(a, broadcast(d, &out_dims), 0))
                    .collect();
                let divides = matches!(n.op, Op::Binary(tessera_ir::BinaryOp::Div));
                let fail = (divides && dtype.is_int()).then(|| self.fail_block(i));
                self.nest(&out_dims, &mut |l, idx| {
                    let mut xs = Vec::with_capacity(srcs.len());
                    for s in &srcs {
                        let at = l.addr(s, idx);
                        xs.push(l.e.load(s.dtype, at));
                    }
                    let r = l.elementwise(&n.op, &xs, dtype, fail)?;
                    let at = l.addr(&out, idx);
                    l.e.store(dtype, r, at);
                    Ok(())
                })
            }
            Op::Transpose(perm) => {
                let s = contiguous(&arg_dims[0]);
                let strides = perm.iter().map(|&p| s[p]).collect();
                let src = self.view(n.args[0], strides, 0);
                self.copy_view(&src, &out, &out_dims)
            }
            Op::Slice { axis, start, .. } => {
                let s = contiguous(&arg_dims[0]);
                let off = *start as i64 * s[*axis];
                let src = self.view(n.args[0], s, off);
                self.copy_view(&src, &out, &out_dims)
            }
            Op::Reshape(_) => {
                let (src, dst) = (value_index(k, n.args[0]), value_index(k, me));
                if locs[src] != locs[dst] {
                    let bytes = n.ty.shape.num_elements().unwrap_or(0) * dtype.size_bytes() as u64;
                    let (s, d) = (self.bases[src], self.bases[dst]);
                    self.copy_bytes(s, d, bytes);
                }
                Ok(())
            }
            Op::Concat { axis } => {
                let mut at_axis = 0i64;
                for (&a, d) in n.args.iter().zip(&arg_dims) {
                    let src = self.view(a, contiguous(d), 0);
                    let dst = View {
                        base: out.base,
                        dtype,
                        strides: out.strides.clone(),
                        offset: at_axis * out.strides[*axis],
                    };
                    self.copy_view(&src, &dst, d)?;
                    at_axis += d[*axis] as i64;
                }
                Ok(())
            }
            Op::Reduce { op, axes } => {
                let src = self.view(n.args[0], contiguous(&arg_dims[0]), 0);
                self.reduce(*op, axes, src, &arg_dims[0], out, &out_dims)
            }
            Op::MatMul => self.matmul(n.args[0], n.args[1], &arg_dims, out, &out_dims),
        }
    }

    /// One elementwise op on loaded operands.
    fn elementwise(
        &mut self,
        op: &Op,
        xs: &[El],
        dtype: DType,
        fail: Option<Block>,
    ) -> Result<El, HostError> {
        let e = &mut self.e;
        match op {
            Op::Unary(u) => e.unary(*u, xs[0], dtype),
            Op::Binary(b) => e.binary(*b, xs[0], xs[1], dtype, &mut |fb, y| {
                if let Some(fail) = fail {
                    let zero = fb.ins().icmp_imm_s(IntCC::Equal, y, 0);
                    let go = fb.create_block();
                    fb.ins().brif(zero, fail, &[], go, &[]);
                    fb.switch_to_block(go);
                }
            }),
            Op::Compare(c) => e.compare(*c, xs[0], xs[1]),
            Op::Select => e.select(xs[0], xs[1], xs[2]),
            Op::Cast(to) => Ok(e.cast(xs[0], *to)),
            Op::BroadcastTo(_) => Ok(xs[0]),
            Op::Full { .. }
            | Op::Reduce { .. }
            | Op::MatMul
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => Err(HostError::Unsupported(format!(
                "internal: `{}` is not elementwise",
                op.name()
            ))),
        }
    }

    /// `dst[idx] = src[idx]` over `dims` (same dtype).
    fn copy_view(&mut self, src: &View, dst: &View, dims: &[u64]) -> Result<(), HostError> {
        self.nest(dims, &mut |l, idx| {
            let at = l.addr(src, idx);
            let x = l.e.load(src.dtype, at);
            let to = l.addr(dst, idx);
            l.e.store(dst.dtype, x, to);
            Ok(())
        })
    }

    fn copy_bytes(&mut self, src: ClValue, dst: ClValue, bytes: u64) {
        let s = View {
            base: src,
            dtype: DType::I8,
            strides: vec![1],
            offset: 0,
        };
        let d = View {
            base: dst,
            dtype: DType::I8,
            strides: vec![1],
            offset: 0,
        };
        // Byte copies cannot fail.
        let _ = self.copy_view(&s, &d, &[bytes]);
    }

    fn reduce(
        &mut self,
        op: ReduceOp,
        axes: &[usize],
        src: View,
        in_dims: &[u64],
        out: View,
        out_dims: &[u64],
    ) -> Result<(), HostError> {
        let (mut kept_s, mut red_s, mut red_d) = (Vec::new(), Vec::new(), Vec::new());
        for (d, (&n, &s)) in in_dims.iter().zip(&src.strides).enumerate() {
            if axes.contains(&d) {
                red_s.push(s);
                red_d.push(n);
            } else {
                kept_s.push(s);
            }
        }
        let count: u64 = red_d.iter().product();
        let float = src.dtype.is_float();
        let (acc_ty, init): (Type, f64) = match (float, op) {
            (true, ReduceOp::Sum | ReduceOp::Mean) => (types::F64, 0.0),
            (true, ReduceOp::Max) => (types::F32, f64::NEG_INFINITY),
            (true, ReduceOp::Min) => (types::F32, f64::INFINITY),
            (false, ReduceOp::Sum | ReduceOp::Mean) => (types::I32, 0.0),
            (false, ReduceOp::Max) => (types::I32, f64::from(i32::MIN)),
            (false, ReduceOp::Min) => (types::I32, f64::from(i32::MAX)),
        };
        let out_dtype = out.dtype;
        self.nest(out_dims, &mut |l, oidx| {
            let fb = l.fb();
            let acc = fb.declare_var(acc_ty);
            let v0 = match acc_ty {
                types::F64 => fb.ins().f64const(init),
                types::F32 => fb.ins().f32const(init as f32),
                _ => fb.ins().iconst(types::I32, init as i64),
            };
            fb.def_var(acc, v0);
            let base = View {
                base: src.base,
                dtype: src.dtype,
                strides: kept_s.iter().chain(&red_s).copied().collect(),
                offset: src.offset,
            };
            let kept: Vec<ClValue> = oidx.to_vec();
            l.nest(&red_d, &mut |l, ridx| {
                let idx: Vec<ClValue> = kept.iter().chain(ridx).copied().collect();
                let at = l.addr(&base, &idx);
                let x = l.e.load(base.dtype, at);
                let fb = l.fb();
                let a = fb.use_var(acc);
                let next = match (x, op) {
                    (El::F(x), ReduceOp::Sum | ReduceOp::Mean) => {
                        let w = fb.ins().fpromote(types::F64, x);
                        fb.ins().fadd(a, w)
                    }
                    (El::F(x), ReduceOp::Max) => fb.ins().fmax(a, x),
                    (El::F(x), ReduceOp::Min) => fb.ins().fmin(a, x),
                    (El::I(x), ReduceOp::Sum | ReduceOp::Mean) => fb.ins().iadd(a, x),
                    (El::I(x), ReduceOp::Max) => fb.ins().smax(a, x),
                    (El::I(x), ReduceOp::Min) => fb.ins().smin(a, x),
                    (El::B(_), _) => {
                        return Err(HostError::Unsupported("a reduction of bools".into()));
                    }
                };
                fb.def_var(acc, next);
                Ok(())
            })?;
            let fb = l.fb();
            let a = fb.use_var(acc);
            let r = match (float, op) {
                (true, ReduceOp::Mean) => {
                    let c = fb.ins().f64const(count.max(1) as f64);
                    let m = fb.ins().fdiv(a, c);
                    El::F(l.e.round64(out_dtype, m))
                }
                (true, ReduceOp::Sum) => El::F(l.e.round64(out_dtype, a)),
                (true, ReduceOp::Max | ReduceOp::Min) => El::F(a),
                (false, _) => El::I(l.e.saturate(out_dtype, a)),
            };
            let at = l.addr(&out, oidx);
            l.e.store(out_dtype, r, at);
            Ok(())
        })
    }

    fn matmul(
        &mut self,
        a: Value,
        b: Value,
        arg_dims: &[Vec<u64>],
        out: View,
        out_dims: &[u64],
    ) -> Result<(), HostError> {
        let (ad, bd) = (&arg_dims[0], &arg_dims[1]);
        let (ra, rb, ro) = (ad.len(), bd.len(), out_dims.len());
        let (m, kk, n) = (ad[ra - 2], ad[ra - 1], bd[rb - 1]);
        let batch = &out_dims[..ro - 2];
        // Batch strides in elements: which matrix of each operand an output
        // batch index reads.
        let bstrides = |d: &[u64], mat: u64| -> Vec<i64> {
            broadcast(&d[..d.len() - 2], batch)
                .into_iter()
                .map(|s| s * mat as i64)
                .collect()
        };
        let mut sa = bstrides(ad, m * kk);
        sa.extend([kk as i64, 0, 1]);
        let mut sb = bstrides(bd, kk * n);
        sb.extend([0, 1, n as i64]);
        let va = self.view(a, sa, 0);
        let vb = self.view(b, sb, 0);
        let float = va.dtype.is_float();
        let out_dtype = out.dtype;
        self.nest(out_dims, &mut |l, oidx| {
            let fb = l.fb();
            let ty = if float { types::F64 } else { types::I32 };
            let acc = fb.declare_var(ty);
            let z = if float {
                fb.ins().f64const(0.0)
            } else {
                fb.ins().iconst(types::I32, 0)
            };
            fb.def_var(acc, z);
            let o: Vec<ClValue> = oidx.to_vec();
            l.nest(&[kk], &mut |l, kidx| {
                let idx: Vec<ClValue> = o.iter().chain(kidx).copied().collect();
                let pa = l.addr(&va, &idx);
                let pb = l.addr(&vb, &idx);
                let x = l.e.load(va.dtype, pa);
                let y = l.e.load(vb.dtype, pb);
                let fb = l.fb();
                let s = fb.use_var(acc);
                let next = match (x, y) {
                    (El::F(x), El::F(y)) => {
                        // The product of two f32 is exact in f64.
                        let x = fb.ins().fpromote(types::F64, x);
                        let y = fb.ins().fpromote(types::F64, y);
                        let p = fb.ins().fmul(x, y);
                        fb.ins().fadd(s, p)
                    }
                    (El::I(x), El::I(y)) => {
                        let p = fb.ins().imul(x, y);
                        fb.ins().iadd(s, p)
                    }
                    _ => return Err(HostError::Unsupported("a matmul of these dtypes".into())),
                };
                fb.def_var(acc, next);
                Ok(())
            })?;
            let a = l.fb().use_var(acc);
            let r = if float {
                El::F(l.e.round64(out_dtype, a))
            } else {
                El::I(a)
            };
            let at = l.addr(&out, oidx);
            l.e.store(out_dtype, r, at);
            Ok(())
        })
    }
}
