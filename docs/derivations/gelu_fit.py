#!/usr/bin/env python3
"""Fits the coefficients of the vector unit's exact-form gelu (docs/codegen.md,
section "Composites: gelu"; backend/src/npu/vector.rs, `Seq::gelu`).

gelu(x) = x * Phi(x), and Phi(x) = sigmoid(g(x)) with g = logit(Phi), an odd
function. g is approximated by x * P(x^2), P of degree 6, fitted (Lawson's
iteratively reweighted least squares, a near-minimax fit) to the error that
the spec's f32 elementwise tolerance 1e-5 + 1e-4 |ref| weighs: the
gelu error x * Phi (1 - Phi) * dg over the tolerance.

Then the exact f32 sequence the vector unit runs (every step rounded to f32,
as numpy's float32 arithmetic does) is checked against math.erf's gelu at
every 2^-12 step of [-16, 16] and at the special values. Prints the
coefficients as Rust literals and the worst error as a fraction of the
tolerance. Needs numpy only; deterministic.
"""
import math

import numpy as np

TERMS = 7  # P(u) = c0 + c1 u + ... + c6 u^6


def gelu_ref(x):
    erf = np.vectorize(math.erf)
    return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def fit():
    x = np.linspace(-6.0, 6.0, 24001)
    x = x[x != 0.0]
    phi = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    tol = 1e-5 + 1e-4 * np.abs(x * phi)
    logit = np.log(phi) - np.log1p(-phi)
    a = np.stack([x ** (2 * i + 1) for i in range(TERMS)], 1)
    sens = np.abs(x) * phi * (1.0 - phi) / tol
    w = np.ones_like(x)
    for _ in range(200):
        ws = w * sens
        c, *_ = np.linalg.lstsq(a * ws[:, None], logit * ws, rcond=None)
        err = np.abs(x / (1.0 + np.exp(-(a @ c))) - x * phi) / tol
        w = w * np.sqrt(err / err.max()) + 1e-9
        w /= w.max()
    return c.astype(np.float32)


def vector_gelu(x, c):
    """The instruction sequence of `Seq::gelu`, in f32."""
    f = np.float32
    with np.errstate(over="ignore", invalid="ignore"):
        u = x * x
        p = u * f(-c[-1])
        for k in range(TERMS - 2, -1, -1):
            p = p + f(-c[k])
            if k > 0:
                p = p * u
        p = p * x  # -g(x)
        p = np.exp(p)
        p = p + f(1.0)
        p = f(1.0) / p  # sigmoid(g(x))
        return p * x


def main():
    c = fit()
    for i, v in enumerate(c):
        print(f"c{i} = {float(v)!r}_f32  # bits {np.float32(v).view(np.uint32):#010x}")
    x = np.arange(-16.0, 16.0, 2.0**-12, dtype=np.float64)
    ref = gelu_ref(x).astype(np.float32).astype(np.float64)
    got = vector_gelu(x.astype(np.float32), c).astype(np.float64)
    ratio = np.abs(got - ref) / (1e-5 + 1e-4 * np.abs(ref))
    print(f"worst error / tolerance on [-16, 16): {ratio.max():.4f} at x = {x[ratio.argmax()]}")
    special = np.array([np.inf, -np.inf, np.nan, 1e30, -1e30, 0.0, -0.0], np.float32)
    print("special", list(zip(special.tolist(), vector_gelu(special, c).tolist())))
    # A chain can double the error and cancel most of the value (y - 2·gelu(x)):
    # keep it near the ulp level, as the other composites are.
    assert ratio.max() < 0.02, "the fit leaves too little margin"
    # P's leading coefficient must keep g increasing beyond the fitted range,
    # so that gelu(x) -> x and gelu(-x) -> -0 (and gelu(-inf) = -inf * 0 =
    # NaN, as the reference): an even number of terms fits with a negative one.
    assert c[-1] > 0


if __name__ == "__main__":
    main()
