"""Ending a session while its media server has gone dark (stopped, not gone: its sockets stay
open and answer nothing) is bounded: disconnect(), the end of ``async with`` and a pool's
close() each return within the leave's bound, and asyncio.run() ends. Before, leaving the room
was awaited without a bound and waited as long as the server stayed dark."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import API_KEY

import warmrtc
from warmrtc._media.room import LEAVE_TIMEOUT, NATIVE_GRACE

BOUND = LEAVE_TIMEOUT + 5.0  # the leave's own bound, and a few seconds for the rest


@contextmanager
def dark_media_server() -> Iterator[None]:
    pid = int(Path(os.environ["WARMRTC_LIVEKIT_PIDFILE"]).read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_ending_sessions_is_bounded_while_the_media_server_is_dark(emulator_url: str) -> None:
    took: dict[str, float] = {}

    async def run() -> None:
        sources = [warmrtc.VideoSource(64, 48) for _ in range(2)]
        pool = warmrtc.WarmPool(1, api_key=API_KEY, base_url=emulator_url, width=64, height=48)
        await pool.start()
        try:
            first = await warmrtc.connect(sources[0], api_key=API_KEY, base_url=emulator_url)
            second = warmrtc.connect(sources[1], api_key=API_KEY, base_url=emulator_url)
            await pool.wait_warm(30)
            async with second:
                with dark_media_server():
                    started = time.monotonic()
                    await first.disconnect()
                    took["disconnect"] = time.monotonic() - started
                    started = time.monotonic()
                    await second.__aexit__(None, None, None)
                    took["async with"] = time.monotonic() - started
                    started = time.monotonic()
                    await pool.close()
                    took["pool close"] = time.monotonic() - started
        finally:
            await pool.close()
            for source in sources:
                source.close()

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(run(), 3 * BOUND + NATIVE_GRACE + 30))
    took["asyncio.run"] = time.monotonic() - started
    print(took)
    for what in ("disconnect", "async with", "pool close"):
        assert took[what] < BOUND, (what, took)
