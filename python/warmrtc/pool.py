"""WarmPool: sessions kept connected and muted, so that every user's Start is instant.

The pool keeps ``size`` sessions warm (``start_muted=True``: authenticated, in the room, the
track published muted; nothing sent, nothing billed). ``acquire()`` hands the oldest one out at
once and warms a replacement in the background; the session handed out is disconnected when
the ``async with`` block ends. Warm sessions idle longer than ``max_idle``, or older than
allowed by ``max_session_duration``, are replaced before the service can end them.

Warm sessions count against the service's concurrency limit. With a ``budget`` the pool holds
one slot of it (a :class:`~warmrtc.budget.Lease`) for every session it has open or is opening,
warm or in use, and gives the slot back only ``release_delay`` seconds after the session
disconnected (``crash_release_delay`` after one that was lost): the time the service takes to
free it. A refusal by the service's limit (:class:`ConcurrencyLimitError`) is a capacity
signal: the pool waits (``release_delay``, doubling, up to a minute) before it tries again.
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

from ._protocol.limits import CRASH_RELEASE_DELAY, RELEASE_DELAY
from ._protocol.models import DEFAULT_MODEL
from ._session.backoff import retry_delay
from .budget import Budget, Lease, LocalBudget, check_limit
from .config import ConnectOptions, SessionConfig, seconds
from .errors import (
    ConcurrencyLimitError,
    ConnectionLostError,
    ConnectTimeoutError,
    PoolCapacityError,
    PoolTimeoutError,
    WarmrtcError,
)
from .session import Session, connect
from .source import VideoSource

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("warmrtc")

CAPACITY_MAX_DELAY = 60.0  # the longest wait after a refusal by the concurrency limit
BUDGET_POLL = 0.5  # seconds between tries for a slot of a full budget
STATE_POLL = 0.1  # seconds between looks at the warm sessions' states while acquire() waits


class PoolOptions(ConnectOptions, total=False):
    """:class:`WarmPool`'s keyword options: connect's, plus the pool's own."""

    model: str
    width: int
    height: int
    fmt: str
    fps: float
    max_idle: float
    acquire_timeout: float
    budget: int | Budget | None
    release_delay: float
    crash_release_delay: float
    max_session_duration: float | None


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool's counters."""

    warm: int  # connected, muted and ready to hand out
    in_use: int  # handed out and not yet released
    warming: int  # being connected right now
    replaced: int  # warm-ups started to replace a session handed out, expired or lost
    failed: int  # warm-ups that failed
    capacity_refusals: int = 0  # warm-ups the service's concurrency limit refused
    recycled: int = 0  # warm sessions replaced for their age (max_idle, max_session_duration)
    waiting_for_budget: int = 0  # warm-ups waiting for a slot of a full budget
    budget: int | None = None  # the budget's limit (None: no budget)
    budget_held: int = 0  # slots this pool holds (open sessions and ones being freed)
    held_back: str | None = None  # why fewer than ``size`` are warm or warming, if it is known
    last_error: str | None = None  # the last warm-up error, as text


