"""Tessera from Python: compile ``.tsr`` kernels and run them on numpy arrays.

>>> import numpy as np, tessera
>>> k = tessera.compile("kernel add(a: f32[N], b: f32[N]) -> f32[N] { return a + b; }", "add")
>>> k(np.ones(4, np.float32), np.arange(4, dtype=np.float32), target="host")
array([1., 2., 3., 4.], dtype=float32)

Everything runs in-process (no subprocess), with the GIL released while
compiling and running. See ``docs/python.md`` for the whole surface.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _tessera
from ._tessera import CompileError, MachineFault

__all__ = [
    "CompileError",
    "MachineFault",
    "MismatchError",
    "Kernel",
    "Span",
    "compile",
    "machines",
    "stats",
    "clear_memory_cache",
    "cache_dir",
    "__version__",
]

__version__: str = _tessera.__version__

try:  # bf16 as a real numpy dtype when ml_dtypes is installed
    import ml_dtypes as _ml_dtypes

    _BF16: Optional[np.dtype] = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _BF16 = None


class MismatchError(AssertionError):
    """``check=True`` found an output outside the spec's tolerance.

    ``.lines`` holds the comparison, one line per output, as
    ``tessera run --check`` prints it.
    """

    def __init__(self, lines: List[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class Span(tuple):
    """Where a diagnostic points: byte offsets, 1-based line and column, the
    label's text and whether it is the primary label."""

    __slots__ = ()
    _fields = ("start", "end", "line", "column", "label", "primary")

    def __new__(cls, start: int, end: int, line: int, column: int, label: str, primary: bool) -> "Span":
        return tuple.__new__(cls, (start, end, line, column, label, primary))

    start = property(lambda self: self[0], doc="First byte.")
    end = property(lambda self: self[1], doc="One past the last byte.")
    line = property(lambda self: self[2], doc="Line of the first byte (1-based).")
    column = property(lambda self: self[3], doc="Column of the first byte (1-based, in characters as the rendered diagnostic counts; a leading byte-order mark is none).")
    label = property(lambda self: self[4], doc="What the diagnostic says there.")
    primary = property(lambda self: self[5], doc="Whether this is the offending span.")

    def __repr__(self) -> str:
        return "Span(start=%d, end=%d, line=%d, column=%d, label=%r, primary=%r)" % tuple(self)


def _spans(self: BaseException) -> List[Span]:
    return [Span(*s) for s in getattr(self, "raw_spans", [])]


# `.spans` on the native exception classes: the labels of every diagnostic.
CompileError.spans = property(_spans, doc="The diagnostics' labels, as `Span`s.")  # type: ignore[attr-defined]
MachineFault.spans = property(_spans, doc="The fault's labels, as `Span`s.")  # type: ignore[attr-defined]

_NUMPY = {
    "f16": np.dtype(np.float16),
    "f32": np.dtype(np.float32),
    "i8": np.dtype(np.int8),
    "i32": np.dtype(np.int32),
    "bool": np.dtype(np.bool_),
}

_lock = threading.Lock()
_memo: Dict[Tuple[Any, ...], "_tessera.Compiled"] = {}
_counters = {"memory_hits": 0, "input_copies": 0}
_kernels: "weakref.WeakSet[Kernel]" = weakref.WeakSet()


def _machine_key(machine: str) -> str:
    """What identifies a machine in the in-memory cache: a built-in's name,
    or a machine file's path and contents (an edited file is another
    machine)."""
    if machine in _tessera.machines():
        return machine
    try:
        with open(machine, "rb") as f:
            return "%s:%s" % (machine, hashlib.sha256(f.read(1 << 20)).hexdigest())
    except OSError:
        return machine


