//! Vector-unit code for elementwise ops over UB tiles.
//!
//! [`VBuf`] operands are contiguous runs of `n` elements in UB; an
//! instruction covers `rep` repeats of `L = 256 / (largest element size)`
//! lanes, so a run becomes full-mask instructions of at most 255 repeats and
//! one masked tail ([`emit`]). Every IR elementwise op is lowered here
//! ([`emit_op`]): the ISA's primitives directly (in the op's dtype; f16/bf16
//! compute in f32 and round once in the unit), the transcendental composites
//! (`sigmoid`, `tanh`, `erf`, `gelu`, `silu`, `pow`, `sin`, `cos`) as sequences in f32
//! scratch with one final rounding, `neg` as a multiplication by −1. The
//! scratch a composite may use is declared by the plan
//! (`tessera_ir::plan::elementwise::scratch`).

use super::inst::{InstBuilder, VecOperand, float_scalar, int_scalar, lanes};
use super::prog::{Access, Build, Item, OpAt, Region, Slot};
use crate::series::{ERF_SERIES, SERIES_BELOW, TANH_SERIES};
use tessera_ir::plan::elementwise::SCRATCH_TABLE_BYTES;
use tessera_ir::plan::{EwOp, LocalBuf};
use tessera_ir::{BinaryOp, CompareOp, DType, UnaryOp};
use tessera_sim::isa::{BinOp, Cond, Dt, Mask, ScaOp, Scal, UnOp};

mod constant;

pub use constant::{constant_form, emit_op_with};

/// 2/π in 12-bit chunks: chunk `k` is bits `12k + 1 ..= 12k + 12` after
/// the point (fdlibm's `ipio2` digits).
const TWO_OVER_PI: [u16; 14] = [
    0xa2f, 0x983, 0x6e4, 0xe44, 0x152, 0x9fc, 0x275, 0x7d1, 0xf53, 0x4dd, 0xc0d, 0xb62, 0x959,
    0x93c,
];
/// Entries of the sine's gather table: 12 zeros, then the chunks.
const TABLE_ENTRIES: u64 = 12 + TWO_OVER_PI.len() as u64;
/// Where the sine table's integer constants start (bytes).
const TABLE_CONSTS: u64 = 128;
const _: () =
    assert!(TABLE_ENTRIES * 4 <= TABLE_CONSTS && TABLE_CONSTS + 96 <= SCRATCH_TABLE_BYTES);

/// A run of elements in UB.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct VBuf {
    /// Byte address of element 0.
    pub addr: u64,
    /// Element type.
    pub dtype: DType,
    /// The buffer copy (keys synchronisation).
    pub slot: Slot,
}

impl VBuf {
    /// Copy `copy` of a UB buffer, as elements of `dtype`.
    pub fn of(l: &LocalBuf, copy: u32, dtype: DType) -> VBuf {
        VBuf {
            addr: l.copy(copy),
            dtype,
            slot: Slot::of(l, copy),
        }
    }

    fn size(&self) -> u64 {
        self.dtype.size_bytes() as u64
    }

    /// The same buffer seen as another dtype (scratch reuse).
    pub fn as_dtype(self, dtype: DType) -> VBuf {
        VBuf { dtype, ..self }
    }

    /// The run starting `bytes` further into the same buffer copy.
    pub fn offset(self, bytes: u64) -> VBuf {
        VBuf {
            addr: self.addr + bytes,
            ..self
        }
    }

    /// The `bytes` from its start, as an accessed region.
    pub fn region(&self, bytes: u64) -> Region {
        Region {
            space: self.slot.space,
            start: self.addr,
            end: self.addr + bytes,
            slot: self.slot,
        }
    }
}

/// A vector operand of [`emit`].
#[derive(Copy, Clone, Debug)]
pub enum Opnd {
    /// A contiguous run.
    Run(VBuf),
    /// Every lane reads the same 32-byte block (a value replicated by
    /// `vec.brcb`): `[addr, 0, 0]`.
    Block(VBuf),
    /// The first `bytes` of a buffer, read at addresses the instruction
    /// computes (a gather's table); the operand passed is `[addr, 0, 0]`.
    Whole(VBuf, u64),
}

/// The simulator's element type of an IR dtype.
pub fn dt(d: DType) -> Dt {
    match d {
        DType::F16 => Dt::F16,
        DType::BF16 => Dt::Bf16,
        DType::F32 => Dt::F32,
        DType::I8 => Dt::I8,
        DType::I32 => Dt::I32,
        DType::Bool => Dt::B8,
    }
}

/// The IR dtype of a simulator element type.
pub fn dtype(d: Dt) -> DType {
    match d {
        Dt::F16 => DType::F16,
        Dt::Bf16 => DType::BF16,
        Dt::F32 => DType::F32,
        Dt::I8 => DType::I8,
        Dt::I32 => DType::I32,
        Dt::B8 => DType::Bool,
    }
}

/// A vector instruction's scalar operand holding `x` as a `d` value.
pub fn scalar(d: DType, x: f64) -> Scal {
    if d.is_float() {
        float_scalar(x)
    } else {
        int_scalar(x as i64)
    }
}

