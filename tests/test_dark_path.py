"""DarkPath: a path's received-packet count standing still for long enough is a dark path, and
the count moving again is the moment it came back (said once, with how long it was dark)."""

from __future__ import annotations

from warmrtc._media.dark_path import DarkPath


def test_a_count_that_keeps_moving_is_never_dark() -> None:
    path = DarkPath(dark_after=1.5)
    for i in range(100):
        assert path.observe(i * 0.5, i * 7) is None
    assert not path.dark


def test_a_pause_shorter_than_the_threshold_is_not_a_blackout() -> None:
    path = DarkPath(dark_after=1.5)
    assert path.observe(0.0, 10) is None
    assert path.observe(1.0, 10) is None  # quiet for 1 s (a receiver report's interval)
    assert path.observe(1.5, 11) is None
    assert not path.dark


def test_the_path_comes_back_once_after_being_dark() -> None:
    path = DarkPath(dark_after=1.5)
    path.observe(0.0, 10)
    path.observe(0.5, 20)
    for t in (1.0, 1.5, 2.0, 2.5):
        assert path.observe(t, 20) is None
    assert path.dark
    back = path.observe(3.5, 25)
    assert back is not None and abs(back - 3.0) < 1e-9  # dark since the last change, at 0.5
    assert not path.dark and path.observe(4.0, 30) is None


def test_a_known_outage_counts_as_dark_and_the_first_baseline_after_it_judges_nothing() -> None:
    path = DarkPath(dark_after=1.5)
    path.observe(0.0, 10)
    path.down(0.3)  # livekit resuming the room
    path.down(5.0)
    assert path.dark
    assert path.observe(5.5, 99) is None  # a baseline after the outage
    back = path.observe(6.0, 120)
    assert back is not None and abs(back - 5.7) < 1e-9


def test_forgetting_drops_the_darkness_too() -> None:
    path = DarkPath(dark_after=1.0)
    path.observe(0.0, 1)
    path.observe(2.0, 1)
    assert path.dark
    path.forget()  # muted: an unmute refreshes the track by itself
    assert not path.dark
    assert path.observe(3.0, 5) is None and path.observe(3.5, 6) is None
