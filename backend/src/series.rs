//! Series near 0 that both backends' composites use where a closed form
//! loses the relative accuracy of small values (`tanh`'s `1 − e^{−2a}`
//! cancels; `erf`'s Abramowitz–Stegun form bounds only the absolute error).
//! Below [`SERIES_BELOW`] the value is `a·k·(1 + c₁u + c₂u² + c₃u³ + c₄u⁴)`,
//! `u = a²`; the next term is under 1e-8 of the value there.

/// Below this |x|, `tanh` and `erf` take their series.
pub const SERIES_BELOW: f64 = 0.25;
/// tanh(a)/a = 1 + Σ cₖ·a²ᵏ, k = 1…4 (k = 1).
pub const TANH_SERIES: [f64; 4] = [-1.0 / 3.0, 2.0 / 15.0, -17.0 / 315.0, 62.0 / 2835.0];
/// erf(a)·√π/(2a) = 1 + Σ cₖ·a²ᵏ, k = 1…4 (k = 2/√π).
pub const ERF_SERIES: [f64; 4] = [-1.0 / 3.0, 1.0 / 10.0, -1.0 / 42.0, 1.0 / 216.0];
