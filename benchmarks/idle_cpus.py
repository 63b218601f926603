"""Waiting for idle CPUs before a measurement, for benchmarks run on a shared machine.

Thread-scaling figures mean nothing while other processes hold the cores: two threads then
share what is left and the ratio measures the neighbours. Before each slice of such a figure,
a benchmark waits (bounded) until the machine's CPUs were mostly idle for a short window,
and says how many slices it got that way. Reads /proc/stat (Linux); elsewhere it never waits.
"""

from __future__ import annotations

import time
from pathlib import Path

STAT = Path("/proc/stat")


def _busy_and_total() -> tuple[int, int] | None:
    try:
        fields = [int(x) for x in STAT.read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_for_idle(share: float = 0.8, window: float = 0.15, timeout: float = 0.5) -> bool:
    """True once the CPUs were at least `share` idle over `window` seconds; False after
    `timeout` seconds without such a window (or where /proc/stat is missing)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        before = _busy_and_total()
        time.sleep(window)
        after = _busy_and_total()
        if before is None or after is None:
            return False
        total = after[1] - before[1]
        if total > 0 and 1 - (after[0] - before[0]) / total >= share:
            return True
    return False
