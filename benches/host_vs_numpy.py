#!/usr/bin/env python3
"""Host code against numpy, side by side in one run.

For each kernel of benches/host.tsr, `tessera bench --target host --json`
times the compiled code (median of repeated runs) and this script times the
same computation in numpy on arrays of the same shapes and dtypes (median of
repeated runs, after one warm-up). The ratio is numpy's time over Tessera's:
above 1, Tessera is faster.

Single-thread rows run Tessera with `--threads 1` and numpy's BLAS pinned to
one thread with threadpoolctl (required for those rows). gelu needs erf:
scipy.special.erf when scipy is installed, else math.erf through
numpy.frompyfunc (much slower; the table says which).

    python3 benches/host_vs_numpy.py [--tessera target/release/tessera] [--quick]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

try:
    from scipy.special import erf as _erf

    ERF = "scipy.special.erf"
except ImportError:  # pragma: no cover - depends on the environment
    _erf = np.frompyfunc(math.erf, 1, 1)
    ERF = "math.erf via numpy.frompyfunc"

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def erf(x):
    return np.asarray(_erf(x), dtype=x.dtype)


def gelu(x):
    return x * np.float32(0.5) * (np.float32(1) + erf(x / np.float32(math.sqrt(2))))


def sigmoid(x):
    return np.float32(1) / (np.float32(1) + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layer_norm(x, g, b, eps=np.float32(1e-5)):
    m = x.mean(axis=-1, keepdims=True)
    v = ((x - m) ** 2).mean(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def rand(shape, dtype, rng):
    if dtype == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.standard_normal(shape, dtype=np.float32)


# (row, kernel, dims, numpy function, argument shapes and dtypes, threads)
def cases(quick):
    n = 1024 if quick else 4096
    g1, g2 = (256, 512) if quick else (1024, 2048)
    gi = 256 if quick else 1024
    f32, i8 = np.float32, np.int8
    ew = lambda x, y, s, b: gelu(x * s + b) * sigmoid(y)
    rows = []
    for threads in (1, None):
        rows += [
            (f"ew-chain f32 {n}x{n}", "ew_chain_f32", {"M": n, "N": n}, ew,
             [((n, n), f32), ((n, n), f32), ((n,), f32), ((n,), f32)], threads),
            (f"softmax f32 {n}x{n}", "softmax_f32", {"B": n, "N": n}, softmax,
             [((n, n), f32)], threads),
            (f"layer_norm f32 {n}x{n}", "layernorm_f32", {"B": n, "N": n}, layer_norm,
             [((n, n), f32), ((n,), f32), ((n,), f32)], threads),
        ]
        for g in (g1, g2):
            rows.append((f"gemm f32 {g}^3", "gemm_f32", {"M": g, "N": g, "K": g},
                         lambda a, b: a @ b, [((g, g), f32), ((g, g), f32)], threads))
        rows.append((f"gemm i8 {gi}^3 (numpy int matmul)", "gemm_i8", {"M": gi, "N": gi, "K": gi},
                     lambda a, b: np.matmul(a, b, dtype=np.int32), [((gi, gi), i8), ((gi, gi), i8)],
                     threads))
    return rows


def time_numpy(f, args, reps):
    f(*args)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f(*args)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1e3


def time_tessera(exe, kernel, dims, threads):
    cmd = [exe, "bench", os.path.join(HERE, "host.tsr"), "-k", kernel, "--target", "host", "--json"]
    for k, v in dims.items():
        cmd += ["--dim", f"{k}={v}"]
    if threads:
        cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", default=os.path.join(ROOT, "target", "release", "tessera"))
    ap.add_argument("--quick", action="store_true", help="smaller shapes")
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    print(f"numpy {np.__version__}; erf: {ERF}; {os.cpu_count()} cores\n")
    print("| kernel | threads | tessera ms | numpy ms | numpy / tessera |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, kernel, dims, f, shapes, threads in cases(a.quick):
        args = [rand(s, d, rng) for s, d in shapes]
        if threads == 1:
            if threadpool_limits is None:
                sys.exit("single-thread rows need threadpoolctl (pip install threadpoolctl)")
            with threadpool_limits(limits=1):
                t_np = time_numpy(f, args, a.reps)
        else:
            t_np = time_numpy(f, args, a.reps)
        t_ts = time_tessera(a.tessera, kernel, dims, threads)
        label = "1" if threads == 1 else "all"
        print(f"| {name} | {label} | {t_ts:.2f} | {t_np:.2f} | {t_np / t_ts:.2f} |", flush=True)


if __name__ == "__main__":
    main()
