"""The per-thread scratch a capture converts into is reused from frame to frame and across
sources: whatever sizes a thread captured before (small blocks, blocks on huge pages, growing
and shrinking), the FFI reads exactly the I420 that to_i420 gives."""

from __future__ import annotations

import numpy as np

import warmrtc
from fake_ffi import FakeFfi
from run_threads import run_threads

# Small, huge-page sized (720p I420 is 1.4 MB, 1080p 3.1 MB, 4K 12.4 MB), then smaller again.
SIZES = [(64, 64), (1920, 1080), (640, 360), (3840, 2160), (1280, 720), (1920, 1080), (64, 48)]


def bgr(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def sent(ffi: FakeFfi) -> bytes:
    ranges = ffi.captures[-1].ranges
    assert all(r.data is not None for r in ranges), ffi.overreads
    return b"".join(r.data for r in ranges if r.data is not None)


def capture_sizes(seed: int) -> list[str]:
    """Captures whole, cropped (gathered first) and scaled frames of every size on this thread;
    the sizes whose bytes differed from to_i420's."""
    wrong = []
    for i, (width, height) in enumerate(SIZES):
        ffi = FakeFfi()
        pipeline = ffi.pipeline(width, height, "bgr24")
        whole = bgr(width, height, seed + i)
        cropped = bgr(width + 8, height, seed + i)[:, 4 : width + 4]
        bigger = bgr(width + 16, height + 16, seed + i)
        expected = [
            warmrtc.to_i420(whole, "bgr24"),
            warmrtc.to_i420(np.ascontiguousarray(cropped), "bgr24"),
            warmrtc.to_i420(bigger, "bgr24", size=(width, height)),
        ]
        for frame, want in zip([whole, cropped, bigger], expected, strict=True):
            assert pipeline.capture(frame)
            if sent(ffi) != want.tobytes():
                wrong.append(f"{width}x{height} {frame.shape}")
    return wrong


def test_one_thread_reuses_its_scratch_across_sizes() -> None:
    assert capture_sizes(seed=0) == []


def test_each_thread_has_its_own_scratch() -> None:
    wrong: list[str] = []
    run_threads([lambda s=seed: wrong.extend(capture_sizes(seed=s)) for seed in (10, 20)])
    assert wrong == []
