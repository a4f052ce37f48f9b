//! Element types, dims, shapes and tensor types.
//!
//! A [`Dim`] is a fixed size, a symbolic name bound later (`M`), or
//! [`Dim::Unknown`]: an extent that depends on the value of a symbolic dim in a
//! way the IR does not track (a slice of `M` starting at 2). Concrete IR — the
//! only kind that is executed or compiled — has fixed dims only.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// An element type.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// IEEE binary16.
    F16,
    /// bfloat16: f32's exponent, 8 significand bits.
    BF16,
    /// IEEE binary32.
    F32,
    /// Signed 8-bit integer.
    I8,
    /// Signed 32-bit integer.
    I32,
    /// Result of a comparison; condition of `select`.
    Bool,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 6] = [
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::I8,
        DType::I32,
        DType::Bool,
    ];

    /// The name used in source and IR text.
    pub fn name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::F32 => "f32",
            DType::I8 => "i8",
            DType::I32 => "i32",
            DType::Bool => "bool",
        }
    }

    /// Parses a dtype name.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element in memory.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I8 | DType::Bool => 1,
        }
    }

    /// `f16`, `bf16` or `f32`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32)
    }

    /// `i8` or `i32`.
    pub fn is_int(self) -> bool {
        matches!(self, DType::I8 | DType::I32)
    }

    /// Every dtype but `bool`.
    pub fn is_numeric(self) -> bool {
        self != DType::Bool
    }

    /// The inclusive range of an integer dtype.
    pub fn int_range(self) -> Option<(i64, i64)> {
        match self {
            DType::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
            DType::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
            _ => None,
        }
    }

    /// Rounds a value to this float dtype, once, to nearest with ties to
    /// even (overflow gives ±inf, NaN stays NaN). f16 and bf16 round from
    /// the f64 value directly: going through f32 first, or through the
    /// high half of the f64 as `half`'s `from_f64` does, can round twice
    /// and lose the bits that break a tie.
    pub fn round_float(self, x: f64) -> f64 {
        match self {
            DType::F16 => round_binary(x, 10, -14, 15),
            DType::BF16 => round_binary(x, 7, -126, 127),
            _ => x as f32 as f64,
        }
    }

    /// Wraps an integer into this dtype's range (two's complement).
    pub fn wrap_int(self, x: i64) -> i64 {
        match self {
            DType::I8 => x as i8 as i64,
            _ => x as i32 as i64,
        }
    }

    /// Clamps an integer into this dtype's range.
    pub fn saturate_int(self, x: i64) -> i64 {
        let (lo, hi) = self.int_range().unwrap_or((i64::MIN, i64::MAX));
        x.clamp(lo, hi)
    }

    /// Converts a float to this integer dtype: toward zero, saturating,
    /// NaN → 0.
    pub fn float_to_int(self, x: f64) -> i64 {
        if x.is_nan() {
            return 0;
        }
        let (lo, hi) = self.int_range().unwrap_or((i64::MIN, i64::MAX));
        (x.trunc().clamp(lo as f64, hi as f64)) as i64
    }

    /// The largest finite value of a float dtype.
    pub fn float_max(self) -> Option<f64> {
        match self {
            DType::F16 => Some(65504.0),
            DType::BF16 => Some(half::bf16::MAX.to_f64()),
            DType::F32 => Some(f32::MAX as f64),
            _ => None,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A symbolic dim's name.
pub type Sym = Arc<str>;

/// One dimension of a shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known extent (> 0).
    Fixed(u64),
    /// A symbolic dim of the kernel's signature, bound before code generation.
    Sym(Sym),
    /// An extent that depends on symbolic dims in a way the IR does not track.
    Unknown,
}

impl Dim {
    /// The fixed extent, if known.
    pub fn fixed(&self) -> Option<u64> {
        match self {
            Dim::Fixed(n) => Some(*n),
            _ => None,
        }
    }

    /// A symbolic dim with this name.
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(Arc::from(name))
    }

    /// Whether this dim is the fixed extent 1.
    pub fn is_one(&self) -> bool {
        *self == Dim::Fixed(1)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// Values of symbolic dims.
pub type DimEnv = BTreeMap<String, u64>;

/// The most elements a tensor type may have, 2^48: byte sizes and the
/// products of any two extents stay far inside `u64`. A larger type is a
/// shape error (`E0409`) wherever it appears.
pub const MAX_TENSOR_ELEMENTS: u64 = 1 << 48;

/// A tensor shape: its dims, outermost first. Rank 0 is a scalar.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Shape(pub Vec<Dim>);

impl Shape {
    /// A shape of fixed dims.
    pub fn fixed(dims: &[u64]) -> Shape {
        Shape(dims.iter().map(|&d| Dim::Fixed(d)).collect())
    }

    /// The rank-0 shape.
    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    /// Number of dims.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The dims.
    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// The fixed extents, if every dim is fixed.
    pub fn as_fixed(&self) -> Option<Vec<u64>> {
        self.0.iter().map(Dim::fixed).collect()
    }

    /// The fixed extents as `usize`, if every dim is fixed and fits.
    pub fn as_usize(&self) -> Option<Vec<usize>> {
        self.0
            .iter()
            .map(|d| d.fixed().and_then(|n| usize::try_from(n).ok()))
            .collect()
    }

    /// Whether every dim is fixed.
    pub fn is_concrete(&self) -> bool {
        self.0.iter().all(|d| matches!(d, Dim::Fixed(_)))
    }

    /// The product of the fixed dims, exactly, in decimal (symbolic and
    /// unknown dims count as 1): for messages about sizes past `u64`.
    pub fn product_text(&self) -> String {
        // Base-10^9 limbs, least significant first.
        let mut limbs: Vec<u64> = vec![1];
        for d in &self.0 {
            let Some(n) = d.fixed() else { continue };
            let mut carry: u128 = 0;
            for l in &mut limbs {
                let v = u128::from(*l) * u128::from(n) + carry;
                *l = (v % 1_000_000_000) as u64;
                carry = v / 1_000_000_000;
            }
            while carry > 0 {
                limbs.push((carry % 1_000_000_000) as u64);
                carry /= 1_000_000_000;
            }
        }
        let mut s = limbs.last().map(u64::to_string).unwrap_or_default();
        for l in limbs.iter().rev().skip(1) {
            s.push_str(&format!("{l:09}"));
        }
        s
    }

    /// Whether the fixed dims' product is above [`MAX_TENSOR_ELEMENTS`]
    /// (or overflows `u64`).
    pub fn too_large(&self) -> bool {
        self.0
            .iter()
            .filter_map(Dim::fixed)
            .try_fold(1u64, |acc, n| acc.checked_mul(n))
            .is_none_or(|n| n > MAX_TENSOR_ELEMENTS)
    }

    /// The element count, if every dim is fixed and the product fits in `u64`.
    pub fn num_elements(&self) -> Option<u64> {
        self.0
            .iter()
            .try_fold(1u64, |acc, d| acc.checked_mul(d.fixed()?))
    }

    /// Replaces every symbolic dim bound in `env` by its value.
    pub fn substitute(&self, env: &DimEnv) -> Shape {
        Shape(
            self.0
                .iter()
                .map(|d| match d {
                    Dim::Sym(s) => env.get(&**s).map_or_else(|| d.clone(), |&n| Dim::Fixed(n)),
                    other => other.clone(),
                })
                .collect(),
        )
    }

    /// The symbolic dims mentioned, in order of first appearance.
    pub fn symbols(&self) -> Vec<Sym> {
        let mut out: Vec<Sym> = Vec::new();
        for d in &self.0 {
            if let Dim::Sym(s) = d
                && !out.contains(s)
            {
                out.push(s.clone());
            }
        }
        out
    }

    /// The element count as a product of a constant and symbols, if no dim is
    /// [`Dim::Unknown`] and the constant fits.
    pub fn volume(&self) -> Option<Volume> {
        let mut v = Volume {
            factor: 1,
            syms: Vec::new(),
        };
        for d in &self.0 {
            match d {
                Dim::Fixed(n) => v.factor = v.factor.checked_mul(*n)?,
                Dim::Sym(s) => v.syms.push(s.clone()),
                Dim::Unknown => return None,
            }
        }
        v.syms.sort();
        Some(v)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

/// An element count written as `factor · product(syms)`, for comparing the
/// sizes of symbolic shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// The product of the fixed dims.
    pub factor: u64,
    /// The symbolic dims, sorted (a multiset).
    pub syms: Vec<Sym>,
}

impl Volume {
    /// `self / other`, if it is again such a product.
    pub fn divide(&self, other: &Volume) -> Option<Volume> {
        if other.factor == 0 || !self.factor.is_multiple_of(other.factor) {
            return None;
        }
        let mut syms = self.syms.clone();
        for s in &other.syms {
            let at = syms.iter().position(|x| x == s)?;
            syms.remove(at);
        }
        Some(Volume {
            factor: self.factor / other.factor,
            syms,
        })
    }

    /// Whether a binding of the symbols (each a positive integer) may make
    /// the two counts equal; `false` only where none can. After the symbols
    /// both have cancel, two constants must be equal, and a constant and
    /// symbols need the constant to be a multiple of the other side's
    /// factor (both exact). Symbols left on both sides answer `true` (`S·D`
    /// and `S·H·E`: `D = H·E`), also the rare products no binding equates
    /// (`N·N` and `2·M·M`): the check made once the dims are bound decides.
    pub fn may_equal(&self, other: &Volume) -> bool {
        let mut rest = other.syms.clone();
        let mut mine = Vec::new();
        for s in &self.syms {
            match rest.iter().position(|x| x == s) {
                Some(at) => {
                    rest.remove(at);
                }
                None => mine.push(s),
            }
        }
        match (mine.is_empty(), rest.is_empty()) {
            (true, true) => self.factor == other.factor,
            (true, false) => self.factor.is_multiple_of(other.factor),
            (false, true) => other.factor.is_multiple_of(self.factor),
            (false, false) => true,
        }
    }

    /// The single dim this volume is, if it is one (`4`, or `M` with factor 1).
    pub fn as_dim(&self) -> Option<Dim> {
        match (self.factor, self.syms.as_slice()) {
            (n, []) => Some(Dim::Fixed(n)),
            (1, [s]) => Some(Dim::Sym(s.clone())),
            _ => None,
        }
    }
}

/// The type of a tensor value: dtype and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Shape,
}

impl TensorType {
    /// A tensor type.
    pub fn new(dtype: DType, shape: Shape) -> TensorType {
        TensorType { dtype, shape }
    }

    /// A rank-0 tensor type.
    pub fn scalar(dtype: DType) -> TensorType {
        TensorType::new(dtype, Shape::scalar())
    }

    /// Replaces bound symbolic dims.
    pub fn substitute(&self, env: &DimEnv) -> TensorType {
        TensorType::new(self.dtype, self.shape.substitute(env))
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.dtype, self.shape)
    }
}

/// Broadcasts two shapes as numpy does: aligned from the right, a dim of 1
/// stretches, otherwise dims must be equal. An unknown dim meets anything.
pub fn broadcast_shapes(a: &Shape, b: &Shape) -> Option<Shape> {
    let rank = a.rank().max(b.rank());
    let mut out = Vec::with_capacity(rank);
    for i in 0..rank {
        let da = i
            .checked_sub(rank - a.rank())
            .map_or(Dim::Fixed(1), |j| a.0[j].clone());
        let db = i
            .checked_sub(rank - b.rank())
            .map_or(Dim::Fixed(1), |j| b.0[j].clone());
        let d = if da == db || db.is_one() {
            da
        } else if da.is_one() {
            db
        } else if da == Dim::Unknown || db == Dim::Unknown {
            Dim::Unknown
        } else {
            return None;
        };
        out.push(d);
    }
    Some(Shape(out))
}

/// `x` rounded to nearest, ties to even, in a binary format with `mant`
/// fraction bits and exponents `emin..=emax` (subnormals below `emin`,
/// ±inf past the largest finite value). Exact: scaling by powers of two and
/// `round_ties_even` lose nothing in f64 for formats of at most 24 bits.
pub fn round_binary(x: f64, mant: i32, emin: i32, emax: i32) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // The exponent of |x| (an f64 subnormal is far below any such format).
    let e = ((x.to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let q = e.max(emin) - mant; // the exponent of the result's ulp
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

#[cfg(test)]
mod tests {

    #[test]
    fn value_conversions_round_wrap_and_saturate() {
        // 1 + 2^-11 is halfway between two f16 values: ties to even (1.0).
        assert_eq!(DType::F16.round_float(1.0 + 2f64.powi(-11)), 1.0);
        assert_eq!(DType::F16.round_float(70000.0), f64::INFINITY);
        assert_eq!(DType::I8.float_to_int(300.7), 127);
        assert_eq!(DType::I32.float_to_int(-2.9), -2);
        assert_eq!(DType::I32.float_to_int(f64::NAN), 0);
        assert_eq!(DType::I8.saturate_int(-1000), -128);
        assert_eq!(DType::I8.wrap_int(200), -56);
    }

    use super::*;

    #[test]
    fn broadcast_follows_numpy() {
        let s = |d: &[u64]| Shape::fixed(d);
        assert_eq!(broadcast_shapes(&s(&[4, 1]), &s(&[3])), Some(s(&[4, 3])));
        assert_eq!(
            broadcast_shapes(&s(&[2, 1, 5]), &s(&[7, 1])),
            Some(s(&[2, 7, 5]))
        );
        assert_eq!(broadcast_shapes(&s(&[]), &s(&[3])), Some(s(&[3])));
        assert_eq!(broadcast_shapes(&s(&[4, 3]), &s(&[4])), None);
        let m = Shape(vec![Dim::sym("M"), Dim::Fixed(1)]);
        let n = Shape(vec![Dim::sym("N")]);
        assert_eq!(
            broadcast_shapes(&m, &n),
            Some(Shape(vec![Dim::sym("M"), Dim::sym("N")]))
        );
        assert_eq!(broadcast_shapes(&n, &Shape(vec![Dim::sym("M")])), None);
    }

    #[test]
    fn volumes_divide_symbolically() {
        let a = Shape(vec![Dim::sym("M"), Dim::Fixed(8)]).volume().unwrap();
        let b = Shape(vec![Dim::Fixed(2)]).volume().unwrap();
        let q = a.divide(&b).unwrap();
        assert_eq!(q.factor, 4);
        assert_eq!(q.syms.len(), 1);
        assert!(
            Shape(vec![Dim::Fixed(3)])
                .volume()
                .unwrap()
                .divide(&b)
                .is_none()
        );
    }
}
