"""The Python package against numpy: every target, the dtype matrix, dims
bound from arrays, several results, each error class, the caches, zero-copy
inputs, the GIL and Ctrl-C.

Expected values come from numpy (or ml_dtypes for bf16) computing the same
formula, or are derived by hand where a rounding rule is the point."""

import contextlib
import json
import os
import subprocess
import signal
import threading
import _thread

import numpy as np
import pytest

import tessera

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = ["sim", "host", "ref"]

try:
    import ml_dtypes
except ImportError:  # the bf16-dtype tests need it; CI installs it
    ml_dtypes = None

SOFTMAX = """
kernel softmax_rows(x: f32[B, N]) -> f32[B, N] {
    return softmax(x, axis = -1);
}
"""


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def rng(seed=0):
    return np.random.default_rng(seed)


# f32 after a reduction: |d| <= 1e-4 + 1e-3 |ref| (language.md)
def assert_close_reduced_f32(got, want):
    np.testing.assert_array_less(np.abs(got.astype(np.float64) - want), 1e-4 + 1e-3 * np.abs(want) + 1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_softmax_on_every_target_matches_numpy(target):
    k = tessera.compile(SOFTMAX, "softmax_rows")
    x = rng(1).uniform(-4, 4, size=(6, 40)).astype(np.float32)
    y = k(x, target=target)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert_close_reduced_f32(y, np_softmax(x.astype(np.float64)))


@pytest.mark.parametrize("target", ["sim", "host"])
def test_check_runs_the_reference(target):
    k = tessera.compile(SOFTMAX, "softmax_rows")
    x = rng(2).standard_normal((3, 17)).astype(np.float32)
    k(x, target=target, check=True)
    assert len(k.last_check) == 1 and k.last_check[0].endswith("ok")


# The dtype matrix: exact operations (add, maximum, comparisons) must match
# numpy bit for bit on every target.
ADD = "kernel add(a: {t}[N], b: {t}[N]) -> {t}[N] {{ return a + b; }}"
GT = "kernel gt(a: {t}[N], b: {t}[N]) -> bool[N] {{ return a > b; }}"


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype,np_dtype", [("f32", np.float32), ("f16", np.float16), ("i32", np.int32)])
def test_add_is_exact_in_each_dtype(dtype, np_dtype, target):
    k = tessera.compile(ADD.format(t=dtype))
    r = rng(3)
    if dtype == "i32":
        a = r.integers(-1000, 1000, 33).astype(np_dtype)
        b = r.integers(-1000, 1000, 33).astype(np_dtype)
    else:
        a = r.uniform(-8, 8, 33).astype(np_dtype)
        b = r.uniform(-8, 8, 33).astype(np_dtype)
    got = k(a, b, target=target)
    assert got.dtype == np_dtype
    np.testing.assert_array_equal(got.view(np.uint8), (a + b).view(np.uint8))


@pytest.mark.parametrize("target", TARGETS)
def test_i8_maximum_and_bool_results(target):
    k = tessera.compile("kernel m(a: i8[N], b: i8[N]) -> i8[N] { return maximum(a, b); }")
    a = rng(4).integers(-128, 128, 50).astype(np.int8)
    b = rng(5).integers(-128, 128, 50).astype(np.int8)
    np.testing.assert_array_equal(k(a, b, target=target), np.maximum(a, b))
    g = tessera.compile(GT.format(t="f32"))
    x = rng(6).standard_normal(21).astype(np.float32)
    y = rng(7).standard_normal(21).astype(np.float32)
    out = g(x, y, target=target)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, x > y)


@pytest.mark.parametrize("target", TARGETS)
def test_bf16_as_float32_is_rounded_to_nearest_even(target):
    k = tessera.compile(ADD.format(t="bf16"))
    # bf16 keeps 8 significant bits. 1 + 2^-8 lies halfway between 1 and
    # 1 + 2^-7: ties to even gives 1. 1 + 3*2^-9 is above halfway: 1 + 2^-7.
    # -3 and 0.5 are exact. Adding 0 returns the rounded inputs.
    a = np.array([1 + 2**-8, 1 + 3 * 2**-9, -3.0, 0.5], np.float32)
    zero = np.zeros(4, np.float32)
    before = tessera.stats()["input_copies"]
    got = k(a, zero, target=target)
    want = [1.0, 1 + 2**-7, -3.0, 0.5]
    if ml_dtypes is None:
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.array(want, np.float32))
    else:
        assert got.dtype == np.dtype(ml_dtypes.bfloat16)
        np.testing.assert_array_equal(got.astype(np.float32), np.array(want, np.float32))
    assert tessera.stats()["input_copies"] == before + 2  # both rounded copies