def _check_dims(dims: Mapping[str, int], what: str) -> None:
    """Dims are a mapping of names to positive integers (a TypeError for
    another kind of argument, a ValueError for a value that does not fit, as
    for a shape)."""
    if not isinstance(dims, Mapping):
        raise TypeError("%s: dims must be a mapping of dim names to integers ({\"N\": 1024}), not %s" % (what, type(dims).__name__))
    for n in dims:
        if not isinstance(n, str):
            raise TypeError("%s: a dim's name is a string, not %r" % (what, n))
    for n, v in dims.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 < v < 2 ** 63:
            raise ValueError("%s: dim `%s` must be a positive integer (below 2**63), not %r" % (what, n, v))


def machines() -> List[str]:
    """The built-in machines' names, the default first."""
    return list(_tessera.machines())


def stats() -> Dict[str, int]:
    """Counters of this process.

    ``compiles``: kernels optimised and generated (NPU or host);
    ``cache_hits`` / ``cache_misses`` / ``cache_stale``: the on-disk cache's
    entries loaded, missing, and found but not trusted (rebuilt);
    ``interrupts``: simulations stopped by a signal (Ctrl-C);
    ``memory_hits``: calls served by a kernel already compiled in this
    process; ``input_copies``: input arrays copied before a run (a
    non-contiguous layout, a foreign byte order, or bf16 given as float32).
    """
    d = dict(_tessera.stats())
    with _lock:
        d.update(_counters)
    return d


def clear_memory_cache() -> None:
    """Forgets the kernels compiled in this process (the disk cache stays)."""
    with _lock:
        _memo.clear()
        for k in list(_kernels):
            k._by_shapes.clear()


def cache_dir() -> Optional[str]:
    """The on-disk cache's directory, or ``None`` when it is turned off.

    ``$TESSERA_CACHE_DIR``, else ``$XDG_CACHE_HOME/tessera`` (an absolute
    path; a relative one is ignored), else ``~/.cache/tessera``;
    ``TESSERA_CACHE=0`` turns it off.
    """
    d = _tessera.default_cache_dir()
    return None if d is None else os.fspath(d)


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bf16":
        return _BF16 if _BF16 is not None else np.dtype(np.float32)
    return _NUMPY[name]


