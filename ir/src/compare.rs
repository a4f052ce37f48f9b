//! Comparing a result with the reference under the rules of language.md,
//! "Numeric semantics" ([`Rule`]):
//!
//! - **exact**, bit for bit (any NaN matches any NaN; `-0` is not `+0`):
//!   integers and bools, and floats computed only by correctly rounded ops
//!   (`+ - * /`, `sqrt`, `abs`, negation, `maximum`/`minimum`, comparisons,
//!   `select`, `cast`, layout ops) with no reduction or matmul upstream;
//! - **a tolerance** `|got − ref| ≤ atol + rtol·|ref|` otherwise:
//!
//! | dtype | `atol`, `rtol` |
//! | --- | --- |
//! | f32, elementwise | `1e-5`, `1e-4` |
//! | f32, after a reduction or matmul | `1e-4`, `1e-3` |
//! | f16 | `1e-3`, `1e-2` |
//! | bf16 | `1e-2`, `2e-2` |
//!
//! and once a reduction or matmul is upstream, `atol` scales with the
//! output's magnitude: `atol · max(1, max|ref|)` over the output (a
//! rounding flip in a narrow intermediate carries into later sums).
//! NaN matches NaN and an infinity matches the same infinity.

use crate::graph::{Kernel, Upstream, Value};
use crate::tensor::Tensor;
use crate::types::DType;

/// `|d| <= atol + rtol·|ref|`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Tolerance {
    /// Absolute part.
    pub atol: f64,
    /// Relative part.
    pub rtol: f64,
}

impl Tolerance {
    /// The spec's tolerance for a float output of `dtype`; `accumulated`
    /// says whether it depends on a reduction or matmul.
    pub fn for_dtype(dtype: DType, accumulated: bool) -> Tolerance {
        let (atol, rtol) = match dtype {
            DType::F32 if accumulated => (1e-4, 1e-3),
            DType::F32 => (1e-5, 1e-4),
            DType::F16 => (1e-3, 1e-2),
            DType::BF16 => (1e-2, 2e-2),
            DType::I8 | DType::I32 | DType::Bool => (0.0, 0.0),
        };
        Tolerance { atol, rtol }
    }
}

/// How one output is judged.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Rule {
    /// Bit for bit (NaN matches NaN).
    Exact,
    /// Within a tolerance.
    Within(Tolerance),
    /// Within a tolerance whose `atol` is scaled by `max(1, max|ref|)`
    /// (a reduction or matmul upstream).
    Scaled(Tolerance),
}

impl Rule {
    /// The rule for an output of `dtype` computed through `upstream`.
    pub fn new(dtype: DType, upstream: Upstream) -> Rule {
        if !dtype.is_float() {
            return Rule::Exact;
        }
        match upstream {
            Upstream::Exact => Rule::Exact,
            Upstream::Rounded => Rule::Within(Tolerance::for_dtype(dtype, false)),
            Upstream::Accumulated => Rule::Scaled(Tolerance::for_dtype(dtype, true)),
        }
    }

    /// The rule for `kernel`'s value `v`.
    pub fn for_value(kernel: &Kernel, v: Value) -> Rule {
        Rule::new(kernel.ty(v).dtype, kernel.upstream(v))
    }

    /// The rule as `run --check` prints it, with `atol` as applied to a
    /// reference whose largest finite magnitude is `max_ref`.
    pub fn describe(&self, max_ref: f64) -> String {
        match self {
            Rule::Exact => "exact: bit for bit".to_string(),
            Rule::Within(t) => format!("tolerance {:.0e} + {:.0e}·|ref|", t.atol, t.rtol),
            Rule::Scaled(t) => format!(
                "tolerance {:.0e}·max(1, max|ref| = {}) + {:.0e}·|ref|, after a reduction or matmul",
                t.atol,
                fmt_short(max_ref),
                t.rtol
            ),
        }
    }
}

