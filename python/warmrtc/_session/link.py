"""ServiceLink: one connection to the service, the control channel then the media room.

``establish()`` opens the control channel, asks for the room with the initial prompt or image
right behind the join, joins the room and publishes the track while that applies (the service
drops frames until it has: no generated frame comes before it), then takes its ack;
``teardown()`` undoes all of it. The :class:`Lifecycle` calls both, again after a loss. What the
service says on the control channel and what the media room does are reported to a
:class:`LinkListener` (the session), as typed events and plain calls: the link decides nothing
about the session's state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from .. import _trace
from .._media.native_call import outcome, run_to_end
from .._media.rtc_frame import GeneratedFrame
from .._protocol.endpoints import stream_url
from .._version import __version__ as _version
from ..config import SessionConfig
from ..errors import ConnectTimeoutError, WarmrtcError
from ..events import (
    Event,
    GenerationEndedEvent,
    GenerationStartedEvent,
    GenerationTickEvent,
    QueuePositionEvent,
    ServiceErrorEvent,
)
from ..source import VideoSource
from .control import (
    ControlChannel,
    InitialState,
    RoomInfo,
    image_request,
    prompt_request,
)
from .media_link import MediaLink, MediaListener
from .mute import MuteSwitch

log = logging.getLogger("warmrtc")


class Billing:
    """Seconds billed over the whole session: each service session counts from 0 again (a
    reconnect opens a new one), so the seconds of the ones before are carried."""

    def __init__(self) -> None:
        self._carried = 0
        self._current = 0

    @property
    def seconds(self) -> int:
        return self._carried + self._current

    def tick(self, seconds: int) -> None:
        self._current = max(self._current, seconds)

    def new_service_session(self) -> None:
        self._carried += self._current
        self._current = 0


@dataclass(frozen=True)
class Applied:
    """What the app set for the model: a reconnect applies it again. An image (with its
    prompt, if any), a prompt alone, or neither: passthrough."""

    prompt: str | None = None
    image_base64: str | None = field(default=None, repr=False)
    enhance: bool = True

    def initial_state(self) -> InitialState | None:
        """What a join carries; None for passthrough."""
        if self.image_base64 is not None:
            return image_request(self.image_base64, self.prompt, None)
        if self.prompt is not None:
            return prompt_request(self.prompt, self.enhance)
        return None


class LinkListener(MediaListener, Protocol):
    """What a session's link reports, besides its media's: what the service said."""

    def control_event(self, event: Event) -> None:
        """An event of the control channel (generation, billing, queue, service errors)."""


class ServiceLink:
    """The :class:`~warmrtc._session.lifecycle.Link` of a real session: it connects, reports
    to ``listener`` and keeps what outlives one connection (the billing count, what the app
    applied)."""

    def __init__(
        self,
        config: SessionConfig,
        source: VideoSource,
        switch: MuteSwitch,
        listener: LinkListener,
    ) -> None:
        self._config = config
        self._source = source
        self._switch = switch
        self._listener = listener
        self._control: ControlChannel | None = None
        self._media: MediaLink | None = None
        self.room_info: RoomInfo | None = None
        self.billing = Billing()
        self.applied = Applied(config.prompt, config.image_base64)
        # The steps of the last establish() and how long each took (seconds), in order.
        self.steps: list[tuple[str, float]] = []
        self.failed_step: str | None = None  # the step the last establish() failed in
        self.rtt_s: float | None = None  # one round trip to the service, as last measured

    @property
    def session_id(self) -> str | None:
        return self.room_info.session_id if self.room_info else None

    @property
    def media(self) -> MediaLink | None:
        """The media room of the current attempt (None between attempts)."""
        return self._media

    @property
    def control(self) -> ControlChannel | None:
        """The control channel while it is open."""
        control = self._control
        return control if control is not None and not control.closed else None

    async def establish(self, timeout: float) -> None:
        self.steps, self.failed_step = [], None
        step, started = "control", time.monotonic()

        def done(name: str, following: str) -> None:
            nonlocal step, started
            now = time.monotonic()
            self.steps.append((name, now - started))
            if name == "control" and self._control is not None:
                self.rtt_s = self._control.rtt_s
            log.debug("connect: %s took %.0f ms", name, (now - started) * 1000)
            _trace.mark(
                "client.connect_step",
                step=name,
                ms=round((now - started) * 1000, 1),
                rtt_ms=None if self.rtt_s is None else round(self.rtt_s * 1000, 1),
            )
            step, started = following, now

        try:
            async with asyncio.timeout(timeout):
                config = self._config
                control = ControlChannel(
                    self._control_event,
                    lambda error: self._control_closed(control, error),
                    network_dark=self._media_resuming,
                )
                self._control = control
                await control.open(self._stream_url, timeout)
                done("control", "room_info")
                # The initial state goes right behind the join; the room is joined and the
                # track published while it applies: the service drops frames until it has.
                info = await control.join(
                    timeout,
                    frame_timing=self._source.stamp_frames,
                    initial=self.applied.initial_state(),
                )
                self.room_info = info
                self.billing.new_service_session()
                done("room_info", "room_join")
                media = MediaLink(
                    self._source,
                    self._switch,
                    config.model,
                    _MediaReports(self._listener, control),
                    output_format=config.output_format,
                )
                self._media = media
                await media.join(info.livekit_url, info.token)
                done("room_join", "publish")
                await media.publish()
                done("publish", "initial_state")
                # Usually acked long ago; a refused prompt or image still fails the connect.
                await control.initial_state_applied(timeout)
                done("initial_state", "")
        except TimeoutError:
            self._failed(step, started)
        except BaseException:
            self._failed(step, started)
            raise
        else:
            return
        # Raised here, outside the `except` block, so that it carries no context: the timeout
        # was raised out of aiohttp's and livekit's frames, whose variables hold the URLs.
        what = STEP_NAMES.get(step, step)
        raise ConnectTimeoutError(f"{what} did not finish within {timeout:g} s")

    def _media_resuming(self) -> bool:
        """The media room is resuming by itself: the network is down, most likely all of it
        (the control channel does not take its silence then for the service's end)."""
        media = self._media
        return media is not None and media.resuming

    def _stream_url(self) -> str:
        config = self._config
        return stream_url(
            config.base_url,
            config.model.name,
            config.api_key,
            f"warmrtc/{_version}",
            resolution=config.resolution,
            speed=config.speed,
        )

    def _failed(self, step: str, started: float) -> None:
        # The failed step goes last in ``steps``, with the time it ran for.
        self.failed_step = step
        self.steps.append((step, time.monotonic() - started))

    async def teardown(self, *, wait_native: bool) -> None:
        media, control = self._media, self._control
        self._control = None  # from here on its loss is no news (see _control_closed)
        # The control channel closes first, and the room is left once the model's participant
        # has (bounded): the service ends the model when the channel closes, and a room left
        # with the model still in it stays in livekit's memory for good (see MediaLink.close).
        # The close runs to its end (bounded) even when the loop is ending (asyncio.run()
        # cancels every task left): cut short, it would leave aiohttp's connection unclosed.
        closing = run_to_end(control.close()) if control is not None else None
        try:
            if media is not None:
                await media.close(wait_native=wait_native)
        finally:
            self._media = None
            if closing is not None:
                await outcome(closing)

    # ---- what the service says -----------------------------------------------------------

    def _control_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        event: Event
        if kind == "generation_started":
            event = GenerationStartedEvent()
        elif kind == "generation_tick":
            self.billing.tick(message["seconds"])
            event = GenerationTickEvent(message["seconds"], self.billing.seconds)
        elif kind == "generation_ended":
            seconds, reason = message.get("seconds"), message.get("reason")
            if isinstance(seconds, int):
                self.billing.tick(seconds)
            event = GenerationEndedEvent(seconds, reason)
        elif kind == "queue_position":
            log.info("session queued: %s", message)
            event = QueuePositionEvent(message["position"], message.get("queue_size"))
        elif kind == "error":
            event = ServiceErrorEvent(message["error"])
        else:
            return
        self._listener.control_event(event)

    def _control_closed(self, control: ControlChannel, error: WarmrtcError) -> None:
        # A channel this link already let go of (a teardown closing it) reports nothing.
        if control is self._control:
            self._listener.lost(error)


class _MediaReports:
    """What the media room reports, passed on to the session, and the control channel told
    when the room resumed: the network is back, so the channel asks the service now whether
    the session is still there (an answer keeps it; a service that ended it resets the
    connection, and the session reconnects at once instead of at its next heartbeat)."""

    def __init__(self, listener: LinkListener, control: ControlChannel) -> None:
        self._listener = listener
        self._control = control

    def lost(self, error: WarmrtcError) -> None:
        self._listener.lost(error)

    def media_reconnecting(self) -> None:
        self._listener.media_reconnecting()

    def media_reconnected(self) -> None:
        self._control.probe()
        self._listener.media_reconnected()

    def generated(self, frame: GeneratedFrame) -> None:
        self._listener.generated(frame)

    def dropped(self) -> None:
        self._listener.dropped()


# What each step of establish() waits for, as errors and the connectivity check name it.
STEP_NAMES = {
    "control": "the control channel",
    "room_info": "the room assignment (livekit_room_info)",
    "room_join": "the media room join",
    "publish": "publishing the track",
    "initial_state": "the initial prompt or image",
}

__all__ = ["STEP_NAMES", "Applied", "Billing", "LinkListener", "ServiceLink"]
