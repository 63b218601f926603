"""The model's frames converted where the FFI left them: views of an FFI I420 buffer (planes at
their own strides, ending at a guard page) convert byte for byte as copies of them do, and the
buffer goes back to the FFI whether the conversion worked or not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from livekit.rtc._proto import video_frame_pb2 as proto

import oracle
import warmrtc
from guarded_memory import guarded_plane
from warmrtc._media import rtc_frame
from warmrtc._media.rtc_frame import ffi_i420_planes, output_frame, take_generated

PACKED = ["bgr24", "rgb24", "rgba", "bgra", "argb", "abgr", "gray"]


def ffi_buffer(
    width: int, height: int, seed: int, pad: int = 0
) -> tuple[proto.VideoBufferInfo, tuple[np.ndarray, ...]]:
    """An FFI-style buffer description over three guarded planes, rows ``pad`` bytes longer than
    their pixels, and the planes themselves (to keep them alive and as the reference)."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    rng = np.random.default_rng(seed)
    info = proto.VideoBufferInfo(width=width, height=height, type=proto.VideoBufferType.I420)
    planes = []
    for rows, cols in ((height, width), (ch, cw), (ch, cw)):
        plane = guarded_plane(rows, cols, row_stride=cols + pad)
        plane[...] = rng.integers(0, 256, (rows, cols), dtype=np.uint8)
        stride = plane.strides[0]
        size = (rows - 1) * stride + cols  # exactly the extent: a guard page follows
        info.components.add(data_ptr=plane.ctypes.data, stride=stride, size=size)
        planes.append(plane)
    info.data_ptr = info.components[0].data_ptr
    return info, tuple(planes)


@pytest.mark.parametrize("fmt", PACKED)
@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17), (1, 1), (3, 5), (1280, 720)])
@pytest.mark.parametrize("pad", [0, 13])
def test_ffi_buffers_convert_like_copies_of_them(
    fmt: str, width: int, height: int, pad: int
) -> None:
    info, planes = ffi_buffer(width, height, seed=width * height + pad, pad=pad)
    reference = warmrtc.from_i420(tuple(p.copy() for p in planes), fmt)
    got = output_frame(ffi_i420_planes(info), fmt)
    assert got.dtype == np.uint8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize(("width", "height"), [(64, 48), (33, 17), (1, 1)])
def test_ffi_buffers_copy_to_i420_exactly(width: int, height: int) -> None:
    info, (y, u, v) = ffi_buffer(width, height, seed=7, pad=5)
    got = output_frame(ffi_i420_planes(info), "i420")
    assert got.shape == warmrtc.i420_shape(width, height)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    flat = got.reshape(-1)
    stride = 2 * cw
    np.testing.assert_array_equal(flat[: stride * height].reshape(height, stride)[:, :width], y)
    chroma = flat[stride * height :]
    np.testing.assert_array_equal(chroma[: cw * ch].reshape(ch, cw), u)
    np.testing.assert_array_equal(chroma[cw * ch : 2 * cw * ch].reshape(ch, cw), v)


def test_the_colours_come_out_in_memory_order() -> None:
    frame = np.zeros((16, 16, 3), np.uint8)
    frame[...] = (10, 128, 250)  # b, g, r
    y, u, v = oracle.planes(warmrtc.to_i420(frame, "bgr24"), 16, 16)
    info = proto.VideoBufferInfo(width=16, height=16, type=proto.VideoBufferType.I420)
    for plane in (y, u, v):
        info.components.add(data_ptr=plane.ctypes.data, stride=plane.strides[0], size=plane.size)
    bgr = output_frame(ffi_i420_planes(info), "bgr24")
    assert np.abs(bgr[8, 8].astype(int) - (10, 128, 250)).max() <= 3


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"type": proto.VideoBufferType.RGBA}, "the FFI buffer is RGBA"),
        ({"components": 2}, "has 2 planes; expected 3"),
        ({"size": 100}, r"U plane \(address 0x[0-9a-f]+, stride 32, size 100\) cannot hold"),
        ({"stride": 10}, r"U plane .*stride 10.* cannot hold 24 rows of 32 pixels"),
        ({"data_ptr": 0}, r"U plane \(address 0x0,"),
    ],
)
def test_a_bad_ffi_buffer_is_refused_before_any_read(change: dict[str, Any], match: str) -> None:
    info, _planes = ffi_buffer(64, 48, seed=1)
    if "type" in change:
        info.type = change["type"]
    if "components" in change:
        del info.components[change["components"] :]
    for field in ("size", "stride", "data_ptr"):
        if field in change:
            setattr(info.components[1], field, change[field])
    with pytest.raises(ValueError, match=match):
        ffi_i420_planes(info)


def received(info: proto.VideoBufferInfo, handle: int, stamp: int | None) -> Any:
    event = proto.VideoFrameReceived()
    event.buffer.info.CopyFrom(info)
    event.buffer.handle.id = handle
    if stamp is not None:
        event.metadata.user_timestamp = stamp
    return event


class Disposals:
    """Stands in for livekit's FfiHandle in rtc_frame: records the handles given back."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, handle: int) -> Any:
        ids = self.ids

        class Handle:
            def dispose(self) -> None:
                ids.append(handle)

        return Handle()


def test_take_generated_converts_then_gives_the_buffer_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disposals = Disposals()
    monkeypatch.setattr(rtc_frame, "FfiHandle", disposals)
    info, planes = ffi_buffer(33, 17, seed=3)
    frame = take_generated(received(info, 41, 1_700_000_000_000_000), "rgb24")
    np.testing.assert_array_equal(frame.array, warmrtc.from_i420(planes, "rgb24"))
    assert frame.user_timestamp_us == 1_700_000_000_000_000
    assert take_generated(received(info, 42, None), "gray").user_timestamp_us == 0
    assert disposals.ids == [41, 42]


def test_a_failed_conversion_still_gives_the_buffer_back(monkeypatch: pytest.MonkeyPatch) -> None:
    disposals = Disposals()
    monkeypatch.setattr(rtc_frame, "FfiHandle", disposals)
    info, _planes = ffi_buffer(16, 16, seed=4)
    with pytest.raises(ValueError, match="yuyv"):
        take_generated(received(info, 7, None), "yuyv")
    info.components[0].size = 1
    with pytest.raises(ValueError, match="Y plane"):
        take_generated(received(info, 8, None), "bgr24")
    assert disposals.ids == [7, 8]
