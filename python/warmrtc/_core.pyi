"""Type stubs for the native core (cpp/bindings.cpp)."""

from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

class PipelineStats(TypedDict):
    captured: int
    dropped_while_muted: int
    dropped_closed: int
    converted: int
    rejected: int
    bytes_in: int
    banded: int

def to_i420(
    frame: Any,
    fmt: str,
    *,
    size: tuple[int, int] | None = None,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Converts a frame to one (h + ceil(h/2), 2*ceil(w/2)) uint8 I420 array: Y, then U, then V.

    For an odd w each Y row has one padding byte after its pixels, written as a copy of the
    row's last pixel. Formats, shapes and errors: see ``help(warmrtc.to_i420)``.
    """

def from_i420(frame: Any, fmt: str) -> npt.NDArray[np.uint8]: ...
def i420_shape(width: int, height: int) -> tuple[int, int]: ...
def _encode_capture_request(
    source_handle: int,
    type: int,
    width: int,
    height: int,
    data_ptr: int,
    stride: int,
    components: list[tuple[int, int, int]],
    timestamp_us: int,
    rotation: int,
    metadata: tuple[int, int] | None = None,
) -> bytes: ...

class _Pybind11Type(type):
    """pybind11's metaclass (``pybind11_builtins.pybind11_type`` at runtime, not importable),
    named here so stubtest checks Pipeline against a stub with a metaclass, as it has."""

class Pipeline(metaclass=_Pybind11Type):
    def __init__(
        self,
        source_handle: int,
        width: int,
        height: int,
        fmt: str,
        ffi_request: int,
        ffi_drop_handle: int,
        fused_packed: bool = False,
        stamp_frames: bool = True,
        threads: int = 1,
    ) -> None: ...
    def capture(self, frame: Any, timestamp_us: int | None = None) -> bool: ...
    def mute(self) -> None: ...
    def unmute(self) -> None: ...
    @property
    def muted(self) -> bool: ...
    def _close_gate(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def stats(self) -> PipelineStats: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def fmt(self) -> str: ...
    @property
    def stamp_frames(self) -> bool: ...
    @property
    def threads(self) -> int:
        """Threads that share one frame's conversion (1: the capturing one)."""