@pytest.mark.skipif(ml_dtypes is None, reason="needs ml_dtypes")
@pytest.mark.parametrize("target", TARGETS)
def test_bf16_dtype_add_matches_ml_dtypes(target):
    bf16 = ml_dtypes.bfloat16
    k = tessera.compile(ADD.format(t="bf16"))
    a = rng(8).uniform(-4, 4, 40).astype(bf16)
    b = rng(9).uniform(-4, 4, 40).astype(bf16)
    got = k(a, b, target=target)
    assert got.dtype == np.dtype(bf16)
    np.testing.assert_array_equal(got.view(np.uint16), (a + b).view(np.uint16))


def test_symbolic_dims_are_bound_from_each_calls_arrays():
    k = tessera.compile(SOFTMAX)
    for shape in [(2, 5), (7, 3)]:
        x = rng().standard_normal(shape).astype(np.float32)
        y = k(x, target="host")
        assert y.shape == shape
        assert_close_reduced_f32(y, np_softmax(x.astype(np.float64)))


def test_dims_given_at_compile_must_agree_with_the_arrays():
    k = tessera.compile(SOFTMAX, dims={"N": 5})
    k(np.zeros((3, 5), np.float32), target="ref")
    with pytest.raises(ValueError) as e:
        k(np.zeros((3, 6), np.float32), target="ref")
    assert e.value.code == "E0501" and "`x`" in str(e.value)


def test_several_results_come_back_as_a_tuple():
    src = """
    kernel stats(x: f32[B, N]) -> (s: f32[B], m: f32[B, 1], y: f32[B, N]) {
        return (sum(x, axis = -1), max(x, axis = -1, keepdims = true), x * 2.0);
    }
    """
    k = tessera.compile(src)
    x = rng(10).standard_normal((4, 9)).astype(np.float32)
    for target in TARGETS:
        s, m, y = k(x, target=target)
        assert_close_reduced_f32(s, x.astype(np.float64).sum(axis=-1))
        np.testing.assert_array_equal(m, x.max(axis=-1, keepdims=True))
        np.testing.assert_array_equal(y, x * np.float32(2))


# Errors.


def test_a_diagnostic_raises_compile_error_with_code_and_spans():
    src = "kernel f(a: f32[N]) -> f32[N] {\n    return a + c;\n}\n"
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile(src)
    err = e.value
    assert err.code == "E0100"
    assert "unknown name `c`" in str(err) and "error[E0100]" in str(err)
    (span,) = err.spans
    assert (span.line, span.column) == (2, 16)
    assert src[span.start:span.end] == "c" and span.primary


def test_codes_lists_every_diagnostic_in_order():
    src = "kernel f(a: f32[N]) -> f32[N] {\n    let x = a + c;\n    let y = exp(a, 3);\n    return x + y + d;\n}\n"
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile(src)
    err = e.value
    assert err.codes == ["E0100", "E0200", "E0100"]
    assert err.code == err.codes[0]
    assert [src[s.start:s.end] for s in err.spans if s.primary][::2] == ["c", "d"]


def test_a_parse_error_raises_compile_error():
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("kernel f(a: f32[N]) -> f32[N] { return a + ; }")
    assert e.value.code.startswith("E0")


def test_a_type_error_suggests_a_cast():
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("kernel f(a: f16[N], b: f32[N]) -> f32[N] { return a + b; }")
    assert "cast" in str(e.value)


