"""The emulator's concurrency limit per key, as the service has one per organisation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp
import pytest
from conftest import API_KEY, Emulator
from control import http_url, key_header, open_control, receive, sessions

import warmrtc

OTHER_KEY = "e2e-other-key"
RELEASE, CRASH_RELEASE = 0.5, 2.0


@pytest.fixture(scope="module")
def limited_url() -> Iterator[str]:
    emulator = Emulator(
        "--max-sessions",
        "2",
        "--release-delay",
        str(RELEASE),
        "--crash-release-delay",
        str(CRASH_RELEASE),
        "--fault-injection",
        "--api-key",
        OTHER_KEY,
    )
    yield emulator.url
    emulator.stop()


async def refused(ws: aiohttp.ClientWebSocketResponse) -> bool:
    """True when the service refused this socket for the limit: its error, then close 1013."""
    first = await receive(ws, 5)
    assert first == {"type": "error", "error": "Concurrent session limit reached."}, first
    closing = await asyncio.wait_for(ws.receive(), 5)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closing
    return ws.close_code == 1013


async def accepted(http: aiohttp.ClientSession, url: str, key: str = API_KEY) -> bool:
    ws = await open_control(http, url, key)
    try:
        msg = await ws.receive(timeout=0.3)
    except TimeoutError:
        return True  # nothing said: the session is open (it speaks once joined)
    finally:
        await ws.close()
    assert msg.type == aiohttp.WSMsgType.TEXT and "limit" in msg.data, msg
    return False


async def quota(http: aiohttp.ClientSession, url: str, key: str) -> dict[str, object]:
    async with http.get(http_url(url) + "/v1/realtime/quota", headers=key_header(key)) as r:
        r.raise_for_status()
        return dict(await r.json())


def test_a_session_over_the_limit_is_refused_with_1013(limited_url: str) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            held = [await open_control(http, limited_url, API_KEY) for _ in range(2)]
            await asyncio.sleep(0.2)
            assert await quota(http, limited_url, API_KEY) == {
                "limit": 2,
                "active": 2,
                "remaining": 0,
            }
            third = await open_control(http, limited_url, API_KEY)
            assert await refused(third)
            # Another key has a bucket of its own.
            other = await open_control(http, limited_url, OTHER_KEY)
            assert (await quota(http, limited_url, OTHER_KEY))["active"] == 1
            await other.close()

            # The typed error of the client.
            source = warmrtc.VideoSource(320, 240)
            try:
                with pytest.raises(warmrtc.ConcurrencyLimitError, match="Concurrent session"):
                    await warmrtc.connect(source, api_key=API_KEY, base_url=limited_url, timeout=10)
            finally:
                source.close()

            # A clean close frees the slot after the release delay, not at once.
            await held.pop().close()
            await asyncio.sleep(0.1)
            seen = await sessions(http, limited_url, API_KEY)
            assert sorted(s["holds_slot"] for s in seen.values()) == [True, True]
            assert not await accepted(http, limited_url)
            await asyncio.sleep(RELEASE + 0.3)
            assert len(await sessions(http, limited_url, API_KEY)) == 1  # the ended one is gone
            assert await accepted(http, limited_url)
            await asyncio.sleep(RELEASE + 0.3)  # that one's slot too

            # A dropped socket (no close frame) holds its slot for the crash delay.
            (sid,) = list(await sessions(http, limited_url, API_KEY))
            drop = f"{http_url(limited_url)}/sessions/{sid}/drop"
            async with http.post(drop, headers=key_header(API_KEY)) as response:
                assert response.status == 200
            dropped = time.monotonic()
            await asyncio.sleep(0.3)
            assert await accepted(http, limited_url)  # the other slot
            await asyncio.sleep(RELEASE + 0.3)
            second = await open_control(http, limited_url, API_KEY)
            await asyncio.sleep(0.3)
            assert not await accepted(http, limited_url)  # the dropped one still holds its slot
            await asyncio.sleep(max(CRASH_RELEASE - (time.monotonic() - dropped), 0) + 0.5)
            assert await accepted(http, limited_url)
            await second.close()
            for ws in held:
                await ws.close()

    asyncio.run(asyncio.wait_for(run(), 60))
