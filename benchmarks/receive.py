"""Event-loop lag while a session receives 720p30 generated video, on the local stack.

A probe on the app's loop asks to be woken every 5 ms and records how late each wake-up comes:
whatever else runs on the loop (taking frames from livekit, converting them) shows up as lag.
Two kinds of session in one run, taking turns (``--rounds``), each with a capture thread at
720p30 and a ``frames()`` reader:

- off-loop: the receive path as it is (frames converted on the receive thread, from the FFI's
  buffer; the loop gets finished arrays);
- on-loop (reference): the receive path as it was, rebuilt here: livekit's ``VideoStream`` read
  on the app's loop and each frame converted there.

Also frames received per second and glass-to-glass latency (p50), which must not get worse,
and the lag of the same probe with no session at all: what the machine alone costs (on a busy
shared machine, the scheduler's share of the lag).

Run inside the stack: python -m warmrtc stack -- python benchmarks/receive.py
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livekit import rtc

import warmrtc
from figures import Figure, publish
from warmrtc._media.model_output import ModelOutput
from warmrtc._media.rtc_frame import GeneratedFrame, i420_planes, output_frame
from warmrtc._session import media_link as media
from warmrtc.local.demo import Camera, moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT, FPS = 1280, 720, 30
TICK = 0.005  # seconds between the probe's wake-ups
LAG_P99_TARGET_MS = 2.0
PATTERN_FRAMES = 8  # distinct camera frames, cycled


class OnLoopOutput(ModelOutput):
    """The reference: each output track read with livekit's VideoStream on the app's loop, and
    every frame converted there, as the receive path did before the receive thread."""

    def __init__(
        self,
        room: rtc.Room,
        on_frame: Callable[[GeneratedFrame], None],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(room, on_frame, *args, **kwargs)
        self._deliver = on_frame
        self._tasks: list[asyncio.Task[None]] = []

    def _start_reader(self, track: rtc.Track, first: threading.Event) -> Any:
        task = asyncio.get_running_loop().create_task(self._read_on_loop(track, first))
        self._tasks.append(task)
        return task  # cancelled, as the reader it stands for, if the track stalls

    async def _read_on_loop(self, track: rtc.Track, first: threading.Event) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        try:
            async for event in stream:
                first.set()
                array = output_frame(i420_planes(event.frame), self._format)
                stamp = event.metadata.user_timestamp if event.metadata is not None else 0
                self._deliver(GeneratedFrame(array, stamp))
        finally:
            await stream.aclose()

    def stop(self) -> list[asyncio.Task[None]]:
        for task in self._tasks:
            task.cancel()
        return [*super().stop(), *self._tasks]


@dataclass(frozen=True)
class Probe:
    lag_ms: list[float]  # one per wake-up
    loop_cpu_ms_per_s: float  # CPU time of the loop's thread: its own work, not the scheduler's


@dataclass(frozen=True)
class Run:
    lag_ms: list[float]  # one per probe wake-up
    loop_cpu_ms_per_s: float
    frames_per_s: float
    latency_p50_ms: float | None

    def lag(self, pct: float) -> float:
        ordered = sorted(self.lag_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


async def probe(seconds: float) -> Probe:
    """How late (ms) each wake-up of a ``TICK`` timer comes, for ``seconds``, and the CPU time
    the loop's thread used meanwhile."""
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    started, cpu = loop.time(), time.thread_time()
    while loop.time() < started + seconds:
        due = loop.time() + TICK
        await asyncio.sleep(TICK)
        lags.append(max(0.0, loop.time() - due) * 1000)
    return Probe(lags, (time.thread_time() - cpu) * 1000 / (loop.time() - started))


async def measure(base_url: str, api_key: str, seconds: float) -> Run:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=FPS)
    # Frames drawn beforehand: drawing them holds the GIL, which would show up as loop lag.
    pattern = moving_pattern(WIDTH, HEIGHT)
    drawn = itertools.cycle([next(pattern) for _ in range(PATTERN_FRAMES)])
    camera = Camera(source, drawn, fps=FPS, max_seconds=seconds + 60)
    frames = 0
    first = asyncio.Event()
    try:
        async with warmrtc.connect(source, api_key=api_key, base_url=base_url) as session:

            async def count() -> None:
                nonlocal frames
                async for _ in session.frames():
                    frames += 1
                    first.set()

            counter = asyncio.create_task(count())
            camera.start()
            await asyncio.wait_for(first.wait(), 30)
            await asyncio.sleep(1.0)  # past the encoder's ramp-up
            frames_before, started = frames, time.monotonic()
            probed = await probe(seconds)
            fps = (frames - frames_before) / (time.monotonic() - started)
            latency = session.latency
            counter.cancel()
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()
    p50 = latency.p50_ms if latency is not None else None
    return Run(probed.lag_ms, probed.loop_cpu_ms_per_s, fps, p50)