def _bf16_from_f32(a: np.ndarray) -> np.ndarray:
    """float32 values rounded to bf16 (to nearest, ties to even), as uint16 bits."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(a)
    if nan.any():
        rounded = np.where(nan, ((bits >> np.uint32(16)) | np.uint32(0x0040)).astype(np.uint16), rounded)
    return rounded


def _f32_from_bf16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


class Kernel:
    """A kernel of a source file, compiled for one machine and level.

    Call it on numpy arrays, one per parameter in order::

        out = kernel(x, y, target="host")

    Symbolic dims are bound from the arrays' shapes (and must agree with
    ``dims`` given to :func:`compile`). It returns one array, or a tuple when
    the kernel has several results. Compiled code is kept per binding of the
    dims, in this process and (for the simulator's bytecode) on disk.
    """

    def __init__(self, source: "_tessera.Source", name: str, machine: str, opt: int,
                 dims: Mapping[str, int], cache: bool, origin: str = "<string>") -> None:
        self._source = source
        self.name = name
        self.machine = machine
        self.opt = opt
        self.dims = dict(dims)
        self._cache = cache
        params, results = source.signature(name)
        self.params: List[Tuple[str, str, List[Union[int, str]]]] = [tuple(p) for p in params]  # type: ignore[misc]
        self.results: List[Tuple[str, str, List[Union[int, str]]]] = [tuple(r) for r in results]  # type: ignore[misc]
        self.last_check: List[str] = []
        self.last_host_inputs: List[int] = []
        # The text and the name diagnostics give it: the same text from
        # another file is another kernel in memory (its faults name its file).
        self._hash = hashlib.sha256(("%s\0%s" % (origin, source.text)).encode()).hexdigest()
        self._want = [_numpy_dtype(t) for _, t, _ in self.params]
        # Per tuple of input shapes: the compiled kernel and its results'
        # (dtype, shape, bf16-as-float32), so that a repeated call skips
        # binding.
        self._by_shapes: Dict[Tuple[Tuple[int, ...], ...], Tuple[Any, List[Tuple[np.dtype, List[int], bool]]]] = {}
        # Check the given dims now: unknown names and a full binding's
        # lowering errors surface at compile time, as CompileError.
        with _lock:
            _kernels.add(self)
        bound = source.bind_dims(name, self.dims, [None] * len(self.params))
        self.dims = dict(bound)
        # The machine is read now: an unknown one is a CompileError here.
        _tessera.check_machine(machine)
        if self._all_bound(self.dims):
            # Lowered now, so that the language's diagnostics surface here;
            # code for a target is generated at its first use (a host user
            # never pays for, nor fails on, the NPU's code).
            self._compiled(self.dims)

    def __repr__(self) -> str:
        sig = ", ".join("%s: %s%s" % (n, t, "[%s]" % ", ".join(map(str, d)) if d else "") for n, t, d in self.params)
        return "<tessera.Kernel %s(%s) on %s -O%d>" % (self.name, sig, self.machine, self.opt)

    def _symbolic(self) -> List[str]:
        names: List[str] = []
        for _, _, dims in self.params + self.results:
            for d in dims:
                if isinstance(d, str) and d not in names:
                    names.append(d)
        return names

    def _all_bound(self, dims: Mapping[str, int]) -> bool:
        return all(n in dims for n in self._symbolic())

    def _compiled(self, dims: Mapping[str, int]) -> "_tessera.Compiled":
        # A machine file is read when the kernel is compiled: keyed by what
        # it holds then.
        # The disk cache it writes to is part of the key: a kernel compiled
        # with cache=False never shares code that stores to one.
        cache = cache_dir() if self._cache else None
        key = (self._hash, self.name, tuple(sorted(dims.items())), _machine_key(self.machine), self.opt, cache, __version__)
        with _lock:
            hit = _memo.get(key)
            if hit is not None:
                _counters["memory_hits"] += 1
                return hit
        compiled = self._source.bind(self.name, dict(dims), self.machine, self.opt, cache)
        with _lock:
            _memo[key] = compiled
        return compiled

    def _bind_names(self, dims: Mapping[str, int], what: str) -> None:
        unknown = [n for n in dims if n not in self._symbolic()]
        if unknown:
            err = ValueError("%s: kernel `%s` has no dim %s (its dims: %s)" % (
                what, self.name, ", ".join("`%s`" % n for n in unknown), ", ".join(self._symbolic()) or "none"))
            err.code = "E0606"  # type: ignore[attr-defined]
            err.codes = ["E0606"]  # type: ignore[attr-defined]
            raise err

    def _merged(self, dims: Mapping[str, int], what: str) -> Dict[str, int]:
        """The compile-time dims with ``dims`` (checked: known names,
        positive integers, no disagreement with a compile-time dim)."""
        self._bind_names(dims, what)
        _check_dims(dims, what)
        merged = dict(self.dims)
        for n, v in dims.items():
            if n in self.dims and self.dims[n] != v:
                raise ValueError("%s: dim `%s` is %d, but it was compiled with %s=%d" % (what, n, v, n, self.dims[n]))
            merged[n] = int(v)
        return merged

    def _results_only_bound(self, dims: Mapping[str, int], what: str, where: str) -> None:
        """A dim only the results have cannot come from the arrays: unless
        ``dims`` binds it, the same ``TypeError`` as ``bench()`` without it."""
        in_params = {d for _, _, ds in self.params for d in ds if isinstance(d, str)}
        unbound = [n for n in self._symbolic() if n not in in_params and n not in dims]
        if unbound:
            raise TypeError("%s: bind dim %s (%s): only the results have %s" % (
                what, ", ".join("`%s`" % n for n in unbound), where, "it" if len(unbound) == 1 else "them"))

    def _bind(self, dims: Mapping[str, int], what: str) -> "_tessera.Compiled":
        merged = self._merged(dims, what)
        missing = [n for n in self._symbolic() if n not in merged]
        if missing:
            raise TypeError("%s: bind dim %s (as keywords, or in compile(dims=...))" % (
                what, ", ".join("`%s`" % n for n in missing)))
        return self._compiled(merged)

    def _check_arrays(self, arrays: Sequence[Any]) -> None:
        """Raises ``TypeError`` unless ``arrays`` are one numpy array per
        parameter, each of a dtype it takes. Nothing is copied: shapes are
        bound next, so a wrong shape is an error before any copy (a
        broadcast view of a huge shape is not materialised to find out)."""
        if len(arrays) != len(self.params):
            names = ", ".join(n for n, _, _ in self.params)
            raise TypeError("kernel `%s` takes %d array%s (%s), got %d" % (
                self.name, len(self.params), "" if len(self.params) == 1 else "s", names, len(arrays)))
        for (name, dtype, _), want, a in zip(self.params, self._want, arrays):
            if not isinstance(a, np.ndarray) or isinstance(a, (np.matrix, np.ma.MaskedArray)):
                if isinstance(a, np.ma.MaskedArray):
                    raise TypeError("parameter `%s` (%s): a masked array has no value where it is masked; pass np.ma.filled(a, fill) or a.data" % (name, dtype))
                if isinstance(a, np.matrix):
                    raise TypeError("parameter `%s` (%s): expected a numpy array, got numpy.matrix; convert it with np.asarray(...)" % (name, dtype))
                if np.isscalar(a) or isinstance(a, (list, tuple)):
                    raise TypeError("parameter `%s` (%s): expected a numpy array, got %s; wrap it with np.asarray(..., dtype=np.%s)" % (
                        name, dtype, type(a).__name__, _numpy_dtype(dtype).name))
                raise TypeError("parameter `%s` (%s): expected a numpy array, got %s" % (name, dtype, type(a).__name__))
            native = a.dtype.newbyteorder("=")
            if native == want.newbyteorder("="):
                continue
            if dtype == "bf16" and native == np.dtype(np.float32):
                continue
            accepted = "numpy.%s" % want.name
            if dtype == "bf16":
                accepted = "ml_dtypes.bfloat16 or float32 (rounded to bf16)" if _BF16 is not None else "float32 holding bf16 values (install ml_dtypes for a bfloat16 dtype)"
            raise TypeError("parameter `%s` is %s: expected an array of %s, got %s; convert it with .astype(...)" % (
                name, dtype, accepted, a.dtype))

    def _prepare(self, arrays: Sequence[Any]) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """The arrays (checked by ``_check_arrays``) as C-contiguous arrays
        of the parameters' dtypes (as numpy arrays and as byte views)."""
        prepared: List[np.ndarray] = []
        raw: List[np.ndarray] = []
        for (name, dtype, _), want, a in zip(self.params, self._want, arrays):
            got = a.dtype
            copied = False
            # Without ml_dtypes a bf16 parameter's arrays are float32 (4
            # bytes a value): always rounded to bf16, never passed as they are.
            f32_bf16 = dtype == "bf16" and _BF16 is None
            if (got is want or (got == want and got.isnative)) and not f32_bf16:
                if not a.flags.c_contiguous:
                    a = np.ascontiguousarray(a)
                    with _lock:
                        _counters["input_copies"] += 1
                prepared.append(a)
                raw.append(a.reshape(-1).view(np.uint8))
                continue
            if dtype == "bf16" and got.newbyteorder("=") == np.dtype(np.float32):
                if not got.isnative:
                    a = a.astype(np.float32)
                bits = _bf16_from_f32(a)
                copied = True
            else:
                if not got.isnative:
                    a = a.astype(want)
                    copied = True
                if not a.flags.c_contiguous:
                    a = np.ascontiguousarray(a)
                    copied = True
                bits = a
            if copied:
                with _lock:
                    _counters["input_copies"] += 1
            prepared.append(a)
            raw.append(bits.reshape(-1).view(np.uint8))
        return prepared, raw

    def _run(self, arrays: Sequence[Any], target: str, check: bool, threads: Optional[int]) -> Any:
        # What the last call left, and nothing of an earlier one once this
        # call raises.
        self.last_check = []
        self.last_host_inputs = []
        if target not in ("sim", "host", "ref"):
            raise ValueError('target must be "sim", "host" or "ref", not %r' % (target,))
        if not isinstance(check, (bool, np.bool_)):
            raise TypeError("check must be True or False, not %r" % (check,))
        if check and target == "ref":
            raise ValueError('check=True compares a target with the reference: use target="sim" or "host"')
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 0 < threads < 2 ** 16):
            raise ValueError("threads must be a positive integer (below 65536), not %r" % (threads,))
        if threads is not None and target != "host":
            raise ValueError('threads sets the host\'s threads; it needs target="host" (as the CLI\'s --threads needs --target host)')
        self._check_arrays(arrays)
        self._results_only_bound(self.dims, "call", "compile(dims=...)")
        shapes = tuple(a.shape for a in arrays)
        known = self._by_shapes.get(shapes)
        if known is None:
            bound = self._source.bind_dims(self.name, self.dims, [list(s) for s in shapes])
            compiled = self._compiled(bound)
            specs = []
            for _, dtype, shape in compiled.results():
                as_f32 = dtype == "bf16" and _BF16 is None
                specs.append((np.dtype(np.uint16) if as_f32 else _numpy_dtype(dtype), list(shape), as_f32))
            known = (compiled, specs)
            with _lock:
                self._by_shapes[shapes] = known
        else:
            with _lock:
                _counters["memory_hits"] += 1
        compiled, specs = known
        # The target's code first: a kernel it cannot take is a
        # CompileError (E0503), not a MemoryError copying its inputs or
        # allocating its results.
        compiled.prepare(target, check)
        _, raw = self._prepare(arrays)
        outs: List[np.ndarray] = []
        views: List[np.ndarray] = []
        for dt, shape, _ in specs:
            o = np.empty(shape, dt)
            outs.append(o)
            views.append(o.reshape(-1).view(np.uint8))
        finish = [f for _, _, f in specs]
        lines, ok, addresses = compiled.run(target, raw, views, check, threads)
        self.last_host_inputs = list(addresses)
        results = [_f32_from_bf16(o) if f else o for o, f in zip(outs, finish)]
        if lines is not None:
            self.last_check = list(lines)
            if not ok:
                raise MismatchError(list(lines))
        return results[0] if len(results) == 1 else tuple(results)

    def __call__(self, *arrays: Any, target: str = "sim", check: bool = False,
                 threads: Optional[int] = None) -> Any:
        """Runs the kernel on ``arrays`` (one per parameter, in order).

        ``target``: ``"sim"`` (the simulated NPU), ``"host"`` (the CPU,
        through the JIT; ``threads`` bounds its threads) or ``"ref"`` (the
        reference interpreter). ``check=True`` also runs the reference and
        raises :class:`MismatchError` when an output is outside the spec's
        tolerance (the comparison is kept in ``.last_check``).
        """
        return self._run(arrays, target, check, threads)

    def bench(self, **dims: int) -> Dict[str, Any]:
        """Simulates the kernel (timing only) and returns what
        ``tessera bench --json`` prints, as a dict."""
        import json

        return json.loads(self._bind(dims, "bench").bench())

    def text(self, stage: str, **dims: int) -> str:
        """A compiler stage as text: ``ast``, ``ir``, ``opt-ir``, ``plan``,
        ``asm`` (the NPU's) or ``clif`` (the host's), as ``tessera compile
        --emit`` prints it."""
        stages = ("ast", "ir", "opt-ir", "plan", "asm", "clif")
        if stage not in stages:
            raise ValueError("no stage `%s`: the stages are ast, ir, opt-ir, plan, asm and clif" % (stage,))
        if stage == "ast":
            # Of this kernel alone, as `tessera compile -k KERNEL --emit ast`.
            self._bind_names(dims, "text")
            _check_dims(dims, "text")
            return self._source.ast(self.name)
        return self._bind(dims, "text").text(stage)

    def tbc(self, **dims: int) -> bytes:
        """The NPU program as ``.tbc`` bytes (``tessera compile --emit tbc``)."""
        return bytes(self._bind(dims, "tbc").tbc())

    def trace(self, path: Union[str, "os.PathLike[str]"], *arrays: Any, **dims: int) -> None:
        """Writes a Chrome trace (``chrome://tracing``, Perfetto) of a
        simulation to ``path``: of a run on ``arrays`` when given, else of a
        timing-only run with ``dims``."""
        if arrays:
            self._check_arrays(arrays)
            merged = self._merged(dims, "trace")
            self._results_only_bound(merged, "trace", "as keywords, or in compile(dims=...)")
            shapes = [list(a.shape) for a in arrays]
            bound = self._source.bind_dims(self.name, merged, shapes)
            compiled = self._compiled(bound)
            _, raw = self._prepare(arrays)
            text = compiled.trace(raw)
        else:
            text = self._bind(dims, "trace").trace()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def _load(source: Union[str, "os.PathLike[str]"]) -> Tuple["_tessera.Source", str]:
    """The checked source and the name its diagnostics give it."""
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        return _tessera.Source.from_path(path), path
    if not isinstance(source, str):
        raise TypeError("source must be a str (source text or a path) or a path, not %s" % type(source).__name__)
    if "\n" not in source and source.endswith(".tsr"):
        return _tessera.Source.from_path(source), source
    return _tessera.Source(source, "<string>"), "<string>"


