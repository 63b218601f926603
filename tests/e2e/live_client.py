"""A client for the link tests' live sessions, run on the client side of a link:

    python live_client.py URL KEY SECONDS

Connects muted, unmutes, prints ``live`` when the first generated frame arrives, keeps the
session live for SECONDS more, then prints one JSON line: each generated frame's arrival time
and each state the session went through (monotonic seconds, the clock the test reads too).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import warmrtc
from warmrtc.local.demo import Camera, moving_pattern


async def main(url: str, key: str, seconds: float) -> None:
    source = warmrtc.VideoSource(320, 240, fps=30)
    camera = Camera(source, moving_pattern(320, 240), fps=30, max_seconds=seconds + 60)
    camera.start()
    states: list[tuple[float, str]] = []
    frames: list[float] = []
    try:
        async with warmrtc.connect(
            source,
            api_key=key,
            base_url=url,
            start_muted=True,
            on_state=lambda state: states.append((time.monotonic(), str(state))),
        ) as session:

            async def collect() -> None:
                async for _ in session.frames():
                    frames.append(time.monotonic())

            reader = asyncio.create_task(collect())
            session.unmute()
            async with asyncio.timeout(30):
                while not frames:
                    await asyncio.sleep(0.02)
            print("live", flush=True)
            await asyncio.sleep(seconds)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        # Shut down as a tidy app does: capture thread stopped and joined, source closed.
        camera.stop.set()
        camera.join(5)
        source.close()
    print(json.dumps({"frames": frames, "states": states}), flush=True)


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2], float(sys.argv[3])), 120))
