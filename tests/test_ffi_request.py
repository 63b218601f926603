"""Our hand-encoded FFI capture request, decoded by livekit's own protobuf classes."""

from __future__ import annotations

import pytest
from livekit.rtc._proto import ffi_pb2
from livekit.rtc._proto import video_frame_pb2 as proto

from warmrtc import _core


@pytest.mark.parametrize(
    ("handle", "timestamp", "rotation"),
    [(1, 0, 0), (2**64 - 1, 2**63 - 1, 3), (12345, -1, 1), (300, -(2**63), 2)],
)
def test_capture_request_decodes_with_every_field(handle: int, timestamp: int, rotation: int):
    components = [(0x7F00_0000_1000, 1920, 1920 * 1080), (2**64 - 1, 960, 960 * 540), (5, 0, 0)]
    data = _core._encode_capture_request(
        source_handle=handle,
        type=proto.I420,
        width=1920,
        height=1080,
        data_ptr=0x7F00_0000_1000,
        stride=0,
        components=components,
        timestamp_us=timestamp,
        rotation=rotation,
    )
    request = ffi_pb2.FfiRequest()
    request.ParseFromString(data)
    assert request.WhichOneof("message") == "capture_video_frame"
    capture = request.capture_video_frame
    assert request.IsInitialized()
    assert capture.source_handle == handle
    assert capture.timestamp_us == timestamp
    assert capture.rotation == rotation
    assert capture.buffer.type == proto.I420
    assert (capture.buffer.width, capture.buffer.height) == (1920, 1080)
    assert capture.buffer.data_ptr == 0x7F00_0000_1000
    assert capture.buffer.stride == 0
    decoded = [(c.data_ptr, c.stride, c.size) for c in capture.buffer.components]
    assert decoded == components
    # Byte for byte what the SDK's own encoder writes for the same message.
    assert request.SerializeToString() == data


def test_packed_request_matches_the_sdk_encoding() -> None:
    request = ffi_pb2.FfiRequest()
    capture = request.capture_video_frame
    capture.source_handle = 7
    capture.buffer.type = proto.RGBA
    capture.buffer.width, capture.buffer.height = 640, 480
    capture.buffer.data_ptr = 0xDEADBEEF
    capture.buffer.stride = 2560
    capture.buffer.components.add(data_ptr=0xDEADBEEF, stride=2560, size=2560 * 480)
    capture.timestamp_us = 33_333
    capture.rotation = proto.VIDEO_ROTATION_0
    ours = _core._encode_capture_request(
        7, proto.RGBA, 640, 480, 0xDEADBEEF, 2560, [(0xDEADBEEF, 2560, 2560 * 480)], 33_333, 0
    )
    assert ours == request.SerializeToString()


@pytest.mark.parametrize(
    ("user_timestamp", "frame_id"), [(0, 0), (1_760_000_000_123_456, 1), (2**64 - 1, 2**32 - 1)]
)
def test_frame_metadata_decodes_and_matches_the_sdk_encoding(user_timestamp: int, frame_id: int):
    request = ffi_pb2.FfiRequest()
    capture = request.capture_video_frame
    capture.source_handle = 9
    capture.buffer.type = proto.I420
    capture.buffer.width, capture.buffer.height = 2, 2
    capture.buffer.data_ptr = 0x1000
    capture.buffer.stride = 0
    for ptr, stride, size in [(0x1000, 2, 4), (0x1004, 1, 1), (0x1005, 1, 1)]:
        capture.buffer.components.add(data_ptr=ptr, stride=stride, size=size)
    capture.timestamp_us = 0
    capture.rotation = proto.VIDEO_ROTATION_0
    capture.metadata.user_timestamp = user_timestamp
    capture.metadata.frame_id = frame_id
    ours = _core._encode_capture_request(
        9,
        proto.I420,
        2,
        2,
        0x1000,
        0,
        [(0x1000, 2, 4), (0x1004, 1, 1), (0x1005, 1, 1)],
        0,
        0,
        metadata=(user_timestamp, frame_id),
    )
    decoded = ffi_pb2.FfiRequest()
    decoded.ParseFromString(ours)
    got = decoded.capture_video_frame
    assert got.HasField("metadata")
    assert (got.metadata.user_timestamp, got.metadata.frame_id) == (user_timestamp, frame_id)
    assert not got.metadata.HasField("user_data")
    assert ours == request.SerializeToString()


def test_no_metadata_field_without_a_stamp() -> None:
    data = _core._encode_capture_request(1, proto.I420, 2, 2, 0x1000, 0, [], 0, 0)
    request = ffi_pb2.FfiRequest()
    request.ParseFromString(data)
    assert not request.capture_video_frame.HasField("metadata")
