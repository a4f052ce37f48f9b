//! Vector-unit code for elementwise ops over UB tiles.
//!
//! [`Vec`] operands are contiguous runs of `n` elements in UB; an
//! instruction covers `rep` repeats of `L = 256 / (largest element size)`
//! lanes, so a run becomes full-mask instructions of at most 255 repeats and
//! one masked tail. Every IR elementwise op is lowered here: the ISA's
//! primitives directly (in the op's dtype; f16/bf16 compute in f32 and round
//! once in the unit), the transcendental composites (`sigmoid`, `tanh`,
//! `erf`, `gelu`, `silu`, `pow`) as sequences in f32 scratch with one final
//! rounding, `neg` as a multiplication by −1.

use super::prog::{Access, Item, MicroOp, Pipe, Region, Space};
use tessera_ir::plan::EwOp;
use tessera_ir::{BinaryOp, CompareOp, DType, UnaryOp};

/// A run of elements in UB.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VBuf {
    /// Byte address of element 0.
    pub addr: u64,
    /// Element type.
    pub dtype: DType,
    /// The buffer copy (keys synchronisation).
    pub slot: u32,
}

impl VBuf {
    fn size(&self) -> u64 {
        self.dtype.size_bytes() as u64
    }

    /// The same buffer seen as another dtype (scratch reuse).
    pub fn as_dtype(self, dtype: DType) -> VBuf {
        VBuf { dtype, ..self }
    }
}

/// An operand of a vector instruction.
#[derive(Clone, Debug)]
pub enum Opnd {
    /// A contiguous run.
    Run(VBuf),
    /// Every lane reads the same 32-byte block (a value replicated by
    /// `vec.brcb`): `[addr, 0, 0]`.
    Block(VBuf),
    /// A scalar literal.
    Lit(String),
}

/// The assembler's name of a dtype.
pub fn dt(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::I8 => "i8",
        DType::I32 => "i32",
        DType::Bool => "b8",
    }
}

/// A float literal as the assembler reads it.
pub fn lit(x: f64) -> Opnd {
    Opnd::Lit(if x.is_nan() {
        "nan".into()
    } else if x == f64::INFINITY {
        "inf".into()
    } else if x == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{:?}", x as f32)
    })
}

/// Emits `mnemonic` over `n` elements. `ops[0]` is the destination unless
/// `dst_is_first` is false (instructions without a vector destination).
pub fn emit(items: &mut Vec<Item>, mnemonic: &str, n: u64, ops: &[Opnd]) {
    let max_size = ops
        .iter()
        .filter_map(|o| match o {
            Opnd::Run(b) | Opnd::Block(b) => Some(b.size()),
            Opnd::Lit(_) => None,
        })
        .max()
        .unwrap_or(4);
    let lanes = 256 / max_size;
    let full = n / lanes;
    let tail = n % lanes;
    let mut chunks: Vec<(u64, u64, u64)> = Vec::new(); // (first element, rep, mask)
    let mut done = 0;
    while done < full {
        let rep = (full - done).min(255);
        chunks.push((done * lanes, rep, lanes));
        done += rep;
    }
    if tail > 0 {
        chunks.push((full * lanes, 1, tail));
    }
    for (e0, rep, mask) in chunks {
        let mut texts = Vec::with_capacity(ops.len());
        let mut accesses = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            match o {
                Opnd::Run(b) => {
                    let start = b.addr + e0 * b.size();
                    let stride = lanes * b.size() / 32;
                    texts.push(format!("[{start}, 1, {stride}]"));
                    let end = start + (rep * lanes).min(n - e0) * b.size();
                    let kind = if i == 0 { Access::Write } else { Access::Read };
                    accesses.push((kind, region(b, start, end)));
                }
                Opnd::Block(b) => {
                    texts.push(format!("[{}, 0, 0]", b.addr));
                    accesses.push((Access::Read, region(b, b.addr, b.addr + 32)));
                }
                Opnd::Lit(s) => texts.push(s.clone()),
            }
        }
        items.push(Item::Op(MicroOp {
            text: format!("{mnemonic} {}, {rep}, {mask}", texts.join(", ")),
            pipe: Pipe::V,
            accesses,
        }));
    }
}

