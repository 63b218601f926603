"""One traced start, in a process of its own, for start_steps.py:

    python start_client.py ours|official|warm BASE_URL API_KEY

``ours``: warmrtc's cold start (connect, capturing from the start, to the first generated frame);
``official``: the same with Decart's official client (run with its own environment's Python);
``warm``: a warmrtc session connected muted, warm for a few seconds, then unmuted (the start
timed is the unmute). Each writes ``bench.start`` and ``bench.first_frame`` marks (and ``warm``
``bench.connected``) to the trace file that ``WARMRTC_TRACE`` names, in the format of
warmrtc._trace, so that they line up with the marks of warmrtc itself, the emulator and its model
workers; livekit's own log lines go to stderr, where start_steps.py reads them as they come.
The camera-like picture is warmrtc's pattern, loaded from its file (the official client's
environment does not have warmrtc), 1280x720 at 30 fps for both clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, FPS = 1280, 720, 30
WARM_SECONDS = 4.0  # as an app waiting for Start: long enough for the encoder to rest


def mark(event: str) -> None:
    """One trace line (warmrtc._trace's format; written here so that the official client's
    environment needs nothing of warmrtc)."""
    line = json.dumps({"t": time.monotonic(), "pid": os.getpid(), "event": event})
    fd = os.open(os.environ["WARMRTC_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


async def ours(base_url: str, api_key: str, warm: bool) -> None:
    import warmrtc
    from warmrtc.local.demo import Camera, moving_pattern

    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=FPS)
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    camera = Camera(source, moving_pattern(WIDTH, HEIGHT), fps=FPS, max_seconds=60)
    camera.start()
    try:
        if not warm:
            mark("bench.start")
        session = await warmrtc.connect(
            source,
            api_key=api_key,
            base_url=base_url,
            start_muted=warm,
            on_frame=lambda _f: loop.call_soon_threadsafe(arrived.set),
        )
        if warm:
            mark("bench.connected")
            await asyncio.sleep(WARM_SECONDS)
            mark("bench.start")
            session.unmute()
        await asyncio.wait_for(arrived.wait(), 20)
        mark("bench.first_frame")
        await session.disconnect()
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()


async def official(base_url: str, api_key: str) -> None:
    # livekit's Python SDK takes its native log into Python, and drops the debug lines unless
    # asked: here they go to stderr, as warmrtc's go there itself.
    os.environ["LIVEKIT_RTC_DEBUG"] = "1"
    handler = logging.StreamHandler(sys.stderr)
    livekit_log = logging.getLogger("livekit")
    livekit_log.addHandler(handler)
    livekit_log.setLevel(logging.DEBUG)
    sys.path.insert(0, str(HERE))
    import official_client  # the official client's run, as cold_start.py times it

    elapsed = await official_client.one_run(
        base_url, api_key, WIDTH, HEIGHT, FPS, on_start=lambda: mark("bench.start")
    )
    mark("bench.first_frame")
    print(f"official: {elapsed * 1000:.0f} ms", file=sys.stderr, flush=True)


def main() -> None:
    which, base_url, api_key = sys.argv[1:4]
    if which == "official":
        asyncio.run(official(base_url, api_key))
    else:
        asyncio.run(ours(base_url, api_key, warm=which == "warm"))


if __name__ == "__main__":
    main()
