"""Fanout: hands each item (a generated frame, an event) to a callback and to every reader,
never blocking.

Each reader has a :class:`~warmrtc._media.latest_queue.LatestQueue` of its own and keeps the
newest items: a reader that stops reading loses old ones, and never slows the loop or the other
readers. Async readers (on the session's loop) and plain threads (the blocking API) read the
same queues. The session's frame fan-out carries generated frames (``frames()``), its event
fan-out :class:`~warmrtc.events.Event` objects, with a warning when a reader loses some.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Generic, TypeVar

from .._media.latest_queue import Ended, LatestQueue

log = logging.getLogger("warmrtc")
T = TypeVar("T")


class Fanout(Generic[T]):
    """``deliver()`` and ``end()`` are called on the session's loop; readers subscribe from
    any thread.

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
        self._lock = threading.Lock()  # readers come and go from other threads
        self._readers: set[LatestQueue[T]] = set()
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
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            reader.put(item)

    def end(self) -> None:
        """No more items: every reader finishes once it has read what it holds."""
        with self._lock:
            self._ended = True
            readers = list(self._readers)
        for reader in readers:
            reader.close()

    def _subscribe(self) -> LatestQueue[T]:
        reader: LatestQueue[T] = LatestQueue(
            self._depth, name=f"{self._name} reader", warn=self._warn_drops
        )
        with self._lock:
            if self._ended:
                reader.close()
            else:
                self._readers.add(reader)
        return reader

    def _unsubscribe(self, reader: LatestQueue[T]) -> None:
        with self._lock:
            self._readers.discard(reader)

    async def stream(self) -> AsyncIterator[T]:
        """Items as they come, from now on, until ``end()``."""
        reader = self._subscribe()
        try:
            while True:
                try:
                    item = await reader.get()
                except Ended:
                    return
                yield item
        finally:
            self._unsubscribe(reader)

    def stream_in_thread(self, timeout: float | None) -> Iterator[T]:
        """Items for a plain thread, from now on, until ``end()``: the loop only ever puts; the
        thread waits (``timeout`` seconds at most for each item: ``queue.Empty`` past that)."""
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        reader = self._subscribe()  # now, not at the first next(): nothing is missed

        def read() -> Iterator[T]:
            try:
                _not_on_a_loop()
                while True:
                    try:
                        item = reader.get_blocking(timeout)
                    except Ended:
                        return
                    yield item
            finally:
                self._unsubscribe(reader)

        return read()


def _not_on_a_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "a blocking reader on a thread that runs an event loop would stop that loop: read "
        "with the async API there (async for ... in session.frames())"
    )


__all__ = ["Fanout"]
