"""ServiceLink: one connection to the service, the control channel then the media room.

``establish()`` opens the control channel, asks for the room with the initial prompt or image
right behind the join, joins the room and publishes the track while that applies (the service
drops frames until it has: no generated frame comes before it), then takes its ack;
``teardown()`` undoes all of it. The :class:`Lifecycle` calls both, again after a loss. What the
service says on the control channel goes to the lifecycle (generation started/ended) and to the
billing count; what the model sends back goes, converted (off the loop, see
:class:`~warmrtc._media.model_output.ModelOutput`), to the frame fan-out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .._media.media_link import MediaLink
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
from ..latency import LatencyWindow
from ..source import VideoSource
from .control import (
    ControlChannel,
    InitialState,
    RoomInfo,
    image_request,
    prompt_request,
)
from .fanout import FrameFanout
from .lifecycle import Lifecycle
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


class ServiceLink:
    """The :class:`~warmrtc._session.lifecycle.Link` of a real session."""

    def __init__(
        self,
        config: SessionConfig,
        source: VideoSource,
        switch: MuteSwitch,
        frames: FrameFanout,
        lifecycle: Callable[[], Lifecycle],
        events: Callable[[Event], None] = lambda _event: None,
    ) -> None:
        self._config = config
        self._source = source
        self._switch = switch
        self._frames = frames
        self._lifecycle = lifecycle  # set once the session has built it
        self._events = events
        self._control: ControlChannel | None = None
        self._media: MediaLink | None = None
        self.room_info: RoomInfo | None = None
        self.billing = Billing()
        self.latency = LatencyWindow()  # glass-to-glass, over the whole session
        # What the app set since connecting: a reconnect applies it again.
        self.prompt = config.prompt
        self.image_base64 = config.image_base64
        # The steps of the last establish() and how long each took (seconds), in order.
        self.steps: list[tuple[str, float]] = []
        self.failed_step: str | None = None  # the step the last establish() failed in

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
            log.debug("connect: %s took %.0f ms", name, (now - started) * 1000)
            step, started = following, now

        try:
            async with asyncio.timeout(timeout):
                config = self._config
                control = ControlChannel(
                    self._control_event, lambda error: self._control_closed(control, error)
                )
                self._control = control
                url = stream_url(
                    config.base_url, config.model.name, config.api_key, f"warmrtc/{_version}"
                )
                await control.open(url, timeout)
                done("control", "room_info")
                # The initial state goes right behind the join; the room is joined and the
                # track published while it applies: the service drops frames until it has.
                info = await control.join(
                    timeout, frame_timing=self._source.stamp_frames, initial=self._initial_state()
                )
                self.room_info = info
                self.billing.new_service_session()
                done("room_info", "room_join")
                lifecycle = self._lifecycle()
                media = MediaLink(
                    self._source,
                    self._switch,
                    config.model,
                    on_frame=self._generated,
                    output_format=config.output_format,
                    on_lost=lifecycle.lost,
                    on_reconnecting=lifecycle.media_reconnecting,
                    on_reconnected=lifecycle.media_reconnected,
                    latency=self.latency,
                )
                self._media = media
                await media.join(info)
                done("room_join", "publish")
                await media.publish()
                done("publish", "initial_state")
                # Usually acked long ago; a refused prompt or image still fails the connect.
                await control.initial_state_applied(timeout)
                done("initial_state", "")
        except TimeoutError:
            self._failed(step, started)
            what = STEP_NAMES.get(step, step)
            raise ConnectTimeoutError(f"{what} did not finish within {timeout:g} s") from None
        except BaseException:
            self._failed(step, started)
            raise

    def _initial_state(self) -> InitialState | None:
        """What the join carries: the app's image or prompt; None for passthrough."""
        if self.image_base64 is not None:
            return image_request(self.image_base64, self.prompt, None)
        if self.prompt is not None:
            return prompt_request(self.prompt, True)
        return None

    def _failed(self, step: str, started: float) -> None:
        # The failed step goes last in ``steps``, with the time it ran for.
        self.failed_step = step
        self.steps.append((step, time.monotonic() - started))

    async def teardown(self, *, wait_native: bool) -> None:
        media, control = self._media, self._control
        self._control = None  # from here on its loss is no news (see _control_closed)
        try:
            if media is not None:
                await media.close(wait_native=wait_native)
        finally:
            self._media = None
            if control is not None:
                await control.close()

    # ---- what comes back -----------------------------------------------------------------

    def _generated(self, array: np.ndarray) -> None:
        # Converted already, off the loop (see ModelOutput).
        self._lifecycle().frame_received()
        self._frames.deliver(array)

    def _control_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        lifecycle = self._lifecycle()
        if kind == "generation_started":
            self._events(GenerationStartedEvent())
            lifecycle.generation_started()
        elif kind == "generation_tick":
            self.billing.tick(message["seconds"])
            self._events(GenerationTickEvent(message["seconds"], self.billing.seconds))
        elif kind == "generation_ended":
            seconds, reason = message.get("seconds"), message.get("reason")
            if isinstance(seconds, int):
                self.billing.tick(seconds)
            self._events(GenerationEndedEvent(seconds, reason))
            lifecycle.generation_stopped(f"the service ended generation: {reason}")
        elif kind == "queue_position":
            log.info("session queued: %s", message)
            self._events(QueuePositionEvent(message["position"], message.get("queue_size")))
        elif kind == "error":
            self._events(ServiceErrorEvent(message["error"]))

    def _control_closed(self, control: ControlChannel, error: WarmrtcError) -> None:
        # A channel this link already let go of (a teardown closing it) reports nothing.
        if control is self._control:
            self._lifecycle().lost(error)


# What each step of establish() waits for, as errors and the connectivity check name it.
STEP_NAMES = {
    "control": "the control channel",
    "room_info": "the room assignment (livekit_room_info)",
    "room_join": "the media room join",
    "publish": "publishing the track",
    "initial_state": "the initial prompt or image",
}

__all__ = ["STEP_NAMES", "Billing", "ServiceLink"]
