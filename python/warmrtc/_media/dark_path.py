"""DarkPath: when a media path went dark and came back, from the packets it receives.

livekit-server takes a published video layer for stopped after half a second without a packet,
and forwards it again only after two seconds of packets (its stream tracker: four 500 ms cycles
with packets) and a keyframe; the subscriber (the model) asks for a keyframe every three
seconds while it has nothing to decode. After a blackout of a second or more, the model's input
then often comes back 3 s after the network did. The media server starts forwarding at the
first packet when the publisher unmutes the track (the unmute resets its tracker and asks the
publisher for a keyframe): a session that sees its path come back refreshes its track's mute,
and the model has frames again within a round trip or two.

While a session sends, the media server's feedback (transport-wide congestion control, several
times a second; receiver reports every second) keeps the path's received packets growing, so a
count that stands still for DARK_AFTER seconds means the path is down.
"""

from __future__ import annotations

DARK_AFTER = 1.5  # seconds without a packet received while sending: the path is down
POLL = 0.5  # seconds between two looks at the path's counters


class DarkPath:
    """Fed the path's received-packet count now and then; says when it came back after being
    dark. Plain logic: the caller reads the counter and keeps the clock."""

    def __init__(self, dark_after: float = DARK_AFTER) -> None:
        self._dark_after = dark_after
        self._count: int | None = None
        self._since: float = 0.0  # when the count last changed (or watching started)
        self._dark_from: float | None = None  # when it was last seen changing before going dark

    @property
    def dark(self) -> bool:
        return self._dark_from is not None

    def forget(self) -> None:
        """Not watching for a while (muted: nothing is sent, nothing need come back)."""
        self._count, self._dark_from = None, None

    def down(self, now: float) -> None:
        """The path is known to be down (livekit resuming the room): dark from now on, unless
        it was already."""
        if self._dark_from is None:
            self._dark_from = now
        self._count = None

    def observe(self, now: float, received: int) -> float | None:
        """The count at ``now``; seconds the path was dark when it just came back, else None."""
        if self._count is None:
            self._count, self._since = received, now  # a baseline: nothing to judge yet
            return None
        if received != self._count:
            self._count, self._since = received, now
            if self._dark_from is not None:
                dark_for, self._dark_from = now - self._dark_from, None
                return dark_for
            return None
        if self._dark_from is None and now - self._since >= self._dark_after:
            self._dark_from = self._since
        return None


__all__ = ["DARK_AFTER", "POLL", "DarkPath"]