@dataclass
class _Warm:
    session: Session
    since: float  # when its connect began: its age for max_idle and for the service's duration


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

    Limits: ``budget`` is the most sessions the pool may have open at once, warm, in use and
    being opened (an int, or a :class:`~warmrtc.budget.Budget` shared with other pools and
    processes such as :class:`warmrtc.RedisBudget`; None: no limit of its own). A slot is given
    back ``release_delay`` seconds after its session disconnected (``crash_release_delay``
    after a lost one). ``max_session_duration`` (the token's ``maxSessionDuration``) makes the
    pool replace a warm session before the service ends it: at 80% of it, and at most 30 s
    before. ``stats.held_back`` says why fewer than ``size`` sessions are warm.
    """

    size: int
    config: SessionConfig  # what every session is connected with
    budget: Budget | None
    max_idle: float
    acquire_timeout: float
    release_delay: float
    crash_release_delay: float
    max_session_duration: float | None
    last_error: Exception | None  # the last warm-up's error

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
        budget: int | Budget | None = None,
        release_delay: float = RELEASE_DELAY,
        crash_release_delay: float = CRASH_RELEASE_DELAY,
        max_session_duration: float | None = None,
        model: str = DEFAULT_MODEL,
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
        self.budget = _budget(budget)
        self._owns_budget = not isinstance(budget, Budget)
        self.release_delay = seconds("release_delay", release_delay, zero=True)
        self.crash_release_delay = seconds("crash_release_delay", crash_release_delay, zero=True)
        self.max_session_duration = (
            None
            if max_session_duration is None
            else seconds("max_session_duration", max_session_duration, optional=True)
        )
        # Bad options, size or format fail here, not in every background warm-up.
        VideoSource(width, height, fmt, fps).close()
        self.config = SessionConfig.of(model, **options)
        self.size = size
        self.max_idle = float(max_idle)
        self.acquire_timeout = float(acquire_timeout)
        # The age at which a warm session is replaced: idle too long, or near its end.
        self._max_age = self.max_idle
        if self.max_session_duration is not None:
            d = self.max_session_duration
            self._max_age = min(self._max_age, max(0.8 * d, d - 30))
        self._source_args = (width, height, fmt, fps)
        self._warm: deque[_Warm] = deque()
        self._in_use: set[Session] = set()
        self._warmups: set[asyncio.Task[None]] = set()
        self._retiring: set[asyncio.Task[None]] = set()  # disconnects in flight
        self._changed: asyncio.Condition | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._slots: set[Lease] = set()  # every budget slot the pool holds
        self._lease_of: dict[Session, Lease] = {}
        self._waiting_for_budget = 0
        self._capacity_until = 0.0  # monotonic: no warm-up before this (a limit refusal)
        self._refusal_streak = 0
        self._capacity_refusals = 0
        self._replaced = 0
        self._recycled = 0
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

    async def wait_warm(self, timeout: float | None = None, *, count: int | None = None) -> None:
        """Waits until ``count`` sessions (default ``size``) are warm, e.g. before opening the
        doors. Under a budget or limit smaller than ``size``, pass what it allows."""
        want = self.size if count is None else count
        if isinstance(want, bool) or not isinstance(want, int) or not 1 <= want <= self.size:
            raise ValueError(f"count must be an int from 1 to size ({self.size}), got {count!r}")
        changed = self._started()
        async with asyncio.timeout(timeout):
            async with changed:
                await changed.wait_for(lambda: self._ready() >= want or self._stopped())
        self._raise_if_stopped()

    async def close(self) -> None:
        """Disconnects every session, warm and in use, and stops warming. Idempotent.

        The budget's slots are given back ``release_delay`` after (they count until then)."""
        if self._closed:
            return
        self._closed = True
        tasks = [*self._warmups, *([self._keeper] if self._keeper else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._retiring, return_exceptions=True)
        sessions = [w.session for w in self._warm] + list(self._in_use)
        self._warm.clear()
        await asyncio.gather(*(_dispose(s) for s in sessions), return_exceptions=True)
        await asyncio.gather(
            *(self._give_back(lease, self.release_delay) for lease in list(self._slots))
        )
        self._lease_of.clear()
        if self._owns_budget and self.budget is not None:
            await self.budget.aclose()
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

        Waits up to ``timeout`` (default ``acquire_timeout``; 0: not at all) when none is warm,
        then raises PoolCapacityError when the budget or the service's concurrency limit held
        warm-ups back (the message says which), else PoolTimeoutError; raises the service's
        error at once if warming cannot succeed (a refused key, an unknown model).
        """
        if timeout is not None and (isinstance(timeout, bool) or not timeout >= 0):
            raise ValueError(f"timeout must be >= 0 (seconds) or None, got {timeout!r}")
        session = await self._take(self.acquire_timeout if timeout is None else timeout)
        try:
            yield session
        finally:
            self._in_use.discard(session)
            lost = _dropped(session)  # the service frees a dropped session's slot later
            await _dispose(session)
            lease = self._lease_of.pop(session, None)
            if lease is not None:
                delay = self.crash_release_delay if lost else self.release_delay
                await self._give_back(lease, delay)

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
                    raise self._timeout_error(timeout)
                # Woken by the pool's changes, and a look at the warm sessions' states at least
                # every STATE_POLL: one that was reconnecting is taken as soon as it is back.
                try:
                    await asyncio.wait_for(changed.wait(), min(remaining, STATE_POLL))
                except TimeoutError:
                    pass

    def _timeout_error(self, timeout: float) -> PoolTimeoutError:
        stats = self.stats
        head = (
            f"no warm session within {timeout:g} s ({stats.in_use} in use, "
            f"{stats.warming} warming, size {self.size})"
        )
        if stats.held_back is not None:
            return PoolCapacityError(f"{head}: {stats.held_back}")
        why = f"; last warm-up error: {self.last_error}" if self.last_error else ""
        return PoolTimeoutError(head + why)

    @property
    def stats(self) -> PoolStats:
        """The pool's counters now (:class:`warmrtc.PoolStats`)."""
        return PoolStats(
            warm=len(self._warm),
            in_use=len(self._in_use),
            warming=len(self._warmups),
            replaced=self._replaced,
            failed=self._failed,
            capacity_refusals=self._capacity_refusals,
            recycled=self._recycled,
            waiting_for_budget=self._waiting_for_budget,
            budget=None if self.budget is None else self.budget.limit,
            budget_held=len(self._slots),
            held_back=self._held_back(),
            last_error=None if self.last_error is None else str(self.last_error),
        )

    def _held_back(self) -> str | None:
        """Why warm-ups wait now (None when none waits for capacity)."""
        backoff = self._capacity_until - time.monotonic()
        if backoff > 0 and not self._stopped():
            return (
                f"the service's concurrency limit refused {self._capacity_refusals} warm-up(s) "
                f"(last: {self.last_error}); next try in {backoff:.1f} s"
            )
        if self._waiting_for_budget and self.budget is not None:
            return (
                f"the budget is full ({self.budget.limit} sessions; this pool holds "
                f"{len(self._slots)}, {len(self._in_use)} in use); "
                f"{self._waiting_for_budget} warm-up(s) wait for a slot"
            )
        return None

    def __repr__(self) -> str:
        s = self.stats
        return (
            f"WarmPool(size={self.size}, warm={s.warm}, in_use={s.in_use}, "
            f"warming={s.warming}, budget={s.budget}, closed={self._closed})"
        )

    # ---- warming ------------------------------------------------------------------------

    def _ready(self) -> int:
        """Warm sessions not lost (a lost one waits in ``_warm`` for the keeper to retire it)."""
        return sum(w.session.state != "disconnected" for w in self._warm)

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
        lost = _dropped(warm.session)
        task = asyncio.get_running_loop().create_task(self._dispose_and_free(warm.session, lost))
        self._retiring.add(task)  # tracked so that close() waits for it
        task.add_done_callback(self._retiring.discard)
        self._replace()

    async def _dispose_and_free(self, session: Session, lost: bool) -> None:
        await _dispose(session)
        lease = self._lease_of.pop(session, None)
        if lease is not None:
            await self._give_back(lease, self.crash_release_delay if lost else self.release_delay)

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
            await self._wait_for_capacity()
            try:
                lease = await self._take_slot()
            except RuntimeError as e:  # a budget this pool cannot use (closed, another loop)
                self.last_error = e
                await self._give_up(e)
                return
            source = VideoSource(*self._source_args)
            started = time.monotonic()  # the service counts a session's duration from here on
            try:
                session = await connect(source, self.config, start_muted=True)
            except Exception as e:
                source.close()
                self._failed += 1
                self.last_error = e
                if isinstance(e, ConcurrencyLimitError):
                    if lease is not None:  # the service opened nothing for it
                        await self._give_back(lease, 0)
                    self._refused(e)
                    await self._notify()
                    continue
                if lease is not None:
                    await self._give_back(lease, self.release_delay)
                # Anything but a WarmrtcError is a bug or a bad option: retrying cannot help.
                if not isinstance(e, WarmrtcError) or not e.retryable:
                    await self._give_up(e)
                    return
                delay = retry_delay(attempt + 1)
                log.warning("warm pool: warm-up failed (%s); again in %g s", e, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                source.close()  # close() gives the lease back
                raise
            self._refusal_streak = 0
            if lease is not None:
                self._lease_of[session] = lease
            if self._closed:
                await self._dispose_and_free(session, False)
                return
            self._warm.append(_Warm(session, started))
            # No longer warming from here on: _fill() must count this session once.
            if me is not None:
                self._warmups.discard(me)
            await self._notify()
            return

    async def _give_up(self, error: Exception) -> None:
        """Warming cannot succeed: no more warm-ups; acquire() and wait_warm() raise ``error``."""
        log.error("warm pool: %s; no more warm-ups", error)
        self._fatal = error
        me = asyncio.current_task()
        for task in self._warmups - {me}:
            task.cancel()  # they would fail the same way
        await self._notify()

    def _refused(self, error: ConcurrencyLimitError) -> None:
        """A capacity signal: no warm-up until a slot may have been freed."""
        self._capacity_refusals += 1
        now = time.monotonic()
        if now >= self._capacity_until:  # refusals of warm-ups already in flight add no wait
            self._refusal_streak += 1
            base = max(self.release_delay, 1.0)
            delay = min(CAPACITY_MAX_DELAY, base * 2 ** (self._refusal_streak - 1))
            self._capacity_until = now + delay
            log.warning("warm pool: %s; next warm-up in %g s", error, delay)

    async def _wait_for_capacity(self) -> None:
        while (wait := self._capacity_until - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def _take_slot(self) -> Lease | None:
        """A slot of the budget (None without one), waiting while it is full."""
        budget = self.budget
        if budget is None:
            return None
        failures = 0
        self._waiting_for_budget += 1
        try:
            for polls in itertools.count():  # ended by a slot or close()
                try:
                    lease = await budget.try_acquire()
                except RuntimeError:  # a budget this pool cannot use (closed, other loop)
                    raise
                except Exception as e:  # e.g. Redis is unreachable: try again later
                    self.last_error = e
                    failures += 1
                    delay = retry_delay(failures)
                    log.warning("warm pool: the budget failed (%r); again in %g s", e, delay)
                    await asyncio.sleep(delay)
                    continue
                if lease is not None:
                    self._slots.add(lease)
                    return lease
                if polls == 0:
                    log.info("warm pool: budget of %d full; a warm-up waits", budget.limit)
                    await self._notify()  # stats.held_back changed
                failures = 0
                await asyncio.sleep(BUDGET_POLL)
            raise AssertionError("unreachable")
        finally:
            self._waiting_for_budget -= 1

    async def _give_back(self, lease: Lease, after: float) -> None:
        self._slots.discard(lease)
        if self.budget is None:
            return
        try:
            await self.budget.release(lease, after=after)
        except Exception as e:  # the lease expires by itself (no one renews it any more)
            log.warning("warm pool: could not give a budget slot back (%r); it will expire", e)

    async def _keep(self) -> None:
        """Replaces warm sessions that were lost, idled past max_idle or near their end."""
        # Checked often enough that a session near its end is replaced with time to spare.
        period = min(self._max_age / 8, 1.0)
        while True:
            await asyncio.sleep(period)
            self._retire_lost()
            expired = time.monotonic() - self._max_age
            for warm in [w for w in self._warm if w.since < expired]:
                self._recycled += 1
                self._retire(warm)

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()


def _budget(budget: int | Budget | None) -> Budget | None:
    if budget is None or isinstance(budget, Budget):
        return budget
    if isinstance(budget, int) and not isinstance(budget, bool):
        return LocalBudget(check_limit(budget))
    kind = type(budget).__name__
    raise TypeError(f"budget must be an int, a warmrtc.Budget or None, got {kind}")


def _dropped(session: Session) -> bool:
    """True when the session ended by losing its connection (its websocket dropped, not
    closed): the service then frees its slot only after CRASH_RELEASE_DELAY. A session the app
    disconnected, or that the service ended or refused, was closed cleanly."""
    return session.state == "disconnected" and isinstance(
        session.last_error, ConnectionLostError | ConnectTimeoutError
    )


async def _dispose(session: Session) -> None:
    await session.disconnect()
    session.source.close()


__all__ = ["PoolOptions", "PoolStats", "WarmPool"]
