//! Vector instructions over UB: repeats, lane masks, block and repeat strides.
//!
//! One repeat processes `L = 256 / max element size` lanes. Lane `l` of repeat
//! `r` of an operand with element size `s`, block stride `bs` and repeat stride
//! `rs` (in 32-byte blocks) is at `base + (r*rs + (l*s/32)*bs)*32 + (l*s)%32`.
//! Masked-off lanes are neither computed nor written. Each repeat reads all its
//! lanes before writing any, so a destination may coincide with a source.

use super::numeric::{
    max_nan, min_nan, read_f32, read_f64, read_i64, round_to, round64, write_cast,
};
use super::{Env, Outcome, Pat, note};
use crate::fault::{FaultKind, Space, Trap};
use crate::isa::{
    ARed, BLOCK_BYTES, BRed, BinOp, Cond, Dt, MAX_REPEAT, Mask, REPEAT_BYTES, RRed, ScaOp, UnOp,
    Val, Vop,
};
use crate::machine::OpCost;

/// A resolved vector operand.
#[derive(Clone, Copy, Debug)]
pub struct Opnd {
    base: u64,
    blk: u64,
    rep: u64,
    size: u64,
}

impl Opnd {
    fn new(env: &Env, v: Vop, dt: Dt) -> Opnd {
        Opnd {
            base: env.addr(v.addr),
            blk: u64::from(v.blk),
            rep: u64::from(v.rep),
            size: dt.size(),
        }
    }
    #[inline]
    fn at(&self, r: u64, l: u64) -> usize {
        let byte = l * self.size;
        (self.base
            + (r * self.rep + (byte / BLOCK_BYTES) * self.blk) * BLOCK_BYTES
            + byte % BLOCK_BYTES) as usize
    }
    /// Footprint of lanes `0..used` over `reps` repeats.
    fn pats(&self, used: u64, reps: u64) -> Vec<Pat> {
        if used == 0 || reps == 0 {
            return Vec::new();
        }
        let nb = (used * self.size).div_ceil(BLOCK_BYTES);
        if self.blk == 1 || nb == 1 {
            vec![Pat {
                addr: self.base,
                n: reps,
                len: nb * BLOCK_BYTES,
                stride: self.rep * BLOCK_BYTES,
            }]
        } else {
            (0..nb)
                .map(|b| Pat {
                    addr: self.base + b * self.blk * BLOCK_BYTES,
                    n: reps,
                    len: BLOCK_BYTES,
                    stride: self.rep * BLOCK_BYTES,
                })
                .collect()
        }
    }
    /// Bounds of the footprint as one run.
    fn span(&self, used: u64, reps: u64) -> Pat {
        if used == 0 || reps == 0 {
            return Pat::run(self.base, 0);
        }
        let nb = (used * self.size).div_ceil(BLOCK_BYTES);
        let len = ((reps - 1) * self.rep + (nb - 1) * self.blk) * BLOCK_BYTES + BLOCK_BYTES;
        Pat::run(self.base, len)
    }
}

struct Shape {
    lanes: u64,
    reps: u64,
    mask: [u64; 4],
    /// One past the highest active lane.
    used: u64,
    active: u64,
}

impl Shape {
    #[inline]
    fn on(&self, l: u64) -> bool {
        self.mask[(l / 64) as usize] >> (l % 64) & 1 == 1
    }
}

fn shape(env: &Env, lanes: u64, rep: Val, mask: Option<Mask>) -> Result<Shape, Trap> {
    let reps = env.count(rep, "repeat", MAX_REPEAT)?;
    let mask = match mask {
        Some(m) => env.mask(m, lanes)?,
        None => [u64::MAX; 4],
    };
    let mut used = 0;
    let mut active = 0;
    for l in 0..lanes {
        if mask[(l / 64) as usize] >> (l % 64) & 1 == 1 {
            used = l + 1;
            active += 1;
        }
    }
    Ok(Shape {
        lanes,
        reps,
        mask,
        used,
        active,
    })
}

