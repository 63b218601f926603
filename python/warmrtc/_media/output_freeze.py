"""OutputFreeze: when the model's output froze while the app sends, and a keyframe is due.

The model decodes the app's track: a frame it cannot complete (its packets lost, their
retransmissions lost too, as on a congested or lossy uplink) leaves every frame after it
undecodable until the next keyframe, and WebRTC's receiver asks for one only after three
seconds without a decodable frame. The generated frames stop for those three seconds, while
the app's frames go on reaching the media server. A session that sees its output stop while
its path is alive refreshes its track's mute: the media server asks the client for a keyframe
at once (see :mod:`.dark_path`), and the model decodes again a round trip later.

A path that is dark (no packet comes back) is not frozen: that is :mod:`.dark_path`'s case.
"""

from __future__ import annotations

FROZEN_AFTER = 0.35  # seconds without a generated frame while the app sends: frozen
FROZEN_CAPTURES = 4  # ... and at least this many captures since the last generated frame
POLL = 0.1  # seconds between two looks while live
IDLE_POLL = 0.5  # ... and while muted or not capturing (warm sessions idle for minutes)
REFRESH_EVERY = 1.0  # seconds between two refreshes of one freeze (a keyframe can be lost too)
QUICK_REFRESHES = 3  # refreshes at REFRESH_EVERY; then every SLOW_REFRESH_EVERY
SLOW_REFRESH_EVERY = 3.0  # WebRTC's receiver asks as often by itself


class OutputFreeze:
    """Fed the time of the last generated frame, the app's capture count and the path's
    received-packet count; says when the track is due a refresh. Plain logic: the caller reads
    the counters, keeps the clock (one clock for all times) and says when it refreshed."""

    def __init__(
        self, frozen_after: float = FROZEN_AFTER, frozen_captures: int = FROZEN_CAPTURES
    ) -> None:
        self._frozen_after = frozen_after
        self._frozen_captures = frozen_captures
        self._from: float | None = None  # since when output is expected
        self._last_output: float | None = None  # the last generated frame's time, as last seen
        self._captured_then = 0  # the capture count when that frame was first seen
        self._received: int | None = None  # the path's count when the freeze was first seen
        self._refreshes = 0  # in this freeze
        self._refreshed = -float("inf")

    def forget(self) -> None:
        """No output is expected for a while (muted, the app not capturing, the room
        resuming); what came before says nothing of what comes next."""
        self._from, self._received, self._refreshes = None, None, 0

    def late(self, now: float, last_output: float | None, captured: int) -> bool:
        """Whether the output, expected at ``now`` (the app having captured ``captured``
        frames so far), is late enough to look at the path (the caller then reads its count
        and calls :meth:`due`). Late means FROZEN_AFTER seconds and FROZEN_CAPTURES captures
        without a generated frame: an app that captures slowly gets its frames slowly. Output
        must have come since it is expected: the first frame of a start is not this watch's
        business."""
        if last_output != self._last_output:
            self._last_output, self._captured_then = last_output, captured
        if self._from is None:
            self._from = now
            return False
        if last_output is None or last_output < self._from:
            return False
        if (
            now - last_output < self._frozen_after
            or captured - self._captured_then < self._frozen_captures
        ):
            self._received, self._refreshes = None, 0  # flowing
            return False
        return True

    def due(self, now: float, received: int) -> bool:
        """The path's received count at ``now``, the output being late: whether a refresh is
        due now. Due only while the path's count moves (alive), and not more often than the
        interval allows; the caller says :meth:`refreshed` when it did refresh."""
        if self._received is None:
            self._received = received  # a baseline: is the path alive?
            return False
        if received == self._received:
            return False  # nothing came back since: the path may be dark
        self._received = received
        every = REFRESH_EVERY if self._refreshes < QUICK_REFRESHES else SLOW_REFRESH_EVERY
        return now - self._refreshed >= every

    def refreshed(self, now: float) -> None:
        """The track was refreshed at ``now``."""
        self._refreshed = now
        self._refreshes += 1


__all__ = ["FROZEN_AFTER", "IDLE_POLL", "POLL", "OutputFreeze"]