async def main(seconds: float, rounds: int) -> None:
    # The two receive paths take turns, so that a busy spell of the machine falls on both.
    runs: dict[str, list[Run]] = {"off-loop": [], "on-loop": [], "idle": []}
    with LocalService() as (base_url, api_key):
        for _ in range(rounds):
            idle = await probe(seconds)
            runs["idle"].append(Run(idle.lag_ms, idle.loop_cpu_ms_per_s, 0.0, None))
            runs["off-loop"].append(await measure(base_url, api_key, seconds))
            off_loop_output = media.ModelOutput
            media.ModelOutput = OnLoopOutput  # type: ignore[misc]
            try:
                runs["on-loop"].append(await measure(base_url, api_key, seconds))
            finally:
                media.ModelOutput = off_loop_output  # type: ignore[misc]
    new, old, idle = (_pooled(runs[k]) for k in ("off-loop", "on-loop", "idle"))
    seconds *= rounds
    print(f"event-loop lag at {WIDTH}x{HEIGHT}@{FPS} received, {seconds:g} s of each kind,")
    print(f"a {TICK * 1000:g} ms timer; reference: conversion on the loop as before")
    p99 = new.lag(99)
    figures = [
        Figure("receive", "event-loop lag p50", _ms(new.lag(50)), reference=_ms(old.lag(50))),
        Figure(
            "receive",
            "event-loop lag p99",
            _ms(p99),
            target=f"<= {LAG_P99_TARGET_MS:g} ms",
            reference=_ms(old.lag(99)),
            met=p99 <= LAG_P99_TARGET_MS,
        ),
        Figure(
            "receive", "event-loop lag max", _ms(max(new.lag_ms)), reference=_ms(max(old.lag_ms))
        ),
        Figure(
            "receive",
            "event-loop lag mean",
            _ms(statistics.fmean(new.lag_ms)),
            reference=_ms(statistics.fmean(old.lag_ms)),
        ),
        Figure(
            "receive",
            "loop CPU per frame received",
            _ms(_per_frame(new, idle)),
            reference=_ms(_per_frame(old, idle)),
        ),
        Figure(
            "receive",
            "frames received/s",
            f"{new.frames_per_s:.1f}/s",
            target=">= 0.9x reference",
            reference=f"{old.frames_per_s:.1f}/s",
            met=new.frames_per_s >= 0.9 * old.frames_per_s,
        ),
    ]
    if new.latency_p50_ms is not None and old.latency_p50_ms is not None:
        figures.append(
            Figure(
                "receive",
                "glass-to-glass p50",
                _ms(new.latency_p50_ms),
                target="<= reference + 5 ms",
                reference=_ms(old.latency_p50_ms),
                met=new.latency_p50_ms <= old.latency_p50_ms + 5,
            )
        )
    figures.append(
        Figure(
            "receive",
            "event-loop lag p99, no session",
            _ms(idle.lag(99)),
            reference=f"p50 {_ms(idle.lag(50))}, max {_ms(max(idle.lag_ms))}",
        )
    )
    publish(figures)


def _pooled(runs: list[Run]) -> Run:
    latencies = [r.latency_p50_ms for r in runs if r.latency_p50_ms is not None]
    return Run(
        [lag for r in runs for lag in r.lag_ms],
        statistics.fmean(r.loop_cpu_ms_per_s for r in runs),
        statistics.fmean(r.frames_per_s for r in runs),
        statistics.median(latencies) if latencies else None,
    )


def _per_frame(run: Run, idle: Run) -> float:
    # The loop thread's CPU beyond what the probe alone costs, per frame received.
    return max(0.0, run.loop_cpu_ms_per_s - idle.loop_cpu_ms_per_s) / max(run.frames_per_s, 1e-9)


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per session and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rounds))
