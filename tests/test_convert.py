"""warmrtc.to_i420 against libyuv as livekit ships it, OpenCV and numpy references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import warmrtc
from isolated import run_isolated
from oracle import (
    LIVEKIT_TWIN,
    assert_close,
    gray_i420,
    livekit_i420,
    livekit_nv12_i420,
    packed_422_i420,
    planes,
)

SIZES = [(64, 48), (33, 17), (2, 2), (1, 1), (641, 479), (1280, 720)]
SOLIDS = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
RGB_INDEX = {"rgb24": (0, 1, 2), "bgr24": (2, 1, 0), "rgba": (0, 1, 2), "bgra": (2, 1, 0)}
RGB_INDEX |= {"argb": (1, 2, 3), "abgr": (3, 2, 1)}


def random_frame(rng: np.random.Generator, width: int, height: int, channels: int) -> np.ndarray:
    return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)


def solid_frame(fmt: str, rgb: tuple[int, int, int], width: int, height: int) -> np.ndarray:
    channels = 3 if fmt.endswith("24") else 4
    frame = np.full((height, width, channels), 255, np.uint8)
    for value, index in zip(rgb, RGB_INDEX[fmt], strict=True):
        frame[:, :, index] = value
    return frame


@pytest.mark.parametrize("fmt", sorted(LIVEKIT_TWIN))
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_rgb_families_match_livekit_on_random_frames(fmt: str, width: int, height: int) -> None:
    rng = np.random.default_rng(width * 1000 + height)
    frame = random_frame(rng, width, height, 3 if fmt.endswith("24") else 4)
    ours = planes(warmrtc.to_i420(frame, fmt), width, height)
    assert_close(ours, livekit_i420(frame, fmt))


@pytest.mark.parametrize("fmt", sorted(LIVEKIT_TWIN))
@pytest.mark.parametrize("colour", sorted(SOLIDS))
@pytest.mark.parametrize(("width", "height"), [(16, 8), (15, 9)])
def test_solid_colours_match_livekit(fmt: str, colour: str, width: int, height: int) -> None:
    frame = solid_frame(fmt, SOLIDS[colour], width, height)
    ours = planes(warmrtc.to_i420(frame, fmt), width, height)
    assert_close(ours, livekit_i420(frame, fmt))


def test_channel_order_is_memory_order() -> None:
    # Pure red in BT.601 limited range: Y 82, U 90, V 240 (±1). A swapped R/B gives V ~110.
    for fmt in RGB_INDEX:
        y, u, v = planes(warmrtc.to_i420(solid_frame(fmt, (255, 0, 0), 4, 4), fmt), 4, 4)
        assert abs(int(y[0, 0]) - 82) <= 1, fmt
        assert abs(int(u[0, 0]) - 90) <= 1, fmt
        assert abs(int(v[0, 0]) - 240) <= 1, fmt


@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17), (1, 1)])
def test_nv12_and_nv21_match_references(width: int, height: int) -> None:
    rng = np.random.default_rng(7)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    uv = rng.integers(0, 256, (ch, cw, 2), dtype=np.uint8)
    ours = planes(warmrtc.to_i420((y, uv), "nv12"), width, height)
    assert_close(ours, livekit_nv12_i420(y, uv), tol=0)
    ours21 = planes(warmrtc.to_i420((y, uv), "nv21"), width, height)
    assert_close(ours21, (y, uv[:, :, 1], uv[:, :, 0]), tol=0)
    # The (ch, 2 * cw) form of the same chroma plane reads the same.
    flat_uv = uv.reshape(ch, 2 * cw)
    assert_close(planes(warmrtc.to_i420((y, flat_uv), "nv12"), width, height), ours, tol=0)


def test_single_array_nv12_and_i420() -> None:
    rng = np.random.default_rng(3)
    width, height = 64, 48
    frame = rng.integers(0, 256, (height * 3 // 2, width), dtype=np.uint8)
    y = frame[:height]
    uv = frame[height:].reshape(height // 2, width // 2, 2)
    assert_close(
        planes(warmrtc.to_i420(frame, "nv12"), width, height), (y, uv[..., 0], uv[..., 1]), tol=0
    )
    np.testing.assert_array_equal(warmrtc.to_i420(frame, "i420"), frame)


@pytest.mark.parametrize("fmt", ["yuyv", "uyvy"])
@pytest.mark.parametrize(("width", "height"), [(64, 48), (34, 17), (2, 1)])
def test_packed_422_match_definition(fmt: str, width: int, height: int) -> None:
    frame = random_frame(np.random.default_rng(11), width, height, 2)
    ours = planes(warmrtc.to_i420(frame, fmt), width, height)
    assert_close(ours, packed_422_i420(frame, fmt))


@pytest.mark.parametrize("shape", [(48, 64), (17, 33, 1)])
def test_gray_is_luma_with_neutral_chroma(shape: tuple[int, ...]) -> None:
    frame = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    height, width = shape[:2]
    assert_close(planes(warmrtc.to_i420(frame, "gray"), width, height), gray_i420(frame), tol=0)


@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17)])
def test_i420_planes_are_copied_exactly(width: int, height: int) -> None:
    rng = np.random.default_rng(9)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    u = rng.integers(0, 256, (ch, cw), dtype=np.uint8)
    v = rng.integers(0, 256, (ch, cw), dtype=np.uint8)
    assert_close(planes(warmrtc.to_i420((y, u, v), "i420"), width, height), (y, u, v), tol=0)


def test_odd_size_layout_is_padded_to_even_columns() -> None:
    out = warmrtc.to_i420(np.zeros((17, 33, 3), np.uint8), "bgr24")
    assert out.shape == warmrtc.i420_shape(33, 17) == (17 + 9, 34)


def test_opencv_agrees_on_luma_and_smooth_chroma() -> None:
    # OpenCV subsamples chroma differently from libyuv, so only Y and smooth frames compare.
    width, height = 320, 240
    xs = np.linspace(0, 255, width, dtype=np.float32)
    ys = np.linspace(0, 255, height, dtype=np.float32)
    frame = np.stack(
        [np.add.outer(ys, xs) / 2, np.tile(xs, (height, 1)), np.tile(ys[:, None], (1, width))], -1
    ).astype(np.uint8)
    ours = planes(warmrtc.to_i420(frame, "bgr24"), width, height)
    cv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    cv_planes = planes(cv, width, height)
    assert_close(ours[:1], cv_planes[:1], tol=1, names="Y")
    assert_close(ours[1:], cv_planes[1:], tol=2, names="UV")


@pytest.mark.parametrize("fmt", ["rgb24", "bgr24"])
def test_float32_frames_scale_from_unit_range(fmt: str) -> None:
    rng = np.random.default_rng(13)
    frame = rng.random((48, 64, 3), dtype=np.float32)
    frame[0, 0] = (-0.5, 1.5, np.nan)  # clamped, NaN reads as 0
    as_bytes = np.clip(np.nan_to_num(frame) * 255 + 0.5, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(warmrtc.to_i420(frame, fmt), warmrtc.to_i420(as_bytes, fmt))


@pytest.mark.parametrize("fmt", ["bgr24", "rgba", "gray", "yuyv"])
def test_strided_views_read_like_their_copies(fmt: str) -> None:
    channels = {"bgr24": 3, "rgba": 4, "gray": 1, "yuyv": 2}[fmt]
    big = np.random.default_rng(1).integers(0, 256, (120, 200, channels), dtype=np.uint8)
    views = [big[10:90, 20:180], big[::2, ::2], np.asfortranarray(big[:64, :64])]
    for view in views:
        np.testing.assert_array_equal(
            warmrtc.to_i420(view, fmt), warmrtc.to_i420(np.ascontiguousarray(view), fmt)
        )


def test_huge_row_strides_read_like_their_copies() -> None:
    # Rows 2**31 - 1 bytes apart: libyuv steps through rows with int strides (two at a time),
    # which overflows; such views must be gathered first. Isolated: a wrong step can SIGSEGV.
    run_isolated(
        """
        import numpy as np
        from guarded_memory import guarded_plane
        import warmrtc

        huge = 2**31 - 1
        rng = np.random.default_rng(3)

        def plane(rows, cols, channels=1):
            view = guarded_plane(rows, cols, channels, row_stride=huge)
            view[...] = rng.integers(0, 256, view.shape, dtype=np.uint8)
            return view

        frames = [(fmt, plane(5, 6, c)) for fmt, c in [("rgba", 4), ("bgr24", 3), ("yuyv", 2)]]
        frames += [("gray", plane(5, 6)), ("i420", (plane(5, 6), plane(3, 3), plane(3, 3)))]
        frames += [("nv12", (plane(5, 6), plane(3, 3, 2)))]
        for fmt, frame in frames:
            copy = tuple(map(np.ascontiguousarray, frame)) if isinstance(frame, tuple) else (
                np.ascontiguousarray(frame)
            )
            for size in (None, (4, 4)):
                np.testing.assert_array_equal(
                    warmrtc.to_i420(frame, fmt, size=size),
                    warmrtc.to_i420(copy, fmt, size=size),
                    err_msg=f"{fmt} {size}",
                )
        """
    )


def test_buffer_protocol_and_array_interface_inputs() -> None:
    frame = np.random.default_rng(2).integers(0, 256, (16, 16, 4), dtype=np.uint8)
    expected = warmrtc.to_i420(frame, "rgba")

    class ArrayInterface:
        def __init__(self, array: np.ndarray) -> None:
            self.__array_interface__ = array.__array_interface__
            self._keep = array

    np.testing.assert_array_equal(warmrtc.to_i420(memoryview(frame), "rgba"), expected)
    np.testing.assert_array_equal(warmrtc.to_i420(ArrayInterface(frame), "rgba"), expected)


def test_dlpack_input() -> None:
    frame = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)

    class DLPackOnly:
        def __dlpack__(self, **kwargs: object) -> object:
            return frame.__dlpack__(**kwargs)

        def __dlpack_device__(self) -> tuple[int, int]:
            return frame.__dlpack_device__()

    np.testing.assert_array_equal(
        warmrtc.to_i420(DLPackOnly(), "rgb24"), warmrtc.to_i420(frame, "rgb24")
    )


def test_scaling_keeps_solid_colour_and_round_trips_smooth_frames() -> None:
    frame = solid_frame("bgr24", (200, 30, 90), 64, 48)
    solid = planes(warmrtc.to_i420(frame, "bgr24"), 64, 48)
    scaled = planes(warmrtc.to_i420(frame, "bgr24", size=(30, 22)), 30, 22)
    for plane, ref in zip(scaled, solid, strict=True):
        assert np.all(np.abs(plane.astype(int) - int(ref[0, 0])) <= 1)
    xs = np.linspace(0, 255, 128).astype(np.uint8)
    smooth = np.stack([np.tile(xs, (96, 1))] * 3, -1)
    once = warmrtc.to_i420(smooth, "rgb24")
    up = warmrtc.to_i420(smooth, "rgb24", size=(256, 192))
    back = warmrtc.to_i420(up, "i420", size=(128, 96))
    assert np.abs(back.astype(int) - once.astype(int)).max() <= 3


def test_out_is_written_and_returned() -> None:
    frame = np.random.default_rng(6).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = np.empty((72, 64), np.uint8)
    result = warmrtc.to_i420(frame, "bgr24", out=out)
    assert result is out
    np.testing.assert_array_equal(out, warmrtc.to_i420(frame, "bgr24"))


@pytest.mark.parametrize("fmt", ["rgba", "bgra", "argb", "rgb24"])
@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17)])
def test_from_i420_matches_livekit(fmt: str, width: int, height: int) -> None:
    from livekit import rtc
    from livekit.rtc._proto import video_frame_pb2 as proto

    rng = np.random.default_rng(21)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    u = rng.integers(0, 256, (ch, cw), dtype=np.uint8)
    v = rng.integers(0, 256, (ch, cw), dtype=np.uint8)
    data = y.tobytes() + u.tobytes() + v.tobytes()
    kind = LIVEKIT_TWIN[fmt][0]
    theirs = rtc.VideoFrame(width, height, proto.I420, data).convert(kind)
    channels = 3 if fmt == "rgb24" else 4
    ref = np.frombuffer(bytes(theirs.data), np.uint8).reshape(height, width, channels)
    ours = warmrtc.from_i420((y, u, v), fmt)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1


def test_from_i420_orders_and_round_trip() -> None:
    frame = solid_frame("bgr24", (250, 128, 10), 16, 8)  # r, g, b
    i420 = warmrtc.to_i420(frame, "bgr24")
    expected = {"bgr24": (10, 128, 250), "rgb24": (250, 128, 10), "rgba": (250, 128, 10, 255)}
    expected |= {"bgra": (10, 128, 250, 255), "argb": (255, 250, 128, 10)}
    expected |= {"abgr": (255, 10, 128, 250)}
    for fmt, pixel in expected.items():
        got = warmrtc.from_i420(i420, fmt)[3, 3].astype(int)
        assert np.abs(got - np.array(pixel)).max() <= 3, (fmt, got)
    assert warmrtc.from_i420(i420, "gray").shape == (8, 16)
    with pytest.raises(ValueError, match="nv12"):
        warmrtc.from_i420(i420, "nv12")