/// Emits a vector instruction over `n` elements: full-mask instructions of
/// at most 255 repeats and a masked tail. `ops[0]` is written, the others
/// read; `build` makes one instruction from the operands' [`VecOperand`]s,
/// the repeat count and the mask.
pub fn emit(
    items: &mut Vec<Item>,
    n: u64,
    ops: &[Opnd],
    build: impl Fn(OpAt<'_>, &[VecOperand], u64, Mask),
) {
    let max_size = ops
        .iter()
        .map(|o| match o {
            Opnd::Run(b) | Opnd::Block(b) | Opnd::Whole(b, _) => b.size(),
        })
        .max()
        .unwrap_or(4);
    let per = 256 / max_size;
    let full = n / per;
    let tail = n % per;
    let mut chunks: Vec<(u64, u64, u64)> = Vec::new(); // (first element, rep, mask)
    let mut done = 0;
    while done < full {
        let rep = (full - done).min(255);
        chunks.push((done * per, rep, per));
        done += rep;
    }
    if tail > 0 {
        chunks.push((full * per, 1, tail));
    }
    for (e0, rep, mask) in chunks {
        let mut vops = Vec::with_capacity(ops.len());
        let mut accesses = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            match o {
                Opnd::Run(b) => {
                    let run = b.offset(e0 * b.size());
                    vops.push(VecOperand::new(run.addr, 1, per * b.size() / 32));
                    let bytes = (rep * per).min(n - e0) * b.size();
                    let kind = if i == 0 { Access::Write } else { Access::Read };
                    accesses.push((kind, run.region(bytes)));
                }
                Opnd::Block(b) => {
                    vops.push(VecOperand::new(b.addr, 0, 0));
                    accesses.push((Access::Read, b.region(32)));
                }
                Opnd::Whole(b, bytes) => {
                    vops.push(VecOperand::new(b.addr, 0, 0));
                    accesses.push((Access::Read, b.region(*bytes)));
                }
            }
        }
        build(items.op(accesses), &vops, rep, lanes(mask));
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

/// The vector condition of an IR comparison.
fn cond(c: CompareOp) -> Cond {
    match c {
        CompareOp::Lt => Cond::Lt,
        CompareOp::Le => Cond::Le,
        CompareOp::Gt => Cond::Gt,
        CompareOp::Ge => Cond::Ge,
        CompareOp::Eq => Cond::Eq,
        CompareOp::Ne => Cond::Ne,
    }
}

/// A small builder for sequences of vector instructions over one run length.
pub struct Seq<'i> {
    /// Where they go.
    pub items: &'i mut Vec<Item>,
    /// Elements per run.
    pub n: u64,
}

impl Seq<'_> {
    /// `d = op(a)`.
    pub fn un(&mut self, op: UnOp, d: VBuf, a: VBuf) {
        emit(
            self.items,
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
            |b, v, rep, m| b.vec_un(op, dt(d.dtype), v[0], v[1], rep, m),
        );
    }
    /// `d = a`.
    pub fn copy(&mut self, d: VBuf, a: VBuf) {
        emit(
            self.items,
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
            |b, v, rep, m| b.vec_copy(dt(d.dtype), v[0], v[1], rep, m),
        );
    }
    /// `d = a <op> b`.
    pub fn bin(&mut self, op: BinOp, d: VBuf, a: VBuf, b: VBuf) {
        let ops = [Opnd::Run(d), Opnd::Run(a), Opnd::Run(b)];
        emit(self.items, self.n, &ops, |bld, v, rep, m| {
            bld.vec_bin(op, dt(d.dtype), v[0], v[1], v[2], rep, m)
        });
    }
    /// `d = a <op> s`.
    pub fn sca(&mut self, op: ScaOp, d: VBuf, a: VBuf, s: Scal) {
        emit(
            self.items,
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
            |b, v, rep, m| b.vec_sca(op, dt(d.dtype), v[0], v[1], s, rep, m),
        );
    }
    /// `d(bool) = a <cond> s`.
    pub fn cmps(&mut self, c: Cond, d: VBuf, a: VBuf, s: Scal) {
        let ops = [Opnd::Run(d.as_dtype(DType::Bool)), Opnd::Run(a)];
        emit(self.items, self.n, &ops, |b, v, rep, m| {
            b.vec_cmps(c, dt(a.dtype), v[0], v[1], s, rep, m)
        });
    }
    /// `d(bool) = a <cond> b`.
    pub fn cmp(&mut self, c: Cond, d: VBuf, a: VBuf, b: VBuf) {
        let ops = [
            Opnd::Run(d.as_dtype(DType::Bool)),
            Opnd::Run(a),
            Opnd::Run(b),
        ];
        emit(self.items, self.n, &ops, |bld, v, rep, m| {
            bld.vec_cmp(c, dt(a.dtype), v[0], v[1], v[2], rep, m)
        });
    }
    /// `d = c ? a : b`.
    pub fn sel(&mut self, d: VBuf, c: VBuf, a: VBuf, b: VBuf) {
        let ops = [
            Opnd::Run(d),
            Opnd::Run(c.as_dtype(DType::Bool)),
            Opnd::Run(a),
            Opnd::Run(b),
        ];
        emit(self.items, self.n, &ops, |bld, v, rep, m| {
            bld.vec_sel(dt(d.dtype), v[0], v[1], v[2], v[3], rep, m)
        });
    }
    /// `d = convert(a)`.
    pub fn cvt(&mut self, d: VBuf, a: VBuf) {
        emit(
            self.items,
            self.n,
            &[Opnd::Run(d), Opnd::Run(a)],
            |b, v, rep, m| b.vec_cvt(dt(d.dtype), dt(a.dtype), v[0], v[1], rep, m),
        );
    }
    /// `d = s` everywhere.
    pub fn dup(&mut self, d: VBuf, s: Scal) {
        emit(self.items, self.n, &[Opnd::Run(d)], |b, v, rep, m| {
            b.vec_dup(dt(d.dtype), v[0], s, rep, m)
        });
    }
    /// `d[l] = s` for the first `count` (at most one repeat of) lanes.
    fn dup_lanes(&mut self, d: VBuf, count: u64, s: Scal) {
        self.items
            .op(vec![(Access::Write, d.region(count * d.size()))])
            .vec_dup(
                dt(d.dtype),
                VecOperand::new(d.addr, 1, 8),
                s,
                1,
                lanes(count),
            );
    }
    /// `d = a <op> c`, `c` a 32-byte block that every lane reads (a constant).
    fn bin_block(&mut self, op: BinOp, d: VBuf, a: VBuf, c: VBuf) {
        let ops = [Opnd::Run(d), Opnd::Run(a), Opnd::Block(c)];
        emit(self.items, self.n, &ops, |bld, v, rep, m| {
            bld.vec_bin(op, dt(d.dtype), v[0], v[1], v[2], rep, m)
        });
    }
    /// `d[l] = *(table + idx[l])` (`idx` in bytes), reading within the
    /// table's first `bytes`.
    fn gather(&mut self, d: VBuf, table: VBuf, bytes: u64, idx: VBuf) {
        let ops = [
            Opnd::Run(d),
            Opnd::Run(idx.as_dtype(DType::I32)),
            Opnd::Whole(table, bytes),
        ];
        emit(self.items, self.n, &ops, |bld, v, rep, m| {
            bld.vec_gather(dt(d.dtype), v[0], table.addr, v[1], rep, m)
        });
    }

    /// `r = u(x)` for a transcendental composite, in f32, to `accuracy`,
    /// with its scratch tiles from `s`.
    fn composite(
        &mut self,
        (u, accuracy): (UnaryOp, Accuracy),
        r: VBuf,
        x: VBuf,
        s: &mut Scratch<'_>,
    ) -> Result<(), String> {
        let q = self;
        match u {
            UnaryOp::Sin | UnaryOp::Cos => {
                let tb = s.take()?;
                let mut t = [x; 11];
                for v in &mut t {
                    *v = s.take()?;
                }
                q.sine(r, x, u == UnaryOp::Cos, tb, t);
            }
            UnaryOp::Sigmoid => q.sigmoid(r, x, s.take()?),
            UnaryOp::Silu => {
                let t = s.take()?;
                q.sca(ScaOp::Muls, t, x, float_scalar(-1.0));
                q.un(UnOp::Exp, t, t);
                q.sca(ScaOp::Adds, t, t, float_scalar(1.0));
                // x · (1 / (1 + e^−x)): a reciprocal and a product cost
                // less than a division.
                q.un(UnOp::Rec, t, t);
                q.bin(BinOp::Mul, r, x, t);
            }
            UnaryOp::Tanh => q.tanh(r, x, [s.take()?, s.take()?, s.take()?, s.take()?]),
            UnaryOp::Erf => q.erf(
                r,
                x,
                [s.take()?, s.take()?, s.take()?, s.take()?, s.take()?],
            ),
            UnaryOp::Gelu if accuracy == Accuracy::Half => q.gelu_half(r, x, s.take()?),
            UnaryOp::Gelu => q.gelu(r, x, [s.take()?, s.take()?]),
            UnaryOp::GeluTanh => q.gelu_tanh(r, x, s.take()?),
            UnaryOp::Neg
            | UnaryOp::Abs
            | UnaryOp::Relu
            | UnaryOp::Exp
            | UnaryOp::Log
            | UnaryOp::Sqrt
            | UnaryOp::Rsqrt
            | UnaryOp::Reciprocal => {
                return Err(format!("internal: `{}` is not a composite", u.name()));
            }
        }
        Ok(())
    }

    /// `d = sin(x)`, or `cos(x)` with `cos`, for every finite `x` (Payne–Hanek
    /// reduction in f32, exact where it matters; `docs/codegen.md` has the
    /// derivation).
    ///
    /// `|x| · 2/π = k + r` with `k mod 4` the quadrant and `|r| ≤ 1/2`. 2/π is
    /// a table of 12-bit chunks (`TWO_OVER_PI`, gathered per lane at
    /// the window its exponent needs); `|x|` is split in two 12-bit halves
    /// and scaled by a power of two so that every product of a half and a
    /// chunk is exact and lies in `[2^25, 2^37)`. Products are reduced
    /// mod 4 and split into integers (summed exactly: the quadrant) and
    /// fractions (summed exactly, the last ones with TwoSum). Then
    /// `±sin(r·π/2)` or `±cos(r·π/2)` by the quadrant, each a minimax
    /// polynomial on `[−π/4, π/4]`; `sin x = x` for `|x| < 2^−12`. An
    /// infinite or NaN `x` gives NaN. `tb` holds the table and constants
    /// (it has at least [`SCRATCH_TABLE_BYTES`]), `s` eleven f32 scratch tiles.
    fn sine(&mut self, d: VBuf, x: VBuf, cos: bool, tb: VBuf, s: [VBuf; 11]) {
        // sin r ≈ r + r·z·(S1 + z·(S2 + z·S3)), cos r ≈ 1 − z/2 + z²·(K1 +
        // z·(K2 + z·K3)), z = r² (Cephes' single-precision minimax).
        const S: [f64; 3] = [-1.666_665_461_1e-1, 8.332_160_873_6e-3, -1.951_529_589_1e-4];
        const K: [f64; 3] = [
            4.166_664_568_298_827e-2,
            -1.388_731_625_493_765e-3,
            2.443_315_711_809_948e-5,
        ];
        let (f, i) = (float_scalar, int_scalar);
        let int = |b: VBuf| b.as_dtype(DType::I32);
        let p2 = |e: i32| f(2f64.powi(e));
        let [a, u, sc, idx, bh, bl, w, t, t2, nn, lo] = s;

        // The table: 12 zeros (windows that start above 2/π's first bit),
        // the chunks (written last to first, each over a shorter prefix: an
        // operand starts 32-byte aligned), then three 8-lane constants for
        // integer division.
        for (k, c) in TWO_OVER_PI.iter().enumerate().rev() {
            self.dup_lanes(tb, 13 + k as u64, f(f64::from(*c) / 4096.0));
        }
        self.dup_lanes(tb, 12, f(0.0));
        let (c_exp, c_12, c_split) = (
            int(tb.offset(TABLE_CONSTS)),
            int(tb.offset(TABLE_CONSTS + 32)),
            int(tb.offset(TABLE_CONSTS + 64)),
        );
        self.dup_lanes(c_exp, 8, i(1 << 23));
        self.dup_lanes(c_12, 8, i(12));
        self.dup_lanes(c_split, 8, i(1 << 12));

        // a = |x|; e = its biased exponent; u = (e − 8) / 12 picks the window
        // (entries u .. u+5), and b = a · 2^(144 − 12u) ∈ [2^25, 2^37) for
        // a ≥ 2^−119: applied as sc² with sc = 2^(72 − 6u).
        self.un(UnOp::Abs, a, x);
        self.bin_block(BinOp::Div, int(u), int(a), c_exp);
        self.sca(ScaOp::Adds, int(u), int(u), i(-8));
        self.bin_block(BinOp::Div, int(u), int(u), c_12);
        self.sca(ScaOp::Muls, int(idx), int(u), i(4));
        self.sca(ScaOp::Muls, int(sc), int(u), i(-6 << 23));
        self.sca(ScaOp::Adds, int(sc), int(sc), i(199 << 23));
        // bh = a with its low 12 significand bits cleared, bl = a − bh (exact),
        // both scaled.
        self.bin_block(BinOp::Div, int(bh), int(a), c_split);
        self.sca(ScaOp::Muls, int(bh), int(bh), i(1 << 12));
        self.bin(BinOp::Sub, bl, a, bh);
        for h in [bh, bl] {
            self.bin(BinOp::Mul, h, h, sc);
            self.bin(BinOp::Mul, h, h, sc);
        }
        // w = window entry j, at its weight 2^(−12j).
        let window = |q: &mut Self, j: u64| {
            q.gather(w, tb.offset(4 * j), TABLE_ENTRIES * 4 - 4 * j, idx);
            if j > 0 {
                q.sca(ScaOp::Muls, w, w, p2(-12 * j as i32));
            }
        };
        // t mod 4 ∈ [−2, 2] for t ≥ 0 (t ≥ 2^25 is a multiple of 4); t is clobbered.
        let mod4 = |q: &mut Self, dst: VBuf, t: VBuf| {
            q.sca(ScaOp::Mins, t, t, p2(25));
            q.sca(ScaOp::Adds, dst, t, p2(25));
            q.sca(ScaOp::Adds, dst, dst, f(-(2f64.powi(25))));
            q.bin(BinOp::Sub, dst, t, dst);
        };
        // dst = round(v) for |v| ≤ 2^22 (ties to even).
        let round = |q: &mut Self, dst: VBuf, v: VBuf| {
            q.sca(ScaOp::Adds, dst, v, f(1.5 * 2f64.powi(23)));
            q.sca(ScaOp::Adds, dst, dst, f(-1.5 * 2f64.powi(23)));
        };
        // t = t − round(t), the integer added to nn.
        let split = |q: &mut Self, t: VBuf| {
            round(q, t2, t);
            q.bin(BinOp::Sub, t, t, t2);
            q.bin(BinOp::Add, nn, nn, t2);
        };

        // The product of the window's first entry with bh is a multiple of
        // 4. Next, two products of granularity ≥ 2^−10 and < 2^25: their
        // residues mod 4 add exactly; fr = the fraction, nn = the integer.
        let (mut fr, mut spare) = (a, u);
        let v = sc;
        window(self, 0);
        self.bin(BinOp::Mul, t, bl, w);
        mod4(self, fr, t);
        window(self, 1);
        self.bin(BinOp::Mul, t, bh, w);
        mod4(self, t2, t);
        self.bin(BinOp::Add, fr, fr, t2);
        round(self, nn, fr);
        self.bin(BinOp::Sub, fr, fr, nn);
        // Two products < 2^13 of granularity ≥ 2^−22: fractions add exactly.
        for (h, j) in [(bl, 1), (bh, 2)] {
            if j == 2 {
                window(self, 2);
            }
            self.bin(BinOp::Mul, t, h, w);
            split(self, t);
            self.bin(BinOp::Add, fr, fr, t);
        }
        // Two products < 2 of granularity ≥ 2^−34: TwoSum keeps the error in lo.
        for (k, (h, j)) in [(bl, 2), (bh, 3)].into_iter().enumerate() {
            if j == 3 {
                window(self, 3);
            }
            self.bin(BinOp::Mul, t, h, w);
            split(self, t);
            let sum = spare;
            self.bin(BinOp::Add, sum, fr, t);
            self.bin(BinOp::Sub, v, sum, fr);
            self.bin(BinOp::Sub, t, t, v);
            self.bin(BinOp::Sub, v, sum, v);
            self.bin(BinOp::Sub, fr, fr, v);
            if k == 0 {
                self.bin(BinOp::Add, lo, fr, t);
            } else {
                self.bin(BinOp::Add, lo, lo, fr);
                self.bin(BinOp::Add, lo, lo, t);
            }
            (fr, spare) = (sum, fr);
        }
        // The rest are below 2^−11: plain sums.
        for (h, j) in [(bl, 3), (bh, 4), (bl, 4), (bh, 5), (bl, 5)] {
            if j != 3 && h == bh {
                window(self, j);
            }
            self.bin(BinOp::Mul, t, h, w);
            self.bin(BinOp::Add, lo, lo, t);
        }
        // r = (fr − round(fr)) + lo, NaN for an infinite or NaN x; θ = r·π/2.
        split(self, fr);
        self.bin(BinOp::Add, fr, fr, lo);
        self.bin(BinOp::Sub, t, x, x);
        self.bin(BinOp::Add, fr, fr, t);
        let r = fr;
        self.sca(ScaOp::Muls, r, r, f(std::f64::consts::FRAC_PI_2));

        // The quadrant as a quarter: (nn [+ 1 for the cosine]) mod 4 / 4.
        let q = spare;
        self.sca(
            ScaOp::Adds,
            nn,
            nn,
            f(f64::from(1 << 17) + f64::from(u8::from(cos))),
        );
        self.sca(ScaOp::Muls, nn, nn, f(0.25));
        self.cvt(int(q), nn);
        self.cvt(q, int(q));
        self.bin(BinOp::Sub, q, nn, q);

        // The polynomials.
        let (z, sp, cp, m) = (bl, bh, w, idx);
        self.bin(BinOp::Mul, z, r, r);
        self.horner(sp, z, &S);
        self.bin(BinOp::Mul, sp, sp, z);
        self.bin(BinOp::Mul, sp, sp, r);
        self.bin(BinOp::Add, sp, sp, r);
        self.horner(cp, z, &K);
        self.bin(BinOp::Mul, cp, cp, z);
        self.bin(BinOp::Mul, cp, cp, z);
        self.sca(ScaOp::Muls, t, z, f(-0.5));
        self.bin(BinOp::Add, cp, cp, t);
        self.sca(ScaOp::Adds, cp, cp, f(1.0));
        // Quadrant 0: sin r, 1: cos r, 2: −sin r, 3: −cos r.
        self.cmps(Cond::Eq, m, q, f(0.25));
        self.sel(sp, m, cp, sp);
        self.cmps(Cond::Eq, m, q, f(0.75));
        self.sel(sp, m, cp, sp);
        self.cmps(Cond::Ge, m, q, f(0.5));
        self.sca(ScaOp::Muls, t, sp, f(-1.0));
        if cos {
            self.sel(d, m, t, sp);
            return;
        }
        self.sel(sp, m, t, sp);
        // sin(−a) = −sin(a); sin x = x below 2^−12.
        self.cmps(Cond::Lt, m, x, f(0.0));
        self.sca(ScaOp::Muls, t, sp, f(-1.0));
        self.sel(sp, m, t, sp);
        self.un(UnOp::Abs, t, x);
        self.cmps(Cond::Lt, m, t, p2(-12));
        self.sel(d, m, x, sp);
    }

    /// `d = c[0] + z·(c[1] + z·(… + z·c[n−1]))` by Horner's rule.
    fn horner(&mut self, d: VBuf, z: VBuf, c: &[f64]) {
        let Some((last, rest)) = c.split_last() else {
            return self.dup(d, float_scalar(0.0));
        };
        self.sca(ScaOp::Muls, d, z, float_scalar(*last));
        for (i, k) in rest.iter().rev().enumerate() {
            if i > 0 {
                self.bin(BinOp::Mul, d, d, z);
            }
            self.sca(ScaOp::Adds, d, d, float_scalar(*k));
        }
    }

    /// `d = sign(x) * |v|`-style restore: `d = x < 0 ? -v : v`.
    fn copysign_from(&mut self, d: VBuf, v: VBuf, x: VBuf, mask: VBuf, neg: VBuf) {
        self.cmps(Cond::Lt, mask, x, float_scalar(0.0));
        self.sca(ScaOp::Muls, neg, v, float_scalar(-1.0));
        self.sel(d, mask, neg, v);
    }

    /// `d = 1 / (1 + exp(-x))`.
    fn sigmoid(&mut self, d: VBuf, x: VBuf, t: VBuf) {
        self.sca(ScaOp::Muls, t, x, float_scalar(-1.0));
        self.un(UnOp::Exp, t, t);
        self.sca(ScaOp::Adds, t, t, float_scalar(1.0));
        self.un(UnOp::Rec, d, t);
    }

    /// `p = a·(1 + c₁u + c₂u² + …)` with `u = a²`, by Horner (`u` is left
    /// in `u`): the odd series of a function near 0, where the closed forms
    /// below lose their relative accuracy (`1 − e^{−2a}` cancels, an
    /// absolute error bound is all of a small value).
    fn odd_series(&mut self, p: VBuf, u: VBuf, a: VBuf, c: &[f64]) {
        self.bin(BinOp::Mul, u, a, a);
        let [rest @ .., last] = c else { return };
        self.sca(ScaOp::Muls, p, u, float_scalar(*last));
        for (k, &ck) in rest.iter().enumerate().rev() {
            self.sca(ScaOp::Adds, p, p, float_scalar(ck));
            if k > 0 {
                self.bin(BinOp::Mul, p, p, u);
            }
        }
        // p = 1 + u·(…), then ·a
        self.bin(BinOp::Mul, p, p, u);
        self.sca(ScaOp::Adds, p, p, float_scalar(1.0));
        self.bin(BinOp::Mul, p, p, a);
    }

    /// `d = tanh(x)` = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}), and below
    /// |x| = 1/4 its series a − a³/3 + 2a⁵/15 − 17a⁷/315 + 62a⁹/2835 (the
    /// next term is 9e-9 of the value there; the closed form's cancellation
    /// would leave 1e-4 of it at |x| = 1e-4 and 0 below 1e-7).
    fn tanh(&mut self, d: VBuf, x: VBuf, s: [VBuf; 4]) {
        let [e, num, den, mask] = s;
        self.un(UnOp::Abs, e, x);
        self.cmps(Cond::Lt, mask, e, float_scalar(SERIES_BELOW));
        self.odd_series(num, den, e, &TANH_SERIES);
        // The closed form of |tanh| in e (num holds the series).
        self.sca(ScaOp::Muls, e, e, float_scalar(-2.0));
        self.un(UnOp::Exp, e, e);
        self.sca(ScaOp::Adds, den, e, float_scalar(1.0));
        self.sca(ScaOp::Muls, e, e, float_scalar(-1.0));
        self.sca(ScaOp::Adds, e, e, float_scalar(1.0));
        self.bin(BinOp::Div, e, e, den);
        self.sel(e, mask, num, e);
        self.copysign_from(d, e, x, mask, den);
    }

    /// `d = gelu(x)` = x·Φ(x), Φ the standard normal CDF, as
    /// x·sigmoid(g(x)) with g = logit(Φ) (odd) ≈ x·P(x²), P of degree 6
    /// fitted to the spec's f32 tolerance (`docs/derivations/gelu_fit.py`:
    /// at most 0.0073 of it over [−16, 16], this sequence in f32 — near the
    /// ulp level, as a chain may double the error and cancel the value). 27
    /// cycles a repeat against 31 for Abramowitz & Stegun's erfc with its
    /// select, and 18 steps deep rather than 22. P's leading coefficient is
    /// positive, so g grows without bound beyond the fit: gelu(+∞) = +∞ and
    /// gelu(−∞) = −∞·0 = NaN, as the reference's 0.5·x·(1 + erf(x/√2))
    /// gives, and a large negative x gives −0.
    fn gelu(&mut self, d: VBuf, x: VBuf, s: [VBuf; 2]) {
        const P: [f32; 7] = [
            1.595_765_5,
            0.072_674_23,
            -6.951_258_5e-5,
            -0.000_109_692_98,
            7.849_182e-6,
            -2.622_956_3e-7,
            3.524_868e-9,
        ];
        let [u, p] = s;
        self.bin(BinOp::Mul, u, x, x);
        // p = −P(u), by Horner, then −g = p·x
        let [rest @ .., last] = P;
        self.sca(ScaOp::Muls, p, u, float_scalar(f64::from(-last)));
        for (k, &c) in rest.iter().enumerate().rev() {
            self.sca(ScaOp::Adds, p, p, float_scalar(f64::from(-c)));
            if k > 0 {
                self.bin(BinOp::Mul, p, p, u);
            }
        }
        self.bin(BinOp::Mul, p, p, x);
        self.x_sigmoid(d, x, p);
    }

    /// `d = x·sigmoid(g)` from `p` holding −g: 1 / (1 + e^−g), times x
    /// (the end of every gelu form; `p` is clobbered).
    fn x_sigmoid(&mut self, d: VBuf, x: VBuf, p: VBuf) {
        self.un(UnOp::Exp, p, p);
        self.sca(ScaOp::Adds, p, p, float_scalar(1.0));
        self.un(UnOp::Rec, p, p);
        self.bin(BinOp::Mul, d, p, x);
    }

    /// `d = gelu(x, approximate = "tanh")` = 0.5·x·(1 + tanh(w)) with
    /// w = √(2/π)·(x + 0.044715·x³), as x·sigmoid(2w) (the same function:
    /// 1 + tanh(w) = 2·sigmoid(2w)), which neither cancels where tanh(w)
    /// nears −1 nor divides: x·(1 + 0.044715·x²), `·(−2√(2/π))`, `exp`, `+1`,
    /// `rec`, `·x`. 9 steps and 13 cycles a repeat, against 18 and 28 through
    /// `tanh`; within 0.0023 of the f32 tolerance over every f32
    /// (`docs/derivations/gelu_tanh_check.py`), and ±∞, NaN and the signed
    /// zeros as the reference.
    fn gelu_tanh(&mut self, d: VBuf, x: VBuf, p: VBuf) {
        let c = (2.0 / std::f64::consts::PI).sqrt();
        self.bin(BinOp::Mul, p, x, x);
        self.sca(ScaOp::Muls, p, p, float_scalar(0.044715));
        self.sca(ScaOp::Adds, p, p, float_scalar(1.0));
        self.bin(BinOp::Mul, p, p, x);
        // −2w: x·sigmoid(2w)
        self.sca(ScaOp::Muls, p, p, float_scalar(-2.0 * c));
        self.x_sigmoid(d, x, p);
    }

    /// `d = gelu(x)` for a half-demanded value (`tessera_ir::plan::demand`):
    /// x·sigmoid(x·P(x²)) as [`Seq::gelu`], with P of degree 1 (the tanh
    /// approximation's form, refitted by `docs/derivations/gelu_half_fit.py`
    /// to at most 0.194 of the f16 tolerance over every f32). 12 cycles a
    /// repeat in 8 steps, against 27 in 18. P's leading coefficient is
    /// positive, so the infinities and large values go as in [`Seq::gelu`].
    fn gelu_half(&mut self, d: VBuf, x: VBuf, p: VBuf) {
        const P: [f32; 2] = [1.603_31, 0.068_415_26];
        self.bin(BinOp::Mul, p, x, x);
        // p = −P(u), then −g = p·x
        self.sca(ScaOp::Muls, p, p, float_scalar(f64::from(-P[1])));
        self.sca(ScaOp::Adds, p, p, float_scalar(f64::from(-P[0])));
        self.bin(BinOp::Mul, p, p, x);
        self.x_sigmoid(d, x, p);
    }

    /// `p = t·(a1 + a2·t + … + a5·t⁴)` with `t = 1 / (1 + P·a)` (`a` =
    /// |x| ≥ 0): Abramowitz & Stegun 7.1.26's erfc(a) without its e^(−a²)
    /// factor. `t` is left holding `t`.
    fn erfc_factor(&mut self, p: VBuf, t: VBuf, a: VBuf) {
        const P: f64 = 0.327_591_1;
        const A: [f64; 5] = [
            0.254_829_592,
            -0.284_496_736,
            1.421_413_741,
            -1.453_152_027,
            1.061_405_429,
        ];
        self.sca(ScaOp::Muls, t, a, float_scalar(P));
        self.sca(ScaOp::Adds, t, t, float_scalar(1.0));
        self.un(UnOp::Rec, t, t);
        self.sca(ScaOp::Muls, p, t, float_scalar(A[4]));
        for &a in A[..4].iter().rev() {
            self.sca(ScaOp::Adds, p, p, float_scalar(a));
            self.bin(BinOp::Mul, p, p, t);
        }
    }

    /// `d = erf(x)` (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7), and below
    /// |x| = 1/4 its series (2/√π)·(a − a³/3 + a⁵/10 − a⁷/42 + a⁹/216) (the
    /// next term is 1e-9 of the value there): an absolute bound alone would
    /// leave small values without a correct digit.
    fn erf(&mut self, d: VBuf, x: VBuf, s: [VBuf; 5]) {
        let [a, t, p, e, mask] = s;
        self.un(UnOp::Abs, a, x);
        self.erfc_factor(p, t, a);
        self.bin(BinOp::Mul, e, a, a);
        self.sca(ScaOp::Muls, e, e, float_scalar(-1.0));
        self.un(UnOp::Exp, e, e);
        self.bin(BinOp::Mul, p, p, e);
        self.sca(ScaOp::Muls, p, p, float_scalar(-1.0));
        self.sca(ScaOp::Adds, p, p, float_scalar(1.0));
        self.odd_series(e, t, a, &ERF_SERIES);
        self.sca(
            ScaOp::Muls,
            e,
            e,
            float_scalar(std::f64::consts::FRAC_2_SQRT_PI),
        );
        self.cmps(Cond::Lt, mask, a, float_scalar(SERIES_BELOW));
        self.sel(p, mask, e, p);
        self.copysign_from(d, p, x, mask, t);
    }
}

