"""WarmPool: sessions kept connected and muted, so that every user's Start is instant.

The pool keeps ``size`` sessions warm (``start_muted=True``: authenticated, in the room, the
track published muted; nothing sent, nothing billed). ``acquire()`` hands the oldest one out at
once and warms a replacement in the background; the session handed out is disconnected when
the ``async with`` block ends. Warm sessions idle longer than ``max_idle`` are replaced before
the service can expire them.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import ConnectOptions, SessionConfig
from .errors import PoolTimeoutError, WarmrtcError
from .session import Session, _connect
from .source import VideoSource

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("warmrtc")

RETRY_DELAYS = (0.5, 1, 2, 4, 8)  # seconds between failed warm-ups, then 8 s on


class PoolOptions(ConnectOptions, total=False):
    """:class:`WarmPool`'s keyword options: connect's, plus the pool's own."""

    model: str
    width: int
    height: int
    fmt: str
    fps: float
    max_idle: float
    acquire_timeout: float


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters."""

    warm: int  # connected, muted and ready to hand out
    in_use: int  # handed out and not yet released
    warming: int  # being connected right now
    replaced: int  # warm-ups started to replace a session handed out, expired or lost
    failed: int  # warm-ups that failed


@dataclass
class _Warm:
    session: Session
    since: float


class WarmPool:
    """Keeps ``size`` pre-warmed sessions; ``async with pool.acquire() as session`` takes one.

    ``model`` and ``options`` are :func:`warmrtc.connect`'s (``api_key``, ``base_url``,
    ``prompt``, ``on_frame``, ...), checked here: a bad one raises at once. Every session gets
    a :class:`VideoSource` of its own, made with ``width``, ``height``, ``fmt`` and ``fps``:
    feed ``session.source`` after acquiring. Use the pool as ``async with WarmPool(...) as
    pool`` (or call ``start()`` and ``close()``). A warm-up that fails is counted
    (``stats.failed``) and its error kept (``last_error``); it is retried with backoff when
    another try can help, and otherwise stops the pool: ``acquire()`` and ``wait_warm()`` then
    raise it.
    """

    def __init__(
        self,
        size: int,
        *,
        width: int = 1280,
        height: int = 720,
        fmt: str = "bgr24",
        fps: float = 30,
        max_idle: float = 300,
        acquire_timeout: float = 30,
        model: str = "lucy-2.6",
        **options: Unpack[ConnectOptions],
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        if not max_idle > 0:
            raise ValueError(f"max_idle must be positive (seconds), got {max_idle!r}")
        if not acquire_timeout >= 0:
            raise ValueError(f"acquire_timeout must be >= 0 (seconds), got {acquire_timeout!r}")
        for name in ("source", "start_muted"):
            if name in options:
                raise TypeError(f"WarmPool sets {name} itself; do not pass it")
        # Bad options, size or format fail here, not in every background warm-up.
        VideoSource(width, height, fmt, fps).close()
        self.config = SessionConfig.of(model, **options)
        self.size = size
        self.max_idle = float(max_idle)
        self.acquire_timeout = float(acquire_timeout)
        self._source_args = (width, height, fmt, fps)
        self._warm: deque[_Warm] = deque()
        self._in_use: set[Session] = set()
        self._warmups: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()  # disconnects in flight
        self._changed: asyncio.Condition | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._replaced = 0
        self._failed = 0
        self._fatal: Exception | None = None
        self.last_error: Exception | None = None
        self._closed = False

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Starts warming ``size`` sessions in the background; returns at once."""
        if self._closed:
            raise RuntimeError("the pool is closed")
        if self._changed is not None:
            return
        self._changed = asyncio.Condition()
        self._fill()
        self._keeper = asyncio.get_running_loop().create_task(self._keep())

    async def wait_warm(self, timeout: float | None = None) -> None:
        """Waits until all ``size`` sessions are warm (e.g. before opening the doors)."""
        changed = self._started()
        async with asyncio.timeout(timeout):
            async with changed:
                await changed.wait_for(lambda: len(self._warm) >= self.size or self._stopped())
        self._raise_if_stopped()

    async def close(self) -> None:
        """Disconnects every session, warm and in use, and stops warming. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._warmups, *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._retiring, return_exceptions=True)
        sessions = [w.session for w in self._warm] + list(self._in_use)
        self._warm.clear()
        await asyncio.gather(*(_dispose(s) for s in sessions), return_exceptions=True)
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()

    async def __aenter__(self) -> WarmPool:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ---- handing out --------------------------------------------------------------------

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[Session]:
        """Hands out a warm, muted session (the caller unmutes); disconnects it afterwards.

        Waits up to ``timeout`` (default ``acquire_timeout``) when none is warm, then raises
        PoolTimeoutError; raises the service's error at once if warming cannot succeed
        (a refused key, an unknown model).
        """
        session = await self._take(self.acquire_timeout if timeout is None else timeout)
        try:
            yield session
        finally:
            self._in_use.discard(session)
            await _dispose(session)

    async def _take(self, timeout: float) -> Session:
        changed = self._started()
        deadline = time.monotonic() + timeout
        async with changed:
            while True:
                self._raise_if_stopped()
                self._retire_lost()
                # The oldest first: it is the nearest to max_idle. One that is reconnecting
                # right now stays in the pool and may come back.
                warm = next((w for w in self._warm if w.session.state == "connected"), None)
                if warm is not None:
                    self._warm.remove(warm)
                    self._in_use.add(warm.session)
                    self._replace()
                    return warm.session
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise PoolTimeoutError(self._timeout_message(timeout))
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except TimeoutError:
                    pass

    def _timeout_message(self, timeout: float) -> str:
        stats = self.stats
        why = f"; last warm-up error: {self.last_error}" if self.last_error else ""
        return (
            f"no warm session within {timeout:g} s ({stats.in_use} in use, "
            f"{stats.warming} warming, size {self.size}){why}"
        )

    @property
    def stats(self) -> PoolStats:
        return PoolStats(
            warm=len(self._warm),
            in_use=len(self._in_use),
            warming=len(self._warmups),
            replaced=self._replaced,
            failed=self._failed,
        )

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"WarmPool(size={self.size}, warm={s.warm}, in_use={s.in_use}, "
            f"warming={s.warming}, closed={self._closed})"
        )

    # ---- warming ------------------------------------------------------------------------

    def _started(self) -> asyncio.Condition:
        if self._changed is None:
            raise RuntimeError("the pool is not started: use `async with WarmPool(...)`")
        return self._changed

    def _stopped(self) -> bool:
        return self._closed or self._fatal is not None

    def _raise_if_stopped(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            raise RuntimeError("the pool is closed")

    def _replace(self) -> None:
        self._replaced += 1
        self._fill()

    def _retire(self, warm: _Warm) -> None:
        self._warm.remove(warm)
        task = asyncio.get_running_loop().create_task(_dispose(warm.session))
        self._retiring.add(task)  # tracked so that close() waits for it
        task.add_done_callback(self._retiring.discard)
        self._replace()

    def _retire_lost(self) -> None:
        for warm in [w for w in self._warm if w.session.state == "disconnected"]:
            self._retire(warm)  # its reconnects failed: see session.last_error

    def _fill(self) -> None:
        if self._stopped():
            return
        loop = asyncio.get_running_loop()
        while len(self._warm) + len(self._warmups) < self.size:
            task = loop.create_task(self._warm_one(), name="warmrtc-warm-up")
            self._warmups.add(task)
            task.add_done_callback(self._warmups.discard)

    async def _warm_one(self) -> None:
        me = asyncio.current_task()
        for attempt in itertools.count():  # ended by success, a fatal error or close()
            source = VideoSource(*self._source_args)
            try:
                session = await _connect(source, self.config, True)
            except Exception as e:
                source.close()
                self._failed += 1
                self.last_error = e
                # Anything but a WarmrtcError is a bug or a bad option: retrying cannot help.
                if not isinstance(e, WarmrtcError) or not e.retryable:
                    log.error("warm pool: %s; no more warm-ups", e)
                    self._fatal = e
                    for task in self._warmups - {me}:
                        task.cancel()  # they would fail the same way
                    await self._notify()
                    return
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                log.warning("warm pool: warm-up failed (%s); again in %g s", e, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                source.close()
                raise
            if self._closed:
                await _dispose(session)
                return
            self._warm.append(_Warm(session, time.monotonic()))
            # No longer warming from here on: _fill() must count this session once.
            if me is not None:
                self._warmups.discard(me)
            await self._notify()
            return

    async def _keep(self) -> None:
        """Replaces warm sessions that idled past max_idle or were lost."""
        period = min(self.max_idle / 4, 1.0)
        while True:
            await asyncio.sleep(period)
            self._retire_lost()
            expired = time.monotonic() - self.max_idle
            for warm in [w for w in self._warm if w.since < expired]:
                self._retire(warm)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()


async def _dispose(session: Session) -> None:
    await session.disconnect()
    session.source.close()


__all__ = ["PoolOptions", "PoolStats", "WarmPool"]
