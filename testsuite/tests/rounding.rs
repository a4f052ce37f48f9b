//! Narrowing float conversions against a bit-level reference written from
//! IEEE 754 (round to nearest, ties to even), for the reference
//! interpreter (`DType::round_float`) and the simulator
//! (`exec::numeric::round64`, every cast and f64 write): every pattern of
//! the bits f16 and bf16 drop, under high parts that cover each class
//! (zero and subnormal exponents, the binades where f16 turns subnormal or
//! overflows, the largest finite values, both signs), and f64 values whose
//! deciding bits lie below f32's precision.

use tessera_ir::DType;
use tessera_sim::exec::numeric::round64;
use tessera_sim::isa::Dt;

/// f32 bits → bf16 bits: keep the high 16 bits, add one when the dropped
/// 16 are above half, or exactly half with the kept part odd. A carry runs
/// into the exponent (the next binade, or inf). NaN stays a quiet NaN.
fn bf16_ref(x: u32) -> u16 {
    if x & 0x7fff_ffff > 0x7f80_0000 {
        return ((x >> 16) | 0x40) as u16;
    }
    let (hi, lo) = (x >> 16, x & 0xffff);
    (hi + u32::from(lo > 0x8000 || (lo == 0x8000 && hi & 1 == 1))) as u16
}

/// f32 bits → f16 bits, from the definition: the exact value is a
/// significand `m` (24 bits with the hidden one) times `2^(e − 150)`; the
/// f16 result is a multiple of `2^(max(e16, −14) − 10)`.
fn f16_ref(x: u32) -> u16 {
    let sign = ((x >> 16) & 0x8000) as u16;
    let exp = ((x >> 23) & 0xff) as i32;
    let frac = x & 0x7f_ffff;
    if exp == 0xff {
        return sign
            | if frac == 0 {
                0x7c00
            } else {
                0x7e00 | (frac >> 13) as u16
            };
    }
    if exp == 0 && frac == 0 {
        return sign;
    }
    // value = m · 2^(k), m < 2^24.
    let (m, k) = if exp == 0 {
        (u64::from(frac), -149)
    } else {
        (u64::from(frac | 0x80_0000), exp - 150)
    };
    // The unbiased exponent of the value, and of the f16 ulp there.
    let e = 63 - m.leading_zeros() as i32 + k;
    let q = e.max(-14) - 10;
    // Units of 2^q: m · 2^(k − q), rounded to nearest even.
    let shift = q - k;
    let n = if shift <= 0 {
        m << (-shift)
    } else if shift >= 64 {
        0
    } else {
        let (int, rem) = (m >> shift, m & ((1u64 << shift) - 1));
        let half = 1u64 << (shift - 1);
        int + u64::from(rem > half || (rem == half && int & 1 == 1))
    };
    // n · 2^q as f16 bits: subnormal when q = −24 and n < 2^10.
    if n == 0 {
        return sign;
    }
    let mut n = n;
    let mut q = q;
    while n >= 1 << 11 {
        // a carry into the next binade
        n >>= 1;
        q += 1;
    }
    if q == -24 && n < 1 << 10 {
        return sign | n as u16;
    }
    let biased = q + 10 + 15;
    if biased >= 31 {
        return sign | 0x7c00;
    }
    sign | ((biased as u16) << 10) | (n as u16 & 0x3ff)
}

fn f16_value(b: u16) -> f64 {
    let sign = if b & 0x8000 != 0 { -1.0 } else { 1.0 };
    let (e, f) = (i32::from((b >> 10) & 0x1f), f64::from(b & 0x3ff));
    sign * match e {
        0 => f * 2f64.powi(-24),
        31 if f == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1024.0 + f) * 2f64.powi(e - 25),
    }
}

fn bf16_value(b: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(b) << 16))
}