/// The vector instruction of a binary op (not `pow`, a composite).
pub fn bin_op(b: BinaryOp) -> Result<BinOp, String> {
    Ok(match b {
        BinaryOp::Add => BinOp::Add,
        BinaryOp::Sub => BinOp::Sub,
        BinaryOp::Mul => BinOp::Mul,
        BinaryOp::Div => BinOp::Div,
        BinaryOp::Maximum => BinOp::Max,
        BinaryOp::Minimum => BinOp::Min,
        BinaryOp::Pow => return Err("internal: pow reached the primitive lowering".into()),
    })
}

/// How accurate a composite's result must be: f32's tolerance, or only a
/// half-precision result's (`tessera_ir::plan::demand`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Accuracy {
    /// Within the spec's f32 tolerance.
    F32,
    /// Within a fifth of the f16 tolerance (the value is half-demanded).
    Half,
}

/// Emits one elementwise instruction over `n` elements: `dst = op(args)`.
/// `scratch` holds what `tessera_ir::plan::elementwise::scratch` asks.
pub fn emit_op(
    items: &mut Vec<Item>,
    n: u64,
    op: &EwOp,
    dst: VBuf,
    args: &[VBuf],
    scratch: &[VBuf],
) -> Result<(), String> {
    emit_op_to(items, n, (op, Accuracy::F32), dst, args, scratch)
}

