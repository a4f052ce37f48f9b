//! One element in registers: its loads and stores in every storage dtype,
//! the f16/bf16 conversions (integer sequences, so that an object file needs
//! no runtime), and the elementwise ops with the reference's semantics.

use super::HostError;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{FuncRef, InstBuilder, MemFlagsData, Value, types};
use cranelift_frontend::FunctionBuilder;
use tessera_ir::{BinaryOp, CompareOp, DType, Scalar, UnaryOp};

/// An element: floats as f32, integers as i32 (i8 sign-extended), bools as
/// an i8 that is 0 or 1.
#[derive(Copy, Clone, Debug)]
pub(super) enum El {
    F(Value),
    I(Value),
    B(Value),
}

/// The libm functions the lowering calls (f64 in, f64 out).
#[derive(Copy, Clone, Debug)]
pub(super) struct Math {
    pub exp: FuncRef,
    pub log: FuncRef,
    pub tanh: FuncRef,
    pub sin: FuncRef,
    pub cos: FuncRef,
    pub erf: FuncRef,
    pub pow: FuncRef,
}

/// The names the math functions link against, in [`Math`]'s field order,
/// with their arity.
pub(super) const MATH: [(&str, usize); 7] = [
    ("exp", 1),
    ("log", 1),
    ("tanh", 1),
    ("sin", 1),
    ("cos", 1),
    ("erf", 1),
    ("pow", 2),
];

/// Memory flags of every tensor access: in bounds by construction, and only
/// as aligned as the element.
pub(super) fn mem() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// The element builder over a function under construction.
pub(super) struct Emit<'a, 'b> {
    pub fb: &'a mut FunctionBuilder<'b>,
    pub math: Math,
}

impl Emit<'_, '_> {
    fn i32c(&mut self, v: i64) -> Value {
        self.fb.ins().iconst(types::I32, v)
    }

    /// Loads the element of `dtype` at `addr`.
    pub fn load(&mut self, dtype: DType, addr: Value) -> El {
        let f = mem();
        let ins = self.fb.ins();
        match dtype {
            DType::F32 => El::F(ins.load(types::F32, f, addr, 0)),
            DType::F16 => {
                let h = ins.uload16(types::I32, f, addr, 0);
                El::F(self.f16_to_f32(h))
            }
            DType::BF16 => {
                let h = ins.uload16(types::I32, f, addr, 0);
                let bits = self.fb.ins().ishl_imm_u(h, 16);
                El::F(self.fb.ins().bitcast(types::F32, MemFlagsData::new(), bits))
            }
            DType::I32 => El::I(ins.load(types::I32, f, addr, 0)),
            DType::I8 => El::I(ins.sload8(types::I32, f, addr, 0)),
            DType::Bool => El::B(ins.load(types::I8, f, addr, 0)),
        }
    }

    /// Stores `v`, already a value of `dtype`, at `addr`.
    pub fn store(&mut self, dtype: DType, v: El, addr: Value) {
        let f = mem();
        match (dtype, v) {
            (DType::F32, El::F(x)) => {
                self.fb.ins().store(f, x, addr, 0);
            }
            (DType::F16, El::F(x)) => {
                let h = self.f32_to_f16(x);
                self.fb.ins().istore16(f, h, addr, 0);
            }
            (DType::BF16, El::F(x)) => {
                let h = self.f32_to_bf16(x);
                self.fb.ins().istore16(f, h, addr, 0);
            }
            (DType::I32, El::I(x)) => {
                self.fb.ins().store(f, x, addr, 0);
            }
            (DType::I8, El::I(x)) => {
                self.fb.ins().istore8(f, x, addr, 0);
            }
            (DType::Bool, El::B(x)) => {
                self.fb.ins().store(f, x, addr, 0);
            }
            (d, e) => unreachable!("internal: storing {e:?} as {d}"),
        }
    }

    /// A constant of `dtype`.
    pub fn constant(&mut self, dtype: DType, s: Scalar) -> El {
        match s {
            Scalar::Float(x) => El::F(self.fb.ins().f32const(dtype.round_float(x) as f32)),
            Scalar::Int(i) => El::I(self.i32c(dtype.wrap_int(i))),
            Scalar::Bool(b) => El::B(self.fb.ins().iconst(types::I8, i64::from(b))),
        }
    }

