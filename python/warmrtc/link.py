"""ServiceLink: one connection to the service, the control channel then the media room.

``establish()`` opens the control channel, asks for the room, applies the initial prompt or
image (so that no generated frame comes before it), joins the room and publishes the track;
``teardown()`` undoes all of it. The :class:`Lifecycle` calls both, again after a loss. What the
service says on the control channel goes to the lifecycle (generation started/ended) and to the
billing count; what the model sends back goes, converted, to the frame fan-out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from livekit import rtc

from ._core import from_i420, to_i420
from ._version import __version__ as _version
from .config import SessionConfig
from .errors import ConnectTimeoutError, WarmrtcError
from .fanout import FrameFanout
from .latency import LatencyWindow
from .lifecycle import Lifecycle
from .media import MediaLink
from .mute import MuteSwitch
from .rtc_frame import i420_planes
from .signaling import ControlChannel, RoomInfo, stream_url
from .source import VideoSource

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
    """The :class:`~warmrtc.lifecycle.Link` of a real session."""

    def __init__(
        self,
        config: SessionConfig,
        source: VideoSource,
        switch: MuteSwitch,
        frames: FrameFanout,
        lifecycle: Callable[[], Lifecycle],
    ) -> None:
        self._config = config
        self._source = source
        self._switch = switch
        self._frames = frames
        self._lifecycle = lifecycle  # set once the session has built it
        self._control: ControlChannel | None = None
        self._media: MediaLink | None = None
        self.room_info: RoomInfo | None = None
        self.billing = Billing()
        self.latency = LatencyWindow()  # glass-to-glass, over the whole session
        # What the app set since connecting: a reconnect applies it again.
        self.prompt = config.prompt
        self.image_base64 = config.image_base64

    @property
    def control(self) -> ControlChannel | None:
        """The control channel while it is open."""
        control = self._control
        return control if control is not None and not control.closed else None

    async def establish(self, timeout: float) -> None:
        step = "the control channel"
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
                step = "the room assignment (livekit_room_info)"
                info = await control.join(timeout, frame_timing=self._source.stamp_frames)
                self.room_info = info
                self.billing.new_service_session()
                step = "the initial prompt or image"
                if self.image_base64 is not None:
                    await control.set_image(self.image_base64, self.prompt, None, timeout)
                elif self.prompt is not None:
                    await control.set_prompt(self.prompt, True, timeout)
                else:
                    await control.set_image(None, None, None, timeout)  # passthrough
                step = "the media room join"
                lifecycle = self._lifecycle()
                media = MediaLink(
                    self._source,
                    self._switch,
                    config.model,
                    on_frame=self._generated,
                    on_lost=lifecycle.lost,
                    on_reconnecting=lifecycle.media_reconnecting,
                    on_reconnected=lifecycle.media_reconnected,
                    latency=self.latency,
                )
                self._media = media
                await media.join(info)
                step = "publishing the track"
                await media.publish()
        except TimeoutError:
            raise ConnectTimeoutError(f"{step} did not finish within {timeout:g} s") from None

    async def teardown(self, *, wait_native: bool) -> None:
        media, self._media = self._media, None
        control, self._control = self._control, None
        try:
            if media is not None:
                await media.close(wait_native=wait_native)
        finally:
            if control is not None:
                await control.close()

    # ---- what comes back -----------------------------------------------------------------

    def _generated(self, frame: rtc.VideoFrame) -> None:
        planes = i420_planes(frame)
        fmt = self._config.output_format
        array = to_i420(planes, "i420") if fmt == "i420" else from_i420(planes, fmt)
        self._lifecycle().frame_received()
        self._frames.deliver(array)

    def _control_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        lifecycle = self._lifecycle()
        if kind == "generation_started":
            lifecycle.generation_started()
        elif kind == "generation_tick":
            self.billing.tick(message["seconds"])
        elif kind == "generation_ended":
            if isinstance(message.get("seconds"), int):
                self.billing.tick(message["seconds"])
            lifecycle.generation_stopped(f"the service ended generation: {message.get('reason')}")
        elif kind == "queue_position":
            log.info("session queued: %s", message)

    def _control_closed(self, control: ControlChannel, error: WarmrtcError) -> None:
        # A channel this link already let go of (a teardown closing it) reports nothing.
        if control is self._control:
            self._lifecycle().lost(error)


__all__ = ["Billing", "ServiceLink"]
