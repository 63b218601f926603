"""The blocking API: sessions, pools and spectators for plain threads (an OpenCV loop, a robot's
control loop).

Each blocking object is the twin of an async one (:class:`BlockingSession` of
:class:`~warmrtc.Session`, :class:`BlockingWarmPool` of :class:`~warmrtc.WarmPool`,
:class:`BlockingSpectator` of :class:`~warmrtc.Spectator`), which lives on a private event loop
in a daemon thread: properties and plain methods are the async object's own, coroutines block
the calling thread until that loop has run them, async iterators become plain iterators. A twin
is checked against its async class when it is defined: one that lacks a public name of it
does not import, so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import numpy as np

from ._media.room import unfinished
from ._protocol.models import DEFAULT_MODEL
from .config import ConnectOptions, SessionConfig
from .events import Event
from .latency import Latency
from .pool import PoolStats, WarmPool
from .session import Session, connect
from .source import VideoSource
from .state import State
from .stats import ConnectStep, SessionStats
from .watch import Spectator, watch

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .budget import Budget
    from .config import FrameCallback, OutputFormat
    from .errors import WarmrtcError
    from .pool import PoolOptions

log = logging.getLogger("warmrtc")
T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

EXIT_GRACE = 10.0  # seconds the interpreter's exit waits for open sessions to disconnect
CANCEL_GRACE = 10.0  # seconds an interrupted call waits for its work to be cancelled
# Seconds a loop that is done with keeps running for the room joins and leaves still under way
# on it (a connect that timed out in the middle of a join): they end, and the room is left,
# before the loop closes.
DRAIN_TIMEOUT = 30.0


class _LoopThread:
    """A private event loop in a daemon thread. Its end (``stop()``) lets what still runs on it
    finish first, bounded: a room join that outlived its caller, and the leave after it. At
    interpreter exit it closes what is still open on it (``closers``) before the interpreter
    finalizes, so that no session is left to reconnect or call back into a finalizing one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="warmrtc-loop", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the loop and waits for it. Interrupted (Ctrl-C) or timed out, the
        work is cancelled and its clean-up waited for (bounded) before the error goes on."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(
                "a blocking warmrtc call from the session's own loop thread (an on_frame or "
                "on_state callback) would wait for itself; use the async Session there"
            )
        if self._stopping or self.loop.is_closed():
            coro.close()
            raise RuntimeError("this blocking object is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            concurrent.futures.wait([future], CANCEL_GRACE)
            raise

    @property
    def stopped(self) -> bool:
        return self._stopping

    def stop(self, *, wait: float | None = 10.0) -> None:
        """Ends the loop once the native work still running on it is done (DRAIN_TIMEOUT at
        most), then closes it, in its thread. Waits ``wait`` seconds for that (None: not at
        all: a connect that failed returns at once and its room is left in the background).
        Idempotent."""
        atexit.unregister(self._at_exit)
        if not self._stopping and not self.loop.is_closed():
            self._stopping = True
            try:
                self.loop.call_soon_threadsafe(self._start_drain)
            except RuntimeError:  # closed meanwhile
                pass
        if wait is not None and threading.current_thread() is not self._thread:
            self._thread.join(wait)

    def _start_drain(self) -> None:
        self.loop.create_task(self._drain(), name="warmrtc-loop-drain")

    async def _drain(self) -> None:
        loop = self.loop
        deadline = loop.time() + DRAIN_TIMEOUT
        while (pending := unfinished(loop)) and (left := deadline - loop.time()) > 0:
            await asyncio.wait(pending, timeout=left)
        if unfinished(loop):
            log.warning(
                "a room join or leave did not end within %g s; closing anyway", DRAIN_TIMEOUT
            )
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks(loop) if t is not me]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=CANCEL_GRACE)
        loop.stop()

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def _at_exit(self) -> None:
        if self.closers and self._thread.is_alive() and not self._stopping:
            try:
                self.run(_close_all(self.closers), EXIT_GRACE)
            except Exception:  # exiting anyway: a session that cannot close is not news here
                pass
        self.stop(wait=EXIT_GRACE)


