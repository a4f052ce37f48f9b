#!/usr/bin/env python3
"""Fixtures for the hand-written assembly kernels in this folder.

For every kernel NAME.s this writes NAME/inputs/PARAM.npy and
NAME/expected/RESULT.npy from a numpy model written independently of Tessera.
The shapes must match the `.equ` defaults of the .s file. Deterministic:
running it again leaves `git status` clean.

    python3 testsuite/cases/asm/generate.py [--only NAME]
"""
import argparse
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def uniform(rng, shape, dtype):
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def gemm_f16(seed, m, n, k):
    rng = np.random.default_rng(seed)
    a = uniform(rng, (m, k), np.float16)
    b = uniform(rng, (k, n), np.float16)
    c = (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    return {"a": a, "b": b}, {"c": c}


def vadd(seed, n, dtype):
    rng = np.random.default_rng(seed)
    a = uniform(rng, (n,), dtype)
    b = uniform(rng, (n,), dtype)
    return {"a": a, "b": b}, {"c": a + b}


def softmax(seed, r, c):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((r, c)) * 3.0).astype(np.float32)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    y = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return {"x": x}, {"y": y}


CASES = {
    "gemm_f16_910b": lambda: gemm_f16(1, 256, 512, 512),
    "gemm_f16_910": lambda: gemm_f16(2, 256, 512, 512),
    "vadd_f32_910b": lambda: vadd(3, 49152, np.float32),
    "vadd_f16_910b": lambda: vadd(4, 98304, np.float16),
    "softmax_f32_910b": lambda: softmax(5, 128, 1024),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only")
    args = ap.parse_args()
    for name, make in CASES.items():
        if args.only and name != args.only:
            continue
        inputs, expected = make()
        for sub, tensors in (("inputs", inputs), ("expected", expected)):
            d = os.path.join(HERE, name, sub)
            os.makedirs(d, exist_ok=True)
            for t, v in tensors.items():
                np.save(os.path.join(d, t + ".npy"), np.ascontiguousarray(v))
        print(name)


if __name__ == "__main__":
    main()