def test_integer_division_by_zero_is_a_machine_fault_on_every_target():
    k = tessera.compile("kernel d(a: i32[N], b: i32[N]) -> i32[N] { return a / b; }")
    a = np.array([7, -7, 9], np.int32)
    np.testing.assert_array_equal(k(a, np.array([2, 2, -4], np.int32), target="ref"), [3, -3, -2])
    for target in TARGETS:
        with pytest.raises(tessera.MachineFault) as e:
            k(a, np.array([1, 0, 1], np.int32), target=target)
        assert e.value.code == "E0700"


def test_wrong_dtype_is_a_type_error_naming_the_parameter():
    k = tessera.compile(ADD.format(t="f32"))
    with pytest.raises(TypeError, match="parameter `b` is f32.*float64"):
        k(np.zeros(3, np.float32), np.zeros(3), target="ref")
    with pytest.raises(TypeError, match="parameter `a`"):
        k([1.0, 2.0], np.zeros(2, np.float32), target="ref")
    with pytest.raises(TypeError, match="takes 2 arrays"):
        k(np.zeros(3, np.float32), target="ref")


def test_wrong_shape_is_a_value_error_naming_the_parameter():
    k = tessera.compile("kernel f(a: f32[4, N]) -> f32[4, N] { return a; }")
    with pytest.raises(ValueError, match="`a`") as e:
        k(np.zeros((3, 2), np.float32), target="ref")
    assert e.value.code == "E0603"
    with pytest.raises(ValueError, match="`a`"):
        k(np.zeros(8, np.float32), target="ref")


def test_a_wrong_shape_is_refused_before_any_copy():
    # A broadcast view of 2**40 elements (no memory behind it), not
    # contiguous: copying it first would be a MemoryError, not the shape's.
    k = tessera.compile("kernel f(a: f16[N], b: f16[N]) -> f16[N] { return a + b; }")
    huge = np.broadcast_to(np.float16(1), (1 << 40,))
    before = tessera.stats()["input_copies"]
    for target in TARGETS:
        with pytest.raises(ValueError, match="`N`") as e:
            k(np.zeros(4, np.float16), huge, target=target)
        assert e.value.code == "E0501"
    with pytest.raises(ValueError, match="`N`"):
        k.trace(os.devnull, np.zeros(4, np.float16), huge)
    assert tessera.stats()["input_copies"] == before


def test_a_kernel_the_target_cannot_take_is_refused_before_any_copy():
    # 2**40 f32 values: past the simulator's and the interpreter's limits
    # (E0503). The input is a broadcast view of that shape, not contiguous:
    # copying it first would be a MemoryError.
    k = tessera.compile("kernel h(a: f32[N]) -> f32[N] { return exp(a); }", dims={"N": 1 << 40})
    x = np.broadcast_to(np.float32(0), (1 << 40,))
    for target in ("sim", "ref"):
        with pytest.raises(tessera.CompileError) as e:
            k(x, target=target)
        assert e.value.code == "E0503"


def test_the_same_text_from_a_file_names_its_file(tmp_path):
    src = "kernel h(a: i32[N], b: i32[N]) -> i32[N] { return a / b; }\n"
    path = tmp_path / "div.tsr"
    path.write_text(src)
    one, zero = np.ones(3, np.int32), np.zeros(3, np.int32)
    for source, name in ((src, "<string>"), (str(path), str(path))):
        with pytest.raises(tessera.MachineFault) as e:
            tessera.compile(source)(one, zero, target="host")
        assert "%s:1:51" % name in str(e.value), str(e.value)


def test_zero_and_negative_dims_are_value_errors():
    k = tessera.compile("kernel f(x: f32[4, N]) -> f32[4, N] { return x * 2.0; }")
    with pytest.raises(ValueError, match="`N`") as e:
        k(np.zeros((4, 0), np.float32), target="ref")
    assert e.value.code == "E0603"
    for bad in (0, -4):
        with pytest.raises(ValueError, match="positive"):
            tessera.compile("kernel f(x: f32[4, N]) -> f32[4, N] { return x; }", dims={"N": bad})
        with pytest.raises(ValueError, match="positive"):
            k.bench(N=bad)