def compile(source: Union[str, "os.PathLike[str]"], kernel: Optional[str] = None, *,
            machine: Union[str, "os.PathLike[str]"] = _tessera.DEFAULT_MACHINE, opt: int = 2,
            dims: Optional[Mapping[str, int]] = None, cache: bool = True) -> Kernel:
    """Parses and checks ``source`` and returns its kernel ``kernel``.

    ``source`` is the program's text, or a path (a ``os.PathLike``, or a
    one-line string ending in ``.tsr``). ``kernel`` may be omitted when the
    file defines one kernel. ``machine`` is a built-in machine's name (see
    :func:`machines`) or a machine file; ``opt`` is 0, 1 or 2. ``dims`` binds
    symbolic dims up front (the rest are bound from the arrays of each call);
    with every dim bound, the kernel is compiled now. ``cache=False`` keeps
    the simulator's bytecode out of the on-disk cache.

    Raises :class:`CompileError` for a diagnostic and ``KeyError`` for a
    kernel the source does not define.
    """
    if isinstance(opt, bool) or not isinstance(opt, (int, np.integer)) or opt not in (0, 1, 2):
        raise ValueError("opt must be 0, 1 or 2, not %r" % (opt,))
    opt = int(opt)
    # A machine file may be a path object, as `source` may.
    if isinstance(machine, os.PathLike):
        machine = os.fspath(machine)
    if not isinstance(machine, str):
        raise TypeError("machine must be a built-in machine's name or a machine file's path, not %s" % type(machine).__name__)
    if not isinstance(cache, (bool, np.bool_)):
        raise TypeError("cache must be True or False, not %r" % (cache,))
    cache = bool(cache)
    src, origin = _load(source)
    names = list(src.kernels())
    if kernel is None:
        if len(names) != 1:
            raise KeyError("the source defines %s; name one: %s" % (
                "no kernel" if not names else "%d kernels" % len(names), ", ".join(names)))
        kernel = names[0]
    if kernel not in names:
        raise KeyError("no kernel named %r; the source defines: %s" % (kernel, ", ".join(names) or "none"))
    _check_dims(dims or {}, "compile")
    return Kernel(src, kernel, machine, opt, dict(dims or {}), cache, origin)
