#!/usr/bin/env python3
"""Fixture generator for Tessera's plan cases (testsuite/cases/plan/).

A plan case NAME.plan is a plan in its text form (`tessera compile --emit
plan`), often with a schedule the planner would not pick, so a backend
template is tested without the planner. Its `//` header names the
computation it schedules; this script holds a numpy model of that
computation and writes

    NAME/inputs/PARAM.npy      one file per `param` buffer of the plan
    NAME/expected/RESULT.npy   one file per `result` buffer

The models reuse the numerics of the run cases' generator
(testsuite/cases/run/generate.py: one rounding per operation, f32/f64
accumulation, two's-complement integers), written from the language
semantics, never from Tessera's output.

Usage (from the repository root; needs python3 and numpy >= 1.24):

    python3 testsuite/cases/plan/generate.py            # regenerate every case
    python3 testsuite/cases/plan/generate.py --check    # verify, write nothing

The output is deterministic (each case seeds numpy with crc32 of its name).
"""

import argparse
import pathlib
import re
import sys
import zlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "run"))
sys.dont_write_bytecode = True  # no __pycache__ beside the run cases

import generate as run  # noqa: E402  (the run cases' numerics and helpers)

CASES = {}


def case(name):
    def deco(fn):
        assert name not in CASES, f"case {name} registered twice"
        CASES[name] = fn
        return fn

    return deco


