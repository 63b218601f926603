"""Lifecycle: a session's state machine, its reconnect loop and its one shutdown.

The lifecycle owns ``state`` and ``last_error`` and nothing else. It drives a :class:`Link`
(whatever connects: the control channel plus the media room in a real session, a fake in unit
tests) and hears from it through plain method calls: ``lost()``, ``generation_started()``,
``frame_received()``... Every change goes through ``_set_state()``, which checks the transition
table, logs ``old -> new`` and calls ``on_state``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from .._media.native_call import Settling, run_to_end
from ..errors import (
    ConcurrencyLimitError,
    ConnectionLostError,
    ConnectTimeoutError,
    SessionClosedError,
    WarmrtcError,
)
from ..events import Event, ReconnectEvent, StateChangeEvent
from ..state import State
from .backoff import retry_delay

log = logging.getLogger("warmrtc")

# After a concurrency-limit refusal: the service frees a crashed client's slot after about 45 s,
# so the attempts are spread over a minute or more.
CAPACITY_DELAY = 15.0


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.CONNECTING: frozenset({S.CONNECTED, S.DISCONNECTED}),
    S.CONNECTED: frozenset({S.GENERATING, S.RECONNECTING, S.DISCONNECTED}),
    S.GENERATING: frozenset({S.CONNECTED, S.RECONNECTING, S.DISCONNECTED}),
    S.RECONNECTING: frozenset({S.CONNECTED, S.DISCONNECTED}),
    S.DISCONNECTED: frozenset(),
}


class InvalidTransition(RuntimeError):
    """A transition the table does not allow: a bug in warmrtc, never the app's doing."""


class Link(Protocol):
    """What the lifecycle connects and tears down, once per attempt."""

    @property
    def session_id(self) -> str | None:
        """The service's id of the current (or last) connection, for the logs."""

    async def establish(self, timeout: float) -> None:
        """Connects everything within ``timeout`` seconds; raises a WarmrtcError otherwise."""

    async def teardown(self, *, wait_native: bool) -> None:
        """Releases everything; never raises. ``wait_native``: wait for native calls in flight
        instead of handing them to a background clean-up."""


class Gate(Protocol):
    """Whether frames are held back (the session's mute switch)."""

    @property
    def muted(self) -> bool: ...


class _NoLink:
    """The link before connect(): a shutdown before it has nothing to tear down."""

    session_id = None

    async def establish(self, timeout: float) -> None:
        raise RuntimeError("the lifecycle has no link: call connect(link)")

    async def teardown(self, *, wait_native: bool) -> None:
        return None


