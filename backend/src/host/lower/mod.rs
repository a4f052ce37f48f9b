//! One stage of the host schedule to a CLIF function
//! `(params, results, work, lo, hi) -> status` that runs the indices
//! `lo..hi` of the stage's outermost axis.
//!
//! Every operand is read through one strided index map from the loop
//! indices: broadcasting, transposes and slices only change the strides (as
//! in the reference interpreter).

mod gemm;
mod simd;

use super::HostError;
use super::elem::{El, Emit, Math, mem};
use super::schedule::{
    Access, GEMM_ROWS, Place, Schedule, Stage, State, broadcast, contiguous, dims, index,
};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, InstBuilder, Type, Value as ClValue, types};
use cranelift_frontend::FunctionBuilder;
use std::collections::BTreeMap;
use tessera_ir::{BinaryOp, Kernel, Op, ReduceOp, Value};

/// The stage function's own view of memory: the parameter and result
/// pointers (loaded in the entry block) and the workspace.
struct Frame {
    params: Vec<ClValue>,
    results: Vec<ClValue>,
    work: ClValue,
    lo: ClValue,
    hi: ClValue,
    /// Whether the host has fused multiply-add.
    fma: bool,
    /// The pointer type.
    ptr: Type,
    /// A row stage's scratch.
    scratch: Option<cranelift_codegen::ir::StackSlot>,
}

/// Lowers stage `s` of `sched` into the function under construction in
/// `fb`, whose signature is `(params: ptr, results: ptr, work: ptr, lo: i64,
/// hi: i64) -> i32`.
pub(super) fn lower_stage(
    k: &Kernel,
    sched: &Schedule,
    s: usize,
    fb: &mut FunctionBuilder<'_>,
    math: Math,
    ptr: Type,
    fma: bool,
) -> Result<(), HostError> {
    let entry = fb.create_block();
    fb.append_block_params_for_function_params(entry);
    fb.switch_to_block(entry);
    let p = fb.block_params(entry).to_vec();
    let step = ptr.bytes() as i32;
    let params = (0..k.params.len())
        .map(|i| fb.ins().load(ptr, mem(), p[0], step * i as i32))
        .collect();
    let results = (0..k.outputs.len())
        .map(|j| fb.ins().load(ptr, mem(), p[1], step * j as i32))
        .collect();
    let frame = Frame {
        params,
        results,
        work: p[2],
        lo: p[3],
        hi: p[4],
        fma,
        ptr,
        scratch: match &sched.stages[s] {
            Stage::Rows { scratch, .. } if *scratch > 0 => Some(fb.create_sized_stack_slot(
                cranelift_codegen::ir::StackSlotData::new(
                    cranelift_codegen::ir::StackSlotKind::ExplicitSlot,
                    *scratch as u32,
                    6,
                ),
            )),
            _ => None,
        },
    };
    let mut l = Lower {
        e: Emit { fb, math },
        k,
        sched,
        frame,
        row: None,
        fails: Vec::new(),
    };
    l.stage(&sched.stages[s])?;
    let ok = l.e.fb.ins().iconst(types::I32, 0);
    l.e.fb.ins().return_(&[ok]);
    for (fail, node) in std::mem::take(&mut l.fails) {
        let fb = l.fb();
        fb.switch_to_block(fail);
        let code = fb.ins().iconst(types::I32, 1 + node as i64);
        fb.ins().return_(&[code]);
    }
    l.e.fb.seal_all_blocks();
    Ok(())
}

impl Lower<'_, '_, '_> {
    /// One stage's loop nest (or, in a row stage, its part of one row).
    fn stage(&mut self, stage: &Stage) -> Result<(), HostError> {
        let l = self;
        match stage {
            Stage::Rows { rows, parts, .. } => {
                let parts = parts.clone();
                l.stage_nest(rows, &mut |l, idx| {
                    l.row = Some(idx.to_vec());
                    for p in &parts {
                        l.stage(p)?;
                    }
                    l.row = None;
                    Ok(())
                })?
            }
            Stage::Map {
                dims,
                nodes,
                stores,
            } => {
                if l.vector_map_ok(dims, nodes) {
                    l.vector_map(dims, nodes, stores)?
                } else {
                    l.map(dims, nodes, stores)?
                }
            }
            Stage::Reduce { node } => {
                if l.vector_reduce_ok(*node) {
                    l.vector_reduce(*node)?
                } else {
                    l.reduce(*node)?
                }
            }
            Stage::Pack {
                src,
                dst,
                valid,
                padded,
                int,
                panels,
            } => l.pack(src, *dst, valid, padded, *int, *panels)?,
            Stage::Gemm(g) => l.gemm(g)?,
            Stage::Place { src, dst, dims } => l.copy(src, dst, dims)?,
        }
        Ok(())
    }
}