/// Checks and records operands; returns the outcome skeleton.
fn prepare(
    env: &mut Env,
    cost: OpCost,
    sh: &Shape,
    reads: &[Opnd],
    writes: &[Opnd],
) -> Result<Outcome, Trap> {
    for o in reads.iter().chain(writes) {
        env.check(Space::Ub, &o.span(sh.used, sh.reps))?;
    }
    let mut out = Outcome {
        busy: sh.reps * u64::from(cost.per_repeat),
        tail: u64::from(cost.tail),
        vector: true,
        vec_flops: sh.reps * sh.active,
        ..Default::default()
    };
    if env.footprint {
        for o in reads {
            for p in o.pats(sh.used, sh.reps) {
                note(env, &mut out, Space::Ub, p, false);
            }
        }
        for o in writes {
            for p in o.pats(sh.used, sh.reps) {
                note(env, &mut out, Space::Ub, p, true);
            }
        }
    }
    Ok(out)
}

/// Maps every active lane: `f(inputs) -> value`, written to `dst` with cast semantics.
fn map_lanes<F>(
    env: &mut Env,
    sh: &Shape,
    dst: Opnd,
    dst_dt: Dt,
    srcs: &[(Opnd, Dt)],
    mut f: F,
) -> Result<(), Trap>
where
    F: FnMut(&[f64; 3]) -> Result<f64, FaultKind>,
{
    if !env.functional {
        return Ok(());
    }
    let m = env.m;
    let ub = env.local.buf(Space::Ub, m);
    let mut vals: Vec<(u64, f64)> = Vec::with_capacity(sh.lanes as usize);
    for r in 0..sh.reps {
        vals.clear();
        for l in 0..sh.used {
            if !sh.on(l) {
                continue;
            }
            let mut x = [0.0f64; 3];
            for (i, (o, dt)) in srcs.iter().enumerate() {
                x[i] = read_f64(ub, o.at(r, l), *dt);
            }
            match f(&x) {
                Ok(v) => vals.push((l, v)),
                Err(kind) => {
                    let at = srcs.get(1).map_or(dst.at(r, l), |(o, _)| o.at(r, l)) as u64;
                    return Err(Trap::at(
                        kind,
                        Space::Ub,
                        at,
                        format!(
                            "lane {l} of repeat {r} {}",
                            if kind == FaultKind::DivByZero {
                                "divides by zero"
                            } else {
                                "faults"
                            }
                        ),
                    ));
                }
            }
        }
        for &(l, v) in &vals {
            write_cast(ub, dst.at(r, l), dst_dt, v);
        }
    }
    Ok(())
}

fn float_bin(op: BinOp, a: f32, b: f32) -> f32 {
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Max => max_nan(a, b),
        BinOp::Min => min_nan(a, b),
    }
}

fn wrap(dt: Dt, v: i64) -> f64 {
    match dt {
        Dt::I8 => f64::from(v as i8),
        _ => f64::from(v as i32),
    }
}

fn int_bin(op: BinOp, dt: Dt, a: i64, b: i64) -> Result<f64, FaultKind> {
    Ok(wrap(
        dt,
        match op {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div => {
                if b == 0 {
                    return Err(FaultKind::DivByZero);
                }
                a.wrapping_div(b)
            }
            BinOp::Max => a.max(b),
            BinOp::Min => a.min(b),
        },
    ))
}

fn lanes2(a: Dt, b: Dt) -> u64 {
    REPEAT_BYTES / a.size().max(b.size())
}

