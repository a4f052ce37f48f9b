//! Differential testing of the code generators: random well-typed kernels
//! (random op DAGs over random shapes and dtypes) are compiled for the
//! simulator on both built-in machines, run with the race detector on, and
//! compiled for and run on the host; both are compared with the reference
//! interpreter under the spec's tolerances.
//!
//! `TESSERA_DIFF_CASES` sets the number of programs (default 1000) and
//! `TESSERA_DIFF_SEED` the first seed (default 1); a failure prints the
//! seed and the kernel's IR text, and `TESSERA_DIFF_SEED=<seed>
//! TESSERA_DIFF_CASES=1` replays it (`TESSERA_DIFF_PRINT=1` prints every
//! kernel, `TESSERA_DIFF_DUMP=DIR` writes each kernel's inputs as `.npy`
//! files under `DIR/KERNEL/`). Domains are kept safe (divisors away
//! from zero, logarithms and roots of positive values) so that every
//! mismatch is a compiler bug, not an ill-conditioned program.

use tessera_compiler::inputs::SplitMix64;
use tessera_compiler::simulate;
use tessera_ir::{
    BinaryOp, CompareOp, DType, Domain, Kernel, Op, Output, ReduceOp, Scalar, Shape, TensorType,
    UnaryOp, Value,
};
use tessera_testsuite::CubeForms;

/// The inputs' SplitMix64 with the draws the generator needs.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const DIMS: [u64; 12] = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 64];
/// Matmul dims at and just past the multiples tiles and K steps are made
/// of (16, 64, 128, 256, 512, and the 160-deep L1 chunks of f32), so
/// products reach multi-round K loops with guarded tails, strips and
/// partial last rounds.
const BIG: [u64; 14] = [
    63, 65, 127, 129, 160, 161, 255, 257, 385, 511, 513, 769, 1025, 1100,
];
/// Long rows (a last dim past one tile of the vector templates).
const LONG: [u64; 5] = [255, 1000, 1025, 2049, 4097];
/// The magnitude an inexact op's float operands are clamped to.
const TAME: f64 = 1e4;
/// Most multiply-adds one random product may cost (the functional
/// simulator runs them all).
const MAC_BUDGET: u64 = 1 << 23;
const DTYPES: [DType; 5] = [DType::F32, DType::F16, DType::BF16, DType::I32, DType::I8];

struct Gen {
    rng: Rng,
    k: Kernel,
    /// Values that are safe as divisors / log arguments (positive floats or
    /// non-zero integers), by value.
    positive: Vec<Value>,
    /// Float values that carry more than one rounding's error (a
    /// transcendental op, `pow`, a reduction or a matmul upstream): two
    /// correct backends may differ in their last bits, so they are never
    /// compared, nor cast to an integer or bool.
    inexact: Vec<Value>,
}

impl Gen {
    fn ty(&self, v: Value) -> TensorType {
        self.k.ty(v).clone()
    }

    fn push(&mut self, op: Op, args: Vec<Value>) -> Option<Value> {
        let inexact_op = !op.is_exact();
        // An op held to a tolerance (a transcendental, `pow`, a reduction,
        // a matmul) reads its float operands clamped to ±TAME: near the
        // overflow threshold, or with infinities that f64 and f32 sums
        // order differently, two correct results may be inf and NaN. NaN
        // passes the clamp (min and max propagate it).
        // A product with an inexact factor reads its other factors clamped
        // too: an inexact value whose sign or zero is rounding noise (a mean
        // of values that cancel) times an infinity is +inf, -inf or NaN
        // by that noise alone.
        let noisy_product = op == Op::Binary(BinaryOp::Mul) && self.any_inexact(&args);
        let args = if inexact_op || noisy_product {
            args.into_iter()
                .map(|a| self.tame(a))
                .collect::<Option<Vec<_>>>()?
        } else {
            args
        };
        let from_inexact = args.iter().any(|a| self.inexact.contains(a));
        let v = self.k.push(op, args, None).ok()?;
        if self.ty(v).dtype.is_float() && (inexact_op || from_inexact) {
            self.inexact.push(v);
        }
        Some(v)
    }

    /// A new `[batch.., M, K]` parameter of `dtype` with dims drawn from
    /// [`BIG`] and [`DIMS`], within a quarter of the MAC budget per column
    /// of the other operand.
    fn big_operand(&mut self, dtype: DType) -> Option<(Value, TensorType)> {
        let mut d = Vec::new();
        if self.rng.chance(25) {
            d.push(*self.rng.pick(&[2u64, 3, 5]));
        }
        let m = if self.rng.chance(50) {
            *self.rng.pick(&BIG)
        } else {
            *self.rng.pick(&DIMS)
        };
        let k = *self.rng.pick(&BIG);
        let batch: u64 = d.iter().product();
        let m = m.min((MAC_BUDGET / 4 / (k * batch)).max(1));
        d.extend([m, k]);
        let name = format!("p{}", self.k.params.len());
        let ty = TensorType::new(dtype, Shape::fixed(&d));
        let v = self.k.add_param(name, ty.clone());
        Some((v, ty))
    }

