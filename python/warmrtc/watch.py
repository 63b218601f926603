"""watch(): a spectator of a live session, receiving its generated video and sending nothing.

The service hands out a subscribe-only LiveKit token for a session's room
(``POST {base}/watch-stream/{room}`` with the header ``x-api-key``; the answer is
``{livekit_url, token, room_name[, session_id]}``, as Decart's JS SDK reads it). The spectator
joins that room, attaches a reader to every video track of the model (identities
``inference-server-*``) and hands the frames out as numpy arrays, like ``Session.frames()``.
It never publishes a track (the token does not allow it either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from ._media.latest_queue import FRAME_DEPTH
from ._media.model_output import ModelOutput
from ._media.room import Room
from ._media.rtc_frame import GeneratedFrame
from ._protocol.endpoints import DEFAULT_BASE_URL, Secret, check_base_url, watch_url
from ._protocol.endpoints import api_key as resolve_api_key
from ._service_http import post_json
from ._session.fanout import Fanout, Reader
from .config import (
    FrameCallback,
    OutputFormat,
    check_callback,
    check_output_format,
    seconds,
)
from .errors import (
    ConnectTimeoutError,
    ProtocolError,
    SessionClosedError,
)

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger("warmrtc")


class Spectator:
    """A joined spectator. Create it with :func:`warmrtc.watch`.

    ``async for frame in spectator`` (or ``spectator.frames()``) yields the model's frames
    until the session ends or ``close()``; a slow reader sees the newest. ``close()`` is
    idempotent.
    """

    room_name: str  # the session's media room
    session_id: str | None  # the service's id of the session, when the service says it
    frames_received: int  # generated frames handed out so far

    def __init__(
        self,
        room_name: str,
        session_id: str | None,
        output_format: OutputFormat,
        on_frame: FrameCallback | None,
    ) -> None:
        self.room_name = room_name
        self.session_id = session_id
        self._frames: Fanout[np.ndarray] = Fanout(on_frame, depth=FRAME_DEPTH, name="on_frame")
        self._room = Room("watch")
        self._output = ModelOutput(self._room.rtc, self._received, "warmrtc-watch", output_format)
        self.frames_received = 0
        self._closed = False
        self._closing: asyncio.Future[Any] | None = None
        self._room.rtc.on("disconnected", self._disconnected)

    @property
    def closed(self) -> bool:
        """True once the spectator left the room (close(), or the session ended)."""
        return self._closed or self._frames.ended

    def frames(self) -> Reader[np.ndarray]:
        """The model's frames as numpy arrays in ``output_format``, until the end."""
        return self._frames.reader()

    def __aiter__(self) -> AsyncIterator[np.ndarray]:
        return self.frames()

    async def _join(self, livekit_url: str, token: str) -> None:
        # Cancelled half-way, the join runs to its end all the same, and a close() meanwhile
        # leaves the room after it (see warmrtc._media.room).
        await self._room.join(livekit_url, token)
        self._output.attach_subscribed()  # subscribed before the handler could see it

    def _received(self, frame: GeneratedFrame) -> None:
        # Converted already, off the loop (see ModelOutput).
        self.frames_received += 1
        self._frames.deliver(frame.array)

    def _disconnected(self, *_args: object) -> None:
        log.info("spectator of room %s: the room closed", self.room_name)
        self._output.stop()  # the receive thread ends now; close() awaits it
        self._frames.end()

    async def close(self) -> None:
        """Leaves the room (bounded); the frame iterators end. Idempotent."""
        await asyncio.shield(self._close_soon())

    def _close_soon(self) -> asyncio.Future[Any]:
        """Starts the close; the leave goes on in the background if nobody waits for it."""
        if not self._closed:
            self._closed = True
            self._room.rtc.off("disconnected", self._disconnected)
            self._frames.end()
            stopping = self._output.stop()
            leaving = self._room.leave_soon()
            leaving.add_done_callback(lambda _done: self._output.release())
            self._closing = asyncio.gather(*stopping, leaving, return_exceptions=True)
        assert self._closing is not None
        return self._closing

    def __repr__(self) -> str:
        return (
            f"Spectator(room_name={self.room_name!r}, session_id={self.session_id!r}, "
            f"frames_received={self.frames_received}, closed={self.closed})"
        )


class Watching:
    """What :func:`watch` returns: await it, or use it as ``async with``."""

    def __init__(self, room: str, api_key: Secret, base_url: str, **kwargs: Any) -> None:
        self._args = (room, api_key, base_url)
        self._kwargs = kwargs
        self._spectator: Spectator | None = None

    def __await__(self) -> Generator[Any, None, Spectator]:
        return _watch(*self._args, **self._kwargs).__await__()

    async def __aenter__(self) -> Spectator:
        self._spectator = await _watch(*self._args, **self._kwargs)
        return self._spectator

    async def __aexit__(self, *_exc: object) -> None:
        if self._spectator is not None:
            await self._spectator.close()


def watch(
    room: str | Session,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    output_format: OutputFormat = "bgr24",
    on_frame: FrameCallback | None = None,
    timeout: float = 30,
) -> Watching:
    """Watches a live session's generated video as a spectator (never publishing).

    ``room`` is the session's room name (``session.room_name``, or what its owner shared) or a
    :class:`Session`. ``api_key`` (default ``$DECART_API_KEY``) must be allowed to see the
    session; ``base_url`` is the service's (default the public endpoint; ws:// and http://
    spellings both work). Await it or use ``async with``; iterate the spectator for frames.
    Raises ValueError/TypeError for a bad argument here; while joining AuthenticationError (the
    key is refused), SessionClosedError (no live session in that room), ConnectTimeoutError
    (``timeout`` seconds at most), ConnectionLostError or ProtocolError.
    """
    name = getattr(room, "room_name", room)
    if not isinstance(name, str) or not name:
        kind = type(room).__name__
        raise ValueError(f"room must be a room name or a connected Session, got {kind} {room!r}")
    # Checked as connect() checks them.
    key = resolve_api_key(api_key)
    base = check_base_url(base_url) or DEFAULT_BASE_URL
    check_output_format(output_format)
    check_callback("on_frame", on_frame)
    return Watching(
        name,
        key,
        base,
        output_format=output_format,
        on_frame=on_frame,
        timeout=seconds("timeout", timeout),
    )


async def _watch(
    room: str,
    api_key: Secret,
    base_url: str,
    *,
    output_format: OutputFormat,
    on_frame: FrameCallback | None,
    timeout: float,
) -> Spectator:
    try:
        async with asyncio.timeout(timeout):
            grant = await _request_token(room, api_key, base_url, timeout)
            spectator = Spectator(
                grant["room_name"], grant.get("session_id"), output_format, on_frame
            )
            try:
                await spectator._join(grant["livekit_url"], grant["token"])
            except BaseException:
                # Within watch()'s timeout; past it the room is left in the background.
                spectator._close_soon()
                raise
            return spectator
    except TimeoutError:
        raise ConnectTimeoutError(f"watching room {room!r} took over {timeout:g} s") from None


async def _request_token(room: str, api_key: Secret, base_url: str, timeout: float) -> Any:
    body = await post_json(
        watch_url(base_url, room),
        api_key,
        what=f"the service's spectator grant for room {room!r}",
        timeout=timeout,
        not_found=SessionClosedError,  # no live session there (for this key)
    )
    if not isinstance(body, dict) or not all(
        isinstance(body.get(k), str) and body[k] for k in ("livekit_url", "token", "room_name")
    ):
        raise ProtocolError("the watch-stream answer lacks livekit_url, token or room_name")
    return body


__all__ = ["Spectator", "Watching", "watch"]
