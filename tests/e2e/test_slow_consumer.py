"""An on_frame slower than the frame rate (a video writer, imshow, a model: 40 ms a frame here,
at 30 generated frames a second) costs frames, never the app's loop: between a timer falling
due and its task running, at most the one callback under way runs; the frames beyond the newest
few are dropped and counted in the session's stats; the session stays connected and its
control channel answers. The same for a spectator, and for the blocking API's loop.

Before, the loop delivered frames for as long as they kept coming: a 0.1 s timer came back 31 s
late and the control channel dropped (its heartbeat went unanswered)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
from conftest import API_KEY
from test_session import Camera

import warmrtc

CALLBACK_S = 0.04
WIDTH, HEIGHT = 640, 360  # the emulator's model generates at its own size (720p30)


class Slow:
    """An on_frame that takes CALLBACK_S; it keeps when each call began (loop time)."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def __call__(self, _frame: np.ndarray) -> None:
        self.starts.append(asyncio.get_running_loop().time())
        time.sleep(CALLBACK_S)


async def timers_against(slow: Slow, rounds: int = 30) -> int:
    """The most on_frame calls that began between a 0.1 s timer falling due and its task
    running again, over ``rounds`` timers."""
    loop = asyncio.get_running_loop()
    most = 0
    for _ in range(rounds):
        due = loop.time() + 0.1
        await asyncio.sleep(0.1)
        woke = loop.time()
        most = max(most, sum(due < s < woke for s in slow.starts))
    return most


async def generating(slow: Slow, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while len(slow.starts) < 10:
            await asyncio.sleep(0.05)


def test_a_slow_on_frame_costs_frames_not_the_loop(emulator_url: str) -> None:
    async def run() -> None:
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
        slow = Slow()
        async with warmrtc.connect(
            source, api_key=API_KEY, base_url=emulator_url, on_frame=slow
        ) as session:
            with Camera(source):
                await generating(slow)
                in_between = await timers_against(slow)
                stats = await session.stats()
                await asyncio.wait_for(session.set_prompt("still answering"), 15)
            assert in_between <= 1, f"{in_between} slow callbacks ran in a timer's way"
            assert stats.generated_frames_dropped > 0, stats
            assert session.state in ("connected", "generating") and session.last_error is None
        source.close()

    asyncio.run(asyncio.wait_for(run(), 120))


def test_a_slow_spectator_costs_frames_not_the_loop(emulator_url: str) -> None:
    async def run() -> None:
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
        slow = Slow()
        async with warmrtc.connect(source, api_key=API_KEY, base_url=emulator_url) as session:
            with Camera(source):
                async with warmrtc.watch(
                    session, api_key=API_KEY, base_url=emulator_url, on_frame=slow
                ) as spectator:
                    await generating(slow)
                    in_between = await timers_against(slow)
                    assert not spectator.closed
            assert in_between <= 1, f"{in_between} slow callbacks ran in a timer's way"
            assert session.last_error is None
        source.close()

    asyncio.run(asyncio.wait_for(run(), 120))


def test_a_slow_on_frame_leaves_the_blocking_loop_free(emulator_url: str) -> None:
    """The blocking API's calls run on its private loop, where on_frame runs too: each still
    gets its turn within a callback or two."""
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
    calls = threading.Event()
    started: list[float] = []

    def slow(_frame: np.ndarray) -> None:
        started.append(time.monotonic())
        calls.set()
        time.sleep(CALLBACK_S)

    with warmrtc.connect_blocking(
        source, api_key=API_KEY, base_url=emulator_url, on_frame=slow
    ) as session:
        with Camera(source):
            assert calls.wait(30)
            deadline = time.monotonic() + 30
            while len(started) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
            took = []
            for _ in range(10):
                began = time.monotonic()
                session.stats(timeout=1.0)
                took.append(time.monotonic() - began)
            stats = session.stats()
        assert stats.generated_frames_dropped > 0
        assert session.last_error is None
    source.close()
    # stats() waits for livekit's stats too (a few ms): well under a second each, where the
    # old delivery made it wait for as long as frames came.
    assert max(took) < 1.0, took
