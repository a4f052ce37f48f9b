//! Differential testing of cube programs: random matmul epilogue chains
//! (bias, scale, activations, residual adds, casts, several consumers of
//! one product), prologue chains (casts, scales, transposed operands,
//! `rms_norm` / `layer_norm` written out feeding a product), chains of
//! matmuls (MLP, the gated FFN) and attention-shaped programs (batch and
//! head dims, grouped K/V heads through a broadcast, additive masks, the
//! softmax as the builtin lowers it or written with a reciprocal, odd
//! sizes such as S = 1000 and D = 80). Each is compiled at `-O2` for the
//! simulator (the built-in machines in turn, the race detector on) and for
//! the host, and both are compared with the reference interpreter under
//! the spec's tolerances.
//!
//! `TESSERA_CUBE_CASES` sets the number of programs (default 500) and
//! `TESSERA_CUBE_SEED` the first seed (default 1); a failure prints the
//! seed and the kernel's IR text, and `TESSERA_CUBE_SEED=<seed>
//! TESSERA_CUBE_CASES=1` replays it. Inputs are unit values (`run
//! --random-inputs`); score ranges grow with the attention's scale, up to
//! exponents of ±60 before the softmax subtracts the row maximum.

use tessera_compiler::inputs::SplitMix64;
use tessera_compiler::plan::schedule::{cube_layout, fits};
use tessera_compiler::simulate;
use tessera_ir::plan::{Geometry, MatMulSchedule, Plan, StageKind};
use tessera_ir::{
    BinaryOp, DType, Kernel, Op, Output, ReduceOp, Scalar, Shape, TensorType, UnaryOp, Value,
};
use tessera_testsuite::CubeForms;

/// Most multiply-adds a program may cost (the functional simulator and the
/// reference interpreter run them all), except the rare large attention.
const MAC_BUDGET: u64 = 1 << 23;

/// The draws the generator needs.
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A kernel under construction.
struct Gen {
    rng: Rng,
    k: Kernel,
    /// Per node, the narrowest float dtype a computed value upstream of it
    /// was rounded to (see [`Gen::output`]).
    narrowed: Vec<Option<DType>>,
}

/// What the generated programs exercised, for the coverage check.
#[derive(Default)]
struct Seen {
    attention: usize,
    grouped_heads: usize,
    masked: usize,
    chains: usize,
    prologues: usize,
    epilogues: usize,
}

impl Gen {
    fn param(&mut self, dtype: DType, dims: &[u64]) -> Value {
        let name = format!("p{}", self.k.params.len());
        self.k
            .add_param(name, TensorType::new(dtype, Shape::fixed(dims)))
    }

    fn op(&mut self, op: Op, args: Vec<Value>) -> Value {
        let what = format!("{op:?}");
        // A computed f32 value rounded to f16 / bf16 (its inputs' are not
        // computed): bf16 is the coarser.
        let here = match op {
            Op::Cast(to @ (DType::F16 | DType::BF16))
                if matches!(args[0], Value::Node(_)) && self.dtype(args[0]) == DType::F32 =>
            {
                Some(to)
            }
            _ => None,
        };
        let narrowed = args
            .iter()
            .map(|&a| self.narrowed_at(a))
            .chain([here])
            .fold(None, coarser);
        let v = self
            .k
            .push(op, args, None)
            .unwrap_or_else(|e| panic!("generator bug: {what}: {e}"));
        self.narrowed.push(narrowed);
        v
    }

    fn narrowed_at(&self, v: Value) -> Option<DType> {
        match v {
            Value::Node(i) => self.narrowed[i as usize],
            Value::Param(_) => None,
        }
    }

    fn dims(&self, v: Value) -> Vec<u64> {
        self.k
            .ty(v)
            .shape
            .dims()
            .iter()
            .map(|d| d.fixed().expect("static shapes"))
            .collect()
    }