    /// A variance written out (layer_norm's) over the rows of `f`
    /// (`[rows, n]`), clamped to ±8 first: the mean or sum (`op`) of
    /// `d · d`, `d = x − mean(x)`, kept `[rows, 1]`. The square is bounded
    /// by the clamp, so the reduction reads it as it is (the chain a
    /// chunked stage folds into one pass, `online_variance`). The bound is
    /// small: of a row that is constant (a per-row value spread over it),
    /// `d` is rounding noise of the row's magnitude against an exact 0, and
    /// the tolerance scales with the result's magnitude, not the row's. For
    /// the same reason `d` itself is no operand of later ops: a sum of it
    /// is 0 but for rounding.
    fn variance(&mut self, f: Value, rows: u64, op: ReduceOp) -> Option<Value> {
        let x = self.clamp(f, 8.0)?;
        let raw = |g: &mut Gen, op: Op, args: Vec<Value>| -> Option<Value> {
            let v = g.k.push(op, args, None).ok()?;
            g.inexact.push(v);
            Some(v)
        };
        let per_row = |g: &mut Gen, op: ReduceOp, v: Value| -> Option<Value> {
            let r = raw(g, Op::Reduce { op, axes: vec![1] }, vec![v])?;
            raw(g, Op::Reshape(Shape::fixed(&[rows, 1])), vec![r])
        };
        let m = per_row(self, ReduceOp::Mean, x)?;
        let d = raw(self, Op::Binary(BinaryOp::Sub), vec![x, m])?;
        let sq = raw(self, Op::Binary(BinaryOp::Mul), vec![d, d])?;
        per_row(self, op, sq)
    }

    /// A float `v` clamped to ±[`TAME`]; other dtypes as they are.
    fn tame(&mut self, v: Value) -> Option<Value> {
        self.clamp(v, TAME)
    }

    /// A float `v` clamped to ±`bound`; other dtypes as they are.
    fn clamp(&mut self, v: Value, bound: f64) -> Option<Value> {
        let d = self.ty(v).dtype;
        if !d.is_float() {
            return Some(v);
        }
        let hi = self.constant(d, bound)?;
        let lo = self.constant(d, -bound)?;
        let v = self.push(Op::Binary(BinaryOp::Minimum), vec![v, hi])?;
        self.push(Op::Binary(BinaryOp::Maximum), vec![v, lo])
    }

    /// Whether any of `vs` is inexact (see [`Gen::inexact`]).
    fn any_inexact(&self, vs: &[Value]) -> bool {
        vs.iter().any(|v| self.inexact.contains(v))
    }

    fn values(&self) -> Vec<Value> {
        let mut v: Vec<Value> = (0..self.k.params.len() as u32).map(Value::Param).collect();
        v.extend((0..self.k.nodes.len() as u32).map(Value::Node));
        v
    }

    fn constant(&mut self, dtype: DType, x: f64) -> Option<Value> {
        let value = match dtype {
            DType::Bool => Scalar::Bool(x != 0.0),
            d if d.is_int() => Scalar::Int(x as i64),
            d => Scalar::Float(d.round_float(x)),
        };
        self.push(
            Op::Full {
                value,
                ty: TensorType::scalar(dtype),
            },
            vec![],
        )
    }

    /// `|v| + 1`: a value safe to divide by or take the log of.
    fn positive_of(&mut self, v: Value) -> Option<Value> {
        let d = self.ty(v).dtype;
        let a = self.push(Op::Unary(UnaryOp::Abs), vec![v])?;
        let one = self.constant(d, 1.0)?;
        let p = self.push(Op::Binary(BinaryOp::Add), vec![a, one])?;
        // i8: |−128| wraps; clamp into [1, 127] via maximum with 1.
        if d == DType::I8 {
            let one = self.constant(d, 1.0)?;
            let p = self.push(Op::Binary(BinaryOp::Maximum), vec![p, one])?;
            self.positive.push(p);
            return Some(p);
        }
        self.positive.push(p);
        Some(p)
    }

