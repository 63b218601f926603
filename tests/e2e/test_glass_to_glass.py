"""Glass-to-glass latency, measured end to end: the client stamps its frames, the emulator
echoes each stamp on the frame it generates (for a client that announces frame timing), and
the session reports p50/p95 of (shown - captured). An artificial model delay must show up in
the measured figure; without echoed stamps there is no figure at all."""

from __future__ import annotations

import asyncio

import pytest
from conftest import API_KEY, Emulator

import warmrtc
from warmrtc.local.demo import Camera, moving_pattern

WIDTH, HEIGHT, FPS = 640, 360, 30
MEASURE_SECONDS = 4.0


async def measure(
    base_url: str, *, stamp_frames: bool = True, echoed: bool = True
) -> tuple[warmrtc.Latency | None, int]:
    """A live session for a few seconds: (its latency figure, generated frames seen). With
    ``echoed`` (the service echoes the stamps) it goes on until a second's worth of samples."""
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=FPS, stamp_frames=stamp_frames)
    camera = Camera(source, moving_pattern(WIDTH, HEIGHT), fps=FPS, max_seconds=60)
    frames = 0
    try:
        async with warmrtc.connect(source, api_key=API_KEY, base_url=base_url, timeout=20) as s:
            camera.start()

            async def count() -> None:
                nonlocal frames
                async for _ in s.frames():
                    frames += 1

            counter = asyncio.create_task(count())
            # From the first generated frame on: the model's worker joins in the background,
            # and on a loaded machine that can take seconds.
            async with asyncio.timeout(20):
                while frames == 0:
                    await asyncio.sleep(0.05)
            await asyncio.sleep(MEASURE_SECONDS)
            # A second's worth of samples at least: a loaded machine delivers fewer a second.
            async with asyncio.timeout(20):
                while echoed and (s.latency is None or s.latency.samples < FPS):
                    await asyncio.sleep(0.1)
            counter.cancel()
            latency = s.latency
            if latency is not None:  # a live figure: the session's own accessor agrees
                assert s._latency.percentiles() == (latency.p50_ms, latency.p95_ms)
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()
    return latency, frames


def test_latency_is_measured_and_rises_with_the_model_delay(emulator_url: str) -> None:
    slow = Emulator("--model-delay-ms", "150")
    try:
        base, base_frames = asyncio.run(asyncio.wait_for(measure(emulator_url), 60))
        delayed, delayed_frames = asyncio.run(asyncio.wait_for(measure(slow.url), 60))
    finally:
        slow.stop()
    print(f"\nlatency at model delay 0 ms: {base} ({base_frames} frames)")
    print(f"latency at model delay 150 ms: {delayed} ({delayed_frames} frames)")
    assert base is not None and delayed is not None
    assert base.samples >= FPS and delayed.samples >= FPS  # a second's worth at least
    assert 0 < base.p50_ms <= base.p95_ms < 1000
    # The delay is measured, not assumed: the median moves by about the delay.
    assert 100 <= delayed.p50_ms - base.p50_ms <= 400


@pytest.mark.parametrize("case", ["service-without-frame-timing", "source-without-stamps"])
def test_no_echoed_stamps_means_no_latency(case: str, emulator_url: str) -> None:
    emulator = Emulator("--no-frame-timing") if case.startswith("service") else None
    try:
        url = emulator.url if emulator else emulator_url
        latency, frames = asyncio.run(
            asyncio.wait_for(
                measure(url, stamp_frames=case.startswith("service"), echoed=False), 60
            )
        )
    finally:
        if emulator:
            emulator.stop()
    assert frames >= 10  # generated frames came back (fewer on a loaded machine); no stamps
    assert latency is None