def test_a_dim_only_in_the_results_is_bound_by_name():
    src = "kernel f(x: f32[N]) -> f32[N, M] { return broadcast_to(reshape(x, [N, 1]), [N, M]); }"
    x = np.arange(2, dtype=np.float32)
    got = tessera.compile(src, dims={"M": 3})(x, target="ref")
    np.testing.assert_array_equal(got, np.broadcast_to(x[:, None], (2, 3)))
    # Unbound, it is the TypeError bench() and text() give, on every target.
    k = tessera.compile(src)
    for call in [lambda: k.bench(N=2), lambda: k.text("ir", N=2),
                 lambda: k.trace(os.devnull, x)] + [
            (lambda t: lambda: k(x, target=t))(t) for t in TARGETS]:
        with pytest.raises(TypeError, match="bind dim `M`"):
            call()


def test_foreign_order_float32_is_accepted_for_bf16():
    k = tessera.compile("kernel f(a: bf16[N]) -> bf16[N] { return a + a; }")
    x = np.array([1.0, 0.5, -3.0], dtype=">f4")
    # Exact in bf16: the sums are 2, 1, -6.
    np.testing.assert_array_equal(np.asarray(k(x, target="ref"), dtype=np.float32), [2.0, 1.0, -6.0])


def test_an_edited_machine_file_is_another_machine(tmp_path):
    path = os.environ.get("TESSERA_BIN")
    if not path:
        pytest.skip("TESSERA_BIN names the tessera binary that prints a machine file")
    text = subprocess.run([path, "machine", "show"], capture_output=True, text=True, check=True).stdout
    m = tmp_path / "m.toml"
    m.write_text(text)
    src = "kernel f(x: f32[N]) -> f32[N] { return exp(x) * 2.0; }"
    first = tessera.compile(src, machine=str(m)).bench(N=1 << 16)["cycles"]
    m.write_text(text.replace("clock_ghz = 1.8", "clock_ghz = 0.5").replace("ai_cores = 24", "ai_cores = 2"))
    second = tessera.compile(src, machine=str(m)).bench(N=1 << 16)["cycles"]
    assert second > first


def test_an_unknown_kernel_is_a_key_error_listing_the_kernels():
    src = "kernel a1(x: f32[N]) -> f32[N] { return x; }\nkernel b2(x: f32[N]) -> f32[N] { return -x; }"
    with pytest.raises(KeyError, match="a1, b2"):
        tessera.compile(src, "c3")
    with pytest.raises(KeyError, match="a1, b2"):
        tessera.compile(src)


def test_an_unknown_machine_is_a_compile_error():
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile(SOFTMAX, machine="no-such-machine", dims={"B": 2, "N": 3})
    assert e.value.code == "E1003"


def test_a_bad_target_or_level_is_a_value_error():
    k = tessera.compile(SOFTMAX)
    with pytest.raises(ValueError, match="target"):
        k(np.zeros((1, 1), np.float32), target="gpu")
    with pytest.raises(ValueError, match="opt"):
        tessera.compile(SOFTMAX, opt=3)



def test_the_level_is_an_integer():
    for bad in (2.0, True, "2", None):
        with pytest.raises(ValueError, match="opt must be 0, 1 or 2"):
            tessera.compile(SOFTMAX, opt=bad)
    assert tessera.compile(SOFTMAX, opt=np.int64(0)).opt == 0


# A kernel whose result is 2^40 f32 values (4 TiB): past the simulated GM
# (1 TiB) and the reference interpreter's limits.
HUGE = """
kernel huge(a: f32[1, 1]) -> f32[M, M] {
    return broadcast_to(a, [M, M]);
}
"""


def test_a_kernel_past_a_targets_limits_is_a_compile_error_before_its_results_are_allocated(tmp_path):
    k = tessera.compile(HUGE, dims={"M": 1 << 20})
    a = np.ones((1, 1), np.float32)
    for target in ("sim", "ref"):
        with pytest.raises(tessera.CompileError) as e:
            k(a, target=target)
        assert e.value.code == "E0503", (target, str(e.value))
    with pytest.raises(tessera.CompileError) as e:
        k(a, target="host", check=True)
    assert e.value.code == "E0503"
    # The trace of a run allocates the results too: the same error, no abort.
    with pytest.raises(tessera.CompileError) as e:
        k.trace(tmp_path / "t.json", a)
    assert e.value.code == "E0503"
    assert not (tmp_path / "t.json").exists()


