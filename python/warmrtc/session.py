"""connect() and Session: the control channel and the LiveKit room of one realtime session.

Data flows one way: the app's frames go through the VideoSource (native gate -> convert ->
FFI) into the published track; the model's frames come back from the ``inference-server-*``
participant, are converted by the native core into ``output_format`` and handed to
``on_frame`` and to every ``frames()`` iterator.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from livekit import rtc

from ._core import from_i420, to_i420
from ._version import __version__ as _version
from .errors import (
    ConnectionLostError,
    ConnectTimeoutError,
    SessionClosedError,
    WarmrtcError,
)
from .models import INFERENCE_IDENTITY_PREFIX, REALTIME_MODELS, RealtimeModel
from .rtc_frame import i420_planes
from .signaling import DEFAULT_BASE_URL, ControlChannel, RoomInfo, stream_url
from .source import VideoSource

log = logging.getLogger("warmrtc")
T = TypeVar("T")

State = Literal["connecting", "connected", "generating", "reconnecting", "disconnected"]
ImageInput = bytes | bytearray | str | Path
FrameCallback = Callable[[np.ndarray], None]
StateCallback = Callable[[State], None]

OUTPUT_FORMATS = ("bgr24", "rgb24", "rgba", "bgra", "argb", "abgr", "gray", "i420")
FRAME_QUEUE = 4  # generated frames buffered per frames() iterator; older ones are dropped
KEEPALIVE_FRAMES = 3  # livekit keepalive frames a warm track sends before we end them
KEEPALIVE_SETTLE = 3.0  # seconds to wait for them at most
NATIVE_GRACE = 10  # seconds teardown waits for a called-off room join or publish to end


def _model(name: str) -> RealtimeModel:
    # Unknown names still go to the service (it may serve newer models); 720p30 is assumed.
    return REALTIME_MODELS.get(name) or RealtimeModel(name, 1280, 720, 30)


def _encode_image(image: ImageInput) -> str:
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
    elif isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image {str(path)!r} is not a file")
        data = path.read_bytes()
    else:
        kind = type(image).__name__
        raise TypeError(f"image must be encoded image bytes (PNG/JPEG) or a file path, got {kind}")
    if not data:
        raise ValueError("image is empty")
    return base64.b64encode(data).decode("ascii")


def _generated_array(frame: rtc.VideoFrame, output_format: str) -> np.ndarray:
    planes = i420_planes(frame)
    if output_format == "i420":
        return to_i420(planes, "i420")
    return from_i420(planes, output_format)


class Session:
    """A connected realtime session. Create it with :func:`warmrtc.connect`.

    ``mute()``/``unmute()`` are thread-safe, idempotent and callable from any thread; the other
    methods are coroutines for the session's event loop.
    """

    def __init__(
        self,
        source: VideoSource,
        model: RealtimeModel,
        *,
        url: str,
        api_key: str,
        prompt: str | None,
        image: str | None,
        start_muted: bool,
        output_format: str,
        on_frame: FrameCallback | None,
        on_state: StateCallback | None,
        timeout: float,
        reconnect_attempts: int,
    ) -> None:
        self._source = source
        self._model = model
        self._url = url
        self._api_key = api_key
        self._prompt = prompt
        self._image = image
        self._output_format = output_format
        self._on_frame = on_frame
        self._on_state = on_state
        self._timeout = timeout
        self._reconnect_attempts = reconnect_attempts
        self._loop = asyncio.get_running_loop()
        self._mute_lock = threading.Lock()
        self._muted = start_muted
        self._state: State = "connecting"
        self._generating = False
        self._billed_seconds = 0
        self._room_info: RoomInfo | None = None
        self._control: ControlChannel | None = None
        self._room: rtc.Room | None = None
        self._track: rtc.LocalVideoTrack | None = None
        self._readers: set[asyncio.Task[None]] = set()
        self._attached: set[str] = set()  # sids of output tracks with a reader
        self._queues: set[asyncio.Queue[np.ndarray | None]] = set()
        self._reconnect_task: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._keepalive_ended = False
        self._in_flight: set[asyncio.Future[Any]] = set()  # livekit calls that cannot be cancelled
        self.last_error: WarmrtcError | None = None
        if start_muted:
            source.mute()

    # ---- public state -------------------------------------------------------------------

    @property
    def _closing(self) -> bool:
        return self._close_task is not None  # set when disconnect() starts

    @property
    def state(self) -> State:
        return self._state

    @property
    def muted(self) -> bool:
        return self._muted

    @property
    def billed_seconds(self) -> int:
        """Seconds billed so far, as the service's generation_tick messages report them."""
        return self._billed_seconds

    @property
    def session_id(self) -> str | None:
        return self._room_info.session_id if self._room_info else None

    @property
    def source(self) -> VideoSource:
        return self._source

    def __repr__(self) -> str:
        return (
            f"Session(model={self._model.name!r}, state={self._state!r}, muted={self._muted}, "
            f"session_id={self.session_id!r})"
        )

    # ---- mute ---------------------------------------------------------------------------

    def mute(self) -> None:
        """Stops frames at once: the native gate first, then the published track."""
        with self._mute_lock:
            self._check_live()
            self._muted = True
            self._source.mute()
            if self._track is not None:
                self._track.mute()

    def unmute(self) -> None:
        """Goes live: the track first, then the native gate lets frames through."""
        with self._mute_lock:
            self._check_live()
            self._muted = False
            if self._track is not None:
                self._track.unmute()
            self._source.unmute()

    def _check_live(self) -> None:
        # _closing, set when disconnect() starts (the only way to "disconnected"): it mutes
        # first and reaches that state later, and an unmute() in between must not undo it.
        if self._closing:
            raise SessionClosedError("the session is disconnected; connect a new one")

    # ---- control ------------------------------------------------------------------------

    async def set_prompt(self, text: str, enhance: bool = True, *, timeout: float = 15) -> None:
        """Sets the prompt and waits for the service's acknowledgement."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("prompt must be a non-empty string")
        control = self._live_control()
        await control.set_prompt(text, enhance, timeout)
        self._prompt, self._image = text, None

    async def set_image(
        self, image: ImageInput | None, prompt: str | None = None, *, timeout: float = 30
    ) -> None:
        """Sets the reference image (encoded bytes or a path; None: passthrough) and waits."""
        encoded = None if image is None else _encode_image(image)
        control = self._live_control()
        await control.set_image(encoded, prompt, None, timeout)
        self._image = encoded
        if prompt is not None:
            self._prompt = prompt

    def _live_control(self) -> ControlChannel:
        self._check_live()
        if self._control is None or self._control.closed:
            raise ConnectionLostError("the control channel is down (the session is reconnecting)")
        return self._control

    # ---- generated frames ---------------------------------------------------------------

    async def frames(self) -> AsyncIterator[np.ndarray]:
        """Generated frames as numpy arrays in ``output_format``, until the session ends.

        A slow consumer sees the newest frames: older ones are dropped past a few.
        """
        queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue(FRAME_QUEUE)
        self._queues.add(queue)
        try:
            while self._state != "disconnected" or not queue.empty():
                frame = await queue.get()
                if frame is None:
                    return
                yield frame
        finally:
            self._queues.discard(queue)

    def _deliver(self, frame: np.ndarray) -> None:
        if self._on_frame is not None:
            try:
                self._on_frame(frame)
            except Exception:
                log.exception("on_frame raised; the session goes on")
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(frame)

    async def _read_generated(self, track: rtc.Track) -> None:
        stream = rtc.VideoStream(track, format=rtc.VideoBufferType.I420)
        try:
            async for event in stream:
                if not self._generating:
                    self._generating = True
                    self._set_state("generating")
                self._deliver(_generated_array(event.frame, self._output_format))
        finally:
            await stream.aclose()

    def _track_subscribed(
        self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        # The model's output track can be re-published: attach a reader on every subscribe.
        if not participant.identity.startswith(INFERENCE_IDENTITY_PREFIX):
            return
        if track.kind != rtc.TrackKind.KIND_VIDEO or track.sid in self._attached:
            return
        self._attached.add(track.sid)
        task = self._loop.create_task(self._read_generated(track))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)

    # ---- state and events ---------------------------------------------------------------

    def _set_state(self, state: State) -> None:
        if self._state == state or self._state == "disconnected":
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("on_state raised; the session goes on")

    def _control_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("generation_tick", "generation_ended"):
            self._billed_seconds = int(message.get("seconds", self._billed_seconds))

    def _channel_lost(self, error: WarmrtcError) -> None:
        if self._closing or self._state == "connecting":
            return
        self.last_error = error
        self._start_reconnect(f"control channel lost: {error}")

    def _room_disconnected(self, *_args: object) -> None:
        if self._closing or self._state == "connecting":
            return
        self._start_reconnect("media room disconnected")

    # ---- establishing -------------------------------------------------------------------

    async def _establish(self) -> None:
        """Control channel, room, initial state, and the published (maybe muted) track."""
        control = ControlChannel(self._control_event, self._channel_lost)
        self._control = control
        await control.open(
            stream_url(self._url, self._model.name, self._api_key, f"warmrtc/{_version}"),
            self._timeout,
        )
        info = await control.join(self._timeout)
        self._room_info = info
        if self._image is not None:
            await control.set_image(self._image, self._prompt, None, self._timeout)
        elif self._prompt is not None:
            await control.set_prompt(self._prompt, True, self._timeout)
        else:
            await control.set_image(None, None, None, self._timeout)  # passthrough

        room = rtc.Room()
        self._room = room
        room.on("track_subscribed", self._track_subscribed)
        room.on("reconnecting", lambda: self._set_state("reconnecting"))
        room.on("reconnected", lambda: self._set_state(self._live_state()))
        room.on("disconnected", self._room_disconnected)
        try:
            await self._uncancellable(room.connect(info.livekit_url, info.token, _room_options()))
        except asyncio.TimeoutError:
            raise ConnectTimeoutError(
                f"the media room did not connect in {self._timeout:g} s"
            ) from None
        except rtc.ConnectError as e:
            raise ConnectionLostError(f"cannot join the media room: {e}") from None

        track = rtc.LocalVideoTrack.create_video_track("camera", self._source.rtc_source)
        with self._mute_lock:
            self._track = track
            if self._muted:
                # Muted before it is published: not one frame, not even a keepalive, leaves.
                self._source.mute()
                track.mute()
        options = rtc.TrackPublishOptions(
            source=rtc.TrackSource.SOURCE_CAMERA, video_codec=rtc.VideoCodec.H264
        )
        options.video_encoding.max_framerate = self._source.fps
        options.video_encoding.max_bitrate = _bitrate(self._source, self._model)
        # One consumer (the model) at one size: simulcast layers would be encoded for nobody.
        # Off, a live 720p30 session costs about a fifth less CPU.
        options.simulcast = False
        try:
            await self._uncancellable(room.local_participant.publish_track(track, options))
        except asyncio.TimeoutError:
            raise ConnectTimeoutError(
                f"the track was not published in {self._timeout:g} s"
            ) from None
        with self._mute_lock:
            if self._muted:
                track.mute()  # again after publishing, as a safety net
        if self._muted and not self._keepalive_ended:
            self._keepalive_task = self._loop.create_task(self._end_keepalive(track))
        # The model may have published its output before we joined.
        for participant in room.remote_participants.values():
            for pub in participant.track_publications.values():
                if pub.track is not None and pub.subscribed:
                    self._track_subscribed(pub.track, pub, participant)  # type: ignore[arg-type]

    async def _uncancellable(self, call: Awaitable[T]) -> T:
        """Awaits a livekit call that cannot be called off: cancelled, the native side goes on
        regardless (a join would leave its room connected and unowned). So it runs shielded,
        bounded by the timeout, and teardown waits for it before leaving the room."""
        task = asyncio.ensure_future(call)
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        task.add_done_callback(_retrieve)
        return await asyncio.wait_for(asyncio.shield(task), self._timeout)

    async def _end_keepalive(self, track: rtc.LocalVideoTrack) -> None:
        """Stops livekit's keepalive once it has done its work.

        Until a source's first capture, livekit pushes a black frame into it every 100 ms, and
        a muted track still encodes and sends them (the server drops them): CPU spent for
        nothing in every warm session. Those first frames are what keep unmute instant (the
        encoder is running and the server has seen the stream), so once a few are out, one
        black frame of our own, into the muted track, ends the keepalive.
        """
        deadline = self._loop.time() + KEEPALIVE_SETTLE
        while self._loop.time() < deadline:
            await asyncio.sleep(0.1)
            if self._track is not track or not self._muted:
                return  # unmuted (the user's frames end it) or republished
            try:
                # Like the other native calls: teardown waits for it instead of leaving the
                # room in the middle of it.
                stats = await self._uncancellable(track.get_stats())
            except Exception:
                return  # a track being torn down has no stats
            if _frames_sent(stats) >= KEEPALIVE_FRAMES:
                break
        w, h = self._source.width, self._source.height
        black = rtc.VideoFrame(w, h, rtc.VideoBufferType.I420, _black_i420(w, h))
        with self._mute_lock:
            if self._muted and self._track is track and not self._source.closed:
                self._source.rtc_source.capture_frame(black)
                self._keepalive_ended = True

    def _live_state(self) -> State:
        return "generating" if self._generating else "connected"

    async def _teardown_media(self) -> None:
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        for task in list(self._readers):
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._attached.clear()
        if self._room is not None:
            room, self._room = self._room, None
            room.off("disconnected", self._room_disconnected)
            if self._in_flight:  # leave once they are done: mid-negotiation is no clean exit
                await asyncio.wait(self._in_flight, timeout=NATIVE_GRACE)
            await room.disconnect()
        self._track = None
        if self._control is not None:
            control, self._control = self._control, None
            await control.close()

    def _start_reconnect(self, why: str) -> None:
        if self._reconnect_task is not None and not self._reconnect_task.done():
            return
        log.warning("session %s: %s; reconnecting", self.session_id, why)
        self._set_state("reconnecting")
        self._reconnect_task = self._loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        for attempt in range(1, self._reconnect_attempts + 1):
            await self._teardown_media()
            try:
                await self._establish()
            except WarmrtcError as e:
                self.last_error = e
                log.warning("reconnect attempt %d failed: %s", attempt, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8)
                continue
            self._set_state(self._live_state())
            return
        log.error("session %s: giving up after %d attempts", self.session_id, attempt)
        await self._close(
            ConnectionLostError(f"reconnecting failed {attempt} times: {self.last_error}")
        )

    async def disconnect(self) -> None:
        """Leaves the room and closes the control channel. Idempotent; any state."""
        await self._close(None)

    async def _close(self, error: WarmrtcError | None) -> None:
        # One shutdown, in a task of its own: every caller waits for the same one, and a
        # caller cancelled while waiting (a pool closing, a timeout) does not cut it short,
        # which would leave the control channel's connection open.
        if self._close_task is None:
            if error is not None:
                self.last_error = error
            self._close_task = self._loop.create_task(self._shut_down())
        await asyncio.shield(self._close_task)

    async def _shut_down(self) -> None:
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            await asyncio.gather(self._reconnect_task, return_exceptions=True)
        with self._mute_lock:
            self._source.mute()  # nothing flows once the session is gone
        await self._teardown_media()
        self._set_state("disconnected")
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.disconnect()


def _room_options() -> rtc.RoomOptions:
    # ICE candidates gathered once, as browsers do. Gathering continually re-enumerates the
    # networks over and over, and WebRTC's logs of each pass cross the FFI into Python: that
    # was most of a warm session's idle CPU. A resume or re-join gathers afresh anyway.
    once = rtc.ContinualGatheringPolicy.GATHER_ONCE
    return rtc.RoomOptions(rtc_config=rtc.RtcConfiguration(continual_gathering_policy=once))


def _frames_sent(stats: list[Any]) -> int:
    """The fewest frames any of a track's encodings has sent, from its stats; 0 before any."""
    sent = [s.outbound_rtp.outbound.frames_sent for s in stats if s.HasField("outbound_rtp")]
    return min(sent, default=0)


