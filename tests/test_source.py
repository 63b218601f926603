"""VideoSource: the gate, the FFI hand-off into a real livekit source, and threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import warmrtc


def frame(width: int = 64, height: int = 48) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_capture_reaches_the_ffi_and_counts() -> None:
    src = warmrtc.VideoSource(64, 48, "bgr24")
    assert src.capture(frame()) is True
    assert src.capture(frame(32, 24), timestamp_us=1_000) is True  # scaled to 64x48
    stats = src.stats
    assert stats["captured"] == stats["converted"] == 2
    assert stats["bytes_in"] == 64 * 48 * 3 + 32 * 24 * 3
    src.close()


@pytest.mark.parametrize("fmt", ["i420", "rgba", "bgra", "argb", "abgr", "rgb24", "nv12", "gray"])
def test_every_path_is_accepted_by_the_ffi(fmt: str) -> None:
    src = warmrtc.VideoSource(64, 48, fmt)
    data = np.zeros((72, 64), np.uint8) if fmt in ("i420", "nv12") else None
    if data is None:
        channels = {"rgb24": 3, "gray": 1}.get(fmt, 4)
        data = np.zeros((48, 64, channels), np.uint8)
    assert src.capture(data) is True
    planes = (
        np.zeros((48, 64), np.uint8),
        np.zeros((24, 32), np.uint8),
        np.zeros((24, 32), np.uint8),
    )
    if fmt == "i420":
        assert src.capture(planes) is True
    assert src.stats["rejected"] == 0
    src.close()


def test_muted_capture_drops_before_any_work() -> None:
    src = warmrtc.VideoSource(64, 48)
    src.mute()
    assert src.muted
    # A muted capture does not even look at the frame: bad input is not inspected either.
    assert src.capture("not a frame") is False
    assert src.capture(frame()) is False
    src.unmute()
    assert src.capture(frame()) is True
    stats = src.stats
    assert stats["dropped_while_muted"] == 2 and stats["converted"] == 1
    src.close()


def test_capture_after_close_returns_false() -> None:
    src = warmrtc.VideoSource(64, 48)
    src.close()
    src.close()  # idempotent
    assert src.capture(frame()) is False
    assert src.stats["dropped_closed"] == 1
    assert "closed" in repr(src)


def test_bad_frames_raise_and_are_counted() -> None:
    src = warmrtc.VideoSource(64, 48, "bgr24")
    with pytest.raises(ValueError, match="bgr24 needs"):
        src.capture(np.zeros((48, 64, 4), np.uint8))
    with pytest.raises(TypeError):
        src.capture(frame(), timestamp_us="soon")
    assert src.stats["rejected"] == 2
    assert src.capture(frame()) is True  # still usable
    src.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [((0, 48), "width 0"), ((64, 20000), "height 20000"), ((64, 48, "bgr32"), "bgr32")],
)
def test_bad_source_parameters(args: tuple, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        warmrtc.VideoSource(*args)


def test_bad_fps() -> None:
    with pytest.raises(ValueError, match="fps"):
        warmrtc.VideoSource(64, 48, fps=0)


def test_eight_threads_capture_and_mute_counters_add_up() -> None:
    src = warmrtc.VideoSource(64, 48, "bgr24")
    frames = [frame(), frame(32, 24), np.zeros((48, 64, 3), np.uint8)[:, ::-1][:, ::-1]]
    per_thread = 300
    start = threading.Barrier(8)
    errors: list[BaseException] = []
    results: list[bool] = []
    lock = threading.Lock()

    def capturer(i: int) -> None:
        start.wait()
        mine = []
        try:
            for n in range(per_thread):
                mine.append(src.capture(frames[(i + n) % len(frames)]))
        except BaseException as e:  # surfaced below
            errors.append(e)
        with lock:
            results.extend(mine)

    def toggler() -> None:
        start.wait()
        for n in range(per_thread * 2):
            src.unmute() if n % 2 else src.mute()

    threads = [threading.Thread(target=capturer, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=toggler) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert not errors
    stats = src.stats
    assert stats["captured"] == 6 * per_thread
    assert stats["captured"] == stats["dropped_while_muted"] + stats["converted"]
    assert stats["converted"] == sum(results)
    assert stats["rejected"] == 0 and stats["dropped_closed"] == 0
    src.close()


def test_close_racing_capture_from_threads() -> None:
    src = warmrtc.VideoSource(64, 48, "bgr24")
    go = threading.Event()

    def capturer() -> None:
        go.wait()
        for _ in range(500):
            src.capture(frame())

    threads = [threading.Thread(target=capturer) for _ in range(4)]
    for t in threads:
        t.start()
    go.set()
    src.close()
    for t in threads:
        t.join(timeout=60)
    stats = src.stats
    assert stats["captured"] == 2000
    assert stats["captured"] == (stats["converted"] + stats["dropped_closed"] + stats["rejected"])
