"""OutputFreeze: generated frames that stop while the app sends and its path is alive make a
refresh due; not before output came, not while the path is silent, not for an app that
captures slowly, not too often."""

from __future__ import annotations

import itertools

from warmrtc._media.output_freeze import (
    QUICK_REFRESHES,
    REFRESH_EVERY,
    SLOW_REFRESH_EVERY,
    OutputFreeze,
)

FPS = 30


def captured_at(now: float, fps: float = FPS) -> int:
    return int(now * fps)


def run(
    freeze: OutputFreeze,
    times: list[float],
    last_output: float,
    received: int,
    *,
    fps: float = FPS,
    refresh: bool = True,
) -> list[float]:
    """Looks at each of ``times`` with the output last seen at ``last_output``, the app
    capturing at ``fps`` and the path's count moving by one each look; the times at which a
    refresh was due (and, with ``refresh``, done)."""
    due = []
    for i, now in enumerate(times):
        if freeze.late(now, last_output, captured_at(now, fps)) and freeze.due(now, received + i):
            due.append(now)
            if refresh:
                freeze.refreshed(now)
    return due


def ticks(start: float, end: float, step: float = 0.1) -> list[float]:
    return [round(start + i * step, 3) for i in range(int((end - start) / step) + 1)]


def expecting_from(now: float, first_output: float) -> OutputFreeze:
    """A watch that expects output from ``now``, and saw a frame at ``first_output``."""
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(now, None, captured_at(now))
    freeze.late(first_output, first_output, captured_at(first_output))
    return freeze


def test_output_that_keeps_coming_is_never_frozen() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None, 0)
    for i in range(1, 200):
        now = i * 0.1
        assert not freeze.late(now, now - 0.05, captured_at(now))


def test_a_freeze_with_the_path_alive_is_refreshed_once_its_threshold_is_passed() -> None:
    freeze = expecting_from(0.0, 1.0)
    due = run(freeze, ticks(1.1, 1.6), last_output=1.0, received=100)
    # Late from 1.4 (0.4 s without a frame); the first look takes the path's count, the
    # next sees it move: due at 1.5, once.
    assert due == [1.5]


def test_a_silent_path_is_no_freeze_of_this_watch() -> None:
    freeze = expecting_from(0.0, 1.0)
    for now in ticks(1.4, 5.0):
        if freeze.late(now, 1.0, captured_at(now)):
            assert not freeze.due(now, 500)  # the count stands still: dark


def test_an_app_that_captures_slowly_is_not_frozen() -> None:
    # 2 frames a second: a generated frame every half second is all there can be.
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None, 0)
    for i in range(1, 100):
        now = i * 0.1
        last = (i // 5) * 0.5  # one generated frame per capture
        assert not freeze.late(now, last, captured_at(now, fps=2) + 1)


def test_no_refresh_before_the_first_output_of_a_start() -> None:
    freeze = OutputFreeze(frozen_after=0.35)
    freeze.late(0.0, None, 0)
    assert run(freeze, ticks(0.1, 5.0), last_output=-3.0, received=0) == []  # from before
    freeze.forget()
    freeze.late(10.0, None, captured_at(10.0))
    for now in ticks(10.1, 12.0):
        assert not freeze.late(now, None, captured_at(now))


def test_a_long_freeze_is_refreshed_quickly_at_first_then_seldom() -> None:
    freeze = expecting_from(0.0, 0.5)
    due = run(freeze, ticks(0.6, 20.0), last_output=0.5, received=0)
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(due)]
    assert gaps[: QUICK_REFRESHES - 1] == [REFRESH_EVERY] * (QUICK_REFRESHES - 1)
    assert set(gaps[QUICK_REFRESHES - 1 :]) == {SLOW_REFRESH_EVERY}


def test_a_refresh_that_did_not_happen_leaves_the_next_look_due() -> None:
    freeze = expecting_from(0.0, 0.5)
    due = run(freeze, ticks(0.6, 1.3), last_output=0.5, received=0, refresh=False)
    assert due == ticks(1.0, 1.3)  # due at every look until one is done


def test_output_coming_back_ends_the_freeze_and_the_next_one_starts_quick() -> None:
    freeze = expecting_from(0.0, 0.5)
    first = run(freeze, ticks(0.6, 10.0), last_output=0.5, received=0)
    assert len(first) > QUICK_REFRESHES
    assert not freeze.late(10.1, 10.05, captured_at(10.1))  # frames again
    second = run(freeze, ticks(10.2, 11.0), last_output=10.1, received=1000)
    assert second and second[0] <= 10.1 + 0.35 + 0.2


def test_forget_drops_what_came_before() -> None:
    freeze = expecting_from(0.0, 0.5)
    freeze.forget()  # muted, say
    freeze.late(5.0, 0.5, captured_at(5.0))
    assert run(freeze, ticks(5.1, 8.0), last_output=0.5, received=0) == []