def _black_i420(width: int, height: int) -> bytearray:
    luma = width * height
    chroma = ((width + 1) // 2) * ((height + 1) // 2)
    frame = bytearray(b"\x80") * (luma + 2 * chroma)
    frame[:luma] = b"\x10" * luma
    return frame


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A call nobody awaits any more may still fail; its error matters only where it was awaited.
    if not future.cancelled():
        future.exception()


def _bitrate(source: VideoSource, model: RealtimeModel) -> int:
    # About 0.1 bit per pixel per frame at the size the model runs at: 720p30 -> 2.8 Mb/s.
    pixels = min(source.width * source.height, model.width * model.height)
    return int(max(pixels * source.fps * 0.1, 300_000))


async def _connect(
    source: VideoSource,
    model: str,
    *,
    api_key: str | None,
    base_url: str | None,
    prompt: str | None,
    image: ImageInput | None,
    start_muted: bool,
    output_format: str,
    on_frame: FrameCallback | None,
    on_state: StateCallback | None,
    timeout: float,
    reconnect_attempts: int,
) -> Session:
    if not isinstance(source, VideoSource):
        raise TypeError(f"source must be a warmrtc.VideoSource, got {type(source).__name__}")
    if source.closed:
        raise ValueError("source is closed")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"output_format {output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}"
        )
    key = api_key or os.environ.get("DECART_API_KEY")
    if not key:
        raise ValueError("no API key: pass api_key= or set DECART_API_KEY")
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise ValueError("prompt must be a non-empty string")
    session = Session(
        source,
        _model(model),
        url=base_url or DEFAULT_BASE_URL,
        api_key=key,
        prompt=prompt,
        image=None if image is None else _encode_image(image),
        start_muted=start_muted,
        output_format=output_format,
        on_frame=on_frame,
        on_state=on_state,
        timeout=timeout,
        reconnect_attempts=reconnect_attempts,
    )
    try:
        await session._establish()
    except BaseException:
        await session._close(None)
        raise
    session._set_state("connected")
    return session


