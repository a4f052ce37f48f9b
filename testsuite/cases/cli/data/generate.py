#!/usr/bin/env python3
"""Writes the data files that the CLI cases (testsuite/cases/cli/*.cli) read.

    python3 testsuite/cases/cli/data/generate.py

Needs only python3 and numpy (>= 1.24). Deterministic: a fixed seed, and every
file is built from bytes numpy writes the same way each time, so running it
again leaves `git status` clean.

Good files:  ok_4x8 (f32 4x8), ok_vec8 (f32 [8]), v2_4x8 / v3_4x8 (format
             versions 2.0 and 3.0), f16_4x8 (<f2), bool_4x8 (|b1).
Bad files:   fortran (Fortran order), big_endian (>f4), f64_4x8 (<f8),
             i2_4x8 (<i2), wrong_shape_8x4 (f32 8x4), truncated (header for
             4x8 f32, half the data), garbage (random bytes), bad_magic (valid
             file with a broken magic string), empty (0 bytes), zero_size (a
             valid f32 file of shape (0,)), unicode_4x8 (<U4 strings).
Hostile programs (hostile_*.tsr, hostile_*.s): inputs that once crashed,
             aborted or hung Tessera, for the CLI cases that keep them from
             doing so again (each names its problem).
"""

import io
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def npy(arr, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr, allow_pickle=False)
    else:
        np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