    /// `v` with its sign, away from zero: `±(|v| + 1)` (a divisor). An
    /// inexact `v` gives `|v| + 1`: its sign may be rounding noise (the mean
    /// of deviations from a mean), which no tolerance covers once a
    /// comparison turns it into a choice.
    fn nonzero_of(&mut self, v: Value) -> Option<Value> {
        let d = self.ty(v).dtype;
        if self.any_inexact(&[v]) {
            return self.positive_of(v);
        }
        let p = self.positive_of(v)?;
        let zero = self.constant(d, 0.0)?;
        let neg = self.push(Op::Compare(CompareOp::Lt), vec![v, zero])?;
        let minus = self.push(Op::Unary(UnaryOp::Neg), vec![p])?;
        self.push(Op::Select, vec![neg, minus, p])
    }

    /// Where a unary op on `v` is well conditioned: its own domain, but a
    /// bounded one for `sin`/`cos` of an inexact value (a sum's absolute
    /// error grows with its magnitude, and a periodic function passes it on
    /// to a result of at most 1, whose tolerance does not scale with it).
    fn unary_domain(&self, u: UnaryOp, v: Value) -> Domain {
        if matches!(u, UnaryOp::Sin | UnaryOp::Cos) && self.any_inexact(&[v]) {
            Domain::Bounded
        } else {
            u.domain()
        }
    }

    /// `v`, brought into an op's well-conditioned domain: `|v| + 1` for a
    /// positive one, `tanh(v)` (floats) for a bounded one.
    fn in_domain(&mut self, v: Value, d: Domain) -> Option<Value> {
        match d {
            Domain::Any => Some(v),
            Domain::Positive => self.positive_of(v),
            Domain::Bounded if self.ty(v).dtype.is_float() => {
                self.push(Op::Unary(UnaryOp::Tanh), vec![v])
            }
            Domain::Bounded => Some(v),
        }
    }

    /// A value of the same dtype whose shape broadcasts with `v`'s.
    fn partner(&mut self, v: Value) -> Option<Value> {
        let t = self.ty(v);
        let candidates: Vec<Value> = self
            .values()
            .into_iter()
            .filter(|&c| {
                let ct = self.ty(c);
                ct.dtype == t.dtype
                    && tessera_ir::types::broadcast_shapes(&ct.shape, &t.shape).is_some()
            })
            .collect();
        if !candidates.is_empty() && self.rng.chance(70) {
            return Some(*self.rng.pick(&candidates));
        }
        // A row (last dim kept), a scalar, or a reduction of v itself.
        match self.rng.below(3) {
            0 => {
                let x = (self.rng.below(200) as f64 - 100.0) / 50.0;
                self.constant(t.dtype, if t.dtype.is_int() { x.round() } else { x })
            }
            1 if t.shape.rank() >= 1 && t.dtype != DType::Bool => {
                let last = t.shape.rank() - 1;
                let axes: Vec<usize> = (0..last).collect();
                if axes.is_empty() {
                    return Some(v);
                }
                let op = if t.dtype.is_float() {
                    ReduceOp::Mean
                } else {
                    ReduceOp::Max
                };
                self.push(Op::Reduce { op, axes }, vec![v])
            }
            _ => Some(v),
        }
    }

    fn step(&mut self) -> Option<Value> {
        let choice = self.rng.below(14);
        self.step_with(choice)
    }

