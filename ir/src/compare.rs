//! Comparing a result with the reference under the tolerances of
//! language.md, "Numeric semantics".
//!
//! | dtype | bound on `|got - ref|` |
//! | --- | --- |
//! | f32, elementwise | `1e-5 + 1e-4·|ref|` |
//! | f32, after a reduction or matmul | `1e-4 + 1e-3·|ref|` |
//! | f16 | `1e-3 + 1e-2·|ref|` |
//! | bf16 | `1e-2 + 2e-2·|ref|` |
//! | integers, bool | exact |
//!
//! NaN matches NaN and an infinity matches the same infinity.

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
    /// The spec's tolerance for an output of `dtype`; `accumulated` says
    /// whether it depends on a reduction or matmul.
    pub fn for_output(dtype: DType, accumulated: bool) -> Tolerance {
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

/// How far a result is from the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Largest `|got - ref|` (over finite pairs).
    pub max_abs: f64,
    /// Largest `|got - ref| / |ref|` (over finite pairs with `ref != 0`).
    pub max_rel: f64,
    /// Elements outside the tolerance.
    pub mismatches: usize,
    /// The first mismatch: (flat index, got, reference).
    pub first_mismatch: Option<(usize, f64, f64)>,
    /// Whether the shapes and dtypes agree.
    pub same_type: bool,
}

impl Comparison {
    /// Whether every element is within tolerance.
    pub fn ok(&self) -> bool {
        self.same_type && self.mismatches == 0
    }
}

/// Compares `got` with `reference` element by element.
pub fn compare(got: &Tensor, reference: &Tensor, tol: Tolerance) -> Comparison {
    let mut c = Comparison {
        max_abs: 0.0,
        max_rel: 0.0,
        mismatches: 0,
        first_mismatch: None,
        same_type: got.dtype == reference.dtype
            && got.shape == reference.shape
            && got.len() == reference.len(),
    };
    if !c.same_type {
        return c;
    }
    for i in 0..got.len() {
        let (g, r) = (got.get_f64(i), reference.get_f64(i));
        let ok = if g.is_nan() || r.is_nan() {
            g.is_nan() && r.is_nan()
        } else if g.is_infinite() || r.is_infinite() {
            g == r
        } else {
            let d = (g - r).abs();
            c.max_abs = c.max_abs.max(d);
            if r != 0.0 {
                c.max_rel = c.max_rel.max(d / r.abs());
            }
            d <= tol.atol + tol.rtol * r.abs()
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
        let tol = Tolerance::for_output(DType::F32, false);
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
        let tol = Tolerance::for_output(DType::F32, false);
        let a = Tensor::from_f64(DType::F32, vec![3], vec![f64::NAN, f64::INFINITY, 0.0]);
        assert!(compare(&a, &a.clone(), tol).ok());
        let b = Tensor::from_f64(DType::F32, vec![3], vec![0.0, f64::INFINITY, 0.0]);
        assert!(!compare(&a, &b, tol).ok());
    }

    #[test]
    fn integers_are_exact() {
        let tol = Tolerance::for_output(DType::I32, true);
        let a = Tensor::from_f64(DType::I32, vec![1], vec![5.0]);
        let b = Tensor::from_f64(DType::I32, vec![1], vec![6.0]);
        assert!(!compare(&a, &b, tol).ok());
    }
}
