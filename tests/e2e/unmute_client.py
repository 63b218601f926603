"""A client that goes live and pauses a few times, for the tests of what an unmute sends:

    python unmute_client.py URL KEY CYCLES WARM LIVE PAUSED

Connects muted at 640x360 and stays warm WARM seconds, then CYCLES times: unmutes, watches its
published track's counters every few milliseconds until the first frame after the unmute is
encoded, waits for a generated frame, stays live LIVE seconds and mutes for PAUSED seconds.
Prints one JSON line: the ms from connect()'s return until the muted track's encoder rested
(encoded a frame of the rest size) while warm (None: not within WARM), and for each unmute, how
many keyframes were encoded and keyframe requests (PLI) received by the time its first frame
was encoded (counted from the unmute), and the ms to that frame and to the first generated
frame. The camera captures from before connect(), as an app's often does.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import warmrtc
from warmrtc._media.keepalive import encoded_size, rest_size
from warmrtc.local.demo import Camera, moving_pattern

WIDTH, HEIGHT = 640, 360


def counters(stats: list[Any]) -> tuple[int, int, int]:
    for s in stats:
        if s.HasField("outbound_rtp"):
            out = s.outbound_rtp.outbound
            return out.frames_encoded, out.key_frames_encoded, out.pli_count
    return 0, 0, 0


async def main(url: str, key: str, cycles: int, warm: float, live: float, paused: float) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, fps=30)
    camera = Camera(source, moving_pattern(WIDTH, HEIGHT), fps=30, max_seconds=120)
    camera.start()
    for _ in range(500):  # until a frame went through: capturing before connect(), for sure
        if source.stats["converted"]:
            break
        await asyncio.sleep(0.01)
    assert source.stats["converted"], "the camera captured nothing in 5 s"
    unmutes: list[dict[str, float]] = []
    rested_ms: float | None = None
    try:
        async with warmrtc.connect(source, api_key=key, base_url=url, start_muted=True) as s:
            generated = asyncio.Event()

            async def collect() -> None:
                async for _ in s.frames():
                    generated.set()

            reader = asyncio.create_task(collect())
            connected = time.monotonic()
            track = s._link.media._track  # type: ignore[union-attr]
            assert track is not None
            while (waited := time.monotonic() - connected) < warm:
                if rested_ms is None and encoded_size(await track.get_stats()) == rest_size(
                    WIDTH, HEIGHT
                ):
                    rested_ms = waited * 1000
                await asyncio.sleep(0.01)
            for _ in range(cycles):
                encoded, keys, plis = counters(await track.get_stats())
                generated.clear()
                start = time.monotonic()
                print(f"unmute {len(unmutes) + 1}", file=sys.stderr, flush=True)
                s.unmute()
                async with asyncio.timeout(10):
                    while (now := counters(await track.get_stats()))[0] == encoded:
                        await asyncio.sleep(0.003)
                first_encoded = time.monotonic() - start
                async with asyncio.timeout(20):
                    await generated.wait()
                unmutes.append(
                    {
                        "key_frames": now[1] - keys,
                        "plis": now[2] - plis,
                        "first_encoded_ms": first_encoded * 1000,
                        "first_generated_ms": (time.monotonic() - start) * 1000,
                    }
                )
                await asyncio.sleep(live)
                print(f"mute {len(unmutes)}", file=sys.stderr, flush=True)
                s.mute()
                await asyncio.sleep(paused)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    finally:
        camera.stop.set()
        camera.join(5)
        source.close()
    print(json.dumps({"rested_ms": rested_ms, "unmutes": unmutes}), flush=True)


if __name__ == "__main__":
    url, key, cycles, *seconds = sys.argv[1:]
    warm, live, paused = (float(x) for x in seconds)
    asyncio.run(asyncio.wait_for(main(url, key, int(cycles), warm, live, paused), 120))
