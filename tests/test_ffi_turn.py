"""Big frames enter livekit's FFI one at a time, whatever thread or source they come from
(livekit's handle table makes overlapping big copies sleep on each other; see ffi_capture.hpp),
and smaller ones may overlap."""

from __future__ import annotations

import threading

import numpy as np

from fake_ffi import FakeFfi
from run_threads import run_threads

CAPTURES = 5  # per thread


def most_at_once(width: int, height: int, *, threads: int = 1) -> int:
    """The most FFI requests under way at once while two threads each capture CAPTURES i420
    frames into sources of their own, each request taking 20 ms with the GIL let go."""
    ffi = FakeFfi(dwell=0.02)
    frame = np.zeros((height * 3 // 2, width), np.uint8)
    pipelines = [ffi.pipeline(width, height, "i420", threads=threads) for _ in range(2)]
    start = threading.Barrier(2)
    results: list[bool] = []

    def capture(i: int) -> None:
        start.wait()
        results.extend(pipelines[i].capture(frame) for _ in range(CAPTURES))

    run_threads([lambda: capture(0), lambda: capture(1)])
    for p in pipelines:
        p._close_gate()
    assert results == [True] * 2 * CAPTURES and len(ffi.captures) == 2 * CAPTURES
    return ffi.most_in_flight


def test_big_frames_enter_the_ffi_one_at_a_time() -> None:
    assert most_at_once(1280, 720) == 1
    assert most_at_once(1920, 1080, threads=2) == 1  # banded sources too


def test_smaller_frames_overlap() -> None:
    # The same test can see overlap: without the turn, big frames would show 2 as well.
    assert most_at_once(640, 360) == 2
