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

from livekit import rtc

from .. import _trace
from .rtc_stats import frames_decoded

log = logging.getLogger("warmrtc")

STALL = 1.0  # seconds of frames decoded with none delivered, before the track counts as stalled
POLL = 0.25  # seconds between two looks at the stats of a track that decodes frames, or is new
IDLE_POLL = 1.0  # the same once it has decoded none for STALL (a warm session's, for minutes)
UNSUBSCRIBE_WAIT = 2.0  # seconds subscribe_anew waits for the old subscription to end
RESUBSCRIBE_WAIT = 5.0  # seconds it waits for the new track
RESUBSCRIBE_TRIES = 3


async def stalled(
    track: rtc.Track,
    publication: rtc.RemoteTrackPublication,
    delivered: Callable[[], bool],
    expected: Callable[[], bool] = lambda: True,
) -> bool:
    """Watches ``track`` until ``delivered()`` says a frame reached its reader (False), or
    until its receiver has gone on decoding frames for STALL seconds with none delivered
    (True).

    The stats are read only while ``expected()`` says frames should come and the publication
    is unmuted, and once a second while nothing has been decoded for STALL seconds. Ends False
    when the publication no longer holds ``track`` (unsubscribed, or its room left). Cancel it
    to stop watching."""
    loop = asyncio.get_running_loop()
    since: tuple[float, int] | None = None  # when frames were first seen decoded, and how many
    quiet_from = loop.time() + STALL  # a new track's first frames come in its first moments
    while not delivered():
        await asyncio.sleep(POLL if since is not None or loop.time() < quiet_from else IDLE_POLL)
        if delivered() or publication.track is not track:
            break
        if not expected() or publication.muted:
            since = None
            continue
        try:
            decoded = frames_decoded(await track.get_stats())
        except Exception as e:  # the track was torn down with its room
            log.debug("track %s: no stats, no more watching: %r", track.sid, e)
            return False
        if decoded == 0:
            continue
        if since is None:
            since = (loop.time(), decoded)
        elif loop.time() - since[0] >= STALL and decoded > since[1] and not delivered():
            _trace.mark("track.stalled", sid=track.sid, decoded=decoded)
            return True
    return False


async def subscribe_anew(publication: rtc.RemoteTrackPublication) -> bool:
    """Ends the subscription to ``publication`` and starts a new one; True once the publication
    holds a new track (the room reports it subscribed, as a new track object). Tries
    RESUBSCRIBE_TRIES times, each bounded; never raises (the room may be gone)."""
    old = publication.track
    loop = asyncio.get_running_loop()
    log.info("track %s: frames decoded but none delivered; subscribing anew", publication.sid)
    for _ in range(RESUBSCRIBE_TRIES):
        try:
            publication.set_subscribed(False)
            # Subscribing again before the server has ended the old subscription would keep it.
            deadline = loop.time() + UNSUBSCRIBE_WAIT
            while publication.subscribed and loop.time() < deadline:
                await asyncio.sleep(0.02)
            publication.set_subscribed(True)
            deadline = loop.time() + RESUBSCRIBE_WAIT
            while loop.time() < deadline:
                if publication.track is not None and publication.track is not old:
                    return True
                await asyncio.sleep(0.05)
        except Exception as e:
            log.debug("track %s: no new subscription: %r", publication.sid, e)
            return False
    log.warning(
        "track %s: no new subscription after %d tries; its frames stay lost",
        publication.sid,
        RESUBSCRIBE_TRIES,
    )
    return False


async def resubscribe_when_stalled(
    track: rtc.Track,
    publication: rtc.RemoteTrackPublication,
    delivered: Callable[[], bool],
    stop_reader: Callable[[], object],
    expected: Callable[[], bool] = lambda: True,
) -> None:
    """What a track's reader does about a stall: watches ``track`` (see :func:`stalled`) and,
    when it stalls, stops the reader (``stop_reader()``, which hands its stream back) and
    subscribes anew; the new track comes back through the room's ``track_subscribed``, where
    the reader's owner starts reading it. Cancel it to stop watching."""
    if await stalled(track, publication, delivered, expected):
        stop_reader()
        await subscribe_anew(publication)


__all__ = ["IDLE_POLL", "POLL", "STALL", "resubscribe_when_stalled", "stalled", "subscribe_anew"]
