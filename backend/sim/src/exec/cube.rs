//! The cube (`cube.mmad`) and the moves out of L0C (FixPipe to GM on split
//! machines, the vector pipe's L0C → UB on coupled ones).
//!
//! Layouts (`C0 = 32 / input size`, `M1 = ⌈m/16⌉`, `K1 = ⌈k/C0⌉`, `N1 = ⌈n/16⌉`):
//! - L0A: `A[i][kk]` at `a + ((i/16)*K1 + kk/C0)*512 + (i%16)*32 + (kk%C0)*s`;
//! - L0B: `B[kk][j]` at `b + ((kk/C0)*N1 + j/16)*512 + (j%16)*32 + (kk%C0)*s`;
//! - L0C (NZ, 4-byte f32/i32): `C[i][j]` at `c + ((j/16)*R + i)*64 + (j%16)*4`,
//!   where `R = 16*M1` for `mmad` (and `src_rows` for the moves out).
//!
//! Consecutive `mmad`s accumulating into the same L0C need no barrier: the
//! cube orders its own accumulation (as the hardware does).
//!
//! `mmad` computes exactly the logical `m × n × k` product: every product is
//! exact in f32 (f16/bf16 inputs) or i32 (i8), accumulation is sequential over
//! `k` in f32/i32, and no padding element is read or written.

use super::numeric::{read_f64, write_cast};
use super::{Env, GmXfer, Outcome, Pat, note};
use crate::fault::{FaultKind, Space, Trap};
use crate::isa::{BLOCK_BYTES, Dt, FRACTAL_BYTES, FRACTAL_ROWS};
use crate::machine::PathId;
use rayon::prelude::*;

/// Largest m, k or n of one `mmad`.
pub const MAX_MKN: u64 = 4095;
/// Bytes of one L0C fractal (16 × 16 × 4).
pub const L0C_FRACTAL_BYTES: u64 = 1024;
/// Bytes of one L0C row of a fractal.
const L0C_ROW: u64 = 64;