/// `vec.<add|sub|mul|div|max|min>.<dt>`.
#[allow(clippy::too_many_arguments)]
pub fn bin(
    env: &mut Env,
    cost: OpCost,
    op: BinOp,
    dt: Dt,
    dst: Vop,
    a: Vop,
    b: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let (d, a, b) = (
        Opnd::new(env, dst, dt),
        Opnd::new(env, a, dt),
        Opnd::new(env, b, dt),
    );
    let out = prepare(env, cost, &sh, &[a, b], &[d])?;
    if dt.is_float() {
        map_lanes(env, &sh, d, dt, &[(a, dt), (b, dt)], |x| {
            Ok(f64::from(float_bin(op, x[0] as f32, x[1] as f32)))
        })?;
    } else {
        map_lanes(env, &sh, d, dt, &[(a, dt), (b, dt)], |x| {
            int_bin(op, dt, x[0] as i64, x[1] as i64)
        })?;
    }
    Ok(out)
}

/// The scalar operand of a vector op, as a value of `dt` (f32 bits rounded; i32 for ints).
fn scalar_value(bits: u32, dt: Dt) -> f64 {
    if dt.is_float() {
        f64::from(round_to(dt, f32::from_bits(bits)))
    } else {
        f64::from(bits as i32)
    }
}

/// `vec.<adds|muls|maxs|mins>.<dt>`.
#[allow(clippy::too_many_arguments)]
pub fn sca(
    env: &mut Env,
    cost: OpCost,
    op: ScaOp,
    dt: Dt,
    dst: Vop,
    a: Vop,
    s: u32,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let (d, a) = (Opnd::new(env, dst, dt), Opnd::new(env, a, dt));
    let out = prepare(env, cost, &sh, &[a], &[d])?;
    let sv = scalar_value(s, dt);
    let bop = match op {
        ScaOp::Adds => BinOp::Add,
        ScaOp::Muls => BinOp::Mul,
        ScaOp::Maxs => BinOp::Max,
        ScaOp::Mins => BinOp::Min,
    };
    if dt.is_float() {
        map_lanes(env, &sh, d, dt, &[(a, dt)], |x| {
            Ok(f64::from(float_bin(bop, x[0] as f32, sv as f32)))
        })?;
    } else {
        map_lanes(env, &sh, d, dt, &[(a, dt)], |x| {
            int_bin(bop, dt, x[0] as i64, sv as i64)
        })?;
    }
    Ok(out)
}

/// `vec.<exp|ln|sqrt|rsqrt|rec|abs|relu>.<dt>`.
#[allow(clippy::too_many_arguments)]
pub fn un(
    env: &mut Env,
    cost: OpCost,
    op: UnOp,
    dt: Dt,
    dst: Vop,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let (d, a) = (Opnd::new(env, dst, dt), Opnd::new(env, a, dt));
    let out = prepare(env, cost, &sh, &[a], &[d])?;
    if dt.is_float() {
        map_lanes(env, &sh, d, dt, &[(a, dt)], |x| {
            let v = x[0];
            Ok(f64::from(match op {
                UnOp::Exp => round64(dt, v.exp()),
                UnOp::Ln => round64(dt, v.ln()),
                UnOp::Sqrt => round64(dt, v.sqrt()),
                UnOp::Rsqrt => round64(dt, 1.0 / v.sqrt()),
                UnOp::Rec => round64(dt, 1.0 / v),
                UnOp::Abs => v.abs() as f32,
                // NaN stays, −0 becomes +0.
                UnOp::Relu => {
                    if v.is_nan() || v > 0.0 {
                        v as f32
                    } else {
                        0.0
                    }
                }
            }))
        })?;
    } else {
        map_lanes(env, &sh, d, dt, &[(a, dt)], |x| {
            let v = x[0] as i64;
            Ok(wrap(
                dt,
                match op {
                    UnOp::Relu => v.max(0),
                    UnOp::Abs => v.wrapping_abs(),
                    // Float only (`Insn::check` refuses them on integers).
                    UnOp::Exp | UnOp::Ln | UnOp::Sqrt | UnOp::Rsqrt | UnOp::Rec => {
                        return Err(FaultKind::Illegal);
                    }
                },
            ))
        })?;
    }
    Ok(out)
}

