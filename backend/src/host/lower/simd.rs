//! Four lanes at a time (Cranelift's x86-64 vectors are 128-bit): map
//! stages of float values (f16 and bf16 converted exactly to f32 lanes on
//! load, rounded back after every op, as the scalar code does) whose
//! operands run along the innermost axis with stride 1 or 0, and f32
//! reductions over a contiguous last axis.
//!
//! Every element of a vector map goes through the same vector code, the
//! last partial vector of a row too (its lanes loaded and stored one by
//! one), so an element's bits do not depend on where a range starts.
//! Transcendentals are polynomials here, within the spec's tolerance: `exp`
//! as Cephes' `expf` (range reduction by ln 2 in two parts, a degree-6
//! polynomial, the power of two applied in two halves so that subnormal
//! results round once), `erf` as Abramowitz & Stegun 7.1.26 (|error| ≤
//! 1.5e-7), `tanh` and `sigmoid` through `exp`.

use super::super::HostError;
use super::super::elem::mem;
use super::super::schedule::{Access, State, broadcast};
use super::Lower;
use crate::series::{ERF_SERIES, SERIES_BELOW, TANH_SERIES};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{BlockArg, InstBuilder, MemFlagsData, Value as ClValue, types};
use std::collections::BTreeMap;
use tessera_ir::{BinaryOp, DType, Op, ReduceOp, UnaryOp, Value};

const V: types::Type = types::F32X4;

/// Elements a sum's f32 lanes add up before they are folded into f64 (a
/// power of two, a multiple of the 16 a loop step takes).
const SUM_BLOCK: i64 = 1024;

/// `w + a` with the four f32 lanes of `a` widened to f64, lanes 0 and 2
/// into `w`'s lane 0, 1 and 3 into its lane 1: `(w + [a0, a1]) + [a2, a3]`.
fn widen_into(fb: &mut cranelift_frontend::FunctionBuilder<'_>, w: ClValue, a: ClValue) -> ClValue {
    let lo = fb.ins().fvpromote_low(a);
    let hi: Vec<ClValue> = (2..4u8)
        .map(|t| {
            let x = fb.ins().extractlane(a, t);
            fb.ins().fpromote(types::F64, x)
        })
        .collect();
    let hi_v = fb.ins().scalar_to_vector(types::F64X2, hi[0]);
    let hi_v = fb.ins().insertlane(hi_v, hi[1], 1);
    let w = fb.ins().fadd(w, lo);
    fb.ins().fadd(w, hi_v)
}

