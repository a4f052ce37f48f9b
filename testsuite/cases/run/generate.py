#!/usr/bin/env python3
"""Fixture generator for Tessera's run cases (testsuite/cases/run/).

For every run case NAME.tsr this script writes

    NAME/inputs/PARAM.npy      one file per kernel parameter
    NAME/expected/RESULT.npy   one file per kernel result (named, else out0, out1, ...)

from a numpy model of the kernel written from the language semantics
(shared/spec/language.md and docs/language-notes.md), never from Tessera's own
output.

Usage (from the repository root; needs only python3 and numpy >= 1.24):

    python3 testsuite/cases/run/generate.py               # regenerate every case
    python3 testsuite/cases/run/generate.py --only NAME   # one case (repeatable)
    python3 testsuite/cases/run/generate.py --check       # verify, write nothing

The output is deterministic: each case draws its inputs from
numpy.random.default_rng(seed) with a fixed seed (zlib.crc32 of the case name
unless the case gives one), so running the script again leaves `git status`
clean. The script fails loudly when a registered model has no .tsr file, a
.tsr file has no model, or a model's inputs/outputs disagree with the
kernel's signature (names, dtypes, ranks, fixed and symbolic dims).

Numerics follow docs/language-notes.md:
- every operation computes in float64 and rounds once to its result dtype
  (round to nearest even), so an f16/bf16 chain rounds after every primitive
  op, including inside the composites (softmax, log_softmax, layer_norm,
  rms_norm), which are modelled by their primitive expansion;
- reductions and matmul accumulate floats in float64 and integers in int64
  (equal to i32 wrap-around accumulation modulo 2**32), then convert once;
  an i8 sum is converted to i8 as a `cast` would (saturating);
- integer + - * and unary - wrap; integer / truncates toward zero;
- cast to an integer truncates toward zero and saturates; NaN casts to 0;
  cast to bool is x != 0;
- weak literals adopt the dtype of the tensor they meet (rounded to it);
  literal-only expressions are folded in Python (64-bit) arithmetic.

Storage: f16 as <f2, f32 as <f4, i8 as |i1, i32 as <i4, bool as |b1, and bf16
as <f4 holding values already rounded to bf16.
"""

import argparse
import io
import math
import pathlib
import re
import sys
import zlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# dtypes and rounding
# --------------------------------------------------------------------------

STORAGE = {
    "f16": np.dtype("<f2"),
    "bf16": np.dtype("<f4"),
    "f32": np.dtype("<f4"),
    "i8": np.dtype("|i1"),
    "i32": np.dtype("<i4"),
    "bool": np.dtype("|b1"),
}
FLOATS = ("f16", "bf16", "f32")
INTS = ("i8", "i32")
INT_RANGE = {"i8": (-(2**7), 2**7 - 1), "i32": (-(2**31), 2**31 - 1)}


def bf16_from_f32(x):
    """Round float32 values to bfloat16 (nearest, ties to even); returns float32.

    Works on the bit pattern: add 0x7FFF plus the lowest kept bit, then clear
    the low 16 bits. A carry into the exponent gives the next binade or inf,
    as IEEE rounding does. NaN keeps its sign and becomes a quiet NaN (the
    carry trick could otherwise turn a NaN payload into inf).
    """
    x = np.asarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    lsb = (u >> np.uint64(16)) & np.uint64(1)
    r = ((u + np.uint64(0x7FFF) + lsb) >> np.uint64(16)) << np.uint64(16)
    nan = np.isnan(x)
    qnan = (u | np.uint64(0x00400000)) & np.uint64(0xFFFF0000)
    r = np.where(nan, qnan, r)
    return r.astype(np.uint32).view(np.float32).reshape(x.shape)


def f32_round_to_odd(x):
    """float64 -> float32 with round-to-odd (truncate, set the last bit if inexact).

    Rounding to odd first and then to bf16 (8 significant bits, far fewer
    than float32's 24) gives the correctly rounded f64 -> bf16 result: the
    usual cure for double rounding.
    """
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        r = x.astype(np.float32)
        back = r.astype(np.float64)
    inexact = np.isfinite(x) & (back != x)
    bits = r.view(np.uint32).copy()
    too_big = inexact & (np.abs(back) > np.abs(x))  # RNE rounded away from zero
    bits = np.where(too_big, bits - np.uint32(1), bits)  # sign-magnitude: one ulp toward 0
    bits = np.where(inexact, bits | np.uint32(1), bits)
    return bits.astype(np.uint32).view(np.float32).reshape(x.shape)


def round_float(x64, dt):
    """Round float64 values once to the float dtype `dt`, in its storage dtype."""
    x64 = np.asarray(x64, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        if dt == "f16":
            return x64.astype(np.float16)
        if dt == "f32":
            return x64.astype(np.float32)
        if dt == "bf16":
            return bf16_from_f32(f32_round_to_odd(x64))
    raise ValueError(dt)


def wrap_int(x, dt):
    """Two's-complement wrap of int64 values to i8/i32."""
    return np.asarray(x, dtype=np.int64).astype(STORAGE[dt])


def saturate_int(x, dt):
    lo, hi = INT_RANGE[dt]
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi).astype(STORAGE[dt])


# --------------------------------------------------------------------------
# A typed tensor whose operations follow the language semantics
# --------------------------------------------------------------------------


class T:
    """A Tessera value: numpy storage array `v` plus the Tessera dtype `dt`."""

    __array_priority__ = 1000  # keep numpy from handling T * ndarray itself

    def __init__(self, v, dt):
        assert dt in STORAGE, dt
        v = np.asarray(v)
        if v.dtype != STORAGE[dt]:
            v = v.astype(STORAGE[dt])
        if dt == "bf16":
            low = v.view(np.uint32) & np.uint32(0xFFFF)
            assert not np.any(low[~np.isnan(v)]), "bf16 value not rounded"
        self.v = v
        self.dt = dt

    @property
    def shape(self):
        return self.v.shape

    def f64(self):
        return self.v.astype(np.float64)

    def i64(self):
        return self.v.astype(np.int64)

    def __repr__(self):
        return f"T({self.dt}{list(self.shape)})"

    # operators -----------------------------------------------------------
    def __add__(self, o):
        return binary(self, o, np.add)

    def __radd__(self, o):
        return binary(o, self, np.add)

    def __sub__(self, o):
        return binary(self, o, np.subtract)

    def __rsub__(self, o):
        return binary(o, self, np.subtract)

    def __mul__(self, o):
        return binary(self, o, np.multiply)

    def __rmul__(self, o):
        return binary(o, self, np.multiply)

    def __truediv__(self, o):
        return binary(self, o, "div")

    def __rtruediv__(self, o):
        return binary(o, self, "div")

    def __matmul__(self, o):
        return matmul(self, o)

    def __neg__(self):
        if self.dt in FLOATS:
            return T(round_float(-self.f64(), self.dt), self.dt)
        assert self.dt in INTS
        return T(wrap_int(-self.i64(), self.dt), self.dt)

    def __lt__(self, o):
        return compare(self, o, np.less)

    def __le__(self, o):
        return compare(self, o, np.less_equal)

    def __gt__(self, o):
        return compare(self, o, np.greater)

    def __ge__(self, o):
        return compare(self, o, np.greater_equal)

    def __eq__(self, o):
        return compare(self, o, np.equal)

    def __ne__(self, o):
        return compare(self, o, np.not_equal)

    __hash__ = None


def is_lit(x):
    return isinstance(x, (bool, int, float))


def lit(value, dt):
    """A weak literal adopting dtype `dt` (it must fit, as the checker requires)."""
    if dt == "bool":
        assert isinstance(value, bool)
        return T(np.array(value), "bool")
    assert not isinstance(value, bool)
    if dt in INTS:
        assert isinstance(value, int), "a float literal cannot meet an integer tensor"
        lo, hi = INT_RANGE[dt]
        assert lo <= value <= hi, "literal does not fit"
        return T(np.array(value, dtype=np.int64).astype(STORAGE[dt]), dt)
    r = round_float(float(value), dt)
    assert np.isfinite(r), "literal overflows"
    return T(r, dt)


def default_dtype(value):
    if isinstance(value, bool):
        return "bool"
    return "i32" if isinstance(value, int) else "f32"


def meet(a, b):
    """Give two operands one dtype: a literal adopts the tensor's; no promotion."""
    if is_lit(a) and is_lit(b):
        raise AssertionError("fold literal-only expressions in Python")
    if is_lit(a):
        a = lit(a, b.dt)
    if is_lit(b):
        b = lit(b, a.dt)
    assert a.dt == b.dt, f"dtype mismatch {a.dt} vs {b.dt}"
    return a, b


def binary(a, b, op):
    a, b = meet(a, b)
    dt = a.dt
    assert dt != "bool"
    if dt in FLOATS:
        with np.errstate(all="ignore"):
            f = np.divide if op == "div" else op
            return T(round_float(f(a.f64(), b.f64()), dt), dt)
    x, y = np.broadcast_arrays(a.i64(), b.i64())
    if op == "div":
        assert not np.any(y == 0), "integer division by zero is a runtime fault"
        q = np.abs(x) // np.abs(y)
        r = np.where((x < 0) != (y < 0), -q, q)  # truncate toward zero
    else:
        r = op(x, y)
    return T(wrap_int(r, dt), dt)


def compare(a, b, op):
    a, b = meet(a, b)
    if a.dt == "bool":
        assert op in (np.equal, np.not_equal)
        return T(op(a.v, b.v), "bool")
    if a.dt in INTS:
        return T(op(a.i64(), b.i64()), "bool")
    return T(op(a.f64(), b.f64()), "bool")


def float_unary(x, fn):
    assert x.dt in FLOATS, "float-only builtin"
    with np.errstate(all="ignore"):
        return T(round_float(fn(x.f64()), x.dt), x.dt)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid64(x):
    return 1.0 / (1.0 + np.exp(-x))


def exp(x):
    return float_unary(x, np.exp)


def log(x):
    return float_unary(x, np.log)


def sqrt(x):
    return float_unary(x, np.sqrt)


def rsqrt(x):
    return float_unary(x, lambda v: 1.0 / np.sqrt(v))


def reciprocal(x):
    return float_unary(x, lambda v: 1.0 / v)


def sigmoid(x):
    return float_unary(x, _sigmoid64)


def tanh(x):
    return float_unary(x, np.tanh)


def silu(x):
    return float_unary(x, lambda v: v * _sigmoid64(v))


def erf(x):
    return float_unary(x, _erf)


def gelu(x, approximate="none"):
    if approximate == "none":
        return float_unary(x, lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0))))
    assert approximate == "tanh"
    c = math.sqrt(2.0 / math.pi)
    return float_unary(x, lambda v: 0.5 * v * (1.0 + np.tanh(c * (v + 0.044715 * v**3))))


def sin(x):
    return float_unary(x, np.sin)


def cos(x):
    return float_unary(x, np.cos)


def abs_(x):
    if x.dt in FLOATS:
        return float_unary(x, np.abs)
    return T(wrap_int(np.abs(x.i64()), x.dt), x.dt)


def relu(x):
    if x.dt in FLOATS:
        return float_unary(x, lambda v: np.maximum(v, 0.0))  # NaN stays NaN
    return T(np.maximum(x.i64(), 0).astype(STORAGE[x.dt]), x.dt)


def _zeros_ordered(r, a, b, top):
    """IEEE 754-2019 maximum (top) / minimum of two zeros: +0 above -0.
    np.maximum returns its second operand for equal f32/f64 zeros and its
    first for f16, so the sign of a zero is set here, not taken from numpy."""
    a, b = np.broadcast_arrays(a, b)
    both = (a == 0) & (b == 0)
    neg = (np.signbit(a) & np.signbit(b)) if top else (np.signbit(a) | np.signbit(b))
    return np.where(both, np.where(neg, -0.0, 0.0), r)


def maximum(a, b):
    a, b = meet(a, b)
    if a.dt in FLOATS:
        x, y = a.f64(), b.f64()
        return T(round_float(_zeros_ordered(np.maximum(x, y), x, y, True), a.dt), a.dt)
    return T(np.maximum(a.i64(), b.i64()).astype(STORAGE[a.dt]), a.dt)