    fn dtype(&self, v: Value) -> DType {
        self.k.ty(v).dtype
    }

    fn constant(&mut self, dtype: DType, x: f64) -> Value {
        let value = if dtype.is_int() {
            Scalar::Int(x as i64)
        } else {
            Scalar::Float(dtype.round_float(x))
        };
        self.op(
            Op::Full {
                value,
                ty: TensorType::scalar(dtype),
            },
            vec![],
        )
    }

    fn cast(&mut self, v: Value, to: DType) -> Value {
        if self.dtype(v) == to {
            v
        } else {
            self.op(Op::Cast(to), vec![v])
        }
    }

    fn bin(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        self.op(Op::Binary(op), vec![a, b])
    }

    fn un(&mut self, op: UnaryOp, a: Value) -> Value {
        self.op(Op::Unary(op), vec![a])
    }

    /// `v * x` with `x` a constant of `v`'s dtype.
    fn scale(&mut self, v: Value, x: f64) -> Value {
        let c = self.constant(self.dtype(v), x);
        self.bin(BinaryOp::Mul, v, c)
    }

    /// A reduction over the last axis, its axis kept (size 1).
    fn reduce_rows(&mut self, op: ReduceOp, v: Value) -> Value {
        let mut d = self.dims(v);
        let last = d.len() - 1;
        let r = self.op(
            Op::Reduce {
                op,
                axes: vec![last],
            },
            vec![v],
        );
        d[last] = 1;
        self.op(Op::Reshape(Shape::fixed(&d)), vec![r])
    }

    /// `v` with its last two axes swapped.
    fn swap_last(&mut self, v: Value) -> Value {
        let n = self.dims(v).len();
        let mut perm: Vec<usize> = (0..n).collect();
        perm.swap(n - 2, n - 1);
        self.op(Op::Transpose(perm), vec![v])
    }

    /// The softmax over the last axis: as the builtin lowers it (`e / sum`),
    /// with one reciprocal per row (`e * (1 / sum)`), or (`log` form) as
    /// `d - log(sum)` exponentiated back.
    fn softmax(&mut self, s: Value) -> Value {
        let m = self.reduce_rows(ReduceOp::Max, s);
        let d = self.bin(BinaryOp::Sub, s, m);
        let e = self.un(UnaryOp::Exp, d);
        let sum = self.reduce_rows(ReduceOp::Sum, e);
        match self.rng.below(3) {
            0 => {
                let r = self.un(UnaryOp::Reciprocal, sum);
                self.bin(BinaryOp::Mul, e, r)
            }
            1 => {
                let l = self.un(UnaryOp::Log, sum);
                let ls = self.bin(BinaryOp::Sub, d, l);
                self.un(UnaryOp::Exp, ls)
            }
            _ => self.bin(BinaryOp::Div, e, sum),
        }
    }

    /// An activation a matmul epilogue applies.
    fn activation(&mut self, v: Value) -> Value {
        let u = self.rng.pick(&[
            UnaryOp::Relu,
            UnaryOp::Gelu,
            UnaryOp::GeluTanh,
            UnaryOp::Silu,
            UnaryOp::Sigmoid,
            UnaryOp::Tanh,
        ]);
        self.un(u, v)
    }

    /// Adds result `v`. Two correct backends may round a computed f32
    /// value to different f16 / bf16 neighbours (it carries its own
    /// tolerance), and a product over such values passes the flips on: a
    /// result downstream of one, finer than it (f32, or f16 after a bf16
    /// rounding), is cast to that dtype, as users' programs do
    /// (`cast(cast(p, f16) @ v, f16)`), and held to its tolerance. (An f16
    /// `tanh(cast(cast(x @ w, bf16), f32) * s + b)` near 0 differed by half
    /// a bf16 step of the product, 4.9e-3, against f16's 1e-3.)
    fn output(&mut self, v: Value) {
        let v = match (self.narrowed_at(v), self.dtype(v)) {
            (Some(to), DType::F32) | (Some(to @ DType::BF16), DType::F16) => self.cast(v, to),
            _ => v,
        };
        let name = format!("out{}", self.k.outputs.len());
        self.k.outputs.push(Output { name, value: v });
    }
}