    /// One random op of kind `choice` (see the match) on a random value.
    fn step_with(&mut self, choice: u64) -> Option<Value> {
        let all = self.values();
        let v = *self.rng.pick(&all);
        let t = self.ty(v);
        let numeric = t.dtype.is_numeric();
        match choice {
            0 | 1 if numeric => {
                let ops: Vec<UnaryOp> = UnaryOp::ALL
                    .iter()
                    .copied()
                    .filter(|u| u.accepts().allows(t.dtype))
                    .collect();
                let u = *self.rng.pick(&ops);
                let arg = self.in_domain(v, self.unary_domain(u, v))?;
                self.push(Op::Unary(u), vec![arg])
            }
            2..=4 if numeric => {
                let b = self.partner(v)?;
                let ops: Vec<BinaryOp> = BinaryOp::ALL
                    .iter()
                    .copied()
                    .filter(|o| o.accepts().allows(t.dtype))
                    .collect();
                let op = *self.rng.pick(&ops);
                // Integers wrap (language.md), so every op applies as is;
                // a divisor is kept away from zero but keeps its sign.
                let (da, db) = op.domains();
                let a = self.in_domain(v, da)?;
                let b = if op == BinaryOp::Div {
                    self.nonzero_of(b)?
                } else {
                    self.in_domain(b, db)?
                };
                self.push(Op::Binary(op), vec![a, b])
            }
            5 => {
                let b = self.partner(v)?;
                let ops: Vec<CompareOp> = CompareOp::ALL
                    .iter()
                    .copied()
                    .filter(|c| c.accepts().allows(t.dtype))
                    .collect();
                let c = *self.rng.pick(&ops);
                if self.any_inexact(&[v, b]) {
                    return None;
                }
                self.push(Op::Compare(c), vec![v, b])
            }
            6 => {
                let conds: Vec<Value> = all
                    .iter()
                    .copied()
                    .filter(|&c| self.ty(c).dtype == DType::Bool)
                    .collect();
                let c = if conds.is_empty() || !numeric && self.rng.chance(50) {
                    let b = self.partner(v)?;
                    if self.any_inexact(&[v, b]) {
                        return None;
                    }
                    self.push(Op::Compare(CompareOp::Ne), vec![v, b])?
                } else {
                    *self.rng.pick(&conds)
                };
                let b = self.partner(v)?;
                self.push(Op::Select, vec![c, v, b])
            }
            7 => {
                let to = *self.rng.pick(&DType::ALL);
                if to == t.dtype || (!to.is_float() && self.any_inexact(&[v])) {
                    return None;
                }
                self.push(Op::Cast(to), vec![v])
            }
            8 if numeric && t.shape.rank() > 0 => {
                let rank = t.shape.rank();
                let mut axes: Vec<usize> = (0..rank).filter(|_| self.rng.chance(50)).collect();
                if axes.is_empty() {
                    axes.push(self.rng.below(rank as u64) as usize);
                }
                let ops: Vec<ReduceOp> = ReduceOp::ALL
                    .iter()
                    .copied()
                    .filter(|r| r.accepts().allows(t.dtype))
                    .collect();
                let op = *self.rng.pick(&ops);
                self.push(Op::Reduce { op, axes }, vec![v])
            }
            9 if t.shape.rank() >= 2 => {
                let rank = t.shape.rank();
                let mut perm: Vec<usize> = (0..rank).collect();
                for i in (1..rank).rev() {
                    let j = self.rng.below(i as u64 + 1) as usize;
                    perm.swap(i, j);
                }
                self.push(Op::Transpose(perm), vec![v])
            }
            10 if t.shape.rank() >= 1 => {
                let dims = t.shape.as_fixed()?;
                let axis = self.rng.below(dims.len() as u64) as usize;
                if self.rng.chance(50) && dims[axis] > 1 {
                    let start = self.rng.below(dims[axis]);
                    let end = start + 1 + self.rng.below(dims[axis] - start);
                    self.push(Op::Slice { axis, start, end }, vec![v])
                } else {
                    let other = self.partner(v)?;
                    let ot = self.ty(other);
                    if ot.shape != t.shape {
                        return None;
                    }
                    self.push(Op::Concat { axis }, vec![v, other])
                }
            }
            12 | 13
                if t.shape.rank() >= 2
                    && matches!(t.dtype, DType::F16 | DType::BF16 | DType::F32 | DType::I8) =>
            {
                // v @ rhs, rhs a new parameter [.., k, n] (its batch dims a
                // suffix of v's, so they broadcast) or v's own transpose;
                // sometimes with a relu or cast epilogue the planner folds.
                let (v, t) = if self.rng.chance(40) {
                    self.big_operand(t.dtype)?
                } else {
                    (v, t)
                };
                let dims = t.shape.as_fixed()?;
                let rank = dims.len();
                let k = dims[rank - 1];
                let macs_per_col: u64 = dims.iter().product();
                let n_budget = (MAC_BUDGET / macs_per_col.max(1)).max(1);
                let rhs = if self.rng.chance(25) && macs_per_col * dims[rank - 2] <= MAC_BUDGET {
                    let mut perm: Vec<usize> = (0..rank).collect();
                    perm.swap(rank - 2, rank - 1);
                    self.push(Op::Transpose(perm), vec![v])?
                } else {
                    let keep = self.rng.below(rank as u64 - 1) as usize;
                    let mut d: Vec<u64> = dims[rank - 2 - keep..rank - 2].to_vec();
                    d.push(k);
                    let n = if self.rng.chance(30) {
                        *self.rng.pick(&BIG)
                    } else {
                        *self.rng.pick(&DIMS)
                    };
                    d.push(n.min(n_budget));
                    let name = format!("p{}", self.k.params.len());
                    self.k
                        .add_param(name, TensorType::new(t.dtype, Shape::fixed(&d)))
                };
                let mm = self.push(Op::MatMul, vec![v, rhs])?;
                match self.rng.below(4) {
                    0 if t.dtype != DType::I8 => self.push(Op::Unary(UnaryOp::Relu), vec![mm]),
                    1 => {
                        let to = *self.rng.pick(&[DType::F16, DType::BF16, DType::F32]);
                        let mt = self.ty(mm);
                        if to == mt.dtype {
                            return Some(mm);
                        }
                        self.push(Op::Cast(to), vec![mm])
                    }
                    _ => Some(mm),
                }
            }
            _ => {
                // Reshape: flatten, or add a leading dim by broadcasting.
                let dims = t.shape.as_fixed()?;
                let n: u64 = dims.iter().product();
                if self.rng.chance(50) {
                    self.push(Op::Reshape(Shape::fixed(&[n])), vec![v])
                } else {
                    let mut d = vec![*self.rng.pick(&[2u64, 3])];
                    d.extend(dims);
                    self.push(Op::BroadcastTo(Shape::fixed(&d)), vec![v])
                }
            }
        }
    }
}

