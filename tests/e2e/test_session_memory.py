"""A process that runs sessions one batch after another keeps its memory: over a few cycles
(3 sessions warmed, live at 720p30 with a capture thread each, disconnected), glibc's heap in
use stays where it was and, with MALLOC_ARENA_MAX=2 (what the README advises for a process
that runs sessions for long), so does the RSS.

The cycles run in a process of their own (``benchmarks/session_memory.py``), so that nothing
else of the test run is measured. What this guards against, measured with 3 sessions a cycle
before the fixes: livekit keeping what it knew of a room left while the model still published
in it (about 0.45 MiB of heap in use per session and cycle), and frame buffers of the model's
output left unread in livekit's FFI when a reader stopped (1.3 MiB each, about one a cycle):
from cycle 2 to 8 the heap in use grew by 11.3 MiB (the bound is 2.7) and the RSS by 20 MiB.
After them: the heap in use within 0.1 MiB (1.5 MiB more while a cycle's last native threads
end), the RSS within a few MiB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "session_memory.py"
CYCLES, SESSIONS, LIVE = 8, 3, 1.5
HEAP_PER_SESSION_CYCLE_MIB = 0.15  # bound on the heap in use's growth; 0.45 before
RSS_GROWTH_MIB = 30.0  # bound on the RSS's growth from the second cycle


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's figures")
def test_memory_stays_put_over_session_cycles(tmp_path: Path) -> None:
    out = tmp_path / "cycles.json"
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            *("--cycles", str(CYCLES), "--sessions", str(SESSIONS), "--live", str(LIVE)),
            *("--settle", "1.5", "--after", "0", "--no-reference", "--json", str(out)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    cycles = result["cycles"]
    assert len(cycles) == CYCLES

    # From the second cycle on (the first one sets up what a process keeps: livekit's runtime,
    # its threads, the encoders' tables); the smaller of the last two readings, as a cycle's
    # threads may still be ending at one of them.
    used = [c["heap_used"] for c in cycles]
    heap_growth = min(used[-2:]) - used[1]
    heap_bound = HEAP_PER_SESSION_CYCLE_MIB * SESSIONS * (CYCLES - 2)
    assert heap_growth <= heap_bound, (
        f"glibc's heap in use grew {heap_growth:.1f} MiB from cycle 2 to {CYCLES} "
        f"(bound {heap_bound:.1f} MiB): {used}"
    )
    rss = [c["rss"] for c in cycles]
    rss_growth = min(rss[-2:]) - rss[1]
    assert rss_growth <= RSS_GROWTH_MIB, (
        f"the RSS grew {rss_growth:.1f} MiB from cycle 2 to {CYCLES} "
        f"(bound {RSS_GROWTH_MIB:g} MiB): {rss}"
    )