/// The coarser of two narrowings.
fn coarser(a: Option<DType>, b: Option<DType>) -> Option<DType> {
    match (a, b) {
        (Some(DType::BF16), _) | (_, Some(DType::BF16)) => Some(DType::BF16),
        (Some(d), _) | (None, Some(d)) => Some(d),
        (None, None) => None,
    }
}

/// Attention-shaped: `softmax(q @ kᵀ · s + mask) @ v` over `[B?, H, S, D]`
/// with `Hkv` K/V heads broadcast to the `H` query heads.
fn attention(g: &mut Gen, seen: &mut Seen) {
    seen.attention += 1;
    let dtype = g
        .rng
        .pick(&[DType::F16, DType::F16, DType::BF16, DType::F32]);
    let large = g.rng.chance(2);
    // Large ones in f16, as attention runs (on 910b-like their Q·Kᵀ
    // alternates two accumulators; in f32 it keeps a folded A panel).
    let dtype = if large { DType::F16 } else { dtype };
    let batch = !large && g.rng.chance(25);
    let (h, d) = if large {
        (1, 80)
    } else {
        (
            g.rng.pick(&[1u64, 2, 4]),
            g.rng.pick(&[16u64, 32, 64, 80, 128]),
        )
    };
    // Sequence lengths within the budget: the two products cost
    // 2·B·H·S·Sk·D multiply-adds.
    let per = 2 * if batch { 2 } else { 1 } * h * d;
    let fits = |s: u64, sk: u64| large || per * s * sk <= 4 * MAC_BUDGET;
    let mut s = if large {
        1000
    } else {
        g.rng.pick(&[1u64, 7, 16, 33, 64, 100, 128, 257])
    };
    // Keys as long as the queries, or a cross-attention of another length.
    let mut sk = if large || g.rng.chance(70) {
        s
    } else {
        g.rng.pick(&[1u64, 16, 65, 200])
    };
    while !fits(s, sk) {
        s = s.div_ceil(2);
        sk = sk.div_ceil(2);
    }
    let hkv = if h > 1 && g.rng.chance(50) {
        g.rng.pick(&[1u64, h / 2])
    } else {
        h
    };
    let b = if batch { vec![2u64] } else { vec![] };
    let dims = |heads: u64, rows: u64| {
        let mut v = b.clone();
        v.extend([heads, rows, d]);
        v
    };
    let mut q = g.param(dtype, &dims(h, s));
    let mut k = g.param(dtype, &dims(hkv, sk));
    let mut v = g.param(dtype, &dims(hkv, sk));
    if hkv != h {
        seen.grouped_heads += 1;
        // [.., Hkv, Sk, D] → [.., Hkv, 1, Sk, D] → [.., Hkv, G, Sk, D] → [.., H, Sk, D].
        let expand = |g: &mut Gen, x: Value| {
            let mut one = b.clone();
            one.extend([hkv, 1, sk, d]);
            let mut wide = b.clone();
            wide.extend([hkv, h / hkv, sk, d]);
            let mut heads = b.clone();
            heads.extend([h, sk, d]);
            let x = g.op(Op::Reshape(Shape::fixed(&one)), vec![x]);
            let x = g.op(Op::BroadcastTo(Shape::fixed(&wide)), vec![x]);
            g.op(Op::Reshape(Shape::fixed(&heads)), vec![x])
        };
        k = expand(g, k);
        v = expand(g, v);
    }
    // The scale: the usual 1/√D, or larger (wide score ranges); applied to
    // the scores, or to q before the product.
    let scale = g.rng.pick(&[1.0 / (d as f64).sqrt(), 1.0, 4.0]);
    let scale_q = g.rng.chance(30);
    if scale_q {
        q = g.scale(q, scale);
    }
    let kt = g.swap_last(k);
    let mut sc = g.op(Op::MatMul, vec![q, kt]);
    if !scale_q {
        sc = g.scale(sc, scale);
    }
    if g.rng.chance(40) {
        seen.masked += 1;
        // An additive mask over [S, Sk] (broadcast over heads), or one per
        // head.
        let md = g.rng.pick(&[DType::F16, DType::F32]);
        let mask = if g.rng.chance(75) {
            g.param(md, &[s, sk])
        } else {
            let mut per_head = b.clone();
            per_head.extend([h, s, sk]);
            g.param(md, &per_head)
        };
        let mask = g.cast(mask, DType::F32);
        sc = g.bin(BinaryOp::Add, sc, mask);
    }
    let p = g.softmax(sc);
    // P·V in the inputs' dtype (the probabilities cast), or in f32.
    let o = if dtype != DType::F32 && g.rng.chance(75) {
        let p16 = g.cast(p, dtype);
        g.op(Op::MatMul, vec![p16, v])
    } else {
        let v32 = g.cast(v, DType::F32);
        g.op(Op::MatMul, vec![p, v32])
    };
    let o = if g.rng.chance(60) {
        g.cast(o, dtype)
    } else {
        o
    };
    g.output(o);
    // An extra consumer of the probabilities: the pattern holds only partly.
    if g.rng.chance(10) {
        g.output(p);
    }
}

