//! Data movement: strided copies (MTE2, MTE3), ND → NZ conversion, and the
//! MTE1 fractal loads into L0A/L0B.
//!
//! Strided copy: `n` bursts of `len` bytes; burst `i` reads `src + i*src_stride`
//! and writes `dst + i*dst_stride`. The local side's address and stride must be
//! multiples of 32 bytes; the GM side may have any alignment (unaligned bursts
//! are slower). Exactly `len` bytes per burst are written, so a tail that is
//! not a multiple of 32 bytes never clobbers its neighbours.
//!
//! NZ layout of an R × C matrix in L1 (element size `s`, `C0 = 32 / s`):
//! element `(r, c)` is at `base + (c / C0) * S + r * 32 + (c % C0) * s`, where the
//! column-block stride `S = dst_rows * 32`.

use super::{Env, GmXfer, Outcome, Pat, note};
use crate::fault::{FaultKind, Space, Trap};
use crate::isa::{BLOCK_BYTES, Dt, FRACTAL_BYTES, FRACTAL_ROWS};
use crate::machine::PathId;

/// Largest burst count of a strided copy.
pub const MAX_BURSTS: u64 = 65535;
/// Largest burst length in bytes.
pub const MAX_BURST_LEN: u64 = 1 << 24;
/// Largest stride in bytes.
pub const MAX_STRIDE: u64 = 1 << 32;
/// Largest rows or columns of an ND → NZ tile.
pub const MAX_TILE_DIM: u64 = 65535;
/// Largest fractal count along one side of an MTE1 load.
pub const MAX_FRACTALS: u64 = 4095;

fn need_block_multiple(space: Space, what: &str, v: u64) -> Result<(), Trap> {
    if !v.is_multiple_of(BLOCK_BYTES) {
        return Err(Trap::new(
            FaultKind::Misaligned,
            format!(
                "{} {what} {v} is not a multiple of {BLOCK_BYTES} bytes",
                space.name()
            ),
        ));
    }
    Ok(())
}

/// Cycles of a transfer on a path that does not touch GM.
pub fn local_cycles(env: &Env, path: PathId, bytes: u64) -> u64 {
    match path.params(env.m) {
        Some(p) => u64::from(p.fixed_cycles) + (bytes as f64 / p.bytes_per_cycle).ceil() as u64,
        None => 0,
    }
}

/// A strided copy between `src_space` and `dst_space` (one of them may be GM).
#[allow(clippy::too_many_arguments)]
pub fn copy(
    env: &mut Env,
    path: PathId,
    dst_space: Space,
    dst: u64,
    src_space: Space,
    src: u64,
    n: u64,
    len: u64,
    ss: u64,
    ds: u64,
) -> Result<Outcome, Trap> {
    let src_pat = Pat {
        addr: src,
        n,
        len,
        stride: ss,
    };
    let dst_pat = Pat {
        addr: dst,
        n,
        len,
        stride: ds,
    };
    for (space, stride) in [(src_space, ss), (dst_space, ds)] {
        if space != Space::Gm && n > 1 {
            need_block_multiple(space, "stride", stride)?;
        }
    }
    env.check(src_space, &src_pat)?;
    env.check(dst_space, &dst_pat)?;
    let mut out = Outcome {
        moved: Some((path, n * len)),
        ..Default::default()
    };
    note(env, &mut out, src_space, src_pat, false);
    note(env, &mut out, dst_space, dst_pat, true);
    if src_space == Space::Gm {
        out.gm = Some(GmXfer { pat: src_pat, path });
    } else if dst_space == Space::Gm {
        out.gm = Some(GmXfer { pat: dst_pat, path });
    } else {
        out.busy = local_cycles(env, path, n * len.div_ceil(BLOCK_BYTES) * BLOCK_BYTES);
    }
    if env.functional && !src_pat.is_empty() {
        let m = env.m;
        let len = len as usize;
        match (src_space, dst_space) {
            (Space::Gm, d) => {
                let gm_off = env.gm.off(src);
                let Some(gm) = env.gm.data.as_ref() else {
                    return Ok(out);
                };
                let buf = env.local.buf(d, m);
                for i in 0..n as usize {
                    let so = gm_off + i * ss as usize;
                    let d0 = dst as usize + i * ds as usize;
                    buf[d0..d0 + len].copy_from_slice(&gm[so..so + len]);
                }
            }
            (s, Space::Gm) => {
                let gm_off = env.gm.off(dst);
                let buf: &Vec<u8> = env.local.buf(s, m);
                let Some(gm) = env.gm.data.as_mut() else {
                    return Ok(out);
                };
                for i in 0..n as usize {
                    let s0 = src as usize + i * ss as usize;
                    let d0 = gm_off + i * ds as usize;
                    gm[d0..d0 + len].copy_from_slice(&buf[s0..s0 + len]);
                }
            }
            (s, d) => {
                let sb = env.local.take(s, m);
                let b = env.local.buf(d, m);
                for i in 0..n as usize {
                    let s0 = src as usize + i * ss as usize;
                    let d0 = dst as usize + i * ds as usize;
                    b[d0..d0 + len].copy_from_slice(&sb[s0..s0 + len]);
                }
                env.local.put(s, sb);
            }
        }
    }
    Ok(out)
}

