"""The control channel: the service's websocket, JSON messages and their acknowledgements."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from .errors import (
    ConnectionLostError,
    ConnectTimeoutError,
    ProtocolError,
    RejectedError,
    WarmrtcError,
    classify_service_error,
)
from .models import STREAM_PATH

log = logging.getLogger("warmrtc")

DEFAULT_BASE_URL = "wss://api.decart.ai"


@dataclass(frozen=True)
class RoomInfo:
    livekit_url: str
    token: str
    room_name: str
    session_id: str

    def __repr__(self) -> str:  # the token is a credential
        return f"RoomInfo(room_name={self.room_name!r}, session_id={self.session_id!r})"


def stream_url(base_url: str, model: str, api_key: str, user_agent: str) -> str:
    base = base_url.rstrip("/")
    base = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return (
        f"{base}{STREAM_PATH}?api_key={quote(api_key)}&model={quote(model)}"
        f"&livekit_early_room_info=true&user_agent={quote(user_agent)}"
    )


class ControlChannel:
    """One websocket to the service. Requests wait for their acks; events go to callbacks.

    ``on_event(message)`` receives generation_started/tick/ended and queue_position messages;
    ``on_closed(error)`` is called once when the socket goes away.
    """

    def __init__(
        self,
        on_event: Callable[[dict[str, Any]], None],
        on_closed: Callable[[WarmrtcError], None],
    ) -> None:
        self._on_event = on_event
        self._on_closed = on_closed
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._room_info: asyncio.Future[RoomInfo] | None = None
        self._prompt_acks: dict[str, deque[asyncio.Future[None]]] = {}
        self._image_acks: deque[asyncio.Future[None]] = deque()
        self._closed_error: WarmrtcError | None = None
        self._service_failure: WarmrtcError | None = None  # the last `error` the service sent
        self._closing = False

    @property
    def closed(self) -> bool:
        return self._closed_error is not None

    async def open(self, url: str, timeout: float) -> None:
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await asyncio.wait_for(self._http.ws_connect(url, heartbeat=20), timeout)
        except BaseException as e:  # cancelled too: the connection is released either way
            await self._http.close()
            if isinstance(e, asyncio.TimeoutError):
                raise ConnectTimeoutError(
                    f"the control channel did not open in {timeout:g} s"
                ) from None
            if isinstance(e, aiohttp.ClientError):
                raise ConnectionLostError(
                    f"cannot open the control channel: {_redact(e)}"
                ) from None
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def join(self, timeout: float) -> RoomInfo:
        """Asks for the LiveKit room; returns its credentials."""
        self._room_info = asyncio.get_running_loop().create_future()
        await self._send({"type": "livekit_join"})
        return await self._wait(self._room_info, timeout, "livekit_room_info")

    async def set_prompt(self, prompt: str, enhance: bool, timeout: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._prompt_acks.setdefault(prompt, deque()).append(future)
        await self._send({"type": "prompt", "prompt": prompt, "enhance_prompt": enhance})
        await self._wait(future, timeout, "prompt_ack")

    async def set_image(
        self, image_base64: str | None, prompt: str | None, enhance: bool | None, timeout: float
    ) -> None:
        """Sends set_image; ``image_base64=None`` with no prompt is the passthrough form."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._image_acks.append(future)
        message: dict[str, Any] = {"type": "set_image", "image_data": image_base64}
        message["prompt"] = prompt
        if enhance is not None:
            message["enhance_prompt"] = enhance
        await self._send(message)
        await self._wait(future, timeout, "set_image_ack")

    async def close(self) -> None:
        self._closing = True
        try:
            if self._ws is not None:
                await self._ws.close()
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)
        finally:
            # Even when cancelled above: closing the connector is what releases the socket.
            if self._http is not None:
                await self._http.close()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        assert self._ws is not None
        try:
            await self._ws.send_str(json.dumps(message))
        except (ConnectionError, aiohttp.ClientError) as e:
            raise ConnectionLostError(f"the control channel is closed: {e}") from None

    async def _wait(self, future: asyncio.Future[Any], timeout: float, what: str) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            future.cancel()
            raise ConnectTimeoutError(f"no {what} from the service within {timeout:g} s") from None

    async def _read(self) -> None:
        assert self._ws is not None
        error: WarmrtcError = ConnectionLostError("the service closed the control channel")
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(msg.data)
                except json.JSONDecodeError:
                    log.warning("the service sent malformed JSON; ignored")
                    continue
                if isinstance(message, dict):
                    self._dispatch(message)
        except aiohttp.ClientError as e:
            error = ConnectionLostError(f"the control channel failed: {e}")
        finally:
            if self._closing:
                error = ConnectionLostError("the session was disconnected")
            elif self._service_failure is not None:
                error = self._service_failure  # e.g. the key was refused, then the socket closed
            self._fail_pending(error)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "livekit_room_info":
            if self._room_info is not None and not self._room_info.done():
                self._room_info.set_result(
                    RoomInfo(
                        livekit_url=str(message["livekit_url"]),
                        token=str(message["token"]),
                        room_name=str(message["room_name"]),
                        session_id=str(message["session_id"]),
                    )
                )
        elif kind == "prompt_ack":
            waiters = self._prompt_acks.get(str(message.get("prompt")))
            if waiters:
                _resolve(waiters.popleft(), message)
        elif kind == "set_image_ack":
            if self._image_acks:
                _resolve(self._image_acks.popleft(), message)
        elif kind == "error":
            self._service_error(str(message.get("error", "unknown error")))
        else:
            self._on_event(message)

    def _service_error(self, text: str) -> None:
        error = classify_service_error(text)
        self._service_failure = error
        # An error answers the oldest pending request; with none pending it ends nothing.
        if self._room_info is not None and not self._room_info.done():
            self._room_info.set_exception(error)
            return
        log.warning("the service reported an error: %s", text)
        self._on_event({"type": "error", "error": text})

    def _fail_pending(self, error: WarmrtcError) -> None:
        self._closed_error = error
        pending: list[asyncio.Future[Any]] = list(self._image_acks)
        pending += [f for waiters in self._prompt_acks.values() for f in waiters]
        if self._room_info is not None:
            pending.append(self._room_info)
        for future in pending:
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: a request nobody awaits any more stays quiet
        self._on_closed(error)


def _redact(error: BaseException) -> str:
    # aiohttp's handshake errors quote the whole URL, and the protocol puts the key in it.
    return re.sub(r"api_key=[^&'\"\s]*", "api_key=***", str(error))


def _resolve(future: asyncio.Future[None], ack: dict[str, Any]) -> None:
    if future.done():
        return
    if ack.get("success", False):
        future.set_result(None)
    else:
        future.set_exception(RejectedError(str(ack.get("error") or "rejected by the service")))


__all__ = ["DEFAULT_BASE_URL", "ControlChannel", "ProtocolError", "RoomInfo", "stream_url"]
