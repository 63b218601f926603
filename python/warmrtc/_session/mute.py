"""MuteSwitch: where mute state lives.

Mute state lives in the source's native gate, and the session's MuteSwitch is its only writer:
it flips the gate at once, in the caller's thread, and makes the published LiveKit track follow
(muted before it is published, again after publishing, and on every change). ``Session.muted``
and ``VideoSource.muted`` both read that one gate, so they cannot disagree; once a source is in
a session, ``VideoSource.mute()`` goes through the switch too.

Track changes are coalesced: each one is a signalling message to the media server, and an app
that toggles from several threads must not flood it. The track follows the last intent at most
every ``min_interval`` seconds and always ends where the gate is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .. import _trace
from ..errors import SessionClosedError

MIN_TRACK_INTERVAL = 0.05  # seconds between two mute/unmute messages for the track


def _nothing() -> None:
    pass


class Gate(Protocol):
    """The native gate (the source's pipeline)."""

    @property
    def muted(self) -> bool: ...
    def mute(self) -> None: ...
    def unmute(self) -> None: ...


class _ReleasedGate:
    """What a released switch holds instead of the source's gate: muted, and inert."""

    muted = True

    def mute(self) -> None:
        pass

    def unmute(self) -> None:
        pass


class Track(Protocol):
    """A LiveKit local track: ``mute()``/``unmute()`` signal the media server."""

    def mute(self) -> None: ...
    def unmute(self) -> None: ...


class MuteSwitch:
    """The only writer of mute: the gate, then the track. Thread-safe and idempotent."""

    def __init__(
        self,
        gate: Gate,
        loop: asyncio.AbstractEventLoop,
        *,
        min_interval: float = MIN_TRACK_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        on_muted: Callable[[], None] = lambda: None,
    ) -> None:
        self._gate = gate
        self._loop = loop
        self._on_muted = on_muted
        self._min_interval = min_interval
        self._clock = clock
        self._lock = threading.RLock()
        self._track: Track | None = None
        self._rest: Callable[[], None] = _nothing  # what the track rests on once muted
        self._live: Callable[[], None] = _nothing  # told when the track goes live
        self._track_muted: bool | None = None  # what the track was last told; None: nothing yet
        self._last_change = -float("inf")
        self._sync_scheduled = False
        self._closed = False
        self.track_changes = 0  # mute/unmute messages sent for tracks, for tests and stats
        self.unmuted_at: float | None = None  # clock() of the last muted -> unmuted change

    @property
    def muted(self) -> bool:
        return self._gate.muted

    def set(self, muted: bool) -> None:
        """Mutes or unmutes. Muting closes the gate before anything else; unmuting tells the
        track first (when the rate allows) so that the first frames through are not lost.
        Unmuting a closed switch raises SessionClosedError: checked under the switch's lock, so
        no unmute can slip in between a shutdown's mute and its teardown."""
        with self._lock:
            if muted:
                was_live = not self._gate.muted
                self._gate.mute()
                changes = self.track_changes
                self._sync_track()
                if was_live and self.track_changes == changes and self._track_muted is True:
                    # The track was muted already, by a refresh (see refresh_track): it is
                    # now muted for good, and rests as after any mute of a live track.
                    self._rest()
            else:
                if self._closed:
                    raise SessionClosedError("the session is disconnected; connect a new one")
                was_muted = self._gate.muted
                self._sync_track(want=False)
                self._gate.unmute()
                if was_muted:
                    self.unmuted_at = self._clock()
                    _trace.mark("client.unmute")
        if muted:
            self._on_muted()

    def close(self) -> None:
        """Mutes for good: the session is shutting down. Idempotent."""
        with self._lock:
            self._closed = True
        self.set(True)

    def release(self) -> None:
        """Closes the switch and lets go of the gate: the source is the app's again, and a
        shutdown still on its way can no longer touch it (a failed connect gives the source
        back at once, while its clean-up goes on in the background). Idempotent."""
        self.close()
        with self._lock:
            self._gate = _ReleasedGate()

    def attach(
        self,
        track: Track,
        rest: Callable[[], None] = _nothing,
        live: Callable[[], None] = _nothing,
    ) -> None:
        """A new track, before it is published: it starts in the gate's state. ``rest()`` is
        called each time the track is muted for good after it was live (a refresh is not), with
        the track muted already
        (the media link then has the encoder rest on a small frame: see
        :mod:`~warmrtc._media.keepalive`), ``live()`` each time it is unmuted; neither may
        block (they run in the caller's thread, holding the switch)."""
        with self._lock:
            self._track, self._track_muted = track, None
            self._rest, self._live = rest, live
            if self._gate.muted:
                self._tell(track, True)

    def published(self, track: Track) -> None:
        """After publishing: muted again as a safety net (the seed SDK does the same)."""
        with self._lock:
            if self._track is track and self._gate.muted:
                self._tell(track, True)

    def detach(self) -> None:
        with self._lock:
            self._track, self._track_muted = None, None
            self._rest, self._live = _nothing, _nothing

    def refresh_track(self) -> bool:
        """Live only: tells the track muted, then unmuted again (after ``min_interval``, as any
        change), the gate staying open. The media server, which takes a track whose packets
        stopped for a while for stopped, forwards it again at the unmute's first packet and
        asks for a keyframe at once. True if the track was refreshed."""
        with self._lock:
            track = self._track
            if track is None or self._gate.muted or self._closed:
                return False
            self._tell(track, True)
            self._sync_track()  # back to the gate's state: unmuted, at the rate allowed
            return True

    def run_if_muted(self, action: Callable[[], None]) -> bool:
        """Runs ``action`` while holding the switch, only if muted both ways (the gate closed
        and the track, if there is one, told muted); True if it ran."""
        with self._lock:
            if not self._gate.muted or (self._track is not None and self._track_muted is False):
                return False
            action()
            return True

    # ---- the track follows the gate -------------------------------------------------------

    def _sync_track(self, want: bool | None = None) -> None:
        want = self._gate.muted if want is None else want
        track = self._track
        if track is None or self._track_muted == want:
            return
        wait = self._last_change + self._min_interval - self._clock()
        if wait <= 0:
            self._tell(track, want)
        elif not self._sync_scheduled:
            self._sync_scheduled = True
            self._loop.call_soon_threadsafe(self._loop.call_later, wait, self._deferred_sync)

    def _deferred_sync(self) -> None:
        with self._lock:
            self._sync_scheduled = False
            self._sync_track()

    def _tell(self, track: Track, muted: bool) -> None:
        if muted:
            track.mute()
            if self._track_muted is False and self._gate.muted:
                self._rest()  # it was live and is muted for good: its encoder rests (see attach)
        else:
            track.unmute()
            _trace.mark("client.track_unmute")
            self._live()
        self._track_muted = muted
        self._last_change = self._clock()
        self.track_changes += 1


__all__ = ["MuteSwitch"]