class Connecting:
    """What :func:`connect` returns: await it, or use it as ``async with``."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._session: Session | None = None

    def __await__(self) -> Generator[Any, None, Session]:
        return _connect(**self._kwargs).__await__()

    async def __aenter__(self) -> Session:
        self._session = await _connect(**self._kwargs)
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        if self._session is not None:
            await self._session.disconnect()


def connect(
    source: VideoSource,
    model: str = "lucy-2.6",
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    prompt: str | None = None,
    image: ImageInput | None = None,
    start_muted: bool = False,
    output_format: str = "bgr24",
    on_frame: FrameCallback | None = None,
    on_state: StateCallback | None = None,
    timeout: float = 30,
    reconnect_attempts: int = 5,
) -> Connecting:
    """Connects a realtime session; returns once it is usable.

    With ``start_muted=True`` the session is pre-warmed: authenticated, in the room, the track
    published muted; no frame reaches the model and nothing is billed until ``unmute()``.
    Raises AuthenticationError, ModelError, ConnectTimeoutError, ConnectionLostError or
    ProtocolError with the service's message. ``api_key`` defaults to ``$DECART_API_KEY``.
    """
    return Connecting(
        source=source,
        model=model,
        api_key=api_key,
        base_url=base_url,
        prompt=prompt,
        image=image,
        start_muted=start_muted,
        output_format=output_format,
        on_frame=on_frame,
        on_state=on_state,
        timeout=timeout,
        reconnect_attempts=reconnect_attempts,
    )


__all__ = ["Connecting", "Session", "State", "connect"]
