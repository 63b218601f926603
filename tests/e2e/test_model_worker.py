"""Each session's model runs in a worker process of the emulator's: one that dies fails only
its own session (whose client reconnects to a new one), and one whose session ended is gone."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time

import aiohttp
from conftest import API_KEY
from control import sessions
from test_session import HEIGHT, WIDTH, Camera

import warmrtc
from warmrtc.events import Event, ReconnectEvent


async def _until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} within {seconds:g} s"
        await asyncio.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except (FileNotFoundError, ProcessLookupError):  # gone while being read
        return False


def test_a_killed_model_worker_fails_only_its_session_which_reconnects(emulator_url: str) -> None:
    doomed_source, other_source = (warmrtc.VideoSource(WIDTH, HEIGHT) for _ in range(2))
    other_frames: list[float] = []
    events: list[Event] = []
    figures: dict[str, float] = {}

    async def run() -> None:
        doomed = await warmrtc.connect(
            doomed_source, api_key=API_KEY, base_url=emulator_url, on_event=events.append
        )
        other = await warmrtc.connect(
            other_source,
            api_key=API_KEY,
            base_url=emulator_url,
            on_frame=lambda _f: other_frames.append(time.monotonic()),
        )
        async with aiohttp.ClientSession() as http:
            with Camera(doomed_source), Camera(other_source):
                both = (doomed, other)
                await _until(lambda: all(s.state == "generating" for s in both), 30, "generating")
                reports = await sessions(http, emulator_url, API_KEY)
                doomed_pid = reports[doomed.session_id]["model_pid"]
                other_pid = reports[other.session_id]["model_pid"]
                assert doomed_pid and other_pid and doomed_pid != other_pid
                os.kill(doomed_pid, signal.SIGKILL)  # as a native abort in the model would
                killed = time.monotonic()
                await _until(
                    lambda: any(isinstance(e, ReconnectEvent) for e in events), 15, "a reconnect"
                )
                await _until(lambda: doomed.state == "generating", 30, "generating again")
                figures["recovered_after"] = time.monotonic() - killed
                await asyncio.sleep(1.5)
                assert other.state == "generating"
                seen = [t for t in other_frames if t > killed] + [time.monotonic()]
                figures["other_frames"] = len(seen) - 1
                stalls = [b - a for a, b in itertools.pairwise([killed, *seen])]
                figures["other_longest_gap"] = max(stalls)
            reports = await sessions(http, emulator_url, API_KEY)
            new_pid = reports[doomed.session_id]["model_pid"]
            assert new_pid and new_pid != doomed_pid and not _exists(doomed_pid)
            await other.disconnect()
            await doomed.disconnect()
            # A worker goes with its session: its room left, it exits (bounded).
            await _until(lambda: not _exists(other_pid), 20, "the ended session's worker exited")

    try:
        asyncio.run(asyncio.wait_for(run(), 90))
    finally:
        doomed_source.close()
        other_source.close()
    print(
        f"\ngenerating again {figures['recovered_after']:.2f} s after its worker was killed; "
        f"the other session meanwhile: {figures['other_frames']:.0f} frames, longest gap "
        f"{figures['other_longest_gap'] * 1000:.0f} ms"
    )
    # The other session went on (at 30 fps; a loaded machine stretches gaps, not to seconds).
    assert figures["other_frames"] >= 15 and figures["other_longest_gap"] < 2.0
