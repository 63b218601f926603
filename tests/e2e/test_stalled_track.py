"""stalled() and subscribe_anew() on the real stack.

The fault they answer (livekit decoding a subscribed track's frames without handing one to any
stream on it) comes about once in 60-130 late joins on a loaded machine, too seldom to wait for
here. What can be proved every time: on a track whose receiver really decodes frames, a reader
that never got one is found stalled (and one that did is not); nothing is read or decided while
frames are not expected; and a new subscription brings a new track whose frames do arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from livekit import api, rtc

from warmrtc._media.stalled_track import POLL, STALL, stalled, subscribe_anew
from warmrtc.source import VideoSource

BOUND = 10.0  # seconds any one step may take at most


def _token(identity: str, room: str) -> str:
    grants = api.VideoGrants(room_join=True, room=room)
    token = api.AccessToken(os.environ["WARMRTC_LIVEKIT_KEY"], os.environ["WARMRTC_LIVEKIT_SECRET"])
    return token.with_identity(identity).with_grants(grants).to_jwt()


@dataclass
class Subscriber:
    room: rtc.Room
    tracks: list[tuple[rtc.Track, rtc.RemoteTrackPublication]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def track(self, count: int) -> tuple[rtc.Track, rtc.RemoteTrackPublication]:
        """The ``count``-th video track subscribed (1 = the first), waited for (bounded)."""
        async with asyncio.timeout(BOUND):
            while len(self.tracks) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.tracks[count - 1]


@asynccontextmanager
async def _sending_and_subscribed(name: str) -> AsyncIterator[Subscriber]:
    """A publisher sending 15 fps into a fresh room, and a subscriber to its video."""
    room_name = f"stalled-{name}-{os.getpid()}"
    url = os.environ["WARMRTC_LIVEKIT_URL"]
    publisher, sub_room = rtc.Room(), rtc.Room()
    source = VideoSource(320, 240, "bgr24", fps=15)
    subscriber = Subscriber(sub_room)

    def subscribed(track: rtc.Track, pub: rtc.RemoteTrackPublication, _who: object) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO:
            subscriber.tracks.append((track, pub))
            subscriber.changed.set()

    sub_room.on("track_subscribed", subscribed)

    async def feed() -> None:
        frame = np.zeros((240, 320, 3), np.uint8)
        for n in range(60 * 15):  # bounded: a minute at most
            frame[:, :, 1] = n % 256
            source.capture(frame)
            await asyncio.sleep(1 / 15)

    feeder: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(BOUND):
            await publisher.connect(url, _token("publisher", room_name))
            track = rtc.LocalVideoTrack.create_video_track("camera", source.rtc_source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            options.simulcast = False
            await publisher.local_participant.publish_track(track, options)
            feeder = asyncio.create_task(feed())
            await sub_room.connect(url, _token("subscriber", room_name))
        yield subscriber
    finally:
        if feeder is not None:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
        async with asyncio.timeout(BOUND):
            await sub_room.disconnect()
            await publisher.disconnect()
        source.close()


async def _first_frame(track: rtc.Track) -> bool:
    """Whether a stream on ``track`` gets a frame (bounded)."""
    stream = rtc.VideoStream(track)
    try:
        async with asyncio.timeout(BOUND):
            async for _event in stream:
                return True
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.aclose(), 1)
    return False


async def _watched(
    track: rtc.Track,
    pub: rtc.RemoteTrackPublication,
    delivered: Callable[[], bool],
    expected: Callable[[], bool] = lambda: True,
    bound: float = BOUND,
) -> tuple[bool | None, float]:
    """What stalled() said (None: nothing within ``bound``) and after how long."""
    started = time.monotonic()
    try:
        said = await asyncio.wait_for(stalled(track, pub, delivered, expected), bound)
    except TimeoutError:
        said = None
    return said, time.monotonic() - started


def test_a_reader_that_never_gets_a_frame_is_stalled_and_a_new_subscription_delivers() -> None:
    async def run() -> None:
        async with _sending_and_subscribed("never") as subscriber:
            track, pub = await subscriber.track(1)
            said, took = await _watched(track, pub, delivered=lambda: False)
            assert said is True, "frames decoded for seconds with none delivered: stalled"
            assert STALL <= took <= STALL + 4 * POLL + 3, took
            assert await subscribe_anew(pub)
            new_track, _ = await subscriber.track(2)
            assert new_track is not track and pub.track is new_track
            assert await _first_frame(new_track), "the new subscription's frames arrive"

    asyncio.run(run())


def test_a_reader_that_gets_frames_is_not_stalled() -> None:
    async def run() -> None:
        async with _sending_and_subscribed("reading") as subscriber:
            track, pub = await subscriber.track(1)
            got = asyncio.Event()

            async def read() -> None:
                if await _first_frame(track):
                    got.set()

            reader = asyncio.create_task(read())
            said, _ = await _watched(track, pub, delivered=got.is_set)
            await reader
            assert got.is_set() and said is False
            assert len(subscriber.tracks) == 1  # nothing subscribed anew

    asyncio.run(run())


def test_nothing_is_read_or_decided_while_frames_are_not_expected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[rtc.Track] = []
    get_stats = rtc.RemoteVideoTrack.get_stats

    async def counted(self: rtc.RemoteVideoTrack) -> Any:
        reads.append(self)
        return await get_stats(self)

    monkeypatch.setattr(rtc.RemoteVideoTrack, "get_stats", counted)

    async def run() -> None:
        async with _sending_and_subscribed("idle") as subscriber:
            track, pub = await subscriber.track(1)
            said, _ = await _watched(
                track, pub, delivered=lambda: False, expected=lambda: False, bound=STALL + 2
            )
            assert said is None, "a session that is not live expects no frames"
            assert reads == [], "nor are the track's stats read"
            said, _ = await _watched(track, pub, delivered=lambda: False)
            assert said is True and reads, "the control: expected, it is found stalled"

    asyncio.run(run())