@case("cube_tail_strips")
@case("cube_staggered_strips")
def _(rng):
    a = run.uniform(rng, (300, 64), "f16")
    b = run.uniform(rng, (64, 760), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_halves")
def _(rng):
    a = run.uniform(rng, (300, 512), "f16")
    b = run.uniform(rng, (512, 600), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_a_panel")
def _(rng):
    a = run.uniform(rng, (300, 200), "f16")
    b = run.uniform(rng, (200, 600), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_a_panel_folded")
def _(rng):
    a = run.uniform(rng, (192, 200), "f16")
    b = run.uniform(rng, (200, 1000), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_grouped_tiles")
def _(rng):
    a = run.uniform(rng, (300, 64), "f16")
    b = run.uniform(rng, (64, 760), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_two_accumulators")
def _(rng):
    a = run.uniform(rng, (300, 64), "f16")
    b = run.uniform(rng, (64, 760), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_split_k")
def _(rng):
    a = run.uniform(rng, (100, 1000), "f16")
    b = run.uniform(rng, (1000, 150), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.relu(run.matmul(a, b)), "f16")}


@case("cube_joined_prologue")
def _(rng):
    x = run.uniform(rng, (300, 128), "f16")
    g = run.uniform(rng, (128,), "f16")
    w = run.uniform(rng, (128, 256), "f16")
    return {"x": x, "g": g, "w": w}, {"out0": run.matmul(run.rms_norm(x, g), w)}


@case("cube_joined_epilogue")
@case("cube_joined_ring_elementwise")
def _(rng):
    x = run.uniform(rng, (300, 64), "f16")
    w = run.uniform(rng, (64, 256), "f16")
    b = run.uniform(rng, (256,), "f32")
    return {"x": x, "w": w, "b": b}, {"out0": run.cast(run.gelu(run.binary(run.matmul(x, w), b, np.add)), "f16")}


@case("cube_joined_ring")
def _(rng):
    q = run.uniform(rng, (2, 192, 32), "f16")
    k = run.uniform(rng, (2, 192, 32), "f16")
    s = run.binary(run.matmul(q, run.transpose(k, [0, 2, 1])), run.lit(0.125, "f32"), np.multiply)
    return {"q": q, "k": k}, {"out0": run.cast(run.softmax(s, axis=-1), "f16")}


@case("cube_prefetched_loads_910")
def _(rng):
    a = run.uniform(rng, (1100, 480), "f16")
    b = run.uniform(rng, (480, 200), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, b), "f16")}


@case("cube_deep_b_transposed")
def _(rng):
    a = run.uniform(rng, (70, 512), "f16")
    b = run.uniform(rng, (150, 512), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.matmul(a, run.transpose(b, [1, 0])), "f16")}


@case("cube_epilogue_chunks_910")
def _(rng):
    a = run.uniform(rng, (40, 96), "f16")
    b = run.uniform(rng, (96, 200), "f16")
    return {"a": a, "b": b}, {"x": run.cast(run.relu(run.matmul(a, b)), "f16")}


def scaled(a, b):
    # (a @ b) * 0.08838834764831845: an f32 product times the f32 literal.
    return run.binary(run.matmul(a, b), run.lit(0.08838834764831845, "f32"), np.multiply)


@case("cube_scaled_910")
def _(rng):
    a = run.uniform(rng, (40, 96), "f16")
    b = run.uniform(rng, (96, 200), "f16")
    return {"a": a, "b": b}, {"x": scaled(a, b)}


@case("cube_split_k_scaled")
def _(rng):
    a = run.uniform(rng, (100, 1000), "f16")
    b = run.uniform(rng, (1000, 150), "f16")
    return {"a": a, "b": b}, {"x": scaled(a, b)}


@case("reduce_rows_in_chunks")
def _(rng):
    x = run.uniform(rng, (5, 1000), "f16")
    return {"x": x}, {"m": run.mean(x, axis=1)}


@case("reduce_columns_in_chunks_910")
def _(rng):
    x = run.uniform(rng, (700, 96), "f32")
    return {"x": x}, {"s": run.sum_(x, axis=0)}


@case("elementwise_i8_column_rows")
def _(rng):
    a = run.ints(rng, (20, 40), "i8", -128, 128)
    c = run.ints(rng, (20, 1), "i8", -128, 128)
    return {"a": a, "c": c}, {"x": a + c}


@case("rows_chunked_pipelined_softmax_f16")
def _(rng):
    x = run.uniform(rng, (5, 1000), "f16", -8.0, 8.0)
    return {"x": x}, {"out0": run.softmax(x)}


@case("rows_chunked_online_softmax_short_last_chunk")
def _(rng):
    x = run.uniform(rng, (5, 800), "f16", -8.0, 8.0)
    # The row's maximum in its last 32 elements, in some rows.
    v = x.v.copy()
    v[1, 790] = 12.0
    v[3, 775] = 11.0
    x = run.T(v, "f16")
    return {"x": x}, {"out0": run.softmax(x)}


@case("rows_chunked_rms_norm_bf16")
def _(rng):
    x, g = run.uniform(rng, (3, 700), "bf16", -2.0, 2.0), run.uniform(rng, (700,), "bf16", 0.5, 1.5)
    return {"x": x, "g": g}, {"out0": run.rms_norm(x, g)}


@case("rows_transposed_softmax_f32_910")
def _(rng):
    x = run.uniform(rng, (200, 3), "f32", -8.0, 8.0)
    return {"x": x}, {"out0": run.softmax(x)}


@case("transpose_small_tiles_910")
def _(rng):
    x = run.uniform(rng, (40, 70), "f16")
    return {"x": x}, {"y": run.transpose(x, [1, 0])}


@case("vector_matmul_scaled_910")
def _(rng):
    a = run.uniform(rng, (20, 33), "bf16")
    b = run.uniform(rng, (25, 33), "bf16")
    product = run.matmul(a, run.transpose(b, [1, 0]))
    return {"a": a, "b": b}, {"x": run.binary(product, run.lit(0.08838834764831845, "f32"), np.multiply)}


@case("vector_matmul_transposed_b_910")
def _(rng):
    a = run.uniform(rng, (20, 33), "bf16")
    b = run.uniform(rng, (25, 33), "bf16")
    return {"a": a, "b": b}, {"x": run.matmul(a, run.transpose(b, [1, 0]))}


BUFFER = re.compile(r"^  buffer (\S+)\s+(param|result) \d+\s+(\w+)\[([^\]]*)\]$")


def signature(text):
    """The plan's (name, dtype, shape) of its param and of its result buffers."""
    params, results = [], []
    for line in text.splitlines():
        m = BUFFER.match(line)
        if m:
            name, kind, dt, dims = m.groups()
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
            (params if kind == "param" else results).append((name, dt, shape))
    return params, results


def build(name):
    text = (HERE / f"{name}.plan").read_text(encoding="utf-8")
    assert re.search(r"^//!", text, re.M), f"{name}: no //! description"
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    with np.errstate(all="ignore"):
        inputs, outputs = CASES[name](rng)
    params, results = signature(text)
    for what, model, sig in (("inputs", inputs, params), ("outputs", outputs, results)):
        assert list(model) == [s[0] for s in sig], f"{name}: {what} {list(model)} vs {sig}"
        for (n, dt, shape), t in zip(sig, model.values()):
            assert (t.dt, tuple(t.shape)) == (dt, shape), f"{name}: {n} is {t.dt}{t.shape}, the plan says {dt}{shape}"
            assert t.v.dtype == run.STORAGE[dt], f"{name}: {n} stored as {t.v.dtype}"
    files = {}
    for k, t in inputs.items():
        files[f"inputs/{k}.npy"] = run.npy_bytes(t.v)
    for k, t in outputs.items():
        files[f"expected/{k}.npy"] = run.npy_bytes(t.v)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="verify the files on disk, write nothing")
    args = ap.parse_args()
    plans = {p.stem for p in HERE.glob("*.plan")}
    if plans != set(CASES):
        sys.exit(f"error: plans without a model: {sorted(plans - set(CASES))}; "
                 f"models without a plan: {sorted(set(CASES) - plans)}")
    stale = sum(run.sync_fixtures(HERE / name, name, build(name), args.check) for name in sorted(CASES))
    run.finish(stale, len(CASES), args.check)

if __name__ == "__main__":
    main()
