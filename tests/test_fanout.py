"""Generated frames to every reader: bounded, newest kept, and never a wait on the loop."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

from warmrtc._media.latest_queue import FRAME_DEPTH
from warmrtc._session.fanout import Fanout


def frame_fanout(on_frame: Callable[[np.ndarray], None] | None) -> Fanout[np.ndarray]:
    return Fanout(on_frame, depth=FRAME_DEPTH, name="on_frame")


def frame(i: int) -> np.ndarray:
    return np.full((2, 2), i, np.uint8)


def test_async_readers_get_the_newest_frames_and_end() -> None:
    async def body() -> None:
        seen: list[int] = []
        fanout = frame_fanout(lambda f: seen.append(int(f[0, 0])))
        got: list[int] = []

        async def read() -> None:
            async for f in fanout.reader():
                got.append(int(f[0, 0]))

        reader = asyncio.create_task(read())
        await asyncio.sleep(0)
        for i in range(20):
            fanout.deliver(frame(i))
        fanout.end()
        await asyncio.wait_for(reader, 5)
        assert seen == list(range(20))  # on_frame sees every frame
        assert got == list(range(20 - FRAME_DEPTH, 20))  # the newest, then the end
        assert [f async for f in fanout.reader()] == []  # a reader after the end ends at once

    asyncio.run(body())


def test_on_frame_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_f: np.ndarray) -> None:
        raise RuntimeError("app bug")

    frame_fanout(broken).deliver(frame(1))
    assert "on_frame raised" in caplog.text


def test_a_thread_that_stops_reading_never_stalls_the_loop() -> None:
    async def body() -> None:
        fanout = frame_fanout(None)
        first: queue.Queue[int] = queue.Queue()
        resume = threading.Event()
        rest: list[int] = []

        def consumer() -> None:
            frames = fanout.reader().in_thread(timeout=10)
            first.put(int(next(frames)[0, 0]))
            resume.wait(10)  # stops reading for a while
            rest.extend(int(f[0, 0]) for f in frames)

        thread = threading.Thread(target=consumer)
        thread.start()
        await asyncio.sleep(0.2)  # subscribed
        fanout.deliver(frame(0))
        await asyncio.to_thread(first.get, True, 5)
        started = time.monotonic()
        for i in range(1, 500):
            fanout.deliver(frame(i % 256))
        assert time.monotonic() - started < 1.0  # no wait for the reader (a put would block)
        fanout.end()
        resume.set()
        await asyncio.to_thread(thread.join, 10)
        assert not thread.is_alive()
        assert len(rest) == FRAME_DEPTH and rest[-1] == 499 % 256

    asyncio.run(asyncio.wait_for(body(), 30))
