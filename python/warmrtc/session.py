"""connect() and Session: the public face of one realtime session.

A session is put together from parts that each own one thing, built before they are wired:

- ``SessionConfig``: the checked options (immutable);
- ``_session.mute.MuteSwitch``: mute (the source's native gate, and the track follows);
- ``_session.lifecycle.Lifecycle``: ``state``, ``last_error``, reconnects and shutdown; it
  drives the link it is given at connect;
- ``_session.link.ServiceLink``: the control channel and the media room of one attempt, and
  what outlives an attempt (billing, what the app applied); it reports to the session's
  ``_Reports``, which hands each report to the part that owns it;
- two ``_session.fanout.Fanout``: generated frames to ``on_frame`` and ``frames()`` readers,
  events to ``on_event`` and ``events()`` readers;
- ``_session.recorder.StatsRecorder``: the figures only the session measures; ``stats()``
  gathers them with those of the other parts into a :class:`~warmrtc.stats.SessionStats`.

Data flows one way: the app's frames go through the VideoSource (native gate -> convert ->
FFI) into the published track; the model's frames come back through the link to the fan-out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._media.latest_queue import EVENT_DEPTH, FRAME_DEPTH
from ._media.rtc_frame import GeneratedFrame
from ._media.rtc_stats import RtcFigures, rtc_figures
from ._protocol.models import DEFAULT_MODEL
from ._session.fanout import Fanout, Reader
from ._session.lifecycle import Lifecycle
from ._session.link import Applied, ServiceLink
from ._session.metrics import Metrics
from ._session.mute import MuteSwitch
from ._session.recorder import StatsRecorder
from .config import ImageInput, SessionConfig, check_prompt_text, encode_image, seconds
from .errors import ConnectionLostError, WarmrtcError
from .events import (
    Event,
    GenerationEndedEvent,
    GenerationStartedEvent,
    GenerationTickEvent,
    StatsEvent,
)
from .latency import Latency, LatencyWindow
from .source import VideoSource, attach, detach, gate_of, in_session
from .state import State
from .stats import ConnectStep, SessionStats

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .config import ConnectOptions

log = logging.getLogger("warmrtc")

STATS_TIMEOUT = 2.0  # seconds stats() waits for livekit's WebRTC stats by default


class Session:
    """A connected realtime session. Create it with :func:`warmrtc.connect`.

    ``mute()``/``unmute()`` are thread-safe, idempotent and callable from any thread; the
    coroutines run on the session's event loop. Mute state lives in the source's native gate:
    ``session.muted`` and ``session.source.muted`` are the same value, and
    ``session.source.mute()`` mutes the session (gate and track) too.
    """

    def __init__(self, source: VideoSource, config: SessionConfig, *, start_muted: bool) -> None:
        self._source = source
        self._config = config
        self._loop = asyncio.get_running_loop()
        self._switch = MuteSwitch(gate_of(source), self._loop, on_muted=self._muted)
        self._recorder = StatsRecorder(Metrics(config.model.name), self._switch, source.stats)
        self._frames: Fanout[np.ndarray] = Fanout(
            self._frame_generated, depth=FRAME_DEPTH, name="on_frame"
        )
        self._events: Fanout[Event] = Fanout(
            config.on_event, depth=EVENT_DEPTH, name="on_event", warn_drops=True
        )
        self._latency = LatencyWindow()  # glass-to-glass, over the whole session
        self._stats_task: asyncio.Task[None] | None = None
        self._life = Lifecycle(
            timeout=config.timeout,
            reconnect_attempts=config.reconnect_attempts,
            gate=self._switch,
            on_state=self._state_changed,
            on_event=self._emit,
            before_shutdown=self._switch.close,
        )
        reports = _Reports(self._life, self._frames, self._latency, self._recorder, self._emit)
        self._link = ServiceLink(config, source, self._switch, reports)
        attach(source, self._switch)
        self._switch.set(start_muted)

    # ---- public state ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """Where the session is in its life (:class:`warmrtc.State`; compares equal to its
        string value)."""
        return self._life.state

    @property
    def muted(self) -> bool:
        """True while the source's native gate drops every frame (the same value as
        ``session.source.muted``)."""
        return self._switch.muted

    @property
    def last_error(self) -> WarmrtcError | None:
        """Why the session reconnected or ended; None while nothing went wrong."""
        return self._life.last_error

    @property
    def billed_seconds(self) -> int:
        """Seconds billed so far over the whole session, as the service's ticks report them."""
        return self._link.billing.seconds

    @property
    def latency(self) -> Latency | None:
        """Glass-to-glass latency (capture to generated frame in the app), p50/p95 over the
        last 300 generated frames; None until a generated frame came back with its input's
        capture stamp, and always None when the service echoes no stamps (or the source was
        made with ``stamp_frames=False``). Thread-safe."""
        return self._latency.snapshot()

    @property
    def session_id(self) -> str | None:
        """The service's id of the session; None before the service gave one."""
        return self._link.session_id

    @property
    def room_name(self) -> str | None:
        """The media room of the session (what :func:`warmrtc.watch` takes); None before it
        has one."""
        info = self._link.room_info
        return info.room_name if info else None

    @property
    def source(self) -> VideoSource:
        """The video source the session publishes."""
        return self._source

    @property
    def config(self) -> SessionConfig:
        """The checked options the session was connected with."""
        return self._config

    @property
    def connect_steps(self) -> tuple[ConnectStep, ...]:
        """The steps of the last connect (or reconnect), in order, with the time each took;
        a failed connect's error carries them too (``error.connect_steps``)."""
        link = self._link
        failed, rtt = link.failed_step, link.rtt_s
        last = len(link.steps) - 1
        return tuple(
            ConnectStep(name, took, ok=not (i == last and failed is not None), rtt_s=rtt)
            for i, (name, took) in enumerate(link.steps)
        )

    def __repr__(self) -> str:
        return (
            f"Session(model={self._config.model.name!r}, state={self.state.value!r}, "
            f"muted={self.muted}, session_id={self.session_id!r})"
        )

    # ---- mute ------------------------------------------------------------------------------

    def mute(self) -> None:
        """Stops frames at once: the native gate first, then the published track."""
        self._life.check_open()
        self._switch.set(True)

    def unmute(self) -> None:
        """Goes live: the track, then the native gate lets frames through."""
        self._life.check_open()
        self._switch.set(False)

    def _muted(self) -> None:
        # From any thread (session.mute(), source.mute()): the state follows on the loop.
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._life.generation_stopped("muted")
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._life.generation_stopped, "muted")

    # ---- control -----------------------------------------------------------------------------

    async def set_prompt(self, text: str, enhance: bool = True, *, timeout: float = 15) -> None:
        """Sets the prompt and waits for the service's acknowledgement."""
        check_prompt_text(text)
        await self._live_control().set_prompt(text, enhance, timeout)
        self._link.applied = Applied(prompt=text, enhance=enhance)

    async def set_image(
        self, image: ImageInput | None, prompt: str | None = None, *, timeout: float = 30
    ) -> None:
        """Sets the reference image (encoded bytes or a path) and its prompt, and waits for the
        service's acknowledgement. ``image=None`` with no prompt is passthrough: the model then
        works on the input as it is, and stays so across a reconnect."""
        encoded = None if image is None else encode_image(image)
        if prompt is not None:
            check_prompt_text(prompt, optional=True)
        await self._live_control().set_image(encoded, prompt, None, timeout)
        self._link.applied = Applied(prompt=prompt, image_base64=encoded)

    def _live_control(self) -> Any:
        self._life.check_open()
        control = self._link.control
        if control is None:
            raise ConnectionLostError("the control channel is down (the session is reconnecting)")
        return control

    # ---- generated frames ----------------------------------------------------------------------

    def frames(self) -> Reader[np.ndarray]:
        """Generated frames as numpy arrays in ``output_format``, until the session ends.

        A slow consumer sees the newest frames: older ones are dropped past a few.
        """
        return self._frames.reader()

    def _frame_generated(self, frame: np.ndarray) -> None:
        self._recorder.frame_generated()
        if self._config.on_frame is not None:
            self._config.on_frame(frame)

    # ---- events and stats ------------------------------------------------------------------------

    def events(self) -> Reader[Event]:
        """The session's :class:`warmrtc.Event` objects from now on, until the session ends
        (the last one is the change to ``disconnected``).

        Each reader holds the newest 256: a reader that falls behind loses the oldest, with a
        warning in the log. ``on_event`` also sees the events of ``connect()`` itself.
        """
        return self._events.reader()

    def _emit(self, event: Event) -> None:
        if isinstance(event, GenerationTickEvent):
            self._recorder.billed(event.billed_seconds)
        self._events.deliver(event)

    async def stats(self, *, timeout: float = STATS_TIMEOUT) -> SessionStats:
        """The session's figures now (:class:`warmrtc.SessionStats`).

        livekit's WebRTC stats are waited for ``timeout`` seconds at the most; past that, or
        while the room is down (reconnecting, disconnected), their figures are None. Never
        raises for the session's state; a bad ``timeout`` raises ValueError/TypeError.
        """
        seconds("timeout", timeout)
        figures = RtcFigures()
        media = self._link.media
        if media is not None and not self._life.closing:
            try:
                async with asyncio.timeout(timeout):
                    published, output = await media.rtc_stats()
                figures = rtc_figures(published, output)
            except TimeoutError:
                log.debug("stats: livekit's WebRTC stats took over %g s; left out", timeout)
            except Exception as e:  # a track torn down under the call: no WebRTC figures
                log.debug("stats: livekit gave no WebRTC stats: %r", e)
        return self._recorder.snapshot(
            state=self.state.value,
            gate=self._source.stats,
            figures=figures,
            billed_seconds=self.billed_seconds,
            latency=self.latency,
        )

    async def _report_stats(self, interval: float) -> None:
        while not self._life.closing:
            await asyncio.sleep(interval)
            if self._life.closing:
                return
            self._emit(StatsEvent(await self.stats()))

    def _connected(self, setup_s: float) -> None:
        self._recorder.connected(setup_s)
        steps = ", ".join(f"{s.name} {s.seconds * 1000:.0f} ms" for s in self.connect_steps)
        log.debug("session %s: connected in %.0f ms (%s)", self.session_id, setup_s * 1000, steps)
        if self._config.stats_interval is not None:
            self._stats_task = self._loop.create_task(
                self._report_stats(self._config.stats_interval), name="warmrtc-stats"
            )

    # ---- ending ----------------------------------------------------------------------------------

    async def disconnect(self) -> None:
        """Leaves the room and closes the control channel. Idempotent; any state."""
        await self._life.close()

    def _state_changed(self, state: State) -> None:
        if state == State.DISCONNECTED:
            detach(self._source, self._switch)
            self._frames.end()
            self._events.end()
            if self._stats_task is not None:
                self._stats_task.cancel()
        if self._config.on_state is not None:
            self._config.on_state(state)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.disconnect()


