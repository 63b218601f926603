"""The link's schedule, on a clock of the test's own: the rate cap, the delay line, losses
and blackouts."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from warmrtc.local.linkspec import Direction, LinkSpec, LinkSpecError
from warmrtc.local.shaping import MTU, Path, RateCap, Schedule

PACKET = b"x" * 1000


def path(**direction: float) -> Path:
    return Path(Direction(**direction), reorder=False, rng=random.Random(1))


def test_the_rate_cap_lets_a_burst_through_then_paces_at_the_rate() -> None:
    cap = RateCap(rate_mbit=8, queue_ms=1000)  # 1 MB/s: 1000 bytes take 1 ms
    assert cap.burst == 5000  # 5 ms at the rate (more than 2 MTU)
    leaves = [cap.departure(0.0, 1000) for _ in range(20)]
    assert leaves[:5] == [0.0] * 5  # the burst
    gaps = [b - a for a, b in itertools.pairwise(leaves[4:])]  # type: ignore[operator]
    assert all(gap == pytest.approx(0.001) for gap in gaps)


def test_the_rate_cap_holds_over_a_long_run() -> None:
    cap = RateCap(rate_mbit=2, queue_ms=100)
    sent = 0
    last = 0.0
    for i in range(20_000):  # offered: 1200 bytes every 1 ms, 9.6 Mbit/s, for 20 s
        leaves = cap.departure(i / 1000, 1200)
        if leaves is not None:
            sent += 1200
            last = leaves
    assert sent * 8 / last / 1e6 == pytest.approx(2, rel=0.01)


def test_the_rate_caps_queue_drops_what_would_wait_too_long() -> None:
    cap = RateCap(rate_mbit=8, queue_ms=10)  # 10 packets of 1000 bytes wait 10 ms
    out = [cap.departure(0.0, 1000) for _ in range(30)]
    kept = [t for t in out if t is not None]
    assert len(kept) == 5 + 10  # the burst, then the queue; the rest dropped
    assert max(kept) <= 0.010 + 1e-9
    # Dropped packets took no capacity: the next one leaves right after the queue.
    assert cap.departure(0.0105, 1000) == pytest.approx(0.011)


def test_a_packet_bigger_than_the_burst_waits_for_a_full_bucket() -> None:
    cap = RateCap(rate_mbit=0.1, queue_ms=1000)  # 12.5 kB/s: the bucket is 2 MTU
    assert cap.burst == 2 * MTU
    assert cap.departure(0.0, 4000) == 0.0
    assert cap.departure(0.0, 4000) == pytest.approx(4000 / 12500)


def test_a_packet_leaves_after_the_delay() -> None:
    p = path(delay_ms=25)
    assert p.push(1.0, PACKET) == pytest.approx(1.025)
    assert p.pop_due(1.0249) == []
    assert p.pop_due(1.025) == [(pytest.approx(1.025), PACKET)]
    assert (p.stats.packets, p.stats.bytes, p.stats.delivered) == (1, 1000, 1)


def test_jitter_never_reorders_unless_asked() -> None:
    p = path(delay_ms=40, jitter_ms=20)
    dues = [p.push(i * 0.001, PACKET) for i in range(2000)]
    assert dues == sorted(dues)  # type: ignore[type-var]
    spread = [due - i * 0.001 for i, due in enumerate(dues)]  # type: ignore[operator]
    assert min(spread) >= 0.020 - 1e-9 and max(spread) <= 0.060 + 1e-9
    out = p.pop_due(10.0)
    assert [due for due, _ in out] == sorted(dues)  # type: ignore[type-var]


def test_with_reorder_the_delays_are_uniform_around_the_delay() -> None:
    p = Path(Direction(delay_ms=40, jitter_ms=20), reorder=True, rng=random.Random(3))
    delays = [p.push(i * 0.001, PACKET) - i * 0.001 for i in range(20_000)]  # type: ignore[operator]
    assert delays != sorted(delays)
    assert min(delays) >= 0.020 and max(delays) <= 0.060
    assert sum(delays) / len(delays) == pytest.approx(0.040, abs=0.0005)
    out = p.pop_due(100.0)
    assert [due for due, _ in out] == sorted(due for due, _ in out)  # leave in due order


def test_jitter_never_makes_a_delay_negative() -> None:
    p = Path(Direction(delay_ms=1, jitter_ms=5), reorder=True, rng=random.Random(3))
    assert all(p.push(1.0, PACKET) >= 1.0 for _ in range(1000))  # type: ignore[operator]


def test_loss_is_within_statistical_bounds_and_repeatable() -> None:
    n, loss = 100_000, 0.02

    def dropped(seed: int) -> list[int]:
        p = Path(Direction(loss=loss), reorder=False, rng=random.Random(seed))
        return [i for i in range(n) if p.push(0.0, PACKET) is None]

    first = dropped(1)
    sigma = math.sqrt(n * loss * (1 - loss))
    assert abs(len(first) - n * loss) < 5 * sigma
    assert dropped(1) == first  # the seed makes the run repeatable
    assert dropped(2) != first


def test_no_loss_and_full_loss_are_exact() -> None:
    p = path(loss=0)
    assert all(p.push(0.0, PACKET) is not None for _ in range(1000))
    p = path(loss=1)
    assert all(p.push(0.0, PACKET) is None for _ in range(1000))
    assert p.stats.lost == 1000 and p.stats.dropped == 1000


def test_a_new_spec_keeps_the_packets_on_the_link_where_they_are() -> None:
    s = Schedule(LinkSpec(up=Direction(delay_ms=100)))
    s.up.push(0.0, b"old")
    s.set(LinkSpec(up=Direction(delay_ms=10)))
    s.up.push(0.001, b"new")  # would be due at 0.011; leaves after the old one (no reorder)
    assert s.up.pop_due(0.05) == []
    assert [packet for _, packet in s.up.pop_due(0.1)] == [b"old", b"new"]


def test_a_blackout_drops_everything_until_it_ends() -> None:
    s = Schedule(LinkSpec(up=Direction(delay_ms=50), down=Direction(delay_ms=50)))
    s.up.push(0.0, PACKET)
    s.down.push(0.0, PACKET)
    s.blackout(0.01, 2.0)
    assert s.next_event() == pytest.approx(2.01)  # only the blackout's end is due
    assert s.up.push(1.0, PACKET) is None and s.down.push(1.0, PACKET) is None
    assert s.up.stats.dark == s.down.stats.dark == 2  # one on the link, one coming
    assert s.report(1.0)["dark_for"] == pytest.approx(1.01)
    s.set(LinkSpec(up=Direction(delay_ms=5)))  # applies once the blackout ends
    s.tick(2.0)
    assert s.up.push(2.0, PACKET) is None
    s.tick(2.01)
    assert s.up.push(2.02, PACKET) == pytest.approx(2.025)
    assert s.report(2.02)["dark_for"] == 0.0 and s.next_event() == pytest.approx(2.025)


@pytest.mark.parametrize("seconds", [0, -1, 3601, "2", True, math.nan])
def test_a_bad_blackout_is_refused(seconds: object) -> None:
    with pytest.raises(LinkSpecError, match="blackout seconds must be"):
        Schedule(LinkSpec()).blackout(0.0, seconds)  # type: ignore[arg-type]


def test_a_rate_cap_that_changes_starts_behind_the_old_ones_queue() -> None:
    # With reorder, nothing but the cap keeps the new packet behind the queued ones.
    s = Schedule(LinkSpec(up=Direction(rate_mbit=8, queue_ms=1000), reorder=True))
    dues = [s.up.push(0.0, PACKET) for _ in range(20)]  # queued up to 15 ms
    s.set(LinkSpec(up=Direction(rate_mbit=80, queue_ms=1000), reorder=True))
    after = s.up.push(0.0, PACKET)
    assert after is not None and after >= max(dues)  # type: ignore[type-var]
