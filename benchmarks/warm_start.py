"""Cold start vs warm start on the local stack, median of N runs each.

Cold: connect() -> first generated frame, capturing from the start.
Warm: a session connected with start_muted=True; unmute() -> first generated frame.

Run inside the stack: python -m warmrtc stack -- python benchmarks/warm_start.py

``--rtts 0 50 100`` (behind a link: ``warmrtc stack --link broadband -- ...``) measures warm
starts only, at each of those round trips in turn, run after run: the link is reshaped before
each start (its other settings, e.g. loss, stay), so the figures at each RTT come from one run
on the same machine, and their differences are the link's share.

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
from figures import Figure, link_facts, publish
from warmrtc import _trace as trace
from warmrtc.local.demo import Camera, moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT = 640, 360
WARM_P50_MS, WARM_MAX_MS = 80, 150  # issue #15
# Behind a link of round trip RTT (the floor is one round trip: input up, output down).
LINK_P50_EXTRA_MS, LINK_MAX_RTTS, LINK_MAX_EXTRA_MS = 40, 2, 80


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
                traced.armed = True
            start = time.monotonic()
            session.unmute()
        await asyncio.wait_for(arrived.wait(), 20)
        elapsed = time.monotonic() - start
        await session.disconnect()
        return elapsed
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()


async def by_rtt(runs: int, idle: float, rtts: list[float]) -> None:
    """Warm starts at each round trip in turn (the link reshaped before each)."""
    from warmrtc.local import linkspec
    from warmrtc.local.link import Link

    link = Link.from_env()
    base = link.spec()
    warm: dict[float, list[float]] = {rtt: [] for rtt in rtts}
    try:
        with LocalService() as (base_url, api_key):
            for run in range(runs):
                order = rtts[run % len(rtts) :] + rtts[: run % len(rtts)]
                for rtt in order:
                    link.set(linkspec.with_overrides(base, rtt=rtt))
                    warm[rtt].append(await first_frame_after(True, base_url, api_key, idle))
    finally:
        link.set(base)
    ms = 1000
    floor = statistics.median(warm[rtts[0]]) * ms
    print(f"warm start (unmute -> first frame), ms, n = {runs} each, interleaved, {base.name}")
    beyond = f"p50 - p50 at {rtts[0]:g}"
    print(f"{'RTT':>5} {'p50':>6} {'max':>6} {'p50 - RTT':>10} {beyond:>16}")
    figures = []
    for rtt in rtts:
        p50, top = statistics.median(warm[rtt]) * ms, max(warm[rtt]) * ms
        print(f"{rtt:5g} {p50:6.0f} {top:6.0f} {p50 - rtt:10.0f} {p50 - floor:16.0f}")
        p50_target, max_target = rtt + LINK_P50_EXTRA_MS, LINK_MAX_RTTS * rtt + LINK_MAX_EXTRA_MS
        reference = f"p50 at RTT {rtts[0]:g}: {floor:.0f} ms"
        figures += [
            Figure(
                "warm_start",
                f"warm start p50 at RTT {rtt:g}",
                f"{p50:.0f} ms",
                f"<= RTT + {LINK_P50_EXTRA_MS} = {p50_target:g} ms",
                reference,
                p50 <= p50_target,
                on_link=True,
            ),
            Figure(
                "warm_start",
                f"warm start max of {runs} at RTT {rtt:g}",
                f"{top:.0f} ms",
                f"<= {LINK_MAX_RTTS} RTT + {LINK_MAX_EXTRA_MS} = {max_target:g} ms",
                reference,
                top <= max_target,
                on_link=True,
            ),
        ]
    publish(figures)


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
    figures = [
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
        Figure("warm_start", "warm / cold", f"{w / c:.3f}", "<= 0.25", reference, w / c <= 0.25),
    ]
    link = link_facts()
    if link.shaped:
        rtt = link.rtt_ms
        p50_target, max_target = rtt + LINK_P50_EXTRA_MS, LINK_MAX_RTTS * rtt + LINK_MAX_EXTRA_MS
        figures += [
            Figure(
                "warm_start",
                f"warm start p50, in round trips of {rtt:g} ms",
                f"{w * ms:.0f} ms = {w * ms / rtt:.2f} RTT" if rtt else f"{w * ms:.0f} ms",
                f"<= RTT + {LINK_P50_EXTRA_MS} = {p50_target:g} ms",
                reference,
                w * ms <= p50_target,
                on_link=True,
            ),
            Figure(
                "warm_start",
                f"warm start max of {runs}, behind the link",
                f"{max(warm) * ms:.0f} ms",
                f"<= {LINK_MAX_RTTS} RTT + {LINK_MAX_EXTRA_MS} = {max_target:g} ms",
                reference,
                max(warm) * ms <= max_target,
                on_link=True,
            ),
        ]
    publish(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds warm before unmute")
    parser.add_argument("--trace", action="store_true", help="print each warm start's steps")
    parser.add_argument(
        "--rtts", type=float, nargs="+", help="behind a link: warm starts only, at these RTTs"
    )
    args = parser.parse_args()
    if args.rtts:
        asyncio.run(by_rtt(max(args.runs, 12), args.idle, args.rtts))
    else:
        asyncio.run(main(max(args.runs, 12), args.idle, args.trace))