/// The random kernel of `seed`: drawn again (from a stream of its own, so
/// the same seed gives the same kernel) while it is past the reference
/// interpreter's documented limits, which no backend is compared beyond.
fn generate(seed: u64) -> Kernel {
    let mut k = draw(seed, 0);
    let mut redraw = 0;
    while tessera_ir::interp::budget(&k).is_err() && redraw < 16 {
        redraw += 1;
        k = draw(seed, redraw);
    }
    k
}

fn draw(seed: u64, redraw: u64) -> Kernel {
    let mut g = Gen {
        rng: Rng(SplitMix64(seed ^ (redraw << 48))),
        k: Kernel::new(format!("diff{seed}")),
        positive: Vec::new(),
        inexact: Vec::new(),
    };
    let nparams = 1 + g.rng.below(3);
    for i in 0..nparams {
        let rank = g.rng.below(4) as usize;
        let mut dims: Vec<u64> = (0..rank).map(|_| *g.rng.pick(&DIMS)).collect();
        if rank >= 1 && g.rng.chance(15) {
            // A long row, the other dims kept small.
            dims[rank - 1] = *g.rng.pick(&LONG);
            for d in &mut dims[..rank - 1] {
                *d = (*d).min(8);
            }
        }
        let dtype = *g.rng.pick(&DTYPES);
        g.k.add_param(format!("p{i}"), TensorType::new(dtype, Shape::fixed(&dims)));
    }
    let target = 2 + g.rng.below(6);
    let mut tries = 0;
    // A third of the kernels start with a matmul (the cube stages).
    if g.rng.chance(33) {
        while g.k.nodes.is_empty() && tries < 20 {
            tries += 1;
            let _ = g.step_with(12);
        }
    }
    while (g.k.nodes.len() as u64) < target && tries < 200 {
        tries += 1;
        let _ = g.step();
    }
    // Outputs: the last node, and sometimes another one.
    let last = g.k.nodes.len().saturating_sub(1) as u32;
    let mut outs = vec![if g.k.nodes.is_empty() {
        Value::Param(0)
    } else {
        Value::Node(last)
    }];
    // Up to three more outputs (the same value may be returned twice).
    if g.k.nodes.len() > 2 {
        for _ in 0..g.rng.below(4) {
            outs.push(Value::Node(g.rng.below(u64::from(last)) as u32));
        }
    }
    for (i, v) in outs.into_iter().enumerate() {
        g.k.outputs.push(Output {
            name: format!("out{i}"),
            value: v,
        });
    }
    let _ = g.positive;
    g.k.remove_dead_nodes();
    g.k
}

/// Row lengths of the fusion-prone kernels: short, unaligned, a repeat,
/// longer than one, long enough to fold block by block (32 repeats of f32),
/// and longer than UB holds.
const ROW_LENGTHS: [u64; 13] = [
    2, 3, 8, 17, 64, 100, 255, 1000, 1025, 2500, 4100, 16400, 20001,
];

