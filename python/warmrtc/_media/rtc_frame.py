"""An I420 frame from livekit as numpy: zero-copy plane views for the native core to read,
and the frame converted to an output format (what sessions and spectators hand the app).

A received frame is read where the FFI left it: :func:`ffi_i420_planes` views the FFI's own
buffer, the native core converts from it with the GIL released, and only then is the buffer
handed back (:func:`take_generated`). No copy is made on the way.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
from livekit import rtc
from livekit.rtc._ffi_client import FfiHandle
from livekit.rtc._proto import video_frame_pb2 as proto_video

from .._core import from_i420, to_i420

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class GeneratedFrame:
    """A frame of the model's, converted: ``array`` in the output format, and the capture
    stamp (unix epoch microseconds) of the input it was made from, 0 when the model sent none."""

    array: np.ndarray
    user_timestamp_us: int


def i420_planes(frame: rtc.VideoFrame) -> Planes:
    """The Y, U and V planes of an I420 frame (tightly packed, chroma rounded up)."""
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    data = np.frombuffer(frame.data, np.uint8)
    y = data[: w * h].reshape(h, w)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw)
    v = data[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw)
    return y, u, v


def ffi_i420_planes(info: proto_video.VideoBufferInfo) -> Planes:
    """Views of the Y, U and V planes of an FFI I420 buffer, in place, each plane at its own
    stride. Valid only until the buffer's handle is dropped: convert, then drop."""
    if info.type != proto_video.VideoBufferType.I420:
        name = proto_video.VideoBufferType.Name(info.type)
        raise ValueError(f"the FFI buffer is {name}; the model's output is read as I420")
    if len(info.components) != 3:
        raise ValueError(f"the FFI I420 buffer has {len(info.components)} planes; expected 3")
    w, h = info.width, info.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    sizes = ((h, w), (ch, cw), (ch, cw))
    return tuple(  # type: ignore[return-value]
        _plane_view(c, rows, cols, name)
        for c, (rows, cols), name in zip(info.components, sizes, "YUV", strict=True)
    )


def _plane_view(
    component: proto_video.VideoBufferInfo.ComponentInfo, rows: int, cols: int, name: str
) -> np.ndarray:
    stride, size = component.stride, component.size
    # The last row needs only its own pixels: never read past what the FFI declared.
    needed = (rows - 1) * stride + cols if rows and cols else 0
    if not component.data_ptr or stride < cols or size < needed:
        raise ValueError(
            f"the FFI's {name} plane (address {component.data_ptr:#x}, stride {stride}, "
            f"size {size}) cannot hold {rows} rows of {cols} pixels"
        )
    memory = memoryview((ctypes.c_uint8 * size).from_address(component.data_ptr)).cast("B")
    return np.ndarray((rows, cols), np.uint8, memory, strides=(stride, 1))


def output_frame(planes: Planes, fmt: str) -> np.ndarray:
    """The I420 ``planes`` as a new array in ``fmt`` (an output format, e.g. ``"bgr24"``,
    ``"i420"``); the GIL is released while pixels are converted."""
    return to_i420(planes, "i420") if fmt == "i420" else from_i420(planes, fmt)


def take_generated(received: proto_video.VideoFrameReceived, fmt: str) -> GeneratedFrame:
    """Converts a received frame from the FFI's buffer to ``fmt``, then hands the buffer back
    to the FFI (also when the conversion failed)."""
    try:
        array = output_frame(ffi_i420_planes(received.buffer.info), fmt)
    finally:
        release(received)
    stamp = received.metadata.user_timestamp if received.HasField("metadata") else 0
    return GeneratedFrame(array, stamp)


def release(received: proto_video.VideoFrameReceived) -> None:
    """Hands a received frame's buffer back to the FFI unread (a frame dropped)."""
    FfiHandle(received.buffer.handle.id).dispose()


def black_frame(width: int, height: int) -> rtc.VideoFrame:
    """One black I420 frame (limited range), e.g. to end livekit's keepalive."""
    luma = width * height
    chroma = ((width + 1) // 2) * ((height + 1) // 2)
    data = bytearray(b"\x80") * (luma + 2 * chroma)
    data[:luma] = b"\x10" * luma
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, data)


__all__ = [
    "GeneratedFrame",
    "Planes",
    "black_frame",
    "ffi_i420_planes",
    "i420_planes",
    "output_frame",
    "release",
    "take_generated",
]
