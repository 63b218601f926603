"""The encoder's rest (warmrtc._media.keepalive): a rest frame is captured again until the
encoder reports the rest size, a bounded number of times, and nothing is captured once the
track is live. A stand-in track answers with livekit's own stats messages."""

from __future__ import annotations

import asyncio

from livekit.rtc._proto import stats_pb2

from warmrtc._media.keepalive import encoded_size, rest, rest_size


class Track:
    """Reports the rest size once ``taken_after`` rest frames were captured."""

    def __init__(self, taken_after: int | None) -> None:
        self.captured = 0
        self.taken_after = taken_after

    def capture(self) -> bool:
        self.captured += 1
        return True

    async def get_stats(self) -> list[stats_pb2.RtcStats]:
        stats = stats_pb2.RtcStats()
        out = stats.outbound_rtp.outbound
        taken = self.taken_after is not None and self.captured >= self.taken_after
        out.frame_width, out.frame_height = (16, 16) if taken else (640, 360)
        return [stats]


def run(track: Track, capture: object = None) -> bool:
    return asyncio.run(
        rest(track, capture or track.capture, (16, 16), tries=4, settle=0.05)  # type: ignore[arg-type]
    )


def test_the_rest_size_is_small_and_never_the_sources_own() -> None:
    assert rest_size(640, 360) == (16, 16)
    assert rest_size(16, 16) != (16, 16)


def test_a_rest_frame_the_encoder_dropped_is_captured_again() -> None:
    track = Track(taken_after=2)
    assert run(track) is True
    assert track.captured == 2


def test_an_encoder_that_never_takes_the_rest_frame_is_given_up_after_the_tries() -> None:
    track = Track(taken_after=None)
    assert run(track) is False
    assert track.captured == 4


def test_nothing_is_captured_once_the_track_is_live() -> None:
    track = Track(taken_after=1)
    assert run(track, capture=lambda: False) is False
    assert track.captured == 0


def test_the_encoded_size_is_none_before_a_frame() -> None:
    assert encoded_size([stats_pb2.RtcStats()]) is None
    assert encoded_size([]) is None
