"""Reference conversions the tests compare against.

livekit's own libyuv (``VideoFrame.convert``) is the exact oracle for the RGB families. Its
ABGR conversion aborts inside the FFI (an assertion in livekit-ffi's colorcvt), and its RGB24 is
R,G,B in memory, so abgr and bgr24 are checked through their channel-swapped twins. Formats
livekit cannot convert get numpy references written from their definitions.
"""

from __future__ import annotations

import numpy as np
from livekit import rtc
from livekit.rtc._proto import video_frame_pb2 as proto

# Our format -> (livekit buffer type, channel permutation that turns ours into that type).
LIVEKIT_TWIN = {
    "rgba": (proto.RGBA, [0, 1, 2, 3]),
    "bgra": (proto.BGRA, [0, 1, 2, 3]),
    "argb": (proto.ARGB, [0, 1, 2, 3]),
    "abgr": (proto.ARGB, [0, 3, 2, 1]),  # A,B,G,R -> A,R,G,B
    "rgb24": (proto.RGB24, [0, 1, 2]),
    "bgr24": (proto.RGB24, [2, 1, 0]),  # B,G,R -> R,G,B
}


def planes(i420: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Splits our (h + ceil(h/2), 2 * ceil(w/2)) I420 array into its Y, U and V planes."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    flat = i420.reshape(-1)
    stride = 2 * cw
    y = flat[: stride * height].reshape(height, stride)[:, :width]
    u = flat[stride * height : stride * height + cw * ch].reshape(ch, cw)
    v = flat[stride * height + cw * ch : stride * height + 2 * cw * ch].reshape(ch, cw)
    return y, u, v


def livekit_i420(frame: np.ndarray, fmt: str) -> tuple[np.ndarray, ...]:
    """Y, U, V planes of ``frame`` as livekit's libyuv converts it."""
    height, width = frame.shape[:2]
    kind, order = LIVEKIT_TWIN[fmt]
    data = np.ascontiguousarray(frame[:, :, order]).tobytes()
    return _i420_planes(rtc.VideoFrame(width, height, kind, data).convert(proto.I420))


def _i420_planes(frame: rtc.VideoFrame) -> tuple[np.ndarray, ...]:
    # get_plane views do not keep the frame alive: copy while it is.
    width, height = frame.width, frame.height
    cw, ch = (width + 1) // 2, (height + 1) // 2
    shapes = [(height, width), (ch, cw), (ch, cw)]
    return tuple(
        np.frombuffer(frame.get_plane(i), np.uint8).reshape(shape).copy()
        for i, shape in enumerate(shapes)
    )


def livekit_nv12_i420(y: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, ...]:
    height, width = y.shape
    data = np.ascontiguousarray(y).tobytes() + np.ascontiguousarray(uv).tobytes()
    return _i420_planes(rtc.VideoFrame(width, height, proto.NV12, data).convert(proto.I420))


def average_rows(chroma: np.ndarray) -> np.ndarray:
    """4:2:2 chroma (h rows) to 4:2:0 (ceil(h/2) rows): each pair averaged, rounding up."""
    if chroma.shape[0] % 2:
        chroma = np.concatenate([chroma, chroma[-1:]])
    pairs = chroma.astype(np.int32).reshape(-1, 2, chroma.shape[1])
    return ((pairs[:, 0] + pairs[:, 1] + 1) // 2).astype(np.uint8)


def packed_422_i420(frame: np.ndarray, fmt: str) -> tuple[np.ndarray, ...]:
    """YUYV (Y0 U Y1 V) or UYVY (U Y0 V Y1) frames of shape (h, w, 2), from the definition."""
    height, width = frame.shape[:2]
    macro = frame.reshape(height, width // 2, 4)
    if fmt == "yuyv":
        y = frame[:, :, 0]
        u, v = macro[:, :, 1], macro[:, :, 3]
    else:
        y = frame[:, :, 1]
        u, v = macro[:, :, 0], macro[:, :, 2]
    return y, average_rows(u), average_rows(v)


def gray_i420(frame: np.ndarray) -> tuple[np.ndarray, ...]:
    height, width = frame.shape[:2]
    cw, ch = (width + 1) // 2, (height + 1) // 2
    full = np.full((ch, cw), 128, np.uint8)
    return frame.reshape(height, width), full, full


def assert_close(
    ours: tuple[np.ndarray, ...], ref: tuple[np.ndarray, ...], tol: int = 1, names: str = "YUV"
) -> None:
    for name, a, b in zip(names, ours, ref, strict=True):
        assert a.shape == b.shape, f"{name} plane shape {a.shape} != {b.shape}"
        diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert diff.max() <= tol, f"{name} plane differs by up to {diff.max()} (tolerance {tol})"