def test_last_call_state_is_cleared_by_a_call_that_raises():
    k = tessera.compile(ADD.format(t="f32"))
    a = np.ones(8, np.float32)
    k(a, a, target="host", check=True)
    assert k.last_check and k.last_host_inputs
    with pytest.raises(TypeError):
        k(a, a.astype(np.float64), target="host", check=True)
    assert k.last_check == [] and k.last_host_inputs == []


def test_a_span_column_counts_characters_after_a_byte_order_mark():
    line = "kernel f(a: f32[N]) -> f32[N] { return a + c; }"
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("\ufeff" + line + "\n")
    (span,) = e.value.spans
    # `c` is the 44th character of the line; the mark (3 bytes) is no column.
    assert line.index("c;") + 1 == 44
    assert (span.line, span.column) == (1, 44)
    assert ":1:44" in str(e.value)
    # Offsets stay bytes of the UTF-8 text (mark included).
    assert span.start == 3 + line.index("c;")
    # A column counts characters: `é` (2 bytes) before `c` is one.
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("// x\n/* é */ " + line + "\n")
    assert [(s.line, s.column) for s in e.value.spans] == [(2, 8 + 44)]
    assert ":2:52" in str(e.value)


# Layout and copies.


def test_contiguous_inputs_reach_the_host_code_without_a_copy():
    k = tessera.compile(ADD.format(t="f32"))
    a = rng(11).standard_normal(64).astype(np.float32)
    b = rng(12).standard_normal(64).astype(np.float32)
    before = tessera.stats()["input_copies"]
    np.testing.assert_array_equal(k(a, b, target="host"), a + b)
    assert tessera.stats()["input_copies"] == before
    # The compiled code read the arrays' own memory.
    assert k.last_host_inputs == [a.ctypes.data, b.ctypes.data]


@pytest.mark.parametrize("view", ["strided", "reversed", "fortran", "big-endian"])
def test_other_layouts_are_copied_and_still_right(view):
    k = tessera.compile("kernel f(a: f32[M, N]) -> f32[M, N] { return a * 3.0; }")
    base = rng(13).standard_normal((6, 8)).astype(np.float32)
    a = {
        "strided": base[:, ::2],
        "reversed": base[::-1, ::-1],
        "fortran": np.asfortranarray(base),
        "big-endian": base.astype(">f4"),
    }[view]
    before = tessera.stats()["input_copies"]
    got = k(a, target="host")
    assert tessera.stats()["input_copies"] == before + 1
    np.testing.assert_array_equal(got, np.asarray(a, np.float32) * np.float32(3))
    assert k.last_host_inputs != [a.ctypes.data]


# Caches.


