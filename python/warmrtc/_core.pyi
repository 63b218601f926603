"""Type stubs for the native core (cpp/bindings.cpp).

The public functions' docstrings are the bindings' own, word for word (tests/test_docstrings.py
checks it): the documentation site reads them from here.
"""

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
    """Converts a frame to one contiguous I420 array (Y rows, then U, then V).

    The GIL is released while pixels are converted; safe to call from many threads. The frame is
    read without a copy: a numpy array, a buffer-protocol object, or an `__array_interface__` or
    DLPack (CPU) producer, laid out for `fmt` as follows.

    - `rgb24` `bgr24` `rgba` `bgra` `argb` `abgr`: an `(h, w, 3 or 4)` uint8 array with any
      positive strides; float32 in [0, 1] is taken for rgb24/bgr24 (values outside it are
      clamped, NaN counts as 0 and +inf as 1).
    - `gray`: `(h, w)` or `(h, w, 1)`.
    - `yuyv`/`uyvy`: `(h, w, 2)` with an even w.
    - `i420`: a `(y, u, v)` tuple of `(h, w)`, `(ceil(h/2), ceil(w/2))` planes, or one
      C-contiguous `(h + ceil(h/2), w)` array with an even w.
    - `nv12`/`nv21`: a `(y, uv)` tuple with uv `(ceil(h/2), ceil(w/2), 2)` or
      `(ceil(h/2), 2*ceil(w/2))`, or one `(h + ceil(h/2), w)` array with an even w.

    Args:
        frame: The frame, laid out as above.
        fmt: One of the format names above.
        size: `(width, height)` to scale to (bilinear); None keeps the frame's size.
        out: A C-contiguous uint8 array of `i420_shape(width, height)` to write into and return.

    Returns:
        An `(h + ceil(h/2), 2*ceil(w/2))` uint8 array. Y is h rows of w pixels, U and V follow,
        each `ceil(h/2) x ceil(w/2)`, packed back to back. For an odd w each Y row has one padding
        byte after its pixels, written as a copy of the row's last pixel, so the result is
        deterministic.

    Raises:
        ValueError: An unknown `fmt`, a shape, stride or size the format cannot take, or a
            read-only or mis-shaped `out`.
        TypeError: A wrong dtype, or an object that is not an array.
    """

def from_i420(frame: Any, fmt: str) -> npt.NDArray[np.uint8]:
    """Converts an I420 frame to packed pixels.

    The GIL is released during the conversion.

    Args:
        frame: An I420 frame as `to_i420` takes it (`(y, u, v)` planes or one
            `(h + ceil(h/2), w)` array).
        fmt: `rgb24` `bgr24` `rgba` `bgra` `argb` `abgr`, or `gray` (the Y plane).

    Returns:
        An `(h, w, 3 or 4)` uint8 array, or `(h, w)` for `gray`.

    Raises:
        ValueError: Any other `fmt`, or a frame that is not I420.
        TypeError: A wrong dtype.
    """

def i420_shape(width: int, height: int) -> tuple[int, int]:
    """The `(rows, cols)` of `to_i420`'s output for a frame.

    Args:
        width: The frame's width.
        height: The frame's height.

    Returns:
        `(height + ceil(height/2), 2*ceil(width/2))`.
    """

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