/// A fusion-prone kernel: elementwise chains over one `[rows, n]` space,
/// with diamonds (a value read twice), `[n]` and `[rows, 1]` operands,
/// row reductions broadcast back into their rows (the shapes of softmax
/// and the norms, written out), per-row arithmetic between them, and
/// several results.
fn generate_fusion(seed: u64) -> Kernel {
    let mut g = Gen {
        rng: Rng(SplitMix64(seed ^ 0xf05e_0f05)),
        k: Kernel::new(format!("fuse{seed}")),
        positive: Vec::new(),
        inexact: Vec::new(),
    };
    // Rows longer than UB holds (streamed in chunks) come few; short rows
    // sometimes many (computed transposed once the rows fill the cores).
    let n = *g.rng.pick(&ROW_LENGTHS);
    let rows = if n > 4096 {
        *g.rng.pick(&[1u64, 2, 3])
    } else if n <= 32 && g.rng.chance(25) {
        *g.rng.pick(&[3000u64, 4096])
    } else {
        *g.rng.pick(&[1u64, 2, 3, 7, 16, 33, 64])
    };
    let dtype = *g
        .rng
        .pick(&[DType::F32, DType::F32, DType::F16, DType::BF16, DType::I32]);
    let full_ty = TensorType::new(dtype, Shape::fixed(&[rows, n]));
    let mut fulls = vec![g.k.add_param("x", full_ty.clone())];
    if g.rng.chance(50) {
        fulls.push(g.k.add_param("y", full_ty));
    }
    let vector = g.rng.chance(50).then(|| {
        g.k.add_param("v", TensorType::new(dtype, Shape::fixed(&[n])))
    });
    let mut per_row: Vec<Value> = Vec::new();
    if g.rng.chance(30) {
        per_row.push(g.k.add_param("c", TensorType::new(dtype, Shape::fixed(&[rows, 1]))));
    }
    let float = dtype.is_float();
    let unary = |g: &mut Gen, v: Value| -> Option<Value> {
        let ops: Vec<UnaryOp> = UnaryOp::ALL
            .iter()
            .copied()
            .filter(|u| u.accepts().allows(dtype))
            .collect();
        let u = *g.rng.pick(&ops);
        let arg = g.in_domain(v, g.unary_domain(u, v))?;
        g.push(Op::Unary(u), vec![arg])
    };
    let binary = |g: &mut Gen, a: Value, b: Value| -> Option<Value> {
        let ops = [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Maximum,
            BinaryOp::Div,
        ];
        let op = *g.rng.pick(if float { &ops[..] } else { &ops[..4] });
        let b = if op == BinaryOp::Div {
            g.nonzero_of(b)?
        } else {
            b
        };
        g.push(Op::Binary(op), vec![a, b])
    };
    let steps = 4 + g.rng.below(12);
    let mut tries = 0;
    while (g.k.nodes.len() as u64) < steps * 3 && tries < 60 {
        tries += 1;
        let f = *g.rng.pick(&fulls);
        let made = match g.rng.below(9) {
            0 => unary(&mut g, f).map(|v| (v, true)),
            1 => {
                let h = *g.rng.pick(&fulls); // maybe f itself: a diamond
                binary(&mut g, f, h).map(|v| (v, true))
            }
            2 => match vector {
                Some(v) => binary(&mut g, f, v).map(|v| (v, true)),
                None => unary(&mut g, f).map(|v| (v, true)),
            },
            3 | 4 => {
                let ops: &[ReduceOp] = if float {
                    &[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean]
                } else {
                    &[ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min]
                };
                let op = *g.rng.pick(ops);
                let r = g.push(Op::Reduce { op, axes: vec![1] }, vec![f]);
                r.and_then(|r| g.push(Op::Reshape(Shape::fixed(&[rows, 1])), vec![r]))
                    .map(|v| (v, false))
            }
            5 if !per_row.is_empty() => {
                let r = *g.rng.pick(&per_row);
                let made = if g.rng.chance(50) {
                    unary(&mut g, r)
                } else {
                    g.constant(dtype, if float { 1e-3 } else { 3.0 })
                        .and_then(|eps| binary(&mut g, r, eps))
                };
                made.map(|v| (v, false))
            }
            8 if float => {
                let op = *g.rng.pick(&[ReduceOp::Mean, ReduceOp::Sum]);
                g.variance(f, rows, op).map(|v| (v, false))
            }
            _ if !per_row.is_empty() => {
                let r = *g.rng.pick(&per_row);
                binary(&mut g, f, r).map(|v| (v, true))
            }
            _ => unary(&mut g, f).map(|v| (v, true)),
        };
        match made {
            Some((v, true)) => fulls.push(v),
            Some((v, false)) => per_row.push(v),
            None => {}
        }
    }
    // Results: the last full value; sometimes a per-row value and an
    // intermediate full one too (multi-output groups).
    let mut outs = vec![*fulls.last().unwrap_or(&Value::Param(0))];
    if let Some(&r) = per_row.last()
        && g.rng.chance(40)
    {
        outs.push(r);
    }
    if fulls.len() > 2 && g.rng.chance(30) {
        outs.push(fulls[fulls.len() / 2]);
    }
    for (i, v) in outs.into_iter().enumerate() {
        g.k.outputs.push(Output {
            name: format!("out{i}"),
            value: v,
        });
    }
    g.k.remove_dead_nodes();
    g.k
}

fn check(seed: u64) -> Result<CubeForms, String> {
    let kernel = generate(seed);
    tessera_ir::verify::verify_concrete(&kernel).map_err(|e| format!("generator bug: {e}"))?;
    check_kernel(&kernel, tessera_testsuite::machine_of_seed(seed), seed)
}

