"""Glass-to-glass latency at 720p30 on the local stack: p50/p95 of (generated frame shown -
its input frame captured), as the session measures it from the echoed capture stamps.

One live session per emulated model delay; each streams for --seconds and reports the window
of the last 300 frames (10 s at 30 fps), so the first seconds of ramp-up fall out of it.

Run inside the stack: python -m warmrtc stack -- python benchmarks/latency.py
"""

from __future__ import annotations

import argparse
import asyncio

import warmrtc
from figures import Figure, link_facts, publish
from warmrtc.local.demo import Camera, moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT, FPS = 1280, 720, 30
LINK_EXTRA_MS = 45  # behind a link: glass-to-glass p50 <= RTT + 45 ms (model delay 0)


async def measure(base_url: str, api_key: str, seconds: float) -> tuple[warmrtc.Latency, int]:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=FPS)
    camera = Camera(source, moving_pattern(WIDTH, HEIGHT), fps=FPS, max_seconds=seconds + 60)
    frames = 0
    try:
        async with warmrtc.connect(source, api_key=api_key, base_url=base_url) as session:
            camera.start()

            async def count() -> None:
                nonlocal frames
                async for _ in session.frames():
                    frames += 1

            counter = asyncio.create_task(count())
            await asyncio.sleep(seconds)
            counter.cancel()
            latency = session.latency
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()
    if latency is None:
        raise RuntimeError("no latency: the emulator echoed no stamps")
    return latency, frames


async def main(delays: list[int], seconds: float) -> None:
    rows = []
    for delay in delays:
        with LocalService("--model-delay-ms", str(delay)) as (base_url, api_key):
            rows.append((delay, *await measure(base_url, api_key, seconds)))
    print(f"glass-to-glass at {WIDTH}x{HEIGHT}@{FPS}, local stack, {seconds:g} s per session")
    print(f"{'model delay':>11} {'p50 ms':>8} {'p95 ms':>8} {'frames':>7} {'window':>7}")
    for delay, latency, frames in rows:
        print(
            f"{delay:>8} ms {latency.p50_ms:8.1f} {latency.p95_ms:8.1f} {frames:7d} "
            f"{latency.samples:7d}"
        )
    link = link_facts()
    figures = [
        Figure("latency", f"glass-to-glass p50, model delay {d} ms", f"{lat.p50_ms:.1f} ms")
        for d, lat, _frames in rows
        if not (link.shaped and d == 0)
    ]
    zero = next((lat for d, lat, _frames in rows if d == 0), None)
    if link.shaped and zero is not None:
        target = link.rtt_ms + LINK_EXTRA_MS
        figures.insert(
            0,
            Figure(
                "latency",
                "glass-to-glass p50, model delay 0",
                f"{zero.p50_ms:.1f} ms",
                f"<= RTT + {LINK_EXTRA_MS} = {target:g} ms",
                met=zero.p50_ms <= target,
                on_link=True,
            ),
        )
    publish(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--delays", type=int, nargs="+", default=[0, 150])
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    asyncio.run(main(args.delays, args.seconds))
