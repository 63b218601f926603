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

    def reader(self) -> Reader[T]:
        """A reader of the items from now on (subscribed at once: nothing after this is
        missed), until ``end()``."""
        queue: LatestQueue[T] = LatestQueue(
            self._depth, name=f"{self._name} reader", warn=self._warn_drops
        )
        with self._lock:
            if self._ended:
                queue.close()
            else:
                self._readers.add(queue)
        return Reader(queue, self._unsubscribe)

    def _unsubscribe(self, queue: LatestQueue[T]) -> None:
        with self._lock:
            self._readers.discard(queue)


class Reader(AsyncIterator[T]):
    """A session's (or spectator's) items as they come, until the end: ``async for`` on the
    session's loop, or :meth:`in_thread` from a plain thread. It holds the newest few: one that
    falls behind loses the oldest, and never slows the loop. ``aclose()`` stops reading."""

    def __init__(
        self, queue: LatestQueue[T], unsubscribe: Callable[[LatestQueue[T]], None]
    ) -> None:
        self._queue = queue
        self._unsubscribe = unsubscribe

    def __aiter__(self) -> Reader[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._queue.get()
        except Ended:
            self._unsubscribe(self._queue)
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Stops reading (idempotent): the items that come after are not kept for it."""
        self._unsubscribe(self._queue)
        self._queue.close(discard=True)

    def in_thread(self, timeout: float | None = None) -> Iterator[T]:
        """The items for a plain thread, blocking: ``timeout`` seconds at most for each
        (``queue.Empty`` past that; None: no bound). Not from a thread that runs an event
        loop: waiting there would stop that loop."""
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {timeout!r}"
            )
        return self._blocking(timeout)

    def _blocking(self, timeout: float | None) -> Iterator[T]:
        try:
            _not_on_a_loop()
            while True:
                try:
                    item = self._queue.get_blocking(timeout)
                except Ended:
                    return
                yield item
        finally:
            self._unsubscribe(self._queue)


def _not_on_a_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "a blocking reader on a thread that runs an event loop would stop that loop: read "
        "with the async API there (async for ... in session.frames())"
    )


__all__ = ["Fanout", "Reader"]
