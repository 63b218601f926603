"""The emulated model: a participant that turns the client's video into 'generated' video.

It joins the session's room as ``inference-server-<id>``, subscribes to the client's video,
and publishes the colour negative of each frame (Y, U and V inverted: deterministic and visible,
so a test can tell generated frames from echoed ones) at the model's resolution and frame rate.
Its output track is published muted and unmuted with the first generated frame, so the client
sees no keepalive frames before generation starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import numpy as np
from livekit import rtc

from .._core import i420_shape, to_i420
from ..models import RealtimeModel
from ..rtc_frame import i420_planes
from ..source import VideoSource

log = logging.getLogger("warmrtc.emulator")


class InferenceParticipant:
    def __init__(
        self,
        model: RealtimeModel,
        on_frame: Callable[[], None],
        on_muted: Callable[[bool], None],
    ) -> None:
        self._model = model
        self._on_frame = on_frame
        self._on_muted = on_muted
        self._room = rtc.Room()
        self._source = VideoSource(model.width, model.height, "i420", fps=model.fps)
        self._out = np.empty(i420_shape(model.width, model.height), np.uint8)
        self._track: rtc.LocalVideoTrack | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Every remote track, alive until the room is left. livekit's FFI drops the handles of
        # a room's remote tracks itself when the room closes; a track collected before that
        # (its sender left first) was already dropped by the SDK, and the FFI then logs
        # "Attempted to drop unknown FFI handle". Collected after, it finds a placeholder.
        self._remote_tracks: list[rtc.Track] = []
        self._last_output = 0.0
        self._generating = False

    async def join(self, url: str, token: str) -> None:
        room = self._room
        room.on("track_subscribed", self._subscribed)
        room.on("track_muted", lambda _p, pub: self._mute_changed(pub, True))
        room.on("track_unmuted", lambda _p, pub: self._mute_changed(pub, False))
        await room.connect(url, token, rtc.RoomOptions(auto_subscribe=True))
        self._track = rtc.LocalVideoTrack.create_video_track("generated", self._source.rtc_source)
        self._track.mute()
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        options.video_encoding.max_framerate = self._model.fps
        options.video_encoding.max_bitrate = 3_000_000
        await room.local_participant.publish_track(self._track, options)

    def _mute_changed(self, publication: rtc.TrackPublication, muted: bool) -> None:
        if publication.kind == rtc.TrackKind.KIND_VIDEO:
            self._on_muted(muted)

    def _subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self._remote_tracks.append(track)
        if track.kind != rtc.TrackKind.KIND_VIDEO:
            return
        self._on_muted(publication.muted)
        task = asyncio.get_running_loop().create_task(self._generate(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _generate(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        min_interval = 1.0 / self._model.fps
        try:
            async for event in stream:
                self._on_frame()
                now = time.monotonic()
                if now - self._last_output < min_interval * 0.9:
                    continue  # the model runs at its own frame rate
                self._last_output = now
                self._emit(event.frame)
        finally:
            await stream.aclose()

    def _emit(self, frame: rtc.VideoFrame) -> None:
        size = (self._model.width, self._model.height)
        to_i420(i420_planes(frame), "i420", size=size, out=self._out)
        np.subtract(255, self._out, out=self._out)
        if not self._generating and self._track is not None:
            self._generating = True
            self._track.unmute()
        self._source.capture(self._out)

    async def leave(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._room.disconnect()
        self._remote_tracks.clear()
        self._source.close()
