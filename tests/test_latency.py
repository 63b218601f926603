"""LatencyWindow: per-frame glass-to-glass latency from echoed capture stamps."""

from __future__ import annotations

import time

import numpy as np
import pytest

from warmrtc.latency import Latency, LatencyWindow

NOW = 1_760_000_000_000_000  # µs


def test_nothing_recorded_is_none_not_a_number() -> None:
    window = LatencyWindow()
    assert window.snapshot() is None
    assert window.percentiles() is None


def test_latency_is_now_minus_the_stamp() -> None:
    window = LatencyWindow()
    assert window.record(NOW - 123_000, now_us=NOW) == 123.0
    assert window.snapshot() == Latency(p50_ms=123.0, p95_ms=123.0, last_ms=123.0, samples=1)


def test_default_clock_is_unix_epoch_microseconds() -> None:
    window = LatencyWindow()
    ms = window.record(time.time_ns() // 1000 - 50_000)
    assert ms is not None and 50.0 <= ms < 1000.0


@pytest.mark.parametrize("stamp", [0, -5, NOW + 1_000, NOW - 61_000_000])
def test_absent_or_implausible_stamps_are_not_counted(stamp: int) -> None:
    window = LatencyWindow()
    assert window.record(stamp, now_us=NOW) is None
    assert window.snapshot() is None


def test_percentiles_match_numpy_over_the_last_frames_only() -> None:
    window = LatencyWindow(size=100)
    rng = np.random.default_rng(7)
    old = [5000.0] * 50  # pushed out of the window by the newer frames
    new = rng.uniform(80, 300, 100)
    for ms in [*old, *new]:
        window.record(NOW - int(ms * 1000), now_us=NOW)
    snap = window.snapshot()
    assert snap is not None and snap.samples == 100
    kept = np.array([int(ms * 1000) / 1000 for ms in new])
    assert snap.p50_ms == pytest.approx(np.percentile(kept, 50))
    assert snap.p95_ms == pytest.approx(np.percentile(kept, 95))
    assert snap.last_ms == pytest.approx(kept[-1])
    assert window.percentiles() == (snap.p50_ms, snap.p95_ms)


def test_clear_and_bad_size() -> None:
    window = LatencyWindow(size=1)
    window.record(NOW - 1000, now_us=NOW)
    window.clear()
    assert window.snapshot() is None
    with pytest.raises(ValueError, match="size"):
        LatencyWindow(size=0)
