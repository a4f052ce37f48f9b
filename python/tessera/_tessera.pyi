"""Type stub of the native module `tessera._tessera` (the compiler crates).

Use the package `tessera`; this module is its engine."""

from os import PathLike
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
DEFAULT_MACHINE: str

_Dim = Union[int, str]
_Slot = Tuple[str, str, List[_Dim]]
_RawSpan = Tuple[int, int, int, int, str, bool]

class CompileError(Exception):
    """A diagnostic: the rendered text, with `.code`, `.codes` and `.spans`."""

    code: str
    codes: List[str]
    raw_spans: List[_RawSpan]

class MachineFault(Exception):
    """The simulated machine (or the interpreter) faulted; `.code` names the fault (`.codes` as `CompileError`'s)."""

    code: str
    codes: List[str]
    raw_spans: List[_RawSpan]

class Source:
    """A checked source file."""

    def __init__(self, text: str, name: str) -> None: ...
    @staticmethod
    def from_path(path: Union[str, "PathLike[str]"]) -> "Source": ...
    @property
    def text(self) -> str: ...
    def kernels(self) -> List[str]: ...
    def ast(self, kernel: Optional[str] = None) -> str: ...
    def signature(self, kernel: str) -> Tuple[List[_Slot], List[_Slot]]: ...
    def bind_dims(
        self, kernel: str, dims: Mapping[str, int], shapes: Sequence[Optional[Sequence[int]]]
    ) -> Dict[str, int]: ...
    def bind(
        self,
        kernel: str,
        dims: Mapping[str, int],
        machine: str,
        opt: int,
        cache_dir: Optional[Union[str, "PathLike[str]"]] = None,
    ) -> "Compiled": ...

class Compiled:
    """A kernel with concrete dims, compiled for each target on first use."""

    def params(self) -> List[Tuple[str, str, List[int]]]: ...
    def results(self) -> List[Tuple[str, str, List[int]]]: ...
    def dims(self) -> Dict[str, int]: ...
    def machine(self) -> str: ...
    def run(
        self,
        target: str,
        inputs: Sequence[npt.NDArray[np.uint8]],
        outputs: Sequence[npt.NDArray[np.uint8]],
        check: bool = False,
        threads: Optional[int] = None,
    ) -> Tuple[Optional[List[str]], bool, List[int]]: ...
    def prepare(self, target: str, check: bool = False) -> None: ...
    def text(self, stage: str) -> str: ...
    def tbc(self) -> bytes: ...
    def bench(self) -> str: ...
    def trace(self, inputs: Optional[Sequence[npt.NDArray[np.uint8]]] = None) -> str: ...

def machines() -> List[str]: ...
def check_machine(name: str) -> None: ...
def stats() -> Dict[str, int]: ...
def default_cache_dir() -> Optional[str]: ...
