"""Zero-copy numpy views of a livekit I420 ``VideoFrame``, for the native core to read."""

from __future__ import annotations

import numpy as np
from livekit import rtc


def i420_planes(frame: rtc.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Y, U and V planes of an I420 frame (tightly packed, chroma rounded up)."""
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    data = np.frombuffer(frame.data, np.uint8)
    y = data[: w * h].reshape(h, w)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw)
    v = data[w * h + cw * ch : w * h + 2 * cw * ch].reshape(ch, cw)
    return y, u, v