fn compare(c: Cond, a: f64, b: f64) -> bool {
    match c {
        Cond::Eq => a == b,
        Cond::Ne => a != b,
        Cond::Lt => a < b,
        Cond::Le => a <= b,
        Cond::Gt => a > b,
        Cond::Ge => a >= b,
    }
}

/// `vec.cmp.<cond>.<dt>` (`b` = None: `vec.cmps` with scalar `s`).
#[allow(clippy::too_many_arguments)]
pub fn cmp(
    env: &mut Env,
    cost: OpCost,
    c: Cond,
    dt: Dt,
    dst: Vop,
    a: Vop,
    b: Option<Vop>,
    s: u32,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, lanes2(dt, Dt::B8), rep, Some(mask))?;
    let d = Opnd::new(env, dst, Dt::B8);
    let a = Opnd::new(env, a, dt);
    let bo = b.map(|b| Opnd::new(env, b, dt));
    let reads: Vec<Opnd> = std::iter::once(a).chain(bo).collect();
    let out = prepare(env, cost, &sh, &reads, &[d])?;
    match bo {
        Some(b) => map_lanes(env, &sh, d, Dt::B8, &[(a, dt), (b, dt)], |x| {
            Ok(f64::from(u8::from(compare(c, x[0], x[1]))))
        })?,
        None => {
            let sv = scalar_value(s, dt);
            let sv = if dt == Dt::B8 {
                f64::from(u8::from(sv != 0.0))
            } else {
                sv
            };
            map_lanes(env, &sh, d, Dt::B8, &[(a, dt)], |x| {
                Ok(f64::from(u8::from(compare(c, x[0], sv))))
            })?
        }
    }
    Ok(out)
}

/// `vec.sel.<dt>`: `dst = c != 0 ? a : b`.
#[allow(clippy::too_many_arguments)]
pub fn sel(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: Vop,
    c: Vop,
    a: Vop,
    b: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, lanes2(dt, Dt::B8), rep, Some(mask))?;
    let (d, c, a, b) = (
        Opnd::new(env, dst, dt),
        Opnd::new(env, c, Dt::B8),
        Opnd::new(env, a, dt),
        Opnd::new(env, b, dt),
    );
    let out = prepare(env, cost, &sh, &[c, a, b], &[d])?;
    map_lanes(env, &sh, d, dt, &[(c, Dt::B8), (a, dt), (b, dt)], |x| {
        Ok(if x[0] != 0.0 { x[1] } else { x[2] })
    })?;
    Ok(out)
}

/// `vec.cvt.<to>.<from>`.
#[allow(clippy::too_many_arguments)]
pub fn cvt(
    env: &mut Env,
    cost: OpCost,
    to: Dt,
    from: Dt,
    dst: Vop,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, lanes2(to, from), rep, Some(mask))?;
    let (d, a) = (Opnd::new(env, dst, to), Opnd::new(env, a, from));
    let out = prepare(env, cost, &sh, &[a], &[d])?;
    map_lanes(env, &sh, d, to, &[(a, from)], |x| Ok(x[0]))?;
    Ok(out)
}

#[derive(Clone, Copy)]
enum Red {
    Sum,
    Max,
    Min,
}

struct Acc {
    dt: Dt,
    op: Red,
    f: f32,
    i: i64,
}