/// Matmul dims: `(M, K, N)` within the budget (`products` of them).
fn product_dims(g: &mut Gen, products: u64) -> (u64, u64, u64) {
    let m = g.rng.pick(&[1u64, 7, 16, 33, 64, 100, 129, 257]);
    let k = g
        .rng
        .pick(&[16u64, 40, 64, 80, 128, 130, 257, 512, 1000, 2048]);
    let n = g.rng.pick(&[8u64, 16, 33, 64, 100, 128, 257]);
    let m = m.min((MAC_BUDGET / (products * k * n)).max(1));
    (m, k, n)
}

/// An epilogue chain after `y` (`[.., M, N]`, f32 or i32): bias, scale,
/// activation, residual, cast, in a random order and number; sometimes the
/// product itself is a result too.
fn epilogue(g: &mut Gen, y: Value, seen: &mut Seen) -> Value {
    seen.epilogues += 1;
    let dims = g.dims(y);
    let n = dims[dims.len() - 1];
    let mut cur = y;
    if g.dtype(y) == DType::I32 {
        // Integer products: bias and residual adds, relu, a cast to f32.
        if g.rng.chance(60) {
            let bias = g.param(DType::I32, &[n]);
            cur = g.bin(BinaryOp::Add, cur, bias);
        }
        if g.rng.chance(50) {
            cur = g.un(UnaryOp::Relu, cur);
        }
        if g.rng.chance(40) {
            cur = g.cast(cur, DType::F32);
        }
        return cur;
    }
    let steps = 1 + g.rng.below(4);
    for _ in 0..steps {
        cur = match g.rng.below(6) {
            0 => {
                // A bias per column, in f32 or f16.
                let bd = g.rng.pick(&[DType::F32, DType::F16]);
                let bias = g.param(bd, &[n]);
                let bias = g.cast(bias, g.dtype(cur));
                g.bin(BinaryOp::Add, cur, bias)
            }
            1 => {
                // A bias per row: a column vector.
                let rows = dims[dims.len() - 2];
                let bias = g.param(g.dtype(cur), &[rows, 1]);
                g.bin(BinaryOp::Add, cur, bias)
            }
            2 => g.scale(cur, 0.125),
            3 => {
                // A residual of the product's shape.
                let rd = g.rng.pick(&[DType::F32, DType::F16]);
                let r = g.param(rd, &dims);
                let r = g.cast(r, g.dtype(cur));
                g.bin(BinaryOp::Add, cur, r)
            }
            4 => {
                // Through f16 / bf16 and back: the cast in the middle.
                let to = g.rng.pick(&[DType::F16, DType::BF16]);
                let c = g.cast(cur, to);
                g.cast(c, DType::F32)
            }
            _ => g.activation(cur),
        };
    }
    if g.rng.chance(15) {
        g.output(y);
    }
    if g.rng.chance(60) {
        let to = g.rng.pick(&[DType::F16, DType::BF16]);
        cur = g.cast(cur, to);
    }
    cur
}

