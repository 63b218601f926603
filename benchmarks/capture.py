"""Capture-path benchmarks: warmrtc's native pipeline side by side with livekit's Python path.

Run: python benchmarks/capture.py [--frames 50]. Prints one table of medians and ratios, all
measured in this one run (the machine may be shared and noisy, so only ratios are compared).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

import cv2
import numpy as np
from livekit import rtc
from livekit.rtc._proto import video_frame_pb2 as proto

import warmrtc

SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def median_us(fn: Callable[[], object], runs: int, batch: int = 1) -> float:
    """Median wall time of one call, in microseconds, over `runs` batches of `batch` calls."""
    for _ in range(3):
        fn()  # warm caches and pools
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(times)


def bgr_frame(width: int, height: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def lk_rgba(width: int, height: int) -> tuple[rtc.VideoSource, rtc.VideoFrame]:
    rgba = cv2.cvtColor(bgr_frame(width, height), cv2.COLOR_BGR2RGBA)
    return rtc.VideoSource(width, height), rtc.VideoFrame(
        width, height, proto.RGBA, bytearray(rgba.tobytes())
    )


Row = tuple[str, float, float, str, str]


def muted_vs_livekit(runs: int, label: str) -> Row:
    width, height = SIZES[label]
    ours = warmrtc.VideoSource(width, height, "bgr24")
    ours.mute()
    frame = bgr_frame(width, height)
    lk_source, lk_frame = lk_rgba(width, height)
    muted = median_us(lambda: ours.capture(frame), runs, batch=200)
    theirs = median_us(lambda: lk_source.capture_frame(lk_frame), runs)
    return (
        f"muted capture {label} vs livekit capture_frame",
        muted,
        theirs,
        f"{theirs / muted:,.0f}x cheaper",
        "target >= 100x, muted <= 2 us",
    )


def small_i420_overhead(runs: int) -> Row:
    ours = warmrtc.VideoSource(64, 64, "i420")
    frame = np.random.default_rng(1).integers(0, 256, (96, 64), dtype=np.uint8)
    lk_source = rtc.VideoSource(64, 64)
    lk_frame = rtc.VideoFrame(64, 64, proto.I420, bytearray(frame.tobytes()))
    mine = median_us(lambda: ours.capture(frame), runs, batch=20)
    theirs = median_us(lambda: lk_source.capture_frame(lk_frame), runs, batch=20)
    return (
        "per call, 64x64 i420, ours vs livekit",
        mine,
        theirs,
        f"{mine / theirs:.3f} of livekit",
        "target <= 0.1",
    )


def bgr24_vs_livekit(runs: int, label: str) -> list[Row]:
    width, height = SIZES[label]
    frame = bgr_frame(width, height)
    ours = warmrtc.VideoSource(width, height, "bgr24")
    lk_source, lk_frame = lk_rgba(width, height)
    mine = median_us(lambda: ours.capture(frame), runs)
    best = median_us(lambda: lk_source.capture_frame(lk_frame), runs)

    def naive() -> None:
        rgba = cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)
        lk_source.capture_frame(rtc.VideoFrame(width, height, proto.RGBA, rgba.data.cast("B")))

    naive_us = median_us(naive, runs)
    return [
        (
            f"bgr24 {label} ours vs livekit RGBA (flat buffer)",
            mine,
            best,
            f"{mine / best:.2f}x livekit's time",
            "target <= 1.1x",
        ),
        (
            f"bgr24 {label} ours vs cvtColor+VideoFrame+capture",
            mine,
            naive_us,
            f"{naive_us / mine:.2f}x faster",
            "target >= 3x",
        ),
    ]


def rgba_fused_vs_converted(runs: int, label: str) -> Row:
    width, height = SIZES[label]
    rgba = cv2.cvtColor(bgr_frame(width, height), cv2.COLOR_BGR2RGBA)
    fused = warmrtc.VideoSource(width, height, "rgba", _fused=True)
    converted = warmrtc.VideoSource(width, height, "rgba")
    fused_us = median_us(lambda: fused.capture(rgba), runs)
    converted_us = median_us(lambda: converted.capture(rgba), runs)
    return (
        f"rgba {label}: FFI fused path vs our convert + I420",
        fused_us,
        converted_us,
        f"{fused_us / converted_us:.2f}x",
        "fused would be used if < 1",
    )


def i420_vs_copyto(runs: int, label: str) -> Row:
    width, height = SIZES[label]
    frame = warmrtc.to_i420(bgr_frame(width, height), "bgr24")
    dst = np.empty_like(frame)
    ours = warmrtc.VideoSource(width, height, "i420")
    mine = median_us(lambda: ours.capture(frame), runs)
    copy = median_us(lambda: np.copyto(dst, frame), runs)
    return (
        f"i420 {label} capture vs one np.copyto",
        mine,
        copy,
        f"{mine / copy:.2f}x a copy",
        "target <= 1.2x",
    )


def threads_scaling(runs: int, label: str) -> Row:
    width, height = SIZES[label]
    frame = bgr_frame(width, height)
    sources = [warmrtc.VideoSource(width, height, "bgr24") for _ in range(2)]
    per_thread = max(runs, 50)

    def run(n_threads: int) -> float:
        """Frames per second captured by `n_threads` threads, each to its own source."""
        barrier = threading.Barrier(n_threads + 1)

        def work(src: warmrtc.VideoSource) -> None:
            barrier.wait()
            for _ in range(per_thread):
                src.capture(frame)

        threads = [threading.Thread(target=work, args=(s,)) for s in sources[:n_threads]]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join()
        return n_threads * per_thread / (time.perf_counter() - start)

    run(1)
    one = statistics.median(run(1) for _ in range(3))
    two = statistics.median(run(2) for _ in range(3))
    return (
        f"bgr24 {label}: 2 threads/2 sources vs 1 thread (frames/s)",
        two,
        one,
        f"{two / one:.2f}x throughput",
        "target >= 1.7x on 2 cores",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=50, help="runs per median (>= 50)")
    args = parser.parse_args()
    runs = max(args.frames, 50)
    rows: list[Row] = []
    for label in SIZES:
        rows.append(muted_vs_livekit(runs, label))
    rows.append(small_i420_overhead(runs))
    for label in SIZES:
        rows.extend(bgr24_vs_livekit(runs, label))
        rows.append(rgba_fused_vs_converted(runs, label))
        rows.append(i420_vs_copyto(runs, label))
    rows.append(threads_scaling(runs, "720p"))
    rows.append(threads_scaling(runs, "1080p"))
    print(f"{'benchmark':58} {'ours':>11} {'reference':>11}  {'ratio':<22} goal")
    for name, ours, ref, ratio, goal in rows:
        print(f"{name:58} {ours:11.2f} {ref:11.2f}  {ratio:<22} {goal}")
    print("(times in microseconds, medians; the thread rows are frames/s)")


if __name__ == "__main__":
    main()