/// High parts: sign × exponents of every class × a few significand tops.
fn patterns(low_bits: u32) -> Vec<u32> {
    let exps = [
        0u32, 1, 2, 100, 101, 102, 103, 111, 112, 113, 126, 127, 128, 142, 143, 144, 200, 253, 254,
    ];
    let tops = [0u32, 1, 0x7f, 0x80, 0x3ff, 0x555, 0x7fe, 0x7ff];
    let mut out = Vec::new();
    for sign in [0u32, 1] {
        for &e in &exps {
            for &t in &tops {
                let frac_hi = (t << low_bits) & 0x7f_ffff;
                for low in 0..(1u32 << low_bits) {
                    out.push((sign << 31) | (e << 23) | frac_hi | low);
                }
            }
        }
    }
    out
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Both the reference interpreter and the simulator round the f32 `x` to
/// `want`.
fn both_round(x: u32, d: DType, dt: Dt, want: f64) {
    let v = f64::from(f32::from_bits(x));
    let ir = d.round_float(v);
    let sim = f64::from(round64(dt, v));
    assert!(same(ir, want), "ir: {x:#010x} -> {ir} (want {want})");
    assert!(same(sim, want), "sim: {x:#010x} -> {sim} (want {want})");
}

#[test]
fn f32_to_bf16_rounds_to_nearest_even_on_every_dropped_pattern() {
    let mut checked = 0;
    for x in patterns(16) {
        both_round(x, DType::BF16, Dt::Bf16, bf16_value(bf16_ref(x)));
        checked += 1;
    }
    assert!(checked > 1_000_000);
}

#[test]
fn f32_to_f16_rounds_to_nearest_even_on_every_dropped_pattern() {
    for x in patterns(13) {
        both_round(x, DType::F16, Dt::F16, f16_value(f16_ref(x)));
    }
    // The f16 subnormal range in full: its values need up to 24 dropped bits.
    for e in 100u32..=113 {
        for frac in (0..1u32 << 23).step_by(97) {
            let x = (e << 23) | frac;
            both_round(x, DType::F16, Dt::F16, f16_value(f16_ref(x)));
        }
    }
}

/// An f64 just above or below a tie of the narrow format: the deciding bit
/// lies below f32's precision, so rounding through f32 first (or through
/// the f64's high half) gets it wrong.
#[test]
fn f64_values_round_once_not_through_f32() {
    let cases: [(DType, Dt, f64, f64); 6] = [
        // 1 + 2^-8 is a bf16 tie (between 1 and 1 + 2^-7); a hair above
        // rounds up, a hair below rounds down.
        (
            DType::BF16,
            Dt::Bf16,
            1.0 + 2f64.powi(-8) + 2f64.powi(-40),
            1.0 + 2f64.powi(-7),
        ),
        (
            DType::BF16,
            Dt::Bf16,
            1.0 + 2f64.powi(-8) - 2f64.powi(-40),
            1.0,
        ),
        (DType::BF16, Dt::Bf16, 1.0 + 2f64.powi(-8), 1.0),
        // f16: 1 + 2^-11 is a tie.
        (
            DType::F16,
            Dt::F16,
            1.0 + 2f64.powi(-11) + 2f64.powi(-45),
            1.0 + 2f64.powi(-10),
        ),
        (
            DType::F16,
            Dt::F16,
            1.0 + 2f64.powi(-11) - 2f64.powi(-45),
            1.0,
        ),
        // The f32 → bf16 repro: bits 0x3F808005 round up.
        (
            DType::BF16,
            Dt::Bf16,
            f64::from(f32::from_bits(0x3F80_8005)),
            1.0078125,
        ),
    ];
    for (d, dt, x, want) in cases {
        assert_eq!(d.round_float(x), want, "{d:?} {x}");
        assert_eq!(f64::from(round64(dt, x)), want, "{dt:?} {x}");
    }
    // Overflow: the largest finite value plus half an ulp rounds to inf.
    assert_eq!(DType::F16.round_float(65520.0), f64::INFINITY);
    assert_eq!(DType::F16.round_float(65519.99), 65504.0);
    assert_eq!(f64::from(round64(Dt::F16, 65520.0)), f64::INFINITY);
}