/// A prologue before a product: casts, a scale, a transposed operand, or a
/// norm written out (`rms_norm` or `layer_norm`, cast to f16) feeding A.
fn prologue_product(g: &mut Gen, seen: &mut Seen) -> Value {
    seen.prologues += 1;
    let (m, k, n) = product_dims(g, 1);
    let dtype = g.rng.pick(&[DType::F16, DType::BF16, DType::F32]);
    let a = match g.rng.below(4) {
        0 => {
            // The operand stored transposed.
            let at = g.param(dtype, &[k, m]);
            g.swap_last(at)
        }
        1 => {
            // Cast from f32 and scaled.
            let a = g.param(DType::F32, &[m, k]);
            let a = g.scale(a, 0.5);
            g.cast(a, dtype)
        }
        _ => {
            // A norm over K, written out, in f32 then cast.
            let x = g.param(dtype, &[m, k]);
            let x = g.cast(x, DType::F32);
            let centred = if g.rng.chance(50) {
                let mu = g.reduce_rows(ReduceOp::Mean, x);
                g.bin(BinaryOp::Sub, x, mu)
            } else {
                x
            };
            let sq = g.bin(BinaryOp::Mul, centred, centred);
            let ms = g.reduce_rows(ReduceOp::Mean, sq);
            let eps = g.constant(DType::F32, 1e-5);
            let ms = g.bin(BinaryOp::Add, ms, eps);
            let r = g.un(UnaryOp::Rsqrt, ms);
            let normed = g.bin(BinaryOp::Mul, centred, r);
            let gain = g.param(DType::F32, &[k]);
            let normed = g.bin(BinaryOp::Mul, normed, gain);
            g.cast(normed, dtype)
        }
    };
    let b = if g.rng.chance(30) {
        let bt = g.param(dtype, &[n, k]);
        g.swap_last(bt)
    } else {
        g.param(dtype, &[k, n])
    };
    g.op(Op::MatMul, vec![a, b])
}

/// `x @ w1 → activation → @ w2`, or the gated `(silu(x @ w1) * (x @ w3)) @
/// w2`, with f16 casts between.
fn chain(g: &mut Gen, seen: &mut Seen) -> Value {
    seen.chains += 1;
    let (m, k, f) = product_dims(g, 3);
    let n = g.rng.pick(&[16u64, 64, 100]);
    let dtype = g.rng.pick(&[DType::F16, DType::BF16]);
    let x = g.param(dtype, &[m, k]);
    let w1 = g.param(dtype, &[k, f]);
    let h = g.op(Op::MatMul, vec![x, w1]);
    let h = if g.rng.chance(50) {
        let w3 = g.param(dtype, &[k, f]);
        let u = g.op(Op::MatMul, vec![x, w3]);
        let gate = g.un(UnaryOp::Silu, h);
        g.bin(BinaryOp::Mul, gate, u)
    } else {
        g.activation(h)
    };
    let h = g.cast(h, dtype);
    let w2 = g.param(dtype, &[f, n]);
    let y = g.op(Op::MatMul, vec![h, w2]);
    g.cast(y, dtype)
}

