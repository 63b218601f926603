"""Decart's official Python client (the `decart` package), timed the way cold_start.py times ours.

Runs in its own environment (the official client's dependencies are its own): cold_start.py
starts it once and asks for one run per line on stdin (``run``); each run prints one line, the
milliseconds from ``RealtimeClient.connect()`` to the first generated frame, or ``error ...``.
The picture is warmrtc's camera-like pattern, loaded from its file (warmrtc itself is not
installed here), fed as RGB24 at the same size and frame rate as ours.

Usage (cold_start.py does this): python official_client.py BASE_URL API_KEY WIDTH HEIGHT FPS
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from decart import models
from decart.realtime.client import RealtimeClient
from decart.realtime.types import RealtimeConnectOptions
from livekit import rtc

PATTERN_FILE = Path(__file__).resolve().parents[1] / "python" / "warmrtc" / "local" / "pattern.py"
FIRST_FRAME_TIMEOUT = 20.0


def _load_pattern() -> Any:
    spec = importlib.util.spec_from_file_location("warmrtc_pattern", PATTERN_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.moving_pattern


async def _feed(source: rtc.VideoSource, width: int, height: int, fps: int) -> None:
    """The app's camera loop, as the official examples write it: capture, then sleep."""
    for frame in _load_pattern()(width, height):
        video = rtc.VideoFrame(width, height, rtc.VideoBufferType.RGB24, frame.tobytes())
        source.capture_frame(video)
        await asyncio.sleep(1 / fps)


async def one_run(
    base_url: str,
    api_key: str,
    width: int,
    height: int,
    fps: int,
    on_start: Callable[[], None] = lambda: None,
) -> float:
    loop = asyncio.get_running_loop()
    first = loop.create_future()
    readers: list[asyncio.Task[None]] = []

    async def read(track: rtc.Track) -> None:
        stream = rtc.VideoStream(track)
        try:
            async for _event in stream:
                if not first.done():
                    first.set_result(time.monotonic())
        finally:
            await stream.aclose()

    def on_remote_stream(track: rtc.Track, *_args: object) -> None:
        readers.append(loop.create_task(read(track)))

    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    feeder = loop.create_task(_feed(source, width, height, fps))
    client = None
    try:
        start = time.monotonic()
        on_start()
        client = await RealtimeClient.connect(
            base_url=base_url,
            api_key=api_key,
            local_track=track,
            options=RealtimeConnectOptions(
                model=models.realtime("lucy-2.6"), on_remote_stream=on_remote_stream
            ),
        )
        arrived = await asyncio.wait_for(first, FIRST_FRAME_TIMEOUT)
        return arrived - start
    finally:
        feeder.cancel()
        for task in readers:
            task.cancel()
        await asyncio.gather(feeder, *readers, return_exceptions=True)
        if client is not None:
            await client.disconnect()
        await source.aclose()


async def main() -> None:
    base_url, api_key = sys.argv[1], sys.argv[2]
    width, height, fps = (int(v) for v in sys.argv[3:6])
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().strip():
        if line != "run":
            print(f"error unknown command {line!r}", flush=True)
            continue
        try:
            seconds = await one_run(base_url, api_key, width, height, fps)
            print(f"{seconds * 1000:.1f}", flush=True)
        except Exception as e:  # reported to the parent, which counts it as a failed run
            print(f"error {type(e).__name__}: {e}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