def minimum(a, b):
    a, b = meet(a, b)
    if a.dt in FLOATS:
        x, y = a.f64(), b.f64()
        return T(round_float(_zeros_ordered(np.minimum(x, y), x, y, False), a.dt), a.dt)
    return T(np.minimum(a.i64(), b.i64()).astype(STORAGE[a.dt]), a.dt)


def pow_(a, b):
    a, b = meet(a, b)
    assert a.dt in FLOATS
    with np.errstate(all="ignore"):
        return T(round_float(np.power(a.f64(), b.f64()), a.dt), a.dt)


def select(c, a, b):
    if is_lit(c):
        c = T(np.array(c), "bool")
    assert c.dt == "bool"
    if is_lit(a) and is_lit(b):
        a = lit(a, default_dtype(a))
    a, b = meet(a, b)
    return T(np.where(c.v, a.v, b.v), a.dt)


def cast(x, dt):
    if x.dt == dt:
        return x
    if dt == "bool":
        if x.dt in FLOATS:
            return T(x.f64() != 0.0, "bool")  # NaN != 0 is true
        return T(x.i64() != 0, "bool")
    if x.dt == "bool":
        src = x.v.astype(np.int64)
    else:
        src = x.v
    if dt in FLOATS:
        return T(round_float(src.astype(np.float64), dt), dt)
    if x.dt in FLOATS:
        f = x.f64()
        f = np.where(np.isnan(f), 0.0, np.trunc(f))
        lo, hi = INT_RANGE[dt]
        f = np.clip(f, lo, hi)  # saturate (infinities too)
        return T(f.astype(np.int64).astype(STORAGE[dt]), dt)
    return T(saturate_int(src.astype(np.int64), dt), dt)


# reductions ---------------------------------------------------------------


def _axis(axis):
    if axis is None:
        return None
    if isinstance(axis, int):
        return axis
    return tuple(axis)


def sum_(x, axis=None, keepdims=False):
    ax = _axis(axis)
    if x.dt in FLOATS:
        return T(round_float(np.sum(x.f64(), axis=ax, keepdims=keepdims), x.dt), x.dt)
    assert x.dt in INTS
    acc = wrap_int(np.sum(x.i64(), axis=ax, keepdims=keepdims), "i32")  # i32 wrap-around
    if x.dt == "i8":
        return T(saturate_int(acc, "i8"), "i8")
    return T(acc, "i32")


def mean(x, axis=None, keepdims=False):
    assert x.dt in FLOATS, "mean of integers is an error"
    ax = _axis(axis)
    f = x.f64()
    count = f.size // max(1, np.sum(f, axis=ax, keepdims=keepdims).size)
    return T(round_float(np.sum(f, axis=ax, keepdims=keepdims) / count, x.dt), x.dt)


def _zero_extreme(x, axis, keepdims, top):
    """np.max / np.min, with a zero result signed as IEEE 754-2019's
    maximum / minimum fold gives it in any order: +0 if the max's zeros
    include +0, -0 if the min's include -0."""
    r = (np.max if top else np.min)(x.v, axis=_axis(axis), keepdims=keepdims)
    if x.dt not in FLOATS:
        return r
    zeros = x.v == 0
    kind = zeros & (np.signbit(x.v) != top)  # +0 for max, -0 for min
    some = np.any(kind, axis=_axis(axis), keepdims=keepdims)
    signed = np.where(some, 0.0 if top else -0.0, -0.0 if top else 0.0)
    return np.where(r == 0, signed, r).astype(r.dtype)


def max_(x, axis=None, keepdims=False):
    assert x.dt != "bool"
    return T(_zero_extreme(x, axis, keepdims, True), x.dt)


def min_(x, axis=None, keepdims=False):
    assert x.dt != "bool"
    return T(_zero_extreme(x, axis, keepdims, False), x.dt)


def matmul(a, b):
    assert a.dt == b.dt, "matmul operands must share a dtype"
    if a.dt in FLOATS:
        return T(round_float(np.matmul(a.f64(), b.f64()), "f32"), "f32")
    assert a.dt == "i8"
    return T(wrap_int(np.matmul(a.i64(), b.i64()), "i32"), "i32")


# shape builtins -------------------------------------------------------------


def reshape(x, shape):
    return T(x.v.reshape(shape), x.dt)


def transpose(x, axes=None):
    return T(np.transpose(x.v, axes), x.dt)


def broadcast_to(x, shape):
    return T(np.broadcast_to(x.v, shape).copy(), x.dt)


def concat(ts, axis=0):
    assert len({t.dt for t in ts}) == 1
    return T(np.concatenate([t.v for t in ts], axis=axis), ts[0].dt)


def slice_(x, axis=0, start=0, end=None):
    axis = axis % x.v.ndim
    n = x.shape[axis]
    end = n if end is None else end
    s = start + n if start < 0 else start
    e = end + n if end < 0 else end
    assert 0 <= s < e <= n, "Tessera has no empty or clamped slices"
    idx = [slice(None)] * x.v.ndim
    idx[axis] = slice(s, e)
    return T(x.v[tuple(idx)], x.dt)


def zeros(shape, dt="f32"):
    return T(np.zeros(shape, dtype=STORAGE[dt]), dt)


def full(shape, value, dt=None):
    dt = dt or default_dtype(value)
    return T(np.broadcast_to(lit(value, dt).v, shape).copy(), dt)


# composites: their primitive expansion, every primitive rounded ------------


