"""Faults in the stack: the media server dies mid-session and comes back."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from conftest import API_KEY
from control import key_header, sessions
from livekit import api
from test_session import HEIGHT, WIDTH, Camera

import warmrtc


def livekit_api() -> api.LiveKitAPI:
    """The media server's own API, as the stack configures it."""
    url = os.environ["WARMRTC_LIVEKIT_URL"].replace("ws://", "http://", 1)
    return api.LiveKitAPI(
        url, os.environ["WARMRTC_LIVEKIT_KEY"], os.environ["WARMRTC_LIVEKIT_SECRET"]
    )


def restart_livekit_server(restarted: list[subprocess.Popen[bytes]]) -> None:
    """Starts livekit-server again as the stack script did, and waits until it accepts."""
    pidfile = Path(os.environ["WARMRTC_LIVEKIT_PIDFILE"])
    with open(pidfile.with_name("server-restarted.log"), "wb") as log:
        proc = subprocess.Popen(
            shlex.split(os.environ["WARMRTC_LIVEKIT_CMD"]),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    restarted.append(proc)
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


def test_livekit_server_killed_mid_session_recovers_still_muted(
    emulator_url: str, restarted_servers: list[subprocess.Popen[bytes]]
) -> None:
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
                await asyncio.to_thread(restart_livekit_server, restarted_servers)
                await wait_state(session, "connected", 60)
                assert session.muted and source.muted
                await asyncio.sleep(2)
                # The model's worker joins the new room in the background: until it sees the
                # client's track, the emulator does not know its mute state (None).
                async with asyncio.timeout(20):
                    while True:
                        report = (await sessions(http, emulator_url, API_KEY))[session.session_id]
                        if report["muted"] is not None:
                            break
                        await asyncio.sleep(0.2)
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
    assert any("HTTP 404" in t for t in texts), texts  # the refused handshake, named
    for text in [*texts, caplog.text]:
        assert secret not in text and API_KEY not in text


def test_control_channel_dropped_fails_the_pending_prompt_fast_and_reconnects(
    emulator_url: str,
) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")
    states: list[str] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source,
                api_key=API_KEY,
                base_url=emulator_url,
                prompt="first",
                start_muted=True,
                on_state=states.append,
                timeout=10,
            )
            dropped = session.session_id
            drop = f"{emulator_url.replace('ws://', 'http://')}/sessions/{dropped}/drop?on=prompt"
            async with http.post(drop, headers=key_header(API_KEY)) as response:
                assert response.status == 200
            started = time.monotonic()
            with pytest.raises(warmrtc.ConnectionLostError, match="control channel"):
                await session.set_prompt("second", timeout=15)
            failed_after = time.monotonic() - started
            assert failed_after < 5, f"the pending prompt waited {failed_after:.1f} s"
            async with asyncio.timeout(30):
                while session.state != "connected" or session.session_id == dropped:
                    await asyncio.sleep(0.05)
            assert session.muted and source.muted
            await session.set_prompt("third")  # the new control channel works
            seen = await sessions(http, emulator_url, API_KEY)
            assert seen[dropped]["state"] == "ended"
            assert seen[session.session_id]["frames_received"] == 0
            await session.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 90))
    finally:
        source.close()
    assert states[-3:] == ["reconnecting", "connected", "disconnected"], states


