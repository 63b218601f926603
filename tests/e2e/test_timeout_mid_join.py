"""A blocking connect, a blocking pool's close and a blocking watch that give up while their room
join is still under way: each returns within its bound, the join ends in the background and its
room is left, nothing is printed, and the process lives on.

Before, the blocking API closed its private loop under the join: livekit printed "error putting
to queue: Event loop is closed" for each event after it, and about 17 s later its FFI, still
waiting to be told the SDK was ready for the room's events, declared a panic and terminated the
process. Here the signalling relay holds the answer to every join back for a few seconds, as a
slow link would, so each join finishes after its caller gave up on it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

from conftest import API_KEY, Emulator
from livekit import api
from signal_proxy import SignalProxy

HOLD = 3.0  # seconds the relay holds each join's answer back
LIVE_ON_S = 24  # past the FFI's wait for the ready message (about 16 s after the join)

CHILD = textwrap.dedent(
    """
    import sys, threading, time
    import warmrtc

    base_url, api_key, live_on = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def timed(what, call):
        started = time.monotonic()
        try:
            call()
            print(f"{what}: done in {time.monotonic() - started:.2f} s", flush=True)
        except warmrtc.ConnectTimeoutError as e:
            print(f"{what}: timed out in {time.monotonic() - started:.2f} s ({e})", flush=True)

    # A session, connected in time (its join is slow, not stuck): a room to watch.
    source = warmrtc.VideoSource(64, 64)
    session = warmrtc.connect_blocking(
        source, api_key=api_key, base_url=base_url, start_muted=True, timeout=30
    )
    room = session.room_name

    timed("connect", lambda: warmrtc.connect_blocking(
        warmrtc.VideoSource(64, 64), api_key=api_key, base_url=base_url, timeout=2))
    timed("watch", lambda: warmrtc.watch_blocking(
        room, api_key=api_key, base_url=base_url, timeout=2))
    pool = warmrtc.BlockingWarmPool(1, api_key=api_key, base_url=base_url, width=64, height=64)
    time.sleep(1.0)  # its warm-up is joining now
    timed("pool close", pool.close)
    session.disconnect()
    time.sleep(live_on)
    loops = [t.name for t in threading.enumerate() if t.name == "warmrtc-loop"]
    print(f"loop threads left: {len(loops)}", flush=True)
    print("alive", flush=True)
    """
)


def test_giving_up_mid_join_leaves_the_room_and_the_process_lives(livekit_url: str) -> None:
    async def body() -> tuple[int, str, str, list[str]]:
        async with SignalProxy(livekit_url, hold_join=HOLD) as proxy:
            emulator = Emulator("--client-livekit-url", proxy.url)
            try:
                child = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-c",
                    CHILD,
                    emulator.url,
                    API_KEY,
                    str(LIVE_ON_S),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(child.communicate(), 150)
                left = await participants(livekit_url)
            finally:
                emulator.stop()
        return child.returncode or 0, out.decode(), err.decode(), left

    returncode, out, err, left = asyncio.run(body())
    print(out)
    assert returncode == 0 and "alive" in out, err[-3000:]
    for what in ("connect", "watch"):
        line = next(x for x in out.splitlines() if x.startswith(f"{what}:"))
        assert "timed out in" in line, line
        assert float(line.split(" in ")[1].split()[0]) < 2.4, line  # within its timeout
    assert "pool close: done" in out
    assert "loop threads left: 0" in out  # each loop ended once its join and leave had
    for noise in ("Event loop is closed", "Panic", "Task was destroyed", "Traceback"):
        assert noise not in err, err[-3000:]
    assert left == [], f"participants still in their rooms: {left}"


async def participants(livekit_url: str) -> list[str]:
    """The clients and viewers still in any room of the server."""
    http = livekit_url.replace("ws://", "http://", 1)
    key, secret = os.environ["WARMRTC_LIVEKIT_KEY"], os.environ["WARMRTC_LIVEKIT_SECRET"]
    async with api.LiveKitAPI(http, key, secret) as server:
        rooms = (await server.room.list_rooms(api.ListRoomsRequest())).rooms
        found: list[str] = []
        for room in rooms:
            listed = await server.room.list_participants(
                api.ListParticipantsRequest(room=room.name)
            )
            found += [
                p.identity
                for p in listed.participants
                if p.identity.startswith(("client-", "viewer-"))
            ]
        return found