fn region(b: &VBuf, start: u64, end: u64) -> Region {
    Region {
        space: Space::Ub,
        start,
        end,
        slot: b.slot,
    }
}

/// Scratch tiles handed to a composite, as f32 runs.
pub struct Scratch<'a> {
    bufs: &'a [VBuf],
    next: usize,
}

impl<'a> Scratch<'a> {
    /// Scratch over these buffers.
    pub fn new(bufs: &'a [VBuf]) -> Scratch<'a> {
        Scratch { bufs, next: 0 }
    }

    fn take(&mut self) -> Result<VBuf, String> {
        let b = self
            .bufs
            .get(self.next)
            .copied()
            .ok_or_else(|| "internal: a composite op ran out of scratch tiles".to_string())?;
        self.next += 1;
        Ok(b.as_dtype(DType::F32))
    }
}

fn cmp_name(c: CompareOp) -> &'static str {
    match c {
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
    }
}

fn bin_name(b: BinaryOp) -> &'static str {
    match b {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Maximum => "max",
        BinaryOp::Minimum => "min",
        BinaryOp::Pow => "pow",
    }
}

/// A small builder for f32 sequences over one run length.
struct Seq<'i> {
    items: &'i mut Vec<Item>,
    n: u64,
}

impl Seq<'_> {
    fn un(&mut self, op: &str, d: VBuf, a: VBuf) {
        emit(
            self.items,
            &format!("vec.{op}.{}", dt(d.dtype)),
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
        );
    }
    fn bin(&mut self, op: &str, d: VBuf, a: VBuf, b: VBuf) {
        emit(
            self.items,
            &format!("vec.{op}.{}", dt(d.dtype)),
            self.n,
            &[Opnd::Run(d), Opnd::Run(a), Opnd::Run(b)],
        );
    }
    fn sca(&mut self, op: &str, d: VBuf, a: VBuf, s: f64) {
        emit(
            self.items,
            &format!("vec.{op}.{}", dt(d.dtype)),
            self.n,
            &[Opnd::Run(d), Opnd::Run(a), lit(s)],
        );
    }
    fn cmps(&mut self, cond: &str, d: VBuf, a: VBuf, s: f64) {
        emit(
            self.items,
            &format!("vec.cmps.{cond}.{}", dt(a.dtype)),
            self.n,
            &[Opnd::Run(d.as_dtype(DType::Bool)), Opnd::Run(a), lit(s)],
        );
    }
    fn cmp(&mut self, cond: &str, d: VBuf, a: VBuf, b: VBuf) {
        emit(
            self.items,
            &format!("vec.cmp.{cond}.{}", dt(a.dtype)),
            self.n,
            &[
                Opnd::Run(d.as_dtype(DType::Bool)),
                Opnd::Run(a),
                Opnd::Run(b),
            ],
        );
    }
    fn sel(&mut self, d: VBuf, c: VBuf, a: VBuf, b: VBuf) {
        emit(
            self.items,
            &format!("vec.sel.{}", dt(d.dtype)),
            self.n,
            &[
                Opnd::Run(d),
                Opnd::Run(c.as_dtype(DType::Bool)),
                Opnd::Run(a),
                Opnd::Run(b),
            ],
        );
    }
    fn cvt(&mut self, d: VBuf, a: VBuf) {
        emit(
            self.items,
            &format!("vec.cvt.{}.{}", dt(d.dtype), dt(a.dtype)),
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
        );
    }
    fn dup(&mut self, d: VBuf, s: f64) {
        emit(
            self.items,
            &format!("vec.dup.{}", dt(d.dtype)),
            self.n,
            &[Opnd::Run(d), lit(s)],
        );
    }

    /// `d = sign(x) * |v|`-style restore: `d = x < 0 ? -v : v`.
    fn copysign_from(&mut self, d: VBuf, v: VBuf, x: VBuf, mask: VBuf, neg: VBuf) {
        self.cmps("lt", mask, x, 0.0);
        self.sca("muls", neg, v, -1.0);
        self.sel(d, mask, neg, v);
    }

    /// `d = 1 / (1 + exp(-x))`.
    fn sigmoid(&mut self, d: VBuf, x: VBuf, t: VBuf) {
        self.sca("muls", t, x, -1.0);
        self.un("exp", t, t);
        self.sca("adds", t, t, 1.0);
        self.un("rec", d, t);
    }

    /// `d = tanh(x)` = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}).
    fn tanh(&mut self, d: VBuf, x: VBuf, s: [VBuf; 4]) {
        let [e, num, den, mask] = s;
        self.un("abs", e, x);
        self.sca("muls", e, e, -2.0);
        self.un("exp", e, e);
        self.sca("muls", num, e, -1.0);
        self.sca("adds", num, num, 1.0);
        self.sca("adds", den, e, 1.0);
        self.bin("div", num, num, den);
        self.copysign_from(d, num, x, mask, den);
    }

    /// `d = erf(x)` (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7).
    fn erf(&mut self, d: VBuf, x: VBuf, s: [VBuf; 5]) {
        let [a, t, p, e, mask] = s;
        const P: f64 = 0.327_591_1;
        const A: [f64; 5] = [
            0.254_829_592,
            -0.284_496_736,
            1.421_413_741,
            -1.453_152_027,
            1.061_405_429,
        ];
        self.un("abs", a, x);
        self.sca("muls", t, a, P);
        self.sca("adds", t, t, 1.0);
        self.un("rec", t, t);
        self.sca("muls", p, t, A[4]);
        for &c in A[..4].iter().rev() {
            self.sca("adds", p, p, c);
            self.bin("mul", p, p, t);
        }
        self.bin("mul", e, a, a);
        self.sca("muls", e, e, -1.0);
        self.un("exp", e, e);
        self.bin("mul", p, p, e);
        self.sca("muls", p, p, -1.0);
        self.sca("adds", p, p, 1.0);
        self.copysign_from(d, p, x, mask, t);
    }
}

