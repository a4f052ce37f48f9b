//! Element reads, writes and conversions for every dtype.
//!
//! Rules (docs/assembly.md, "Numerics"): f16/bf16 arithmetic computes in f32
//! and rounds once to nearest-even; conversions go through an exact f64 (or
//! i64) value and round once; float → int truncates toward zero and saturates
//! (NaN → 0); int → narrower int saturates; anything → b8 is `x != 0`.

use crate::isa::Dt;
use half::{bf16, f16};

/// Reads an element as f64 (exact for every dtype).
#[inline]
pub fn read_f64(mem: &[u8], off: usize, dt: Dt) -> f64 {
    match dt {
        Dt::F16 => f16::from_bits(u16::from_le_bytes([mem[off], mem[off + 1]])).to_f64(),
        Dt::Bf16 => bf16::from_bits(u16::from_le_bytes([mem[off], mem[off + 1]])).to_f64(),
        Dt::F32 => f64::from(f32::from_le_bytes([
            mem[off],
            mem[off + 1],
            mem[off + 2],
            mem[off + 3],
        ])),
        Dt::I32 => f64::from(i32::from_le_bytes([
            mem[off],
            mem[off + 1],
            mem[off + 2],
            mem[off + 3],
        ])),
        Dt::I8 => f64::from(mem[off] as i8),
        Dt::B8 => f64::from(u8::from(mem[off] != 0)),
    }
}

/// Reads a float element as f32 (integers convert).
#[inline]
pub fn read_f32(mem: &[u8], off: usize, dt: Dt) -> f32 {
    match dt {
        Dt::F16 => f16::from_bits(u16::from_le_bytes([mem[off], mem[off + 1]])).to_f32(),
        Dt::Bf16 => bf16::from_bits(u16::from_le_bytes([mem[off], mem[off + 1]])).to_f32(),
        Dt::F32 => f32::from_le_bytes([mem[off], mem[off + 1], mem[off + 2], mem[off + 3]]),
        _ => read_f64(mem, off, dt) as f32,
    }
}

/// Reads an integer element (floats truncate).
#[inline]
pub fn read_i64(mem: &[u8], off: usize, dt: Dt) -> i64 {
    match dt {
        Dt::I32 => i64::from(i32::from_le_bytes([
            mem[off],
            mem[off + 1],
            mem[off + 2],
            mem[off + 3],
        ])),
        Dt::I8 => i64::from(mem[off] as i8),
        Dt::B8 => i64::from(mem[off] != 0),
        _ => read_f64(mem, off, dt) as i64,
    }
}

/// Writes an f32 to a float element, rounding to nearest-even.
#[inline]
pub fn write_f32(mem: &mut [u8], off: usize, dt: Dt, v: f32) {
    match dt {
        Dt::F16 => mem[off..off + 2].copy_from_slice(&f16::from_f32(v).to_bits().to_le_bytes()),
        Dt::Bf16 => mem[off..off + 2].copy_from_slice(&bf16::from_f32(v).to_bits().to_le_bytes()),
        Dt::F32 => mem[off..off + 4].copy_from_slice(&v.to_le_bytes()),
        _ => write_cast(mem, off, dt, f64::from(v)),
    }
}

/// Writes an integer, wrapping to the element width.
#[inline]
pub fn write_wrap(mem: &mut [u8], off: usize, dt: Dt, v: i64) {
    match dt {
        Dt::I32 => mem[off..off + 4].copy_from_slice(&(v as i32).to_le_bytes()),
        Dt::I8 => mem[off] = v as i8 as u8,
        Dt::B8 => mem[off] = u8::from(v != 0),
        _ => write_cast(mem, off, dt, v as f64),
    }
}

/// Writes an exact value with conversion semantics (round once; saturate; `!= 0` for b8).
#[inline]
pub fn write_cast(mem: &mut [u8], off: usize, dt: Dt, v: f64) {
    match dt {
        Dt::F16 | Dt::Bf16 | Dt::F32 => write_f32(mem, off, dt, round64(dt, v)),
        Dt::I32 => mem[off..off + 4].copy_from_slice(&(v as i32).to_le_bytes()),
        Dt::I8 => mem[off] = (v as i8) as u8,
        Dt::B8 => mem[off] = u8::from(v != 0.0),
    }
}

/// Rounds an f32 to `dt`'s precision (f16/bf16), returning it as f32.
#[inline]
pub fn round_to(dt: Dt, v: f32) -> f32 {
    match dt {
        Dt::F16 => f16::from_f32(v).to_f32(),
        Dt::Bf16 => bf16::from_f32(v).to_f32(),
        _ => v,
    }
}

/// Rounds an f64 to `dt` (f16/bf16/f32) once, to nearest with ties to
/// even, returning f32. f16 and bf16 round from the f64 directly: through
/// f32 first, or through the high half of the f64 as `half`'s `from_f64`
/// does, a tie could be broken on lost bits.
#[inline]
pub fn round64(dt: Dt, v: f64) -> f32 {
    match dt {
        Dt::F16 => round_binary(v, 10, -14, 15) as f32,
        Dt::Bf16 => round_binary(v, 7, -126, 127) as f32,
        _ => v as f32,
    }
}

/// `x` rounded to nearest, ties to even, in a binary format with `mant`
/// fraction bits and exponents `emin..=emax` (subnormals below `emin`,
/// ±inf past the largest finite value); exact in f64 for formats of at most
/// 24 bits. (The reference interpreter has its own copy in `tessera-ir`;
/// this crate depends on none.)
pub fn round_binary(x: f64, mant: i32, emin: i32, emax: i32) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let e = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let q = e.max(emin) - mant;
    let r = (x * pow2(-q)).round_ties_even() * pow2(q);
    let max = (2.0 - pow2(-mant)) * pow2(emax);
    if r.abs() > max {
        r.signum() * f64::INFINITY
    } else {
        r
    }
}

/// `2^e` for `e` in f64's normal range.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `max(a, b)`, NaN when either is NaN, +0 above −0 (the ISA's float max:
/// IEEE 754-2019 maximum).
#[inline]
pub fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        f32::from_bits(a.to_bits() & b.to_bits())
    } else {
        a.max(b)
    }
}

/// `min(a, b)`, NaN when either is NaN, −0 below +0 (the ISA's float min:
/// IEEE 754-2019 minimum).
#[inline]
pub fn min_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a == b {
        f32::from_bits(a.to_bits() | b.to_bits())
    } else {
        a.min(b)
    }
}