impl Acc {
    fn new(dt: Dt, op: Red) -> Acc {
        let (f, i) = match op {
            Red::Sum => (0.0, 0),
            Red::Max => (f32::NEG_INFINITY, i64::from(i32::MIN)),
            Red::Min => (f32::INFINITY, i64::from(i32::MAX)),
        };
        Acc { dt, op, f, i }
    }
    fn add(&mut self, ub: &[u8], off: usize) {
        if self.dt.is_float() {
            let v = read_f32(ub, off, self.dt);
            self.f = match self.op {
                Red::Sum => self.f + v,
                Red::Max => float_bin(BinOp::Max, self.f, v),
                Red::Min => float_bin(BinOp::Min, self.f, v),
            };
        } else {
            let v = read_i64(ub, off, self.dt);
            self.i = match self.op {
                Red::Sum => i64::from((self.i as i32).wrapping_add(v as i32)),
                Red::Max => self.i.max(v),
                Red::Min => self.i.min(v),
            };
        }
    }
    fn value(&self) -> f64 {
        if self.dt.is_float() {
            f64::from(self.f)
        } else {
            self.i as f64
        }
    }
}

/// Per-repeat reductions (`rsum`…): result `r` at `dst + r*size`.
#[allow(clippy::too_many_arguments)]
pub fn red_r(
    env: &mut Env,
    cost: OpCost,
    op: RRed,
    dt: Dt,
    dst: u64,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let a = Opnd::new(env, a, dt);
    let dpat = Pat::run(dst, sh.reps * dt.size());
    env.check(Space::Ub, &dpat)?;
    let mut out = prepare(env, cost, &sh, &[a], &[])?;
    note(env, &mut out, Space::Ub, dpat, true);
    let op = match op {
        RRed::Sum => Red::Sum,
        RRed::Max => Red::Max,
        RRed::Min => Red::Min,
    };
    if env.functional {
        let ub = env.local.buf(Space::Ub, env.m);
        for r in 0..sh.reps {
            let mut acc = Acc::new(dt, op);
            for l in 0..sh.used {
                if sh.on(l) {
                    acc.add(ub, a.at(r, l));
                }
            }
            write_cast(ub, (dst + r * dt.size()) as usize, dt, acc.value());
        }
    }
    Ok(out)
}

/// Per-block reductions (`bsum`…): block `b` of repeat `r` at `dst + (8r + b)*size`.
#[allow(clippy::too_many_arguments)]
pub fn red_b(
    env: &mut Env,
    cost: OpCost,
    op: BRed,
    dt: Dt,
    dst: u64,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let a = Opnd::new(env, a, dt);
    let blocks = REPEAT_BYTES / BLOCK_BYTES;
    let dpat = Pat::run(dst, sh.reps * blocks * dt.size());
    env.check(Space::Ub, &dpat)?;
    let mut out = prepare(env, cost, &sh, &[a], &[])?;
    note(env, &mut out, Space::Ub, dpat, true);
    let op = match op {
        BRed::Sum => Red::Sum,
        BRed::Max => Red::Max,
        BRed::Min => Red::Min,
    };
    if env.functional {
        let per = BLOCK_BYTES / dt.size();
        let ub = env.local.buf(Space::Ub, env.m);
        for r in 0..sh.reps {
            for b in 0..blocks {
                let mut acc = Acc::new(dt, op);
                for l in b * per..(b + 1) * per {
                    if sh.on(l) {
                        acc.add(ub, a.at(r, l));
                    }
                }
                write_cast(
                    ub,
                    (dst + (r * blocks + b) * dt.size()) as usize,
                    dt,
                    acc.value(),
                );
            }
        }
    }
    Ok(out)
}

/// Across-repeat reductions (`asum`…): `dst[l] = reduce over r of a[r][l]`.
#[allow(clippy::too_many_arguments)]
pub fn red_a(
    env: &mut Env,
    cost: OpCost,
    op: ARed,
    dt: Dt,
    dst: Vop,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let (d, a) = (Opnd::new(env, dst, dt), Opnd::new(env, a, dt));
    env.check(Space::Ub, &d.span(sh.used, sh.reps.min(1)))?;
    let mut out = prepare(env, cost, &sh, &[a], &[])?;
    for p in d.pats(sh.used, sh.reps.min(1)) {
        note(env, &mut out, Space::Ub, p, true);
    }
    let op = match op {
        ARed::Sum => Red::Sum,
        ARed::Max => Red::Max,
        ARed::Min => Red::Min,
    };
    if env.functional && sh.reps > 0 {
        let ub = env.local.buf(Space::Ub, env.m);
        let mut res = Vec::new();
        for l in 0..sh.used {
            if sh.on(l) {
                let mut acc = Acc::new(dt, op);
                for r in 0..sh.reps {
                    acc.add(ub, a.at(r, l));
                }
                res.push((l, acc.value()));
            }
        }
        for (l, v) in res {
            write_cast(ub, d.at(0, l), dt, v);
        }
    }
    Ok(out)
}