/// The program of `seed`.
fn generate(seed: u64, seen: &mut Seen) -> Kernel {
    let mut g = Gen {
        rng: Rng(SplitMix64(seed ^ 0xc0be_a77e)),
        k: Kernel::new(format!("cube{seed}")),
        narrowed: Vec::new(),
    };
    match g.rng.below(8) {
        0..=2 => attention(&mut g, seen),
        3 | 4 => {
            // A plain or batched product, then its epilogue.
            let (m, k, n) = product_dims(&mut g, 2);
            let dtype = g
                .rng
                .pick(&[DType::F16, DType::BF16, DType::F32, DType::I8]);
            let x = if g.rng.chance(20) {
                g.param(dtype, &[2, m, k])
            } else {
                g.param(dtype, &[m, k])
            };
            let w = g.param(dtype, &[k, n]);
            let y = g.op(Op::MatMul, vec![x, w]);
            let out = epilogue(&mut g, y, seen);
            g.output(out);
        }
        5 | 6 => {
            let y = prologue_product(&mut g, seen);
            let out = if g.rng.chance(50) {
                epilogue(&mut g, y, seen)
            } else {
                y
            };
            g.output(out);
        }
        _ => {
            let out = chain(&mut g, seen);
            g.output(out);
        }
    }
    g.k.remove_dead_nodes();
    g.k
}

/// Compiles `kernel` for `machine_name` and compares the simulator and the
/// host with the reference on unit inputs drawn from `seed`; returns the
/// cube forms its plan used.
fn check(kernel: &Kernel, machine_name: &str, seed: u64) -> Result<CubeForms, String> {
    tessera_ir::verify::verify_concrete(kernel).map_err(|e| format!("generator bug: {e}"))?;
    let machine = simulate::machine(Some(machine_name)).map_err(|e| format!("{e:?}"))?;
    let code = tessera_testsuite::compile_generated(kernel, &machine)?;
    let inputs = tessera_testsuite::random_inputs(kernel, seed);
    tessera_testsuite::simulate_against_reference(kernel, &machine, &code.program, &inputs)?;
    tessera_testsuite::host_against_reference(kernel, &inputs)?;
    let mut forms = CubeForms::of(&code.plan, &machine);
    // The scheduler gives halves to products larger than these: forced onto
    // every cube stage that can take them, the program runs again.
    if let Some(plan) = halved(&code.plan, &machine) {
        let program = tessera_backend::npu::compile(&plan, &machine)
            .map_err(|e| format!("with halves forced: {e:?}"))?;
        tessera_testsuite::simulate_against_reference(kernel, &machine, &program, &inputs)
            .map_err(|e| format!("with halves forced: {e}"))?;
        forms.halves += CubeForms::of(&plan, &machine).halves;
    }
    Ok(forms)
}

/// `plan` with halves (`CubeSchedule::halves`) on every cube stage that
/// can take them and whose buffers then fit: a split machine, one
/// accumulator, no split-K, a tile of two halves (the left one whole
/// blocks of a row-major B's columns in L1). None if no stage can.
fn halved(plan: &Plan, machine: &tessera_sim::Machine) -> Option<Plan> {
    if machine.organisation != tessera_sim::Organisation::Split {
        return None;
    }
    let mut plan = plan.clone();
    let mut any = false;
    for stage in &mut plan.stages {
        let StageKind::MatMul(mm) = &mut stage.kind else {
            continue;
        };
        let Ok(g) = Geometry::of(mm) else { continue };
        let MatMulSchedule::Cube(t) = &mut mm.schedule else {
            continue;
        };
        if t.halves {
            continue;
        }
        let plain = t.clone();
        t.halves = true;
        if t.check_halves(&g, true).is_err() {
            *t = plain;
            continue;
        }
        t.layout = cube_layout(&g, t, machine);
        if fits(&stage.local(), machine) {
            any = true;
        } else if let StageKind::MatMul(mm) = &mut stage.kind {
            mm.schedule = MatMulSchedule::Cube(plain);
        }
    }
    any.then_some(plan)
}

