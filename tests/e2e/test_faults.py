"""Faults in the stack: the media server dies mid-session and comes back."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from conftest import API_KEY
from control import sessions
from test_session import HEIGHT, WIDTH, Camera

import warmrtc

# The restarted server outlives the test (the stack's teardown stops it): keep its handle.
_restarted: list[subprocess.Popen[bytes]] = []


def restart_livekit_server() -> None:
    """Starts livekit-server again as the stack script did, and waits until it accepts."""
    pidfile = Path(os.environ["WARMRTC_LIVEKIT_PIDFILE"])
    with open(pidfile.with_name("server-restarted.log"), "wb") as log:
        proc = subprocess.Popen(
            shlex.split(os.environ["WARMRTC_LIVEKIT_CMD"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _restarted.append(proc)
    pidfile.write_text(str(proc.pid))  # so the stack's teardown stops this one
    host = os.environ["WARMRTC_NETNS_HOST"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, 7880), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("livekit-server did not come back")


def test_livekit_server_killed_mid_session_recovers_still_muted(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")
    states: list[str] = []

    async def wait_state(session: warmrtc.Session, wanted: str, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while session.state != wanted:
                await asyncio.sleep(0.05)

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source,
                api_key=API_KEY,
                base_url=emulator_url,
                start_muted=True,
                on_state=states.append,
                reconnect_attempts=8,
                timeout=10,
            )
            with Camera(source):
                pid = int(Path(os.environ["WARMRTC_LIVEKIT_PIDFILE"]).read_text())
                os.kill(pid, 9)
                await wait_state(session, "reconnecting", 30)
                await asyncio.to_thread(restart_livekit_server)
                await wait_state(session, "connected", 60)
                assert session.muted and source.muted
                await asyncio.sleep(2)
                report = (await sessions(http, emulator_url))[session.session_id]
                # Recovered either by LiveKit resuming the same session or by our re-join:
                # either way the (re)published track is muted and nothing reached the model.
                assert report["frames_received"] == 0 and report["muted"] is True, report

                got: list[np.ndarray] = []

                async def first_frame() -> None:
                    async for frame in session.frames():
                        got.append(frame)
                        return

                session.unmute()
                await asyncio.wait_for(first_frame(), 15)
                assert got
            await session.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 150))
    finally:
        source.close()
    assert "reconnecting" in states and states[-1] == "disconnected"


def test_api_key_never_in_errors_logs_or_reprs(
    emulator_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-do-not-leak-" + os.urandom(4).hex()
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    caplog.set_level(logging.DEBUG)

    async def run() -> list[str]:
        texts = []
        for base in (emulator_url, emulator_url + "/no/such/path"):
            try:
                await warmrtc.connect(source, api_key=secret, base_url=base, timeout=10)
            except warmrtc.WarmrtcError as e:
                texts.append(f"{e!s} {e!r}")
        session = await warmrtc.connect(source, api_key=API_KEY, base_url=emulator_url)
        texts.append(repr(session))
        await session.disconnect()
        return texts

    texts = asyncio.run(asyncio.wait_for(run(), 60))
    source.close()
    assert len(texts) == 3
    assert any("api_key=***" in t for t in texts), texts  # the 404 names the URL, redacted
    for text in [*texts, caplog.text]:
        assert secret not in text and API_KEY not in text
