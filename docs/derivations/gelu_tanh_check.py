#!/usr/bin/env python3
"""Checks the vector unit's `gelu(x, approximate = "tanh")` (docs/codegen.md,
section "Composites: gelu"; backend/src/npu/vector.rs, `Seq::gelu_tanh`).

The reference is PyTorch's 0.5 x (1 + tanh(w)), w = sqrt(2/pi) (x + 0.044715
x^3). Since 1 + tanh(w) = 2 sigmoid(2w), the same function is

    x * sigmoid(2w) = x / (1 + exp(-2 sqrt(2/pi) x (1 + 0.044715 x^2))),

which does not cancel where tanh(w) nears -1. This script runs that exact f32
sequence (every step rounded to f32, as numpy's float32 arithmetic does)
against the float64 reference at every 2^-12 step of [-16, 16], at wide
values up to the f32 range and at the special values, and prints the worst
error as a fraction of the spec's f32 tolerance 1e-5 + 1e-4 |ref|. Needs
numpy only; deterministic.
"""
import math

import numpy as np


def gelu_tanh_ref(x):
    c = math.sqrt(2.0 / math.pi)
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x**3)))


def vector_gelu_tanh(x):
    """The instruction sequence of `Seq::gelu_tanh`, in f32."""
    f = np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        p = x * x
        p = p * f(0.044715)
        p = p + f(1.0)
        p = p * x
        p = p * f(-2.0 * math.sqrt(2.0 / math.pi))  # -2w
        p = np.exp(p)
        p = p + f(1.0)
        p = f(1.0) / p  # sigmoid(2w)
        return p * x


def main():
    wide = np.geomspace(16.0, 3e38, 4001)
    x = np.concatenate([np.arange(-16.0, 16.0, 2.0**-12), wide, -wide])
    ref = gelu_tanh_ref(x).astype(np.float32).astype(np.float64)
    got = vector_gelu_tanh(x.astype(np.float32)).astype(np.float64)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), fin), "an overflow the reference does not have"
    ratio = np.abs(got[fin] - ref[fin]) / (1e-5 + 1e-4 * np.abs(ref[fin]))
    print(f"worst error / f32 tolerance: {ratio.max():.4f} at x = {x[fin][ratio.argmax()]}")
    special = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30, 0.0, -0.0], np.float32)
    got_s = vector_gelu_tanh(special)
    ref_s = gelu_tanh_ref(special.astype(np.float64)).astype(np.float32)
    print("special", list(zip(special.tolist(), got_s.tolist())))
    assert np.array_equal(got_s, ref_s, equal_nan=True)
    assert np.array_equal(np.signbit(got_s), np.signbit(ref_s))
    # Near the ulp level, as the other composites (a chain may double the
    # error and cancel the value).
    assert ratio.max() < 0.02


if __name__ == "__main__":
    main()
