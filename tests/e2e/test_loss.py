"""A live session over a lossy link: the client behind a link of the test's own (the
client_link fixture: a namespace joined to the stack's by the local stack's delay line), which
drops 5 % of packets at random each way (media, signalling and control alike).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import API_KEY

from warmrtc.local.link import ClientLink

SECONDS = 8

CLIENT_SCRIPT = """
import asyncio, json, sys, time, warmrtc
from warmrtc.local.demo import Camera, moving_pattern

async def main(url, key, seconds):
    source = warmrtc.VideoSource(320, 240, fps=30)
    camera = Camera(source, moving_pattern(320, 240), fps=30, max_seconds=seconds + 40)
    camera.start()
    async with warmrtc.connect(source, api_key=key, base_url=url, start_muted=True) as session:
        times = []
        async def collect():
            async for _ in session.frames():
                times.append(time.monotonic())
        reader = asyncio.create_task(collect())
        session.unmute()
        async with asyncio.timeout(30):
            while not times:
                await asyncio.sleep(0.05)
        await asyncio.sleep(seconds)
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # Shut down as a tidy app does: capture thread stopped and joined, source closed.
    camera.stop.set()
    camera.join(5)
    source.close()
    window = [t for t in times if t >= times[0] + 1]  # past the first second's ramp-up
    print(json.dumps({"fps": len(window) / (seconds - 1), "frames": len(times)}))

asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], float(sys.argv[3])), 90))
"""


def live_fps(link: ClientLink, emulator_url: str) -> dict:
    proc = subprocess.run(
        link.command([sys.executable, "-c", CLIENT_SCRIPT, emulator_url, API_KEY, str(SECONDS)]),
        capture_output=True,
        text=True,
        timeout=120,
        env={**link.environment(), "PYTHONUNBUFFERED": "1"},
    )
    assert proc.returncode == 0, f"stdout: {proc.stdout!r}\nstderr: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.link("lan")
def test_a_live_session_keeps_delivering_frames_at_5_percent_loss(
    emulator_url: str, client_link: ClientLink
) -> None:
    clean = live_fps(client_link, emulator_url)
    client_link.control.set("lan,loss=0.05")
    lossy = live_fps(client_link, emulator_url)
    stats = client_link.control.stats()
    dropped = stats.up.lost + stats.down.lost
    print(
        f"generated frames/s over the link: no loss {clean['fps']:.1f}, "
        f"5% loss each way {lossy['fps']:.1f} ({dropped} packets dropped)"
    )
    assert clean["fps"] > 10, clean
    assert dropped > 0, "the link dropped nothing"
    # Keeps delivering. The rate varies run to run (a lost keyframe packet costs a freeze
    # until the next keyframe), so the bound is loose: a stalled stream fails it.
    assert lossy["fps"] > 5, (clean, lossy)