class Lifecycle:
    """State, reconnects and shutdown of one session. Methods run on the session's loop."""

    def __init__(
        self,
        *,
        timeout: float,
        reconnect_attempts: int,
        gate: Gate,
        on_state: Callable[[State], None] | None = None,
        on_event: Callable[[Event], None] = lambda _event: None,
        before_shutdown: Callable[[], None] = lambda: None,
    ) -> None:
        self._link: Link = _NoLink()  # the one connect() is given
        self._timeout = timeout
        self._reconnect_attempts = reconnect_attempts
        self._gate = gate
        self._on_state = on_state
        self._on_event = on_event
        self._before_shutdown = before_shutdown
        self._state = State.CONNECTING
        self._reconnect_task: asyncio.Task[None] | None = None
        self._shutdown_task: Settling | None = None
        self._exit_guard: asyncio.Task[None] | None = None
        self._lost_while_establishing: WarmrtcError | None = None
        self.last_error: WarmrtcError | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def closing(self) -> bool:
        """True from the moment a shutdown starts: nothing may go live or reconnect after it."""
        return self._shutdown_task is not None

    # ---- connecting ----------------------------------------------------------------------

    async def connect(self, link: Link) -> None:
        """The first establish of ``link``, the one this lifecycle drives from now on. On any
        failure (cancellation too) everything is released and the error propagates; the whole
        call takes ``timeout`` at the most (the clean-up goes on in the background past that)."""
        if self._state != State.CONNECTING or not isinstance(self._link, _NoLink):
            raise RuntimeError("connect() is called once per Lifecycle")
        self._link = link
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            await self._establish()
        except BaseException as e:
            if isinstance(e, WarmrtcError):
                self.last_error = e
            # Within the caller's timeout: the clean-up gets what is left of it, and goes on in
            # the background past it (a native call in flight is waited for, then torn down).
            self._begin_shutdown(wait_native=False)
            assert self._shutdown_task is not None
            left = deadline - loop.time()
            if left > 0:
                await asyncio.wait([asyncio.shield(self._shutdown_task)], timeout=left)
            raise
        self._set_state(State.CONNECTED, "connected")
        # Wakes only when the loop itself is shutting down (asyncio.run() ending with the
        # session still open): then it closes the session quietly, before the loop is gone.
        self._exit_guard = asyncio.get_running_loop().create_task(
            self._close_at_loop_exit(), name="warmrtc-exit-guard"
        )

    async def _close_at_loop_exit(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if not self.closing:
                log.info(
                    "session %s: the event loop is ending; disconnecting", self._link.session_id
                )
                # The loop runs until this task ends: the shutdown must not cancel it, and must
                # not leave anything to a background task the loop would never run.
                self._exit_guard = None
                self._begin_shutdown(wait_native=True)
                await self._await_shutdown()
            raise

    # ---- what the link and the session report -------------------------------------------

    def lost(self, error: WarmrtcError) -> None:
        """The control channel or the media room went away: reconnect (once at a time), or
        disconnect at once when ``error`` is not retryable (the service ended the session on
        purpose). A loss while connecting or reconnecting fails that attempt once it returns."""
        if self.closing or self._state == State.DISCONNECTED:
            return
        if self._state == State.CONNECTING or self._reconnecting():
            self._lost_while_establishing = error
            return
        self.last_error = error
        if not error.retryable:
            # The service ended the session, or revoked the key: no retry can help.
            log.warning("session %s: %s; disconnecting", self._link.session_id, error)
            self._begin_shutdown(wait_native=False)
            return
        log.warning("session %s: %s; reconnecting", self._link.session_id, error)
        self._set_state(State.RECONNECTING, str(error))
        self._reconnect_task = asyncio.get_running_loop().create_task(
            self._reconnect(), name="warmrtc-reconnect"
        )

    def media_reconnecting(self) -> None:
        """The media room is resuming by itself (ICE restart); the control channel is fine."""
        if self._state in (State.CONNECTED, State.GENERATING) and not self.closing:
            self._set_state(State.RECONNECTING, "the media room is resuming")

    def media_reconnected(self) -> None:
        if self._state == State.RECONNECTING and not self._reconnecting() and not self.closing:
            self._set_state(State.CONNECTED, "the media room resumed")

    def generation_started(self) -> None:
        """The service says the model started, or a generated frame arrived."""
        if self._state == State.CONNECTED and not self._gate.muted and not self.closing:
            self._set_state(State.GENERATING, "the model is generating")

    frame_received = generation_started

    def generation_stopped(self, why: str) -> None:
        """Muted, or the service said generation ended."""
        if self._state == State.GENERATING and not self.closing:  # a shutdown goes straight on
            self._set_state(State.CONNECTED, why)

    # ---- reconnecting ---------------------------------------------------------------------

    def _reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    async def _establish(self) -> None:
        """One establish; a loss reported while it ran fails it (nothing reports it again)."""
        self._lost_while_establishing = None
        await self._link.establish(self._timeout)
        if (lost := self._lost_while_establishing) is not None:
            raise ConnectionLostError(f"lost while connecting: {lost}")

    async def _reconnect(self) -> None:
        """Tears down and establishes again, with backoff. Whatever happens, it ends in a
        visible state: connected, or disconnected with ``last_error``."""
        try:
            attempts = self._reconnect_attempts
            for attempt in range(1, attempts + 1):
                await self._link.teardown(wait_native=False)
                try:
                    await self._establish()
                except WarmrtcError as e:
                    self.last_error = e
                    self._on_event(ReconnectEvent(attempt, attempts, e))
                    if not e.retryable or attempt == attempts:
                        break  # a refused key or an unknown model: another try cannot fix it
                    delay = retry_delay(attempt)
                    if isinstance(e, ConnectTimeoutError):
                        # It waited its whole timeout already, most often for a network that
                        # is down: the next attempt goes at once, to be there when it is back.
                        delay = 0.0
                    elif isinstance(e, ConcurrencyLimitError):
                        delay = max(delay, CAPACITY_DELAY)
                    log.warning("reconnect attempt %d failed: %s; again in %g s", attempt, e, delay)
                    await asyncio.sleep(delay)
                    continue
                self._on_event(ReconnectEvent(attempt, attempts))
                self._set_state(State.CONNECTED, f"reconnected (attempt {attempt})")
                return
            last = self.last_error
            if last is not None and not last.retryable:
                error: WarmrtcError = last  # its own class says why: no retry can help
            elif attempts:
                error = ConnectionLostError(
                    f"reconnecting failed after {attempts} attempts: {last}"
                )
            else:
                error = ConnectionLostError(
                    f"the connection was lost and reconnect_attempts is 0: {last}"
                )
        except asyncio.CancelledError:
            raise  # the shutdown cancels it
        except Exception as e:  # a bug must still end the session visibly, never a dead task
            log.exception("session %s: reconnecting failed unexpectedly", self._link.session_id)
            error = ConnectionLostError(f"reconnecting failed: {e!r}")
        log.error("session %s: %s", self._link.session_id, error)
        self.last_error = error
        self._begin_shutdown(wait_native=False)

    # ---- shutting down --------------------------------------------------------------------

    async def close(self) -> None:
        """The app's disconnect(): idempotent, safe from any state, waits for the shutdown."""
        self._begin_shutdown(wait_native=True)
        await self._await_shutdown()

    def _begin_shutdown(self, *, wait_native: bool) -> None:
        if self._shutdown_task is None:
            # A shutdown runs to its end (it is bounded): cancelled before its first step (as
            # asyncio.run() ending cancels every task left) it would never close the control
            # channel or leave the room at all.
            self._shutdown_task = run_to_end(self._shut_down(wait_native))

    async def _await_shutdown(self) -> None:
        # Shielded: a caller cancelled while waiting (a pool closing, a timeout) does not cut
        # the shutdown short, which would leave connections open.
        assert self._shutdown_task is not None
        await asyncio.shield(self._shutdown_task)

    async def _shut_down(self, wait_native: bool) -> None:
        try:
            self._before_shutdown()  # e.g. close the gate: nothing flows from here on
            me = asyncio.current_task()
            for task in (self._reconnect_task, self._exit_guard):
                if task is not None and task is not me and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            await self._link.teardown(wait_native=wait_native)
        except Exception:  # a bug: said here, where nobody awaits the shutdown's outcome
            log.exception("session %s: the shutdown failed", self._link.session_id)
        finally:
            self._set_state(State.DISCONNECTED, str(self.last_error or "disconnected"))

    def check_open(self) -> None:
        """Raises SessionClosedError once a shutdown has started."""
        if self.closing:
            raise SessionClosedError("the session is disconnected; connect a new one")

    # ---- the one setter ---------------------------------------------------------------------

    def _set_state(self, new: State, why: str) -> None:
        old = self._state
        if new == old:
            return
        if new not in TRANSITIONS[old]:
            raise InvalidTransition(f"{old} -> {new} is not a session transition ({why})")
        self._state = new
        log.info("session %s: %s -> %s (%s)", self._link.session_id, old, new, why)
        # The event first: at ``disconnected`` on_state ends the session's readers.
        self._on_event(StateChangeEvent(old, new, why))
        if self._on_state is not None:
            try:
                self._on_state(new)
            except Exception:
                log.exception("on_state raised; the session goes on")


__all__ = ["TRANSITIONS", "InvalidTransition", "Lifecycle", "Link", "State"]
