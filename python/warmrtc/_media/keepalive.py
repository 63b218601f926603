"""livekit's keepalive of a published video track, and how it is ended.

Until a source's first capture, livekit pushes a black frame into it every 100 ms, and a muted
track still encodes and sends them (the media server drops them). Both ends of a session
publish muted ahead of their first real frame (the client while warm, the emulated model until
it generates): a few keepalive frames get the encoder running and the server registering the
stream, which is what makes the first real frame go out at once; after those, one black frame
of our own ends the keepalive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit import rtc

from .rtc_frame import black_frame
from .rtc_stats import frames_sent


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
    """Captures one black frame into ``source``: livekit's keepalive stops at a first capture."""
    source.capture_frame(black_frame(width, height))


__all__ = ["end_keepalive", "sent_more_than"]
