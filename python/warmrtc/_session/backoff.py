"""How long to wait before trying again: reconnects and warm-ups share one table."""

from __future__ import annotations

DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds after the 1st, 2nd... failure, then 8 s on


def retry_delay(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row (1: the first)."""
    return DELAYS[min(max(failures, 1), len(DELAYS)) - 1]


__all__ = ["DELAYS", "retry_delay"]
