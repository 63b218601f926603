"""VideoSource(threads=N): one frame's conversion split into row bands on the source's own
worker threads gives the very bytes one thread writes, for every format and layout, and the
workers are safe to share between capturing threads and are joined on close."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import numpy as np
import pytest

import warmrtc
from fake_ffi import FakeFfi
from isolated import run_isolated
from run_threads import run_threads

# Big enough to be split on any thread count tested here; odd, so the last band holds an odd
# row and chroma rounds up. yuyv/uyvy and one-array i420/nv12 need an even width.
WIDTH, HEIGHT = 1283, 721
EVEN_WIDTH = 1284
FORMATS = ["rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "nv12", "nv21", "yuyv", "uyvy"]
FORMATS += ["gray", "i420"]
CHANNELS = {"rgb24": 3, "bgr24": 3, "rgba": 4, "bgra": 4, "argb": 4, "abgr": 4, "yuyv": 2}
CHANNELS |= {"uyvy": 2, "gray": 1}
JOIN_TIMEOUT = 60  # seconds; a capture that hangs fails the test instead of the run


def width_for(fmt: str) -> int:
    return EVEN_WIDTH if fmt in ("yuyv", "uyvy") else WIDTH


def random_frame(
    fmt: str,
    width: int,
    height: int,
    *,
    seed: int = 0,
    view: Callable[[np.ndarray], np.ndarray] = lambda a: a,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """A frame of `fmt` (planes as a tuple for i420/nv12/nv21), each array passed through
    `view` (which makes strided views of it)."""
    rng = np.random.default_rng(seed)

    def plane(*shape: int) -> np.ndarray:
        return view(rng.integers(0, 256, shape, dtype=np.uint8))

    ch, cw = (height + 1) // 2, (width + 1) // 2
    if fmt == "i420":
        return plane(height, width), plane(ch, cw), plane(ch, cw)
    if fmt in ("nv12", "nv21"):
        return plane(height, width), plane(ch, cw, 2)
    if fmt == "gray":
        return plane(height, width)
    return plane(height, width, CHANNELS[fmt])


def crop(a: np.ndarray) -> np.ndarray:
    """The same pixels in a view whose rows are further apart (a crop of a wider array); for
    i420 this also keeps the planes from being handed to the FFI in place."""
    pad = [(0, 0)] * a.ndim
    pad[1] = (7, 3)  # 10 more pixels a row: 10 to 40 more bytes
    wider = np.pad(a, pad)
    return wider[:, 7 : 7 + a.shape[1]]


def every_other_column(a: np.ndarray) -> np.ndarray:
    """The same pixels, two pixels apart in memory: a view libyuv cannot read in place."""
    wide = np.repeat(a, 2, axis=1)
    return wide[:, ::2]


def sent_bytes(ffi: FakeFfi) -> bytes:
    """The I420 frame of the last capture, as the FFI was told to read it."""
    ranges = ffi.captures[-1].ranges
    assert all(r.data is not None for r in ranges), ffi.overreads
    return b"".join(r.data for r in ranges if r.data is not None)


def captured_with(
    threads: int, fmt: str, frame: object, size: tuple[int, int] | None = None
) -> tuple[bytes, int]:
    """(the I420 bytes handed to the FFI, frames banded) for one capture."""
    ffi = FakeFfi()
    width, height = size or (width_for(fmt), HEIGHT)
    pipeline = ffi.pipeline(width, height, fmt, threads=threads)
    try:
        assert pipeline.capture(frame) is True
        return sent_bytes(ffi), pipeline.stats["banded"]
    finally:
        pipeline._close_gate()


def assert_bands_match_one_thread(
    fmt: str, frame: object, size: tuple[int, int] | None = None
) -> None:
    one, banded = captured_with(1, fmt, frame, size)
    assert banded == 0
    for threads in (2, 3):
        split, banded = captured_with(threads, fmt, frame, size)
        assert banded == 1, f"{threads} threads did not split the {fmt} frame"
        assert split == one, f"{fmt} with {threads} threads differs from one thread"


@pytest.mark.parametrize("fmt", FORMATS)
def test_bands_match_one_thread(fmt: str) -> None:
    frame = random_frame(fmt, width_for(fmt), HEIGHT, view=crop if fmt == "i420" else np.asarray)
    assert_bands_match_one_thread(fmt, frame)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("view", [crop, every_other_column])
def test_bands_of_strided_frames_match_one_thread(
    fmt: str, view: Callable[[np.ndarray], np.ndarray]
) -> None:
    frame = random_frame(fmt, width_for(fmt), HEIGHT, seed=1, view=view)
    assert_bands_match_one_thread(fmt, frame)


@pytest.mark.parametrize("fmt", ["rgb24", "bgr24"])
def test_bands_of_float_frames_match_one_thread(fmt: str) -> None:
    frame = np.random.default_rng(2).random((HEIGHT, WIDTH, 3), dtype=np.float32)
    assert_bands_match_one_thread(fmt, frame)


@pytest.mark.parametrize("fmt", ["bgr24", "rgba", "nv12", "i420"])
def test_bands_of_a_scaled_frame_match_one_thread(fmt: str) -> None:
    # The unscaled conversion is banded; the scaling runs on the capturing thread.
    frame = random_frame(fmt, WIDTH, HEIGHT, seed=3)
    if fmt == "i420":
        one, banded = captured_with(1, fmt, frame, (640, 360))
        assert (captured_with(2, fmt, frame, (640, 360))[0], banded) == (one, 0)
        return
    assert_bands_match_one_thread(fmt, frame, (640, 360))


@pytest.mark.parametrize("fmt", ["nv12", "nv21"])
def test_one_array_frames_split_like_planes(fmt: str) -> None:
    # One (h + ceil(h/2), w) array: luma rows, then interleaved chroma rows.
    rows = HEIGHT + (HEIGHT + 1) // 2
    frame = np.random.default_rng(4).integers(0, 256, (rows, EVEN_WIDTH), dtype=np.uint8)
    assert_bands_match_one_thread(fmt, frame, (EVEN_WIDTH, HEIGHT))


def test_bands_never_read_past_a_frame_that_ends_at_a_page() -> None:
    # Every frame ends right before a PROT_NONE page: one byte read past it is SIGSEGV.
    run_isolated(
        """
        import numpy as np
        from fake_ffi import FakeFfi
        from guarded_memory import guarded_plane

        W, H = 1283, 721
        CW, CH = (W + 1) // 2, (H + 1) // 2
        CHANNELS = {"rgb24": 3, "bgr24": 3, "rgba": 4, "bgra": 4, "argb": 4, "abgr": 4,
                    "yuyv": 2, "uyvy": 2, "gray": 1}

        def frames(fmt, w, crop, step):
            if fmt == "i420":
                return (guarded_plane(H, w, row_stride=(w + crop) * step, col_step=step, fill=90),
                        guarded_plane(CH, CW, row_stride=CW + crop, fill=100),
                        guarded_plane(CH, CW, row_stride=CW + crop, fill=110))
            if fmt in ("nv12", "nv21"):
                return (guarded_plane(H, w, row_stride=w + crop, fill=90),
                        guarded_plane(CH, CW, 2, row_stride=(CW + crop) * 2 * step,
                                      col_step=step, fill=100))
            c = CHANNELS[fmt]
            return guarded_plane(H, w, c, row_stride=(w + crop) * c * step, col_step=step,
                                 fill=120)

        for fmt in ["i420", "nv12", "nv21", *CHANNELS]:
            w = 1284 if fmt in ("yuyv", "uyvy") else W
            for crop, step in [(0, 1), (5, 1), (0, 2)]:
                in_place = fmt == "i420" and (crop, step) == (0, 1)  # handed over, unconverted
                out = []
                for threads in (1, 2, 3):
                    ffi = FakeFfi()
                    pipeline = ffi.pipeline(w, H, fmt, threads=threads)
                    assert pipeline.capture(frames(fmt, w, crop, step)) is True
                    out.append(b"".join(r.data for r in ffi.captures[-1].ranges))
                    assert pipeline.stats["banded"] == (threads > 1 and not in_place), fmt
                    pipeline._close_gate()
                assert out[0] == out[1] == out[2], (fmt, crop, step)
        """,
        timeout=300,
    )


@pytest.mark.parametrize("bad", [0, -1, -(2**40)])
def test_threads_below_one_are_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=f"threads must be >= 1, got {bad}"):
        warmrtc.VideoSource(64, 48, threads=bad)
    with pytest.raises((ValueError, TypeError)):
        FakeFfi().pipeline(64, 48, "bgr24", threads=bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_threads_that_are_not_ints_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match=rf"threads must be an int >= 1, got {bad!r}"):
        warmrtc.VideoSource(64, 48, threads=bad)  # type: ignore[arg-type]


def test_threads_is_reported() -> None:
    one, two = warmrtc.VideoSource(64, 48), warmrtc.VideoSource(64, 48, threads=2)
    assert (one.threads, two.threads) == (1, 2)
    assert "threads" not in repr(one) and "threads=2" in repr(two)
    one.close()
    two.close()


def band_workers() -> int:
    """Threads of this process named as the band workers are."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:  # the thread ended while we listed
            pass
    return names.count("warmrtc-band")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists threads in /proc")