def test_disconnect_racing_capture_and_unmute_from_threads(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    stop = threading.Event()
    errors: list[BaseException] = []
    captured = [0] * 4

    def capture(slot: int) -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            captured[slot] += source.capture(frame)

    def toggle(session: warmrtc.Session) -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                session.unmute()
                session.mute()
            except warmrtc.SessionClosedError:
                return  # what a closed session says
            except BaseException as e:
                errors.append(e)
                return

    async def run() -> None:
        session = await warmrtc.connect(source, api_key=API_KEY, base_url=emulator_url)
        threads = [threading.Thread(target=capture, args=(i,)) for i in range(4)]
        threads += [threading.Thread(target=toggle, args=(session,)) for _ in range(2)]
        for t in threads:
            t.start()
        await asyncio.sleep(1)
        await asyncio.wait_for(session.disconnect(), 15)
        assert session.state == "disconnected" and source.muted
        before = list(captured)
        await asyncio.sleep(0.3)
        stop.set()
        for t in threads:
            await asyncio.to_thread(t.join, 10)
        assert not any(t.is_alive() for t in threads), "a thread hung"
        assert captured == before, "frames were handed on after disconnect"

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        stop.set()
        source.close()
    assert not errors, errors
    assert sum(captured) > 0


def test_cancelling_connect_or_disconnect_at_any_point_leaves_nothing_open(
    emulator_url: str,
) -> None:
    """A pool closing or a timeout cancels connects and disconnects wherever they are; a
    second cancel may land in the cleanup itself. No connection may be left open."""

    async def attempt(delay: float) -> None:
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")

        async def connecting() -> warmrtc.Session:
            return await warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, start_muted=True
            )

        task = asyncio.create_task(connecting())
        await asyncio.sleep(delay)
        for _ in range(2):  # the second cancel lands in the cleanup the first started
            task.cancel()
            await asyncio.sleep(0.005)
        try:
            session: warmrtc.Session | None = await task
        except asyncio.CancelledError:
            session = None
        if session is not None:
            closing = asyncio.create_task(session.disconnect())
            await asyncio.sleep(0.005)
            closing.cancel()
            await session.disconnect()  # waits for the shutdown the cancelled call began
            assert session.state == "disconnected" and source.muted
        source.close()

    async def clients_in_rooms(lk: api.LiveKitAPI, rooms: set[str]) -> list[str]:
        found = []
        for room in rooms:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
            found += [p.identity for p in listed.participants if p.identity.startswith("client-")]
        return found

    async def room_names(lk: api.LiveKitAPI) -> set[str]:
        return {r.name for r in (await lk.room.list_rooms(api.ListRoomsRequest())).rooms}

    async def run() -> None:
        async with livekit_api() as lk:
            before = await room_names(lk)
            for delay in [0, 0.002, 0.005] + [i * 0.02 for i in range(1, 25)] + [1.0, 2.0]:
                await attempt(delay)
            rooms = await room_names(lk)
            # A join or publish called off half-way must not leave its participant behind: a
            # leaked native join stays for good. An orderly leave is gone at once; one that
            # races the session's first moments (negotiation, the end of the keepalive) may
            # linger until livekit-server's own timeout, about 20 s.
            async with asyncio.timeout(45):
                while left := await clients_in_rooms(lk, rooms - before):
                    await asyncio.sleep(0.2)
            assert not left

    asyncio.run(asyncio.wait_for(run(), 90))
    gc.collect()  # an unclosed aiohttp session warns here, and warnings are errors


EXIT_SCRIPT = """
import os, sys, threading, warmrtc
from warmrtc.local.service import LocalService
service = LocalService()
print("emulator", service.pid, flush=True)
session = warmrtc.connect_blocking(
    warmrtc.VideoSource(64, 48), api_key=service.api_key, base_url=service.base_url,
    start_muted=True)
pool = warmrtc.BlockingWarmPool(2, width=64, height=48, api_key=service.api_key,
                                base_url=service.base_url)
pool.wait_warm(30)
print("ready", session.session_id, flush=True)
if sys.argv[1] == "kill":
    os.kill(os.getpid(), 9)
# A normal exit with everything still open.
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_process_exit_with_open_sessions_leaves_nothing_behind(how: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", EXIT_SCRIPT, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the process did not exit with open sessions:\n{out}\n{err[-2000:]}")
    assert "ready" in out, err[-2000:]
    assert proc.returncode == (-9 if how == "kill" else 0), err[-2000:]
    emulator = int(out.split("emulator ")[1].split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(emulator):
        time.sleep(0.1)
    assert not _alive(emulator), "the emulator outlived the app"
    # Nothing else from its process group either, once the model workers have left their rooms
    # (each within its own bound, see warmrtc.emulator.worker).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (survivors := _group(proc.pid)):
        time.sleep(0.2)
    assert not survivors, survivors


def _group(pgid: int) -> list[int]:
    """The live processes of a process group."""
    listed = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout
    return [pid for pid in map(int, listed.split()) if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes; its parent (the test's child) reaps it or died.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
