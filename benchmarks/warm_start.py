"""Cold start vs warm start on the local stack, median of N runs each.

Cold: connect() -> first generated frame, capturing from the start.
Warm: a session connected with start_muted=True; unmute() -> first generated frame.

Run inside the stack: python -m warmrtc stack -- python benchmarks/warm_start.py

``--trace`` also prints, for each warm start, every step from unmute to the first generated
frame in milliseconds (client, emulator and its model worker write to one trace file; see
warmrtc._trace): where a slow start lost its time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time

import numpy as np

import warmrtc
from figures import Figure, publish
from warmrtc import _trace as trace
from warmrtc.local.demo import Camera, moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT = 640, 360
WARM_P50_MS, WARM_MAX_MS = 80, 150  # issue #15


class TracedSource:
    """What the camera captures into: the source, marking the first frame it takes live."""

    def __init__(self, source: warmrtc.VideoSource) -> None:
        self.source = source
        self.armed = False  # set just before unmute()

    def capture(self, frame: np.ndarray) -> bool:
        taken = self.source.capture(frame)
        if taken and self.armed:
            self.armed = False
            trace.mark("client.capture")
        return taken


def watch(session: warmrtc.Session) -> list[asyncio.Task[None]]:
    """Tracing: the counters of the input track."""
    media = session._link.media
    if media is None or media._track is None:
        return []
    return [asyncio.create_task(trace.watch_stats(media._track.get_stats, "client.in"))]


def report(path: str, run: int) -> None:
    """One warm start's steps, in ms from unmute(), in the order they happened."""
    events = sorted(trace.read(path), key=lambda e: float(e["t"]))  # type: ignore[arg-type]
    t0 = next((float(e["t"]) for e in events if e["event"] == "client.unmute"), None)  # type: ignore[arg-type]
    if t0 is None:
        return
    end = next((float(e["t"]) for e in events if e["event"] == "client.output_frame"), None)  # type: ignore[arg-type]
    steps = []
    for e in events:
        t = float(e["t"])  # type: ignore[arg-type]
        if t >= t0 and (end is None or t <= end):
            value = f"={e['value']}" if "value" in e else ""
            steps.append(f"{e['event']}{value} {(t - t0) * 1000:.0f}")
    print(f"  warm {run}: " + ", ".join(steps))


async def first_frame_after(
    start_muted: bool, base_url: str, api_key: str, idle: float, trace_path: str | None = None
) -> float:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    traced = TracedSource(source)
    # Camera-like content. Random noise would make the first keyframe huge, and its transfer
    # at the starting bandwidth estimate (seconds) would dominate both starts.
    camera = Camera(traced, moving_pattern(WIDTH, HEIGHT), fps=60, max_seconds=60)  # type: ignore[arg-type]
    camera.start()
    watchers: list[asyncio.Task[None]] = []
    try:
        start = time.monotonic()
        session = await warmrtc.connect(
            source,
            api_key=api_key,
            base_url=base_url,
            start_muted=start_muted,
            on_frame=lambda _f: loop.call_soon_threadsafe(arrived.set),
        )
        if start_muted:
            await asyncio.sleep(idle)  # warm and idle, as an app waiting for Start
            if trace_path is not None:
                open(trace_path, "w").close()  # this start's steps alone
                watchers = watch(session)
                await asyncio.sleep(0.02)  # each watcher's first reading: the baseline
                traced.armed = True
            start = time.monotonic()
            session.unmute()
        await asyncio.wait_for(arrived.wait(), 20)
        elapsed = time.monotonic() - start
        await session.disconnect()
        return elapsed
    finally:
        for task in watchers:
            task.cancel()
        camera.stop.set()
        camera.join(2)
        source.close()


async def main(runs: int, idle: float, traced: bool) -> None:
    trace_path = None
    if traced:  # before the emulator starts: it and its workers write to the same file
        trace_path = os.path.join(tempfile.mkdtemp(prefix="warmrtc-trace-"), "trace.jsonl")
        os.environ[trace.TRACE_ENV] = trace_path
    with LocalService() as (base_url, api_key):
        cold, warm = [], []
        for run in range(runs):  # interleaved, so drift on a shared machine hits both alike
            cold.append(await first_frame_after(False, base_url, api_key, idle))
            warm.append(await first_frame_after(True, base_url, api_key, idle, trace_path))
            if trace_path is not None:
                print(f"  warm {run}: {warm[-1] * 1000:.0f} ms")
                report(trace_path, run)
    c, w = statistics.median(cold), statistics.median(warm)
    print(
        f"{'start':6} {'median ms':>10} {'min ms':>8} {'max ms':>8}   "
        f"(n = {runs} each; warm sessions idle {idle:g} s before unmute)"
    )
    for name, values in (("cold", cold), ("warm", warm)):
        print(
            f"{name:6} {statistics.median(values) * 1000:10.0f} {min(values) * 1000:8.0f} "
            f"{max(values) * 1000:8.0f}"
        )
    print(f"warm / cold = {w / c:.3f}")
    ms = 1000
    reference = f"cold p50 {c * ms:.0f} ms"
    publish(
        [
            Figure(
                "warm_start",
                "warm start p50 (unmute -> first frame)",
                f"{w * ms:.0f} ms",
                f"<= {WARM_P50_MS} ms",
                reference,
                w * ms <= WARM_P50_MS,
            ),
            Figure(
                "warm_start",
                f"warm start max of {runs}",
                f"{max(warm) * ms:.0f} ms",
                f"<= {WARM_MAX_MS} ms",
                reference,
                max(warm) * ms <= WARM_MAX_MS,
            ),
            Figure(
                "warm_start", "warm / cold", f"{w / c:.3f}", "<= 0.25", reference, w / c <= 0.25
            ),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds warm before unmute")
    parser.add_argument("--trace", action="store_true", help="print each warm start's steps")
    args = parser.parse_args()
    asyncio.run(main(max(args.runs, 12), args.idle, args.trace))
