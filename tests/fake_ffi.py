"""A stand-in for livekit_ffi_request that records what a Pipeline declares to the FFI.

It reads each component the way livekit-ffi does (``size`` bytes from ``data_ptr``; for the
packed types ``stride * height`` bytes from the buffer's ``data_ptr``), but first checks the
range against the caller's planes: a range that starts inside a caller's plane and runs past
that plane's real extent is recorded as an overread instead of being read.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field

import numpy as np
from livekit.rtc._proto import ffi_pb2
from livekit.rtc._proto import video_frame_pb2 as proto

from warmrtc import _core

_REQUEST = ctypes.CFUNCTYPE(
    ctypes.c_uint64,
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.POINTER(ctypes.c_void_p),
    ctypes.POINTER(ctypes.c_size_t),
)
MAX_READ = 64 << 20  # no test frame is larger; a declared size above it is a wrapped one
_DROP = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_uint64)


def extent(view: np.ndarray) -> tuple[int, int]:
    """(first address, bytes up to and including its last byte) of a positively strided view."""
    last = sum((n - 1) * s for n, s in zip(view.shape, view.strides, strict=True))
    return view.ctypes.data, last + view.itemsize


@dataclass
class Declared:
    """One range the request tells the FFI to read, and its bytes when reading it was safe."""

    data_ptr: int
    stride: int
    size: int
    data: bytes | None


@dataclass
class Capture:
    type: int
    width: int
    height: int
    stride: int
    ranges: list[Declared]
    metadata: tuple[int, int] | None = None  # (user_timestamp, frame_id) when sent


@dataclass
class FakeFfi:
    regions: list[tuple[int, int]] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    overreads: list[str] = field(default_factory=list)
    dwell: float = 0.0  # seconds each request takes, the GIL let go (as a long copy would)
    in_flight: int = 0
    most_in_flight: int = 0  # the most requests that were under way at once

    def __post_init__(self) -> None:
        self._request = _REQUEST(self._on_request)
        self._drop = _DROP(lambda handle: True)

    def pipeline(
        self,
        width: int,
        height: int,
        fmt: str,
        *,
        fused: bool = False,
        stamp: bool = True,
        threads: int = 1,
    ) -> _core.Pipeline:
        request = ctypes.cast(self._request, ctypes.c_void_p).value
        drop = ctypes.cast(self._drop, ctypes.c_void_p).value
        assert request and drop
        return _core.Pipeline(1, width, height, fmt, request, drop, fused, stamp, threads)

    def watch(self, *views: np.ndarray) -> None:
        """Declares the caller's planes: ranges starting inside them are bounds-checked."""
        self.regions = [extent(v) for v in views]

    def _read(self, ptr: int, stride: int, size: int) -> Declared:
        if size > MAX_READ:
            self.overreads.append(f"{size} bytes from {ptr:#x}: more than any test frame holds")
            return Declared(ptr, stride, size, None)
        for start, length in self.regions:
            if start <= ptr < start + length and ptr + size > start + length:
                self.overreads.append(
                    f"{size} bytes from offset {ptr - start} of a {length}-byte view"
                )
                return Declared(ptr, stride, size, None)
        return Declared(ptr, stride, size, ctypes.string_at(ptr, size))

    def _on_request(self, data: int, length: int, res_ptr: object, res_len: object) -> int:
        self.in_flight += 1  # under the GIL
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.dwell:
                time.sleep(self.dwell)
            return self._record(data, length)
        finally:
            self.in_flight -= 1

    def _record(self, data: int, length: int) -> int:
        request = ffi_pb2.FfiRequest()
        request.ParseFromString(ctypes.string_at(data, length))
        buf = request.capture_video_frame.buffer
        if buf.type == proto.I420:
            ranges = [self._read(c.data_ptr, c.stride, c.size) for c in buf.components]
        else:  # livekit-ffi's packed path reads stride * height bytes from data_ptr
            ranges = [self._read(buf.data_ptr, buf.stride, buf.stride * buf.height)]
        capture = request.capture_video_frame
        metadata = None
        if capture.HasField("metadata"):
            metadata = (capture.metadata.user_timestamp, capture.metadata.frame_id)
        self.captures.append(Capture(buf.type, buf.width, buf.height, buf.stride, ranges, metadata))
        return 1