async def _connect(source: VideoSource, config: SessionConfig, start_muted: bool) -> Session:
    if not isinstance(source, VideoSource):
        raise TypeError(f"source must be a warmrtc.VideoSource, got {type(source).__name__}")
    if source.closed:
        raise ValueError("source is closed")
    if in_session(source):
        raise ValueError("source is already used by a live session; make one source per session")
    session = Session(source, config, start_muted=start_muted)
    started = time.monotonic()
    try:
        await session._life.connect(session._link)
    except BaseException as e:
        # The source is the app's again at once (muted), even while the failed session's
        # clean-up goes on in the background (on the blocking API's loop, say): a connect
        # right after this one may take it.
        session._switch.release()
        detach(source, session._switch)
        if isinstance(e, WarmrtcError):
            e.connect_steps = session.connect_steps
        raise
    session._connected(time.monotonic() - started)
    return session


class Connecting:
    """What :func:`connect` returns: await it, or use it as ``async with``."""

    def __init__(self, source: VideoSource, config: SessionConfig, start_muted: bool) -> None:
        self._args = (source, config, start_muted)
        self._session: Session | None = None

    def __await__(self) -> Generator[Any, None, Session]:
        return _connect(*self._args).__await__()

    async def __aenter__(self) -> Session:
        self._session = await _connect(*self._args)
        return self._session

    async def __aexit__(self, *_exc: object) -> None:
        if self._session is not None:
            await self._session.disconnect()


