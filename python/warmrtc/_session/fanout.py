"""Fanout: hands each item (a generated frame, an event) to a callback and to every reader,
never blocking.

Readers are bounded and keep the newest items: a reader that stops reading loses old ones,
and never slows the event loop or the other readers. Async readers and plain threads (the
blocking API) read the same way. :class:`FrameFanout` carries generated frames (``frames()``),
the session's event fan-out carries :class:`~warmrtc.events.Event` objects and warns when a
reader loses some.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

import numpy as np

log = logging.getLogger("warmrtc")

READER_DEPTH = 4  # generated frames buffered per reader; older ones are dropped
EVENT_DEPTH = 256  # events buffered per reader; older ones are dropped, with a warning
T = TypeVar("T")


class _End:
    """The end marker: never dropped, it takes the place of the oldest item."""


_END = _End()


class Fanout(Generic[T]):
    """Lives on the session's loop: ``deliver()`` and ``end()`` are called there.

    ``callback`` gets every item (its exceptions are logged as ``"<name> raised"``); each
    reader keeps the newest ``depth``. With ``warn_drops`` a reader's first lost item (and every
    hundredth after) is logged at WARNING.
    """

    def __init__(
        self,
        callback: Callable[[T], None] | None,
        *,
        depth: int,
        name: str,
        warn_drops: bool = False,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        self._callback = callback
        self._depth = depth
        self._name = name
        self._warn_drops = warn_drops
        self._sinks: set[Callable[[T | _End], None]] = set()
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def deliver(self, item: T) -> None:
        if self._ended:
            return
        if self._callback is not None:
            try:
                self._callback(item)
            except Exception:
                log.exception("%s raised; the session goes on", self._name)
        for sink in list(self._sinks):
            sink(item)

    def end(self) -> None:
        """No more items: every reader finishes once it has read what it holds."""
        if self._ended:
            return
        self._ended = True
        for sink in list(self._sinks):
            sink(_END)

    async def stream(self) -> AsyncIterator[T]:
        """Items as they come, on the loop, until ``end()``."""
        buffer: asyncio.Queue[T | _End] = asyncio.Queue(self._depth)
        put = self._putter(buffer)
        if self._ended:
            return
        self._sinks.add(put)
        try:
            while not isinstance(item := await buffer.get(), _End):
                yield item
        finally:
            self._sinks.discard(put)

    def stream_in_thread(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> Iterator[T]:
        """Items for a plain thread: the loop only ever puts without waiting; the thread waits
        (``timeout`` seconds at most for each item: ``queue.Empty`` past that)."""
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        buffer: queue.Queue[T | _End] = queue.Queue(self._depth)
        put = self._putter(buffer)

        def subscribe() -> None:
            if self._ended:
                put(_END)
            self._sinks.add(put)

        def reader() -> Iterator[T]:
            try:
                on_loop = asyncio.get_running_loop() is loop
            except RuntimeError:
                on_loop = False
            if on_loop:  # it would wait for the very loop it blocks
                raise RuntimeError("read stream_in_thread() in another thread: use stream()")
            asyncio.run_coroutine_threadsafe(_call(subscribe), loop).result(10)
            try:
                while not isinstance(item := buffer.get(timeout=timeout), _End):
                    yield item
            finally:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._sinks.discard, put)

        return reader()

    def _putter(
        self, buffer: asyncio.Queue[T | _End] | queue.Queue[T | _End]
    ) -> Callable[[T | _End], None]:
        dropped = 0

        def put(item: T | _End) -> None:
            nonlocal dropped
            if _put_newest(buffer, item):
                dropped += 1
                if self._warn_drops and dropped % 100 == 1:
                    log.warning(
                        "a %s reader is not keeping up: %d dropped (the oldest go first)",
                        self._name,
                        dropped,
                    )

        return put


class FrameFanout(Fanout[np.ndarray]):
    """Generated frames to ``on_frame`` and to ``frames()`` readers (the newest few each)."""

    def __init__(self, on_frame: Callable[[np.ndarray], None] | None) -> None:
        super().__init__(on_frame, depth=READER_DEPTH, name="on_frame")

    def frames(self) -> AsyncIterator[np.ndarray]:
        return self.stream()

    def frames_in_thread(
        self, loop: asyncio.AbstractEventLoop, timeout: float | None
    ) -> Iterator[np.ndarray]:
        return self.stream_in_thread(loop, timeout)


def _put_newest(
    buffer: asyncio.Queue[T | _End] | queue.Queue[T | _End],
    item: T | _End,
) -> bool:
    """Puts ``item``; True when the oldest item was dropped to make room."""
    # Only the loop puts, so after one get there is room.
    try:
        buffer.put_nowait(item)
        return False
    except (asyncio.QueueFull, queue.Full):
        try:
            buffer.get_nowait()
        except (asyncio.QueueEmpty, queue.Empty):
            pass
        buffer.put_nowait(item)
        return True


async def _call(function: Callable[[], None]) -> None:
    function()


__all__ = ["EVENT_DEPTH", "READER_DEPTH", "Fanout", "FrameFanout"]