/// Emits one elementwise instruction over `n` elements: `dst = op(args)`.
/// `scratch` holds at least [`scratch_needed`] tiles.
pub fn emit_op(
    items: &mut Vec<Item>,
    n: u64,
    op: &EwOp,
    dst: VBuf,
    args: &[VBuf],
    scratch: &[VBuf],
) -> Result<(), String> {
    let d = dst.dtype;
    let mut q = Seq { items, n };
    match op {
        EwOp::Copy => q.un("copy", dst, args[0]),
        EwOp::Cast(_) if args[0].dtype == d => q.un("copy", dst, args[0]),
        EwOp::Cast(_) => q.cvt(dst, args[0]),
        EwOp::Select => q.sel(dst, args[0], args[1], args[2]),
        EwOp::Compare(c) => q.cmp(cmp_name(*c), dst, args[0], args[1]),
        EwOp::Binary(BinaryOp::Pow) => {
            let mut s = Scratch::new(scratch);
            let (a, b) = if d == DType::F32 {
                (args[0], args[1])
            } else {
                let (a, b) = (s.take()?, s.take()?);
                q.cvt(a, args[0]);
                q.cvt(b, args[1]);
                (a, b)
            };
            let [y, m, neg, t, isint, even, zb, one, nanv] = [
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
                s.take()?,
            ];
            // y = exp(b · ln|a|)
            q.un("abs", m, a);
            q.un("ln", m, m);
            q.bin("mul", m, m, b);
            q.un("exp", y, m);
            // Is b an integer, an even one?
            let ti = t.as_dtype(DType::I32);
            q.cvt(ti, b);
            q.cvt(m, ti);
            q.cmp("eq", isint, m, b);
            q.sca("muls", m, b, 0.5);
            q.cvt(ti, m);
            q.cvt(m, ti);
            q.sca("muls", m, m, 2.0);
            q.cmp("eq", even, m, b);
            // Negative base: ±y for integral b, NaN otherwise.
            q.sca("muls", m, y, -1.0);
            q.sel(m, even, y, m);
            q.dup(nanv, f64::NAN);
            q.sel(m, isint, m, nanv);
            q.cmps("lt", neg, a, 0.0);
            q.sel(y, neg, m, y);
            // pow(a, 0) = 1 and pow(1, b) = 1, whatever the other operand.
            q.dup(one, 1.0);
            q.cmps("eq", zb, b, 0.0);
            q.sel(y, zb, one, y);
            q.cmps("eq", zb, a, 1.0);
            if d == DType::F32 {
                q.sel(dst, zb, one, y);
            } else {
                q.sel(y, zb, one, y);
                q.cvt(dst, y);
            }
        }
        EwOp::Binary(b) => q.bin(bin_name(*b), dst, args[0], args[1]),
        EwOp::Unary(u) => match u {
            UnaryOp::Neg => {
                if d.is_float() {
                    q.sca("muls", dst, args[0], -1.0);
                } else {
                    emit(
                        q.items,
                        &format!("vec.muls.{}", dt(d)),
                        n,
                        &[Opnd::Run(dst), Opnd::Run(args[0]), Opnd::Lit("-1".into())],
                    );
                }
            }
            UnaryOp::Abs => q.un("abs", dst, args[0]),
            UnaryOp::Relu => q.un("relu", dst, args[0]),
            UnaryOp::Exp => q.un("exp", dst, args[0]),
            UnaryOp::Log => q.un("ln", dst, args[0]),
            UnaryOp::Sqrt => q.un("sqrt", dst, args[0]),
            UnaryOp::Rsqrt => q.un("rsqrt", dst, args[0]),
            UnaryOp::Reciprocal => q.un("rec", dst, args[0]),
            UnaryOp::Sigmoid
            | UnaryOp::Silu
            | UnaryOp::Tanh
            | UnaryOp::Erf
            | UnaryOp::Gelu
            | UnaryOp::GeluTanh => {
                let mut s = Scratch::new(scratch);
                let x = if d == DType::F32 {
                    args[0]
                } else {
                    let x = s.take()?;
                    q.cvt(x, args[0]);
                    x
                };
                // The f32 result, converted at the end when d is not f32.
                let r = if d == DType::F32 { dst } else { s.take()? };
                match u {
                    UnaryOp::Sigmoid => q.sigmoid(r, x, s.take()?),
                    UnaryOp::Silu => {
                        let t = s.take()?;
                        q.sca("muls", t, x, -1.0);
                        q.un("exp", t, t);
                        q.sca("adds", t, t, 1.0);
                        q.bin("div", r, x, t);
                    }
                    UnaryOp::Tanh => q.tanh(r, x, [s.take()?, s.take()?, s.take()?, s.take()?]),
                    UnaryOp::Erf => q.erf(
                        r,
                        x,
                        [s.take()?, s.take()?, s.take()?, s.take()?, s.take()?],
                    ),
                    UnaryOp::Gelu => {
                        // 0.5·x·(1 + erf(x/√2))
                        let u = s.take()?;
                        q.sca("muls", u, x, std::f64::consts::FRAC_1_SQRT_2);
                        let scr = [s.take()?, s.take()?, s.take()?, s.take()?, s.take()?];
                        q.erf(u, u, scr);
                        q.sca("adds", u, u, 1.0);
                        q.bin("mul", u, u, x);
                        q.sca("muls", r, u, 0.5);
                    }
                    _ => {
                        // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                        let w = s.take()?;
                        q.bin("mul", w, x, x);
                        q.bin("mul", w, w, x);
                        q.sca("muls", w, w, 0.044715);
                        q.bin("add", w, w, x);
                        q.sca("muls", w, w, (2.0 / std::f64::consts::PI).sqrt());
                        let scr = [s.take()?, s.take()?, s.take()?, s.take()?];
                        let h = s.take()?;
                        q.tanh(h, w, scr);
                        q.sca("adds", h, h, 1.0);
                        q.bin("mul", h, h, x);
                        q.sca("muls", r, h, 0.5);
                    }
                }
                if d != DType::F32 {
                    q.cvt(dst, r);
                }
            }
        },
    }
    Ok(())
}