/// [`emit_op`] to `accuracy`.
pub fn emit_op_to(
    items: &mut Vec<Item>,
    n: u64,
    (op, accuracy): (&EwOp, Accuracy),
    dst: VBuf,
    args: &[VBuf],
    scratch: &[VBuf],
) -> Result<(), String> {
    let d = dst.dtype;
    let mut q = Seq { items, n };
    match op {
        EwOp::Copy => q.copy(dst, args[0]),
        EwOp::Cast(_) if args[0].dtype == d => q.copy(dst, args[0]),
        EwOp::Cast(_) => q.cvt(dst, args[0]),
        EwOp::Select => q.sel(dst, args[0], args[1], args[2]),
        EwOp::Compare(c) => q.cmp(cond(*c), dst, args[0], args[1]),
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
            let [y, m, t, c, isint, even, one, v, w] = [
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
            // C's `pow` (the reference's), special values included.
            // y = exp(b · ln|a|), and 1 where |a| = 1 (pow(-1, ±inf) = 1).
            q.un(UnOp::Abs, m, a);
            q.un(UnOp::Ln, m, m);
            q.cmps(Cond::Eq, c, m, float_scalar(0.0));
            q.bin(BinOp::Mul, m, m, b);
            q.un(UnOp::Exp, y, m);
            q.dup(one, float_scalar(1.0));
            q.sel(y, c, one, y);
            // Is b an integer, an even one? Every f32 of magnitude 2^24 or
            // more is even (and ±inf counts as even): 0 is tested in their
            // place, since they do not convert to i32.
            q.un(UnOp::Abs, m, b);
            q.cmps(Cond::Ge, c, m, float_scalar(16_777_216.0));
            q.dup(w, float_scalar(0.0));
            q.sel(w, c, w, b);
            let ti = t.as_dtype(DType::I32);
            q.cvt(ti, w);
            q.cvt(m, ti);
            q.cmp(Cond::Eq, isint, m, w);
            q.sca(ScaOp::Muls, m, w, float_scalar(0.5));
            q.cvt(ti, m);
            q.cvt(m, ti);
            q.sca(ScaOp::Muls, m, m, float_scalar(2.0));
            q.cmp(Cond::Eq, even, m, w);
            // v: the result for a base whose sign bit is set. An odd b
            // gives -y; a non-integer b gives NaN for a finite non-zero
            // base and y for -0 and -inf.
            q.sca(ScaOp::Muls, m, y, float_scalar(-1.0));
            q.sel(v, even, y, m);
            q.sel(w, isint, v, y);
            q.dup(m, float_scalar(f64::NAN));
            q.sel(v, isint, v, m);
            q.un(UnOp::Abs, m, a);
            q.cmps(Cond::Eq, c, m, float_scalar(0.0));
            q.sel(v, c, w, v);
            q.cmps(Cond::Eq, c, m, float_scalar(f64::INFINITY));
            q.sel(v, c, w, v);
            // The sign bit: a < 0, or a = -0 (whose reciprocal is -inf).
            q.cmps(Cond::Lt, c, a, float_scalar(0.0));
            q.sel(y, c, v, y);
            q.un(UnOp::Rec, m, a);
            q.cmps(Cond::Lt, c, m, float_scalar(0.0));
            q.sel(y, c, v, y);
            // pow(a, 0) = 1 and pow(1, b) = 1, whatever the other operand.
            q.cmps(Cond::Eq, c, b, float_scalar(0.0));
            q.sel(y, c, one, y);
            q.cmps(Cond::Eq, c, a, float_scalar(1.0));
            if d == DType::F32 {
                q.sel(dst, c, one, y);
            } else {
                q.sel(y, c, one, y);
                q.cvt(dst, y);
            }
        }
        EwOp::Binary(b) => q.bin(bin_op(*b)?, dst, args[0], args[1]),
        EwOp::Unary(u) => match u {
            UnaryOp::Neg => q.sca(ScaOp::Muls, dst, args[0], scalar(d, -1.0)),
            UnaryOp::Abs => q.un(UnOp::Abs, dst, args[0]),
            UnaryOp::Relu => q.un(UnOp::Relu, dst, args[0]),
            UnaryOp::Exp => q.un(UnOp::Exp, dst, args[0]),
            UnaryOp::Log => q.un(UnOp::Ln, dst, args[0]),
            UnaryOp::Sqrt => q.un(UnOp::Sqrt, dst, args[0]),
            UnaryOp::Rsqrt => q.un(UnOp::Rsqrt, dst, args[0]),
            UnaryOp::Reciprocal => q.un(UnOp::Rec, dst, args[0]),
            UnaryOp::Sigmoid
            | UnaryOp::Silu
            | UnaryOp::Tanh
            | UnaryOp::Erf
            | UnaryOp::Sin
            | UnaryOp::Cos
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
                q.composite((*u, accuracy), r, x, &mut s)?;
                if d != DType::F32 {
                    q.cvt(dst, r);
                }
            }
        },
    }
    Ok(())
}
