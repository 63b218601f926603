"""Client tokens on the local stack: minted from the key, enforced when a session connects."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from conftest import API_KEY
from control import open_control, receive
from test_session import HEIGHT, WIDTH, Camera

import warmrtc
from warmrtc.events import Event, ReconnectEvent


def test_a_token_for_one_model_cannot_connect_to_another(emulator_url: str) -> None:
    async def run() -> None:
        token = await warmrtc.create_client_token(
            API_KEY, base_url=emulator_url, allowed_models=["lucy-2.6"]
        )
        assert token.key.startswith("ek_") and token.allowed_models == ("lucy-2.6",)
        source = warmrtc.VideoSource(WIDTH, HEIGHT)
        try:
            with pytest.raises(warmrtc.AuthenticationError, match="not allowed"):
                await warmrtc.connect(
                    source, "lucy-2.1", api_key=token.key, base_url=emulator_url, timeout=10
                )
            session = await warmrtc.connect(
                source, "lucy-2.6", api_key=token.key, base_url=emulator_url, timeout=20
            )
            assert session.state == "connected"
            await session.disconnect()
        finally:
            source.close()

    asyncio.run(asyncio.wait_for(run(), 60))


def test_an_expired_token_is_refused_as_an_invalid_key(emulator_url: str) -> None:
    async def run() -> None:
        token = await warmrtc.create_client_token(API_KEY, base_url=emulator_url, expires_in=1)
        await asyncio.sleep(1.5)
        source = warmrtc.VideoSource(WIDTH, HEIGHT)
        try:
            with pytest.raises(warmrtc.AuthenticationError, match="Invalid API key"):
                await warmrtc.connect(source, api_key=token.key, base_url=emulator_url)
        finally:
            source.close()
        with pytest.raises(warmrtc.AuthenticationError):
            await warmrtc.create_client_token("not-a-key", base_url=emulator_url)

    asyncio.run(asyncio.wait_for(run(), 30))


def test_allowed_origins_are_matched_against_the_origin_header(emulator_url: str) -> None:
    async def run() -> None:
        token = await warmrtc.create_client_token(
            API_KEY, base_url=emulator_url, allowed_origins=["https://example.com"]
        )
        query = f"?api_key={token.key}&model=lucy-2.6"
        async with aiohttp.ClientSession() as http:
            for origin, ok in (("https://example.com", True), ("https://evil.example", False)):
                ws = await http.ws_connect(
                    emulator_url + "/v1/stream" + query, headers={"Origin": origin}
                )
                if ok:
                    await ws.send_json({"type": "prompt", "prompt": "hi"})
                    assert (await receive(ws))["success"] is True
                else:
                    assert "Origin" in (await receive(ws))["error"]
                    await ws.receive()
                    assert ws.close_code == 4003
                await ws.close()
            ws = await open_control(http, emulator_url, token.key)  # no Origin header at all
            assert (await receive(ws))["type"] == "error"
            await ws.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_max_session_duration_ends_the_session_with_a_clear_reason(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    events: list[Event] = []
    figures: dict[str, float] = {}

    async def run() -> warmrtc.Session:
        token = await warmrtc.create_client_token(
            API_KEY, base_url=emulator_url, max_session_duration=3
        )
        assert token.max_session_duration == 3
        started = time.monotonic()
        session = await warmrtc.connect(
            source, api_key=token.key, base_url=emulator_url, on_event=events.append
        )
        with Camera(source):
            async with asyncio.timeout(15):
                while session.state != "disconnected":
                    await asyncio.sleep(0.05)
        figures["ended_after"] = time.monotonic() - started
        await session.disconnect()
        return session

    try:
        session = asyncio.run(asyncio.wait_for(run(), 40))
    finally:
        source.close()
    print(f"\nended after {figures['ended_after']:.2f} s: {session.last_error}")
    assert 2.5 <= figures["ended_after"] <= 6
    error = session.last_error
    assert isinstance(error, warmrtc.SessionEndedError) and error.reason == "timeout"
    assert not any(isinstance(e, ReconnectEvent) for e in events)  # no reconnect loop
    ended = [e for e in events if isinstance(e, warmrtc.GenerationEndedEvent)]
    assert ended and ended[-1].reason == "timeout"


def test_a_pool_recycles_its_warm_sessions_before_the_tokens_duration_ends_them(
    emulator_url: str,
) -> None:
    """maxSessionDuration 3 s: the service ends a session 3 s after it connected, warm or not.
    A pool told that duration replaces its warm sessions before then, so every acquire() gets
    a live one and the service never ends a warm one under it."""
    ended: list[Event] = []

    async def run() -> warmrtc.PoolStats:
        token = await warmrtc.create_client_token(
            API_KEY, base_url=emulator_url, max_session_duration=3
        )
        async with warmrtc.WarmPool(
            1,
            width=WIDTH,
            height=HEIGHT,
            api_key=token.key,
            base_url=emulator_url,
            max_session_duration=3,
            on_event=lambda e: (
                ended.append(e) if type(e).__name__ == "GenerationEndedEvent" else None
            ),
        ) as pool:
            await pool.wait_warm(20)
            await asyncio.sleep(7)  # more than two of the token's session lifetimes
            stats = pool.stats
            async with pool.acquire(10) as session:
                assert session.state == "connected"
            return stats

    stats = asyncio.run(asyncio.wait_for(run(), 60))
    assert stats.recycled >= 2, stats
    assert not ended, ended  # the service never had to end a warm session
