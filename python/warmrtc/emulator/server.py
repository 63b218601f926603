"""The emulated realtime service: the control channel, rooms, the meter and what it saw.

Speaks the control protocol as Decart's public SDKs do: a websocket at
``/v1/stream?api_key=...&model=...`` taking ``livekit_join``, ``prompt`` and ``set_image`` and
answering ``queue_position``, ``livekit_room_info``, ``prompt_ack``, ``set_image_ack``,
``generation_started``, ``generation_tick``, ``generation_ended`` and ``error``. Media goes
through a real LiveKit server; ``GET /sessions`` reports what each session sent and was billed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from livekit import api

from ..models import INFERENCE_IDENTITY_PREFIX, REALTIME_MODELS, STREAM_PATH, RealtimeModel
from .inference import InferenceParticipant
from .meter import Meter

log = logging.getLogger("warmrtc.emulator")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # images arrive base64-encoded in one message


@dataclass
class EmulatorConfig:
    livekit_url: str
    livekit_key: str
    livekit_secret: str
    api_keys: frozenset[str]
    queue_positions: int = 0  # queue_position messages sent before the room info
    # The LiveKit address handed to clients, where they reach the server by another address
    # than the emulator does (a NAT, a container); None: livekit_url.
    client_livekit_url: str | None = None
    # Artificial model latency: each generated frame is published this long after its input.
    model_delay_ms: int = 0
    # Echo each input frame's capture stamp on its generated frame for clients that announce
    # client_capabilities.frame_timing (as Decart's service does); False: never echo.
    frame_timing: bool = True

    @property
    def public_livekit_url(self) -> str:
        return self.client_livekit_url or self.livekit_url


@dataclass
class Session:
    session_id: str
    model: RealtimeModel
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    room_name: str = ""
    drop_on: str | None = None  # fault injection: drop the socket on this message type
    state: str = "waiting"  # waiting -> joined -> generating -> ended
    prompt: str | None = None
    meter: Meter = field(default_factory=Meter)
    inference: InferenceParticipant | None = None
    ticks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def report(self) -> dict[str, Any]:
        m = self.meter
        return {
            "session_id": self.session_id,
            "model": self.model.name,
            "room_name": self.room_name,
            "state": self.state,
            "muted": m.muted,
            "frames_received": m.frames_received,
            "billed_seconds": m.billed_seconds,
            "first_frame_at": m.first_frame_at,
            "last_frame_at": m.last_frame_at,
        }


class Emulator:
    """The aiohttp application of the emulated service; ``sessions`` holds every session."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.app = web.Application()
        self.app.router.add_get(STREAM_PATH, self._stream)
        self.app.router.add_get("/sessions", self._sessions)
        self.app.router.add_post("/watch-stream/{room}", self._watch)
        self.app.router.add_post("/sessions/{session_id}/drop", self._drop)
        self.app.router.add_post("/sessions/{session_id}/end", self._end_request)

    def token(self, identity: str, room: str, *, can_publish: bool = True) -> str:
        grants = api.VideoGrants(
            room_join=True, room=room, can_publish=can_publish, can_subscribe=True
        )
        return (
            api.AccessToken(self.config.livekit_key, self.config.livekit_secret)
            .with_identity(identity)
            .with_grants(grants)
            .to_jwt()
        )

    async def _sessions(self, _request: web.Request) -> web.Response:
        return web.json_response([s.report() for s in self.sessions.values()])

    async def _drop(self, request: web.Request) -> web.Response:
        """Fault injection: drops a session's websocket (no close frame), as a network would.

        ``?on=prompt`` (or any message type) drops it when that message next arrives instead,
        so the client has a request in flight.
        """
        session = self.sessions.get(request.match_info["session_id"])
        if session is None or session.state == "ended":
            return web.json_response({"error": "no such live session"}, status=404)
        on = request.query.get("on")
        if on:
            session.drop_on = on
        else:
            _abort(session)
        return web.json_response({"session_id": session.session_id, "drop_on": on})

    async def _end_request(self, request: web.Request) -> web.Response:
        """Ends a session from the service's side, as the real service does when a session
        reaches its time limit: ``generation_ended`` (with ``seconds`` and ``reason``, while
        generating), then the websocket is closed (code 1000). ``?reason=...`` (default
        ``max_duration_reached``)."""
        session = self.sessions.get(request.match_info["session_id"])
        if session is None or session.state == "ended":
            return web.json_response({"error": "no such live session"}, status=404)
        reason = request.query.get("reason", "max_duration_reached")
        was = session.state
        await self._end(session, reason)
        await session.ws.close(code=1000, message=reason.encode()[:120])
        return web.json_response({"session_id": session.session_id, "was": was, "reason": reason})

    async def _watch(self, request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") not in self.config.api_keys:
            return web.json_response({"error": "Invalid API key"}, status=401)
        room = request.match_info["room"]
        session = next((s for s in self.sessions.values() if s.room_name == room), None)
        if session is None:
            return web.json_response({"error": f"no stream in room {room!r}"}, status=404)
        viewer = f"viewer-{secrets.token_hex(4)}"
        return web.json_response(
            {
                "livekit_url": self.config.public_livekit_url,
                "token": self.token(viewer, room, can_publish=False),
                "room_name": room,
                "session_id": session.session_id,
            }
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=2 * MAX_MESSAGE_BYTES, heartbeat=20)
        await ws.prepare(request)
        api_key = request.query.get("api_key", "")
        model = REALTIME_MODELS.get(request.query.get("model", ""))
        if api_key not in self.config.api_keys:
            await _send(ws, {"type": "error", "error": "Invalid API key"})
            await ws.close(code=4001, message=b"invalid api key")
            return ws
        if model is None:
            name = request.query.get("model", "")
            await _send(ws, {"type": "error", "error": f"Unknown model: {name!r}"})
            await ws.close(code=4004, message=b"unknown model")
            return ws
        session = Session(
            session_id=secrets.token_hex(8), model=model, ws=ws, transport=request.transport
        )
        self.sessions[session.session_id] = session
        log.info("session %s opened (model %s)", session.session_id, model.name)
        ticker = asyncio.create_task(self._send_ticks(session))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._handle(session, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await _error(ws, "binary messages are not part of the protocol")
        finally:
            await self._end(session, "client_disconnected")
            ticker.cancel()
        return ws

    async def _handle(self, session: Session, text: str) -> None:
        ws = session.ws
        if len(text) > MAX_MESSAGE_BYTES:
            await _error(ws, f"message of {len(text)} bytes is over {MAX_MESSAGE_BYTES}")
            return
        try:
            message = json.loads(text)
        except json.JSONDecodeError as e:
            await _error(ws, f"malformed JSON: {e}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await _error(ws, "a message is a JSON object with a string 'type'")
            return
        kind = message["type"]
        if kind == session.drop_on:
            log.info(
                "session %s: dropping the socket on %r (fault injection)", session.session_id, kind
            )
            _abort(session)
            return
        if kind == "livekit_join":
            await self._join(session, message)
        elif kind == "prompt":
            await self._prompt(session, message)
        elif kind == "set_image":
            await self._set_image(session, message)
        else:
            await _error(ws, f"unknown message type {kind!r}")

    async def _join(self, session: Session, message: dict[str, Any]) -> None:
        if session.inference is not None:
            await _error(session.ws, "livekit_join was already sent on this session")
            return
        for position in range(self.config.queue_positions, 0, -1):
            await _send(
                session.ws,
                {
                    "type": "queue_position",
                    "position": position,
                    "queue_size": self.config.queue_positions,
                },
            )
        session.room_name = f"warmrtc-{session.session_id}"
        inference = InferenceParticipant(
            session.model,
            on_frame=lambda: self._frame(session),
            on_muted=lambda muted: setattr(session.meter, "muted", muted),
            echo_stamps=self.config.frame_timing and _wants_frame_timing(message),
            delay=self.config.model_delay_ms / 1000.0,
        )
        session.inference = inference
        identity = f"{INFERENCE_IDENTITY_PREFIX}{session.session_id}"
        try:
            await inference.join(self.config.livekit_url, self.token(identity, session.room_name))
        except Exception as e:  # the media server is down or refused us: tell the client
            log.warning("session %s: inference could not join: %s", session.session_id, e)
            await _error(session.ws, f"media server unavailable: {e}")
            return
        session.state = "joined"
        client_token = self.token(f"client-{session.session_id}", session.room_name)
        await _send(
            session.ws,
            {
                "type": "livekit_room_info",
                "livekit_url": self.config.public_livekit_url,
                "token": client_token,
                "room_name": session.room_name,
                "session_id": session.session_id,
            },
        )
        # Mobile SDKs put a whole prompt / set_image message in initial_state.
        initial = message.get("initial_state")
        if isinstance(initial, dict) and initial.get("type") == "prompt":
            await self._prompt(session, initial)
        elif isinstance(initial, dict) and initial.get("type") == "set_image":
            await self._set_image(session, initial)

    async def _prompt(self, session: Session, message: dict[str, Any]) -> None:
        prompt = message.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            await _send(
                session.ws,
                {
                    "type": "prompt_ack",
                    "prompt": str(prompt or ""),
                    "success": False,
                    "error": "prompt must be a non-empty string",
                },
            )
            return
        session.prompt = prompt
        await _send(session.ws, {"type": "prompt_ack", "prompt": prompt, "success": True})

    async def _set_image(self, session: Session, message: dict[str, Any]) -> None:
        data = message.get("image_data")
        ref = message.get("image_ref")
        error = None
        if data is not None:
            if not isinstance(data, str):
                error = "image_data must be a base64 string or null"
            else:
                try:
                    base64.b64decode(data.split(",", 1)[-1], validate=True)
                except (binascii.Error, ValueError):
                    error = "image_data is not valid base64"
        elif ref is not None and not isinstance(ref, str):
            error = "image_ref must be a string"
        prompt = message.get("prompt")
        if error is None and prompt is not None and not isinstance(prompt, str):
            error = "prompt must be a string or null"
        if error is None and isinstance(prompt, str):
            session.prompt = prompt
        reply: dict[str, Any] = {"type": "set_image_ack", "success": error is None}
        if error:
            reply["error"] = error
        await _send(session.ws, reply)

    def _frame(self, session: Session) -> None:
        if session.state == "ended":
            return
        if session.meter.frame():
            if session.state != "generating":
                session.state = "generating"
                session.ticks.put_nowait({"type": "generation_started"})
            session.ticks.put_nowait(
                {"type": "generation_tick", "seconds": session.meter.billed_seconds}
            )

    async def _send_ticks(self, session: Session) -> None:
        while True:
            message = await session.ticks.get()
            if not session.ws.closed:
                await _send(session.ws, message)

    async def _end(self, session: Session, reason: str) -> None:
        if session.state == "ended":
            return
        if session.state == "generating" and not session.ws.closed:
            await _send(
                session.ws,
                {
                    "type": "generation_ended",
                    "seconds": session.meter.billed_seconds,
                    "reason": reason,
                },
            )
        session.state = "ended"
        if session.inference is not None:
            await session.inference.leave()
        log.info(
            "session %s ended: %s, %d frames, %d s billed",
            session.session_id,
            reason,
            session.meter.frames_received,
            session.meter.billed_seconds,
        )

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            if not session.ws.closed:
                await session.ws.close()
            await self._end(session, "server_shutdown")


async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
    if ws.closed:
        return
    try:
        await ws.send_str(json.dumps(message))
    except ConnectionError:
        pass  # the client went away; the receive loop ends the session


def _abort(session: Session) -> None:
    if session.transport is not None:
        session.transport.abort()


def _wants_frame_timing(join: dict[str, Any]) -> bool:
    """True when the join announces ``client_capabilities: {frame_timing: true}`` (JS SDK)."""
    capabilities = join.get("client_capabilities")
    return isinstance(capabilities, dict) and capabilities.get("frame_timing") is True


async def _error(ws: web.WebSocketResponse, text: str) -> None:
    await _send(ws, {"type": "error", "error": text})


async def serve(config: EmulatorConfig, host: str, port: int) -> tuple[Emulator, web.AppRunner]:
    """Starts the emulator on host:port; returns it and the runner to clean up."""
    emulator = Emulator(config)
    emulator.app.on_shutdown.append(lambda _app: emulator.close())
    runner = web.AppRunner(emulator.app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return emulator, runner
