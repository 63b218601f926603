"""connect_blocking(): the session API for plain threads (an OpenCV loop, a robot's control loop).

The session lives on a private event loop in a daemon thread; every method here blocks the
calling thread until that loop has done the work.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ._protocol.models import DEFAULT_MODEL
from .config import ImageInput, SessionConfig
from .events import Event
from .pool import PoolStats, WarmPool
from .session import Session, _connect
from .source import VideoSource
from .state import State
from .stats import SessionStats
from .watch import Spectator, Watching, watch

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .config import ConnectOptions, FrameCallback, OutputFormat
    from .errors import WarmrtcError
    from .pool import PoolOptions

T = TypeVar("T")


EXIT_GRACE = 10.0  # seconds the interpreter's exit waits for open sessions to disconnect
CANCEL_GRACE = 10.0  # seconds an interrupted call waits for its work to be cancelled


class _LoopThread:
    """A private event loop in a daemon thread. At interpreter exit it closes what is still
    open on it (``closers``) before the interpreter finalizes, so that no session is left to
    reconnect or call back into a finalizing interpreter."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closers: list[Callable[[], Coroutine[Any, Any, None]]] = []
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="warmrtc-loop", daemon=True
        )
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
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            concurrent.futures.wait([future], CANCEL_GRACE)
            raise

    def stop(self) -> None:
        atexit.unregister(self._at_exit)
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    def _at_exit(self) -> None:
        if self.closers and self._thread.is_alive():
            try:
                self.run(_close_all(self.closers), EXIT_GRACE)
            except Exception:  # exiting anyway: a session that cannot close is not news here
                pass
        self.stop()


async def _close_all(closers: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    await asyncio.gather(*(close() for close in closers), return_exceptions=True)


class BlockingSession:
    """A :class:`Session` driven from ordinary threads. Use it as a context manager."""

    def __init__(self, session: Session, runner: _LoopThread, *, owns_runner: bool = True) -> None:
        self._session = session
        self._runner = runner
        self._owns_runner = owns_runner  # a pool's sessions share the pool's loop
        if owns_runner:
            runner.closers.append(session.disconnect)

    @property
    def state(self) -> State:
        return self._session.state

    @property
    def muted(self) -> bool:
        return self._session.muted

    @property
    def billed_seconds(self) -> int:
        return self._session.billed_seconds

    @property
    def last_error(self) -> WarmrtcError | None:
        return self._session.last_error

    @property
    def session_id(self) -> str | None:
        return self._session.session_id

    @property
    def source(self) -> VideoSource:
        return self._session.source

    def mute(self) -> None:
        self._session.mute()

    def unmute(self) -> None:
        self._session.unmute()

    def set_prompt(self, text: str, enhance: bool = True, *, timeout: float = 15) -> None:
        self._runner.run(self._session.set_prompt(text, enhance, timeout=timeout))

    def set_image(
        self, image: ImageInput | None, prompt: str | None = None, *, timeout: float = 30
    ) -> None:
        self._runner.run(self._session.set_image(image, prompt, timeout=timeout))

    def frames(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """Generated frames until the session ends; ``timeout`` bounds the wait for each one
        (``queue.Empty`` past it). A reader that stops reading only loses old frames: the
        session's loop never waits for it."""
        return self._session._frames.frames_in_thread(self._runner.loop, timeout)

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The session's events from now on, until it ends; ``timeout`` bounds the wait for
        each one (``queue.Empty`` past it). The session's loop never waits for the reader: one
        that falls behind loses the oldest (with a warning)."""
        return self._session._events.stream_in_thread(self._runner.loop, timeout)

    def stats(self, *, timeout: float = 2.0) -> SessionStats:
        """:meth:`Session.stats`, from a plain thread."""
        return self._runner.run(self._session.stats(timeout=timeout), timeout + 5)

    def disconnect(self) -> None:
        """Disconnects and stops the private loop. Idempotent."""
        if self._runner.loop.is_closed():
            return
        self._runner.run(self._session.disconnect())
        if self._owns_runner:
            self._runner.stop()

    def __enter__(self) -> BlockingSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.disconnect()

    def __repr__(self) -> str:
        return f"Blocking{self._session!r}"


def connect_blocking(
    source: VideoSource,
    model: str = DEFAULT_MODEL,
    *,
    start_muted: bool = False,
    **options: Unpack[ConnectOptions],
) -> BlockingSession:
    """:func:`warmrtc.connect` for plain threads: same arguments, returns a BlockingSession.

    Callbacks (``on_frame``, ``on_state``) run on the session's private loop thread.
    """
    config = SessionConfig.of(model, **options)  # bad options raise here, in the caller
    runner = _LoopThread()
    try:
        session = runner.run(_connect(source, config, bool(start_muted)))
    except BaseException:
        runner.stop()
        raise
    return BlockingSession(session, runner)


class BlockingWarmPool:
    """:class:`WarmPool` for plain threads: same arguments; use it as a context manager.

    ``with pool.acquire() as session:`` hands out a :class:`BlockingSession`, warm and muted.
    """

    def __init__(self, size: int, **options: Unpack[PoolOptions]) -> None:
        self._pool = WarmPool(size, **options)  # bad options raise here, in the caller
        self._runner = _LoopThread()
        try:
            self._runner.run(self._pool.start())
        except BaseException:
            self._runner.stop()
            raise
        self._runner.closers.append(self._pool.close)

    @property
    def stats(self) -> PoolStats:
        return self._pool.stats

    def wait_warm(self, timeout: float | None = None, *, count: int | None = None) -> None:
        self._runner.run(self._pool.wait_warm(timeout, count=count))

    @contextmanager
    def acquire(self, timeout: float | None = None) -> Iterator[BlockingSession]:
        taking = self._pool.acquire(timeout)
        session = self._runner.run(taking.__aenter__())
        try:
            yield BlockingSession(session, self._runner, owns_runner=False)
        finally:
            self._runner.run(taking.__aexit__(None, None, None))

    def close(self) -> None:
        """Disconnects every session and stops the pool's loop. Idempotent."""
        if self._runner.loop.is_closed():
            return
        self._runner.run(self._pool.close())
        self._runner.stop()

    def __enter__(self) -> BlockingWarmPool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Blocking{self._pool!r}"


class BlockingSpectator:
    """A :class:`~warmrtc.watch.Spectator` for plain threads; use it as a context manager."""

    def __init__(self, spectator: Spectator, runner: _LoopThread) -> None:
        self._spectator = spectator
        self._runner = runner
        runner.closers.append(spectator.close)

    @property
    def room_name(self) -> str:
        return self._spectator.room_name

    @property
    def frames_received(self) -> int:
        return self._spectator.frames_received

    def frames(self, timeout: float | None = None) -> Iterator[np.ndarray]:
        """The model's frames until the session ends; ``timeout`` bounds the wait for each
        (``queue.Empty`` past it)."""
        return self._spectator._frames.frames_in_thread(self._runner.loop, timeout)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    def close(self) -> None:
        """Leaves the room and stops the private loop. Idempotent."""
        if self._runner.loop.is_closed():
            return
        self._runner.run(self._spectator.close())
        self._runner.stop()

    def __enter__(self) -> BlockingSpectator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Blocking{self._spectator!r}"


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
        runner.stop()
        raise
    return BlockingSpectator(spectator, runner)


async def _awaited(watching: Watching) -> Spectator:
    return await watching
