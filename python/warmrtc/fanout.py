"""FrameFanout: hands each generated frame to ``on_frame`` and to every reader, never blocking.

Readers are bounded and keep the newest frames: a reader that stops reading loses old frames,
and never slows the event loop or the other readers. Async readers (``frames()``) and plain
threads (the blocking API) read the same way.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import AsyncIterator, Callable, Iterator

import numpy as np

log = logging.getLogger("warmrtc")

READER_DEPTH = 4  # generated frames buffered per reader; older ones are dropped
_END = None


class FrameFanout:
    """Lives on the session's loop: ``deliver()`` and ``end()`` are called there."""

    def __init__(self, on_frame: Callable[[np.ndarray], None] | None) -> None:
        self._on_frame = on_frame
        self._sinks: set[Callable[[np.ndarray | None], None]] = set()
        self._ended = False

    def deliver(self, frame: np.ndarray) -> None:
        if self._on_frame is not None:
            try:
                self._on_frame(frame)
            except Exception:
                log.exception("on_frame raised; the session goes on")
        for sink in list(self._sinks):
            sink(frame)

    def end(self) -> None:
        """No more frames: every reader finishes once it has read what it holds."""
        self._ended = True
        for sink in list(self._sinks):
            sink(_END)

    async def frames(self) -> AsyncIterator[np.ndarray]:
        """Frames as they come, on the loop, until ``end()``."""
        buffer: asyncio.Queue[np.ndarray | None] = asyncio.Queue(READER_DEPTH)

        def put(frame: np.ndarray | None) -> None:
            _put_newest(buffer, frame)

        if self._ended:
            return
        self._sinks.add(put)
        try:
            while (frame := await buffer.get()) is not _END:
                yield frame
        finally:
            self._sinks.discard(put)

    def frames_in_thread(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> Iterator[np.ndarray]:
        """Frames for a plain thread: the loop only ever puts without waiting; the thread waits
        (``timeout`` seconds at most for each frame: ``queue.Empty`` past that)."""
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            raise RuntimeError("frames_in_thread() would wait for its own loop: use frames()")
        buffer: queue.Queue[np.ndarray | None] = queue.Queue(READER_DEPTH)

        def put(frame: np.ndarray | None) -> None:
            _put_newest(buffer, frame)

        def subscribe() -> None:
            if self._ended:
                put(_END)
            self._sinks.add(put)

        asyncio.run_coroutine_threadsafe(_call(subscribe), loop).result(10)
        try:
            while (frame := buffer.get(timeout=timeout)) is not _END:
                yield frame
        finally:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._sinks.discard, put)


def _put_newest(
    buffer: asyncio.Queue[np.ndarray | None] | queue.Queue[np.ndarray | None],
    item: np.ndarray | None,
) -> None:
    # Only the loop puts, so after one get there is room. The end marker is never dropped:
    # it goes in place of the oldest frame.
    try:
        buffer.put_nowait(item)
    except (asyncio.QueueFull, queue.Full):
        try:
            buffer.get_nowait()
        except (asyncio.QueueEmpty, queue.Empty):
            pass
        buffer.put_nowait(item)


async def _call(function: Callable[[], None]) -> None:
    function()


__all__ = ["READER_DEPTH", "FrameFanout"]