/// The body of a vector loop: the indices (the last one the first lane's)
/// and, for the last partial vector, the end of the row.
type VectorBody<'f, 'k, 'a, 'b> =
    dyn FnMut(&mut Lower<'k, 'a, 'b>, &[ClValue], Option<ClValue>) -> Result<(), HostError> + 'f;

/// How a vector map reads one operand.
#[derive(Clone)]
enum Src {
    /// A constant, splatted.
    Const(f32),
    /// Memory, with the access's innermost stride 0 (splat) or 1.
    Mem(Access, bool),
}

impl<'k, 'a, 'b> Lower<'k, 'a, 'b> {
    fn splat(&mut self, x: f32) -> ClValue {
        let fb = self.fb();
        let s = fb.ins().f32const(x);
        fb.ins().splat(V, s)
    }

    /// Whether map stage `nodes` over `dims` runs four lanes at a time.
    pub(super) fn vector_map_ok(&self, dims: &[u64], nodes: &[usize]) -> bool {
        let k = self.k;
        let np = k.params.len();
        if dims.is_empty() {
            return false;
        }
        let vector_op = |op: &Op| match op {
            Op::Unary(u) => !matches!(u, UnaryOp::Log | UnaryOp::Sin | UnaryOp::Cos),
            Op::Binary(b) => !matches!(b, BinaryOp::Pow),
            Op::Full { .. } | Op::BroadcastTo(_) | Op::Reshape(_) => true,
            Op::Cast(to) => to.is_float(),
            Op::Compare(_)
            | Op::Select
            | Op::Reduce { .. }
            | Op::MatMul
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => false,
        };
        nodes.iter().all(|&i| {
            let n = &k.nodes[i];
            n.ty.dtype.is_float()
                && vector_op(&n.op)
                && n.args.iter().all(|&a| {
                    let v = super::index(k, a);
                    let in_map = v >= np && nodes.contains(&(v - np));
                    k.ty(a).dtype.is_float()
                        && (in_map
                            || self.sched.consts[v].is_some()
                            || self.access(v).is_ok_and(|acc| {
                                let from = super::dims(k, a).unwrap_or_default();
                                let s = broadcast(&from, &acc.strides, dims);
                                s.last().is_some_and(|&s| s == 0 || s == 1)
                            }))
                })
        })
    }

    /// A map stage, four lanes at a time along its innermost axis.
    pub(super) fn vector_map(
        &mut self,
        dims: &[u64],
        nodes: &[usize],
        stores: &[usize],
    ) -> Result<(), HostError> {
        let k = self.k;
        let np = k.params.len();
        let mut srcs: BTreeMap<usize, Src> = BTreeMap::new();
        for &i in nodes {
            for &a in &k.nodes[i].args {
                let v = super::index(k, a);
                if (v >= np && nodes.contains(&(v - np))) || srcs.contains_key(&v) {
                    continue;
                }
                let src = match self.sched.consts[v] {
                    Some(c) => Src::Const(match c {
                        tessera_ir::Scalar::Float(x) => x as f32,
                        tessera_ir::Scalar::Int(i) => i as f32,
                        tessera_ir::Scalar::Bool(b) => f32::from(u8::from(b)),
                    }),
                    None => {
                        let acc = self.access(v)?;
                        let from = super::dims(k, a)?;
                        let strides = broadcast(&from, &acc.strides, dims);
                        let unit = strides.last() == Some(&1);
                        Src::Mem(Access { strides, ..acc }, unit)
                    }
                };
                srcs.insert(v, src);
            }
        }
        let outs: Vec<(usize, Access)> = stores
            .iter()
            .map(|&v| self.access(v).map(|a| (v, a)))
            .collect::<Result<_, _>>()?;
        let r = dims.len();
        let n = dims[r - 1];
        let mut body = |l: &mut Self, idx: &[ClValue], lanes: Option<ClValue>| {
            let mut regs: BTreeMap<usize, ClValue> = BTreeMap::new();
            for &i in nodes {
                let node = &k.nodes[i];
                let mut xs = Vec::with_capacity(node.args.len());
                for &a in &node.args {
                    let v = super::index(k, a);
                    let x = match (regs.get(&v), srcs.get(&v)) {
                        (Some(&x), _) => x,
                        (None, Some(Src::Const(c))) => l.splat(*c),
                        (None, Some(Src::Mem(acc, unit))) => l.vload(acc, idx, *unit, lanes),
                        (None, None) => {
                            return Err(HostError::Unsupported(format!(
                                "internal: operand {v} of a vector map"
                            )));
                        }
                    };
                    xs.push(x);
                }
                let y = l.vnode(&node.op, &xs)?;
                let y = l.vround(node.ty.dtype, y);
                regs.insert(np + i, y);
            }
            for (v, acc) in &outs {
                let y = regs[v];
                l.vstore(acc, idx, y, lanes);
            }
            Ok(())
        };
        if r == 1 {
            let (lo, hi) = (self.frame.lo, self.frame.hi);
            return self.vector_loop(lo, hi, &[], &mut body);
        }
        self.stage_nest(&dims[..r - 1], &mut |l, idx| {
            let fb = l.fb();
            let zero = fb.ins().iconst(types::I64, 0);
            let hi = fb.ins().iconst(types::I64, n as i64);
            l.vector_loop(zero, hi, idx, &mut body)
        })
    }

    /// `for j in (lo..hi).step_by(4)`: `body(prefix ++ [j], None)` for a
    /// full vector, `body(.., Some(hi))` for the last partial one.
    fn vector_loop(
        &mut self,
        lo: ClValue,
        hi: ClValue,
        prefix: &[ClValue],
        body: &mut VectorBody<'_, 'k, 'a, 'b>,
    ) -> Result<(), HostError> {
        let fb = self.fb();
        let head = fb.create_block();
        let full = fb.create_block();
        let tail = fb.create_block();
        let part = fb.create_block();
        let exit = fb.create_block();
        fb.append_block_param(head, types::I64);
        fb.ins().jump(head, &[lo.into()]);
        fb.switch_to_block(head);
        let j = fb.block_params(head)[0];
        let end = fb.ins().iadd_imm_s(j, 4);
        let fits = fb.ins().icmp(IntCC::SignedLessThanOrEqual, end, hi);
        fb.ins().brif(fits, full, &[], tail, &[]);
        fb.switch_to_block(full);
        let idx: Vec<ClValue> = prefix.iter().copied().chain([j]).collect();
        body(self, &idx, None)?;
        self.fb().ins().jump(head, &[end.into()]);
        let fb = self.fb();
        fb.switch_to_block(tail);
        let some = fb.ins().icmp(IntCC::SignedLessThan, j, hi);
        fb.ins().brif(some, part, &[], exit, &[]);
        fb.switch_to_block(part);
        body(self, &idx, Some(hi))?;
        let fb = self.fb();
        fb.ins().jump(exit, &[]);
        fb.switch_to_block(exit);
        Ok(())
    }

    /// Lanes `j..j+4` of `acc` at `idx` (`j` its last index) as f32; with
    /// `lanes` only those below it, the others 0. f16 and bf16 lanes are
    /// loaded as their bits and converted (exactly).
    fn vload(
        &mut self,
        acc: &Access,
        idx: &[ClValue],
        unit: bool,
        lanes: Option<ClValue>,
    ) -> ClValue {
        let at = self.addr(acc, idx);
        let half = acc.dtype != DType::F32;
        let vec_ty = if half { types::I32X4 } else { V };
        let fb = self.fb();
        let scalar = |fb: &mut cranelift_frontend::FunctionBuilder<'_>, off: i32| {
            if half {
                fb.ins().uload16(types::I32, mem(), at, off)
            } else {
                fb.ins().load(types::F32, mem(), at, off)
            }
        };
        let raw = if !unit {
            let x = scalar(fb, 0);
            fb.ins().splat(vec_ty, x)
        } else if let Some(hi) = lanes {
            let j = idx[idx.len() - 1];
            let z = if half {
                fb.ins().iconst(types::I32, 0)
            } else {
                fb.ins().f32const(0.0)
            };
            let mut v = fb.ins().splat(vec_ty, z);
            let step = acc.dtype.size_bytes() as i32;
            for t in 0..4u8 {
                let fb = self.fb();
                let jt = fb.ins().iadd_imm_s(j, i64::from(t));
                let inside = fb.ins().icmp(IntCC::SignedLessThan, jt, hi);
                let load = fb.create_block();
                let join = fb.create_block();
                fb.append_block_param(join, vec_ty);
                fb.ins().brif(inside, load, &[], join, &[v.into()]);
                fb.switch_to_block(load);
                let x = scalar(fb, i32::from(t) * step);
                let w = fb.ins().insertlane(v, x, t);
                fb.ins().jump(join, &[w.into()]);
                fb.switch_to_block(join);
                v = fb.block_params(join)[0];
            }
            v
        } else if half {
            fb.ins().uload16x4(mem(), at, 0)
        } else {
            fb.ins().load(V, mem(), at, 0)
        };
        match acc.dtype {
            DType::F16 => self.vf16_to_f32(raw),
            DType::BF16 => {
                let fb = self.fb();
                let b = fb.ins().ishl_imm_u(raw, 16);
                fb.ins().bitcast(V, MemFlagsData::new(), b)
            }
            DType::F32 | DType::I8 | DType::I32 | DType::Bool => raw,
        }
    }

    /// Stores lanes of `y` (a value of `acc`'s dtype, in f32) at `idx` of
    /// `acc` (contiguous), only those below `lanes` when given.
    fn vstore(&mut self, acc: &Access, idx: &[ClValue], y: ClValue, lanes: Option<ClValue>) {
        let at = self.addr(acc, idx);
        let bits = match acc.dtype {
            DType::F16 => Some(self.vf32_to_f16(y)),
            DType::BF16 => Some(self.vf32_to_bf16(y)),
            DType::F32 | DType::I8 | DType::I32 | DType::Bool => None,
        };
        let Some(hi) = lanes else {
            let fb = self.fb();
            match bits {
                None => {
                    fb.ins().store(mem(), y, at, 0);
                }
                Some(b) => {
                    // Four 16-bit lanes: narrow (every lane is ≤ 0xffff),
                    // then the low 8 bytes.
                    let n = fb.ins().unarrow(b, b);
                    let le = MemFlagsData::new()
                        .with_endianness(cranelift_codegen::ir::Endianness::Little);
                    let w = fb.ins().bitcast(types::I64X2, le, n);
                    let lo = fb.ins().extractlane(w, 0);
                    fb.ins().store(mem(), lo, at, 0);
                }
            }
            return;
        };
        let j = idx[idx.len() - 1];
        let step = acc.dtype.size_bytes() as i32;
        for t in 0..4u8 {
            let fb = self.fb();
            let jt = fb.ins().iadd_imm_s(j, i64::from(t));
            let inside = fb.ins().icmp(IntCC::SignedLessThan, jt, hi);
            let store = fb.create_block();
            let next = fb.create_block();
            fb.ins().brif(inside, store, &[], next, &[]);
            fb.switch_to_block(store);
            match bits {
                None => {
                    let x = fb.ins().extractlane(y, t);
                    fb.ins().store(mem(), x, at, i32::from(t) * step);
                }
                Some(b) => {
                    let x = fb.ins().extractlane(b, t);
                    fb.ins().istore16(mem(), x, at, i32::from(t) * step);
                }
            }
            fb.ins().jump(next, &[]);
            fb.switch_to_block(next);
        }
    }

    fn isplat(&mut self, x: i64) -> ClValue {
        let fb = self.fb();
        let c = fb.ins().iconst(types::I32, x);
        fb.ins().splat(types::I32X4, c)
    }

    /// `bitselect` on an integer mask.
    fn vsel(&mut self, mask: ClValue, a: ClValue, b: ClValue) -> ClValue {
        let fb = self.fb();
        let ty = fb.func.dfg.value_type(a);
        let m = if fb.func.dfg.value_type(mask) == ty {
            mask
        } else {
            fb.ins().bitcast(ty, MemFlagsData::new(), mask)
        };
        fb.ins().bitselect(m, a, b)
    }

    /// f16 bits (in i32 lanes) to f32, exactly: normals rebiased, infinity
    /// and NaN to the f32 ones, subnormals through one exact subtraction.
    fn vf16_to_f32(&mut self, h: ClValue) -> ClValue {
        let lo15 = self.isplat(0x7fff);
        let expmask = self.isplat(0x0f80_0000);
        let bias = self.isplat(0x3800_0000);
        let one_exp = self.isplat(0x0080_0000);
        let signbit = self.isplat(0x8000);
        let zero = self.isplat(0);
        let magic = self.splat(f32::from_bits(113 << 23));
        let fb = self.fb();
        let o = fb.ins().band(h, lo15);
        let o = fb.ins().ishl_imm_u(o, 13);
        let e = fb.ins().band(o, expmask);
        let o = fb.ins().iadd(o, bias);
        let special = fb.ins().icmp(IntCC::Equal, e, expmask);
        let o_special = fb.ins().iadd(o, bias);
        let sub = fb.ins().icmp(IntCC::Equal, e, zero);
        let o_sub = fb.ins().iadd(o, one_exp);
        let o_sub = fb.ins().bitcast(V, MemFlagsData::new(), o_sub);
        let o_sub = fb.ins().fsub(o_sub, magic);
        let o_sub = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), o_sub);
        let o = self.vsel(special, o_special, o);
        let o = self.vsel(sub, o_sub, o);
        let fb = self.fb();
        let s = fb.ins().band(h, signbit);
        let s = fb.ins().ishl_imm_u(s, 16);
        let o = fb.ins().bor(o, s);
        fb.ins().bitcast(V, MemFlagsData::new(), o)
    }

    /// f32 to f16 bits (in i32 lanes), rounding to nearest even: overflow to
    /// infinity, subnormals by one f32 addition that rounds at 2^-24, NaN
    /// quiet.
    fn vf32_to_f16(&mut self, y: ClValue) -> ClValue {
        let signmask = self.isplat(i64::from(i32::MIN));
        let f16max = self.isplat(0x4780_0000);
        let infbits = self.isplat(0x7f80_0000);
        let qnan = self.isplat(0x7e00);
        let inf16 = self.isplat(0x7c00);
        let smallest = self.isplat(0x3880_0000);
        let magic_i = self.isplat(0x3f00_0000);
        let magic = self.splat(0.5);
        let rebias = self.isplat(((15 - 127) << 23) + 0xfff);
        let one = self.isplat(1);
        let fb = self.fb();
        let u = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), y);
        let sign = fb.ins().band(u, signmask);
        let f = fb.ins().bxor(u, sign);
        // Too large: infinity, or NaN.
        let big = fb.ins().icmp(IntCC::SignedGreaterThanOrEqual, f, f16max);
        let nan = fb.ins().icmp(IntCC::SignedGreaterThan, f, infbits);
        // Subnormal or zero.
        let small = fb.ins().icmp(IntCC::SignedLessThan, f, smallest);
        let ff = fb.ins().bitcast(V, MemFlagsData::new(), f);
        let t = fb.ins().fadd(ff, magic);
        let t = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), t);
        let o_small = fb.ins().isub(t, magic_i);
        // Normal: rebias, round half to even at bit 13.
        let odd = fb.ins().ushr_imm_u(f, 13);
        let odd = fb.ins().band(odd, one);
        let n = fb.ins().iadd(f, rebias);
        let n = fb.ins().iadd(n, odd);
        let o_norm = fb.ins().ushr_imm_u(n, 13);
        let o_big = self.vsel(nan, qnan, inf16);
        let o = self.vsel(small, o_small, o_norm);
        let o = self.vsel(big, o_big, o);
        let fb = self.fb();
        let s = fb.ins().ushr_imm_u(sign, 16);
        fb.ins().bor(o, s)
    }

    /// f32 to bf16 bits (in i32 lanes), rounding to nearest even; NaN quiet.
    fn vf32_to_bf16(&mut self, y: ClValue) -> ClValue {
        let abs = self.isplat(0x7fff_ffff);
        let infbits = self.isplat(0x7f80_0000);
        let quiet = self.isplat(0x40);
        let one = self.isplat(1);
        let half = self.isplat(0x7fff);
        let fb = self.fb();
        let u = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), y);
        let a = fb.ins().band(u, abs);
        let nan = fb.ins().icmp(IntCC::SignedGreaterThan, a, infbits);
        let hi = fb.ins().ushr_imm_u(u, 16);
        let q = fb.ins().bor(hi, quiet);
        let lsb = fb.ins().band(hi, one);
        let r = fb.ins().iadd(u, half);
        let r = fb.ins().iadd(r, lsb);
        let r = fb.ins().ushr_imm_u(r, 16);
        self.vsel(nan, q, r)
    }

    /// Rounds four f32 lanes to `dtype` (f16, bf16; f32 is itself).
    fn vround(&mut self, dtype: DType, y: ClValue) -> ClValue {
        match dtype {
            DType::F16 => {
                let b = self.vf32_to_f16(y);
                self.vf16_to_f32(b)
            }
            DType::BF16 => {
                let b = self.vf32_to_bf16(y);
                let fb = self.fb();
                let b = fb.ins().ishl_imm_u(b, 16);
                fb.ins().bitcast(V, MemFlagsData::new(), b)
            }
            DType::F32 | DType::I8 | DType::I32 | DType::Bool => y,
        }
    }

    /// One node of a vector map.
    fn vnode(&mut self, op: &Op, xs: &[ClValue]) -> Result<ClValue, HostError> {
        Ok(match op {
            Op::Unary(u) => self.vunary(*u, xs[0])?,
            Op::Binary(b) => {
                let (x, y) = (xs[0], xs[1]);
                let fb = self.fb();
                match b {
                    BinaryOp::Add => fb.ins().fadd(x, y),
                    BinaryOp::Sub => fb.ins().fsub(x, y),
                    BinaryOp::Mul => fb.ins().fmul(x, y),
                    BinaryOp::Div => fb.ins().fdiv(x, y),
                    BinaryOp::Maximum => fb.ins().fmax(x, y),
                    BinaryOp::Minimum => fb.ins().fmin(x, y),
                    BinaryOp::Pow => {
                        return Err(HostError::Unsupported("internal: vector pow".into()));
                    }
                }
            }
            Op::Cast(_) | Op::BroadcastTo(_) | Op::Reshape(_) => xs[0],
            Op::Full { value, .. } => match value {
                tessera_ir::Scalar::Float(x) => self.splat(*x as f32),
                tessera_ir::Scalar::Int(_) | tessera_ir::Scalar::Bool(_) => {
                    return Err(HostError::Unsupported("internal: vector constant".into()));
                }
            },
            Op::Compare(_)
            | Op::Select
            | Op::Reduce { .. }
            | Op::MatMul
            | Op::Transpose(_)
            | Op::Concat { .. }
            | Op::Slice { .. } => {
                return Err(HostError::Unsupported(format!(
                    "internal: vector `{}`",
                    op.name()
                )));
            }
        })
    }

    fn vunary(&mut self, u: UnaryOp, x: ClValue) -> Result<ClValue, HostError> {
        Ok(match u {
            UnaryOp::Neg => self.fb().ins().fneg(x),
            UnaryOp::Abs => self.fb().ins().fabs(x),
            UnaryOp::Sqrt => self.fb().ins().sqrt(x),
            // NaN stays, -0 becomes +0, as the reference's relu.
            UnaryOp::Relu => {
                let z = self.splat(0.0);
                self.fb().ins().fmax(x, z)
            }
            UnaryOp::Reciprocal => {
                let one = self.splat(1.0);
                self.fb().ins().fdiv(one, x)
            }
            UnaryOp::Rsqrt => {
                let one = self.splat(1.0);
                let s = self.fb().ins().sqrt(x);
                self.fb().ins().fdiv(one, s)
            }
            UnaryOp::Exp => self.vexp(x),
            UnaryOp::Sigmoid => self.vsigmoid(x),
            UnaryOp::Silu => {
                let s = self.vsigmoid(x);
                self.fb().ins().fmul(x, s)
            }
            UnaryOp::Tanh => self.vtanh(x),
            UnaryOp::Erf => self.verf(x),
            UnaryOp::Gelu => {
                // 0.5 · x · (1 + erf(x / √2))
                let c = self.splat(std::f32::consts::FRAC_1_SQRT_2);
                let z = self.fb().ins().fmul(x, c);
                let e = self.verf(z);
                self.half_x_one_plus(x, e)
            }
            UnaryOp::GeluTanh => {
                // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
                let c = self.splat((2.0 / std::f64::consts::PI).sqrt() as f32);
                let k = self.splat(0.044715);
                let fb = self.fb();
                let x2 = fb.ins().fmul(x, x);
                let x3 = fb.ins().fmul(x2, x);
                let kx3 = fb.ins().fmul(k, x3);
                let s = fb.ins().fadd(x, kx3);
                let a = fb.ins().fmul(c, s);
                let t = self.vtanh(a);
                self.half_x_one_plus(x, t)
            }
            UnaryOp::Log | UnaryOp::Sin | UnaryOp::Cos => {
                return Err(HostError::Unsupported(format!(
                    "internal: vector `{}`",
                    u.name()
                )));
            }
        })
    }

    /// `0.5 · x · (1 + t)`.
    fn half_x_one_plus(&mut self, x: ClValue, t: ClValue) -> ClValue {
        let one = self.splat(1.0);
        let h = self.splat(0.5);
        let fb = self.fb();
        let t = fb.ins().fadd(one, t);
        let hx = fb.ins().fmul(h, x);
        fb.ins().fmul(hx, t)
    }

    /// `exp(x)`, Cephes' expf on four lanes.
    fn vexp(&mut self, x: ClValue) -> ClValue {
        let hi = self.splat(88.73);
        let lo = self.splat(-104.0);
        let log2e = self.splat(std::f32::consts::LOG2_E);
        let c1 = self.splat(0.693_359_4);
        let c2 = self.splat(-2.121_944_4e-4);
        let nc1 = self.splat(-0.693_359_4);
        let nc2 = self.splat(2.121_944_4e-4);
        let fma = self.frame.fma;
        const P: [f32; 6] = [
            1.987_569_1e-4,
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            1.666_666_5e-1,
            0.5,
        ];
        let p: Vec<ClValue> = P.iter().map(|&c| self.splat(c)).collect();
        let one = self.splat(1.0);
        let magic = self.splat(12_582_912.0);
        let fb = self.fb();
        // Clamp by compare and select (a NaN stays): exp is +inf above and
        // 0 below in f32 anyway.
        let above = fb.ins().fcmp(FloatCC::GreaterThan, x, hi);
        let above = fb.ins().bitcast(V, MemFlagsData::new(), above);
        let xc = fb.ins().bitselect(above, hi, x);
        let below = fb.ins().fcmp(FloatCC::LessThan, xc, lo);
        let below = fb.ins().bitcast(V, MemFlagsData::new(), below);
        let xc = fb.ins().bitselect(below, lo, xc);
        let fx = fb.ins().fmul(xc, log2e);
        // n = fx rounded to nearest even, as a float and as an integer, by
        // adding 1.5 · 2^23 (|fx| < 2^22).
        let t = fb.ins().fadd(fx, magic);
        let n = fb.ins().fsub(t, magic);
        let tb = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), t);
        let mb = fb.ins().bitcast(types::I32X4, MemFlagsData::new(), magic);
        let ni = fb.ins().isub(tb, mb);
        let (r, z, q) = if fma {
            let r = fb.ins().fma(n, nc1, xc);
            let r = fb.ins().fma(n, nc2, r);
            let z = fb.ins().fmul(r, r);
            let mut q = p[0];
            for &c in &p[1..] {
                q = fb.ins().fma(q, r, c);
            }
            (r, z, q)
        } else {
            let a = fb.ins().fmul(n, c1);
            let r = fb.ins().fsub(xc, a);
            let b = fb.ins().fmul(n, c2);
            let r = fb.ins().fsub(r, b);
            let z = fb.ins().fmul(r, r);
            let mut q = p[0];
            for &c in &p[1..] {
                q = fb.ins().fmul(q, r);
                q = fb.ins().fadd(q, c);
            }
            (r, z, q)
        };
        let q = if fma {
            fb.ins().fma(q, z, r)
        } else {
            let q = fb.ins().fmul(q, z);
            fb.ins().fadd(q, r)
        };
        let q = fb.ins().fadd(q, one);
        // 2^n in two halves, each a normal power of two.
        let n1 = fb.ins().sshr_imm_u(ni, 1);
        let n2 = fb.ins().isub(ni, n1);
        let bias = fb.ins().iconst(types::I32, 127);
        let bias = fb.ins().splat(types::I32X4, bias);
        let mut y = q;
        for e in [n1, n2] {
            let e = fb.ins().iadd(e, bias);
            let e = fb.ins().ishl_imm_u(e, 23);
            let s = fb.ins().bitcast(V, MemFlagsData::new(), e);
            y = fb.ins().fmul(y, s);
        }
        y
    }

    /// `|q|` with the sign of `x` (lane-wise bits: Cranelift has no vector
    /// `fcopysign` on x86-64).
    fn copysign(&mut self, q: ClValue, x: ClValue) -> ClValue {
        let fb = self.fb();
        let m = fb.ins().iconst(types::I32, i64::from(i32::MIN));
        let m = fb.ins().splat(types::I32X4, m);
        let m = fb.ins().bitcast(V, MemFlagsData::new(), m);
        let sign = fb.ins().band(x, m);
        let mag = fb.ins().band_not(q, m);
        fb.ins().bor(mag, sign)
    }

    /// `1 / (1 + exp(-x))`.
    fn vsigmoid(&mut self, x: ClValue) -> ClValue {
        let n = self.fb().ins().fneg(x);
        let e = self.vexp(n);
        let one = self.splat(1.0);
        let fb = self.fb();
        let d = fb.ins().fadd(one, e);
        fb.ins().fdiv(one, d)
    }

    /// `tanh(x)` = sign(x) · (1 − e) / (1 + e), e = exp(−2|x|).
    fn vtanh(&mut self, x: ClValue) -> ClValue {
        let m2 = self.splat(-2.0);
        let one = self.splat(1.0);
        let a = self.fb().ins().fabs(x);
        let t = self.fb().ins().fmul(a, m2);
        let e = self.vexp(t);
        let fb = self.fb();
        let num = fb.ins().fsub(one, e);
        let den = fb.ins().fadd(one, e);
        let q = fb.ins().fdiv(num, den);
        // Below |x| = 1/4 the series, where 1 − e^{−2a} cancels (as the NPU's).
        let q = self.small_series(a, q, &TANH_SERIES, 1.0);
        self.copysign(q, x)
    }

    /// `a·k·(1 + c₁u + … )`, `u = a²`, where `a < 1/4`, else `far`: the odd
    /// series of `tanh` or `erf` near 0, where their closed forms lose the
    /// relative accuracy of small values.
    fn small_series(&mut self, a: ClValue, far: ClValue, c: &[f64; 4], k: f64) -> ClValue {
        let coef: Vec<ClValue> = c.iter().map(|&ck| self.splat(ck as f32)).collect();
        let one = self.splat(1.0);
        let kk = self.splat(k as f32);
        let below = self.splat(SERIES_BELOW as f32);
        let fb = self.fb();
        let u = fb.ins().fmul(a, a);
        let mut p = coef[3];
        for &ck in coef[..3].iter().rev() {
            p = fb.ins().fmul(p, u);
            p = fb.ins().fadd(p, ck);
        }
        let p = fb.ins().fmul(p, u);
        let p = fb.ins().fadd(p, one);
        let p = fb.ins().fmul(p, a);
        let p = fb.ins().fmul(p, kk);
        let small = fb.ins().fcmp(FloatCC::LessThan, a, below);
        self.vsel(small, p, far)
    }

    /// `erf(x)`, Abramowitz & Stegun 7.1.26.
    fn verf(&mut self, x: ClValue) -> ClValue {
        const A: [f32; 5] = [
            0.254_829_6,
            -0.284_496_74,
            1.421_413_8,
            -1.453_152,
            1.061_405_4,
        ];
        let p = self.splat(0.327_591_1);
        let one = self.splat(1.0);
        let coef: Vec<ClValue> = A.iter().map(|&c| self.splat(c)).collect();
        let a = self.fb().ins().fabs(x);
        let na = self.fb().ins().fneg(a);
        let fb = self.fb();
        let pa = fb.ins().fmul(p, a);
        let d = fb.ins().fadd(one, pa);
        let t = fb.ins().fdiv(one, d);
        let mut s = coef[4];
        for &c in coef[..4].iter().rev() {
            s = fb.ins().fmul(s, t);
            s = fb.ins().fadd(s, c);
        }
        let s = fb.ins().fmul(s, t);
        let a2 = fb.ins().fmul(na, a);
        let e = self.vexp(a2);
        let fb = self.fb();
        let se = fb.ins().fmul(s, e);
        let y = fb.ins().fsub(one, se);
        let y = self.small_series(a, y, &ERF_SERIES, std::f64::consts::FRAC_2_SQRT_PI);
        self.copysign(y, x)
    }

    /// Whether reduction `node` runs four lanes at a time: f32, over the
    /// last axis only, contiguous.
    pub(super) fn vector_reduce_ok(&self, node: usize) -> bool {
        let k = self.k;
        let n = &k.nodes[node];
        let Op::Reduce { axes, .. } = &n.op else {
            return false;
        };
        let arg = n.args[0];
        let rank = k.ty(arg).shape.rank();
        let v = super::index(k, arg);
        rank > 0
            && axes == &[rank - 1]
            && k.ty(arg).dtype == DType::F32
            && matches!(self.sched.states[v], State::Stored(_) | State::View(_))
            && self.access(v).is_ok_and(|a| a.strides.last() == Some(&1))
    }

    /// A reduction over the contiguous last axis: four vectors of four f32
    /// lanes, then the lanes and the tail in order. Sums fold their lanes
    /// into f64 every [`SUM_BLOCK`] elements, so no f32 lane adds up more
    /// than `SUM_BLOCK / 16` values: a long sum that cancels (a row minus
    /// its mean) keeps its error near the reference's, as pairwise
    /// summation would, rather than growing with the row.
    pub(super) fn vector_reduce(&mut self, node: usize) -> Result<(), HostError> {
        let k = self.k;
        let n = &k.nodes[node];
        let Op::Reduce { op, .. } = n.op else {
            return Err(HostError::Unsupported("internal: not a reduction".into()));
        };
        let arg = super::index(k, n.args[0]);
        let src = self.access(arg)?;
        let in_dims = super::dims(k, n.args[0])?;
        let len = in_dims[in_dims.len() - 1] as i64;
        let out = self.access(k.params.len() + node)?;
        let out_dims = super::dims(k, Value::Node(node as u32))?;
        // Four vectors a step: the operations of one do not wait on the
        // others.
        let main = len - len % 16;
        let sum = matches!(op, ReduceOp::Sum | ReduceOp::Mean);
        self.stage_nest(&out_dims, &mut |l, oidx| {
            let fb = l.fb();
            let zero = fb.ins().iconst(types::I64, 0);
            let idx: Vec<ClValue> = oidx.iter().copied().chain([zero]).collect();
            let row = l.addr(&src, &idx);
            let init = l.splat(match op {
                ReduceOp::Sum | ReduceOp::Mean => 0.0,
                ReduceOp::Max => f32::NEG_INFINITY,
                ReduceOp::Min => f32::INFINITY,
            });
            let fb = l.fb();
            // The lanes.
            let head = fb.create_block();
            let body = fb.create_block();
            let exit = fb.create_block();
            fb.append_block_param(head, types::I64);
            let mut args: Vec<BlockArg> = vec![zero.into()];
            for _ in 0..4 {
                fb.append_block_param(head, V);
                args.push(init.into());
            }
            // Sums: the f64 lanes (two per vector) of the finished blocks.
            if sum {
                let wzero = fb.ins().f64const(0.0);
                let wzero = fb.ins().splat(types::F64X2, wzero);
                for _ in 0..4 {
                    fb.append_block_param(head, types::F64X2);
                    args.push(wzero.into());
                }
            }
            fb.ins().jump(head, &args);
            fb.switch_to_block(head);
            let p = fb.block_params(head).to_vec();
            let (j, accs, wides) = (p[0], &p[1..5], &p[5..]);
            let more = fb.ins().icmp_imm_s(IntCC::SignedLessThan, j, main);
            fb.ins().brif(more, body, &[], exit, &[]);
            fb.switch_to_block(body);
            let off = fb.ins().imul_imm_s(j, 4);
            let at = fb.ins().iadd(row, off);
            // Max and min keep the running value unless the new one is
            // beyond it or NaN (a NaN, once in, stays), and of two equal
            // values take their bits' and (max) or or (min): +0 over −0
            // as IEEE 754-2019 and the reference, in any order. Compares
            // and selects, shorter than Cranelift's fmax/fmin sequences.
            let combine = |fb: &mut cranelift_frontend::FunctionBuilder<'_>, a, b| {
                let beyond = match op {
                    ReduceOp::Sum | ReduceOp::Mean => return fb.ins().fadd(a, b),
                    ReduceOp::Max => FloatCC::GreaterThan,
                    ReduceOp::Min => FloatCC::LessThan,
                };
                let m = fb.ins().fcmp(beyond, b, a);
                let nan = fb.ins().fcmp(FloatCC::Unordered, b, b);
                let m = fb.ins().bor(m, nan);
                let m = fb.ins().bitcast(V, MemFlagsData::new(), m);
                let eq = fb.ins().fcmp(FloatCC::Equal, b, a);
                let eq = fb.ins().bitcast(V, MemFlagsData::new(), eq);
                let both = if op == ReduceOp::Max {
                    fb.ins().band(a, b)
                } else {
                    fb.ins().bor(a, b)
                };
                let kept = fb.ins().bitselect(eq, both, a);
                fb.ins().bitselect(m, b, kept)
            };
            let j16 = fb.ins().iadd_imm_s(j, 16);
            let mut next: Vec<BlockArg> = vec![j16.into()];
            let mut sums = Vec::with_capacity(4);
            for (t, &a) in accs.iter().enumerate() {
                let x = fb.ins().load(V, mem(), at, 16 * t as i32);
                sums.push(combine(fb, a, x));
            }
            next.extend(sums.iter().map(|&v| BlockArg::from(v)));
            next.extend(wides.iter().map(|&v| BlockArg::from(v)));
            if sum {
                // At the end of a block, its lanes go into the f64 ones and
                // the f32 lanes start again from zero.
                let flush = fb.create_block();
                let edge = fb.ins().band_imm_s(j16, SUM_BLOCK - 1);
                fb.ins().brif(edge, head, &next, flush, &[]);
                fb.switch_to_block(flush);
                let mut again: Vec<BlockArg> = vec![j16.into()];
                again.extend((0..4).map(|_| BlockArg::from(init)));
                for (&w, &a) in wides.iter().zip(&sums) {
                    again.push(widen_into(fb, w, a).into());
                }
                fb.ins().jump(head, &again);
            } else {
                fb.ins().jump(head, &next);
            }
            fb.switch_to_block(exit);
            let r = if sum {
                // The last block's lanes, every f64 lane in order, the tail.
                let mut s = fb.ins().f64const(0.0);
                for (&w, &a) in wides.iter().zip(accs) {
                    let w = widen_into(fb, w, a);
                    for t in 0..2u8 {
                        let x = fb.ins().extractlane(w, t);
                        s = fb.ins().fadd(s, x);
                    }
                }
                for t in main..len {
                    let p = fb.ins().load(types::F32, mem(), row, (t * 4) as i32);
                    let w = fb.ins().fpromote(types::F64, p);
                    s = fb.ins().fadd(s, w);
                }
                if op == ReduceOp::Mean {
                    let c = fb.ins().f64const(len.max(1) as f64);
                    s = fb.ins().fdiv(s, c);
                }
                l.e.round64(out.dtype, s)
            } else {
                let left = combine(fb, accs[0], accs[1]);
                let right = combine(fb, accs[2], accs[3]);
                let acc = combine(fb, left, right);
                // The lanes in order, then the tail.
                let mut parts: Vec<ClValue> =
                    (0..4u8).map(|t| fb.ins().extractlane(acc, t)).collect();
                for t in main..len {
                    parts.push(fb.ins().load(types::F32, mem(), row, (t * 4) as i32));
                }
                let mut m = parts[0];
                for p in &parts[1..] {
                    m = if op == ReduceOp::Max {
                        fb.ins().fmax(m, *p)
                    } else {
                        fb.ins().fmin(m, *p)
                    };
                }
                m
            };
            let at = l.addr(&out, oidx);
            l.e.store(out.dtype, super::super::elem::El::F(r), at);
            Ok(())
        })
    }
}