#[test]
fn cube_programs_match_the_reference() {
    let cases = tessera_testsuite::env_u64("TESSERA_CUBE_CASES", 500);
    let first = tessera_testsuite::env_u64("TESSERA_CUBE_SEED", 1);
    let mut seen = Seen::default();
    let mut failures = tessera_testsuite::Failures::default();
    let mut forms = CubeForms::default();
    for seed in first..first + cases {
        let kernel = generate(seed, &mut seen);
        let machine = tessera_testsuite::machine_of_seed(seed);
        match check(&kernel, machine, seed) {
            Ok(f) => forms.add(f),
            Err(why) => {
                if failures.record(seed, machine, &why, &kernel) {
                    break;
                }
            }
        }
    }
    failures.assert_none("cube programs", "TESSERA_CUBE");
    let Seen {
        attention,
        grouped_heads,
        masked,
        chains,
        prologues,
        epilogues,
    } = seen;
    let CubeForms {
        two_accumulators,
        loads_early,
        split_k,
        prologue: joined,
        epilogue: joined_after,
        scaled,
        staggered,
        a_panel,
        folded,
        halves,
        ..
    } = forms;
    eprintln!(
        "{attention} attention programs ({grouped_heads} with grouped K/V heads, {masked} masked), {chains} matmul chains, {prologues} prologues, {epilogues} epilogues in {cases} programs; {two_accumulators} cube stages alternated two accumulators, {loads_early} loaded a stage early, {split_k} split over K, {joined} ran the row stage before as a joined prologue, {joined_after} the vector stage after as a joined epilogue, {scaled} scaled their product, {staggered} staggered their tail strips, {a_panel} kept an A panel ({folded} folded over its tile row), {halves} drained their accumulator in halves"
    );
    // At the default count, every family came up.
    if cases >= 500 {
        assert!(
            attention > 0
                && grouped_heads > 0
                && masked > 0
                && chains > 0
                && prologues > 0
                && epilogues > 0,
            "a family of cube programs never came up in {cases} programs"
        );
        // Attention's short-K Q·Kᵀ on several rounds of tiles alternates two
        // accumulators on 910b-like; a product of few tiles and a long K on
        // 910b-like is split over K. (Loads a stage early need more L0
        // steps a stage than the scheduler gives products this small; the
        // default programs had one such stage before small long-K products
        // on 910b-like were split, and have none now. `matmul_forced` runs
        // that form on random products.)
        assert!(
            two_accumulators > 0 && split_k > 0,
            "no cube stage alternated two accumulators ({two_accumulators}) or was split over K ({split_k}) in {cases} programs"
        );
        // A norm before a product, and a softmax or an epilogue chain after
        // one, of enough tiles run in the product's launch on 910b-like.
        assert!(
            joined > 0 && joined_after > 0,
            "no cube stage ran the row stage before as a joined prologue ({joined}) or the vector stage after as a joined epilogue ({joined_after}) in {cases} programs"
        );
        // Attention's scaled Q·Kᵀ on 910-like scales in the product's
        // epilogue.
        assert!(
            scaled > 0,
            "no matmul stage scaled its product in {cases} programs"
        );
        // A short K over more tiles than cores keeps A's panel in L1
        // where the cores bound the product.
        assert!(
            a_panel > 0,
            "no cube stage kept an A panel in {cases} programs"
        );
        // Where a core's run of tiles stays in its tile row, the runs fold
        // over it when that shortens the first drain's wait on HBM (a
        // masked Q·Kᵀ over grouped heads on 910b-like).
        assert!(
            folded > 0,
            "no cube stage folded its A panel's runs in {cases} programs"
        );
        // Halves, forced onto the cube stages of 910b-like that can take
        // them.
        assert!(
            halves > 0,
            "no cube stage ran with halves in {cases} programs"
        );
        // (Staggered strips need three units a core and a drain worth it:
        // larger products than these; `matmul_forced` and the plan case
        // `cube_staggered_strips` run them.)
    }
}
