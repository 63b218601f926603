"""MediaLink: one join of the LiveKit room: the published input track and the model's output.

It joins the room, publishes the source's track (muted first when the switch is muted), has
a muted track's encoder rest, attaches a reader to every output track of the model and
tears all of that down. The mute state itself belongs to the :class:`MuteSwitch`; what happens
here is reported to a :class:`MediaListener` (the session's link).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from livekit import rtc
from livekit.rtc.participant import PublishTrackError

from .. import _trace
from .._media import dark_path, output_freeze
from .._media.keepalive import REST_TRIES, capture_rest, rest, rest_size, settle_rate
from .._media.model_output import ModelOutput
from .._media.room import Room
from .._media.rtc_frame import GeneratedFrame
from .._media.rtc_stats import frames_sent, packets_received
from .._protocol.models import RealtimeModel
from ..errors import ConnectionLostError, WarmrtcError
from ..source import VideoSource
from .mute import MuteSwitch

log = logging.getLogger("warmrtc")

# Rest frames a newly published muted track captures at most, one every REST_SETTLE, until its
# encoder took one (~3 s in all).
FIRST_REST_TRIES = 20
# A published track must start sending within this many seconds of the app's first frame, or
# the room's media counts as lost. livekit-server stops reading a participant's signalling when
# more than 200 requests queue up (e.g. a burst of ICE candidates from a process joining many
# rooms at once) but keeps answering its pings: the track is published, its negotiation never
# ends, and nothing says so.
MEDIA_PROOF = 15.0
MEDIA_CHECK_INTERVAL = 0.5
REFRESH_GAP = 1.0  # seconds at least between two refreshes of the track's mute
CAPTURING_WITHIN = 0.5  # seconds since the app's last capture during which it counts as capturing
# A leave waits this long at most for the model's participant to leave the room first: the
# service ends it once the control channel closes, and livekit keeps for good what it knew of a
# participant still publishing when the room is left (see warmrtc._media.room).
MODEL_LEAVES_FIRST = 1.0


class MediaListener(Protocol):
    """What a media link reports (on its loop, except ``dropped``: any thread)."""

    def lost(self, error: WarmrtcError) -> None:
        """The room went away (or its media never flowed)."""

    def media_reconnecting(self) -> None:
        """livekit is resuming the room by itself."""

    def media_reconnected(self) -> None: ...

    def generated(self, frame: GeneratedFrame) -> None:
        """A generated frame, converted, in the app's hands from here."""

    def dropped(self) -> None:
        """A generated frame was dropped: its reader did not keep up."""


