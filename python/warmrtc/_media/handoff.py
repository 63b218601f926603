"""Handoff: items made on one thread, handed to a callback on an event loop, in order.

Bounded and never blocking the producer: while the loop is busy, the newest ``depth`` items
wait and older ones are dropped (and counted). One loop callback drains whatever is waiting,
so a burst costs one wake-up of the loop, not one per item.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """``put()`` from any one thread; ``deliver`` runs on ``loop`` for each item, in order."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deliver: Callable[[T], None], depth: int
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        self._loop = loop
        self._deliver = deliver
        self._items: deque[T] = deque(maxlen=depth)
        self._lock = threading.Lock()
        self._scheduled = False  # a drain is queued on the loop and has not started emptying
        self._closed = False
        self.dropped = 0  # items that were replaced by newer ones before the loop took them

    def put(self, item: T) -> None:
        """Queues ``item`` for the loop; raises RuntimeError once the loop is closed. After
        ``close()`` the item is let go."""
        with self._lock:
            if self._closed:
                return
            if len(self._items) == self._items.maxlen:
                self.dropped += 1  # the deque lets the oldest go as the new one goes in
            self._items.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            with self._lock:
                self._scheduled = False
                self._items.clear()
            raise

    def close(self) -> None:
        """Delivers nothing more, not even what waits (call it on the loop). Idempotent."""
        with self._lock:
            self._closed = True
            self._items.clear()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._closed or not self._items:
                    self._scheduled = False
                    return
                item = self._items.popleft()
            try:
                self._deliver(item)
            except BaseException:
                # Whatever is left still gets delivered, in a later pass.
                with self._lock:
                    self._scheduled = bool(self._items)
                if self._scheduled:
                    self._loop.call_soon(self._drain)
                raise


__all__ = ["Handoff"]