async def _close_all(closers: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    await asyncio.gather(*(close() for close in closers), return_exceptions=True)


# ---- how a twin is made from its async class ------------------------------------------


def _public(cls: type) -> set[str]:
    """The public names of a class: its methods and properties, and the attributes its
    instances are declared to have."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    for klass in cls.__mro__:
        names |= {n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_")}
    return names


class _Twin(Generic[T]):
    """The blocking twin of an async object: ``_target`` on the loop of ``_runner``."""

    _target: T
    _runner: _LoopThread

    def __init_subclass__(cls, *, twin_of: type, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = _public(twin_of) - _public(cls)
        if missing:
            raise TypeError(
                f"{cls.__name__} lacks {', '.join(sorted(missing))} of {twin_of.__name__}"
            )

    def __repr__(self) -> str:
        return f"Blocking{self._target!r}"


class _Same(Generic[T]):
    """A name of the twin that is the async object's own (a property, a plain method)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, twin: None, owner: type) -> Self: ...
    @overload
    def __get__(self, twin: _Twin[Any], owner: type) -> T: ...
    def __get__(self, twin: _Twin[Any] | None, owner: type) -> Self | T:
        if twin is None:
            return self
        return getattr(twin._target, self._name)  # type: ignore[no-any-return]


def _blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[_Twin[Any], P], R]:
    """The twin of a coroutine method: the same arguments, run on the loop, waited for."""

    def call(twin: _Twin[Any], *args: P.args, **kwargs: P.kwargs) -> R:
        return twin._runner.run(method(twin._target, *args, **kwargs))

    call.__name__ = method.__name__
    call.__doc__ = f"{method.__doc__}\n\n(Blocks the calling thread until done.)"
    return call


# ---- the twins ---------------------------------------------------------------------------