/// `vec.dup.<dt>` (`iota = false`) and `vec.iota.<dt>` (`iota = true`).
#[allow(clippy::too_many_arguments)]
pub fn dup(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: Vop,
    s: u32,
    rep: Val,
    mask: Mask,
    iota: bool,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let d = Opnd::new(env, dst, dt);
    let out = prepare(env, cost, &sh, &[], &[d])?;
    if env.functional {
        let ub = env.local.buf(Space::Ub, env.m);
        let start = if dt.is_float() {
            f64::from(f32::from_bits(s))
        } else {
            f64::from(s as i32)
        };
        let v = scalar_value(s, dt);
        for r in 0..sh.reps {
            for l in 0..sh.used {
                if sh.on(l) {
                    let x = if iota {
                        let idx = (r * sh.lanes + l) as f64;
                        if dt.is_float() {
                            f64::from((start + idx) as f32)
                        } else {
                            wrap(Dt::I32, (start as i64).wrapping_add(idx as i64))
                        }
                    } else {
                        v
                    };
                    write_cast(ub, d.at(r, l), dt, x);
                }
            }
        }
    }
    Ok(out)
}

/// `vec.copy.<dt>`: bit-exact lane copy.
pub fn copy(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: Vop,
    a: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, Some(mask))?;
    let (d, a) = (Opnd::new(env, dst, dt), Opnd::new(env, a, dt));
    let out = prepare(env, cost, &sh, &[a], &[d])?;
    if env.functional {
        let s = dt.size() as usize;
        let ub = env.local.buf(Space::Ub, env.m);
        let mut tmp = vec![0u8; sh.lanes as usize * s];
        for r in 0..sh.reps {
            for l in 0..sh.used {
                if sh.on(l) {
                    let o = a.at(r, l);
                    tmp[l as usize * s..(l as usize + 1) * s].copy_from_slice(&ub[o..o + s]);
                }
            }
            for l in 0..sh.used {
                if sh.on(l) {
                    let o = d.at(r, l);
                    ub[o..o + s].copy_from_slice(&tmp[l as usize * s..(l as usize + 1) * s]);
                }
            }
        }
    }
    Ok(out)
}

/// `vec.brcb.<dt>`: element `8r + b` of `src` fills block `b` of repeat `r`.
pub fn brcb(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: Vop,
    src: u64,
    rep: Val,
) -> Result<Outcome, Trap> {
    let sh = shape(env, dt.lanes(), rep, None)?;
    let d = Opnd::new(env, dst, dt);
    let blocks = REPEAT_BYTES / BLOCK_BYTES;
    let spat = Pat::run(src, sh.reps * blocks * dt.size());
    env.check(Space::Ub, &spat)?;
    let mut out = prepare(env, cost, &sh, &[], &[d])?;
    note(env, &mut out, Space::Ub, spat, false);
    if env.functional {
        let s = dt.size() as usize;
        let per = BLOCK_BYTES / dt.size();
        let ub = env.local.buf(Space::Ub, env.m);
        for r in 0..sh.reps {
            for b in 0..blocks {
                let so = (src + (r * blocks + b) * dt.size()) as usize;
                let mut v = [0u8; 4];
                v[..s].copy_from_slice(&ub[so..so + s]);
                for l in b * per..(b + 1) * per {
                    let o = d.at(r, l);
                    ub[o..o + s].copy_from_slice(&v[..s]);
                }
            }
        }
    }
    Ok(out)
}

