"""A livekit I420 ``VideoFrame`` as numpy: zero-copy plane views for the native core to read,
and the frame converted to an output format (what sessions and spectators hand the app)."""

from __future__ import annotations

import numpy as np
from livekit import rtc

from ._core import from_i420, to_i420


def i420_planes(frame: rtc.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes of an I420 frame (tightly packed, chroma rounded up)."""
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    data = np.frombuffer(frame.data, np.uint8)
    y = data[: w * h].reshape(h, w)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw)
    v = data[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw)
    return y, u, v


def output_frame(frame: rtc.VideoFrame, fmt: str) -> np.ndarray:
    """The frame as a new array in ``fmt`` (an output format, e.g. ``"bgr24"``, ``"i420"``)."""
    planes = i420_planes(frame)
    return to_i420(planes, "i420") if fmt == "i420" else from_i420(planes, fmt)