class MediaLink:
    """One room join: ``join()``, ``publish()``, then ``close()`` (idempotent), on the loop."""

    def __init__(
        self,
        source: VideoSource,
        switch: MuteSwitch,
        model: RealtimeModel,
        listener: MediaListener,
        *,
        output_format: str,
    ) -> None:
        self._source = source
        self._switch = switch
        self._model = model
        self._listener = listener
        self._room = Room("client")
        self._track: rtc.LocalVideoTrack | None = None
        self._output = ModelOutput(
            self._room.rtc,
            listener.generated,
            "warmrtc-output",
            output_format,
            expecting=lambda: not switch.muted,  # live: the model generates
            on_dropped=listener.dropped,
        )
        self._resting: asyncio.Task[None] | None = None  # the encoder's rest after a mute
        self._watchers: set[asyncio.Task[None]] = set()  # tracing only
        self._loop = asyncio.get_running_loop()
        self._media_check: asyncio.Task[None] | None = None
        self._path_watch: asyncio.Task[None] | None = None
        self._output_watch: asyncio.Task[None] | None = None
        self._refreshed_at = -float("inf")  # time.monotonic() of the track's last refresh
        self._closed = False
        self._resuming = False  # livekit is resuming the room by itself
        room = self._room.rtc
        room.on("reconnecting", self._reconnecting)
        room.on("reconnected", self._reconnected)
        room.on("disconnected", self._disconnected)

    async def join(self, livekit_url: str, token: str) -> None:
        """Joins the room (the caller bounds the time)."""
        await self._room.join(livekit_url, token)

    async def publish(self) -> None:
        """Publishes the source's track, muted first when the switch is muted."""

        track = rtc.LocalVideoTrack.create_video_track("camera", self._source.rtc_source)
        self._track = track
        # Muted before it is published: not one frame, not even a keepalive, leaves.
        self._switch.attach(track, self._rest_soon, self._live_soon)
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
            await self._room.call(self._room.rtc.local_participant.publish_track(track, options))
        except PublishTrackError as e:  # e.g. the media server restarting: worth a retry
            raise ConnectionLostError(f"cannot publish the track: {e}") from None
        _trace.mark("client.published", room=self._room.rtc.name)
        self._switch.published(track)
        if not self._switch.muted:
            self._watch_input()
        loop = asyncio.get_running_loop()
        self._media_check = loop.create_task(self._check_media(track), name="warmrtc-media-check")
        self._path_watch = loop.create_task(self._watch_path(track), name="warmrtc-path-watch")
        self._output_watch = loop.create_task(
            self._watch_output(track), name="warmrtc-output-watch"
        )
        if self._switch.muted:
            # The encoder rests at once (see :mod:`.keepalive`). The rest frames end livekit's
            # keepalive too, unless the app's frames have: an app that captured before
            # connecting ended it before the track was published, and then nothing at all
            # reached the encoder until the rest. Its transport comes up a few round trips
            # after publishing, hence more tries than after a mute.
            self._resting = loop.create_task(
                self._rest(track, tries=FIRST_REST_TRIES), name="warmrtc-rest"
            )
        self._output.attach_subscribed()  # the model may have published before we joined

    async def close(self, *, wait_native: bool) -> None:
        """Leaves the room (bounded). A join or publish still in flight is waited for first
        (leaving in the middle of one leaves the participant behind), and the model's
        participant is given ``MODEL_LEAVES_FIRST`` seconds to leave before we do (the caller
        has closed the control channel, which ends it), here or, without ``wait_native``, in
        the background (see :func:`~warmrtc._media.room.unfinished`)."""
        if self._closed:
            return
        self._closed = True
        self._switch.detach()
        tasks = self._output.stop()
        tasks_of_ours = (self._media_check, self._path_watch, self._output_watch, self._resting)
        for task in (*tasks_of_ours, *self._watchers):
            if task is not None:
                task.cancel()
                tasks.append(task)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:  # cancelled here too, the room is left: it would stay joined otherwise
            leaving = self._room.leave_soon(publishers_first=MODEL_LEAVES_FIRST)
            leaving.add_done_callback(lambda _done: self._output.release())
            if wait_native:
                await asyncio.shield(leaving)

    @property
    def resuming(self) -> bool:
        """True while livekit resumes the room by itself (from its "reconnecting" to its
        "reconnected"): the media path is down, and most likely the whole network with it."""
        return self._resuming and not self._closed

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

    # A room still being left must not speak for the session any more.

    def _reconnecting(self) -> None:
        self._resuming = True
        if not self._closed:
            self._listener.media_reconnecting()

    def _reconnected(self) -> None:
        self._resuming = False
        if not self._closed:
            self._listener.media_reconnected()

    def _disconnected(self, *_args: object) -> None:
        if not self._closed:
            self._listener.lost(ConnectionLostError("the media room disconnected"))

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
            if self._room.rtc.connection_state != rtc.ConnectionState.CONN_CONNECTED:
                first_handed = None  # livekit is resuming: its own problem
                continue
            try:
                stats = await self._room.call(track.get_stats())
            except Exception as e:
                log.debug("media check: no stats for the published track (%r); it ends", e)
                return  # a track being torn down
            if frames_sent(stats) > 0:
                _trace.mark("client.media_sent", room=self._room.rtc.name)
                return
            now = loop.time()
            if (count := self._source.stats["converted"]) > handed:
                handed, last_handed = count, now
                first_handed = now if first_handed is None else first_handed
            coming = now - last_handed <= MEDIA_PROOF / 3
            if first_handed is not None and coming and now - first_handed >= MEDIA_PROOF:
                if not self._closed:
                    self._listener.lost(
                        ConnectionLostError(
                            f"the published track sent nothing {MEDIA_PROOF:g} s after the "
                            "app's first frame: the media server never completed its "
                            "negotiation"
                        )
                    )
                return

    async def _watch_path(self, track: rtc.LocalVideoTrack) -> None:
        """While live, watches the packets the path receives (see :mod:`.dark_path`); when
        they come back after the path was down (a blackout, or livekit resuming the room), the
        track's mute is refreshed, so that the media server forwards the input again at once.
        Ends with the link."""
        loop = asyncio.get_running_loop()
        path = dark_path.DarkPath()
        captured = -1  # the source's count of frames captured, at the last look
        while not self._closed:
            await asyncio.sleep(dark_path.POLL)
            before, captured = captured, self._source.stats["captured"]
            if self._switch.muted or captured == before:
                # Nothing sent (muted, or the app captured nothing since the last look): no
                # feedback is due, and a still count says nothing. An unmute refreshes anyway.
                path.forget()
                continue
            if self._room.rtc.connection_state != rtc.ConnectionState.CONN_CONNECTED:
                path.down(loop.time())  # livekit is resuming: down, for sure
                continue
            if (received := await self._packets_received(track, "path watch")) is None:
                continue
            dark_for = path.observe(loop.time(), received)
            if dark_for is not None and self._refresh_track():
                log.info(
                    "the media path was down for %.1f s and is back: track refreshed, so that "
                    "the media server forwards it at once",
                    dark_for,
                )
                _trace.mark("client.track_refreshed", dark_s=round(dark_for, 2))

    async def _packets_received(self, track: rtc.LocalVideoTrack, who: str) -> int | None:
        """The packets the published track's path received (None: no figure now)."""
        try:
            return packets_received(await self._room.call(track.get_stats()))
        except Exception as e:  # a track being torn down or republished: look again later
            log.debug("%s: no stats for the published track (%r)", who, e)
            return None

    def _refresh_track(self) -> bool:
        """Refreshes the track's mute (see :mod:`.dark_path`), unless it was refreshed less than
        REFRESH_GAP seconds ago: the path watch and the output watch can both see the end of a
        blackout, and one keyframe request is enough. True if refreshed."""
        now = time.monotonic()
        if self._closed or now - self._refreshed_at < REFRESH_GAP:
            return False
        if not self._switch.refresh_track():
            return False
        self._refreshed_at = now
        return True

    async def _watch_output(self, track: rtc.LocalVideoTrack) -> None:
        """While live and the app captures, watches the model's output (see
        :mod:`.output_freeze`): when it stops while the path is alive, the track's mute is
        refreshed, so that the media server asks for a keyframe at once. Ends with the link."""
        freeze = output_freeze.OutputFreeze()
        captured, captured_at = -1, -float("inf")  # the source's count, and when it last moved
        watching = False  # at the last look: live and capturing (else looks are rarer)
        while not self._closed:
            await asyncio.sleep(output_freeze.POLL if watching else output_freeze.IDLE_POLL)
            now = time.monotonic()
            if (count := self._source.stats["captured"]) != captured:
                captured, captured_at = count, now
            connected = self._room.rtc.connection_state == rtc.ConnectionState.CONN_CONNECTED
            capturing = now - captured_at <= CAPTURING_WITHIN
            watching = not self._switch.muted and capturing and connected
            if not watching:
                freeze.forget()
                continue
            last = self._output.last_frame_at
            if last is None or not freeze.late(now, last, captured):
                continue
            if (received := await self._packets_received(track, "output watch")) is None:
                continue
            now = time.monotonic()
            if self._output.last_frame_at != last:
                continue  # frames again while the stats were read: a refresh would cost one
            if not freeze.due(now, received) or not self._refresh_track():
                continue
            freeze.refreshed(now)
            log.info(
                "no generated frame for %.1f s while the path is up: track refreshed, so that "
                "the model gets a keyframe at once",
                now - last,
            )
            _trace.mark("client.track_refreshed", frozen_s=round(now - last, 2))

    # ---- the muted encoder's rest ----------------------------------------------------------

    def _rest_soon(self) -> None:
        """The switch muted the live track (in the muting thread, holding its lock): its
        encoder rests, from the loop."""
        try:
            self._loop.call_soon_threadsafe(self._start_rest)
        except RuntimeError:  # the loop is closed: the session is gone
            pass

    def _live_soon(self) -> None:
        """The switch unmuted the track (in the unmuting thread): traced, its counters are."""
        if _trace.enabled():
            try:
                self._loop.call_soon_threadsafe(self._watch_input)
            except RuntimeError:  # the loop is closed: the session is gone
                pass

    def _watch_input(self) -> None:
        """Tracing only: how the published track's counters move (frames and keyframes
        encoded, keyframe requests) in the moments after it goes live."""
        track = self._track
        if _trace.enabled() and track is not None and not self._closed:
            watching = self._loop.create_task(_trace.watch_stats(track.get_stats, "client.in"))
            self._watchers.add(watching)
            watching.add_done_callback(self._watchers.discard)

    def _start_rest(self) -> None:
        track = self._track
        if self._closed or track is None:
            return
        if self._resting is not None:
            self._resting.cancel()
        self._resting = self._loop.create_task(self._rest(track), name="warmrtc-rest")

    async def _rest(self, track: rtc.LocalVideoTrack, *, tries: int = REST_TRIES) -> None:
        """The encoder rests on a small frame while muted, so that the first frame after the
        next unmute is a keyframe (see :mod:`~warmrtc._media.keepalive`)."""
        source = self._source
        size = rest_size(source.width, source.height)

        def capture_black() -> None:
            if not source.closed and not self._closed:
                capture_rest(source.rtc_source, source.width, source.height)

        def capture() -> bool:
            # Muted both ways: a track told muted (the media server drops what it sends) and a
            # gate closed (no frame of the app's follows the rest frame).
            return self._switch.run_if_muted(capture_black)

        try:
            rested = await rest(track, capture, size, tries=tries)
            _trace.mark("client.rested", ok=rested)
            if rested:
                await settle_rate(capture)
        except Exception as e:  # a track torn down has no stats; a source closed under it
            log.debug("the encoder's rest ended early: %r", e)


# What the source's frames carry (frame ids too: the service may drop them, as Decart's does).
_FRAME_METADATA = (
    rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP,
    rtc.FrameMetadataFeature.FMF_FRAME_ID,
)


def _bitrate(source: VideoSource, model: RealtimeModel) -> int:
    # About 0.1 bit per pixel per frame at the size the model runs at: 720p30 -> 2.8 Mb/s.
    pixels = min(source.width * source.height, model.width * model.height)
    return int(max(pixels * source.fps * 0.1, 300_000))


__all__ = ["MediaLink"]
