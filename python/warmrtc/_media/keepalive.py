"""livekit's keepalive of a published video track, how it is ended, and where a muted track's
encoder rests.

Until a source's first capture, livekit pushes a black frame into it every 100 ms, and a muted
track still encodes and sends them (the media server drops them). Both ends of a session
publish muted ahead of their first real frame (the client while warm, the emulated model until
it generates), and both end the keepalive with a frame of their own.

The client's is small on purpose (:func:`rest`), and captured as soon as its track is
published: its encoder then runs at a size no real frame has, and the first real frame after
the unmute is of another size, at which libwebrtc sets the encoder up afresh and encodes a
keyframe. The media server forwards a resumed track from a keyframe only; without one it drops
the first frames, asks the sender for one (a PLI) and waits for it, a round trip to the client.
The rest frame also gets the encoder running and the server receiving the stream before the
unmute, which an app that captured before connecting would otherwise leave undone (its first
frame ends livekit's keepalive before the track is published: the first start then cost
~130 ms more). The same rest follows every mute of a live track. Starting afresh also starts
the H.264 encoder's frame-rate statistics afresh, so a mute's gap in the frames' timestamps
never reaches them (OpenH264's "Actual input framerate ... is different" notes), as long as the
rest lasted a few seconds (see :func:`settle_rate`).

The emulated model ends its keepalive with a black frame of its own size (:func:`end_keepalive`)
and opens its output while idle; the media server then keeps asking it for a keyframe, and its
first generated frame is one, without setting its encoder up again (at 720p that cost ~30 ms).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from livekit import rtc

from .rtc_frame import black_frame
from .rtc_stats import frames_sent

REST_TRIES = 5  # rest frames captured at most, one after another, until the encoder took one
REST_SETTLE = 0.15  # seconds each waits for the encoder to report the rest size
REST_POLL = 0.02
# After the rest, one more rest frame a second, a few times: libwebrtc sets a new encoder's
# frame rate from the input's rate over the last ~3 s, and that estimate moves only when a
# frame comes in (see `settle_rate`).
REST_TICKS = 4
REST_TICK = 1.0


async def sent_more_than(
    track: rtc.LocalVideoTrack,
    count: int,
    *,
    poll: float,
    timeout: float,
    until: Callable[[], bool] = lambda: False,
) -> int:
    """Waits until ``track`` has sent more than ``count`` frames, ``until()`` is true, or
    ``timeout`` seconds pass, reading its stats every ``poll`` seconds; returns the frames sent
    at the last look. Raises what livekit raises for a track torn down."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        sent = frames_sent(await track.get_stats())
        if sent > count or until() or loop.time() >= deadline:
            return sent
        await asyncio.sleep(poll)


def end_keepalive(source: rtc.VideoSource, width: int, height: int) -> None:
    """Captures one black frame of the source's own size into ``source``: livekit's keepalive
    stops at a first capture, and the encoder stays set up for that size."""
    source.capture_frame(black_frame(width, height))


def rest_size(width: int, height: int) -> tuple[int, int]:
    """The size of the frame a muted track rests on: small, and never the source's own."""
    return (16, 16) if (width, height) != (16, 16) else (32, 32)


def capture_rest(source: rtc.VideoSource, width: int, height: int) -> None:
    """Captures one small black frame into ``source`` (whose frames are ``width`` x
    ``height``); its track must be muted already."""
    source.capture_frame(black_frame(*rest_size(width, height)))


def encoded_size(stats: list[Any]) -> tuple[int, int] | None:
    """The size of the last frame a published track's encoder encoded (None: none yet)."""
    for s in stats:
        if s.HasField("outbound_rtp"):
            out = s.outbound_rtp.outbound
            if out.frame_width and out.frame_height:
                return out.frame_width, out.frame_height
    return None


async def rest(
    track: rtc.LocalVideoTrack,
    capture: Callable[[], bool],
    size: tuple[int, int],
    *,
    tries: int = REST_TRIES,
    settle: float = REST_SETTLE,
) -> bool:
    """Rests the muted ``track``'s encoder (see above): ``capture()`` captures one rest frame
    of ``size`` and returns True, or False when the track is no longer muted (then nothing more
    is done). libwebrtc may drop a frame that follows another closely, so each rest frame is
    checked in the encoder's stats, and another is captured if the encoder did not take it.
    True once the encoder reports the rest size. Raises what livekit raises for a track torn
    down."""
    loop = asyncio.get_running_loop()
    for _ in range(tries):
        if not capture():
            return False
        deadline = loop.time() + settle
        while loop.time() < deadline:
            await asyncio.sleep(REST_POLL)
            if encoded_size(await track.get_stats()) == size:
                return True
    return False


async def settle_rate(
    capture: Callable[[], bool], *, ticks: int = REST_TICKS, every: float = REST_TICK
) -> None:
    """Lets libwebrtc's estimate of the input frame rate fall while a track rests: one rest
    frame every ``every`` seconds, ``ticks`` times, while ``capture()`` (as for :func:`rest`)
    says the track is still muted.

    The encoder set up at the next unmute starts with that estimate as its frame rate, and
    OpenH264's first statistics window of a new encoder counts from timestamp 0 (libwebrtc
    hands it NTP milliseconds): unless that frame rate is 5 or less, the window reads about
    0 fps and the encoder prints "Actual input framerate 0.000000 is different from
    framerate in setting N" once. Without a frame the estimate stays what it was when the
    live frames stopped (~30); with these it is about 1 after ~3.5 s of rest."""
    for _ in range(ticks):
        await asyncio.sleep(every)
        if not capture():
            return


__all__ = [
    "capture_rest",
    "encoded_size",
    "end_keepalive",
    "rest",
    "rest_size",
    "sent_more_than",
    "settle_rate",
]