/// `cube.mmad`.
#[allow(clippy::too_many_arguments)]
pub fn mmad(
    env: &mut Env,
    dt: Dt,
    c: u64,
    a: u64,
    b: u64,
    m: u64,
    k: u64,
    n: u64,
    init: bool,
) -> Result<Outcome, Trap> {
    let s = dt.size();
    let c0 = BLOCK_BYTES / s;
    let (m1, k1, n1) = (
        m.div_ceil(FRACTAL_ROWS),
        k.div_ceil(c0),
        n.div_ceil(FRACTAL_ROWS),
    );
    let a_pat = Pat::run(a, m1 * k1 * FRACTAL_BYTES);
    let b_pat = Pat::run(b, k1 * n1 * FRACTAL_BYTES);
    let c_pat = Pat::run(c, m1 * n1 * L0C_FRACTAL_BYTES);
    env.check(Space::L0a, &a_pat)?;
    env.check(Space::L0b, &b_pat)?;
    env.check(Space::L0c, &c_pat)?;
    let cost = env.m.cube_dtype(dt).ok_or_else(|| {
        Trap::new(
            FaultKind::Illegal,
            format!("the cube does not support {} inputs", dt.name()),
        )
    })?;
    let mut out = Outcome {
        busy: u64::from(env.m.cube.head_cycles) + m1 * k1 * n1 * u64::from(cost.cycles_per_fractal),
        cube_flops: 2 * m * k * n,
        ..Default::default()
    };
    note(env, &mut out, Space::L0a, a_pat, false);
    note(env, &mut out, Space::L0b, b_pat, false);
    // The cube accumulates in order: an accumulating mmad's read of L0C is part of
    // its write (consecutive mmads into one accumulator need no barrier).
    note(env, &mut out, Space::L0c, c_pat, true);
    if !env.functional || m == 0 || n == 0 {
        return Ok(out);
    }
    let mach = env.m;
    let (m, k, n) = (m as usize, k as usize, n as usize);
    let (su, c0u, k1u, n1u, m1u) = (
        s as usize,
        c0 as usize,
        k1 as usize,
        n1 as usize,
        m1 as usize,
    );
    let (fb, blk) = (FRACTAL_BYTES as usize, BLOCK_BYTES as usize);
    let l0a = env.local.take(Space::L0a, mach);
    let l0b = env.local.take(Space::L0b, mach);
    let l0c = env.local.buf(Space::L0c, mach);
    let (a, b, c) = (a as usize, b as usize, c as usize);
    let a_at = |i: usize, kk: usize| {
        a + ((i / 16) * k1u + kk / c0u) * fb + (i % 16) * blk + (kk % c0u) * su
    };
    let b_at = |kk: usize, j: usize| {
        b + ((kk / c0u) * n1u + j / 16) * fb + (j % 16) * blk + (kk % c0u) * su
    };
    let c_at = |i: usize, j: usize| c + ((j / 16) * m1u * 16 + i) * L0C_ROW as usize + (j % 16) * 4;
    if dt == Dt::I8 {
        let av: Vec<i32> = (0..m * k)
            .map(|x| i32::from(l0a[a_at(x / k, x % k)] as i8))
            .collect();
        let bv: Vec<i32> = (0..k * n)
            .map(|x| i32::from(l0b[b_at(x / n, x % n)] as i8))
            .collect();
        let mut cv: Vec<i32> = vec![0; m * n];
        if !init {
            for (x, v) in cv.iter_mut().enumerate() {
                let o = c_at(x / n, x % n);
                *v = i32::from_le_bytes([l0c[o], l0c[o + 1], l0c[o + 2], l0c[o + 3]]);
            }
        }
        let row = |(i, crow): (usize, &mut [i32])| {
            for kk in 0..k {
                let av = av[i * k + kk];
                if av != 0 {
                    for (cx, bx) in crow.iter_mut().zip(&bv[kk * n..(kk + 1) * n]) {
                        *cx = cx.wrapping_add(av.wrapping_mul(*bx));
                    }
                }
            }
        };
        if m * n * k >= 1 << 18 {
            cv.par_chunks_mut(n).enumerate().for_each(row);
        } else {
            cv.chunks_mut(n).enumerate().for_each(row);
        }
        for (x, v) in cv.iter().enumerate() {
            let o = c_at(x / n, x % n);
            l0c[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
    } else {
        let av: Vec<f32> = (0..m * k)
            .map(|x| read_f64(&l0a, a_at(x / k, x % k), dt) as f32)
            .collect();
        let bv: Vec<f32> = (0..k * n)
            .map(|x| read_f64(&l0b, b_at(x / n, x % n), dt) as f32)
            .collect();
        let mut cv: Vec<f32> = vec![0.0; m * n];
        if !init {
            for (x, v) in cv.iter_mut().enumerate() {
                let o = c_at(x / n, x % n);
                *v = f32::from_le_bytes([l0c[o], l0c[o + 1], l0c[o + 2], l0c[o + 3]]);
            }
        }
        let row = |(i, crow): (usize, &mut [f32])| {
            for kk in 0..k {
                let av = av[i * k + kk];
                for (cx, bx) in crow.iter_mut().zip(&bv[kk * n..(kk + 1) * n]) {
                    *cx += av * *bx;
                }
            }
        };
        if m * n * k >= 1 << 18 {
            cv.par_chunks_mut(n).enumerate().for_each(row);
        } else {
            cv.chunks_mut(n).enumerate().for_each(row);
        }
        for (x, v) in cv.iter().enumerate() {
            let o = c_at(x / n, x % n);
            l0c[o..o + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    env.local.put(Space::L0a, l0a);
    env.local.put(Space::L0b, l0b);
    Ok(out)
}

/// L0C NZ → row-major GM (FixPipe) or UB (coupled vector pipe), cast to `dt`.
#[allow(clippy::too_many_arguments)]
pub fn l0c_out(
    env: &mut Env,
    dst_space: Space,
    dt: Dt,
    dst: u64,
    src: u64,
    m: u64,
    n: u64,
    src_rows: u64,
    dst_stride: u64,
    relu: bool,
) -> Result<Outcome, Trap> {
    if !src_rows.is_multiple_of(FRACTAL_ROWS) || src_rows < m {
        return Err(Trap::new(
            FaultKind::Illegal,
            format!("src_rows = {src_rows} must be a multiple of 16 and at least m = {m}"),
        ));
    }
    let so = dt.size();
    if dst_space != Space::Gm && m > 1 && !dst_stride.is_multiple_of(BLOCK_BYTES) {
        return Err(Trap::new(
            FaultKind::Misaligned,
            format!("ub row stride {dst_stride} is not a multiple of {BLOCK_BYTES} bytes"),
        ));
    }
    let src_pat = Pat {
        addr: src,
        n: n.div_ceil(FRACTAL_ROWS),
        len: m * L0C_ROW,
        stride: src_rows * L0C_ROW,
    };
    let dst_pat = Pat {
        addr: dst,
        n: m,
        len: n * so,
        stride: dst_stride,
    };
    env.check(Space::L0c, &src_pat)?;
    env.check(dst_space, &dst_pat)?;
    let path = if dst_space == Space::Gm {
        PathId::L0cToGm
    } else {
        PathId::L0cToUb
    };
    let bytes = m * n * so;
    let mut out = Outcome {
        moved: Some((path, bytes)),
        ..Default::default()
    };
    if dst_space == Space::Gm {
        out.gm = Some(GmXfer { pat: dst_pat, path });
    } else {
        out.busy = super::mte::local_cycles(env, path, bytes);
    }
    note(env, &mut out, Space::L0c, src_pat, false);
    note(env, &mut out, dst_space, dst_pat, true);
    if !env.functional || bytes == 0 {
        return Ok(out);
    }
    let mach = env.m;
    let src_dt = if dt == Dt::I32 { Dt::I32 } else { Dt::F32 };
    let l0c = env.local.take(Space::L0c, mach);
    let (m, n, so, src, dst, rows, stride) = (
        m as usize,
        n as usize,
        so as usize,
        src as usize,
        dst as usize,
        src_rows as usize,
        dst_stride as usize,
    );
    let write = |buf: &mut [u8], base: usize| {
        for i in 0..m {
            for j in 0..n {
                let o = src + ((j / 16) * rows + i) * L0C_ROW as usize + (j % 16) * 4;
                let mut v = read_f64(&l0c, o, src_dt);
                if relu && v < 0.0 {
                    v = 0.0;
                }
                write_cast(buf, base + i * stride + j * so, dt, v);
            }
        }
    };
    if dst_space == Space::Gm {
        let off = env.gm.off(dst as u64);
        if let Some(gm) = env.gm.data.as_mut() {
            write(gm, off);
        }
    } else {
        let ub = env.local.buf(Space::Ub, mach);
        write(ub, dst);
    }
    env.local.put(Space::L0c, l0c);
    Ok(out)
}