    /// f16 bits (in an i32) to f32: exact.
    fn f16_to_f32(&mut self, h: Value) -> Value {
        let b = &mut *self.fb;
        let sign = b.ins().band_imm_u(h, 0x8000);
        let sign = b.ins().ishl_imm_u(sign, 16);
        let e = b.ins().ushr_imm_u(h, 10);
        let e = b.ins().band_imm_u(e, 0x1f);
        let m = b.ins().band_imm_u(h, 0x3ff);
        let m13 = b.ins().ishl_imm_u(m, 13);
        let eb = b.ins().iadd_imm_s(e, 112);
        let eb = b.ins().ishl_imm_u(eb, 23);
        let normal = b.ins().bor(eb, m13);
        let special = b.ins().bor_imm_u(m13, 0x7f80_0000);
        // Subnormals (and zero): m · 2^-24, exact in f32.
        let mf = b.ins().fcvt_from_uint(types::F32, m);
        let scale = b.ins().f32const(2f32.powi(-24));
        let sub = b.ins().fmul(mf, scale);
        let sub = b.ins().bitcast(types::I32, MemFlagsData::new(), sub);
        let is_special = b.ins().icmp_imm_s(IntCC::Equal, e, 31);
        let r = b.ins().select(is_special, special, normal);
        let is_sub = b.ins().icmp_imm_s(IntCC::Equal, e, 0);
        let r = b.ins().select(is_sub, sub, r);
        let r = b.ins().bor(r, sign);
        b.ins().bitcast(types::F32, MemFlagsData::new(), r)
    }