/// With `TESSERA_DIFF_DUMP=DIR`, writes the kernel's inputs as `.npy` files
/// under `DIR/<kernel name>/`, to replay it with `tessera run`.
fn dump_inputs(kernel: &Kernel, inputs: &[tessera_ir::Tensor]) -> Result<(), String> {
    if let Some(dir) = std::env::var_os("TESSERA_DIFF_DUMP") {
        let dir = std::path::Path::new(&dir).join(&kernel.name);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for (p, t) in kernel.params.iter().zip(inputs) {
            tessera_compiler::npy::write(&dir.join(format!("{}.npy", p.name)), t)
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Compiles `kernel` for a machine and compares the simulator with the
/// reference on inputs drawn from `seed`; returns the cube forms it used.
fn check_kernel(kernel: &Kernel, machine_name: &str, seed: u64) -> Result<CubeForms, String> {
    let machine = simulate::machine(Some(machine_name)).map_err(|e| format!("{e:?}"))?;
    let code = tessera_testsuite::compile_generated(kernel, &machine)?;
    let inputs = wide_inputs(kernel, seed);
    dump_inputs(kernel, &inputs)?;
    tessera_testsuite::simulate_against_reference(kernel, &machine, &code.program, &inputs)?;
    tessera_testsuite::host_against_reference(kernel, &inputs)?;
    Ok(CubeForms::of(&code.plan, &machine))
}

/// Inputs for `kernel` from `seed`: per parameter, unit values (as `run
/// --random-inputs` draws them), or magnitudes over 10^±6 with both signs,
/// or either laced with the values IEEE 754 treats apart (±0, ±inf, NaN,
/// subnormals, the dtype's largest finite values); integers over their
/// dtype's whole range or near zero.
fn wide_inputs(kernel: &Kernel, seed: u64) -> Vec<tessera_ir::Tensor> {
    let mut rng = Rng(SplitMix64(seed ^ 0x5eed_1e55));
    let unit = tessera_testsuite::random_inputs(kernel, seed);
    kernel
        .params
        .iter()
        .zip(unit)
        .map(|(p, unit)| {
            let d = p.ty.dtype;
            let profile = rng.below(100);
            if profile < 50 || d == DType::Bool {
                return unit;
            }
            let n = unit.len();
            let shape = unit.shape.clone();
            let special = |rng: &mut Rng| -> f64 {
                let max = d.float_max().unwrap_or(0.0);
                *rng.pick(&[
                    0.0,
                    -0.0,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NAN,
                    1e-40,
                    -6e-8,
                    max,
                    -max,
                ])
            };
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    if d.is_int() {
                        let (lo, hi) = d.int_range().unwrap_or((-8, 8));
                        return if rng.chance(50) {
                            (lo + (rng.next() % (hi - lo + 1) as u64) as i64) as f64
                        } else {
                            (rng.below(33) as i64 - 16) as f64
                        };
                    }
                    if profile >= 85 && rng.chance(10) {
                        return special(&mut rng);
                    }
                    let mag = 10f64.powf((rng.below(1_200_001) as f64 - 600_000.0) / 100_000.0);
                    if rng.chance(50) { -mag } else { mag }
                })
                .collect();
            tessera_ir::Tensor::from_f64(d, shape, values)
        })
        .collect()
}

#[test]
fn random_kernels_match_the_reference_on_the_simulator() {
    let cases = tessera_testsuite::env_u64("TESSERA_DIFF_CASES", 1000);
    let first = tessera_testsuite::env_u64("TESSERA_DIFF_SEED", 1);
    let print = std::env::var_os("TESSERA_DIFF_PRINT").is_some();
    let mut failures = tessera_testsuite::Failures::default();
    let mut forms = CubeForms::default();
    for seed in first..first + cases {
        if print {
            println!(
                "seed {seed}:\n{}",
                tessera_ir::text::print_kernel(&generate(seed))
            );
        }
        match check(seed) {
            Ok(f) => forms.add(f),
            Err(why) => {
                let machine = tessera_testsuite::machine_of_seed(seed);
                if failures.record(seed, machine, &why, &generate(seed)) {
                    break;
                }
            }
        }
    }
    failures.assert_none("random kernels", "TESSERA_DIFF");
    eprintln!(
        "{} cube stages in groups of tile rows, {} with two accumulators, {} split over K in {cases} kernels",
        forms.grouped, forms.two_accumulators, forms.split_k
    );
    // Grouped orders need products too large for this test's budget, and
    // since the cost model charges a tile of one L1 stage in two
    // accumulators for its start on the copy the last tile ended on, the
    // small short-K products here keep one (measured faster on the
    // simulator): `matmul_forced` runs both forms, and the cube programs'
    // differential test checks that attention shapes alternate two.
}

#[test]
fn fusion_prone_kernels_match_the_reference_on_the_simulator() {
    let cases = tessera_testsuite::env_u64("TESSERA_FUSE_CASES", 500);
    let first = tessera_testsuite::env_u64("TESSERA_FUSE_SEED", 1);
    let mut failures = tessera_testsuite::Failures::default();
    let mut grouped = 0;
    // Row stages in each of their less common forms, and elementwise
    // stages that store more than their result.
    let (mut chunked, mut transposed, mut multi, mut blockwise) = (0, 0, 0, 0);
    // Chunked stages that fold a variance into its mean's pass.
    let mut online = 0;
    for seed in first..first + cases {
        let kernel = generate_fusion(seed);
        let machine = tessera_testsuite::machine_of_seed(seed);
        if let Err(e) = tessera_ir::verify::verify_concrete(&kernel) {
            failures.record(seed, machine, &format!("generator bug: {e}"), &kernel);
            break;
        }
        let m = simulate::machine(Some(machine)).map_err(|e| format!("{e:?}"));
        if let Ok(m) = &m
            && let Ok(o) =
                tessera_compiler::opt::optimise(&kernel, m, tessera_compiler::opt::Level::O2)
            && o.report.groups > 0
        {
            grouped += 1;
        }
        // Unit inputs: these kernels test the grouping, not IEEE edge values
        // (the test above does), and sums of wide values fed into steep
        // functions would be ill-conditioned.
        let result = m.and_then(|m| {
            let code = tessera_testsuite::compile_generated(&kernel, &m)?;
            for stage in &code.plan.stages {
                match &stage.kind {
                    tessera_ir::plan::StageKind::Rows(r) => {
                        chunked += usize::from(r.schedule.chunked());
                        let widths: Vec<_> = r.inputs.iter().map(|i| i.width).collect();
                        online += usize::from(
                            r.schedule.chunked()
                                && tessera_ir::plan::rows::online_variance(&r.body, &widths)
                                    .is_some(),
                        );
                        transposed += usize::from(r.schedule.transposed);
                        blockwise += usize::from(r.schedule.blockwise);
                    }
                    tessera_ir::plan::StageKind::Elementwise(e) => {
                        multi += usize::from(!e.also.is_empty());
                    }
                    tessera_ir::plan::StageKind::Reduce(_)
                    | tessera_ir::plan::StageKind::Transpose(_)
                    | tessera_ir::plan::StageKind::MatMul(_) => {}
                }
            }
            let inputs = tessera_testsuite::random_inputs(&kernel, seed);
            dump_inputs(&kernel, &inputs)?;
            tessera_testsuite::simulate_against_reference(&kernel, &m, &code.program, &inputs)?;
            tessera_testsuite::host_against_reference(&kernel, &inputs)
        });
        if let Err(why) = result
            && failures.record(seed, machine, &why, &kernel)
        {
            break;
        }
    }
    failures.assert_none("fusion-prone kernels", "TESSERA_FUSE");
    // The generator must exercise fusion, or this test guards nothing.
    assert!(
        grouped * 2 > cases,
        "only {grouped} of {cases} fusion-prone kernels were fused"
    );
    // At the default count, rows longer than UB and many short rows too.
    if cases >= 500 {
        assert!(
            chunked > 0 && online > 0 && transposed > 0 && blockwise > 0 && multi > 0,
            "{chunked} chunked ({online} with an online variance), {transposed} transposed and {blockwise} blockwise row stages, {multi} multi-output elementwise stages in {cases} kernels"
        );
        eprintln!(
            "{chunked} chunked ({online} with an online variance), {transposed} transposed and {blockwise} blockwise row stages, {multi} multi-output elementwise stages in {cases} kernels"
        );
    }
}

/// The random kernels that once found a bug (`cases/regressions/*.ir`, each
/// with the machine and the input seed it failed on), checked every run.
#[test]
fn kernels_that_found_bugs_still_match() {
    let dir = tessera_testsuite::crate_dir().join("cases/regressions");
    let paths = tessera_testsuite::case_files(&dir, "ir");
    assert!(!paths.is_empty());
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable");
        let directive = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("//@ {key}:")))
                .map(str::trim)
                .unwrap_or_else(|| panic!("{}: no `//@ {key}:`", path.display()))
        };
        let seed: u64 = directive("seed").parse().expect("a seed");
        let module = tessera_ir::text::parse_module(&text).expect("IR text");
        check_kernel(&module.kernels[0], directive("machine"), seed)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