def connect(
    source: VideoSource,
    model: str | SessionConfig = DEFAULT_MODEL,
    *,
    start_muted: bool = False,
    **options: Unpack[ConnectOptions],
) -> Connecting:
    """Connects a realtime session; returns once it is usable (await it or ``async with``).

    ``model`` is a model's name with ``options``, or a :class:`warmrtc.SessionConfig` made
    with ``SessionConfig.of(...)`` (checked once, connected many times), alone.

    With ``start_muted=True`` the session is pre-warmed: authenticated, in the room, the track
    published muted; no frame reaches the model and nothing is billed until ``unmute()``.
    ``options`` are :class:`warmrtc.ConnectOptions` (api_key, base_url, prompt, image,
    output_format, on_frame, on_state, on_event, stats_interval, timeout,
    reconnect_attempts, resolution, speed); a bad one raises
    ValueError/TypeError here, before any network work. Connecting raises AuthenticationError,
    ModelError, ConcurrencyLimitError, ConnectTimeoutError (the whole connect takes ``timeout``
    at the most), ConnectionLostError or ProtocolError with the service's message.
    """
    if isinstance(model, SessionConfig):
        if options:
            raise TypeError(
                f"connect() takes a SessionConfig alone, not with options: {sorted(options)}"
            )
        return Connecting(source, model, bool(start_muted))
    return Connecting(source, SessionConfig.of(model, **options), bool(start_muted))


class _Reports:
    """What the link reports, handed to the part of the session that owns it (the link's
    :class:`~warmrtc._session.link.LinkListener`)."""

    def __init__(
        self,
        life: Lifecycle,
        frames: Fanout[np.ndarray],
        latency: LatencyWindow,
        recorder: StatsRecorder,
        emit: Callable[[Event], None],
    ) -> None:
        self._life = life
        self._frames = frames
        self._latency = latency
        self._recorder = recorder
        self._emit = emit

    def lost(self, error: WarmrtcError) -> None:
        self._life.lost(error)

    def media_reconnecting(self) -> None:
        self._life.media_reconnecting()

    def media_reconnected(self) -> None:
        self._life.media_reconnected()

    def generated(self, frame: GeneratedFrame) -> None:
        # Converted already, off the loop; measured once it is in the app's hands.
        self._life.frame_received()
        self._frames.deliver(frame.array)
        self._latency.record(frame.user_timestamp_us)

    def dropped(self) -> None:
        self._recorder.frame_dropped()

    def control_event(self, event: Event) -> None:
        self._emit(event)
        if isinstance(event, GenerationStartedEvent):
            self._life.generation_started()
        elif isinstance(event, GenerationEndedEvent):
            self._life.generation_stopped(f"the service ended generation: {event.reason}")


__all__ = ["Connecting", "Session", "State", "connect"]