    /// f32 to f16 bits (in an i32), rounding to nearest even: overflow to
    /// infinity, subnormals, NaN kept quiet.
    fn f32_to_f16(&mut self, x: Value) -> Value {
        let b = &mut *self.fb;
        let bits = b.ins().bitcast(types::I32, MemFlagsData::new(), x);
        let sign = b.ins().ushr_imm_u(bits, 16);
        let sign = b.ins().band_imm_u(sign, 0x8000);
        let a = b.ins().band_imm_u(bits, 0x7fff_ffff);
        let man = b.ins().band_imm_u(a, 0x007f_ffff);
        let man13 = b.ins().ushr_imm_u(man, 13);
        // Infinity and NaN.
        let is_nan = b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThan, a, 0x7f80_0000);
        let is_special = b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThanOrEqual, a, 0x7f80_0000);
        let nan = b.ins().bor_imm_u(man13, 0x7e00);
        let inf = b.ins().iconst(types::I32, 0x7c00);
        let special = b.ins().select(is_nan, nan, inf);
        // Normal results: the exponent rebiased, round half to even (a carry
        // into the exponent is right, up to infinity).
        let exp = b.ins().ushr_imm_u(a, 23);
        let hexp = b.ins().iadd_imm_s(exp, -112);
        let he = b.ins().ishl_imm_u(hexp, 10);
        let normal = b.ins().bor(he, man13);
        let rbit = b.ins().band_imm_u(man, 0x1000);
        let rbit = b.ins().icmp_imm_s(IntCC::NotEqual, rbit, 0);
        let rest = b.ins().band_imm_u(man, 0x2fff);
        let rest = b.ins().icmp_imm_s(IntCC::NotEqual, rest, 0);
        let up = b.ins().band(rbit, rest);
        let up = b.ins().uextend(types::I32, up);
        let normal = b.ins().iadd(normal, up);
        // Subnormal results: the significand shifted by 126 − exp ≥ 14.
        let m = b.ins().bor_imm_u(man, 0x0080_0000);
        let c126 = b.ins().iconst(types::I32, 126);
        let s = b.ins().isub(c126, exp);
        let c31 = b.ins().iconst(types::I32, 31);
        let s = b.ins().umin(s, c31);
        let hm = b.ins().ushr(m, s);
        let s1 = b.ins().iadd_imm_s(s, -1);
        let one = b.ins().iconst(types::I32, 1);
        let rb = b.ins().ishl(one, s1);
        let mask = b.ins().imul_imm_s(rb, 3);
        let mask = b.ins().iadd_imm_s(mask, -1);
        let hit = b.ins().band(m, rb);
        let hit = b.ins().icmp_imm_s(IntCC::NotEqual, hit, 0);
        let odd = b.ins().band(m, mask);
        let odd = b.ins().icmp_imm_s(IntCC::NotEqual, odd, 0);
        let up = b.ins().band(hit, odd);
        let up = b.ins().uextend(types::I32, up);
        let sub = b.ins().iadd(hm, up);
        let is_sub = b.ins().icmp_imm_s(IntCC::SignedLessThan, hexp, 1);
        let r = b.ins().select(is_sub, sub, normal);
        let is_over = b.ins().icmp_imm_s(IntCC::SignedGreaterThan, hexp, 30);
        let r = b.ins().select(is_over, inf, r);
        let r = b.ins().select(is_special, special, r);
        b.ins().bor(r, sign)
    }

    /// f32 to bf16 bits (in an i32), rounding to nearest even; NaN quiet.
    fn f32_to_bf16(&mut self, x: Value) -> Value {
        let b = &mut *self.fb;
        let bits = b.ins().bitcast(types::I32, MemFlagsData::new(), x);
        let a = b.ins().band_imm_u(bits, 0x7fff_ffff);
        let is_nan = b
            .ins()
            .icmp_imm_s(IntCC::UnsignedGreaterThan, a, 0x7f80_0000);
        let hi = b.ins().ushr_imm_u(bits, 16);
        let nan = b.ins().bor_imm_u(hi, 0x40);
        let lsb = b.ins().band_imm_u(hi, 1);
        let bias = b.ins().iadd_imm_s(lsb, 0x7fff);
        let r = b.ins().iadd(bits, bias);
        let r = b.ins().ushr_imm_u(r, 16);
        b.ins().select(is_nan, nan, r)
    }

    /// Rounds an f32 to `dtype` (f16, bf16; f32 is itself).
    pub fn round(&mut self, dtype: DType, x: Value) -> Value {
        match dtype {
            DType::F16 => {
                let h = self.f32_to_f16(x);
                self.f16_to_f32(h)
            }
            DType::BF16 => {
                let h = self.f32_to_bf16(x);
                let h = self.fb.ins().ishl_imm_u(h, 16);
                self.fb.ins().bitcast(types::F32, MemFlagsData::new(), h)
            }
            DType::F32 | DType::I8 | DType::I32 | DType::Bool => x,
        }
    }

    /// Rounds an f64 to `dtype` through f32.
    pub fn round64(&mut self, dtype: DType, x: Value) -> Value {
        let f = self.fb.ins().fdemote(types::F32, x);
        self.round(dtype, f)
    }

    /// Wraps an i32 into `dtype` (i8: two's complement).
    fn wrap(&mut self, dtype: DType, x: Value) -> Value {
        match dtype {
            DType::I8 => {
                let n = self.fb.ins().ireduce(types::I8, x);
                self.fb.ins().sextend(types::I32, n)
            }
            DType::I32 | DType::F16 | DType::BF16 | DType::F32 | DType::Bool => x,
        }
    }

    /// Clamps an i32 into `dtype`.
    pub fn saturate(&mut self, dtype: DType, x: Value) -> Value {
        match dtype.int_range() {
            Some((lo, hi)) if dtype != DType::I32 => {
                let lo = self.i32c(lo);
                let hi = self.i32c(hi);
                let x = self.fb.ins().smax(x, lo);
                self.fb.ins().smin(x, hi)
            }
            _ => x,
        }
    }

    fn call(&mut self, f: FuncRef, args: &[Value]) -> Value {
        let inst = self.fb.ins().call(f, args);
        self.fb.inst_results(inst)[0]
    }

    fn f64c(&mut self, x: f64) -> Value {
        self.fb.ins().f64const(x)
    }

    /// `1 / (1 + exp(-x))` in f64, as the reference writes it.
    fn sigmoid64(&mut self, x: Value) -> Value {
        let n = self.fb.ins().fneg(x);
        let e = self.call(self.math.exp, &[n]);
        let one = self.f64c(1.0);
        let d = self.fb.ins().fadd(one, e);
        self.fb.ins().fdiv(one, d)
    }

    /// A float unary op in f64, the reference's formula.
    fn unary64(&mut self, u: UnaryOp, x: Value) -> Value {
        let m = self.math;
        match u {
            UnaryOp::Exp => self.call(m.exp, &[x]),
            UnaryOp::Log => self.call(m.log, &[x]),
            UnaryOp::Tanh => self.call(m.tanh, &[x]),
            UnaryOp::Sin => self.call(m.sin, &[x]),
            UnaryOp::Cos => self.call(m.cos, &[x]),
            UnaryOp::Erf => self.call(m.erf, &[x]),
            UnaryOp::Rsqrt => {
                let s = self.fb.ins().sqrt(x);
                let one = self.f64c(1.0);
                self.fb.ins().fdiv(one, s)
            }
            UnaryOp::Sigmoid => self.sigmoid64(x),
            UnaryOp::Silu => {
                let s = self.sigmoid64(x);
                self.fb.ins().fmul(x, s)
            }
            UnaryOp::Gelu => {
                // 0.5 * x * (1 + erf(x / √2))
                let r2 = self.f64c(std::f64::consts::SQRT_2);
                let z = self.fb.ins().fdiv(x, r2);
                let e = self.call(m.erf, &[z]);
                let one = self.f64c(1.0);
                let t = self.fb.ins().fadd(one, e);
                let h = self.f64c(0.5);
                let hx = self.fb.ins().fmul(h, x);
                self.fb.ins().fmul(hx, t)
            }
            UnaryOp::GeluTanh => {
                // 0.5 * x * (1 + tanh(c * (x + 0.044715 * x * x * x)))
                let c = self.f64c((2.0 / std::f64::consts::PI).sqrt());
                let k = self.f64c(0.044715);
                let kx = self.fb.ins().fmul(k, x);
                let kxx = self.fb.ins().fmul(kx, x);
                let kxxx = self.fb.ins().fmul(kxx, x);
                let s = self.fb.ins().fadd(x, kxxx);
                let a = self.fb.ins().fmul(c, s);
                let t = self.call(m.tanh, &[a]);
                let one = self.f64c(1.0);
                let t = self.fb.ins().fadd(one, t);
                let h = self.f64c(0.5);
                let hx = self.fb.ins().fmul(h, x);
                self.fb.ins().fmul(hx, t)
            }
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Sqrt | UnaryOp::Reciprocal => {
                unreachable!("internal: {u:?} computes in f32")
            }
        }
    }

    /// `u(x)` as a value of `dtype`.
    pub fn unary(&mut self, u: UnaryOp, x: El, dtype: DType) -> Result<El, HostError> {
        Ok(match x {
            El::F(x) => {
                let b = &mut *self.fb;
                let r = match u {
                    UnaryOp::Neg => b.ins().fneg(x),
                    UnaryOp::Abs => b.ins().fabs(x),
                    UnaryOp::Sqrt => b.ins().sqrt(x),
                    UnaryOp::Reciprocal => {
                        let one = b.ins().f32const(1.0);
                        b.ins().fdiv(one, x)
                    }
                    UnaryOp::Relu => {
                        let zero = b.ins().f32const(0.0);
                        let keep = b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
                        b.ins().select(keep, x, zero)
                    }
                    UnaryOp::Exp
                    | UnaryOp::Log
                    | UnaryOp::Rsqrt
                    | UnaryOp::Sigmoid
                    | UnaryOp::Tanh
                    | UnaryOp::Silu
                    | UnaryOp::Erf
                    | UnaryOp::Gelu
                    | UnaryOp::GeluTanh
                    | UnaryOp::Sin
                    | UnaryOp::Cos => {
                        let w = b.ins().fpromote(types::F64, x);
                        let r = self.unary64(u, w);
                        return Ok(El::F(self.round64(dtype, r)));
                    }
                };
                El::F(self.round(dtype, r))
            }
            El::I(x) => {
                let b = &mut *self.fb;
                let r = match u {
                    UnaryOp::Neg => b.ins().ineg(x),
                    UnaryOp::Abs => b.ins().iabs(x),
                    UnaryOp::Relu => {
                        let zero = b.ins().iconst(types::I32, 0);
                        b.ins().smax(x, zero)
                    }
                    UnaryOp::Exp
                    | UnaryOp::Log
                    | UnaryOp::Sqrt
                    | UnaryOp::Rsqrt
                    | UnaryOp::Reciprocal
                    | UnaryOp::Sigmoid
                    | UnaryOp::Tanh
                    | UnaryOp::Silu
                    | UnaryOp::Erf
                    | UnaryOp::Gelu
                    | UnaryOp::GeluTanh
                    | UnaryOp::Sin
                    | UnaryOp::Cos => {
                        return Err(HostError::Unsupported(format!(
                            "`{}` of an integer",
                            u.name()
                        )));
                    }
                };
                El::I(self.wrap(dtype, r))
            }
            El::B(_) => {
                return Err(HostError::Unsupported(format!("`{}` of a bool", u.name())));
            }
        })
    }

    /// `a op b` as a value of `dtype`. An integer division calls
    /// `on_zero(divisor)` first, which branches away when it is zero.
    pub fn binary(
        &mut self,
        op: BinaryOp,
        a: El,
        b: El,
        dtype: DType,
        on_zero: &mut dyn FnMut(&mut FunctionBuilder<'_>, Value),
    ) -> Result<El, HostError> {
        Ok(match (a, b) {
            (El::F(x), El::F(y)) => {
                let ins = self.fb.ins();
                let r = match op {
                    BinaryOp::Add => ins.fadd(x, y),
                    BinaryOp::Sub => ins.fsub(x, y),
                    BinaryOp::Mul => ins.fmul(x, y),
                    BinaryOp::Div => ins.fdiv(x, y),
                    BinaryOp::Maximum => ins.fmax(x, y),
                    BinaryOp::Minimum => ins.fmin(x, y),
                    BinaryOp::Pow => {
                        let x = ins.fpromote(types::F64, x);
                        let y = self.fb.ins().fpromote(types::F64, y);
                        let r = self.call(self.math.pow, &[x, y]);
                        return Ok(El::F(self.round64(dtype, r)));
                    }
                };
                El::F(self.round(dtype, r))
            }
            (El::I(x), El::I(y)) => {
                let r = match op {
                    BinaryOp::Add => self.fb.ins().iadd(x, y),
                    BinaryOp::Sub => self.fb.ins().isub(x, y),
                    BinaryOp::Mul => self.fb.ins().imul(x, y),
                    BinaryOp::Maximum => self.fb.ins().smax(x, y),
                    BinaryOp::Minimum => self.fb.ins().smin(x, y),
                    BinaryOp::Div => {
                        on_zero(self.fb, y);
                        // Truncating, and MIN / -1 wraps (sdiv would trap).
                        let b = &mut *self.fb;
                        let is_m1 = b.ins().icmp_imm_s(IntCC::Equal, y, -1);
                        let one = b.ins().iconst(types::I32, 1);
                        let safe = b.ins().select(is_m1, one, y);
                        let q = b.ins().sdiv(x, safe);
                        let n = b.ins().ineg(x);
                        b.ins().select(is_m1, n, q)
                    }
                    BinaryOp::Pow => {
                        return Err(HostError::Unsupported("`pow` of integers".into()));
                    }
                };
                El::I(self.wrap(dtype, r))
            }
            _ => {
                return Err(HostError::Unsupported(format!(
                    "`{}` of these operands",
                    op.name()
                )));
            }
        })
    }

    /// `a cmp b` as a bool.
    pub fn compare(&mut self, c: CompareOp, a: El, b: El) -> Result<El, HostError> {
        let ins = self.fb.ins();
        Ok(El::B(match (a, b) {
            (El::F(x), El::F(y)) => {
                let cc = match c {
                    CompareOp::Lt => FloatCC::LessThan,
                    CompareOp::Le => FloatCC::LessThanOrEqual,
                    CompareOp::Gt => FloatCC::GreaterThan,
                    CompareOp::Ge => FloatCC::GreaterThanOrEqual,
                    CompareOp::Eq => FloatCC::Equal,
                    CompareOp::Ne => FloatCC::NotEqual,
                };
                ins.fcmp(cc, x, y)
            }
            (El::I(x), El::I(y)) => ins.icmp(int_cc(c, true), x, y),
            (El::B(x), El::B(y)) => ins.icmp(int_cc(c, false), x, y),
            _ => {
                return Err(HostError::Unsupported(format!(
                    "`{}` of mixed operands",
                    c.name()
                )));
            }
        }))
    }

    /// `c ? a : b`.
    pub fn select(&mut self, c: El, a: El, b: El) -> Result<El, HostError> {
        let El::B(c) = c else {
            return Err(HostError::Unsupported("`select` on a non-bool".into()));
        };
        let ins = self.fb.ins();
        Ok(match (a, b) {
            (El::F(x), El::F(y)) => El::F(ins.select(c, x, y)),
            (El::I(x), El::I(y)) => El::I(ins.select(c, x, y)),
            (El::B(x), El::B(y)) => El::B(ins.select(c, x, y)),
            _ => return Err(HostError::Unsupported("`select` of mixed operands".into())),
        })
    }

    /// `cast(x, to)`: floats to integers truncate and saturate (NaN → 0),
    /// integers saturate, anything to bool is `!= 0`.
    pub fn cast(&mut self, x: El, to: DType) -> El {
        match (x, to) {
            (El::F(v), DType::F16 | DType::BF16 | DType::F32) => El::F(self.round(to, v)),
            (El::F(v), DType::I8 | DType::I32) => {
                let i = self.fb.ins().fcvt_to_sint_sat(types::I32, v);
                El::I(self.saturate(to, i))
            }
            (El::F(v), DType::Bool) => {
                let zero = self.fb.ins().f32const(0.0);
                El::B(self.fb.ins().fcmp(FloatCC::NotEqual, v, zero))
            }
            (El::I(v), DType::BF16) => {
                // Through f64 (exact), rounded to bf16's 8 bits there: an
                // f32 first would round twice above 2^24.
                let d = self.fb.ins().fcvt_from_sint(types::F64, v);
                let bits = self.fb.ins().bitcast(types::I64, MemFlagsData::new(), d);
                let lsb = self.fb.ins().ushr_imm_u(bits, 45);
                let lsb = self.fb.ins().band_imm_u(lsb, 1);
                let bias = self.fb.ins().iadd_imm_s(lsb, (1 << 44) - 1);
                let r = self.fb.ins().iadd(bits, bias);
                let r = self.fb.ins().band_imm_s(r, !((1i64 << 45) - 1));
                let d = self.fb.ins().bitcast(types::F64, MemFlagsData::new(), r);
                El::F(self.fb.ins().fdemote(types::F32, d))
            }
            (El::I(v), DType::F16 | DType::F32) => {
                // Exact in f32 below 2^24; f16 overflows long before.
                let f = self.fb.ins().fcvt_from_sint(types::F32, v);
                El::F(self.round(to, f))
            }
            (El::I(v), DType::I8 | DType::I32) => El::I(self.saturate(to, v)),
            (El::I(v), DType::Bool) => El::B(self.fb.ins().icmp_imm_s(IntCC::NotEqual, v, 0)),
            (El::B(v), DType::F16 | DType::BF16 | DType::F32) => {
                let w = self.fb.ins().uextend(types::I32, v);
                El::F(self.fb.ins().fcvt_from_uint(types::F32, w))
            }
            (El::B(v), DType::I8 | DType::I32) => El::I(self.fb.ins().uextend(types::I32, v)),
            (El::B(v), DType::Bool) => El::B(v),
        }
    }
}

fn int_cc(c: CompareOp, signed: bool) -> IntCC {
    match (c, signed) {
        (CompareOp::Lt, true) => IntCC::SignedLessThan,
        (CompareOp::Le, true) => IntCC::SignedLessThanOrEqual,
        (CompareOp::Gt, true) => IntCC::SignedGreaterThan,
        (CompareOp::Ge, true) => IntCC::SignedGreaterThanOrEqual,
        (CompareOp::Lt, false) => IntCC::UnsignedLessThan,
        (CompareOp::Le, false) => IntCC::UnsignedLessThanOrEqual,
        (CompareOp::Gt, false) => IntCC::UnsignedGreaterThan,
        (CompareOp::Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
        (CompareOp::Eq, _) => IntCC::Equal,
        (CompareOp::Ne, _) => IntCC::NotEqual,
    }
}
