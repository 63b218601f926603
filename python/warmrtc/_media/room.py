"""Room: one join of a LiveKit room, and its leave, as a session, a spectator and the local
emulator's model all make them.

livekit's calls on a room cannot be called off once they reached its FFI. A join cut off
half-way is finished natively anyway, and then livekit's FFI, waiting for a caller that vanished,
terminates the process some seconds later (see :mod:`.native_call`). So a join runs to its end
whatever happens to its caller, every other call (publish, stats) runs shielded, and a leave
waits for those first, bounded, then leaves. Nothing here waits without a bound: a leave that
livekit does not finish in ``LEAVE_TIMEOUT`` is given up with a warning.

Joins and leaves that outlive their caller (a connect that timed out, a close that was not
waited for) are kept in a registry of their loop's, :func:`unfinished`: whoever owns a loop
waits for them before closing it (the blocking API's loop thread does), so no room is left
joined and livekit never hands an event to a closed loop.

A room left while a remote participant still publishes is never freed by livekit: its Rust
SDK (as bundled with livekit 1.2.1) closes a room without releasing the remote participants,
and each remote publication holds callbacks that hold its participant, which holds the room's
engine (livekit/rust-sdks #1378, #1435). A participant that leaves first is released as it
goes. So a leave can be told to wait, bounded, for the publishers to go first
(``publishers_first``): a session, whose service ends its model's participant when the control
channel closes, does. And once a leave is done, the memory the allocator keeps is handed back
to the system (:mod:`.heap`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from livekit import rtc

from .. import _trace
from ..errors import ConnectionLostError
from . import ffi_process, heap
from .native_call import Settling, outcome, run_to_end

log = logging.getLogger("warmrtc")
T = TypeVar("T")

NATIVE_GRACE = 10.0  # seconds a leave waits for a join or publish still in flight
LEAVE_TIMEOUT = 10.0  # seconds livekit's leave (Room.disconnect) may take

# The joins, calls and leaves of every room, by loop, until they end.
_unfinished: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[asyncio.Future[Any]]] = (
    weakref.WeakKeyDictionary()
)


def unfinished(loop: asyncio.AbstractEventLoop) -> set[asyncio.Future[Any]]:
    """The joins, livekit calls and leaves still running on ``loop`` (a copy)."""
    return set(_unfinished.get(loop, ()))


def _track(future: asyncio.Future[Any]) -> None:
    loop = future.get_loop()
    running = _unfinished.setdefault(loop, set())
    running.add(future)
    future.add_done_callback(running.discard)


def room_options() -> rtc.RoomOptions:
    # ICE candidates gathered once, as browsers do. Gathering continually re-enumerates the
    # networks over and over, and WebRTC's logs of each pass cross the FFI into Python: that
    # was most of a warm session's idle CPU. A resume or re-join gathers afresh anyway.
    once = rtc.ContinualGatheringPolicy.GATHER_ONCE
    return rtc.RoomOptions(rtc_config=rtc.RtcConfiguration(continual_gathering_policy=once))


class Room:
    """``join()`` once, livekit calls through ``call()``, then ``leave()`` (idempotent, from any
    state, bounded). All on one loop. ``rtc`` is livekit's room, for its events and tracks."""

    def __init__(self, name: str) -> None:
        ffi_process.prepare()  # a viewer-only process has rooms and no source
        self.rtc = rtc.Room()
        self._name = name  # for logs and traces: whose room this is
        self._in_flight: set[asyncio.Future[Any]] = set()
        self._leaving: Settling | None = None

    @property
    def leaving(self) -> bool:
        """True from the moment a leave was asked for."""
        return self._leaving is not None

    async def join(self, url: str, token: str, options: rtc.RoomOptions | None = None) -> None:
        """Joins; the caller bounds the time. Cancelled or timed out, the join still runs to
        its end, and the room is left after it. Raises ConnectionLostError for a refused join."""
        settling = run_to_end(self._join_to_the_end(url, token, options or room_options()))
        self._in_flight.add(settling)
        settling.add_done_callback(self._in_flight.discard)
        _track(settling)
        try:
            await outcome(settling)
        except rtc.ConnectError as e:
            raise ConnectionLostError(f"cannot join the media room: {e}") from None

    async def _join_to_the_end(self, url: str, token: str, options: rtc.RoomOptions) -> None:
        _trace.mark(f"{self._name}.join")
        await self.rtc.connect(url, token, options)
        _trace.mark(f"{self._name}.joined", room=self.rtc.name)
        if self._leaving is not None:
            # Given up while it ran (a timeout, or the loop is ending, when nothing else may
            # get to run): leave here, so that no room outlives its owner or its loop.
            await self._disconnect()

    async def call(self, call: Coroutine[Any, Any, T]) -> T:
        """Awaits a livekit call on this room (a publish, stats) that cannot be called off:
        cancelled, the caller stops waiting and the call goes on, and a leave waits for it."""
        task = asyncio.ensure_future(call)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        task.add_done_callback(_retrieve)
        _track(task)
        return await asyncio.shield(task)

    def leave_soon(self, *, publishers_first: float = 0.0) -> Settling:
        """Starts the leave without waiting for it (it is in :func:`unfinished` until done).
        It runs to its end (it is bounded), even when the loop is ending: cancelled half-way,
        livekit's leave would leave the participant in the room. ``publishers_first``: seconds
        to wait at most for the remote participants that publish to leave before we do (see
        the module's docstring); the first call's value holds."""
        if self._leaving is None:
            self._leaving = run_to_end(self._leave(publishers_first))
            _track(self._leaving)
        return self._leaving

    async def leave(self, *, publishers_first: float = 0.0) -> None:
        """Leaves the room: after the calls in flight end (NATIVE_GRACE at most) and the remote
        publishers left (``publishers_first`` at most), livekit's leave (LEAVE_TIMEOUT at most).
        Idempotent; a cancelled caller leaves it running."""
        await asyncio.shield(self.leave_soon(publishers_first=publishers_first))

    async def _leave(self, publishers_first: float) -> None:
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=NATIVE_GRACE)
        if publishers_first > 0:
            await self._publishers_gone(publishers_first)
        try:
            await self._disconnect()
        finally:
            heap.release_soon()

    def remote_publishers(self) -> list[str]:
        """The identities of the remote participants that publish a track now."""
        return [p.identity for p in self.rtc.remote_participants.values() if p.track_publications]

    async def _publishers_gone(self, timeout: float) -> None:
        """Waits until no remote participant publishes (they left or unpublished), the room is
        no longer connected, or ``timeout`` seconds pass."""
        room = self.rtc
        gone = asyncio.Event()

        def check(*_args: object) -> None:
            if not self.remote_publishers() or not room.isconnected():
                gone.set()

        events: tuple[rtc.room.EventTypes, ...] = (
            "participant_disconnected",
            "track_unpublished",
            "disconnected",
        )
        for event in events:
            room.on(event, check)
        try:
            check()
            await asyncio.wait_for(gone.wait(), timeout)
            _trace.mark(f"{self._name}.publishers_gone", room=room.name)
        except TimeoutError:
            log.debug(
                "%s: %s still publishing in room %s after %g s; leaving anyway (livekit keeps "
                "what it knew of them)",
                self._name,
                ", ".join(self.remote_publishers()),
                room.name,
                timeout,
            )
        finally:
            for event in events:
                room.off(event, check)

    async def _disconnect(self) -> None:
        try:
            async with asyncio.timeout(LEAVE_TIMEOUT):  # in this task: see leave_soon()
                await self.rtc.disconnect()
        except TimeoutError:
            log.warning(
                "%s: leaving room %s took over %g s; given up",
                self._name,
                self.rtc.name,
                LEAVE_TIMEOUT,
            )
        except Exception as e:  # a room that is gone already
            log.debug("%s: leaving room %s: %r", self._name, self.rtc.name, e)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A call nobody awaits any more may still fail; its error matters only where it was awaited.
    if not future.cancelled():
        future.exception()


__all__ = ["LEAVE_TIMEOUT", "NATIVE_GRACE", "Room", "room_options", "unfinished"]
