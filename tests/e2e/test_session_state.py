"""Session state, reconnects, mute and shutdown on the real stack: what an app relies on."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import aiohttp
import pytest
from conftest import API_KEY, Emulator
from control import http_url, key_header, sessions
from test_session import HEIGHT, WIDTH, Camera

import warmrtc


async def drop_control(http: aiohttp.ClientSession, url: str, session_id: str | None) -> None:
    drop = f"{http_url(url)}/sessions/{session_id}/drop"
    async with http.post(drop, headers=key_header(API_KEY)) as response:
        response.raise_for_status()


async def until(predicate: object, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def test_no_reconnect_attempts_ends_disconnected_with_the_reason(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, reconnect_attempts=0
            )
            await drop_control(http, emulator_url, session.session_id)
            await until(lambda: session.state == "disconnected", 10, "disconnected")
            assert isinstance(session.last_error, warmrtc.ConnectionLostError)
            assert "reconnect_attempts is 0" in str(session.last_error)
            await session.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        source.close()


def test_state_follows_mute_and_billing_survives_a_reconnect(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    states: list[str] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, on_state=states.append
            )
            with Camera(source):
                await until(lambda: session.billed_seconds >= 2, 15, "two billed seconds")
                assert session.state == "generating"
                session.mute()
                assert session.state == "connected"  # muted: the model is not generating
                billed = session.billed_seconds
                await drop_control(http, emulator_url, session.session_id)
                await until(lambda: session.state == "reconnecting", 10, "reconnecting")
                await until(lambda: session.state == "connected", 20, "reconnected")
                assert session.muted and source.muted
                assert session.billed_seconds >= billed  # not back to 0
                session.unmute()
                await until(lambda: session.state == "generating", 15, "generating again")
                await until(lambda: session.billed_seconds > billed, 15, "billed again")
            assert session.last_error is not None  # why it reconnected, kept
            await session.disconnect()
        assert states[-1] == "disconnected" and states.count("disconnected") == 1
        assert "reconnecting" in states

    try:
        asyncio.run(asyncio.wait_for(run(), 90))
    finally:
        source.close()


def test_toggling_mute_from_threads_ends_as_the_last_call(emulator_url: str) -> None:
    """Four threads toggling for 3 s: the media server must end up seeing the track muted,
    as the app's last call says, and must not be flooded with mute messages."""
    source = warmrtc.VideoSource(WIDTH, HEIGHT)

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, start_muted=True
            )
            stop = time.monotonic() + 3

            def toggle() -> None:
                n = 0
                while time.monotonic() < stop and n < 10_000_000:
                    (session.mute if n % 2 else session.unmute)()
                    n += 1

            threads = [threading.Thread(target=toggle) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                await asyncio.to_thread(t.join, 10)
            session.mute()
            assert session._switch.track_changes <= 3 / 0.05 * 1.5 + 5
            async with asyncio.timeout(10):
                while (await sessions(http, emulator_url, API_KEY))[session.session_id][
                    "muted"
                ] is not True:
                    await asyncio.sleep(0.1)
            await session.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()


def test_connect_respects_its_timeout_when_the_media_server_is_unreachable() -> None:
    # 10.77.0.3 is in the namespace's subnet but nobody answers there: the join hangs.
    emulator = Emulator("--client-livekit-url", "ws://10.77.0.3:7880")
    source = warmrtc.VideoSource(WIDTH, HEIGHT)

    async def run() -> float:
        started = time.monotonic()
        with pytest.raises(warmrtc.ConnectTimeoutError, match="media room join"):
            await warmrtc.connect(source, api_key=API_KEY, base_url=emulator.url, timeout=3)
        return time.monotonic() - started

    try:
        took = asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        source.close()
        emulator.stop()
    assert took < 4.0, f"connect(timeout=3) took {took:.1f} s"


QUIET_EXIT_SCRIPT = """
import asyncio, logging, sys, warmrtc
logging.basicConfig(level=logging.WARNING)
async def main():
    source = warmrtc.VideoSource(64, 48)
    session = await warmrtc.connect(source, api_key=sys.argv[1], base_url=sys.argv[2],
                                    start_muted=True)
    print("connected", session.session_id, flush=True)
    await asyncio.sleep(1)  # the app does its work...
    # ...and returns without disconnect(): asyncio.run() ends the loop
asyncio.run(main())
print("done", flush=True)
"""


def test_an_app_that_returns_without_disconnecting_exits_quietly(emulator_url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", QUIET_EXIT_SCRIPT, API_KEY, emulator_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "connected" in proc.stdout and "done" in proc.stdout
    for noise in (
        "reconnecting",
        "Event loop is closed",
        "Traceback",
        "WARNING",
        "ERROR",
        "Unclosed",
    ):
        assert noise not in proc.stderr, proc.stderr[-3000:]