fn fmt_short(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e5 || x.abs() < 1e-3) {
        format!("{x:.3e}")
    } else {
        format!("{}", (x * 1000.0).round() / 1000.0)
    }
}

/// How far a result is from the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Largest `|got - ref|` (inf when a NaN or infinity is not matched).
    pub max_abs: f64,
    /// Largest `|got - ref| / |ref|` (over finite pairs with `ref != 0`).
    pub max_rel: f64,
    /// Largest finite `|ref|` (what a scaled `atol` is scaled by).
    pub max_ref: f64,
    /// Elements outside the rule.
    pub mismatches: usize,
    /// The first mismatch: (flat index, got, reference).
    pub first_mismatch: Option<(usize, f64, f64)>,
    /// Whether the shapes and dtypes agree.
    pub same_type: bool,
}

impl Comparison {
    /// Whether every element is within the rule.
    pub fn ok(&self) -> bool {
        self.same_type && self.mismatches == 0
    }
}

/// Compares `got` with `reference` element by element under `rule`.
pub fn compare(got: &Tensor, reference: &Tensor, rule: Rule) -> Comparison {
    let mut c = Comparison {
        max_abs: 0.0,
        max_rel: 0.0,
        max_ref: 0.0,
        mismatches: 0,
        first_mismatch: None,
        same_type: got.dtype == reference.dtype
            && got.shape == reference.shape
            && got.len() == reference.len(),
    };
    if !c.same_type {
        return c;
    }
    c.max_ref = (0..reference.len())
        .map(|i| reference.get_f64(i).abs())
        .filter(|r| r.is_finite())
        .fold(0.0, f64::max);
    let (atol, rtol) = match rule {
        Rule::Exact => (0.0, 0.0),
        Rule::Within(t) => (t.atol, t.rtol),
        Rule::Scaled(t) => (t.atol * c.max_ref.max(1.0), t.rtol),
    };
    for i in 0..got.len() {
        let (g, r) = (got.get_f64(i), reference.get_f64(i));
        let ok = if !g.is_finite() || !r.is_finite() {
            let same = (g.is_nan() && r.is_nan()) || g == r;
            if !same {
                // NaN against a number, or an infinity against anything
                // else: as far off as it gets.
                c.max_abs = f64::INFINITY;
                c.max_rel = f64::INFINITY;
            }
            same
        } else {
            let d = (g - r).abs();
            c.max_abs = c.max_abs.max(d);
            if r != 0.0 {
                c.max_rel = c.max_rel.max(d / r.abs());
            }
            match rule {
                Rule::Exact => g.to_bits() == r.to_bits(),
                Rule::Within(_) | Rule::Scaled(_) => d <= atol + rtol * r.abs(),
            }
        };
        if !ok {
            c.mismatches += 1;
            if c.first_mismatch.is_none() {
                c.first_mismatch = Some((i, g, r));
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_spec() {
        let tol = Rule::Within(Tolerance::for_dtype(DType::F32, false));
        let r = Tensor::from_f64(DType::F32, vec![2], vec![1.0, 100.0]);
        // 1e-5 + 1e-4·100 = 0.01001 allows 100.01 but not 100.02.
        let ok = Tensor::from_f64(DType::F32, vec![2], vec![1.0, 100.01]);
        let bad = Tensor::from_f64(DType::F32, vec![2], vec![1.0, 100.02]);
        assert!(compare(&ok, &r, tol).ok());
        let c = compare(&bad, &r, tol);
        assert_eq!(c.mismatches, 1);
        assert_eq!(c.first_mismatch.map(|m| m.0), Some(1));
    }

    #[test]
    fn nan_and_inf_match_themselves() {
        let tol = Rule::Within(Tolerance::for_dtype(DType::F32, false));
        let a = Tensor::from_f64(DType::F32, vec![3], vec![f64::NAN, f64::INFINITY, 0.0]);
        assert!(compare(&a, &a.clone(), tol).ok());
        let b = Tensor::from_f64(DType::F32, vec![3], vec![0.0, f64::INFINITY, 0.0]);
        assert!(!compare(&a, &b, tol).ok());
    }

    #[test]
    fn nan_against_an_infinity_is_an_infinite_error() {
        // It once printed "max abs err 0.000e0 ... MISMATCH".
        let nan = Tensor::from_f64(DType::F32, vec![1], vec![f64::NAN]);
        let neg_inf = Tensor::from_f64(DType::F32, vec![1], vec![f64::NEG_INFINITY]);
        for rule in [
            Rule::Exact,
            Rule::Within(Tolerance::for_dtype(DType::F32, false)),
        ] {
            let c = compare(&nan, &neg_inf, rule);
            assert_eq!(c.mismatches, 1);
            assert_eq!((c.max_abs, c.max_rel), (f64::INFINITY, f64::INFINITY));
        }
    }

    #[test]
    fn exact_outputs_compare_bits() {
        let a = Tensor::from_f64(DType::BF16, vec![2], vec![1.0, 0.0]);
        let one_ulp = Tensor::from_f64(DType::BF16, vec![2], vec![1.0078125, 0.0]);
        let neg_zero = Tensor::from_f64(DType::BF16, vec![2], vec![1.0, -0.0]);
        assert!(compare(&a, &a.clone(), Rule::Exact).ok());
        // Within bf16's tolerance, but not exact.
        let bf16 = Rule::Within(Tolerance::for_dtype(DType::BF16, false));
        assert!(compare(&one_ulp, &a, bf16).ok());
        assert_eq!(compare(&one_ulp, &a, Rule::Exact).mismatches, 1);
        assert_eq!(compare(&neg_zero, &a, Rule::Exact).mismatches, 1);
    }

    #[test]
    fn a_scaled_atol_grows_with_the_largest_reference() {
        // atol 1e-3 · max(1, 200) = 0.2 (+ 1e-2·|ref|): 0.125 off at a
        // reference of 0.5 passes scaled, fails unscaled.
        let t = Tolerance::for_dtype(DType::F16, true);
        let r = Tensor::from_f64(DType::F16, vec![2], vec![0.5, 200.0]);
        let g = Tensor::from_f64(DType::F16, vec![2], vec![0.625, 200.0]);
        assert!(compare(&g, &r, Rule::Scaled(t)).ok());
        assert!(!compare(&g, &r, Rule::Within(t)).ok());
        assert_eq!(compare(&g, &r, Rule::Scaled(t)).max_ref, 200.0);
    }

    #[test]
    fn the_rule_follows_what_is_upstream() {
        let k = crate::text::parse_module(
            "kernel k(%a: f16[4], %b: f16[4, 4]) -> (x: f16[4], y: f16[4], z: f16[4], w: i32[4]) {
               %0 = add %a, %a : f16[4]
               %1 = exp %0 : f16[4]
               %2 = sum %b axes=[1] : f16[4]
               %3 = cast %1 : i32[4]
               return %0, %1, %2, %3
             }",
        )
        .expect("IR")
        .kernels
        .remove(0);
        let rule = |i: usize| Rule::for_value(&k, k.outputs[i].value);
        assert_eq!(rule(0), Rule::Exact);
        assert_eq!(
            rule(1),
            Rule::Within(Tolerance::for_dtype(DType::F16, false))
        );
        assert_eq!(
            rule(2),
            Rule::Scaled(Tolerance::for_dtype(DType::F16, true))
        );
        assert_eq!(rule(3), Rule::Exact);
    }

    #[test]
    fn integers_are_exact() {
        let tol = Rule::new(DType::I32, Upstream::Accumulated);
        let a = Tensor::from_f64(DType::I32, vec![1], vec![5.0]);
        let b = Tensor::from_f64(DType::I32, vec![1], vec![6.0]);
        assert!(!compare(&a, &b, tol).ok());
    }
}