def test_close_joins_the_workers() -> None:
    before = band_workers()
    src = warmrtc.VideoSource(WIDTH, HEIGHT, threads=3)
    assert band_workers() == before + 2
    assert src.capture(random_frame("bgr24", WIDTH, HEIGHT)) is True
    assert src.stats["banded"] == 1
    src.close()
    assert band_workers() == before  # joined, not merely told to stop
    src.close()  # idempotent
    assert src.capture(random_frame("bgr24", WIDTH, HEIGHT)) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists threads in /proc")
def test_one_thread_starts_no_workers() -> None:
    before = band_workers()
    src = warmrtc.VideoSource(WIDTH, HEIGHT)
    assert src.capture(random_frame("bgr24", WIDTH, HEIGHT)) is True
    assert band_workers() == before and src.stats["banded"] == 0
    src.close()


def test_captures_from_several_threads_into_one_banded_source() -> None:
    # Four threads share one source and its workers: each frame reaches the FFI whole and
    # exactly as one thread converts it, whichever thread's capture got the workers.
    frames = [random_frame("bgr24", WIDTH, HEIGHT, seed=10 + i) for i in range(4)]
    expected = {warmrtc.to_i420(f, "bgr24").tobytes() for f in frames}
    ffi = FakeFfi()
    pipeline = ffi.pipeline(WIDTH, HEIGHT, "bgr24", threads=2)
    per_thread = 12

    def feed(frame: np.ndarray) -> Callable[[], None]:
        def run() -> None:
            for _ in range(per_thread):
                assert pipeline.capture(frame) is True

        return run

    run_threads([feed(f) for f in frames])
    assert len(ffi.captures) == 4 * per_thread
    for capture in ffi.captures:
        assert b"".join(r.data for r in capture.ranges if r.data is not None) in expected
    stats = pipeline.stats
    assert stats["converted"] == 4 * per_thread and stats["rejected"] == 0
    assert stats["banded"] >= 1
    pipeline._close_gate()


def test_closing_while_threads_capture_ends_them() -> None:
    src = warmrtc.VideoSource(WIDTH, HEIGHT, threads=2)
    frame = random_frame("bgr24", WIDTH, HEIGHT)
    started = threading.Barrier(3)

    def feed() -> None:
        started.wait(JOIN_TIMEOUT)
        while src.capture(frame):
            pass

    def close() -> None:
        started.wait(JOIN_TIMEOUT)
        for _ in range(3):
            assert src.capture(frame) is True
        src.close()

    run_threads([feed, feed, close])  # every feed ended: a capture after close() says False
    stats = src.stats
    # A capture already past the gate when close() came ends False without counting as
    # dropped_closed, so that count may be 0-2; none is rejected, none converted twice.
    assert stats["rejected"] == 0
    assert stats["converted"] + stats["dropped_closed"] <= stats["captured"]