class BlockingSession(_Twin[Session], twin_of=Session):
    """A :class:`Session` driven from ordinary threads. Use it as a context manager.

    Callbacks (``on_frame``, ``on_state``, ``on_event``) run on the session's private loop
    thread; a blocking call from one of them raises RuntimeError (it would wait for itself).
    """

    def __init__(self, session: Session, runner: _LoopThread, *, owns_runner: bool = True) -> None:
        self._target = session
        self._runner = runner
        self._owns_runner = owns_runner  # a pool's sessions share the pool's loop
        if owns_runner:
            runner.closers.append(session.disconnect)

    state: _Same[State] = _Same()
    muted: _Same[bool] = _Same()
    last_error: _Same[WarmrtcError | None] = _Same()
    billed_seconds: _Same[int] = _Same()
    latency: _Same[Latency | None] = _Same()
    session_id: _Same[str | None] = _Same()
    room_name: _Same[str | None] = _Same()
    source: _Same[VideoSource] = _Same()
    config: _Same[SessionConfig] = _Same()
    connect_steps: _Same[tuple[ConnectStep, ...]] = _Same()
    mute: _Same[Callable[[], None]] = _Same()
    unmute: _Same[Callable[[], None]] = _Same()
    set_prompt = _blocking(Session.set_prompt)
    set_image = _blocking(Session.set_image)

    def frames(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """Generated frames until the session ends; ``timeout`` bounds the wait for each one
        (``queue.Empty`` past it). A reader that stops reading only loses old frames: the
        session's loop never waits for it."""
        return self._target.frames().in_thread(timeout)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The session's events from now on, until it ends; ``timeout`` bounds the wait for
        each one (``queue.Empty`` past it). The session's loop never waits for the reader: one
        that falls behind loses the oldest (with a warning)."""
        return self._target.events().in_thread(timeout)

    def stats(self, *, timeout: float = 2.0) -> SessionStats:
        """:meth:`Session.stats`, from a plain thread."""
        return self._runner.run(self._target.stats(timeout=timeout), timeout + CANCEL_GRACE)

    def disconnect(self) -> None:
        """Disconnects (and stops the private loop, unless it is a pool's). Idempotent."""
        if self._runner.stopped:
            return
        self._runner.run(self._target.disconnect())
        if self._owns_runner:
            self._runner.stop()

    def __enter__(self) -> BlockingSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.disconnect()


def connect_blocking(
    source: VideoSource,
    model: str | SessionConfig = DEFAULT_MODEL,
    *,
    start_muted: bool = False,
    **options: Unpack[ConnectOptions],
) -> BlockingSession:
    """:func:`warmrtc.connect` for plain threads: same arguments, returns a BlockingSession.

    A connect that fails raises within its ``timeout``; what it started (a room join in
    flight) ends in the background, and the room is left.
    """
    connecting = connect(source, model, start_muted=start_muted, **options)  # bad options: here
    runner = _LoopThread()
    try:
        session = runner.run(_awaited(connecting))
    except BaseException:
        runner.stop(wait=None)
        raise
    return BlockingSession(session, runner)


class BlockingWarmPool(_Twin[WarmPool], twin_of=WarmPool):
    """:class:`WarmPool` for plain threads: same arguments; use it as a context manager.

    ``with pool.acquire() as session:`` hands out a :class:`BlockingSession`, warm and muted.
    """

    def __init__(self, size: int, **options: Unpack[PoolOptions]) -> None:
        self._target = WarmPool(size, **options)  # bad options raise here, in the caller
        self._runner = _LoopThread()
        try:
            self._runner.run(self._target.start())
        except BaseException:
            self._runner.stop(wait=None)
            raise
        self._runner.closers.append(self._target.close)

    size: _Same[int] = _Same()
    config: _Same[SessionConfig] = _Same()
    budget: _Same[Budget | None] = _Same()
    max_idle: _Same[float] = _Same()
    acquire_timeout: _Same[float] = _Same()
    release_delay: _Same[float] = _Same()
    crash_release_delay: _Same[float] = _Same()
    max_session_duration: _Same[float | None] = _Same()
    last_error: _Same[Exception | None] = _Same()
    stats: _Same[PoolStats] = _Same()
    start = _blocking(WarmPool.start)
    wait_warm = _blocking(WarmPool.wait_warm)

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[BlockingSession]:
        """:meth:`WarmPool.acquire`: a warm, muted session for the ``with`` block."""
        taking = self._target.acquire(timeout)
        session = self._runner.run(taking.__aenter__())
        try:
            yield BlockingSession(session, self._runner, owns_runner=False)
        finally:
            self._runner.run(taking.__aexit__(None, None, None))

    def close(self) -> None:
        """Disconnects every session and stops the pool's loop (warm-ups still joining end in
        the background, and their rooms are left). Idempotent."""
        if self._runner.stopped:
            return
        self._runner.run(self._target.close())
        self._runner.stop()

    def __enter__(self) -> BlockingWarmPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class BlockingSpectator(_Twin[Spectator], twin_of=Spectator):
    """A :class:`~warmrtc.Spectator` for plain threads; use it as a context manager."""

    def __init__(self, spectator: Spectator, runner: _LoopThread) -> None:
        self._target = spectator
        self._runner = runner
        runner.closers.append(spectator.close)

    room_name: _Same[str] = _Same()
    session_id: _Same[str | None] = _Same()
    frames_received: _Same[int] = _Same()
    closed: _Same[bool] = _Same()

    def frames(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """The model's frames until the session ends; ``timeout`` bounds the wait for each
        (``queue.Empty`` past it)."""
        return self._target.frames().in_thread(timeout)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def close(self) -> None:
        """Leaves the room and stops the private loop. Idempotent."""
        if self._runner.stopped:
            return
        self._runner.run(self._target.close())
        self._runner.stop()

    def __enter__(self) -> BlockingSpectator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def watch_blocking(
    room: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    output_format: OutputFormat = "bgr24",
    on_frame: FrameCallback | None = None,
    timeout: float = 30,
) -> BlockingSpectator:
    """:func:`warmrtc.watch` for plain threads: same arguments (``room`` a room name)."""
    watching = watch(  # bad arguments raise here, in the caller
        room,
        api_key=api_key,
        base_url=base_url,
        output_format=output_format,
        on_frame=on_frame,
        timeout=timeout,
    )
    runner = _LoopThread()
    try:
        spectator = runner.run(_awaited(watching))
    except BaseException:
        runner.stop(wait=None)
        raise
    return BlockingSpectator(spectator, runner)


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


__all__ = [
    "BlockingSession",
    "BlockingSpectator",
    "BlockingWarmPool",
    "connect_blocking",
    "watch_blocking",
]