def hostile():
    """Programs and assembly that once broke Tessera (bytes by name)."""
    files = {}
    files["hostile_dims.tsr"] = b"kernel add(a: f32[M], b: f32[M]) -> f32[M] { return a + b; }\n"
    files["hostile_huge_full.tsr"] = (
        b"kernel f() -> f32[1000000000000] { return full([1000000000000], 1.0); }\n"
    )
    files["hostile_named.tsr"] = b"kernel k(a: f32[4, 8]) -> (a: f32[4, 8]) { return a * 2.0; }\n"
    params = ", ".join(f"p{i}: f32[4]" for i in range(300))
    files["hostile_many_params.tsr"] = f"kernel k({params}) -> f32[4] {{ return p0 + p299; }}\n".encode()
    results = ", ".join(f"r{i}: f32[4]" for i in range(300))
    values = ", ".join("a" for _ in range(300))
    files["hostile_many_results.tsr"] = (
        f"kernel k(a: f32[4]) -> ({results}) {{ return ({values}); }}\n".encode()
    )
    tree = ["kernel g0(a: f32[4]) -> f32[4] { return a * 2.0; }"]
    tree += [f"kernel g{i}(a: f32[4]) -> f32[4] {{ return g{i - 1}(a) + g{i - 1}(a); }}" for i in range(1, 17)]
    files["hostile_call_tree.tsr"] = ("\n".join(tree) + "\n").encode()
    n = 100_000
    files["hostile_deep_parens.tsr"] = (
        # 100 brackets a line, so the diagnostic quotes short lines.
        "kernel k(a: f32[4]) -> f32[4] { return\n"
        + ("(" * 100 + "\n") * (n // 100)
        + "a\n"
        + (")" * 100 + "\n") * (n // 100)
        + "; }\n"
    ).encode()
    # Latin-1 bytes in a comment, old-Mac line ends, a NUL, and one line of
    # 100 000 bytes: each diagnostic still has a line, a column and a short
    # snippet.
    files["hostile_not_utf8.tsr"] = b"kernel a(x: f32[N]) -> f32[N] {\n    return x; // caf\xe9\n}\n"
    # The same Latin-1 byte in a machine description and in a tuning file:
    # their errors point at it too.
    files["hostile_not_utf8_machine.toml"] = b'# a description\nname = "caf\xe9"\n'
    files["hostile_not_utf8_tuning.toml"] = b"# a tuning file\n# caf\xe9\n"
    files["hostile_cr_lines.tsr"] = b"kernel a(x: f32[N]) -> f32[N] { // old Mac\r    return q;\r}\r"
    files["hostile_nul.tsr"] = b"kernel a(x: f32[N]) -> f32[N] {\n    return x\x00;\n}\n"
    files["hostile_long_line.tsr"] = b"kernel a(x: f32[N]) -> f32[N] { return x + " + b"y" * 100_000 + b"; }\n"
    # Deviations from a row's mean summed over 100 000 values: the exact sum
    # is near 0, and f32 partial sums in another order miss the tolerance
    # (docs/language-notes.md): a `--check` mismatch on a correct backend.
    files["cancelling_sum.tsr"] = (
        b"kernel dev(x: f32[B, N]) -> f32[B] {\n"
        b"    return sum(x * 100.0 - mean(x * 100.0, axis = -1, keepdims = true), axis = -1);\n}\n"
    )
    files["square.tsr"] = b"kernel square(x: f32[N, N]) -> f32[N, N] { return x * 2.0; }\n"
    # Three kernels, each wrong only once its dims are bound (M=1, N=3).
    files["bind_errors.tsr"] = (
        b"kernel a(x: f32[M]) -> f32[2] { return slice(x, end = 2); }\n"
        b"kernel b(x: f32[N, 4]) -> f32[8, 2] { return reshape(x, [8, 2]); }\n"
        b"kernel c(x: f32[P]) -> f32[P] { return x; }\n"
    )
    files["hostile_loop.s"] = (
        b".kernel spin\n.param a f32[8]\n.result c f32[8]\n.block_dim 2\n.aiv\ntop:\n    s.jmp top\n"
    )
    files["hostile_big_param.s"] = b".kernel big\n.param a f32[4294967296]\n.result c f32[4]\n.aiv\n    end\n"
    files["hostile_big_result.s"] = b".kernel big\n.param a f32[4]\n.result c f32[536870912]\n.aiv\n    end\n"
    return files


# Hostile programs written by hand beside the generated ones: not stale.
HAND_WRITTEN = {"hostile_host_workspace.tsr", "hostile_huge_sum.tsr"}


def main():
    rng = np.random.default_rng(20240601)
    a = rng.uniform(-1.0, 1.0, size=(4, 8)).astype("<f4")
    files = {
        "ok_4x8.npy": npy(a),
        "ok_vec8.npy": npy(rng.uniform(-1.0, 1.0, size=8).astype("<f4")),
        "v2_4x8.npy": npy(a, version=(2, 0)),
        "v3_4x8.npy": npy(a, version=(3, 0)),
        "f16_4x8.npy": npy(a.astype("<f2")),
        "bool_4x8.npy": npy(a > 0),
        "fortran.npy": npy(np.asfortranarray(a)),
        "big_endian.npy": npy(a.astype(">f4")),
        "f64_4x8.npy": npy(a.astype("<f8")),
        "i2_4x8.npy": npy(rng.integers(-8, 8, size=(4, 8)).astype("<i2")),
        "wrong_shape_8x4.npy": npy(np.ascontiguousarray(a.T)),
        "garbage.npy": rng.integers(0, 256, size=200, dtype=np.uint8).tobytes(),
        "empty.npy": b"",
        "zero_size.npy": npy(np.zeros((0,), dtype="<f4")),
        "unicode_4x8.npy": npy(np.array([["ab"] * 8] * 4, dtype="<U4")),
    }
    files.update(hostile())
    full = npy(a)
    header_len = len(full) - a.nbytes
    files["truncated.npy"] = full[: header_len + a.nbytes // 2]
    assert full[:6] == b"\x93NUMPY"
    files["bad_magic.npy"] = b"\x93NUMPX" + full[6:]

    # sanity: the bad files really are what their names say
    assert np.load(io.BytesIO(files["fortran.npy"])).flags.f_contiguous
    assert np.load(io.BytesIO(files["v3_4x8.npy"]))[1, 2] == a[1, 2]
    assert files["v2_4x8.npy"][6:8] == b"\x02\x00" and files["v3_4x8.npy"][6:8] == b"\x03\x00"

    for name, data in sorted(files.items()):
        path = HERE / name
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    stale = {p.name for p in HERE.glob("*.npy")} | {p.name for p in HERE.glob("hostile_*")}
    stale -= set(files) | HAND_WRITTEN
    for name in sorted(stale):
        (HERE / name).unlink()
    print(f"wrote {len(files)} files")


if __name__ == "__main__":
    main()
