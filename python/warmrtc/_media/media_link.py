"""MediaLink: one join of the LiveKit room: the published input track and the model's output.

It joins the room, publishes the source's track (muted first when the switch is muted), ends
livekit's keepalive of a warm track, attaches a reader to every output track of the model and
tears all of that down. The mute state itself belongs to the :class:`MuteSwitch`; the session's
state to the :class:`Lifecycle`, which hears from here through the callbacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np
from livekit import rtc
from livekit.rtc.participant import PublishTrackError

from .. import _trace
from .._protocol.models import RealtimeModel
from .._session.control import RoomInfo
from .._session.mute import MuteSwitch
from ..errors import ConnectionLostError
from ..latency import LatencyWindow
from ..source import VideoSource
from ..stats import frames_sent
from .model_output import ModelOutput
from .native_call import outcome, run_to_end
from .rtc_frame import GeneratedFrame, black_frame

log = logging.getLogger("warmrtc")
T = TypeVar("T")

KEEPALIVE_FRAMES = 3  # livekit keepalive frames a warm track sends before we end them
KEEPALIVE_SETTLE = 3.0  # seconds to wait for them at most
# A published track must start sending within this many seconds of the app's first frame, or
# the room's media counts as lost. livekit-server stops reading a participant's signalling when
# more than 200 requests queue up (e.g. a burst of ICE candidates from a process joining many
# rooms at once) but keeps answering its pings: the track is published, its negotiation never
# ends, and nothing says so.
MEDIA_PROOF = 15.0
MEDIA_CHECK_INTERVAL = 0.5
NATIVE_GRACE = 10.0  # seconds a clean-up waits for a called-off room join or publish to end

# Clean-ups handed to the background (a connect that ran out of time): kept here so they run
# to the end, and so that a loop shutting down can still finish them.
_background: set[asyncio.Task[None]] = set()


class MediaLink:
    """One room join: ``join()``, ``publish()``, then ``close()`` (idempotent), on the loop."""

    def __init__(
        self,
        source: VideoSource,
        switch: MuteSwitch,
        model: RealtimeModel,
        *,
        on_frame: Callable[[np.ndarray], None],
        output_format: str,
        on_lost: Callable[[ConnectionLostError], None],
        on_reconnecting: Callable[[], None],
        on_reconnected: Callable[[], None],
        latency: LatencyWindow | None = None,
    ) -> None:
        self._source = source
        self._switch = switch
        self._model = model
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._latency = latency  # fed with the stamps the model echoes, when it does
        self._room = rtc.Room()
        self._track: rtc.LocalVideoTrack | None = None
        self._output = ModelOutput(
            self._room,
            self._generated,
            "warmrtc-output",
            output_format,
            expecting=lambda: not switch.muted,  # live: the model generates
        )
        self._keepalive: asyncio.Task[None] | None = None
        self._media_check: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()  # livekit calls that cannot be called off
        self._closed = False
        # A room still being left (in the background) must not speak for the session any more.
        self._room.on("reconnecting", lambda: None if self._closed else on_reconnecting())
        self._room.on("reconnected", lambda: None if self._closed else on_reconnected())
        self._room.on("disconnected", self._disconnected)

    async def join(self, info: RoomInfo) -> None:
        """Joins the room (the caller bounds the time)."""
        try:
            await self._native(self._join_to_the_end(info), to_the_end=True)
        except rtc.ConnectError as e:
            raise ConnectionLostError(f"cannot join the media room: {e}") from None

    async def _join_to_the_end(self, info: RoomInfo) -> None:
        _trace.mark("client.join")
        await self._room.connect(info.livekit_url, info.token, _room_options())
        _trace.mark("client.joined", room=self._room.name)
        if self._closed:
            # Given up while it ran (a timeout, or the loop is ending, when nothing else may
            # get to run): leave here, so that no room outlives its session or its loop.
            await self._room.disconnect()

    async def publish(self) -> None:
        """Publishes the source's track, muted first when the switch is muted."""

        track = rtc.LocalVideoTrack.create_video_track("camera", self._source.rtc_source)
        self._track = track
        # Muted before it is published: not one frame, not even a keepalive, leaves.
        self._switch.attach(track)
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.H264
        )
        options.video_encoding.max_framerate = self._source.fps
        options.video_encoding.max_bitrate = _bitrate(self._source, self._model)
        # One consumer (the model) at one size: simulcast layers would be encoded for nobody.
        options.simulcast = False
        if self._source.stamp_frames:  # the stamps travel in a packet trailer
            options.frame_metadata_features.extend(_FRAME_METADATA)
        try:
            await self._native(self._room.local_participant.publish_track(track, options))
        except PublishTrackError as e:  # e.g. the media server restarting: worth a retry
            raise ConnectionLostError(f"cannot publish the track: {e}") from None
        _trace.mark("client.published", room=self._room.name)
        self._switch.published(track)
        loop = asyncio.get_running_loop()
        self._media_check = loop.create_task(self._check_media(track), name="warmrtc-media-check")
        if self._switch.muted:
            self._keepalive = loop.create_task(self._end_keepalive(track), name="warmrtc-keepalive")
        self._output.attach_subscribed()  # the model may have published before we joined

    async def close(self, *, wait_native: bool) -> None:
        """Leaves the room. A join or publish still in flight is waited for first (leaving in
        the middle of one leaves the participant behind), here or, without ``wait_native``, in
        a background clean-up."""
        if self._closed:
            return
        self._closed = True
        self._switch.detach()
        self._room.off("disconnected", self._disconnected)
        tasks = self._output.stop()
        for task in (self._keepalive, self._media_check):
            if task is not None:
                task.cancel()
                tasks.append(task)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:  # cancelled here too, the room is left: it would stay joined otherwise
            if self._in_flight and not wait_native:
                leave = asyncio.get_running_loop().create_task(self._leave(), name="warmrtc-leave")
                _background.add(leave)
                leave.add_done_callback(_background.discard)
            else:
                await self._leave()

    async def _leave(self) -> None:
        try:
            if self._in_flight:
                await asyncio.wait(self._in_flight, timeout=NATIVE_GRACE)
        finally:  # cancelled too (the loop is ending): leave now rather than never
            await self._room.disconnect()
            self._output.release()

    async def rtc_stats(self) -> tuple[list[Any], list[Any]]:
        """livekit's WebRTC stats of the published track and of the model's output tracks
        (empty lists for what is not there). Unbounded: the caller bounds the time."""
        if self._closed:
            return [], []
        published = await self._track.get_stats() if self._track is not None else []
        output: list[Any] = []
        for track in self._output.current_tracks:
            if isinstance(track, rtc.RemoteVideoTrack) and not self._closed:
                output.extend(await track.get_stats())
        return list(published), output

    # ---- the model's output ------------------------------------------------------------------

    def _generated(self, frame: GeneratedFrame) -> None:
        self._on_frame(frame.array)
        # Measured once the frame is in the app's hands (converted and delivered).
        if self._latency is not None:
            self._latency.record(frame.user_timestamp_us)

    def _disconnected(self, *_args: object) -> None:
        if not self._closed:
            self._on_lost(ConnectionLostError("the media room disconnected"))

    async def _check_media(self, track: rtc.LocalVideoTrack) -> None:
        """Reports the room lost when the app's frames reach the published track but none has
        left it MEDIA_PROOF seconds after the first did. Only time with frames coming counts
        (a muted session, or an app that pauses, hands WebRTC nothing to send), and not time
        with the room reconnecting (livekit's own resume). Ends with the first frame sent."""
        loop = asyncio.get_running_loop()
        handed = self._source.stats["converted"]  # frames our gate gave WebRTC so far
        first_handed: float | None = None  # since publishing
        last_handed = 0.0
        while not self._closed:
            await asyncio.sleep(MEDIA_CHECK_INTERVAL)
            if self._room.connection_state != rtc.ConnectionState.CONN_CONNECTED:
                first_handed = None  # livekit is resuming: its own problem
                continue
            try:
                stats = await self._native(track.get_stats())
            except Exception as e:
                log.debug("media check: no stats for the published track (%r); it ends", e)
                return  # a track being torn down
            if frames_sent(stats) > 0:
                _trace.mark("client.media_sent", room=self._room.name)
                return
            now = loop.time()
            if (count := self._source.stats["converted"]) > handed:
                handed, last_handed = count, now
                first_handed = now if first_handed is None else first_handed
            coming = now - last_handed <= MEDIA_PROOF / 3
            if first_handed is not None and coming and now - first_handed >= MEDIA_PROOF:
                if not self._closed:
                    self._on_lost(
                        ConnectionLostError(
                            f"the published track sent nothing {MEDIA_PROOF:g} s after the "
                            "app's first frame: the media server never completed its "
                            "negotiation"
                        )
                    )
                return

    # ---- livekit's keepalive -----------------------------------------------------------------

    async def _end_keepalive(self, track: rtc.LocalVideoTrack) -> None:
        """Stops livekit's keepalive once it has done its work.

        Until a source's first capture, livekit pushes a black frame into it every 100 ms, and
        a muted track still encodes and sends them (the server drops them): CPU spent for
        nothing in every warm session. Those first frames are what keep unmute instant (the
        encoder is running and the server has seen the stream), so once a few are out, one
        black frame of our own, into the muted track, ends the keepalive.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + KEEPALIVE_SETTLE
        while loop.time() < deadline:
            await asyncio.sleep(0.1)
            if not self._switch.muted:
                return  # unmuted: the app's frames end it
            try:
                stats = await self._native(track.get_stats())
            except Exception:
                return  # a track being torn down has no stats
            if frames_sent(stats) >= KEEPALIVE_FRAMES:
                break
        black = black_frame(self._source.width, self._source.height)

        def capture_black() -> None:
            if not self._source.closed and not self._closed:
                self._source.rtc_source.capture_frame(black)

        self._switch.run_if_muted(capture_black)

    async def _native(self, call: Coroutine[Any, Any, T], *, to_the_end: bool = False) -> T:
        """Awaits a livekit call that cannot be called off: cancelled, the native side goes on
        regardless (a join would leave its room connected and unowned). So it runs shielded,
        bounded by the timeout, and teardown waits for it before leaving the room. A join runs
        ``to_the_end`` even when its loop is ending: livekit kills the process some seconds
        after a join whose caller vanished (see :mod:`.native_call`)."""
        if to_the_end:
            settling = run_to_end(call)
            self._in_flight.add(settling)
            settling.add_done_callback(self._in_flight.discard)
            return await outcome(settling)  # type: ignore[no-any-return]
        task = asyncio.ensure_future(call)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        task.add_done_callback(_retrieve)
        return await asyncio.shield(task)


# What the source's frames carry (frame ids too: the service may drop them, as Decart's does).
_FRAME_METADATA = (
    rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
    rtc.FrameMetadataFeature.FMF_FRAME_ID,
)


def _room_options() -> rtc.RoomOptions:
    # ICE candidates gathered once, as browsers do. Gathering continually re-enumerates the
    # networks over and over, and WebRTC's logs of each pass cross the FFI into Python: that
    # was most of a warm session's idle CPU. A resume or re-join gathers afresh anyway.
    once = rtc.ContinualGatheringPolicy.GATHER_ONCE
    return rtc.RoomOptions(rtc_config=rtc.RtcConfiguration(continual_gathering_policy=once))


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A call nobody awaits any more may still fail; its error matters only where it was awaited.
    if not future.cancelled():
        future.exception()


def _bitrate(source: VideoSource, model: RealtimeModel) -> int:
    # About 0.1 bit per pixel per frame at the size the model runs at: 720p30 -> 2.8 Mb/s.
    pixels = min(source.width * source.height, model.width * model.height)
    return int(max(pixels * source.fps * 0.1, 300_000))


__all__ = ["MediaLink"]