def softmax(x, axis=-1):
    e = exp(x - max_(x, axis=axis, keepdims=True))
    return e / sum_(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    m = max_(x, axis=axis, keepdims=True)
    return x - m - log(sum_(exp(x - m), axis=axis, keepdims=True))


def layer_norm(x, g, b, eps=1e-5):
    d = x - mean(x, axis=-1, keepdims=True)
    return d * rsqrt(mean(d * d, axis=-1, keepdims=True) + eps) * g + b


def rms_norm(x, g, eps=1e-6):
    return x * rsqrt(mean(x * x, axis=-1, keepdims=True) + eps) * g


# --------------------------------------------------------------------------
# input helpers
# --------------------------------------------------------------------------


def uniform(rng, shape, dt, lo=-1.0, hi=1.0):
    """Floats uniform in [lo, hi), rounded to dt."""
    assert dt in FLOATS
    return T(round_float(rng.uniform(lo, hi, size=shape), dt), dt)


def away(rng, shape, dt, lo=0.25, hi=1.0):
    """Floats with magnitude in [lo, hi) and a random sign: safe divisors."""
    mag = rng.uniform(lo, hi, size=shape)
    sign = np.where(rng.integers(0, 2, size=shape) == 1, 1.0, -1.0)
    return T(round_float(mag * sign, dt), dt)


def ints(rng, shape, dt, lo=-8, hi=8):
    """Integers uniform in [lo, hi)."""
    assert dt in INTS
    return T(rng.integers(lo, hi, size=shape, dtype=np.int64).astype(STORAGE[dt]), dt)


def const(values, dt):
    """Hand-picked values: floats rounded to dt, integers taken as they are."""
    a = np.asarray(values)
    if dt in FLOATS:
        return T(round_float(a.astype(np.float64), dt), dt)
    if dt in INTS:
        a = a.astype(np.int64)
        lo, hi = INT_RANGE[dt]
        assert a.min() >= lo and a.max() <= hi
        return T(a.astype(STORAGE[dt]), dt)
    return T(a.astype(bool), dt)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

CASES = {}


def case(name, seed=None):
    """Register the numpy model of run case `name` (seed: crc32 of the name)."""

    def deco(fn):
        assert name not in CASES, f"case {name} registered twice"
        CASES[name] = (fn, zlib.crc32(name.encode()) if seed is None else seed)
        return fn

    return deco


# ==========================================================================
# The models. Each returns (inputs, outputs): dicts from parameter / result
# name to T.
# ==========================================================================

# --- elementwise arithmetic -------------------------------------------------


# --- awkward shapes (1, 15, 17, 1000, 4097) for every vector op class -------


@case("awkward_elementwise_f32")
def _(rng):
    a, b, c = uniform(rng, (17, 1000), "f32"), uniform(rng, (1000,), "f32"), uniform(rng, (17, 1), "f32")
    x = a * b + c
    return {"a": a, "b": b, "c": c}, {"x": x, "y": maximum(a, c) - exp(b) / (abs_(c) + 1.0)}


@case("awkward_elementwise_f16_bf16")
def _(rng):
    x, y = uniform(rng, (4097,), "f16", -3.0, 3.0), uniform(rng, (15, 17), "bf16", -3.0, 3.0)
    return {"x": x, "y": y}, {"s": sigmoid(x) * x, "g": gelu(y) + y, "t": tanh(x) - x * 0.5}


@case("awkward_elementwise_ints")
def _(rng):
    i, k, j = ints(rng, (1000,), "i32", -1000, 1000), ints(rng, (1,), "i32"), ints(rng, (15, 17), "i8", -128, 128)
    d = abs_(k) + 1
    return {"i": i, "k": k, "j": j}, {"q": i / d - i, "w": j * 3 + j, "m": maximum(cast(j, "i32"), 2) * 1000}


@case("awkward_compare_select_bool")
def _(rng):
    a, b = uniform(rng, (15, 17), "f32"), uniform(rng, (17,), "f32")
    a.v[0, :] = b.v  # some equal elements
    return {"a": a, "b": b}, {"s": select(a > b, a, b), "e": a == b, "i": cast(a > 0.0, "i8")}


@case("awkward_reduce_last_axis")
def _(rng):
    x = uniform(rng, (15, 4097), "f32")
    return {"x": x}, {"s": sum_(x, axis=-1), "m": max_(x, axis=-1, keepdims=True), "a": mean(x, axis=1)}


@case("awkward_reduce_middle_axis")
def _(rng):
    x = uniform(rng, (17, 1000, 3), "f16")
    return {"x": x}, {"s": sum_(x, axis=1), "m": min_(x, axis=0)}


@case("awkward_reduce_ints")
def _(rng):
    a, b = ints(rng, (1000,), "i8", -20, 100), ints(rng, (15, 17), "i32", -1000, 1000)
    return {"a": a, "b": b}, {"s": sum_(a), "m": max_(a), "c": sum_(b, axis=0)}


@case("awkward_reduce_all_axes_bf16")
def _(rng):
    x = uniform(rng, (17, 15), "bf16")
    return {"x": x}, {"s": sum_(x), "a": mean(x)}


@case("awkward_transpose_shapes")
def _(rng):
    x, y, z = uniform(rng, (15, 1000), "f32"), uniform(rng, (17, 3, 33), "f16"), ints(rng, (1, 4097), "i8", -128, 128)
    return {"x": x, "y": y, "z": z}, {
        "a": transpose(x),
        "b": transpose(y, [2, 0, 1]),
        "c": transpose(z, [1, 0]),
        "d": transpose(x > 0.0),
    }


@case("awkward_concat_slice")
def _(rng):
    a, b = uniform(rng, (17, 15), "f32"), uniform(rng, (17, 1), "f32")
    return {"a": a, "b": b}, {
        "j": concat([a, b], axis=-1),
        "r": concat([a, a], axis=0),
        "s": slice_(a, axis=1, start=1, end=14),
        "t": slice_(a, start=-1),
    }


@case("awkward_broadcast_both_ways")
def _(rng):
    c, r = uniform(rng, (1000, 1), "f32"), uniform(rng, (1, 17), "f32")
    return {"c": c, "r": r}, {"out0": c * r - broadcast_to(r, (1000, 17))}


@case("add_f32")
def _(rng):
    a, b = uniform(rng, (4, 8), "f32"), uniform(rng, (4, 8), "f32")
    return {"a": a, "b": b}, {"out0": a + b}


@case("arith_f32_sub_mul_div")
def _(rng):
    a, b = uniform(rng, (3, 7), "f32"), away(rng, (3, 7), "f32")
    return {"a": a, "b": b}, {"diff": a - b, "prod": a * b, "quot": a / b}


@case("unary_neg_f32")
def _(rng):
    a, b = uniform(rng, (16,), "f32"), uniform(rng, (16,), "f32")
    return {"a": a, "b": b}, {"n": -a, "nn": -(-a), "sub_neg": a - (-b), "neg_mul": (-a) * b}


@case("precedence_mul_over_add")
def _(rng):
    a, b, c = uniform(rng, (6, 5), "f32"), away(rng, (6, 5), "f32"), uniform(rng, (6, 5), "f32")
    return {"a": a, "b": b, "c": c}, {"x": ((a + (b * c)) - (a / b)), "y": (a - b) - c}


@case("arith_f16_rounds_every_op")
def _(rng):
    a, b, c = (uniform(rng, (8, 16), "f16", -4.0, 4.0) for _ in range(3))
    return {"a": a, "b": b, "c": c}, {"out0": (a * b + c) * 0.5 - a}


@case("arith_bf16")
def _(rng):
    a, c = uniform(rng, (4, 32), "bf16", -4.0, 4.0), uniform(rng, (4, 32), "bf16", -4.0, 4.0)
    b = away(rng, (4, 32), "bf16", 0.25, 4.0)
    return {"a": a, "b": b, "c": c}, {"y": a * b + c, "q": a / b}


@case("arith_i32_wraps")
def _(rng):
    big = ints(rng, (6,), "i32", -(2**31), 2**31)
    a = T(np.concatenate([big.v, np.array([2**31 - 1, -(2**31), 5, -7, 46341, 100000], np.int32)]), "i32")
    b = T(np.concatenate([ints(rng, (6,), "i32", -(2**31), 2**31).v,
                          np.array([1, -1, -9, 3, 46341, 100000], np.int32)]), "i32")
    return {"a": a, "b": b}, {"sum": a + b, "diff": a - b, "prod": a * b, "neg": -a}


@case("div_i32_truncates")
def _(rng):
    a = const([7, -7, 7, -7, 1, -1, 0, 2**31 - 1, -(2**31), -(2**31), 100, -100, 5, 9, -9, 3], "i32")
    b = const([2, 2, -2, -2, 3, 3, 5, 2, -1, 1, 7, 7, -5, 10, 10, -3], "i32")
    return {"a": a, "b": b}, {"out0": a / b}


@case("arith_i8_wraps")
def _(rng):
    a = const([100, -100, 127, -128, 5, -8, 64, 16, -1, 0], "i8")
    b = const([100, -100, 1, -1, 7, 3, 2, -16, -1, 9], "i8")
    return {"a": a, "b": b}, {"sum": a + b, "prod": a * b, "neg": -a}


@case("maximum_minimum_f32")
def _(rng):
    a, b = uniform(rng, (5, 7), "f32"), uniform(rng, (7,), "f32")
    return {"a": a, "b": b}, {"hi": maximum(a, b), "lo": minimum(a, b)}


@case("maximum_literal_f16")
def _(rng):
    x = uniform(rng, (64,), "f16")
    return {"x": x}, {"out0": minimum(maximum(x, 0.0), 0.5)}


@case("minimum_maximum_i8")
def _(rng):
    x, y = ints(rng, (32,), "i8"), ints(rng, (32,), "i8")
    return {"x": x, "y": y}, {"lo": minimum(x, 3), "hi": maximum(x, y)}


@case("pow_f32")
def _(rng):
    a = uniform(rng, (24,), "f32", 0.1, 3.0)
    b = uniform(rng, (24,), "f32", -2.0, 2.0)
    x = uniform(rng, (24,), "f32", -2.0, 2.0)
    return {"a": a, "b": b, "x": x}, {"ab": pow_(a, b), "sq": pow_(x, 2.0), "cube": pow_(x, 3)}


@case("pow_special_values")
def _(rng):
    # C's pow on IEEE 754's special values, every pair of the two lists: a
    # negative base with an infinite or huge (even) exponent, -0 and -inf
    # bases with odd, even and non-integer exponents, |a| = 1, NaN on
    # either side, exponents at and past 2^24 and 2^31.
    bases = [-2.0, -0.5, -1.0, -np.inf, -0.0, 0.0, np.inf, 1.0, -3.0, 2.0, np.nan, -1.5, -1e-40, 0.5]
    exps = [np.inf, -np.inf, 1e10, -1e10, 0.5, -1.5, 3.0, -3.0, 2.0, -2.0, 0.0, -0.0, np.nan,
            1.0, 16777216.0, 16777215.0, 2.0**31, 3e38, -1.0]
    a = [x for x in bases for _ in exps]
    b = [y for _ in bases for y in exps]
    fa, fb = const(a, "f32"), const(b, "f32")
    ha, hb = const(a, "f16"), const(b, "f16")
    return {"a": fa, "b": fb, "ha": ha, "hb": hb}, {"p": pow_(fa, fb), "hp": pow_(ha, hb)}


@case("abs_f32_i32")
def _(rng):
    x, n = uniform(rng, (3, 9), "f32"), ints(rng, (3, 9), "i32")
    return {"x": x, "n": n}, {"fabs": abs_(x), "iabs": abs_(n)}


@case("exp_log_f32")
def _(rng):
    x, p = uniform(rng, (8, 8), "f32", -3.0, 3.0), uniform(rng, (8, 8), "f32", 0.05, 4.0)
    return {"x": x, "p": p}, {"e": exp(x), "l": log(p)}


@case("sqrt_rsqrt_reciprocal_f32")
def _(rng):
    p, r = uniform(rng, (40,), "f32", 0.01, 10.0), away(rng, (40,), "f32", 0.2, 2.0)
    return {"p": p, "r": r}, {"s": sqrt(p), "rs": rsqrt(p), "inv": reciprocal(r)}


@case("activations_f32")
def _(rng):
    x = uniform(rng, (6, 20), "f32", -6.0, 6.0)
    return {"x": x}, {"r": relu(x), "s": sigmoid(x), "t": tanh(x)}


def _trig_args(rng, n, dt):
    """|x| <= 1e4: multiples of pi/2 (and their f32 neighbours) up to 1e4,
    +-0, +-1e4, then uniform arguments."""
    k = np.arange(-6000, 6001, 1000, dtype=np.float64)
    halfpi = (np.pi / 2) * k
    special = np.concatenate([halfpi, np.nextafter(halfpi.astype(np.float32), np.float32(np.inf)),
                              [0.0, -0.0, 1e4, -1e4, np.pi, -np.pi, 1e-30]])
    rest = rng.uniform(-1e4, 1e4, size=n - special.size)
    return T(round_float(np.concatenate([special, rest]), dt), dt)


def _sin_cos(x):
    return {"x": x}, {"s": sin(x), "c": cos(x)}


@case("sin_cos_f32_to_1e4")
def _(rng):
    x = _trig_args(rng, 1062, "f32")
    x = T(np.concatenate([x.v, np.array([np.inf, np.nan], dtype=np.float32)]), "f32")
    return _sin_cos(x)


def _trig_full_range(rng, n, dt):
    """Every kind of finite argument: +-0, subnormals, the 2^-12 boundary
    below which sin x = x, the largest finite value, f32 neighbours of
    multiples of pi/2 up to 1e38 (the hardest reductions), log-uniform
    magnitudes over the whole range and random bit patterns; then inf, -inf
    and NaN."""
    f32 = np.float32
    k = np.concatenate([np.arange(1.0, 40.0), 10.0 ** rng.uniform(4.0, 38.0, 60)])
    halfpi = (k * (np.pi / 2)).astype(f32)
    near = np.concatenate([halfpi, np.nextafter(halfpi, f32(np.inf)), np.nextafter(halfpi, f32(-np.inf))])
    tiny = np.array([2.0**-12, np.nextafter(f32(2.0**-12), f32(0)), 2.0**-119, 1e-40, 1.4e-45], dtype=f32)
    big = np.array([np.finfo(f32).max, 2.0**127, 2.0**25, 2.0**24 + 2.0, 1e4, 1e5, 1e6], dtype=f32)
    special = np.concatenate([near, tiny, big, [0.0, -0.0]])
    special = np.concatenate([special, -special[: special.size // 2]])
    m = (n - special.size) // 2
    mags = 10.0 ** rng.uniform(-44.0, 38.5, m)
    logs = np.where(rng.random(m) < 0.5, -mags, mags).astype(f32)
    bits = rng.integers(0, 2**32, size=4 * (n - special.size - m), dtype=np.uint64).astype(np.uint32)
    pattern = bits.view(f32)
    pattern = pattern[np.isfinite(pattern)][: n - special.size - m]
    x = np.concatenate([special, logs, pattern, [np.inf, -np.inf, np.nan]])
    return T(round_float(x.astype(np.float64), dt), dt)


@case("sin_cos_f32_full_range")
def _(rng):
    x = _trig_full_range(rng, 2045, "f32")
    return _sin_cos(x)


@case("sin_cos_bf16_full_range")
def _(rng):
    x = _trig_full_range(rng, 1021, "bf16")
    return _sin_cos(x)


@case("sin_cos_f16")
def _(rng):
    x = _trig_args(rng, 1000, "f16")
    x = T(x.v.reshape(4, 250), "f16")
    return _sin_cos(x)


@case("sin_cos_bf16")
def _(rng):
    x = _trig_args(rng, 1000, "bf16")
    return _sin_cos(x)


@case("rotary_embedding_f32")
def _(rng):
    s, h = 64, 32
    x = uniform(rng, (s, 2, h), "f32")
    pos = T(np.arange(s, dtype=np.float32).reshape(s, 1, 1) * 64.0, "f32")
    inv_freq = T((10000.0 ** (-np.arange(h) / h)).astype(np.float32), "f32")
    t = pos * inv_freq
    x1 = slice_(x, axis=1, start=0, end=1)
    x2 = slice_(x, axis=1, start=1, end=2)
    rot = concat([-x2, x1], axis=1)
    return {"x": x, "pos": pos, "inv_freq": inv_freq}, {"out0": x * cos(t) + rot * sin(t)}


@case("silu_f16")
def _(rng):
    x = uniform(rng, (5, 12), "f16", -6.0, 6.0)
    return {"x": x}, {"out0": silu(x)}


@case("erf_f32")
def _(rng):
    x = uniform(rng, (50,), "f32", -3.0, 3.0)
    return {"x": x}, {"out0": erf(x)}


@case("gelu_exact_f32")
def _(rng):
    x = uniform(rng, (4, 25), "f32", -4.0, 4.0)
    return {"x": x}, {"out0": gelu(x)}


@case("gelu_exact_f32_wide_and_special")
def _(rng):
    x = uniform(rng, (200,), "f32", -12.0, 12.0)
    special = const([0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 40.0, -40.0, 3.0e38, -3.0e38,
                     np.inf, -np.inf, np.nan], "f32")
    x = T(np.concatenate([x.v, special.v]), "f32")
    return {"x": x}, {"out0": gelu(x)}


@case("gelu_exact_f32_dense")
def _(rng):
    # Every 2^-8 step of [-8, 8): the vector unit's gelu is a fitted
    # approximation, and its worst points lie between random samples.
    x = const(np.arange(-8.0, 8.0, 2.0**-8), "f32")
    return {"x": x}, {"out0": gelu(x)}


@case("gelu_half_demanded")
def _(rng):
    # Dense where the half-precision fit's worst points lie, then wide and
    # special values; the gates span (0, 1), with some at 1 (y large).
    dense = np.arange(-8.0, 8.0, 2.0**-8)
    wide = np.concatenate([np.geomspace(8.0, 6.0e4, 20), -np.geomspace(8.0, 1e30, 20)])
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 7e4, 3.0e38, -3.0e38,
               np.inf, -np.inf, np.nan]
    fill = rng.uniform(-1.0, 1.0, 4160 - 4096 - 40 - len(special))
    x = const(np.concatenate([dense, wide, special, fill]), "f32")
    y = uniform(rng, (4160,), "f32", -6.0, 6.0)
    y.v[::7] = 40.0
    g = gelu(x)
    return {"x": x, "y": y}, {"gated": cast(g * sigmoid(y), "f16"), "plain": cast(g, "f16")}


@case("gelu_shared_by_f32_and_f16_results")
def _(rng):
    x = const(np.arange(-8.0, 8.0, 2.0**-8), "f32")
    g = gelu(x)
    return {"x": x}, {"wide": g, "narrow": cast(g, "f16")}


@case("signed_zeros_in_maximum_minimum_and_relu")
def _(rng):
    # -0 is below +0 in either operand order (IEEE 754-2019), as in the
    # max / min folds of a row; the folds' zeros are told apart by their
    # reciprocals (+inf / -inf: reductions are compared within a tolerance).
    nz = -0.0
    a = const([nz, 0.0, nz, 0.0, 1.0, -1.0, np.nan, nz], "f32")
    b = const([0.0, nz, nz, 0.0, nz, 0.0, nz, np.nan], "f32")
    h, k = cast(a, "f16"), cast(b, "f16")
    # Rows of 48: a vectorised fold meets a row's two zeros in one lane
    # (elements 16 apart), the later one of the other sign.
    r = np.full((4, 48), nz)
    r[1, :] = -1.0
    r[1, 4], r[1, 20], r[1, 30] = nz, 0.0, -2.0
    r[2, :] = 0.0
    r[3, :] = np.arange(1.0, 49.0)
    r[3, 3], r[3, 19] = 0.0, nz
    r = const(r, "f32")
    return {"a": a, "b": b, "h": h, "k": k, "r": r}, {
        "mx": maximum(a, b), "xm": maximum(b, a), "mn": minimum(a, b), "nm": minimum(b, a),
        "hm": maximum(h, k), "hn": minimum(k, h), "re": relu(a),
        "rmax": 1.0 / max_(r, axis=-1), "rmin": 1.0 / min_(r, axis=-1)}


@case("broadcast_row_held")
def _(rng):
    x, r = uniform(rng, (5, 3000), "f32"), uniform(rng, (3000,), "f32")
    q, d = ints(rng, (300, 100), "i32", -1000, 1000), ints(rng, (100,), "i32", 1, 9)
    return {"x": x, "r": r, "q": q, "d": d}, {"y": x * r + r, "z": q / d - d}


def online_softmax_specials(rng, n, late):
    """f16 rows of `n` for the online softmax: a max rising in every chunk,
    −inf first chunks, the max in the first chunk, −inf but for a 0 at `late`."""
    x = rng.uniform(-3.0, 3.0, (4, n))
    x[0] += np.linspace(0.0, 40.0, n)
    x[1, : n // 2] = -np.inf
    x[2] -= np.linspace(0.0, 40.0, n)
    x[3, :] = -np.inf
    x[3, late] = 0.0
    x = T(round_float(x, "f16"), "f16")
    return {"x": x}, {"out0": softmax(x)}


@case("rows_chunked_online_softmax_specials")
def _(rng):
    return online_softmax_specials(rng, 20000, 15000)


@case("rows_chunked_online_softmax_whole_repeats")
def _(rng):
    return online_softmax_specials(rng, 32768, 25000)


@case("div_by_tiny_accumulated")
def _(rng):
    x = uniform(rng, (4, 4), "f16", 1e-6, 5e-6)
    y = uniform(rng, (3, 5), "f32", 1e-40, 8e-40)
    return {"x": x, "y": y}, {
        "a": x / reshape(sum_(x, axis=-1), (4, 1)),
        "b": y / reshape(max_(y, axis=-1), (3, 1)),
    }


@case("rows_chunked_online_softmax_negative")
def _(rng):
    x = uniform(rng, (1, 16384), "f16", -30.0, -20.0)
    y = uniform(rng, (1, 16384), "bf16", -100.0, -95.0)
    z = uniform(rng, (40, 16384), "bf16", -1.0, 0.0)
    return {"x": x, "y": y, "z": z}, {"a": softmax(x), "b": softmax(y), "c": softmax(z)}


@case("rows_chunked_online_softmax_wide_range_f32")
def _(rng):
    """f32 rows of 16000 (chunked on both machines) whose scores span
    thousands: a max rising by about 6000 a chunk (each rescale of the
    running sum by exp(old − new) underflows to 0), scores uniform in
    ±10000, a max in the first chunk with the rest thousands below (their
    exponentials underflow), and a small spread at an offset of 5000 (the
    result hangs on subtracting the max exactly)."""
    n = 16000
    x = rng.uniform(-3.0, 3.0, (4, n))
    x[0] += np.linspace(0.0, 18000.0, n)
    x[1] = rng.uniform(-1.0e4, 1.0e4, n)
    x[2] -= np.linspace(0.0, 18000.0, n)
    x[3] = 5000.0 + rng.uniform(-3.0, 3.0, n)
    x = T(round_float(x, "f32"), "f32")
    return {"x": x}, {"out0": softmax(x)}


@case("rows_scalar_operand_specials")
def _(rng):
    x = rng.uniform(-4.0, 4.0, (6, 300))
    y = rng.uniform(-1.0, 1.0, (6, 300))
    x[1, 17] = np.inf  # max +inf: x - m is -inf, or NaN at the inf
    x[2, :] = -np.inf  # max -inf: x - m is NaN everywhere
    x[3, :] = -x[3, :] ** 2  # max below zero: -m flips to positive
    y[4, 5] = np.nan  # sum NaN
    y[5, :] = 3.0e38  # sum overflows to +inf
    x, y = T(round_float(x, "f32"), "f32"), T(round_float(y, "f32"), "f32")
    m = max_(x, axis=-1, keepdims=True)
    s = sum_(y, axis=-1, keepdims=True)
    return {"x": x, "y": y}, {"d": x - m, "p": (y + s) * m, "r": m - y}


@case("multi_output_elementwise")
def _(rng):
    a, b, c = uniform(rng, (64, 300), "f32"), uniform(rng, (64, 300), "f32"), uniform(rng, (300,), "f32")
    y = a + b
    return {"a": a, "b": b, "c": c}, {"y": y, "z": exp(y) * c, "w": cast(a * b, "f16")}


@case("rows_blockwise_sums_f16_bf16")
def _(rng):
    # Rising rows: the mass of each softmax sits in its last repeats, so
    # every part of the fold (partials, their partial repeat, the row's
    # tail) shows in the result beyond the absolute tolerance.
    x = T(round_float(rng.uniform(-1.0, 1.0, (6, 3000)) + np.linspace(0.0, 8.0, 3000), "f16"), "f16")
    y, g = uniform(rng, (5, 2500), "bf16"), uniform(rng, (2500,), "bf16")
    z = T(round_float(rng.uniform(-1.0, 1.0, (4, 2600)) + np.linspace(0.0, 6.0, 2600), "f16"), "f16")
    w, b = uniform(rng, (2600,), "f32"), uniform(rng, (2600,), "f32")
    l = cast(layer_norm(cast(z, "f32"), w, b), "f16")
    return {"x": x, "y": y, "g": g, "z": z, "w": w, "b": b}, {"s": softmax(x), "r": rms_norm(y, g), "l": l}


@case("gelu_tanh_f32")
def _(rng):
    x = uniform(rng, (4, 25), "f32", -4.0, 4.0)
    return {"x": x}, {"out0": gelu(x, approximate="tanh")}


@case("gelu_tanh_f32_dense_wide_and_special")
def _(rng):
    dense = np.arange(-8.0, 8.0, 2.0**-8)
    wide = np.concatenate([np.geomspace(8.0, 3e38, 24), -np.geomspace(8.0, 3e38, 24)])
    special = [0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 40.0, -40.0, np.inf, -np.inf, np.nan]
    fill = rng.uniform(-1.0, 1.0, 4160 - 4096 - 48 - len(special))
    x = const(np.concatenate([dense, wide, special, fill]), "f32")
    return {"x": x}, {"out0": gelu(x, approximate="tanh")}


@case("gelu_f16_both_forms")
def _(rng):
    x = uniform(rng, (128,), "f16", -4.0, 4.0)
    return {"x": x}, {"exact": gelu(x), "approx": gelu(x, approximate="tanh")}


# --- comparisons and select ----------------------------------------------------


@case("compare_f32_all_six")
def _(rng):
    grid = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    a = const(rng.choice(grid, size=(4, 6)), "f32")
    b = const(rng.choice(grid, size=(4, 6)), "f32")
    outs = [a < b, a <= b, a > b, a >= b, a == b, a != b]
    return {"a": a, "b": b}, {f"out{i}": o for i, o in enumerate(outs)}


@case("compare_i32_literal")
def _(rng):
    x = ints(rng, (20,), "i32")
    return {"x": x}, {"pos": x > 0, "three": x == 3, "small": (x + 2) <= 1}


@case("compare_bool_eq")
def _(rng):
    a, b = uniform(rng, (16,), "f32"), uniform(rng, (16,), "f32")
    return {"a": a, "b": b}, {"same": (a > 0.0) == (b > 0.0), "differ": (a > 0.0) != (b > 0.0)}


@case("select_f32")
def _(rng):
    a, b = uniform(rng, (6, 6), "f32"), uniform(rng, (6, 6), "f32")
    return {"a": a, "b": b}, {"out0": select(a > b, a - b, b * 2.0)}


@case("select_broadcast_literal")
def _(rng):
    keep, x = uniform(rng, (5, 1), "f16"), uniform(rng, (5, 8), "f16")
    return {"keep": keep, "x": x}, {"out0": select(keep > 0.0, x, 0.0)}


@case("select_both_literals_default_f32")
def _(rng):
    v = uniform(rng, (30,), "f16").v
    v[[3, 11]] = 0.0
    v[17] = -0.0
    x = T(v, "f16")
    return {"x": x}, {"out0": select(x >= 0.0, 1.0, -1.0)}


@case("select_i8")
def _(rng):
    x, y = ints(rng, (24,), "i8"), ints(rng, (24,), "i8")
    return {"x": x, "y": y}, {"r": select(x > 0, x, 0), "m": select(x < y, y, x)}


# --- casts ------------------------------------------------------------------------

F16_EDGES = [0.0, -0.0, 1.0, 65504.0, 65519.0, 65520.0, 1e5, -1e5, 1e-8, 6e-8,
             1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 2049.0, 2051.0, -2049.0, 0.1]


@case("cast_f32_f16_roundtrip")
def _(rng):
    x = T(np.concatenate([const(F16_EDGES, "f32").v, uniform(rng, (16,), "f32", -100.0, 100.0).v]), "f32")
    h = cast(x, "f16")
    return {"x": x}, {"h": h, "back": cast(h, "f32")}


BF16_EDGES = [0.0, -0.0, 1.0, 1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8, -(1.0 + 2.0**-8), 3.4e38, -3.4e38,
              1e-40, 0.1, 3.0e38, 255.5, 257.0, 259.0, 65504.0, 1e-3]


@case("cast_f32_bf16_roundtrip")
def _(rng):
    x = T(np.concatenate([const(BF16_EDGES, "f32").v, uniform(rng, (16,), "f32", -10.0, 10.0).v]), "f32")
    h = cast(x, "bf16")
    return {"x": x}, {"h": h, "back": cast(h, "f32")}


def _low_bit_classes():
    """f32 bit patterns covering every class of the bits f16 and bf16 drop:
    below, at and above half an ulp, with the kept part even and odd, under
    zero and subnormal exponents, the binades where f16 turns subnormal or
    overflows, and the largest finite values, both signs."""
    exps = [0, 1, 2, 101, 102, 103, 112, 113, 126, 127, 142, 143, 254]
    tops = [0, 1, 0x7F, 0x7FE]  # the bits above the low 16
    lows = [0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x17FF, 0x3000, 0x7FFF,
            0x8000, 0x8001, 0x8005, 0x8007, 0x9000, 0xC000, 0xE001, 0xFFFF]
    bits = [(sign << 31) | (e << 23) | ((t << 16) & 0x7FFFFF) | low
            for sign in (0, 1) for e in exps for t in tops for low in lows]
    return np.array(bits, dtype=np.uint32).view(np.float32)


@case("cast_rounding_every_low_bit_class")
def _(rng):
    x = T(_low_bit_classes(), "f32")
    # Integers whose conversion needs rounding: f16 ties at 2049 and 4097,
    # overflow past 65519, bf16 ties at 257 and 16777217.
    ints = [2049, 2051, 4097, 4099, 65504, 65519, 65520, -65520, 257, 259, 16777217,
            16777219, 2147483647, -2147483648, 0, -1]
    n = T(np.array(ints, dtype=np.int32), "i32")
    return {"x": x, "n": n}, {"b": cast(x, "bf16"), "h": cast(x, "f16"),
                              "nb": cast(n, "bf16"), "nh": cast(n, "f16")}


@case("cast_f16_bf16")
def _(rng):
    h = T(np.concatenate([const([65504.0, -65504.0, 6e-8, 1.0 + 2.0**-10, 3.140625], "f16").v,
                          uniform(rng, (35,), "f16", -4.0, 4.0).v]), "f16")
    b = T(np.concatenate([const([1e5, -1e5, 1e-6, 1e-9, 65536.0], "bf16").v,
                          uniform(rng, (35,), "bf16", -4.0, 4.0).v]), "bf16")
    return {"h": h, "b": b}, {"hb": cast(h, "bf16"), "bh": cast(b, "f16")}


@case("cast_f32_to_i32_saturates")
def _(rng):
    x = const([2.9, -2.9, 0.5, -0.5, 0.0, -0.0, 1e10, -1e10, np.inf, -np.inf, np.nan,
               2147483520.0, 2147483648.0, -2147483648.0, 123456.78, -7.99], "f32")
    return {"x": x}, {"out0": cast(x, "i32")}


@case("cast_f32_to_i8_saturates")
def _(rng):
    x = const([127.9, 128.0, -128.9, -129.0, 300.0, -300.0, np.inf, -np.inf, np.nan,
               5.5, -5.5, 0.99, -0.99, 1e9, 64.2, -64.2], "f32")
    return {"x": x}, {"out0": cast(x, "i8")}


@case("cast_i32_to_i8_saturates")
def _(rng):
    x = const([0, 1, -1, 127, 128, -128, -129, 255, 256, -256, 1000, -1000,
               2**31 - 1, -(2**31), 42, -42], "i32")
    return {"x": x}, {"out0": cast(x, "i8")}


@case("cast_i8_to_i32")
def _(rng):
    x = T(np.concatenate([const([-128, 127, 0, -1], "i8").v, ints(rng, (16,), "i8", -128, 128).v]), "i8")
    w = cast(x, "i32")
    return {"x": x}, {"w": w, "sq": w * w}


@case("cast_i32_to_f32")
def _(rng):
    x = const([16777216, 16777217, 16777218, 16777219, 2**31 - 1, -(2**31), 0, -1,
               123456789, -5, 7, 2**30 + 1], "i32")
    return {"x": x}, {"out0": cast(x, "f32")}


@case("cast_int_to_half")
def _(rng):
    n = const([0, 1, -1, 2049, 2051, 65504, 65519, 65520, 100000, -70000, 12345, -3], "i32")
    m = const([-128, 127, 0, 1, -1, 100, -100, 77, -77, 5, 64, -65], "i8")
    return {"n": n, "m": m}, {"h": cast(n, "f16"), "b": cast(m, "bf16")}


@case("cast_bool_to_f32_i32")
def _(rng):
    v = uniform(rng, (4, 5), "f32").v
    v[0, 0] = 0.0
    v[2, 3] = 0.0
    x = T(v, "f32")
    pos = x > 0.0
    return {"x": x}, {"f": cast(pos, "f32"), "i": cast(pos, "i32")}


@case("cast_to_bool")
def _(rng):
    x = const([0.0, -0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e-30, 1e-45, 0.0], "f32")
    n = const([0, 1, -1, 0, 127, -128, 0, 5, 0, -3], "i8")
    return {"x": x, "n": n}, {"fb": cast(x, "bool"), "ib": cast(n, "bool")}


@case("bool_mask_moves")
def _(rng):
    x = uniform(rng, (4, 6), "f32")
    y = uniform(rng, (6,), "f32")
    m = x > 0.0
    n = y < 0.5
    nb = broadcast_to(n, (4, 6))
    return {"x": x, "y": y}, {
        "t": transpose(m),
        "b": broadcast_to(reshape(n, (1, 6)), (3, 6)),
        "s": slice_(m, axis=1, start=1, end=4),
        "c": concat([m, nb], axis=0),
        "r": reshape(m, (24,)),
        "v": select(m, nb, x < -0.5),
    }


# --- reductions ---------------------------------------------------------------------


@case("reduce_sum_all_f32")
def _(rng):
    x = uniform(rng, (7, 9), "f32")
    return {"x": x}, {"out0": sum_(x)}


@case("reduce_sum_axis0_f32")
def _(rng):
    x = uniform(rng, (5, 6), "f32")
    return {"x": x}, {"out0": sum_(x, axis=0)}


@case("reduce_sum_negative_axis_keepdims")
def _(rng):
    x = uniform(rng, (3, 4, 5), "f32")
    return {"x": x}, {"out0": sum_(x, axis=-1, keepdims=True)}


@case("reduce_sum_axis_list")
def _(rng):
    x = uniform(rng, (3, 4, 5), "f32")
    return {"x": x}, {"out0": sum_(x, axis=[0, 2])}


@case("reduce_mean_axis_list_keepdims")
def _(rng):
    x = uniform(rng, (4, 3, 6), "f32")
    return {"x": x}, {"out0": mean(x, axis=[-1, 0], keepdims=True)}


@case("reduce_mean_all_f32")
def _(rng):
    x = uniform(rng, (10, 10), "f32")
    return {"x": x}, {"out0": mean(x)}


@case("reduce_max_min_f32")
def _(rng):
    x = uniform(rng, (6, 11), "f32")
    return {"x": x}, {"hi": max_(x, axis=1), "lo": min_(x, axis=-1)}


@case("reduce_max_min_i8")
def _(rng):
    x = ints(rng, (5, 6), "i8", -128, 128)
    return {"x": x}, {"hi": max_(x), "lo": min_(x), "colmax": max_(x, axis=0)}


@case("reduce_sum_f16_accumulates_f32")
def _(rng):
    x = uniform(rng, (2, 2048), "f16", 1.0, 2.0)
    return {"x": x}, {"out0": sum_(x, axis=1)}


@case("reduce_mean_f16")
def _(rng):
    x = uniform(rng, (8, 300), "f16", -1.0, 3.0)
    return {"x": x}, {"out0": mean(x, axis=-1)}


@case("reduce_sum_bf16_keepdims")
def _(rng):
    x = uniform(rng, (500, 4), "bf16", 0.0, 1.0)
    return {"x": x}, {"out0": sum_(x, axis=0, keepdims=True)}


@case("reduce_min_f16_keepdims")
def _(rng):
    x = uniform(rng, (3, 7, 4), "f16")
    return {"x": x}, {"lo": min_(x, axis=1, keepdims=True), "hi": max_(x, axis=-2, keepdims=True)}


@case("reduce_sum_i32")
def _(rng):
    x = ints(rng, (6, 9), "i32", -1000, 1000)
    return {"x": x}, {"rows": sum_(x, axis=1), "all": sum_(x)}


@case("reduce_sum_i32_wraps")
def _(rng):
    v = ints(rng, (4, 8), "i32", 1_500_000_000, 2**31).v
    v[1] = -v[1]
    v[3, ::2] = -v[3, ::2]  # this row stays in range
    x = T(v, "i32")
    return {"x": x}, {"out0": sum_(x, axis=1)}


@case("reduce_sum_i8_saturates")
def _(rng):
    v = ints(rng, (6, 8), "i8").v
    v[0] = 100
    v[1] = -100
    v[2] = [127, 0, 0, 0, 0, 0, 0, 0]
    v[3] = [127, 1, 0, 0, 0, 0, 0, 0]
    v[4] = [-128, -1, 0, 0, 0, 0, 0, 0]
    x = T(v, "i8")
    return {"x": x}, {"out0": sum_(x, axis=1)}


@case("reduce_empty_axis_list")
def _(rng):
    x = uniform(rng, (3, 5), "f32")
    return {"x": x}, {"out0": sum_(x, axis=[]) * 2.0}


@case("reduce_positional_args")
def _(rng):
    x = uniform(rng, (4, 6), "f32")
    return {"x": x}, {"s": sum_(x, 1, True), "m": max_(x, [0, 1])}


# --- matmul -------------------------------------------------------------------------


@case("matmul_2d_f32")
def _(rng):
    a, b = uniform(rng, (5, 12), "f32"), uniform(rng, (12, 7), "f32")
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_batched_3d")
def _(rng):
    a, b = uniform(rng, (3, 5, 8), "f32"), uniform(rng, (3, 8, 6), "f32")
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_batch_broadcast")
def _(rng):
    a, b = uniform(rng, (2, 1, 4, 8), "f32"), uniform(rng, (3, 8, 5), "f32")
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_2d_against_batch")
def _(rng):
    x, w = uniform(rng, (4, 3, 8), "f32"), uniform(rng, (8, 2), "f32")
    return {"x": x, "w": w}, {"out0": x @ w}


@case("matmul_rank1_left")
def _(rng):
    v, m = uniform(rng, (12,), "f32"), uniform(rng, (12, 7), "f32")
    return {"v": v, "m": m}, {"out0": v @ m}


@case("matmul_rank1_right")
def _(rng):
    m, v = uniform(rng, (2, 5, 12), "f32"), uniform(rng, (12,), "f32")
    return {"m": m, "v": v}, {"out0": m @ v}


@case("matmul_rank1_both")
def _(rng):
    u, v = uniform(rng, (64,), "f32"), uniform(rng, (64,), "f32")
    return {"u": u, "v": v}, {"out0": u @ v}


@case("matvec_rows")
def _(rng):
    a, x = uniform(rng, (3, 100, 1000), "f32"), uniform(rng, (1000, 1), "f32")
    b, y = uniform(rng, (37, 300), "bf16"), uniform(rng, (300, 1), "bf16")
    c, z = uniform(rng, (64, 520), "f16"), uniform(rng, (520, 1), "f16")
    d, w = uniform(rng, (2, 200, 2000), "bf16"), uniform(rng, (2, 2000, 1), "bf16")
    return {"a": a, "x": x, "b": b, "y": y, "c": c, "z": z, "d": d, "w": w}, {
        "p": a @ x,
        "q": b @ y,
        "r": c @ z,
        "s": d @ w,
    }


@case("matmul_f16_accumulates_f32")
def _(rng):
    a, b = uniform(rng, (16, 96), "f16"), uniform(rng, (96, 24), "f16")
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_bf16_to_f32")
def _(rng):
    a, b = uniform(rng, (8, 40), "bf16"), uniform(rng, (40, 8), "bf16")
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_i8_to_i32")
def _(rng):
    a, b = ints(rng, (6, 64), "i8", -128, 128), ints(rng, (64, 5), "i8", -128, 128)
    return {"a": a, "b": b}, {"out0": a @ b}


@case("matmul_f16_cast_down")
def _(rng):
    x, w = uniform(rng, (6, 32), "f16"), uniform(rng, (32, 10), "f16")
    b = uniform(rng, (10,), "f32")
    return {"x": x, "w": w, "b": b}, {"out0": cast(x @ w + b, "f16")}


@case("matmul_precedence")
def _(rng):
    a, b, c = uniform(rng, (4, 6), "f32"), uniform(rng, (6, 3), "f32"), uniform(rng, (4, 3), "f32")
    return {"a": a, "b": b, "c": c}, {"x": (a @ b) * 2.0 + c, "y": (a * 0.5) @ b}


@case("matmul_large")
def _(rng):
    a, b = uniform(rng, (32, 64), "f32"), uniform(rng, (64, 48), "f32")
    bias = uniform(rng, (48,), "f32")
    return {"a": a, "b": b, "bias": bias}, {"out0": a @ b + bias}


@case("matmul_awkward_f16_shapes")
def _(rng):
    shapes = {
        "a": (17, 1000), "b": (1000, 15), "c": (1000, 17), "d": (17, 15),
        "e": (15, 15), "f": (15, 1000), "g": (1, 1000), "h": (1000, 17),
        "i": (15, 1), "j": (1, 17), "k": (1000, 17), "l": (17, 1),
    }
    t = {n: uniform(rng, s, "f16") for n, s in shapes.items()}
    outs = {
        "x": t["a"] @ t["b"], "y": t["c"] @ t["d"], "z": t["e"] @ t["f"],
        "w": t["g"] @ t["h"], "v": t["i"] @ t["j"], "u": t["k"] @ t["l"],
    }
    return t, outs


@case("matmul_awkward_dtypes")
def _(rng):
    t = {
        "a": uniform(rng, (17, 1000), "bf16"), "b": uniform(rng, (1000, 15), "bf16"),
        "c": uniform(rng, (15, 17), "f32"), "d": uniform(rng, (17, 1000), "f32"),
        "e": uniform(rng, (1, 1000), "f32"), "f": uniform(rng, (1000, 17), "f32"),
        "g": ints(rng, (17, 1000), "i8", -128, 128), "h": ints(rng, (1000, 15), "i8", -128, 128),
        "i": ints(rng, (1000, 17), "i8", -128, 128), "j": ints(rng, (17, 1), "i8", -128, 128),
    }
    outs = {
        "x": t["a"] @ t["b"], "y": t["c"] @ t["d"], "z": t["e"] @ t["f"],
        "w": t["g"] @ t["h"], "v": t["i"] @ t["j"],
    }
    return t, outs


@case("matmul_awkward_batch_transposed")
def _(rng):
    t = {
        "a": uniform(rng, (17, 40), "f16"), "b": uniform(rng, (3, 15, 40), "f16"),
        "c": uniform(rng, (3, 33, 17), "f16"), "d": uniform(rng, (3, 33, 15), "f16"),
        "e": uniform(rng, (2, 1, 15, 33), "f32"), "f": uniform(rng, (3, 17, 33), "f32"),
        "p": uniform(rng, (3, 17, 20), "bf16"), "q": uniform(rng, (20, 15), "bf16"),
    }
    outs = {
        "x": t["a"] @ transpose(t["b"], (0, 2, 1)),
        "y": transpose(t["c"], (0, 2, 1)) @ t["d"],
        "z": t["e"] @ transpose(t["f"], (0, 2, 1)),
        "w": t["p"] @ t["q"],
    }
    return t, outs


@case("matmul_awkward_relu_cast")
def _(rng):
    t = {
        "a": uniform(rng, (17, 100), "f16"), "b": uniform(rng, (100, 1000), "f16"),
        "c": uniform(rng, (15, 1000), "bf16"), "d": uniform(rng, (1000, 17), "bf16"),
        "e": uniform(rng, (1000, 15), "f32"), "f": uniform(rng, (15, 17), "f32"),
        "g": uniform(rng, (15, 17), "f16"), "h": uniform(rng, (17, 15), "f16"),
    }
    outs = {
        "x": cast(relu(t["a"] @ t["b"]), "f16"),
        "y": cast(relu(t["c"] @ t["d"]), "bf16"),
        "z": relu(t["e"] @ t["f"]),
        "w": cast(t["g"] @ t["h"], "f16"),
    }
    return t, outs


# --- shape builtins ------------------------------------------------------------------


@case("reshape_infer_minus_one")
def _(rng):
    x = uniform(rng, (4, 6), "f32")
    return {"x": x}, {"a": reshape(x, (8, 3)), "b": reshape(x, (2, 6, 2))}


@case("reshape_symbolic_dims")
def _(rng):
    x = uniform(rng, (5, 7), "f32")
    s = sum_(x, axis=1)
    return {"x": x}, {"out0": x - reshape(s, (5, 1))}


@case("reshape_symbolic_minus_one")
def _(rng):
    x = uniform(rng, (3, 4, 8), "f32")
    return {"x": x}, {"out0": reshape(x, (3, 32))}


@case("transpose_perm")
def _(rng):
    x = uniform(rng, (2, 3, 4), "f32")
    return {"x": x}, {"out0": transpose(x, (1, 2, 0))}


@case("transpose_negative_axes")
def _(rng):
    x = uniform(rng, (2, 3, 4), "f32")
    return {"x": x}, {"out0": transpose(x, (0, -1, -2))}


@case("transpose_default_reverse")
def _(rng):
    x, m = uniform(rng, (2, 3, 4), "f32"), ints(rng, (5, 3), "i32")
    return {"x": x, "m": m}, {"xt": transpose(x), "mt": transpose(m)}


@case("broadcast_to_f32")
def _(rng):
    v, c = uniform(rng, (4,), "f32"), uniform(rng, (3, 1), "f32")
    return {"v": v, "c": c}, {"rows": broadcast_to(v, (3, 4)), "cols": broadcast_to(c, (2, 3, 5))}


@case("broadcast_to_dim_from_directive")
def _(rng):
    x = uniform(rng, (6,), "f32")
    return {"x": x}, {"out0": broadcast_to(x, (3, 6))}


@case("concat_two_default_axis")
def _(rng):
    a, b = uniform(rng, (2, 4), "f32"), uniform(rng, (3, 4), "f32")
    return {"a": a, "b": b}, {"out0": concat([a, b])}


@case("concat_three_negative_axis")
def _(rng):
    a, b, c = uniform(rng, (3, 2), "f32"), uniform(rng, (3, 1), "f32"), uniform(rng, (3, 4), "f32")
    return {"a": a, "b": b, "c": c}, {"out0": concat([a, b, c], axis=-1)}


@case("concat_i8_symbolic")
def _(rng):
    a, b = ints(rng, (3, 4), "i8"), ints(rng, (3, 4), "i8")
    stacked = concat([reshape(a, (1, 3, 4)), reshape(b - a, (1, 3, 4))], axis=0)
    return {"a": a, "b": b}, {"ab": concat([a, b], axis=1), "stacked": stacked}


@case("slice_negative_bounds")
def _(rng):
    x = uniform(rng, (10, 4), "f32")
    return {"x": x}, {"last4": slice_(x, axis=0, start=-4),
                      "mid": slice_(x, axis=0, start=1, end=-2)}


@case("slice_defaults")
def _(rng):
    x = uniform(rng, (6, 5), "f32")
    return {"x": x}, {"top": slice_(x, end=3), "right": slice_(x, axis=1, start=2), "same": slice_(x)}


@case("slice_symbolic_other_axis")
def _(rng):
    x = uniform(rng, (5, 8), "f32")
    return {"x": x}, {"out0": slice_(x, axis=-1, start=2, end=-2)}


@case("slice_bounds_name_dims")
def _(rng):
    x = uniform(rng, (5, 9), "f32")
    y = uniform(rng, (5, 4), "f32")
    return {"x": x, "y": y}, {"first": slice_(x, axis=1, end=4) + y, "all": x,
                              "rest": sum_(slice_(x, axis=1, start=4), axis=1)}


@case("zeros_full_explicit_dtypes")
def _(rng):
    x = uniform(rng, (2, 3), "f32")
    return {"x": x}, {"z": x + zeros((2, 3), "f32"), "h": full((4,), 2.5, "f16"),
                      "n": full((2, 2), -7, "i8"), "b": full((3,), 0.1, "bf16")}


@case("full_zeros_default_dtypes")
def _(rng):
    x = uniform(rng, (2,), "f32")
    return {"x": x}, {"z": zeros((2,)) + x, "f": full((2,), 1.5), "i": full((3,), 7),
                      "b": full((2,), True)}


@case("zeros_dim_from_directive")
def _(rng):
    x = uniform(rng, (4,), "f32")
    return {"x": x}, {"y": x * 2.0, "acc": zeros((5,), "f32")}


# --- composites ----------------------------------------------------------------------


@case("softmax_default_axis")
def _(rng):
    x = uniform(rng, (6, 10), "f32", -3.0, 3.0)
    return {"x": x}, {"out0": softmax(x)}


@case("softmax_explicit_axis")
def _(rng):
    x = uniform(rng, (2, 5, 3), "f32", -3.0, 3.0)
    return {"x": x}, {"mid": softmax(x, axis=1), "first": softmax(x, axis=0)}


@case("softmax_f16")
def _(rng):
    x = uniform(rng, (8, 64), "f16", -4.0, 4.0)
    return {"x": x}, {"out0": softmax(x, axis=-1)}


@case("softmax_large")
def _(rng):
    x = uniform(rng, (64, 64), "f32", -8.0, 8.0)
    return {"x": x}, {"out0": softmax(x)}


@case("log_softmax_axes")
def _(rng):
    x = uniform(rng, (4, 12), "f32", -3.0, 3.0)
    return {"x": x}, {"rows": log_softmax(x), "cols": log_softmax(x, axis=0)}


@case("log_softmax_bf16")
def _(rng):
    x = uniform(rng, (3, 16), "bf16", -3.0, 3.0)
    return {"x": x}, {"out0": log_softmax(x)}


@case("layer_norm_default_eps")
def _(rng):
    x = uniform(rng, (6, 20), "f32", -2.0, 2.0)
    g, b = uniform(rng, (20,), "f32", 0.5, 1.5), uniform(rng, (20,), "f32")
    return {"x": x, "g": g, "b": b}, {"out0": layer_norm(x, g, b)}


@case("layer_norm_f16_explicit_eps")
def _(rng):
    x = uniform(rng, (4, 32), "f16", -2.0, 2.0)
    g, b = uniform(rng, (32,), "f16", 0.5, 1.5), uniform(rng, (32,), "f16")
    return {"x": x, "g": g, "b": b}, {"out0": layer_norm(x, g, b, eps=1e-3)}


@case("layer_norm_named_args")
def _(rng):
    x = uniform(rng, (2, 3, 16), "f32", -2.0, 2.0)
    gamma, beta = uniform(rng, (16,), "f32", 0.5, 1.5), uniform(rng, (16,), "f32")
    return {"x": x, "gamma": gamma, "beta": beta}, {"out0": layer_norm(x, gamma, beta, eps=0.01)}


@case("rms_norm_default_eps")
def _(rng):
    x, g = uniform(rng, (6, 16), "f32", -2.0, 2.0), uniform(rng, (16,), "f32", 0.5, 1.5)
    return {"x": x, "g": g}, {"out0": rms_norm(x, g)}


@case("rms_norm_bf16_explicit_eps")
def _(rng):
    x, g = uniform(rng, (4, 64), "bf16", -2.0, 2.0), uniform(rng, (64,), "bf16", 0.5, 1.5)
    return {"x": x, "g": g}, {"out0": rms_norm(x, g, eps=1e-3)}


# --- rows longer than UB: streamed in chunks, once per pass ------------------------------


@case("rows_chunked_softmax_f16")
def _(rng):
    x = uniform(rng, (3, 20000), "f16", -8.0, 8.0)
    return {"x": x}, {"out0": softmax(x)}


@case("rows_periodic_mask_softmax")
def _(rng):
    # A mask broadcast over heads and a head-major view of a seq-major
    # tensor: rows that repeat every 7 rows (strides [0, 40]) and rows at
    # (r / 7)·40 + (r % 7)·2400 — read in place, not copied out first.
    x = uniform(rng, (60, 7, 40), "f32", -4.0, 4.0)
    mask = uniform(rng, (7, 40), "f16", -4.0, 0.0)
    z = uniform(rng, (7, 60, 40), "f32", -2.0, 2.0)
    s = x * 0.125 + cast(mask, "f32")
    return {"x": x, "mask": mask, "z": z}, {
        "p": softmax(s), "q": softmax(x + transpose(z, (1, 0, 2)))}


@case("rows_repeated_within_heads_softmax")
def _(rng):
    # `[H, 1, n]` over `[H, S, n]`: rows repeated within each head, neither
    # one row stride nor periodic, so copied out whole before the row stage.
    x = uniform(rng, (3, 5, 40), "f32", -4.0, 4.0)
    y = uniform(rng, (3, 1, 40), "f32", -4.0, 4.0)
    return {"x": x, "y": y}, {"out0": softmax(x + y)}


@case("rows_chunked_periodic_mask_softmax_f16")
def _(rng):
    x = uniform(rng, (2, 3, 20000), "f16", -6.0, 6.0)
    mask = uniform(rng, (3, 20000), "f16", -6.0, 0.0)
    return {"x": x, "mask": mask}, {"out0": softmax(x + mask)}


@case("rows_chunked_layer_norm_f32")
def _(rng):
    x = uniform(rng, (2, 17000), "f32", -2.0, 3.0)
    g, b = uniform(rng, (17000,), "f32", 0.5, 1.5), uniform(rng, (17000,), "f32")
    return {"x": x, "g": g, "b": b}, {"out0": layer_norm(x, g, b)}


@case("rows_chunked_layer_norm_f16")
def _(rng):
    x = uniform(rng, (3, 30000), "f16", -2.0, 3.0)
    g, b = uniform(rng, (30000,), "f16", 0.5, 1.5), uniform(rng, (30000,), "f16")
    return {"x": x, "g": g, "b": b}, {"out0": layer_norm(x, g, b)}


@case("rows_chunked_centred_squares_f16")
def _(rng):
    x = uniform(rng, (2, 30000), "f16", -2.0, 2.0)
    s = x * x
    return {"x": x}, {"out0": s - mean(s, axis=-1, keepdims=True)}


@case("rows_chunked_logsumexp_f32")
def _(rng):
    x = uniform(rng, (3, 16500), "f32", -6.0, 6.0)
    m = max_(x, axis=-1, keepdims=True)
    lse = log(sum_(exp(x - m), axis=-1)) + reshape(m, (3,))
    return {"x": x}, {"out0": lse}


@case("rows_chunked_rms_norm_bf16")
def _(rng):
    x, g = uniform(rng, (2, 33000), "bf16", -2.0, 2.0), uniform(rng, (33000,), "bf16", 0.5, 1.5)
    return {"x": x, "g": g}, {"out0": rms_norm(x, g)}


# --- short rows: computed transposed -----------------------------------------------------


@case("rows_transposed_softmax_f32_last_axis_3")
def _(rng):
    x = uniform(rng, (16, 250, 3), "f32", -8.0, 8.0)
    return {"x": x}, {"out0": softmax(x)}


@case("rows_transposed_layer_norm_f16")
def _(rng):
    x = uniform(rng, (130, 5), "f16", -2.0, 3.0)
    g, b = uniform(rng, (5,), "f16", 0.5, 1.5), uniform(rng, (5,), "f16")
    return {"x": x, "g": g, "b": b}, {"out0": layer_norm(x, g, b)}


@case("rows_transposed_logsumexp_bf16")
def _(rng):
    x = uniform(rng, (4000, 6), "bf16", -4.0, 4.0)
    m = max_(x, axis=-1, keepdims=True)
    lse = log(sum_(exp(x - m), axis=-1)) + reshape(m, (4000,))
    return {"x": x}, {"out0": lse}


@case("rows_transposed_scaled_rows_i32")
def _(rng):
    x, r = ints(rng, (4000, 7), "i32"), ints(rng, (4000, 1), "i32")
    return {"x": x, "r": r}, {"out0": x * r - sum_(x, axis=-1, keepdims=True)}


# --- broadcasting ---------------------------------------------------------------------


@case("broadcast_scalar_param")
def _(rng):
    x, s, t = uniform(rng, (4, 8), "f32"), uniform(rng, (), "f32"), uniform(rng, (), "f32")
    return {"x": x, "s": s, "t": t}, {"out0": x * s + t}


@case("broadcast_row")
def _(rng):
    x, r = uniform(rng, (3, 6), "f32"), uniform(rng, (6,), "f32")
    return {"x": x, "r": r}, {"xr": x + r, "rx": r - x}


@case("broadcast_column")
def _(rng):
    x, c = uniform(rng, (4, 9), "f32"), uniform(rng, (4, 1), "f32")
    return {"x": x, "c": c}, {"out0": x - c}


@case("broadcast_rank_extension")
def _(rng):
    a, b, c = uniform(rng, (2, 3, 4), "f32"), uniform(rng, (3, 4), "f32"), uniform(rng, (4,), "f32")
    return {"a": a, "b": b, "c": c}, {"s": a + b + c, "p": c * a}


@case("broadcast_both_stretch")
def _(rng):
    u, v = uniform(rng, (3, 1), "f32"), uniform(rng, (1, 7), "f32")
    a, b = uniform(rng, (4, 1, 3), "f32"), uniform(rng, (5, 1), "f32")
    return {"u": u, "v": v, "a": a, "b": b}, {"uv": u * v, "ab": a + b}


@case("broadcast_i32_column")
def _(rng):
    r, c = ints(rng, (6, 1), "i32"), ints(rng, (5,), "i32")
    return {"r": r, "c": c}, {"out0": r * 10 + c}


# --- literals -------------------------------------------------------------------------


@case("weak_literal_f16")
def _(rng):
    x = uniform(rng, (48,), "f16", -4.0, 4.0)
    return {"x": x}, {"out0": x * 3 + 0.1}


@case("weak_literal_bf16")
def _(rng):
    x = uniform(rng, (48,), "bf16", -4.0, 4.0)
    return {"x": x}, {"y": x * 0.3 + 1, "z": 2.0 - x}


@case("weak_literal_i8")
def _(rng):
    x = ints(rng, (32,), "i8", -128, 128)
    return {"x": x}, {"y": x * -3 + 100, "h": x / 2}


@case("weak_literal_i32")
def _(rng):
    x = ints(rng, (32,), "i32", -100000, 100000)
    return {"x": x}, {"y": x * 1000 - 7, "q": (x - 1) / 3}


@case("int_literal_meets_float")
def _(rng):
    x = uniform(rng, (5, 5), "f32")
    return {"x": x}, {"out0": 2 * x + 1}


@case("literal_constant_folding")
def _(rng):
    x, n = uniform(rng, (16,), "f32"), ints(rng, (16,), "i8")
    return {"x": x, "n": n}, {"y": x * (0.5 * 2.0) + math.sqrt(4.0), "m": n + (100 + 100 - 150)}


@case("literal_comparison_fold")
def _(rng):
    x = uniform(rng, (12,), "f32")
    return {"x": x}, {"t": select(1.0 < 2.0, x, -x), "f": select(2 == 3, x, -x)}


@case("weak_literal_default_result")
def _(rng):
    x = uniform(rng, (4,), "f16")
    return {"x": x}, {"y": x, "c": lit(0.5 * 3.0, "f32"), "n": lit(2 + 3, "i32")}


@case("let_annotation_literal_dtype")
def _(rng):
    x = ints(rng, (8,), "i8", -60, 60)
    three, half = lit(3, "i8"), lit(0.5, "f16")
    return {"x": x}, {"y": x * three, "half": half}


@case("let_type_annotation")
def _(rng):
    a, b = uniform(rng, (3, 5), "f32"), uniform(rng, (3, 5), "f32")
    p = a * b
    s = sum_(p, axis=1)
    t = sum_(s)
    return {"a": a, "b": b}, {"out0": p - reshape(s, (3, 1)) + t}


@case("multi_output_unnamed")
def _(rng):
    x, n = uniform(rng, (4, 6), "f32"), ints(rng, (4, 6), "i32")
    return {"x": x, "n": n}, {"out0": max_(x, axis=1), "out1": sum_(n, axis=0)}


# --- kernel calls ------------------------------------------------------------------------


@case("kernel_call_simple")
def _(rng):
    a, b = uniform(rng, (10,), "f32"), uniform(rng, (10,), "f32")
    return {"a": a, "b": b}, {"out0": sqrt(a * a + b * b)}


@case("kernel_call_chain")
def _(rng):
    x = uniform(rng, (3, 7), "f32")
    leaf = relu(x) + 0.5
    mid = leaf * 2.0
    return {"x": x}, {"out0": mid - 1.0}


@case("kernel_call_returned_whole")
def _(rng):
    x = uniform(rng, (5, 9), "f32")
    y = x * 2.0
    return {"x": x}, {"mean": mean(y, 1), "spread": max_(y, 1) - min_(y, 1)}


@case("select_of_literals_is_weak")
def _(rng):
    h, g, x = uniform(rng, (7, 33), "f16", -2.0, 2.0), ints(rng, (33,), "i8", -128, 128), uniform(rng, (7, 33), "f32")
    pos = h > 0.0
    # The literals take the dtype each select meets; `-m * 2.0 + 1.0` folds per branch.
    m = select(pos, lit(1.0, "f16"), lit(0.0, "f16"))
    n = select(pos, lit(-1.0, "f16"), lit(1.0, "f16"))
    return {"h": h, "g": g, "x": x}, {
        "a": h * m + n,
        "b": g + select(g > 0, lit(1, "i8"), lit(2, "i8")),
        "c": select(h < 0.5, lit(0.25, "f16"), lit(4.0, "f16")),
        "d": h * select(pos, lit(3.0, "f16"), lit(0.5, "f16")),
        "e": x + select(x > 0.0, lit(1.0, "f32"), lit(2.5, "f32")),
    }


@case("tanh_erf_small_arguments")
def _(rng):
    mag = 10.0 ** rng.uniform(-9.0, 0.3, size=2000)
    sign = np.where(rng.integers(0, 2, size=2000) == 1, 1.0, -1.0)
    edges = [1e-30, -1e-20, 0.2499, 0.25, 0.2501, -0.2499, -0.25, -0.2501, 0.125, 0.5]
    x = const(np.concatenate([mag * sign, edges]), "f32")
    return {"x": x}, {"t": tanh(x) * 1000.0, "e": erf(x) * 1000.0}


@case("kernel_call_symbolic_unify")
def _(rng):
    a, b, c = uniform(rng, (4,), "f32"), uniform(rng, (6,), "f32"), uniform(rng, (4, 6), "f32")
    return {"a": a, "b": b, "c": c}, {"out0": reshape(a, (4, 1)) * reshape(b, (1, 6)) + c}


@case("kernel_call_named_args")
def _(rng):
    s, a, b = uniform(rng, (), "f32"), uniform(rng, (9,), "f32"), uniform(rng, (9,), "f32")
    return {"s": s, "a": a, "b": b}, {"p": s * a + b, "q": s * b + a}


@case("kernel_call_f16_callee")
def _(rng):
    x, w = uniform(rng, (4, 16), "f16", -3.0, 3.0), uniform(rng, (16, 8), "f16")
    act = cast(gelu(cast(x, "f32")), "f16")
    return {"x": x, "w": w}, {"out0": act @ w}


@case("comments_nested")
def _(rng):
    x, y = uniform(rng, (8,), "f32"), uniform(rng, (8,), "f32")
    return {"x": x, "y": y}, {"out0": x * y + x}


# --- the spec's examples ----------------------------------------------------------------


def spec_mlp(x, w, b):
    acc = x @ w
    return cast(gelu(acc + b), "f16")


def spec_attention(q, k, v):
    s = (q @ transpose(k, (0, 2, 1))) * 0.08838834764831845
    p = softmax(s, axis=-1)
    return cast(cast(p, "f16") @ v, "f16")


@case("spec_mlp")
def _(rng):
    x, w = uniform(rng, (8, 32), "f16"), uniform(rng, (32, 16), "f16")
    b = uniform(rng, (16,), "f32")
    return {"x": x, "w": w, "b": b}, {"out0": spec_mlp(x, w, b)}


@case("spec_softmax_rows")
def _(rng):
    x = uniform(rng, (4, 8), "f32", -3.0, 3.0)
    m = max_(x, axis=-1, keepdims=True)
    e = exp(x - m)
    return {"x": x}, {"out0": e / sum_(e, axis=-1, keepdims=True)}


@case("spec_attention")
def _(rng):
    q, k, v = (uniform(rng, (2, 8, 16), "f16") for _ in range(3))
    return {"q": q, "k": k, "v": v}, {"out0": spec_attention(q, k, v)}


@case("spec_example_file_attention")
def _(rng):
    q, k, v = (uniform(rng, (2, 16, 32), "f16", -2.0, 2.0) for _ in range(3))
    return {"q": q, "k": k, "v": v}, {"out0": spec_attention(q, k, v)}


@case("spec_layer_stats")
def _(rng):
    x = uniform(rng, (5, 16), "f32")
    mu = mean(x, axis=1)
    d = x - reshape(mu, (5, 1))
    return {"x": x}, {"mean": mu, "rstd": rsqrt(mean(d * d, axis=1) + 1e-5)}


# --- miscellany ---------------------------------------------------------------------------


@case("tensor_scalar_constants")
def _(rng):
    n = 70  # a masked tail after a whole repeat
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-40, 3.4e38, -3.4e38, 0.1, -0.1, 2.5]

    def floats(dt, lo, hi):
        x = uniform(rng, (n,), dt, lo, hi)
        return T(np.concatenate([const(special, dt).v, x.v[len(special):]]), dt)

    f, h, b = floats("f32", -4.0, 4.0), floats("f16", -4.0, 4.0), floats("bf16", -4.0, 4.0)
    edges32 = [-(2**31), 2**31 - 1, 0, -1, 1, 2**31 - 7, -(2**31) + 6, 715827882, -715827883]
    i = T(np.concatenate([np.array(edges32, np.int32),
                          ints(rng, (n - len(edges32),), "i32", -(2**31), 2**31).v]), "i32")
    edges8 = [-128, 127, 0, -1, 1, 27, 28, -43, 43, -5, -6]
    j = T(np.concatenate([np.array(edges8, np.int8),
                          ints(rng, (n - len(edges8),), "i8", -128, 128).v]), "i8")
    inf = T(np.array(np.inf, np.float32), "f32")
    outs = {
        "fa": f + 0.1, "fr": 3.0 + f, "fs": f - 0.1, "fi": binary(f, inf, np.subtract),
        "fc": 2.5 - f, "fm": f * -0.0, "fx": maximum(f, -0.0), "fn": minimum(0.0, f),
        "fd": f / 3.0,
        "ha": h * 0.333, "hs": h - 0.5, "hx": maximum(1.5, h),
        "ba": b + 0.1, "bs": b - 3.0, "bn": minimum(b, -1.0),
        "ia": i + 7, "is": i - -(2**31), "im": -3 * i, "ix": maximum(i, 0), "ic": 100 - i,
        "ja": j - -128, "js": j + 100, "jn": minimum(-5, j), "jm": j * 3,
    }
    return {"f": f, "h": h, "b": b, "i": i, "j": j}, outs


@case("online_softmax_neg_inf_rows")
def _(rng):
    b, n = 5, 20000  # rows longer than UB holds: chunked, online
    x = np.full((b, n), -np.inf)
    x[1, 15000] = 1.5  # one finite value
    x[2, n // 2:] = rng.uniform(-3.0, 3.0, n - n // 2)  # a finite second half
    x[3, [7, 12345]] = -65504.0  # only the lowest finite f16 and -inf
    x[4] = rng.uniform(-3.0, 3.0, n)
    x[4, ::97] = -np.inf  # x[0] stays -inf throughout: exp(-inf - -inf) is NaN
    x = const(x, "f16")
    xf = cast(x, "f32")
    m = max_(xf, axis=-1, keepdims=True)
    s = sum_(exp(xf - m), axis=-1)
    return {"x": x}, {"s": s, "lse": log(s) + reshape(m, (b,))}


@case("online_softmax_neg_inf_rows_softmax")
def _(rng):
    b, n = 3, 20000  # rows longer than UB holds: chunked, online
    x = np.full((b, n), -np.inf)
    x[1, 15000] = 1.5  # one finite value
    x[2] = rng.uniform(-3.0, 3.0, n)
    x[2, ::97] = -np.inf
    x = const(x, "f16")
    return {"x": x}, {"out0": softmax(x, axis=-1)}


@case("nan_inf_propagation")
def _(rng):
    x = const([np.nan, np.inf, -np.inf, 1.0, -1.0, np.nan, 0.5, -np.inf], "f32")
    y = const([1.0, -np.inf, 2.0, np.nan, np.inf, np.nan, 0.25, 3.0], "f32")
    return {"x": x, "y": y}, {"s": x + y, "m": maximum(x, y), "r": relu(x), "e": exp(x),
                              "top": max_(x)}


@case("unary_f16")
def _(rng):
    x, p = uniform(rng, (64,), "f16", -3.0, 3.0), uniform(rng, (64,), "f16", 0.05, 4.0)
    return {"x": x, "p": p}, {"e": exp(x), "l": log(p), "s": sqrt(p), "rs": rsqrt(p),
                              "inv": reciprocal(p), "sg": sigmoid(x), "t": tanh(x),
                              "er": erf(x), "ab": abs_(x)}


@case("unary_bf16")
def _(rng):
    x, p = uniform(rng, (64,), "bf16", -3.0, 3.0), uniform(rng, (64,), "bf16", 0.05, 4.0)
    return {"x": x, "p": p}, {"e": exp(x), "l": log(p), "s": sqrt(p),
                              "g": gelu(x, approximate="tanh"), "sl": silu(x), "pw": pow_(p, x)}


@case("relu_integers")
def _(rng):
    n, m = ints(rng, (20,), "i32"), ints(rng, (20,), "i8")
    return {"n": n, "m": m}, {"rn": relu(n), "rm": relu(m), "am": abs_(m)}


@case("div_f16_broadcast")
def _(rng):
    x, d = uniform(rng, (6, 10), "f16", -4.0, 4.0), away(rng, (6, 1), "f16", 0.25, 2.0)
    return {"x": x, "d": d}, {"q": x / d, "r": reciprocal(d)}


@case("mixed_dtype_pipeline")
def _(rng):
    q, scale = ints(rng, (8, 16), "i8", -128, 128), uniform(rng, (16,), "f32", 0.001, 0.05)
    h = cast(cast(q, "f32") * scale, "bf16")
    return {"q": q, "scale": scale}, {"deq": h, "rows": sum_(cast(h, "f32"), axis=-1)}


# ==========================================================================
# .tsr signature parsing, validation and writing
# ==========================================================================


def strip_comments(src):
    """Remove // and (nested) /* */ comments, keeping line breaks."""
    out, i, depth, n = [], 0, 0, len(src)
    while i < n:
        two = src[i:i + 2]
        if depth == 0 and two == "//":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if two == "/*":
            depth += 1
            i += 2
            continue
        if depth and two == "*/":
            depth -= 1
            i += 2
            continue
        if depth == 0 or src[i] == "\n":
            out.append(src[i])
        i += 1
    assert depth == 0, "unterminated block comment"
    return "".join(out)


def split_top(s):
    """Split on commas outside brackets and parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse_type(s):
    m = re.fullmatch(r"(f16|bf16|f32|i8|i32|bool)\s*(?:\[(.*)\])?", s.strip(), re.S)
    assert m, f"bad type {s!r}"
    dims = tuple(d.strip() for d in m.group(2).split(",")) if m.group(2) and m.group(2).strip() else ()
    return m.group(1), tuple(int(d) if d.isdigit() else d for d in dims)


def parse_kernels(src):
    kernels = {}
    for m in re.finditer(r"\bkernel\s+(\w+)\s*\((.*?)\)\s*->\s*(.*?)\{", strip_comments(src), re.S):
        name, params, result = m.group(1), m.group(2), m.group(3).strip()
        ps = []
        for p in split_top(params):
            pname, ptype = p.split(":", 1)
            ps.append((pname.strip(), *parse_type(ptype)))
        rs = []
        if result.startswith("("):
            items = split_top(result[1:-1])
            for i, item in enumerate(items):
                if re.match(r"\w+\s*:", item):
                    rname, rtype = item.split(":", 1)
                    rs.append((rname.strip(), *parse_type(rtype)))
                else:
                    rs.append((f"out{i}", *parse_type(item)))
        else:
            rs.append(("out0", *parse_type(result)))
        kernels[name] = (ps, rs)
    return kernels


def directives(src):
    kernel, dims = None, {}
    for line in src.splitlines():
        m = re.match(r"//@\s*kernel:\s*(\w+)\s*$", line)
        if m:
            kernel = m.group(1)
        m = re.match(r"//@\s*dims:\s*(.*)$", line)
        if m:
            for item in m.group(1).split(","):
                k, v = item.split("=")
                dims[k.strip()] = int(v)
    return kernel, dims


def validate(name, src, inputs, outputs):
    """Check the model against the kernel signature; returns nothing or raises."""
    assert re.search(r"^//!", src, re.M), f"{name}: no //! description"
    kernels = parse_kernels(src)
    kname, dims = directives(src)
    if kname is None:
        assert len(kernels) == 1, f"{name}: several kernels need //@ kernel:"
        kname = next(iter(kernels))
    params, results = kernels[kname]
    bind = dict(dims)

    def unify(what, dt, shape, value):
        assert value.dt == dt, f"{name}: {what} is {value.dt}, the signature says {dt}"
        assert value.v.dtype == STORAGE[dt], f"{name}: {what} stored as {value.v.dtype}"
        assert len(value.shape) == len(shape), f"{name}: {what} rank {value.shape} vs {shape}"
        for d, n in zip(shape, value.shape):
            if isinstance(d, int):
                assert d == n, f"{name}: {what} shape {value.shape} vs {shape}"
            else:
                assert bind.setdefault(d, n) == n, f"{name}: {what}: dim {d} is {bind[d]} and {n}"

    assert list(inputs) == [p[0] for p in params], f"{name}: inputs {list(inputs)} vs {params}"
    for pname, dt, shape in params:
        unify(f"input {pname}", dt, shape, inputs[pname])
    assert list(outputs) == [r[0] for r in results], f"{name}: outputs {list(outputs)} vs {results}"
    for rname, dt, shape in results:
        unify(f"output {rname}", dt, shape, outputs[rname])


def npy_bytes(arr):
    buf = io.BytesIO()
    arr = np.array(arr, order="C", copy=True)  # (np.ascontiguousarray would make 0-d arrays 1-d)
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def build(name):
    fn, seed = CASES[name]
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        inputs, outputs = fn(rng)
    src = (HERE / f"{name}.tsr").read_text(encoding="utf-8")
    validate(name, src, inputs, outputs)
    files = {}
    for t in list(inputs.values()) + list(outputs.values()):
        assert np.load(io.BytesIO(npy_bytes(t.v))).shape == t.shape
    for k, t in inputs.items():
        files[f"inputs/{k}.npy"] = npy_bytes(t.v)
    for k, t in outputs.items():
        files[f"expected/{k}.npy"] = npy_bytes(t.v)
    return files


def sync_fixtures(root, name, files, check):
    """Makes `root`'s .npy fixtures exactly `files` ({relative path: bytes}),
    or with `check` only reports the differences. Returns how many files were
    (or would be) written or removed."""
    stale = 0
    on_disk = {p.relative_to(root).as_posix() for p in root.glob("*/*.npy")} if root.exists() else set()
    for rel in sorted(on_disk - set(files)):
        stale += 1
        print(f"{name}: stale file {rel}", file=sys.stderr)
        if not check:
            (root / rel).unlink()
    for rel, data in files.items():
        path = root / rel
        if path.exists() and path.read_bytes() == data:
            continue
        stale += 1
        if check:
            print(f"{name}: {rel} is out of date", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return stale


def finish(stale, cases, check):
    """Exits with an error when `check` found differences; prints the count."""
    if check and stale:
        sys.exit(f"{stale} fixture file(s) out of date")
    verb = "checked" if check else "generated"
    print(f"{verb} {cases} case(s)" + ("" if check else f", {stale} file(s) written"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", metavar="NAME", help="regenerate only this case")
    ap.add_argument("--check", action="store_true", help="verify the files on disk, write nothing")
    args = ap.parse_args()

    tsr = {p.stem for p in HERE.glob("*.tsr")}
    missing_tsr = sorted(set(CASES) - tsr)
    missing_model = sorted(tsr - set(CASES))
    if missing_tsr or missing_model:
        for n in missing_tsr:
            print(f"error: model `{n}` is registered but {n}.tsr does not exist", file=sys.stderr)
        for n in missing_model:
            print(f"error: {n}.tsr has no registered model", file=sys.stderr)
        sys.exit(1)

    names = sorted(CASES)
    if args.only:
        unknown = [n for n in args.only if n not in CASES]
        if unknown:
            sys.exit(f"error: unknown case(s): {', '.join(unknown)}")
        names = args.only

    stale = sum(sync_fixtures(HERE / name, name, build(name), args.check) for name in names)
    finish(stale, len(names), args.check)

if __name__ == "__main__":
    main()