def test_a_disk_cache_hit_skips_compilation_and_a_corrupt_entry_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    src = SOFTMAX + "// cache test %d\n" % os.getpid()
    x = rng(14).standard_normal((2, 8)).astype(np.float32)
    want = np_softmax(x.astype(np.float64))

    tessera.clear_memory_cache()
    s0 = tessera.stats()
    assert_close_reduced_f32(tessera.compile(src)(x, target="sim"), want)
    s1 = tessera.stats()
    assert s1["compiles"] == s0["compiles"] + 1
    assert s1["cache_misses"] == s0["cache_misses"] + 1
    (entry,) = list(tmp_path.iterdir())

    # A new kernel object and no in-memory copy: loaded from disk.
    tessera.clear_memory_cache()
    assert_close_reduced_f32(tessera.compile(src)(x, target="sim"), want)
    s2 = tessera.stats()
    assert s2["compiles"] == s1["compiles"]
    assert s2["cache_hits"] == s1["cache_hits"] + 1

    # In memory: neither compiled nor loaded.
    assert_close_reduced_f32(tessera.compile(src)(x, target="sim"), want)
    s3 = tessera.stats()
    assert (s3["compiles"], s3["cache_hits"]) == (s2["compiles"], s2["cache_hits"])
    assert s3["memory_hits"] > s2["memory_hits"]

    # A corrupt entry is not trusted: compiled again, right, and rewritten.
    data = bytearray(entry.read_bytes())
    data[-10] ^= 0xFF
    entry.write_bytes(bytes(data))
    tessera.clear_memory_cache()
    assert_close_reduced_f32(tessera.compile(src)(x, target="sim"), want)
    s4 = tessera.stats()
    assert s4["cache_stale"] == s3["cache_stale"] + 1
    assert s4["compiles"] == s3["compiles"] + 1
    tessera.clear_memory_cache()
    tessera.compile(src)(x, target="sim")
    assert tessera.stats()["cache_hits"] == s4["cache_hits"] + 1


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path))
    k = tessera.compile(SOFTMAX + "// off\n", cache=False)
    k(np.zeros((2, 3), np.float32), target="sim")
    assert list(tmp_path.iterdir()) == []
    # A kernel compiled with the cache on first (and so lowered and kept in
    # this process) shares nothing with one compiled with it off.
    src = SOFTMAX + "// on, then off\n"
    tessera.compile(src, dims={"B": 2, "N": 5})
    k = tessera.compile(src, dims={"B": 2, "N": 5}, cache=False)
    k(np.zeros((2, 5), np.float32), target="sim")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("TESSERA_CACHE", "0")
    assert tessera.cache_dir() is None


