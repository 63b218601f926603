"""LatestQueue: the one hand-off between threads and loops, keeping the newest items.

Every place where items made at one pace are taken at another uses it: livekit's callback
thread to the receive thread (the model's frames, each an FFI buffer), the receive thread to the
app's loop (converted frames), and the session to each ``frames()`` and ``events()`` reader. A
producer never waits: a full queue drops its oldest item (counted, and handed to ``on_drop``,
e.g. to give an FFI buffer back). A consumer that falls behind costs items, never its producer's
time, and a consumer on an event loop takes one item per turn of that loop (see
:class:`LoopDelivery`), so a slow callback cannot hold the loop's timers and sockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("warmrtc")
T = TypeVar("T")

FRAME_DEPTH = 4  # frames that wait at each hand-off; older ones are dropped
EVENT_DEPTH = 256  # events that wait for a reader; older ones are dropped, with a warning


class Ended(Exception):
    """The queue was closed and every item it held has been taken."""


class LatestQueue(Generic[T]):
    """Bounded, thread-safe, never blocking its producers; keeps the newest ``depth`` items.

    Any thread puts. One consumer takes, in whichever way fits it: :meth:`get_nowait`,
    ``await`` :meth:`get` on an event loop, or :meth:`get_blocking` on a plain thread; or
    :meth:`when_ready` for a callback. :meth:`close` ends the queue: the consumer still takes
    what it holds, then gets :class:`Ended`. ``warn`` logs the first dropped item at WARNING
    (and every hundredth after), naming the queue ``name``.
    """

    def __init__(
        self,
        depth: int,
        *,
        name: str = "queue",
        on_drop: Callable[[T], None] | None = None,
        warn: bool = False,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        self._items: deque[T] = deque()
        self._depth = depth
        self._name = name
        self._on_drop = on_drop
        self._warn = warn
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # plain-thread consumers wait on it
        self._wake: Callable[[], None] | None = None  # when_ready's callback, one-shot
        self._closed = False
        self._dropped = 0

    @property
    def dropped(self) -> int:
        """Items dropped for newer ones (or put after the end, or discarded by close)."""
        return self._dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Adds ``item``, dropping the oldest one when full; after :meth:`close` the item
        itself is dropped. Never blocks, from any thread."""
        with self._lock:
            if self._closed:
                dropped: T | None = item
            else:
                self._items.append(item)
                dropped = self._items.popleft() if len(self._items) > self._depth else None
                self._ready.notify()
            wake, self._wake = self._wake, None
            if dropped is not None:
                self._dropped += 1
                count = self._dropped
        if dropped is not None:
            self._dropped_item(dropped, count)
        if wake is not None:
            wake()

    def close(self, *, discard: bool = False) -> None:
        """No more items: the consumer takes what is held, then gets :class:`Ended`. With
        ``discard`` what is held is dropped now (``on_drop`` for each). Idempotent."""
        with self._lock:
            self._closed = True
            held = list(self._items) if discard else []
            if discard:
                self._items.clear()
            self._dropped += len(held)
            self._ready.notify_all()
            wake, self._wake = self._wake, None
        for item in held:
            if self._on_drop is not None:
                self._on_drop(item)
        if wake is not None:
            wake()

    def get_nowait(self) -> T:
        """The oldest item held; ``queue.Empty`` when none is, :class:`Ended` after the end."""
        with self._lock:
            return self._take()

    def when_ready(self, wake: Callable[[], None]) -> None:
        """Calls ``wake()`` once an item (or the end) is there to take: at once, on this
        thread, when it is already; else on the thread of the put (or close) that brings it.
        One callback at a time: a new one replaces a waiting one."""
        with self._lock:
            now = bool(self._items) or self._closed
            if not now:
                self._wake = wake
        if now:
            wake()

    async def get(self) -> T:
        """The oldest item, waiting for one on the running loop; :class:`Ended` after the end."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                return self.get_nowait()
            except queue.Empty:
                pass
            ready: asyncio.Future[None] = loop.create_future()
            self.when_ready(functools.partial(_set_soon, loop, ready))
            try:
                await ready
            except asyncio.CancelledError:
                with self._lock:
                    self._wake = None
                raise

    def get_blocking(self, timeout: float | None = None) -> T:
        """The oldest item, waiting up to ``timeout`` seconds (None: no bound) on this thread;
        ``queue.Empty`` past it, :class:`Ended` after the end."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._items and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Empty
                self._ready.wait(left)
            return self._take()

    def _take(self) -> T:
        if self._items:
            return self._items.popleft()
        if self._closed:
            raise Ended
        raise queue.Empty

    def _dropped_item(self, item: T, count: int) -> None:
        if self._on_drop is not None:
            self._on_drop(item)
        if self._warn and count % 100 == 1:
            log.warning(
                "%s is not keeping up: %d dropped so far (the oldest go first)", self._name, count
            )


def _set_soon(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    """Wakes a waiter on ``loop`` from any thread; a loop already closed has no waiter left."""
    try:
        loop.call_soon_threadsafe(_set_unless_done, future)
    except RuntimeError:
        pass


def _set_unless_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class LoopDelivery(Generic[T]):
    """Items put from any thread, handed to ``deliver`` on ``loop``, in order, one per turn of
    the loop: between two deliveries the loop runs its due timers and I/O, so a callback that
    takes longer than the items come costs items (the newest ``depth`` wait, older ones are
    dropped and counted), never the loop's other work."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[T], None],
        depth: int = FRAME_DEPTH,
        *,
        name: str = "delivery",
        on_drop: Callable[[T], None] | None = None,
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._queue: LatestQueue[T] = LatestQueue(depth, name=name, on_drop=on_drop)
        self._queue.when_ready(self._schedule)

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def put(self, item: T) -> None:
        """From any thread. Items put once the loop is closed are let go."""
        self._queue.put(item)

    def close(self) -> None:
        """Delivers nothing more, not even what waits. Idempotent."""
        self._queue.close(discard=True)

    def _schedule(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver_one)
        except RuntimeError:  # the loop is closed: nothing will be delivered
            self._queue.close(discard=True)

    def _deliver_one(self) -> None:
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            self._queue.when_ready(self._schedule)
            return
        except Ended:
            return
        try:
            self._deliver(item)
        finally:
            # The next one in a later turn, even when this one raised (the loop reports it).
            # Through a timer, then the ready queue: timers that fell due during this delivery
            # (and I/O that arrived) run first, and so do the tasks they wake, which asyncio
            # schedules one turn later. A plain call_soon would run the next delivery before
            # those tasks, and a task would wait two slow callbacks instead of one.
            self._loop.call_later(0, self._loop.call_soon, self._deliver_one)


__all__ = ["EVENT_DEPTH", "FRAME_DEPTH", "Ended", "LatestQueue", "LoopDelivery"]
