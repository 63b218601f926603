"""The native pipeline stamps each frame it hands on with LiveKit FrameMetadata: the capture
time in unix epoch microseconds and a per-source frame number; muted frames get nothing."""

from __future__ import annotations

import threading
import time

import numpy as np

from fake_ffi import FakeFfi


def frame() -> np.ndarray:
    return np.zeros((48, 64, 3), np.uint8)


def test_frames_carry_capture_time_and_increasing_ids() -> None:
    ffi = FakeFfi()
    pipe = ffi.pipeline(64, 48, "bgr24")
    assert pipe.stamp_frames
    before = time.time_ns() // 1000
    for _ in range(3):
        assert pipe.capture(frame())
    after = time.time_ns() // 1000
    stamps = [c.metadata for c in ffi.captures]
    assert all(m is not None for m in stamps)
    assert [m[1] for m in stamps if m] == [1, 2, 3]
    times = [m[0] for m in stamps if m]
    assert before <= times[0] <= times[1] <= times[2] <= after


def test_fused_packed_frames_are_stamped_too() -> None:
    ffi = FakeFfi()
    pipe = ffi.pipeline(64, 48, "rgba", fused=True)
    assert pipe.capture(np.zeros((48, 64, 4), np.uint8))
    assert ffi.captures[0].type != 5  # not converted to I420: the fused path
    assert ffi.captures[0].metadata is not None


def test_no_metadata_when_stamping_is_off() -> None:
    ffi = FakeFfi()
    pipe = ffi.pipeline(64, 48, "bgr24", stamp=False)
    assert not pipe.stamp_frames
    assert pipe.capture(frame())
    assert ffi.captures[0].metadata is None


def test_muted_frames_take_no_stamp() -> None:
    ffi = FakeFfi()
    pipe = ffi.pipeline(64, 48, "bgr24")
    assert pipe.capture(frame())
    pipe.mute()
    assert not pipe.capture(frame())
    pipe.unmute()
    assert pipe.capture(frame())
    assert [c.metadata[1] for c in ffi.captures if c.metadata] == [1, 2]


def test_ids_are_unique_across_threads() -> None:
    ffi = FakeFfi()  # its callback runs under the GIL: the record itself is serialized
    pipe = ffi.pipeline(16, 16, "gray")
    per_thread = 50

    def feed() -> None:
        for _ in range(per_thread):
            pipe.capture(np.zeros((16, 16), np.uint8))

    threads = [threading.Thread(target=feed) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = sorted(c.metadata[1] for c in ffi.captures if c.metadata)
    assert ids == list(range(1, 8 * per_thread + 1))
