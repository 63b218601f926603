"""OutputFreeze: generated frames that stop while the app sends and its path is alive make a
refresh due; not before output came, not while the path is silent, not too often."""

from __future__ import annotations

import itertools

from warmrtc._media.output_freeze import (
    QUICK_REFRESHES,
    REFRESH_EVERY,
    SLOW_REFRESH_EVERY,
    OutputFreeze,
)


def run(freeze: OutputFreeze, times: list[float], last_output: float, received: int) -> list[float]:
    """Looks at each of ``times`` with the output last seen at ``last_output`` and the path's
    count moving by one each look; the times at which a refresh was due."""
    due = []
    for i, now in enumerate(times):
        if freeze.late(now, last_output) and freeze.observe(now, last_output, received + i):
            due.append(now)
    return due


def ticks(start: float, end: float, step: float = 0.1) -> list[float]:
    return [round(start + i * step, 3) for i in range(int((end - start) / step) + 1)]


def test_output_that_keeps_coming_is_never_frozen() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    for i in range(1, 200):
        now = i * 0.1
        assert not freeze.late(now, now - 0.05)


def test_a_freeze_with_the_path_alive_is_refreshed_once_its_threshold_is_passed() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)  # expected from 0
    assert not freeze.late(1.0, 0.9)
    due = run(freeze, ticks(1.1, 1.6), last_output=1.0, received=100)
    # Late from 1.4 (0.4 s without a frame); the first look takes the path's count, the
    # next sees it move: due at 1.5, once.
    assert due == [1.5]


def test_a_silent_path_is_no_freeze_of_this_watch() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    freeze.late(1.0, 0.9)
    for now in ticks(1.4, 5.0):
        if freeze.late(now, 1.0):
            assert freeze.observe(now, 1.0, 500) is None  # the count stands still: dark


def test_no_refresh_before_the_first_output_of_a_start() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    assert run(freeze, ticks(0.1, 5.0), last_output=-3.0, received=0) == []  # from before
    freeze.forget()
    freeze.late(10.0, None)
    for now in ticks(10.1, 12.0):
        assert not freeze.late(now, None)


def test_a_long_freeze_is_refreshed_quickly_at_first_then_seldom() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    freeze.late(0.5, 0.5)
    due = run(freeze, ticks(0.6, 20.0), last_output=0.5, received=0)
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(due)]
    assert gaps[: QUICK_REFRESHES - 1] == [REFRESH_EVERY] * (QUICK_REFRESHES - 1)
    assert set(gaps[QUICK_REFRESHES - 1 :]) == {SLOW_REFRESH_EVERY}


def test_output_coming_back_ends_the_freeze_and_the_next_one_starts_quick() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    freeze.late(0.5, 0.5)
    first = run(freeze, ticks(0.6, 10.0), last_output=0.5, received=0)
    assert len(first) > QUICK_REFRESHES
    assert not freeze.late(10.1, 10.05)  # frames again
    second = run(freeze, ticks(10.2, 11.0), last_output=10.1, received=1000)
    assert second and second[0] <= 10.1 + 0.35 + 0.2


def test_forget_drops_what_came_before() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None)
    freeze.late(0.5, 0.5)
    freeze.forget()  # muted, say
    freeze.late(5.0, 0.5)
    assert run(freeze, ticks(5.1, 8.0), last_output=0.5, received=0) == []
