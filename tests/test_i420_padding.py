"""The padding byte of odd-width I420 layouts is written: the last pixel of its row, repeated.

For an odd width w every Y row of the (h + ceil(h/2), w + 1) layout has one byte past the
image; conversions must leave nothing in it from earlier memory, so the same frame always
gives the same array.
"""

from __future__ import annotations

import numpy as np
import pytest

import warmrtc
from fake_ffi import FakeFfi


def bgr(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def assert_padding_repeats_last_pixel(i420: np.ndarray, width: int, height: int) -> None:
    y = i420[:height]
    np.testing.assert_array_equal(y[:, width], y[:, width - 1])


@pytest.mark.parametrize(("width", "height"), [(33, 17), (1, 1), (641, 479)])
@pytest.mark.parametrize("fmt", ["bgr24", "i420", "nv12"])
def test_odd_width_output_is_deterministic(fmt: str, width: int, height: int) -> None:
    frame = warmrtc.to_i420(bgr(width, height), "bgr24")
    cw, ch = (width + 1) // 2, (height + 1) // 2
    chroma = frame[height:].reshape(-1)
    u, v = chroma[: cw * ch].reshape(ch, cw), chroma[cw * ch :].reshape(ch, cw)
    source = {
        "bgr24": bgr(width, height),
        "i420": (frame[:height, :width], u, v),
        "nv12": (frame[:height, :width], np.dstack([u, v])),
    }[fmt]
    first = warmrtc.to_i420(source, fmt)
    second = warmrtc.to_i420(source, fmt)
    np.testing.assert_array_equal(first, second)
    assert_padding_repeats_last_pixel(first, width, height)


def test_out_padding_is_overwritten() -> None:
    out = np.full(warmrtc.i420_shape(33, 17), 0xAB, np.uint8)
    warmrtc.to_i420(bgr(33, 17), "bgr24", out=out)
    assert_padding_repeats_last_pixel(out, 33, 17)


@pytest.mark.parametrize("size", [(31, 15), (1, 3), (63, 48)])
def test_scaled_output_padding_is_written(size: tuple[int, int]) -> None:
    width, height = size
    out = np.full(warmrtc.i420_shape(width, height), 0xAB, np.uint8)
    for fmt, frame in [("bgr24", bgr(64, 48)), ("i420", warmrtc.to_i420(bgr(64, 48), "bgr24"))]:
        out[...] = 0xAB
        warmrtc.to_i420(frame, fmt, size=size, out=out)
        assert_padding_repeats_last_pixel(out, width, height)
        np.testing.assert_array_equal(out, warmrtc.to_i420(frame, fmt, size=size))


def test_pooled_buffer_padding_is_written() -> None:
    ffi = FakeFfi()
    # A wider frame first leaves its pixels in this thread's pooled buffer.
    assert ffi.pipeline(64, 48, "bgr24").capture(bgr(64, 48, seed=1)) is True
    assert ffi.pipeline(63, 48, "bgr24").capture(bgr(63, 48, seed=2)) is True
    y = ffi.captures[1].ranges[0]
    assert y.stride == 64 and y.data is not None
    sent = np.frombuffer(y.data, np.uint8).reshape(48, 64)
    np.testing.assert_array_equal(sent, warmrtc.to_i420(bgr(63, 48, seed=2), "bgr24")[:48])
    np.testing.assert_array_equal(sent[:, 63], sent[:, 62])
