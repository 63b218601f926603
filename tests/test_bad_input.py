"""Bad frames raise ValueError/TypeError naming the problem; nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warmrtc

FORMATS = ["rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "nv12", "nv21", "yuyv", "uyvy"]
FORMATS += ["gray", "i420"]


@pytest.mark.parametrize(
    ("frame", "fmt", "error", "words"),
    [
        (np.zeros((4, 4, 3), np.float64), "bgr24", TypeError, "format 'd'"),
        (np.zeros((4, 4, 4), np.float32), "rgba", TypeError, "float32; rgba needs uint8"),
        (np.zeros((4, 4, 3), np.int16), "bgr24", TypeError, "expected uint8"),
        (np.zeros((4, 4, 4), np.uint8), "bgr24", ValueError, "(4, 4, 4); bgr24 needs (h, w, 3)"),
        (np.zeros((4, 4), np.uint8), "rgba", ValueError, "rgba needs (h, w, 4)"),
        (np.zeros((4,), np.uint8), "gray", ValueError, "shape (4,)"),
        (np.zeros((2, 2, 2, 2), np.uint8), "gray", ValueError, "4 dimensions"),
        (np.zeros((0, 4, 3), np.uint8), "bgr24", ValueError, "empty"),
        (np.zeros((4, 0), np.uint8), "gray", ValueError, "empty"),
        (np.zeros((2, 16385), np.uint8), "gray", ValueError, "16384"),
        (np.zeros((4, 4, 3), np.uint8)[::-1], "bgr24", ValueError, "negative strides"),
        (np.zeros((4, 3, 2), np.uint8), "yuyv", ValueError, "even width"),
        (np.zeros((7, 4), np.uint8), "i420", ValueError, "(h + (h + 1) // 2, w)"),
        (np.zeros((6, 5), np.uint8), "nv12", ValueError, "even w"),
        (np.zeros((12, 8), np.uint8)[:, :4], "i420", ValueError, "C-contiguous"),
        ((np.zeros((4, 4), np.uint8),) * 2, "i420", ValueError, "(y, u, v) planes"),
        ((np.zeros((4, 4), np.uint8),) * 3, "i420", ValueError, "u plane has shape (4, 4)"),
        ((np.zeros((4, 4), np.uint8), np.zeros((2, 3, 2), np.uint8)), "nv12", ValueError, "uv"),
        ((np.zeros((4, 4, 3), np.uint8),) * 2, "bgr24", ValueError, "takes one array"),
        ((), "i420", ValueError, "0 planes"),
        ("not a frame", "bgr24", TypeError, "got str"),
        (42, "bgr24", TypeError, "got int"),
        (np.zeros((4, 4, 3), np.uint8), "bgr32", ValueError, "unknown pixel format 'bgr32'"),
    ],
)
def test_bad_frames_name_the_problem(frame: object, fmt: str, error: type, words: str) -> None:
    with pytest.raises(error) as info:
        warmrtc.to_i420(frame, fmt)
    assert words in str(info.value)


def test_bad_size_and_out() -> None:
    frame = np.zeros((4, 4, 3), np.uint8)
    for size, words in [((0, 4), "out of range"), ((4, 20000), "out of range"), ((4,), "pair")]:
        with pytest.raises(ValueError, match=words.replace("(", r"\(")):
            warmrtc.to_i420(frame, "bgr24", size=size)
    read_only = np.zeros((6, 4), np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        warmrtc.to_i420(frame, "bgr24", out=read_only)
    with pytest.raises(ValueError, match=r"needs \(6, 4\)"):
        warmrtc.to_i420(frame, "bgr24", out=np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        warmrtc.to_i420(frame, "bgr24", out=np.zeros((6, 4), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        warmrtc.to_i420(frame, "bgr24", out=np.zeros((6, 8), np.uint8)[:, ::2])
    with pytest.raises(TypeError, match="numpy uint8 array"):
        warmrtc.to_i420(frame, "bgr24", out=bytearray(24))


def test_failed_conversion_leaves_out_untouched() -> None:
    out = np.full((6, 4), 7, np.uint8)
    with pytest.raises(ValueError):
        warmrtc.to_i420(np.zeros((4, 4, 4), np.uint8), "bgr24", out=out)
    assert (out == 7).all()


shapes = st.lists(st.integers(0, 40), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from([np.uint8, np.float32, np.int8, np.float64, np.uint16])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=shapes,
    dtype=dtypes,
    fmt=st.sampled_from(FORMATS),
    step=st.integers(1, 3),
    size=st.none() | st.tuples(st.integers(-2, 50), st.integers(-2, 50)),
)
def test_fuzz_never_crashes(
    shape: tuple[int, ...], dtype: type, fmt: str, step: int, size: tuple[int, int] | None
) -> None:
    frame = np.zeros(shape, dtype)
    if frame.ndim >= 2:
        frame = frame[::step, ::step]
    try:
        out = warmrtc.to_i420(frame, fmt, size=size)
    except (ValueError, TypeError):
        return
    assert out.dtype == np.uint8 and out.ndim == 2


@settings(max_examples=200, deadline=None)
@given(
    planes=st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 3)), max_size=4
    ),
    fmt=st.sampled_from(["i420", "nv12", "nv21", "bgr24"]),
)
def test_fuzz_plane_tuples_never_crash(planes: list[tuple[int, int, int]], fmt: str) -> None:
    arrays = tuple(np.zeros((h, w, c) if c else (h, w), np.uint8) for h, w, c in planes)
    try:
        warmrtc.to_i420(arrays, fmt)
    except (ValueError, TypeError):
        pass


@pytest.mark.parametrize("fmt", ["bgr24", "rgba", "gray", "i420", "nv12"])
def test_flat_bytes_are_named_as_flat_not_as_too_large(fmt: str) -> None:
    """``capture(frame.tobytes())``: the frame's bytes are there, its shape is not; the error
    says that (it said the frame was larger than 16384 per side)."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    source = warmrtc.VideoSource(1280, 720, fmt)
    try:
        with pytest.raises(ValueError) as info:
            source.capture(frame.tobytes())
        message = str(info.value)
        assert "16384" not in message and "one-dimensional" in message, message
        assert "numpy" in message and "shape" in message
    finally:
        source.close()


def test_float_frames_out_of_range_are_defined() -> None:
    """float32 rgb24/bgr24 frames are taken in [0, 1]: values outside it are clamped, NaN
    counts as 0 (black), +inf as 1 and -inf as 0, the same on every path."""
    odd = np.array([np.nan, np.inf, -np.inf, 2.0, -1.0, 0.0, 1.0, 0.5], np.float32)
    frame = np.repeat(odd, 6).reshape(8, 6, 1).repeat(3, axis=2).reshape(8, 6, 3)
    clamped = np.nan_to_num(frame, nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    expected = warmrtc.to_i420((clamped * 255 + 0.5).astype(np.uint8), "rgb24")
    got = warmrtc.to_i420(np.ascontiguousarray(frame), "rgb24")
    assert np.array_equal(got, expected)