/// `vec.gather.<dt>`: `dst[l] = *(src + idx[l])` with 4-byte byte offsets.
#[allow(clippy::too_many_arguments)]
pub fn gather(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: Vop,
    src: u64,
    idx: Vop,
    rep: Val,
    mask: Mask,
) -> Result<Outcome, Trap> {
    let sh = shape(env, lanes2(dt, Dt::I32), rep, Some(mask))?;
    let (d, ix) = (Opnd::new(env, dst, dt), Opnd::new(env, idx, Dt::I32));
    let mut out = prepare(env, cost, &sh, &[ix], &[d])?;
    if env.functional {
        let s = dt.size();
        let cap = env.m.memory.ub.bytes;
        let mut lo = u64::MAX;
        let mut hi = 0;
        let mut vals = Vec::new();
        {
            let ub = env.local.buf(Space::Ub, env.m);
            for r in 0..sh.reps {
                for l in 0..sh.used {
                    if sh.on(l) {
                        let off = read_i64(ub, ix.at(r, l), Dt::I32) as u32 as u64;
                        let addr = src.wrapping_add(off);
                        if !addr.is_multiple_of(s) {
                            return Err(Trap::at(
                                FaultKind::Misaligned,
                                Space::Ub,
                                addr,
                                format!("gather lane {l} of repeat {r} reads a misaligned element"),
                            ));
                        }
                        if addr.saturating_add(s) > cap {
                            return Err(Trap::at(
                                FaultKind::Capacity,
                                Space::Ub,
                                addr,
                                format!("gather lane {l} of repeat {r} reads beyond the UB"),
                            ));
                        }
                        lo = lo.min(addr);
                        hi = hi.max(addr + s);
                        let mut v = [0u8; 4];
                        v[..s as usize].copy_from_slice(&ub[addr as usize..(addr + s) as usize]);
                        vals.push((r, l, v));
                    }
                }
            }
            for (r, l, v) in vals {
                let o = d.at(r, l);
                ub[o..o + s as usize].copy_from_slice(&v[..s as usize]);
            }
        }
        if hi > lo {
            note(env, &mut out, Space::Ub, Pat::run(lo, hi - lo), false);
        }
    }
    Ok(out)
}

/// `vec.trans.<dt>`: `rep` 16 × 16 transposes of 512-byte matrices.
pub fn trans(
    env: &mut Env,
    cost: OpCost,
    dt: Dt,
    dst: u64,
    src: u64,
    rep: Val,
) -> Result<Outcome, Trap> {
    let reps = env.count(rep, "repeat", MAX_REPEAT)?;
    let mat = 16 * 16 * dt.size();
    let (dp, sp) = (Pat::run(dst, reps * mat), Pat::run(src, reps * mat));
    env.check(Space::Ub, &sp)?;
    env.check(Space::Ub, &dp)?;
    let mut out = Outcome {
        busy: reps * u64::from(cost.per_repeat),
        tail: u64::from(cost.tail),
        vector: true,
        vec_flops: 0,
        ..Default::default()
    };
    note(env, &mut out, Space::Ub, sp, false);
    note(env, &mut out, Space::Ub, dp, true);
    if env.functional {
        let s = dt.size() as usize;
        let ub = env.local.buf(Space::Ub, env.m);
        for r in 0..reps as usize {
            let so = src as usize + r * mat as usize;
            let m: Vec<u8> = ub[so..so + mat as usize].to_vec();
            let d0 = dst as usize + r * mat as usize;
            for i in 0..16 {
                for j in 0..16 {
                    let from = (i * 16 + j) * s;
                    let to = d0 + (j * 16 + i) * s;
                    ub[to..to + s].copy_from_slice(&m[from..from + s]);
                }
            }
        }
    }
    Ok(out)
}