/// The number of indices of a stage's outermost axis (1 for a stage over a
/// scalar): what its callers split among threads.
pub(super) fn outer_extent(k: &Kernel, stage: &Stage) -> u64 {
    let d = match stage {
        Stage::Map { dims, .. } | Stage::Place { dims, .. } => dims.clone(),
        Stage::Rows { rows, .. } => rows.clone(),
        Stage::Pack { padded, .. } => padded.clone(),
        Stage::Reduce { node } => dims(k, Value::Node(*node as u32)).unwrap_or_default(),
        // Blocks of rows, over every batch index.
        Stage::Gemm(g) => vec![g.batch * g.m_pad / GEMM_ROWS],
    };
    d.first().copied().unwrap_or(1)
}

struct Lower<'k, 'a, 'b> {
    e: Emit<'a, 'b>,
    k: &'k Kernel,
    sched: &'k Schedule,
    frame: Frame,
    /// In a row stage, the indices of the row its parts are lowered for.
    row: Option<Vec<ClValue>>,
    /// The blocks that return a division's failure, and its node.
    fails: Vec<(Block, usize)>,
}

type Body<'f, 'k, 'a, 'b> =
    dyn FnMut(&mut Lower<'k, 'a, 'b>, &[ClValue]) -> Result<(), HostError> + 'f;

impl<'k, 'a, 'b> Lower<'k, 'a, 'b> {
    fn fb(&mut self) -> &mut FunctionBuilder<'b> {
        self.e.fb
    }

    /// Runs `body` for every index of `dims`, row-major, the outermost axis
    /// over the function's `lo..hi` (a scalar's one iteration is index 0);
    /// in a part of a row stage, for the indices of the current row.
    fn stage_nest(
        &mut self,
        dims: &[u64],
        body: &mut Body<'_, 'k, 'a, 'b>,
    ) -> Result<(), HostError> {
        if let Some(prefix) = self.row.clone() {
            // A part of a row stage: this row only.
            let mut idx = prefix;
            return self.nest_from(dims, &mut idx, body);
        }
        let (lo, hi) = (self.frame.lo, self.frame.hi);
        if dims.is_empty() {
            // One iteration, in the range that holds index 0.
            let fb = self.fb();
            let run = fb.create_block();
            let done = fb.create_block();
            let has = fb.ins().icmp_imm_s(IntCC::Equal, lo, 0);
            fb.ins().brif(has, run, &[], done, &[]);
            fb.switch_to_block(run);
            body(self, &[])?;
            let fb = self.fb();
            fb.ins().jump(done, &[]);
            fb.switch_to_block(done);
            return Ok(());
        }
        let mut idx = Vec::with_capacity(dims.len());
        self.loop_over(lo, hi, &mut |l, i| {
            idx.push(i);
            let r = l.nest_from(dims, &mut idx, body);
            idx.pop();
            r
        })
    }

    /// `for i in lo..hi { body(i) }`.
    fn loop_over(
        &mut self,
        lo: ClValue,
        hi: ClValue,
        body: &mut dyn FnMut(&mut Self, ClValue) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        self.loop_step(lo, hi, 1, body)
    }

    /// `for i in (lo..hi).step_by(step) { body(i) }`.
    fn loop_step(
        &mut self,
        lo: ClValue,
        hi: ClValue,
        step: i64,
        body: &mut dyn FnMut(&mut Self, ClValue) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        let fb = self.fb();
        let head = fb.create_block();
        let inner = fb.create_block();
        let exit = fb.create_block();
        fb.append_block_param(head, types::I64);
        fb.ins().jump(head, &[lo.into()]);
        fb.switch_to_block(head);
        let i = fb.block_params(head)[0];
        let more = fb.ins().icmp(IntCC::SignedLessThan, i, hi);
        fb.ins().brif(more, inner, &[], exit, &[]);
        fb.switch_to_block(inner);
        body(self, i)?;
        let fb = self.fb();
        let next = fb.ins().iadd_imm_s(i, step);
        fb.ins().jump(head, &[next.into()]);
        fb.switch_to_block(exit);
        Ok(())
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
        let lo = fb.ins().iconst(types::I64, 0);
        let hi = fb.ins().iconst(types::I64, n as i64);
        self.loop_over(lo, hi, &mut |l, i| {
            idx.push(i);
            let r = l.nest_from(dims, idx, body);
            idx.pop();
            r
        })
    }

    fn base(&mut self, place: Place) -> ClValue {
        match place {
            Place::Param(i) => self.frame.params[i],
            Place::Result(j) => self.frame.results[j],
            Place::Work(off) => {
                let w = self.frame.work;
                self.fb().ins().iadd_imm_s(w, off as i64)
            }
            Place::Scratch(off) => {
                let slot = self
                    .frame
                    .scratch
                    .unwrap_or_else(|| unreachable!("internal: scratch outside a row stage"));
                let ptr = self.frame.ptr;
                self.fb().ins().stack_addr(ptr, slot, off as i32)
            }
        }
    }

    /// The address of `a`'s element at `idx`.
    fn addr(&mut self, a: &Access, idx: &[ClValue]) -> ClValue {
        let base = self.base(a.place);
        let fb = self.fb();
        let mut lin = fb.ins().iconst(types::I64, a.offset);
        for (&i, &s) in idx.iter().zip(&a.strides) {
            if s != 0 {
                let t = fb.ins().imul_imm_s(i, s);
                lin = fb.ins().iadd(lin, t);
            }
        }
        let bytes = fb.ins().imul_imm_s(lin, a.dtype.size_bytes() as i64);
        fb.ins().iadd(base, bytes)
    }

    /// How value `v` is read from memory, over its own dims.
    fn access(&self, v: usize) -> Result<Access, HostError> {
        let value = self.value(v);
        let dtype = self.k.ty(value).dtype;
        match &self.sched.states[v] {
            State::Stored(place) => Ok(Access {
                place: *place,
                dtype,
                strides: contiguous(&dims(self.k, value)?),
                offset: 0,
            }),
            State::View(a) => Ok(a.clone()),
            State::Const(_) | State::Reg(_) => Err(HostError::Unsupported(format!(
                "internal: value {v} is not in memory where it is read"
            ))),
        }
    }

    fn value(&self, v: usize) -> Value {
        super::schedule::value(self.k, v)
    }

    /// A block that returns the status of a division by zero at `node`
    /// (filled after the stage's code: a block is filled before another is
    /// entered).
    fn fail_block(&mut self, node: usize) -> Block {
        let fail = self.fb().create_block();
        self.fails.push((fail, node));
        fail
    }

    /// A map stage: every node's element in registers, the stored ones
    /// written.
    fn map(&mut self, dims: &[u64], nodes: &[usize], stores: &[usize]) -> Result<(), HostError> {
        let k = self.k;
        let np = k.params.len();
        let fails: BTreeMap<usize, Block> = nodes
            .iter()
            .filter(|&&i| {
                matches!(k.nodes[i].op, Op::Binary(BinaryOp::Div)) && k.nodes[i].ty.dtype.is_int()
            })
            .map(|&i| (i, self.fail_block(i)))
            .collect();
        let outs: Vec<(usize, Access)> = stores
            .iter()
            .map(|&v| self.access(v).map(|a| (v, a)))
            .collect::<Result<_, _>>()?;
        self.stage_nest(dims, &mut |l, idx| {
            let mut regs: BTreeMap<usize, El> = BTreeMap::new();
            for &i in nodes {
                let n = &k.nodes[i];
                let mut xs = Vec::with_capacity(n.args.len());
                for &a in &n.args {
                    xs.push(l.operand(index(k, a), dims, idx, &regs)?);
                }
                let el = l.elementwise(i, &xs, fails.get(&i).copied())?;
                regs.insert(np + i, el);
            }
            for (v, a) in &outs {
                let el = regs.get(v).copied().ok_or_else(|| {
                    HostError::Unsupported(format!("internal: value {v} stored but not computed"))
                })?;
                let at = l.addr(a, idx);
                l.e.store(a.dtype, el, at);
            }
            Ok(())
        })
    }

    /// Operand `v` of a map node at `idx` over `dims`: its register, its
    /// constant, or a load through its access broadcast to `dims`.
    fn operand(
        &mut self,
        v: usize,
        dims: &[u64],
        idx: &[ClValue],
        regs: &BTreeMap<usize, El>,
    ) -> Result<El, HostError> {
        if let Some(&el) = regs.get(&v) {
            return Ok(el);
        }
        let value = self.value(v);
        let dtype = self.k.ty(value).dtype;
        if let Some(c) = self.sched.consts[v] {
            return Ok(self.e.constant(dtype, c));
        }
        let a = self.access(v)?;
        let from = super::schedule::dims(self.k, value)?;
        let a = Access {
            strides: broadcast(&from, &a.strides, dims),
            ..a
        };
        let at = self.addr(&a, idx);
        Ok(self.e.load(dtype, at))
    }

    /// One map node's element from its operands.
    fn elementwise(&mut self, i: usize, xs: &[El], fail: Option<Block>) -> Result<El, HostError> {
        let n = &self.k.nodes[i];
        let dtype = n.ty.dtype;
        let e = &mut self.e;
        match &n.op {
            Op::Full { value, .. } => Ok(e.constant(dtype, *value)),
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
            // A constant's broadcast or reshape, stored for a reader.
            Op::BroadcastTo(_) | Op::Reshape(_) => Ok(xs[0]),
            Op::Reduce { .. }
            | Op::MatMul
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => Err(HostError::Unsupported(format!(
                "internal: `{}` in a map stage",
                n.op.name()
            ))),
        }
    }

    /// `dst[idx] = src[idx]` over `dims`.
    fn copy(&mut self, src: &Access, dst: &Access, dims: &[u64]) -> Result<(), HostError> {
        self.stage_nest(dims, &mut |l, idx| {
            let at = l.addr(src, idx);
            let x = l.e.load(src.dtype, at);
            let to = l.addr(dst, idx);
            l.e.store(dst.dtype, x, to);
            Ok(())
        })
    }

    fn reduce(&mut self, node: usize) -> Result<(), HostError> {
        let k = self.k;
        let n = &k.nodes[node];
        let Op::Reduce { op, axes } = &n.op else {
            return Err(HostError::Unsupported("internal: not a reduction".into()));
        };
        let op = *op;
        let arg = index(k, n.args[0]);
        let src = self.access(arg)?;
        let in_dims = dims(k, n.args[0])?;
        let out = self.access(k.params.len() + node)?;
        let out_dims = dims(k, Value::Node(node as u32))?;
        let (mut kept_s, mut red_s, mut red_d) = (Vec::new(), Vec::new(), Vec::new());
        for (d, (&len, &s)) in in_dims.iter().zip(&src.strides).enumerate() {
            if axes.contains(&d) {
                red_s.push(s);
                red_d.push(len);
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
        let base = Access {
            strides: kept_s.iter().chain(&red_s).copied().collect(),
            ..src
        };
        self.stage_nest(&out_dims, &mut |l, oidx| {
            let fb = l.fb();
            let acc = fb.declare_var(acc_ty);
            let v0 = match acc_ty {
                types::F64 => fb.ins().f64const(init),
                types::F32 => fb.ins().f32const(init as f32),
                _ => fb.ins().iconst(types::I32, init as i64),
            };
            fb.def_var(acc, v0);
            let idx: Vec<ClValue> = oidx.to_vec();
            let mut body = |l: &mut Self, ridx: &[ClValue]| -> Result<(), HostError> {
                let full: Vec<ClValue> = idx.iter().chain(ridx).copied().collect();
                let at = l.addr(&base, &full);
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
            };
            let mut ridx = Vec::new();
            l.nest_from(&red_d, &mut ridx, &mut body)?;
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
}
