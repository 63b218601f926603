"""The emulated model: a participant that turns the client's video into 'generated' video.

It joins the session's room as ``inference-server-<id>``, subscribes to the client's video,
and publishes the colour negative of each frame (Y, U and V inverted: deterministic and visible,
so a test can tell generated frames from echoed ones) at the model's resolution and frame rate.
Its output track is published muted, and unmuted once livekit's keepalive has ended, before
generation starts: the client sees no keepalive frame, and the first generated frame goes out
as a keyframe the server forwards at once (see ``_open_output``).

Frame timing, as Decart's service does it for clients that announce it: the capture stamp of
each input frame (LiveKit frame metadata ``user_timestamp``, unix epoch microseconds) goes out
on the frame generated from it; the frame id is not carried (Decart's JS SDK 0.1.20 notes the
service propagates the timestamp only). ``delay`` holds each generated frame back that long
before it is published: a stand-in for the model's inference time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
from livekit import rtc

from .. import _trace
from .._core import i420_shape, to_i420
from .._media.early_offer import offer_now
from .._media.keepalive import end_keepalive, sent_more_than
from .._media.room import Room
from .._media.rtc_frame import i420_planes
from .._media.rtc_stats import frames_sent
from .._media.stalled_track import resubscribe_when_stalled
from .._protocol.models import RealtimeModel
from ..source import VideoSource

log = logging.getLogger("warmrtc.emulator")

OPEN_SETTLE = 3.0  # seconds each step of opening the output waits for a frame to go out
# livekit-server flushes a subscriber's decoder with blank key frames of its own when the track
# it forwards closes (0.2 s of them; 2x2 for H.264, 8x8 for VP8): after a client's livekit
# reconnected in full and republished its track, a muted track too. They are the media
# server's, not the client's video: never generated from, never billed.
FLUSH_FRAME_MAX = 8  # pixels: a frame this small each way or smaller is a flush
STREAM_CLOSE = 1.0  # seconds an input stream's close may take


class InferenceParticipant:
    def __init__(
        self,
        model: RealtimeModel,
        on_frame: Callable[[], None],
        on_muted: Callable[[bool], None],
        *,
        echo_stamps: bool = False,
        delay: float = 0.0,
        hold: bool = False,
    ) -> None:
        self._model = model
        self._on_frame = on_frame
        self._on_muted = on_muted
        self._echo_stamps = echo_stamps
        self._delay = delay
        # Generated frames held back by the delay, oldest first (one delay: they fire in order).
        self._pending: deque[asyncio.TimerHandle] = deque()
        self._room = Room("model")
        # No stamps of its own: a generated frame carries its input's, or none.
        self._source = VideoSource(
            model.width, model.height, "i420", fps=model.fps, stamp_frames=False
        )
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
        self._output_live = False  # unmuted: ahead of generation, or by its first frame
        self._held = hold  # until release(): the initial state has not applied yet
        self._joining: asyncio.Task[None] | None = None

    def start(self, url: str, token: str) -> asyncio.Task[None]:
        """Joins the room in the background; the task ends once the output is published."""
        self._joining = asyncio.get_running_loop().create_task(self.join(url, token))
        return self._joining

    def release(self) -> None:
        """The initial state applied: the client's frames reach the model from now on."""
        self._held = False

    async def join(self, url: str, token: str) -> None:
        room = self._room.rtc
        room.on("track_subscribed", self._subscribed)
        # The client's mute state from its track's publication on: it is known (and reported)
        # before the model subscribes, which a muted track may take a while to allow.
        room.on("track_published", self._published)
        room.on("track_muted", lambda who, pub: self._mute_changed(who, pub, True))
        room.on("track_unmuted", lambda who, pub: self._mute_changed(who, pub, False))
        await self._room.join(url, token, rtc.RoomOptions(auto_subscribe=True))
        for participant in room.remote_participants.values():  # published before we joined
            for publication in participant.track_publications.values():
                self._mute_changed(participant, publication, publication.muted)
        track = rtc.LocalVideoTrack.create_video_track("generated", self._source.rtc_source)
        track.mute()
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        options.video_encoding.max_framerate = self._model.fps
        options.video_encoding.max_bitrate = 3_000_000
        # One layer at the model's size. A simulcast output made the SFU start the client on a
        # layer it then left for another, each switch waiting for a keyframe: the first
        # generated frame came 140 ms to 1.1 s after the model's, against 30-80 ms with one.
        options.simulcast = False
        if self._echo_stamps:
            options.frame_metadata_features.append(rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP)
        await self._room.call(room.local_participant.publish_track(track, options))
        _trace.mark("model.published", room=room.name)
        # Only a published track is unmuted: an unmute while livekit was publishing it (its
        # request sent as muted, the publication not yet there) never reached the server, and
        # the client took the output as muted for good (seen when the model generated from the
        # client's first frames before its own publish had finished).
        self._track = track
        if self._generating:  # generation started while publishing: live at once
            self._go_live(track, "model.output_unmute")
        else:
            self._spawn(self._open_output(track))

    async def _open_output(self, track: rtc.LocalVideoTrack) -> None:
        """Unmutes the output track ahead of generation, with nothing to send.

        Published muted, the track sends livekit's keepalive (black frames, dropped by the
        server) until the server has registered it; one black frame of our own ends the
        keepalive, and then the track is unmuted while nothing flows. The server, waiting for a
        keyframe to forward from, keeps asking the encoder for one (a PLI at most every
        ``rtc.pli_throttle``: a second by default, 200 ms on the local stack), so the first
        generated frame is encoded as a keyframe and forwarded at once. Unmuted only when
        generation started, the server dropped the first generated frames and asked for a
        keyframe then, and its keyframe-request throttle could hold that back: that was the
        tail of a warm start, up to ~300 ms after the model's first frame.
        """
        try:
            # The server registers a track at its first packet.
            await sent_more_than(track, 0, poll=0.05, timeout=OPEN_SETTLE, until=self._live)
            if self._live():
                return  # generation started first: _publish unmuted it
            sent = frames_sent(await track.get_stats())
            if self._live():
                return  # generation started meanwhile: no black frame into a live track
            end_keepalive(self._source.rtc_source, self._model.width, self._model.height)
            await sent_more_than(track, sent, poll=0.02, timeout=OPEN_SETTLE)  # the server drops it
        except Exception as e:  # a track torn down under get_stats: the room is being left
            log.debug("the output track was not opened ahead: %r", e)
            return
        if not self._live():
            self._go_live(track, "model.output_opened")

    def _live(self) -> bool:
        """The output is unmuted already, or the model is gone."""
        return self._output_live or self._source.closed

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _published(
        self, publication: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant
    ) -> None:
        self._mute_changed(who, publication, publication.muted)
        if publication.kind == rtc.TrackKind.KIND_VIDEO:  # subscribed at our next offer
            offer_now(self._room.rtc.local_participant, "model.offer_now")

    def _mute_changed(
        self, participant: rtc.Participant, publication: rtc.TrackPublication, muted: bool
    ) -> None:
        # The room reports the model's own output track too: only the client's counts.
        if (
            isinstance(participant, rtc.RemoteParticipant)
            and publication.kind == rtc.TrackKind.KIND_VIDEO
        ):
            _trace.mark("model.input_muted" if muted else "model.input_unmuted")
            if not muted and _trace.enabled():
                self._trace_stats(publication)
            self._on_muted(muted)

    def _trace_stats(self, publication: rtc.TrackPublication) -> None:
        # Tracing only: how the input and the output tracks' counters move after going live.
        for watched, prefix in ((publication.track, "model.in"), (self._track, "model.out")):
            if watched is not None:
                self._spawn(_trace.watch_stats(watched.get_stats, prefix))

    def _subscribed(
        self,
        track: rtc.Track,
        publication: rtc.RemoteTrackPublication,
        participant: rtc.RemoteParticipant,
    ) -> None:
        self._remote_tracks.append(track)
        _trace.mark("model.input_subscribed", room=self._room.rtc.name)
        if track.kind != rtc.TrackKind.KIND_VIDEO or self._room.leaving:
            return
        self._on_muted(publication.muted)
        first = asyncio.Event()
        generating = self._spawn(self._generate(track, first))
        # Frames are expected while the client's input is unmuted, which ``stalled`` reads
        # itself; a new subscription comes back here and generates from the new track.
        self._spawn(resubscribe_when_stalled(track, publication, first.is_set, generating.cancel))

    async def _generate(self, track: rtc.Track, first: asyncio.Event) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        min_interval = 1.0 / self._model.fps
        try:
            async for event in stream:
                if event.frame.width <= FLUSH_FRAME_MAX and event.frame.height <= FLUSH_FRAME_MAX:
                    continue  # the media server's blank flush, not the client's video
                if not first.is_set():
                    first.set()
                    _trace.mark("model.input_frame", held=self._held)
                if self._held:
                    continue  # dropped before the model: not generated from, not billed
                self._on_frame()
                now = time.monotonic()
                if now - self._last_output < min_interval * 0.9:
                    continue  # the model runs at its own frame rate
                self._last_output = now
                self._emit(event.frame, _stamp_of(event))
        finally:
            # Bounded: a stream whose track was never fed may end without the FFI's last event.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.aclose(), STREAM_CLOSE)

    def _emit(self, frame: rtc.VideoFrame, stamp: int | None) -> None:
        size = (self._model.width, self._model.height)
        # Frames held back by the delay each need their own buffer.
        out = self._out if self._delay <= 0 else np.empty_like(self._out)
        to_i420(i420_planes(frame), "i420", size=size, out=out)
        np.subtract(255, out, out=out)
        if self._delay <= 0:
            self._publish(out, stamp)
            return
        loop = asyncio.get_running_loop()
        self._pending.append(loop.call_later(self._delay, self._publish_held, out, stamp))

    def _publish_held(self, out: np.ndarray, stamp: int | None) -> None:
        self._pending.popleft()
        self._publish(out, stamp)

    def _publish(self, out: np.ndarray, stamp: int | None) -> None:
        if self._source.closed:
            return
        first = not self._generating
        self._generating = True
        if not self._output_live and self._track is not None:
            self._go_live(self._track, "model.output_unmute")
        if stamp is None or not self._echo_stamps:
            self._source.capture(out)
        else:
            m = self._model
            data = out.data.cast("B")
            frame = rtc.VideoFrame(m.width, m.height, rtc.VideoBufferType.I420, data)
            metadata = rtc.FrameMetadata(user_timestamp=stamp)
            self._source.rtc_source.capture_frame(frame, metadata=metadata)
        if first:
            _trace.mark("model.output_captured")

    def _go_live(self, track: rtc.LocalVideoTrack, event: str) -> None:
        """Unmutes the output: ahead of generation (``_open_output``) or by its first frame."""
        self._output_live = True
        track.unmute()
        _trace.mark(event)

    async def leave(self) -> None:
        """Leaves the room (bounded, see :class:`~warmrtc._media.room.Room`); idempotent."""
        leaving = self._room.leave_soon()  # a track subscribed from here on starts nothing
        if self._joining is not None:
            self._joining.cancel()  # a join in flight still ends, and the room is left after it
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.shield(leaving)
        self._remote_tracks.clear()
        self._source.close()


def _stamp_of(event: rtc.VideoFrameEvent) -> int | None:
    """The capture stamp an input frame arrived with, if any."""
    metadata = event.metadata
    if metadata is None or not metadata.HasField("user_timestamp"):
        return None
    return metadata.user_timestamp or None
