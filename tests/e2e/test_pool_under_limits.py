"""WarmPool under the service's limits, end to end: a pool of 3 under a concurrency limit of 2,
and two processes whose pools share a budget of 2 through a Redis server the test starts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import API_KEY, Emulator
from control import sessions

import warmrtc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the redis helper
from redis_server import RedisServer

SMALL = {"width": 320, "height": 240, "api_key": API_KEY}


def test_a_pool_of_3_under_a_limit_of_2_holds_2_and_reports_why_not_3() -> None:
    emulator = Emulator("--max-sessions", "2", "--release-delay", "0.5")
    try:

        async def run() -> None:
            async with (
                aiohttp.ClientSession() as http,
                warmrtc.WarmPool(3, base_url=emulator.url, release_delay=0.5, **SMALL) as pool,
            ):
                await pool.wait_warm(60, count=2)
                await asyncio.sleep(4)
                stats = pool.stats
                print(stats)
                assert (stats.warm, stats.in_use) == (2, 0)
                assert stats.capacity_refusals >= 1
                assert stats.held_back is not None and "concurrency limit" in stats.held_back
                assert "Concurrent session limit reached." in (stats.last_error or "")
                # Backing off from 1 s, doubling (tries at ~0, 1, 3, 7 s): no hot loop.
                assert stats.capacity_refusals <= 5
                seen = await sessions(http, emulator.url, API_KEY)
                assert sum(s["holds_slot"] for s in seen.values()) == 2
                async with pool.acquire(0), pool.acquire(0):
                    with pytest.raises(warmrtc.PoolCapacityError, match="concurrency limit"):
                        async with pool.acquire(0):
                            pass

        asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        emulator.stop()


class Holder:
    """tests/e2e/budget_holder.py in a process of its own; ``stats`` is its last line."""

    def __init__(self, redis_url: str, base_url: str) -> None:
        script = Path(__file__).with_name("budget_holder.py")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), redis_url, base_url, API_KEY],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.stats: dict[str, object] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stats = json.loads(line)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def test_two_processes_share_a_budget_of_2_and_a_killed_one_gives_its_share_back(
    redis_url: str,
) -> None:
    # The service would allow 4: only the shared budget keeps the two pools at 2. A dead
    # holder's lease lasts 2-3 s after its last heartbeat (TTL 3 s, a heartbeat each second),
    # longer than the service keeps a crashed client's slots (1 s here), as the default 45 s
    # TTL does for the real service's ~45 s: equal times (2 and 2 before) raced, and the
    # service briefly counted 4.
    emulator = Emulator(
        "--max-sessions", "4", "--release-delay", "0.5", "--crash-release-delay", "1"
    )  # fmt: skip
    holders = [Holder(redis_url, emulator.url), Holder(redis_url, emulator.url)]
    try:

        async def run() -> None:
            async with aiohttp.ClientSession() as http:

                async def most_open(seconds: float) -> int:
                    most, end = 0, time.monotonic() + seconds
                    while time.monotonic() < end:
                        seen = await sessions(http, emulator.url, API_KEY)
                        most = max(most, sum(s["holds_slot"] for s in seen.values()))
                        await asyncio.sleep(0.1)
                    return most

                assert await most_open(10) <= 2  # the service's own count of held slots
                warm = [int(h.stats.get("warm", 0)) for h in holders]  # type: ignore[call-overload]
                print("warm per process:", warm, [h.stats.get("held_back") for h in holders])
                assert sum(warm) == 2
                # Kill the process that holds warm sessions (SIGKILL: no clean-up at all).
                victim = max(holders, key=lambda h: int(h.stats["warm"]))  # type: ignore[call-overload]
                other = holders[1 - holders.index(victim)]
                before = int(other.stats["warm"])  # type: ignore[call-overload]
                os.kill(victim.proc.pid, signal.SIGKILL)
                killed = time.monotonic()
                while int(other.stats["warm"]) < 2:  # type: ignore[call-overload]
                    # lease TTL 3 s + a warm-up
                    assert time.monotonic() - killed < 20, other.stats
                    await asyncio.sleep(0.2)
                took = time.monotonic() - killed
                print(f"the killed process's share came back: {before} -> 2 warm in {took:.1f} s")
                # The dead process's sessions held their service slots as long as its leases.
                assert await most_open(3) <= 2

        asyncio.run(asyncio.wait_for(run(), 120))
    finally:
        for holder in holders:
            holder.stop()
        emulator.stop()
