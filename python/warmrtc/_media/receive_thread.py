"""ReceiveThread: a thread with an event loop of its own, where received frames are read.

livekit hands FFI events to whichever loop subscribed to them. Reading the model's output on
this loop keeps taking frames from the FFI and converting them (about 1 ms for a 720p frame)
off the app's loop, which then only gets finished frames.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("warmrtc")
T = TypeVar("T")

STOP_TIMEOUT = 5.0  # seconds a stop waits for the thread to end before giving up on it


class ReceiveThread:
    """Starts at once; ``submit()`` coroutines to it from any thread; ``stop()`` cancels what
    runs there and ends the thread (idempotent, from any thread); ``wait_stopped()`` awaits that
    end, bounded. A daemon thread, so one that never ends cannot hold the interpreter's exit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        try:
            self._thread.start()
        except BaseException:  # no thread to be had (a process limit): the loop goes too
            self._loop.close()
            raise

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Runs ``coro`` on the thread's loop; raises RuntimeError once stopping."""
        with self._lock:
            if self._stopping:
                coro.close()
                raise RuntimeError(f"receive thread {self.name!r} is stopping")
            return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def stop(self) -> None:
        """Cancels every coroutine on the thread (each runs its clean-up) and ends the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._loop.call_soon_threadsafe(self._loop.stop)

    async def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        """Awaits the thread's end for ``timeout`` seconds at most (a warning past that)."""
        self.stop()
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._ended)), timeout)
        except TimeoutError:
            log.warning("receive thread %s did not end within %g s", self.name, timeout)
            return
        self._thread.join(timeout)  # it has returned from its work: this is immediate

    def join(self, timeout: float = STOP_TIMEOUT) -> bool:
        """``stop()``, then waits for the end from a plain thread; True when it ended."""
        self.stop()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            # Stopped: what still runs is cancelled and runs its clean-up here, on this loop.
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            self._ended.set_result(None)


__all__ = ["STOP_TIMEOUT", "ReceiveThread"]
