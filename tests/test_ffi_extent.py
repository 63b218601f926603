"""What a capture declares to the FFI stays inside the caller's memory.

livekit-ffi copies an I420 component by reading ``size`` bytes from its ``data_ptr`` and
requires ``size == stride * rows``; for RGBA-family/RGB24 buffers it takes ``stride * height``
bytes from ``data_ptr``. A cropped view (row stride > row bytes) has only its pixels after the
start of its last row, so it must be copied into our own buffer, never handed over as is.
"""

from __future__ import annotations

import numpy as np
import pytest
from livekit.rtc._proto import video_frame_pb2 as proto

import warmrtc
from fake_ffi import FakeFfi
from guarded_memory import guarded_plane
from isolated import run_isolated

HUGE_STRIDE = 2**31 - 1  # stride * rows is past uint32 (and int32: libyuv cannot read it in place)


def random_plane(rng: np.random.Generator, rows: int, cols: int, *, crop: int) -> np.ndarray:
    """A (rows, cols) crop of a wider array: rows are cols + crop bytes apart."""
    big = rng.integers(0, 256, (rows, cols + crop), dtype=np.uint8)
    return big[:, crop:]


def i420_planes_of(capture_ranges: list, width: int, height: int) -> list[np.ndarray]:
    ch, cw = (height + 1) // 2, (width + 1) // 2
    out = []
    for r, (rows, cols) in zip(capture_ranges, [(height, width), (ch, cw), (ch, cw)], strict=True):
        assert r.size == r.stride * rows, "livekit-ffi aborts unless size == stride * rows"
        assert r.data is not None
        out.append(np.frombuffer(r.data, np.uint8).reshape(rows, r.stride)[:, :cols])
    return out


@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17), (1, 1)])
@pytest.mark.parametrize("crop", [0, 1, 64])
def test_i420_planes_are_declared_within_their_views(width: int, height: int, crop: int) -> None:
    rng = np.random.default_rng(width * height + crop)
    ch, cw = (height + 1) // 2, (width + 1) // 2
    y = random_plane(rng, height, width, crop=crop)
    u = random_plane(rng, ch, cw, crop=crop)
    v = random_plane(rng, ch, cw, crop=crop)
    ffi = FakeFfi()
    ffi.watch(y, u, v)
    assert ffi.pipeline(width, height, "i420").capture((y, u, v)) is True
    assert ffi.overreads == []
    (capture,) = ffi.captures
    assert capture.type == proto.I420
    for got, sent in zip(i420_planes_of(capture.ranges, width, height), (y, u, v), strict=True):
        np.testing.assert_array_equal(got, sent)
    if crop == 0:  # packed planes still go to the FFI without our copy
        assert [r.data_ptr for r in capture.ranges] == [p.ctypes.data for p in (y, u, v)]


@pytest.mark.parametrize("crop", [0, 4, 12])
@pytest.mark.parametrize(("fmt", "channels"), [("rgba", 4), ("rgb24", 3)])
def test_fused_packed_frames_are_declared_within_their_views(
    fmt: str, channels: int, crop: int
) -> None:
    rng = np.random.default_rng(crop)
    big = rng.integers(0, 256, (48, 64 + crop, channels), dtype=np.uint8)
    frame = big[:, crop:]
    ffi = FakeFfi()
    ffi.watch(frame)
    assert ffi.pipeline(64, 48, fmt, fused=True).capture(frame) is True
    assert ffi.overreads == []
    (capture,) = ffi.captures
    if crop == 0:
        assert capture.type != proto.I420 and capture.ranges[0].data_ptr == frame.ctypes.data
    else:
        assert capture.type == proto.I420
        i420 = warmrtc.to_i420(frame, fmt)
        y = i420_planes_of(capture.ranges, 64, 48)[0]
        np.testing.assert_array_equal(y, i420[:48])


def test_a_huge_row_stride_never_wraps_a_declared_size() -> None:
    # Rows 2**31 - 1 bytes apart: stride * rows does not fit the protobuf's uint32 size.
    y = guarded_plane(3, 4, row_stride=HUGE_STRIDE, fill=200)
    u, v = np.full((2, 2), 50, np.uint8), np.full((2, 2), 60, np.uint8)
    ffi = FakeFfi()
    ffi.watch(y, u, v)
    assert ffi.pipeline(4, 3, "i420").capture((y, u, v)) is True
    rgba = guarded_plane(3, 4, 4, row_stride=HUGE_STRIDE, fill=255)
    ffi.watch(rgba)
    assert ffi.pipeline(4, 3, "rgba", fused=True).capture(rgba) is True
    assert ffi.overreads == []
    assert [c.type for c in ffi.captures] == [proto.I420, proto.I420]
    y_out, u_out, v_out = i420_planes_of(ffi.captures[0].ranges, 4, 3)
    assert (y_out == 200).all() and (u_out == 50).all() and (v_out == 60).all()
    expected = warmrtc.to_i420(np.ascontiguousarray(rgba), "rgba")[:3, :4]
    np.testing.assert_array_equal(i420_planes_of(ffi.captures[1].ranges, 4, 3)[0], expected)


def test_cropped_planes_at_a_guard_page_reach_the_real_ffi() -> None:
    # The crash this guards against: a (48, 64) crop of a (48, 128) array handed over as
    # stride * rows bytes ran 64 bytes into the guard page (SIGSEGV inside livekit-ffi).
    run_isolated(
        """
        from guarded_memory import guarded_plane
        import warmrtc

        def planes(w, h, crop):
            cw, ch = (w + 1) // 2, (h + 1) // 2
            return (
                guarded_plane(h, w, row_stride=w + crop, fill=90),
                guarded_plane(ch, cw, row_stride=cw + crop, fill=100),
                guarded_plane(ch, cw, row_stride=cw + crop, fill=110),
            )

        for w, h in [(64, 48), (33, 17)]:
            src = warmrtc.VideoSource(w, h, "i420")
            for crop in (0, 1, 64, 4096):
                assert src.capture(planes(w, h, crop)) is True, crop
            src.close()
        for fmt, channels in [("rgba", 4), ("rgb24", 3)]:
            src = warmrtc.VideoSource(64, 48, fmt, _fused=True)
            for crop in (0, 8, 4096):
                frame = guarded_plane(48, 64, channels, row_stride=64 * channels + crop)
                assert src.capture(frame) is True, (fmt, crop)
            src.close()
        """
    )
