"""stalled()'s decision, on tracks whose stats are given (the e2e test reads real ones): it
needs frames going on being decoded for STALL seconds with none delivered, looks often at a
new track and seldom at one that has decoded nothing for a while, reads nothing while frames
are not expected or the publication is muted, and ends quietly when the track goes (its room
left, or the publication holds another track or none)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from livekit.rtc._proto import stats_pb2

from warmrtc._media.rtc_stats import frames_decoded
from warmrtc._media.stalled_track import IDLE_POLL, POLL, STALL, stalled


class Track:
    """A remote track whose receiver has decoded ``decoded`` frames, ``step`` more at each read
    of its stats; counts the reads."""

    sid = "TR_test"

    def __init__(self, decoded: int, step: int = 4, fail: bool = False) -> None:
        self.decoded, self.step, self.fail, self.reads = decoded, step, fail, 0

    async def get_stats(self) -> list[Any]:
        self.reads += 1
        if self.fail:
            raise RuntimeError("track is gone")
        if self.decoded:
            self.decoded += self.step
        stats = stats_pb2.RtcStats()
        stats.inbound_rtp.inbound.frames_decoded = self.decoded
        return [stats]


def watch(
    track: Track,
    *,
    muted: bool = False,
    expected: bool = True,
    bound: float,
    held: object | None = None,
) -> Any:
    publication: Any = SimpleNamespace(muted=muted, track=track if held is None else held)
    call = stalled(track, publication, lambda: False, lambda: expected)  # type: ignore[arg-type]

    async def run() -> Any:
        try:
            return await asyncio.wait_for(call, bound)
        except TimeoutError:
            return None

    return asyncio.run(run())


def test_frames_decoded_reads_the_inbound_counter() -> None:
    stats = stats_pb2.RtcStats()
    stats.inbound_rtp.inbound.frames_decoded = 7
    assert frames_decoded([stats_pb2.RtcStats(), stats]) == 7
    assert frames_decoded([]) == 0


def test_decoded_frames_never_delivered_are_a_stall() -> None:
    assert watch(Track(decoded=30), bound=IDLE_POLL + STALL + 6 * POLL) is True


def test_a_new_track_is_looked_at_often() -> None:
    # Its first frames come in its first moments: a stall shows after STALL and two looks.
    assert watch(Track(decoded=30), bound=STALL + 3 * POLL) is True


def test_no_frame_decoded_is_no_stall_yet() -> None:
    track = Track(decoded=0)
    assert watch(track, bound=STALL + 2 * IDLE_POLL) is None
    # Looked at every POLL for STALL seconds, then once every IDLE_POLL.
    assert STALL / POLL - 1 <= track.reads <= STALL / POLL + 3


def test_frames_decoded_no_more_are_no_stall() -> None:
    # Decoded before, none since (the sender paused): nothing is being lost.
    assert watch(Track(decoded=30, step=0), bound=STALL + 2 * IDLE_POLL + 4 * POLL) is None


def test_a_track_its_publication_no_longer_holds_ends_the_watch() -> None:
    track = Track(decoded=30)
    assert watch(track, bound=5, held=Track(decoded=30)) is False
    assert track.reads == 0


def test_nothing_is_read_while_muted_or_not_expected() -> None:
    for muted, expected in ((True, True), (False, False)):
        track = Track(decoded=30)
        assert watch(track, muted=muted, expected=expected, bound=STALL + 2 * IDLE_POLL) is None
        assert track.reads == 0


def test_a_track_gone_with_its_room_ends_the_watch() -> None:
    assert watch(Track(decoded=0, fail=True), bound=5) is False
