"""The link's schedule: when each packet leaves, or that it is dropped. Pure: the caller gives
the time (seconds, any monotonic clock) and the packets, and forwards what is due
(:mod:`warmrtc.local.delay_line` does, between two TUN devices).

Each direction, in order: the rate cap (a token bucket: a burst, then packets leave at the
capped rate; a packet that would wait in its queue longer than ``queue_ms`` is dropped), then
random loss (a lost packet has used the cap's capacity, as on a wire after the bottleneck),
then the delay (``delay_ms ± jitter_ms``, uniform; without ``reorder`` no packet leaves before
the one ahead of it, so a packet drawn a short delay right behind one drawn a long one waits
for it). A blackout drops every packet that comes, and those still on the link, until it ends.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from dataclasses import dataclass

from .linkspec import Direction, LinkSpec, LinkSpecError

MTU = 1500
BURST_S = 0.005  # the cap's bucket holds this long at the capped rate, and 2 MTU at least
MAX_BLACKOUT_S = 3600.0


class RateCap:
    """A token-bucket shaper: ``rate`` bytes/s, a bucket of ``burst`` bytes (full at first),
    and a queue of at most ``max_wait`` seconds. Kept as one clock (the generic cell rate
    algorithm): ``_full_at`` is when the bucket is full again after what was sent."""

    def __init__(self, rate_mbit: float, queue_ms: float) -> None:
        self.rate = rate_mbit * 1e6 / 8
        self.burst = max(2 * MTU, self.rate * BURST_S)
        self.max_wait = queue_ms / 1000
        self._full_at = float("-inf")
        self._last = float("-inf")

    def departure(self, now: float, size: int) -> float | None:
        """When a packet of ``size`` bytes that came at ``now`` leaves the cap; None: the
        queue is full and it is dropped (it takes no capacity)."""
        need = min(size, self.burst)
        leaves = max(now, self._last, self._full_at - (self.burst - need) / self.rate)
        if leaves - now > self.max_wait + 1e-9:  # (a wait of exactly max_wait is kept)
            return None
        self._full_at = max(self._full_at, leaves) + size / self.rate
        self._last = leaves
        return leaves

    def follow(self, previous: RateCap | None) -> None:
        """Takes over the queue of the cap this one replaces: no packet leaves before those
        already queued, and the bucket starts empty behind them."""
        if previous is not None:
            self._last = previous._last
            self._full_at = previous._last


@dataclass
class PathStats:
    """One direction's counters since the link started: packets that came (``packets``,
    ``bytes``), left (``delivered``), or were dropped at random (``lost``), by a full queue
    (``overflow``), by a blackout (``dark``), or when the far device would not take them
    (``write_errors``; the forwarder counts those)."""

    packets: int = 0
    bytes: int = 0
    delivered: int = 0
    lost: int = 0
    overflow: int = 0
    dark: int = 0
    write_errors: int = 0

    @property
    def dropped(self) -> int:
        return self.lost + self.overflow + self.dark + self.write_errors


class Path:
    """One direction: packets in with :meth:`push`, out with :meth:`pop_due`."""

    def __init__(self, direction: Direction, *, reorder: bool, rng: random.Random) -> None:
        self.stats = PathStats()
        self.dark = False
        self._queue: list[tuple[float, int, bytes]] = []  # (due, arrival order, packet)
        self._order = 0
        self._last_due = float("-inf")
        self._cap: RateCap | None = None
        self.configure(direction, reorder=reorder, rng=rng)

    def configure(self, direction: Direction, *, reorder: bool, rng: random.Random) -> None:
        """New settings for the packets that come from now on; those on the link keep their
        schedule."""
        self.direction, self.reorder, self._rng = direction, reorder, rng
        cap = None
        if direction.rate_mbit is not None:
            cap = RateCap(direction.rate_mbit, direction.queue_ms)
            cap.follow(self._cap)
        self._cap = cap

    def push(self, now: float, packet: bytes) -> float | None:
        """Takes a packet that came at ``now``; when it is due, or None if it was dropped."""
        self.stats.packets += 1
        self.stats.bytes += len(packet)
        if self.dark:
            self.stats.dark += 1
            return None
        leaves = now
        if self._cap is not None:
            departure = self._cap.departure(now, len(packet))
            if departure is None:
                self.stats.overflow += 1
                return None
            leaves = departure
        d = self.direction
        if d.loss and self._rng.random() < d.loss:
            self.stats.lost += 1
            return None
        delay = d.delay_ms
        if d.jitter_ms:
            delay = max(0.0, delay + self._rng.uniform(-d.jitter_ms, d.jitter_ms))
        due = leaves + delay / 1000
        if not self.reorder:
            due = max(due, self._last_due)
        self._last_due = max(self._last_due, due)
        heapq.heappush(self._queue, (due, self._order, packet))
        self._order += 1
        return due

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: float) -> list[tuple[float, bytes]]:
        """The packets due at ``now`` or before, with their due times, in the order they
        leave."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            due, _, packet = heapq.heappop(self._queue)
            out.append((due, packet))
        self.stats.delivered += len(out)
        return out

    def flush(self) -> None:
        """Drops every packet on the link (a blackout begins)."""
        self.stats.dark += len(self._queue)
        self._queue.clear()

    @property
    def in_flight(self) -> int:
        return len(self._queue)


class Schedule:
    """Both directions of a link and its blackouts. ``up`` carries client -> service."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self.up = Path(spec.up, reorder=spec.reorder, rng=self._rng("up"))
        self.down = Path(spec.down, reorder=spec.reorder, rng=self._rng("down"))
        self.dark_until: float | None = None

    def _rng(self, side: str) -> random.Random:
        return random.Random(f"{self.spec.seed}/{side}")

    def set(self, spec: LinkSpec) -> None:
        """New settings from now on (the random draws start again from the spec's seed). During
        a blackout they apply once it ends."""
        self.spec = spec
        for side, path in (("up", self.up), ("down", self.down)):
            path.configure(getattr(spec, side), reorder=spec.reorder, rng=self._rng(side))

    def blackout(self, now: float, seconds: float) -> None:
        """Drops everything, on the link and coming, for ``seconds`` from ``now`` (a second
        call sets a new end)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise LinkSpecError(f"blackout seconds must be a number, got {seconds!r}")
        if not 0 < seconds <= MAX_BLACKOUT_S:
            raise LinkSpecError(
                f"blackout seconds must be above 0 and at most {MAX_BLACKOUT_S:g}, got {seconds!r}"
            )
        self.dark_until = now + seconds
        for path in (self.up, self.down):
            path.dark = True
            path.flush()

    def tick(self, now: float) -> None:
        """Ends a blackout whose time is up."""
        if self.dark_until is not None and now >= self.dark_until:
            self.dark_until = None
            self.up.dark = self.down.dark = False

    def next_event(self) -> float | None:
        """The earliest time something is due: a packet, or the end of a blackout."""
        times = [
            t for t in (self.up.next_due(), self.down.next_due(), self.dark_until) if t is not None
        ]
        return min(times) if times else None

    def report(self, now: float) -> dict[str, object]:
        """The spec in force, what is left of a blackout, and each direction's counters (the
        control socket's answer)."""
        return {
            "spec": self.spec.to_json(),
            "dark_for": max(0.0, self.dark_until - now) if self.dark_until is not None else 0.0,
            "up": dataclasses.asdict(self.up.stats),
            "down": dataclasses.asdict(self.down.stats),
        }