def test_the_cache_directory_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv("TESSERA_CACHE_DIR", raising=False)
    monkeypatch.delenv("TESSERA_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tessera.cache_dir() == str(tmp_path / "xdg" / "tessera")
    # A relative XDG_CACHE_HOME is invalid (the XDG base-directory spec):
    # ignored, as an empty one is.
    for ignored in ("relative/cache", ""):
        monkeypatch.setenv("XDG_CACHE_HOME", ignored)
        assert tessera.cache_dir() == str(tmp_path / ".cache" / "tessera")


# Stages, bench, trace.


def test_every_stage_prints():
    k = tessera.compile(SOFTMAX, dims={"B": 4, "N": 64})
    assert "kernel softmax_rows" in k.text("ast")
    assert "softmax_rows" in k.text("ir")
    assert "rules fired" in k.text("opt-ir") or "e-graph" in k.text("opt-ir")
    assert k.text("plan").startswith("plan softmax_rows on 910b-like")
    assert k.text("asm").startswith("; tessera bytecode, machine 910b-like")
    assert "function" in k.text("clif")
    tbc = k.tbc()
    assert isinstance(tbc, bytes) and len(tbc) > 0
    with pytest.raises(ValueError, match="stages"):
        k.text("llvm")


def cli():
    """The `tessera` binary CI built, when it says where."""
    path = os.environ.get("TESSERA_BIN")
    if not path:
        pytest.skip("TESSERA_BIN names the tessera binary to compare with")
    return path


def test_bench_and_tbc_are_the_clis(tmp_path):
    path = tmp_path / "softmax.tsr"
    path.write_text(SOFTMAX)
    k = tessera.compile(path, dims={"B": 64})
    got = k.bench(N=256)
    out = subprocess.run([cli(), "bench", str(path), "--dim", "B=64", "--dim", "N=256", "--json"],
                         check=True, capture_output=True, text=True).stdout
    want = json.loads(out)
    assert set(got) == set(want)
    for key in ["cycles", "bound", "efficiency", "stages", "gm_bytes_min", "per_stage"]:
        assert got[key] == want[key], key
    tbc = tmp_path / "k.tbc"
    subprocess.run([cli(), "compile", str(path), "--dim", "B=64", "--dim", "N=256", "--emit", "tbc", "-o", str(tbc)],
                   check=True, capture_output=True)
    assert k.tbc(N=256) == tbc.read_bytes()


def test_trace_writes_a_chrome_trace(tmp_path):
    k = tessera.compile(SOFTMAX)
    k.trace(tmp_path / "timing.json", B=8, N=128)
    x = rng(15).standard_normal((2, 16)).astype(np.float32)
    k.trace(tmp_path / "run.json", x)
    # Its dims are checked as bench's are.
    for bad in (-1, 0, 1.5):
        with pytest.raises(ValueError, match="positive integer"):
            k.trace(tmp_path / "bad.json", x, N=bad)
    with pytest.raises(ValueError, match="E0606|no dim"):
        k.trace(tmp_path / "bad.json", x, Q=3)
    k16 = tessera.compile(SOFTMAX, dims={"N": 16})
    with pytest.raises(ValueError, match="compiled with N=16"):
        k16.trace(tmp_path / "bad.json", x, N=32)
    assert not (tmp_path / "bad.json").exists()
    for name in ["timing.json", "run.json"]:
        t = json.loads((tmp_path / name).read_text())
        events = t["traceEvents"] if isinstance(t, dict) else t
        assert any(e.get("ph") == "X" for e in events)


def test_machines():
    assert tessera.machines() == ["910b-like", "910-like"]
    k = tessera.compile(SOFTMAX, machine="910-like", dims={"B": 4, "N": 64})
    assert k.text("plan").startswith("plan softmax_rows on 910-like")


# The GIL and Ctrl-C.

LONG = """
kernel mm(a: f16[M, K], b: f16[K, N]) -> f32[M, N] { return a @ b; }
"""


def long_inputs():
    a = np.ones((512, 2048), np.float16)
    b = np.ones((2048, 1024), np.float16)
    return a, b


def test_the_gil_is_released_while_simulating():
    k = tessera.compile(LONG)
    a, b = long_inputs()
    k(a[:16, :16].copy(), b[:16, :16].copy(), target="sim")  # compile the small one first
    done = threading.Event()
    result = {}

    def work():
        result["out"] = k(a, b, target="sim")
        done.set()

    t = threading.Thread(target=work)
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1  # runs only while the simulating thread has let go of the GIL
        done.wait(0.001)
    t.join()
    assert ticks > 100
    np.testing.assert_array_equal(result["out"], np.full((512, 1024), 2048, np.float32))


def test_ctrl_c_stops_a_long_simulation():
    k = tessera.compile(LONG)
    # 8.6 G multiply-adds: seconds of simulation, so the signal (at 0.2 s)
    # arrives while it runs.
    a = np.ones((2048, 2048), np.float16)
    b = np.ones((2048, 2048), np.float16)
    before = tessera.stats()["interrupts"]
    with ctrl_c_after(0.2), pytest.raises(KeyboardInterrupt):
        k(a, b, target="sim")
    # Raised by the run's own check, which stopped the simulation.
    assert tessera.stats()["interrupts"] == before + 1


@contextlib.contextmanager
def ctrl_c_after(seconds):
    """Ctrl-C (SIGINT) to this process after ``seconds``, through Python's
    own handler even when the test runner was started with SIGINT ignored
    (a background job of a shell without job control): `interrupt_main`
    does nothing for an ignored signal."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, _thread.interrupt_main)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)


def test_bf16_as_float32_is_rounded_even_without_ml_dtypes(monkeypatch):
    # Without ml_dtypes a bf16 parameter's arrays are float32: rounded, not
    # passed as 4-byte values where the kernel reads 2 (a ValueError once).
    monkeypatch.setattr(tessera, "_BF16", None)
    k = tessera.compile("kernel up(a: bf16[N]) -> f32[N] { return cast(a, f32); }")
    a = np.array([1 + 2**-8, 1 + 3 * 2**-9, -3.0], np.float32)
    for target in TARGETS:
        got = k(a, target=target)
        np.testing.assert_array_equal(got, np.array([1.0, 1 + 2**-7, -3.0], np.float32))


def test_ctrl_c_stops_a_long_timing_only_bench():
    # bench() is a timing-only simulation: Ctrl-C stops it as it stops a
    # functional one (it used to run to the end).
    k = tessera.compile("kernel inc(x: f32[N]) -> f32[N] { return x + 1.0; }")
    before = tessera.stats()["interrupts"]
    with ctrl_c_after(0.2), pytest.raises(KeyboardInterrupt):
        k.bench(N=2**33)
    assert tessera.stats()["interrupts"] == before + 1


def test_compile_reads_the_machine_and_lowers_at_once():
    # An unknown machine is a CompileError from compile(), even with dims
    # left to the calls.
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile(SOFTMAX, machine="no-such-machine")
    assert e.value.code == "E1003"
    # With every dim bound, the kernel is lowered: a shape error is raised
    # here; the NPU's code is generated at the first simulator use.
    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("kernel r(x: f32[N]) -> f32[4] { return reshape(x, [4]); }", dims={"N": 6})
    assert e.value.code == "E0404"
    k = tessera.compile("kernel inc(x: f32[N]) -> f32[N] { return x + 1.0; }", dims={"N": 2**40})
    with pytest.raises(tessera.CompileError) as e:
        k.tbc()
    assert e.value.code == "E0503"


def test_errors_cross_process_boundaries():
    # The exceptions pickle (ProcessPoolExecutor and multiprocessing send
    # them back to the parent).
    import pickle

    with pytest.raises(tessera.CompileError) as e:
        tessera.compile("kernel f(a: f32[N]) -> f32[N] { return b; }")
    assert tessera.CompileError.__module__ == "tessera._tessera"
    back = pickle.loads(pickle.dumps(e.value))
    assert type(back) is tessera.CompileError


def test_the_ast_is_the_kernels_own():
    src = "kernel a1(x: f32[N]) -> f32[N] { return x; }\nkernel b2(x: f32[N]) -> f32[N] { return -x; }"
    text = tessera.compile(src, "b2").text("ast")
    assert "b2" in text and "a1" not in text
    with pytest.raises(ValueError):
        tessera.compile(src, "b2").text("ast", N=-5)
    with pytest.raises(ValueError, match="stages"):
        tessera.compile(src, "b2").text("foo")


def test_check_needs_a_target_other_than_the_reference_and_is_per_call():
    k = tessera.compile("kernel e(x: f32[N]) -> f32[N] { return exp(x); }")
    x = np.ones(4, np.float32)
    k(x, check=True)
    assert k.last_check
    with pytest.raises(ValueError, match="check"):
        k(x, target="ref", check=True)
    k(x)
    assert k.last_check == []


def test_bad_dims_and_threads_are_value_errors():
    k = tessera.compile("kernel e(x: f32[N]) -> f32[N] { return exp(x); }")
    x = np.ones(4, np.float32)
    for threads in (0, -1, 2**70):
        with pytest.raises(ValueError, match="threads"):
            k(x, target="host", threads=threads)
    # The host's alone, as the CLI's --threads.
    for target in ("sim", "ref"):
        with pytest.raises(ValueError, match="target=\"host\""):
            k(x, target=target, threads=2)
    with pytest.raises(ValueError):
        k.bench(N=2**64)
    with pytest.raises(ValueError) as e:
        k.bench(Q=3)
    assert e.value.code == "E0606"
    with pytest.warns(PendingDeprecationWarning), pytest.raises(TypeError, match="`x`"):
        k(np.matrix([[1.0, 2.0]], np.float32))


def test_arguments_of_the_wrong_kind_are_type_errors_that_say_what_is_wanted():
    src = "kernel a(x: f32[N]) -> f32[N] { return x; }"
    for kw, what in [
        (dict(dims=[("N", 4)]), "dims must be a mapping"),
        (dict(dims={1: 4}), "a dim's name is a string"),
        (dict(cache=None), "cache must be True or False"),
        (dict(machine=3), "machine must be"),
    ]:
        with pytest.raises(TypeError, match=what):
            tessera.compile(src, **kw)
    k = tessera.compile(src)
    x = np.arange(4, dtype=np.float32)
    with pytest.raises(TypeError, match="check must be True or False"):
        k(x, check="yes")
    # A masked array's hidden values are not silently computed with.
    with pytest.raises(TypeError, match="`x`.*masked"):
        k(np.ma.masked_array(x, mask=[0, 1, 0, 0]))


def test_a_machine_file_may_be_a_path_object():
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "backend" / "sim" / "src" / "machines" / "910-like.toml"
    k = tessera.compile("kernel a(x: f32[N]) -> f32[N] { return x + 1.0; }", machine=path)
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(k(x), x + np.float32(1.0))
