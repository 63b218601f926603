"""The heap trim after a room's leave: one trim per burst of leaves, run on a thread of its
own after the last one (bounded after the first), another for a leave made while one runs;
none with WARMRTC_HEAP_TRIM=0; and on this machine's C library (glibc on Linux) a real one."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from warmrtc._media import heap
from warmrtc._media.heap import Trimmer


class Recorder:
    def __init__(self, hold: float = 0.0) -> None:
        self.calls: list[tuple[float, str]] = []
        self.hold = hold

    def __call__(self) -> None:
        self.calls.append((time.monotonic(), threading.current_thread().name))
        time.sleep(self.hold)


def test_a_burst_of_leaves_makes_one_trim_after_the_last() -> None:
    trim = Recorder()
    trimmer = Trimmer(trim, delay=0.5, longest=10)
    for _ in range(5):
        trimmer.request()
    time.sleep(0.1)
    trimmer.request()  # the burst goes on: the trim moves later
    last = time.monotonic()
    assert trimmer.wait_idle(10)
    assert len(trim.calls) == 1, "one trim for the burst"
    when, thread = trim.calls[0]
    assert when - last >= 0.45  # the last request's delay, not the first's
    assert thread == "warmrtc-heap-trim" and thread != threading.current_thread().name
    assert trimmer.stats.trims == 1


def test_a_burst_that_goes_on_is_trimmed_by_its_longest_wait() -> None:
    trim = Recorder()
    trimmer = Trimmer(trim, delay=0.2, longest=0.5)
    started = time.monotonic()
    deadline = started + 1.2
    while time.monotonic() < deadline and not trim.calls:  # bounded: 1.2 s
        trimmer.request()
        time.sleep(0.05)
    assert trim.calls, "no trim while leaves kept coming"
    assert trim.calls[0][0] - started < 0.9
    assert trimmer.wait_idle(5)


def test_a_leave_during_a_trim_makes_another() -> None:
    trim = Recorder(hold=0.3)
    trimmer = Trimmer(trim, delay=0.05, longest=1)
    trimmer.request()
    deadline = time.monotonic() + 3
    while not trim.calls and time.monotonic() < deadline:
        time.sleep(0.01)
    trimmer.request()  # the first trim is running
    assert trimmer.wait_idle(5)
    assert len(trim.calls) == 2


def test_a_failing_trim_is_said_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def trim() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no")

    trimmer = Trimmer(trim, delay=0.01, longest=1)
    trimmer.request()
    assert trimmer.wait_idle(5)
    trimmer.request()
    assert trimmer.wait_idle(5)
    assert len(calls) == 2
    assert "heap trim failed" in caplog.text


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    requests: list[int] = []
    fake = Trimmer(lambda: None, 1, 1)
    monkeypatch.setattr(fake, "request", lambda: requests.append(1))
    monkeypatch.setattr(heap, "_trimmer", fake)
    for value in ("0", "false", "no"):
        monkeypatch.setenv(heap.TRIM_ENV, value)
        heap.release_soon()
    assert requests == []
    monkeypatch.setenv(heap.TRIM_ENV, "1")
    heap.release_soon()
    assert requests == [1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_glibc_trim_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    trim = heap._glibc_trim()
    if trim is None:
        pytest.skip("not glibc")
    trimmer = Trimmer(trim, delay=0.01, longest=1)
    trimmer.request()
    assert trimmer.wait_idle(10)
    stats = trimmer.stats
    assert stats.trims == 1
    assert 0 <= stats.longest < 2 and stats.released_mib >= 0
