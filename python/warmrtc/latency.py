"""Glass-to-glass latency: the recent window of (shown - captured) times of generated frames.

Each frame the source sends carries its capture time (unix epoch microseconds, LiveKit frame
metadata); a service with frame timing puts that time on the frame it generates from it. When
the generated frame is handed to the app, ``now - user_timestamp`` is that frame's
glass-to-glass latency: capture, encode, network, the model, encode, network, decode and our
conversion. Both ends read the same kind of clock (wall time), as Decart's JS SDK does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

WINDOW = 300  # frames: 10 s at 30 fps, as Decart's JS SDK keeps
MAX_PLAUSIBLE_MS = 60_000.0  # a stamp further off is from a skewed clock, not a frame


@dataclass(frozen=True)
class Latency:
    """Glass-to-glass latency over the recent generated frames, in milliseconds."""

    p50_ms: float  # median over the window
    p95_ms: float  # 95th percentile over the window
    last_ms: float  # the most recent generated frame's
    samples: int  # frames in the window


class LatencyWindow:
    """The last ``size`` latencies. ``record`` from the loop; readers from any thread."""

    def __init__(self, size: int = WINDOW) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size!r}")
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, user_timestamp_us: int, now_us: int | None = None) -> float | None:
        """Counts one generated frame stamped ``user_timestamp_us``; returns its latency in ms,
        or None for a stamp that is absent (0) or implausible (in the future, over 60 s)."""
        if user_timestamp_us <= 0:
            return None
        now = time.time_ns() // 1000 if now_us is None else now_us
        ms = (now - user_timestamp_us) / 1000.0
        if not 0.0 <= ms <= MAX_PLAUSIBLE_MS:
            return None
        with self._lock:
            self._values.append(ms)
        return ms

    def percentiles(self) -> tuple[float, float] | None:
        """(p50, p95) in ms over the window; None before any stamped frame came back."""
        latency = self.snapshot()
        return None if latency is None else (latency.p50_ms, latency.p95_ms)

    def snapshot(self) -> Latency | None:
        with self._lock:
            values = list(self._values)
        if not values:
            return None
        ordered = sorted(values)
        return Latency(
            p50_ms=_percentile(ordered, 50),
            p95_ms=_percentile(ordered, 95),
            last_ms=values[-1],
            samples=len(values),
        )

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


def _percentile(ordered: list[float], pct: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    rank = (len(ordered) - 1) * pct / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


__all__ = ["Latency", "LatencyWindow"]
