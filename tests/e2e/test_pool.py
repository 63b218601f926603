"""WarmPool end to end: warm sessions are unbilled, acquire is instant, replacements and expiry."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from conftest import API_KEY
from control import sessions
from test_session import HEIGHT, WIDTH, Camera

import warmrtc

POOL = {"width": WIDTH, "height": HEIGHT, "api_key": API_KEY}


async def first_frame(session: warmrtc.Session) -> None:
    async for _frame in session.frames():
        return


def test_warm_sessions_are_unbilled_and_acquire_hands_one_out_and_replaces_it(
    emulator_url: str,
) -> None:
    async def run() -> None:
        async with (
            aiohttp.ClientSession() as http,
            warmrtc.WarmPool(3, base_url=emulator_url, **POOL) as pool,
        ):
            await pool.wait_warm(60)
            warm_ids = {w.session.session_id for w in pool._warm}
            assert len(warm_ids) == 3 and pool.stats.warm == 3 and pool.stats.failed == 0
            # Idle warm sessions a few seconds old: an unmuted track would have delivered
            # LiveKit keepalive frames by now, and been billed for them.
            await asyncio.sleep(3)
            seen = await sessions(http, emulator_url, API_KEY)
            for sid in warm_ids:
                assert seen[sid]["frames_received"] == 0, seen[sid]
                assert seen[sid]["billed_seconds"] == 0 and seen[sid]["muted"] is True

            started = time.perf_counter()
            async with pool.acquire() as session:
                acquire_s = time.perf_counter() - started
                assert session.session_id in warm_ids and session.state == "connected"
                assert session.muted and session.source.muted
                assert pool.stats.in_use == 1 and pool.stats.replaced == 1
                with Camera(session.source):
                    session.unmute()
                    await asyncio.wait_for(first_frame(session), 15)
                    await asyncio.sleep(1.5)
                used = session.session_id
            print(f"acquire from a warm pool took {acquire_s * 1e3:.2f} ms")
            assert session.state == "disconnected" and session.source.closed
            await pool.wait_warm(60)  # the replacement
            stats = pool.stats
            assert (stats.warm, stats.in_use, stats.replaced, stats.failed) == (3, 0, 1, 0)

            seen = await sessions(http, emulator_url, API_KEY)
            assert seen[used]["frames_received"] > 0 and seen[used]["billed_seconds"] >= 1
            assert seen[used]["state"] == "ended"
            for sid in warm_ids - {used}:
                assert seen[sid]["frames_received"] == 0 and seen[sid]["billed_seconds"] == 0
            new_ids = {w.session.session_id for w in pool._warm} - warm_ids
            assert len(new_ids) == 1 and seen[new_ids.pop()]["frames_received"] == 0
        assert pool.stats.warm == 0
        seen = await sessions_after_close(emulator_url, warm_ids)
        assert all(s["state"] == "ended" for s in seen), seen

    asyncio.run(asyncio.wait_for(run(), 120))


async def sessions_after_close(url: str, ids: set[str]) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        for _ in range(50):  # the service sees each socket close a moment later
            seen = await sessions(http, url, API_KEY)
            if all(seen[i]["state"] == "ended" for i in ids):
                break
            await asyncio.sleep(0.1)
        return [seen[i] for i in ids]


def test_taking_every_session_at_once_refills_the_whole_pool(emulator_url: str) -> None:
    async def run() -> None:
        async with warmrtc.WarmPool(2, base_url=emulator_url, **POOL) as pool:
            await pool.wait_warm(30)
            # Straight after the last warm-up finished: it must not count as still warming.
            async with pool.acquire() as first, pool.acquire() as second:
                assert first is not second and pool.stats.in_use == 2
            await pool.wait_warm(30)
            assert pool.stats.warm == 2 and pool.stats.replaced == 2

    asyncio.run(asyncio.wait_for(run(), 90))


def test_idle_sessions_are_replaced_after_max_idle(emulator_url: str) -> None:
    async def run() -> None:
        async with warmrtc.WarmPool(1, base_url=emulator_url, max_idle=1.0, **POOL) as pool:
            await pool.wait_warm(30)
            first = pool._warm[0].session
            async with asyncio.timeout(30):
                while pool.stats.replaced == 0:
                    await asyncio.sleep(0.1)
            await pool.wait_warm(30)
            assert first.state == "disconnected"
            assert pool._warm[0].session.session_id != first.session_id
            assert pool.stats.failed == 0

    asyncio.run(asyncio.wait_for(run(), 90))


def test_acquire_times_out_with_the_reason_when_warming_keeps_failing(emulator_url: str) -> None:
    dead_url = "ws://127.0.0.1:9"  # nothing listens: every warm-up fails

    async def run() -> None:
        async with warmrtc.WarmPool(1, base_url=dead_url, timeout=2, **POOL) as pool:
            started = time.monotonic()
            with pytest.raises(warmrtc.PoolTimeoutError, match="no warm session within 1 s"):
                async with pool.acquire(timeout=1):
                    pass
            assert time.monotonic() - started < 10
            assert pool.stats.failed >= 1 and pool.stats.warm == 0
            assert isinstance(pool.last_error, warmrtc.ConnectionLostError)

    asyncio.run(asyncio.wait_for(run(), 60))


def test_a_refused_key_fails_acquire_at_once(emulator_url: str) -> None:
    async def run() -> None:
        pool = warmrtc.WarmPool(2, base_url=emulator_url, width=WIDTH, height=HEIGHT, api_key="no")
        async with pool:
            with pytest.raises(warmrtc.AuthenticationError):
                async with pool.acquire(timeout=30):
                    pass
            async with asyncio.timeout(5):  # the other warm-up is cancelled, not retried
                while pool.stats.warming:
                    await asyncio.sleep(0.05)
            assert pool.stats.warm == 0 and pool.stats.failed >= 1

    asyncio.run(asyncio.wait_for(run(), 60))


def test_blocking_pool_for_thread_code(emulator_url: str) -> None:
    with warmrtc.BlockingWarmPool(1, base_url=emulator_url, **POOL) as pool:
        pool.wait_warm(30)
        with pool.acquire(timeout=30) as session:
            assert session.muted and session.state == "connected"
            with Camera(session.source):
                session.unmute()
                frame = next(session.frames(timeout=15))
            assert frame.ndim == 3 and frame.shape[2] == 3  # bgr24 at the model's size
        assert session.state == "disconnected"
        pool.wait_warm(30)
        assert pool.stats.replaced == 1
    assert "closed=True" in repr(pool)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"size": 0}, "size must be a positive int"),
        ({"size": 1, "max_idle": 0}, "max_idle must be positive"),
        ({"size": 1, "width": 0}, "width"),
        ({"size": 1, "fmt": "yuv9"}, "yuv9"),
        ({"size": 1, "start_muted": False}, "sets start_muted itself"),
    ],
)
def test_bad_pool_arguments_are_named(kwargs: dict, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        warmrtc.WarmPool(**kwargs)
