"""stalled()'s decision, on tracks whose stats are given (the e2e test reads real ones): it
needs frames decoded for STALL seconds with none delivered, reads nothing while frames are not
expected or the publication is muted, and ends quietly when the track goes with its room."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from livekit.rtc._proto import stats_pb2

from warmrtc.stalled_track import POLL, STALL, frames_decoded, stalled


class Track:
    """A remote track whose receiver has decoded ``decoded`` frames; counts the stats reads."""

    sid = "TR_test"

    def __init__(self, decoded: int, fail: bool = False) -> None:
        self.decoded, self.fail, self.reads = decoded, fail, 0

    async def get_stats(self) -> list[Any]:
        self.reads += 1
        if self.fail:
            raise RuntimeError("track is gone")
        stats = stats_pb2.RtcStats()
        stats.inbound_rtp.inbound.frames_decoded = self.decoded
        return [stats]


def watch(track: Track, *, muted: bool = False, expected: bool = True, bound: float) -> Any:
    publication: Any = SimpleNamespace(muted=muted)
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
    assert watch(Track(decoded=30), bound=STALL + 6 * POLL) is True


def test_no_frame_decoded_is_no_stall_yet() -> None:
    track = Track(decoded=0)
    assert watch(track, bound=STALL + 4 * POLL) is None
    assert track.reads >= 3


def test_nothing_is_read_while_muted_or_not_expected() -> None:
    for muted, expected in ((True, True), (False, False)):
        track = Track(decoded=30)
        assert watch(track, muted=muted, expected=expected, bound=STALL + 4 * POLL) is None
        assert track.reads == 0


def test_a_track_gone_with_its_room_ends_the_watch() -> None:
    assert watch(Track(decoded=0, fail=True), bound=5) is False