/// ND → NZ: a `rows` × `cols` row-major tile at `src` (row stride `ss` bytes) into
/// L1 NZ at `dst` with `dst_rows` rows per column block, zero-padded to whole fractals.
#[allow(clippy::too_many_arguments)]
pub fn nd2nz(
    env: &mut Env,
    path: PathId,
    src_space: Space,
    dt: Dt,
    dst: u64,
    src: u64,
    rows: u64,
    cols: u64,
    ss: u64,
    dst_rows: u64,
) -> Result<Outcome, Trap> {
    let s = dt.size();
    let c0 = BLOCK_BYTES / s;
    let rows16 = rows.div_ceil(FRACTAL_ROWS) * FRACTAL_ROWS;
    let cols_c0 = cols.div_ceil(c0) * c0;
    if !dst_rows.is_multiple_of(FRACTAL_ROWS) || dst_rows < rows16 {
        return Err(Trap::new(
            FaultKind::Illegal,
            format!(
                "dst_rows = {dst_rows} must be a multiple of 16 and at least the padded row count {rows16}"
            ),
        ));
    }
    if src_space != Space::Gm && rows > 1 {
        need_block_multiple(src_space, "row stride", ss)?;
    }
    let src_pat = Pat {
        addr: src,
        n: rows,
        len: cols * s,
        stride: ss,
    };
    let dst_pat = Pat {
        addr: dst,
        n: cols_c0 / c0,
        len: rows16 * BLOCK_BYTES,
        stride: dst_rows * BLOCK_BYTES,
    };
    env.check(src_space, &src_pat)?;
    env.check(Space::L1, &dst_pat)?;
    let mut out = Outcome {
        moved: Some((path, rows * cols * s)),
        ..Default::default()
    };
    note(env, &mut out, src_space, src_pat, false);
    note(env, &mut out, Space::L1, dst_pat, true);
    if src_space == Space::Gm {
        out.gm = Some(GmXfer { pat: src_pat, path });
    } else {
        out.busy = local_cycles(
            env,
            path,
            rows * (cols * s).div_ceil(BLOCK_BYTES) * BLOCK_BYTES,
        );
    }
    if env.functional && !dst_pat.is_empty() {
        let m = env.m;
        // Gather the source rows first (the source may be UB of this core).
        let row_bytes = (cols * s) as usize;
        let mut rows_data = vec![0u8; rows as usize * row_bytes];
        if src_space == Space::Gm {
            let off = env.gm.off(src);
            let Some(gm) = env.gm.data.as_ref() else {
                return Ok(out);
            };
            for r in 0..rows as usize {
                let so = off + r * ss as usize;
                rows_data[r * row_bytes..(r + 1) * row_bytes]
                    .copy_from_slice(&gm[so..so + row_bytes]);
            }
        } else {
            let b = env.local.buf(src_space, m);
            for r in 0..rows as usize {
                let so = src as usize + r * ss as usize;
                rows_data[r * row_bytes..(r + 1) * row_bytes]
                    .copy_from_slice(&b[so..so + row_bytes]);
            }
        }
        let l1 = env.local.buf(Space::L1, m);
        let s = s as usize;
        let c0 = c0 as usize;
        let blk = BLOCK_BYTES as usize;
        for cb in 0..(cols_c0 as usize / c0) {
            let col_base = dst as usize + cb * dst_rows as usize * blk;
            for r in 0..rows16 as usize {
                let row_dst = col_base + r * blk;
                let chunk = &mut l1[row_dst..row_dst + blk];
                chunk.fill(0);
                if r < rows as usize {
                    let c_start = cb * c0;
                    let c_end = ((cb + 1) * c0).min(cols as usize);
                    let src_row = &rows_data[r * row_bytes..(r + 1) * row_bytes];
                    chunk[..(c_end - c_start) * s]
                        .copy_from_slice(&src_row[c_start * s..c_end * s]);
                }
            }
        }
    }
    Ok(out)
}

/// Which L0 buffer an MTE1 load fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L0 {
    /// Left operand: `d1 = m1` fractal rows, `d2 = k1` fractal columns.
    A,
    /// Right operand: `d1 = k1`, `d2 = n1`.
    B,
}

