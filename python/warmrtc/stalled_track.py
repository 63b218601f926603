"""stalled() and subscribe_anew(): a remote video track whose frames never reach its reader.

livekit 1.2.1 can hand out a subscribed video track that WebRTC no longer feeds: the track's
receiver decodes every frame (its inbound stats count them), yet no video stream opened on the
track gets one, a second stream opened on it neither. Nothing else tells: the track looks
subscribed and unmuted, and the reader waits for good. Seen about once in 60-130 joins of a
participant into a room whose video was already flowing, on a loaded 2-core machine (the
emulated model joining late, as in ``warmrtc check``). A new subscription brings a track that
works, which is what the readers of a track (the session's model output, the emulated model)
do when ``stalled`` says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from livekit import rtc

from . import trace

log = logging.getLogger("warmrtc")

STALL = 1.0  # seconds of frames decoded with none delivered, before the track counts as stalled
POLL = 0.25  # seconds between two looks at the track's stats
UNSUBSCRIBE_WAIT = 2.0  # seconds subscribe_anew waits for the old subscription to end


def frames_decoded(stats: list[Any]) -> int:
    """The frames a remote track's receiver has decoded, from its stats; 0 before any."""
    decoded = [s.inbound_rtp.inbound.frames_decoded for s in stats if s.HasField("inbound_rtp")]
    return max(decoded, default=0)


async def stalled(
    track: rtc.Track,
    publication: rtc.RemoteTrackPublication,
    delivered: Callable[[], bool],
    expected: Callable[[], bool] = lambda: True,
) -> bool:
    """Watches ``track`` until ``delivered()`` says a frame reached its reader (False), or
    until its receiver has been decoding frames for STALL seconds with none delivered (True).

    The stats are read only while ``expected()`` says frames should come and the publication
    is unmuted (a warm session's tracks cost nothing here). Ends False when the track goes with
    its room. Cancel it to stop watching."""
    loop = asyncio.get_running_loop()
    decoding_since: float | None = None
    while not delivered():
        await asyncio.sleep(POLL)
        if delivered():
            break
        if not expected() or publication.muted:
            decoding_since = None
            continue
        try:
            decoded = frames_decoded(await track.get_stats())
        except Exception:  # the track was torn down with its room
            return False
        if decoded == 0:
            continue
        if decoding_since is None:
            decoding_since = loop.time()
        elif loop.time() - decoding_since >= STALL and not delivered():
            trace.mark("track.stalled", sid=track.sid, decoded=decoded)
            return True
    return False


async def subscribe_anew(publication: rtc.RemoteTrackPublication) -> None:
    """Ends the subscription to ``publication`` and starts a new one: the room then reports
    the track subscribed again, as a new track object. Never raises (the room may be gone)."""
    log.info("track %s: frames decoded but none delivered; subscribing anew", publication.sid)
    try:
        publication.set_subscribed(False)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + UNSUBSCRIBE_WAIT
        # Subscribing again before the server has ended the old subscription would keep it.
        while publication.subscribed and loop.time() < deadline:
            await asyncio.sleep(0.02)
        publication.set_subscribed(True)
    except Exception as e:
        log.debug("track %s: no new subscription: %r", publication.sid, e)


__all__ = ["POLL", "STALL", "frames_decoded", "stalled", "subscribe_anew"]
