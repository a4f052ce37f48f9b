"""Per-call overhead of the Python package: a cached call of a tiny host
kernel against numpy.add on the same arrays, median microseconds per call.

    python3 benches/python_overhead.py            # prints the table
    python3 benches/python_overhead.py --write    # and writes benches/RESULTS-python.md

Each figure is the median over 41 batches of 200 calls (the batch's time
divided by 200), after warm-up; the ratio is the one to quote, the
microseconds move with the machine."""

import os
import statistics
import sys
import time

import numpy as np
import tessera

BATCHES, CALLS = 41, 200


def median_us(f):
    for _ in range(CALLS):
        f()
    per_call = []
    for _ in range(BATCHES):
        t = time.perf_counter_ns()
        for _ in range(CALLS):
            f()
        per_call.append((time.perf_counter_ns() - t) / CALLS / 1000)
    return statistics.median(per_call)


def main():
    rows = []
    k = tessera.compile("kernel add(a: f32[N], b: f32[N]) -> f32[N] { return a + b; }")
    for n in [16, 4096]:
        a = np.arange(n, dtype=np.float32)
        b = np.ones(n, dtype=np.float32)
        assert np.array_equal(k(a, b, target="host", threads=1), np.add(a, b))
        t_np = median_us(lambda: np.add(a, b))
        t_k1 = median_us(lambda: k(a, b, target="host", threads=1))
        t_k = median_us(lambda: k(a, b, target="host"))
        rows.append((n, t_np, t_k1, t_k))
    lines = [
        "| f32 add, N | numpy.add µs | Kernel(...) host, 1 thread µs | ratio | Kernel(...) host, all threads µs | ratio |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, t_np, t_k1, t_k in rows:
        lines.append("| %d | %.2f | %.2f | %.1f× | %.2f | %.1f× |" % (n, t_np, t_k1, t_k1 / t_np, t_k, t_k / t_np))
    table = "\n".join(lines)
    print(table)
    if "--write" in sys.argv:
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "RESULTS-python.md"), "w", encoding="utf-8") as f:
            f.write("# Python per-call overhead\n\n")
            f.write("Made by `python3 benches/python_overhead.py --write` (host wall-clock on the\n")
            f.write("development machine: the ratios are the figures to compare).\n\n")
            f.write(table + "\n")


if __name__ == "__main__":
    main()