/// MTE1: L1 NZ → L0A (ZZ: fractal `(fm, fk)` at `(fm * k1 + fk) * 512`) or L0B
/// (fractal `(fk, fn)` at `(fk * n1 + fn) * 512`, each 32-byte row one `n`).
#[allow(clippy::too_many_arguments)]
pub fn load_l0(
    env: &mut Env,
    which: L0,
    transpose: bool,
    dt: Dt,
    dst: u64,
    src: u64,
    d1: u64,
    d2: u64,
    stride: u64,
) -> Result<Outcome, Trap> {
    let s = dt.size();
    let c0 = BLOCK_BYTES / s;
    if d1 > 1 || d2 > 1 {
        need_block_multiple(Space::L1, "column-block stride", stride)?;
    }
    let (space, path) = match which {
        L0::A => (Space::L0a, PathId::L1ToL0a),
        L0::B => (Space::L0b, PathId::L1ToL0b),
    };
    let bytes = d1 * d2 * FRACTAL_BYTES;
    let dst_pat = Pat::run(dst, bytes);
    // Source footprint: column blocks of the L1 matrix that are read.
    let src_pat = match (which, transpose) {
        (L0::A, false) => Pat {
            addr: src,
            n: d2,
            len: d1 * FRACTAL_BYTES,
            stride,
        },
        (L0::B, false) => Pat {
            addr: src,
            n: d1,
            len: d2 * FRACTAL_BYTES,
            stride,
        },
        // A.t: L1 holds Aᵀ (rows = k, cols = m); B.t: L1 holds B (rows = k, cols = n).
        (L0::A, true) => Pat {
            addr: src,
            n: (d1 * FRACTAL_ROWS).div_ceil(c0),
            len: d2 * c0 * BLOCK_BYTES,
            stride,
        },
        (L0::B, true) => Pat {
            addr: src,
            n: (d2 * FRACTAL_ROWS).div_ceil(c0),
            len: d1 * c0 * BLOCK_BYTES,
            stride,
        },
    };
    env.check(Space::L1, &src_pat)?;
    env.check(space, &dst_pat)?;
    let mut out = Outcome {
        moved: Some((path, bytes)),
        busy: local_cycles(env, path, bytes),
        ..Default::default()
    };
    note(env, &mut out, Space::L1, src_pat, false);
    note(env, &mut out, space, dst_pat, true);
    if !env.functional || bytes == 0 {
        return Ok(out);
    }
    let m = env.m;
    let l1 = env.local.take(Space::L1, m);
    let l0 = env.local.buf(space, m);
    let (fb, blk) = (FRACTAL_BYTES as usize, BLOCK_BYTES as usize);
    let (src, dst, stride, s, c0) = (
        src as usize,
        dst as usize,
        stride as usize,
        s as usize,
        c0 as usize,
    );
    let (d1, d2) = (d1 as usize, d2 as usize);
    match (which, transpose) {
        (L0::A, false) => {
            for fm in 0..d1 {
                for fk in 0..d2 {
                    let so = src + fk * stride + fm * fb;
                    let d0 = dst + (fm * d2 + fk) * fb;
                    l0[d0..d0 + fb].copy_from_slice(&l1[so..so + fb]);
                }
            }
        }
        (L0::B, false) => {
            for fk in 0..d1 {
                for fnn in 0..d2 {
                    let so = src + fk * stride + fnn * fb;
                    let d0 = dst + (fk * d2 + fnn) * fb;
                    l0[d0..d0 + fb].copy_from_slice(&l1[so..so + fb]);
                }
            }
        }
        (L0::A, true) => {
            // A[i][kk] = Aᵀ[kk][i], Aᵀ in NZ: src + (i / C0) * S + kk * 32 + (i % C0) * s.
            for i in 0..d1 * 16 {
                for kk in 0..d2 * c0 {
                    let so = src + (i / c0) * stride + kk * blk + (i % c0) * s;
                    let d0 = dst + ((i / 16) * d2 + kk / c0) * fb + (i % 16) * blk + (kk % c0) * s;
                    l0[d0..d0 + s].copy_from_slice(&l1[so..so + s]);
                }
            }
        }
        (L0::B, true) => {
            // B[kk][j], B in NZ: src + (j / C0) * S + kk * 32 + (j % C0) * s.
            for kk in 0..d1 * c0 {
                for j in 0..d2 * 16 {
                    let so = src + (j / c0) * stride + kk * blk + (j % c0) * s;
                    let d0 = dst + ((kk / c0) * d2 + j / 16) * fb + (j % 16) * blk + (kk % c0) * s;
                    l0[d0..d0 + s].copy_from_slice(&l1[so..so + s]);
                }
            }
        }
    }
    env.local.put(Space::L1, l1);
    Ok(out)
}

/// Checks the fractal counts of an MTE1 load.
pub fn fractals(env: &Env, v: crate::isa::Val, what: &str) -> Result<u64, Trap> {
    env.count(v, what, MAX_FRACTALS)
}
