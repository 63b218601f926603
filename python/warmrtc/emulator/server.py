"""The emulated realtime service: the control channel, rooms, the meter and what it saw.

The join is answered at once with the room (the model joins it meanwhile). A join with
``passthrough: false`` announces an initial prompt or image in the next frame: the model drops
the client's frames until one applies, as Decart's service does since its JS SDK stopped waiting
for that ack before publishing (DecartAI/sdk #166, #168). A join without the field (older
clients, which wait for the ack themselves) starts the model on frames at once.

Speaks the control protocol as Decart's public SDKs do: a websocket at
``/v1/stream?api_key=...&model=...`` taking ``livekit_join``, ``prompt`` and ``set_image`` and
answering ``queue_position``, ``livekit_room_info``, ``prompt_ack``, ``set_image_ack``,
``generation_started``, ``generation_tick``, ``generation_ended`` and ``error``. Media goes
through a real LiveKit server; ``GET /sessions`` reports what each of the caller's sessions
sent and was billed. Client tokens (``POST /v1/client/tokens``), the per-key concurrency limit
(``GET /v1/realtime/quota``) and spectators (``POST /watch-stream/{room}``) as the service has
them; every endpoint authenticates (see :mod:`.auth`).

A session is kept (and reported, with ``holds_slot``) until its slot is free again, a while
after it ended (:mod:`.slots`); its inference participant runs in a process of its own
(:mod:`.worker`), which exits when the session ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from livekit import api

from .. import _trace
from .._protocol import messages
from .._protocol.endpoints import QUOTA_PATH, SESSIONS_PATH, STREAM_PATH, TOKENS_PATH, WATCH_PATH
from .._protocol.limits import (
    CRASH_RELEASE_DELAY,
    HARD_MESSAGE_BYTES,
    HEARTBEAT,
    LIMIT_CLOSE_REASON,
    LIMIT_MESSAGE,
    MAX_SESSION_REASON,
    RELEASE_DELAY,
)
from .._protocol.models import INFERENCE_IDENTITY_PREFIX, REALTIME_MODELS, RealtimeModel
from .._protocol.refusals import LIMIT_CLOSE_CODE, PrivateClose
from .auth import Authenticator, Caller
from .incoming import BadMessage, check_prompt, parse
from .meter import Meter
from .slots import SlotLedger
from .tokens import TokenIssuer, TokenRequestError
from .worker import InferenceWorker, start_workers

log = logging.getLogger("warmrtc.emulator")


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
    # The concurrency limit per API key (0: none) and the delays before an ended session's
    # slot is free again: after a clean disconnect, and after a websocket that dropped.
    max_sessions: int = 0
    release_delay: float = RELEASE_DELAY
    crash_release_delay: float = CRASH_RELEASE_DELAY
    # POST /sessions/{id}/drop and /end: off unless asked for.
    fault_injection: bool = False

    @property
    def public_livekit_url(self) -> str:
        return self.client_livekit_url or self.livekit_url


@dataclass
class Session:
    session_id: str
    model: RealtimeModel
    ws: web.WebSocketResponse
    owner: str  # the API key whose limit the session counts against
    token_key: str | None = None  # the client token it was opened with, if any
    transport: asyncio.Transport | None = None
    room_name: str = ""
    drop_on: str | None = None  # fault injection: drop the socket on this message type
    state: str = "waiting"  # waiting -> joined -> generating -> ended
    prompt: str | None = None
    meter: Meter = field(default_factory=Meter)
    inference: InferenceWorker | None = None
    ticks: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    holds_slot: bool = True  # until the slot is free again, a while after the session ended
    expiry: asyncio.TimerHandle | None = None  # the token's maxSessionDuration
    # What the client asked for on connect, as its stream URL's query says (None: nothing).
    resolution: str | None = None
    speed: str | None = None
    user_agent: str | None = None

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
            "holds_slot": self.holds_slot,
            "model_pid": self.inference.pid if self.inference is not None else None,
            "resolution": self.resolution,
            "speed": self.speed,
            "user_agent": self.user_agent,
        }


class Emulator:
    """The aiohttp application of the emulated service; ``sessions`` holds every session."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.sessions: dict[str, Session] = {}
        self.auth = Authenticator(config.api_keys, TokenIssuer())
        self.slots = SlotLedger(
            config.max_sessions, config.release_delay, config.crash_release_delay
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self.app = web.Application()
        self.app.router.add_get(STREAM_PATH, self._stream)
        self.app.router.add_get(SESSIONS_PATH, self._sessions)
        self.app.router.add_post(TOKENS_PATH, self._mint_token)
        self.app.router.add_get(QUOTA_PATH, self._quota)
        self.app.router.add_post(WATCH_PATH + "{room}", self._watch)
        self.app.router.add_post(SESSIONS_PATH + "/{session_id}/drop", self._drop)
        self.app.router.add_post(SESSIONS_PATH + "/{session_id}/end", self._end_request)

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

    async def _sessions(self, request: web.Request) -> web.Response:
        caller = self.auth.http_caller(request)
        return web.json_response([s.report() for s in self._visible(caller)])

    def _visible(self, caller: Caller) -> list[Session]:
        return [s for s in self.sessions.values() if caller.owns(s.owner, s.token_key)]

    async def _mint_token(self, request: web.Request) -> web.Response:
        caller = self.auth.http_caller(request)
        if caller.token is not None:
            return _http_error(403, "a client token cannot create client tokens")
        try:
            body = await request.json()
        except ValueError:
            return _http_error(400, "the request body is not JSON")
        try:
            _token, response = self.auth.tokens.mint(caller.owner, body)
        except TokenRequestError as e:
            return _http_error(400, str(e))
        return web.json_response(response)

    async def _quota(self, request: web.Request) -> web.Response:
        quota = self.slots.quota(self.auth.http_caller(request).owner)
        return web.json_response(
            {"limit": quota.limit, "active": quota.active, "remaining": quota.remaining}
        )

    def _live_session_of(self, request: web.Request) -> Session:
        """The caller's live session the path names (fault injection); raises an HTTP error."""
        caller = self.auth.http_caller(request)
        if not self.config.fault_injection:
            raise _http_exception(
                web.HTTPForbidden, "fault injection is off (start with --fault-injection)"
            )
        session = self.sessions.get(request.match_info["session_id"])
        if session is None or session.state == "ended":
            raise _http_exception(web.HTTPNotFound, "no such live session")
        if not caller.owns(session.owner, session.token_key):
            raise _http_exception(web.HTTPNotFound, "no such live session")
        return session

    async def _drop(self, request: web.Request) -> web.Response:
        """Fault injection: drops a session's websocket (no close frame), as a network would.

        ``?on=prompt`` (or any message type) drops it when that message next arrives instead,
        so the client has a request in flight.
        """
        session = self._live_session_of(request)
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
        ``timeout``, the reason a token's maxSessionDuration ends a session with)."""
        session = self._live_session_of(request)
        reason = request.query.get("reason", MAX_SESSION_REASON)[:120]
        was = session.state
        await self._end_by_service(session, reason)
        return web.json_response({"session_id": session.session_id, "was": was, "reason": reason})

    async def _end_by_service(self, session: Session, reason: str) -> None:
        """The service ends a session: ``generation_ended`` (with ``seconds`` and ``reason``),
        then the websocket is closed (code 1000, the reason as its text)."""
        await self._end(session, reason, announce=True)
        await session.ws.close(code=WSCloseCode.OK, message=reason.encode()[:120])

    async def _model_lost(self, session: Session, reason: str) -> None:
        """The session's model stopped while it was live: the client gets an ``error``, then
        the session ends as the service ends one."""
        if session.state == "ended":
            return
        log.warning("session %s: %s", session.session_id, reason)
        if not session.ws.closed:
            await _error(session.ws, f"inference failed: {reason}")
        await self._end_by_service(session, "error")

    async def _watch(self, request: web.Request) -> web.Response:
        caller = self.auth.http_caller(request)
        room = request.match_info["room"]
        session = next(
            (s for s in self._visible(caller) if s.room_name == room and s.state != "ended"),
            None,
        )
        if session is None:  # a session of another key is none of the caller's business
            return _http_error(404, f"no stream in room {room!r}")
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
        ws = web.WebSocketResponse(max_msg_size=HARD_MESSAGE_BYTES, heartbeat=HEARTBEAT)
        try:
            await ws.prepare(request)
            _trace.mark("service.stream_opened")
        except ConnectionResetError:  # the client went away during the handshake
            log.info("a client left during the websocket handshake")
            return ws
        caller = self.auth.resolve(request.query.get("api_key"))
        name = request.query.get("model", "")
        model = REALTIME_MODELS.get(name)
        # An expired token is refused as an unknown key is.
        if caller is None:
            return await _refuse(ws, "Invalid API key", PrivateClose.INVALID_KEY, "invalid api key")
        if model is None:
            return await _refuse(
                ws, f"Unknown model: {name!r}", PrivateClose.UNKNOWN_MODEL, "unknown model"
            )
        token = caller.token
        if token is not None and token.models is not None and model.name not in token.models:
            text = f"Model {model.name!r} is not allowed for this token"
            return await _refuse(ws, text, PrivateClose.NOT_ALLOWED, "model not allowed")
        origin = request.headers.get("Origin")
        if token is not None and token.origins is not None and origin not in token.origins:
            text = f"Origin {origin!r} is not allowed for this token"
            return await _refuse(ws, text, PrivateClose.NOT_ALLOWED, "origin not allowed")
        if not self.slots.take(caller.owner):
            log.info(
                "session refused: the concurrency limit (%d) is reached", self.slots.max_sessions
            )
            return await _refuse(ws, LIMIT_MESSAGE, LIMIT_CLOSE_CODE, LIMIT_CLOSE_REASON)
        session = Session(
            session_id=secrets.token_hex(8),
            model=model,
            ws=ws,
            owner=caller.owner,
            token_key=token.key if token is not None else None,
            transport=request.transport,
            resolution=request.query.get("resolution"),
            speed=request.query.get("speed"),
            user_agent=request.query.get("user_agent"),
        )
        self.sessions[session.session_id] = session
        log.info("session %s opened (model %s)", session.session_id, model.name)
        if token is not None and token.max_session_duration is not None:
            session.expiry = asyncio.get_running_loop().call_later(
                token.max_session_duration, lambda: self._spawn(self._expire(session))
            )
        ticker = asyncio.create_task(self._send_ticks(session))
        crashed = True  # unless the client closes the socket, or the service ends the session
        try:
            while True:
                msg = await ws.receive()
                if msg.type == WSMsgType.TEXT:
                    await self._handle(session, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await _error(ws, "binary messages are not part of the protocol")
                elif msg.type == WSMsgType.CLOSE:  # the client's close frame: a clean end
                    crashed = False
                    break
                elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            crashed = crashed and session.state != "ended"  # ended by the service: clean
            await self._end(session, "client_disconnected")
            ticker.cancel()
            self._release(session, crashed=crashed)
        return ws

    def _release(self, session: Session, *, crashed: bool) -> None:
        def forget() -> None:
            session.holds_slot = False
            self.sessions.pop(session.session_id, None)

        delay = self.slots.release(session.owner, crashed=crashed, then=forget)
        log.info(
            "session %s: its slot is free in %g s (%s)",
            session.session_id,
            delay,
            "dropped" if crashed else "closed",
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, session: Session) -> None:
        if session.state != "ended":
            log.info("session %s: maxSessionDuration reached", session.session_id)
            await self._end_by_service(session, MAX_SESSION_REASON)

    async def _handle(self, session: Session, text: str) -> None:
        ws = session.ws
        try:
            message = parse(text)
        except BadMessage as e:
            await _error(ws, str(e))
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
        _trace.mark("service.join", session=session.session_id)
        for position in range(self.config.queue_positions, 0, -1):
            await _send(session.ws, messages.queue_position(position, self.config.queue_positions))
        session.room_name = f"warmrtc-{session.session_id}"
        inference = InferenceWorker(
            session.model,
            on_frame=lambda: self._frame(session),
            on_muted=lambda muted: setattr(session.meter, "muted", muted),
            on_lost=lambda reason: self._spawn(self._model_lost(session, reason)),
            echo_stamps=self.config.frame_timing and _wants_frame_timing(message),
            delay=self.config.model_delay_ms / 1000.0,
            # A join that says an initial state follows: its frames are dropped until it applies.
            hold=message.get("passthrough") is False,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        session.inference = inference
        identity = f"{INFERENCE_IDENTITY_PREFIX}{session.session_id}"
        # The room info goes out at once, off the small join: the model joins the room while the
        # client does, and the initial state (the next frame on the socket) is read meanwhile.
        joining = inference.start(self.config.livekit_url, self.token(identity, session.room_name))
        self._spawn(self._inference_joined(session, joining))
        session.state = "joined"
        client_token = self.token(f"client-{session.session_id}", session.room_name)
        await _send(
            session.ws,
            messages.room_info(
                self.config.public_livekit_url, client_token, session.room_name, session.session_id
            ),
        )
        _trace.mark("service.room_info", session=session.session_id)
        # Mobile SDKs put a whole prompt / set_image message in initial_state.
        initial = message.get("initial_state")
        if isinstance(initial, dict) and initial.get("type") == "prompt":
            await self._prompt(session, initial)
        elif isinstance(initial, dict) and initial.get("type") == "set_image":
            await self._set_image(session, initial)

    async def _inference_joined(self, session: Session, joining: asyncio.Task[None]) -> None:
        try:
            await joining
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the media server is down or refused us: the session is lost
            log.warning("session %s: inference could not join: %s", session.session_id, e)
            await _error(session.ws, f"media server unavailable: {e}")
            unavailable = b"media server unavailable"
            await session.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=unavailable)

    def _applied(self, session: Session) -> None:
        """A prompt or image applied: the model may start on the client's frames."""
        if session.inference is not None:
            session.inference.release()

    async def _prompt(self, session: Session, message: dict[str, Any]) -> None:
        prompt = message.get("prompt")
        if isinstance(prompt, str):
            try:
                check_prompt(prompt)
            except BadMessage as e:  # an error, not an ack: the ack would echo the prompt
                await _error(session.ws, str(e))
                return
        if not isinstance(prompt, str) or not prompt.strip():
            error = "prompt must be a non-empty string"
            await _send(session.ws, messages.prompt_ack(str(prompt or ""), error))
            return
        session.prompt = prompt
        self._applied(session)
        await _send(session.ws, messages.prompt_ack(prompt))
        _trace.mark("service.prompt_ack", session=session.session_id)

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
            try:
                check_prompt(prompt)
            except BadMessage as e:
                error = str(e)
        if error is None and isinstance(prompt, str):
            session.prompt = prompt
        if error is None:
            self._applied(session)
        await _send(session.ws, messages.set_image_ack(error))
        _trace.mark("service.set_image_ack", session=session.session_id)

    def _frame(self, session: Session) -> None:
        if session.state == "ended":
            return
        if session.meter.frame():
            if session.state != "generating":
                session.state = "generating"
                session.ticks.put_nowait(messages.generation_started())
            session.ticks.put_nowait(messages.generation_tick(session.meter.billed_seconds))

    async def _send_ticks(self, session: Session) -> None:
        while True:
            message = await session.ticks.get()
            if not session.ws.closed:
                await _send(session.ws, message)

    async def _end(self, session: Session, reason: str, *, announce: bool = False) -> None:
        """Ends a session: ``generation_ended`` while generating (or always, ``announce``),
        then its inference participant leaves and everything it held is let go."""
        if session.state == "ended":
            return
        if session.expiry is not None:
            session.expiry.cancel()
            session.expiry = None
        if (announce or session.state == "generating") and not session.ws.closed:
            await _send(session.ws, messages.generation_ended(session.meter.billed_seconds, reason))
        session.state = "ended"
        inference, session.inference = session.inference, None
        if inference is not None:
            await inference.leave()
        session.transport = None
        while not session.ticks.empty():
            session.ticks.get_nowait()
        log.info(
            "session %s ended: %s, %d frames, %d s billed",
            session.session_id,
            reason,
            session.meter.frames_received,
            session.meter.billed_seconds,
        )

    async def close(self) -> None:
        self.slots.close()
        for task in list(self._tasks):
            task.cancel()
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
    await _send(ws, messages.error(text))


async def _refuse(
    ws: web.WebSocketResponse, text: str, code: int, reason: str
) -> web.WebSocketResponse:
    """Refuses a new session: its ``error`` message, then the close with ``code``."""
    await _error(ws, text)
    await ws.close(code=code, message=reason.encode())
    return ws


def _http_error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def _http_exception(kind: Callable[..., web.HTTPException], text: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": text}), content_type="application/json")


async def serve(config: EmulatorConfig, host: str, port: int) -> tuple[Emulator, web.AppRunner]:
    """Starts the emulator on host:port; returns it and the runner to clean up."""
    # The models' worker server imports for about a second: before the first session, not in it.
    await asyncio.get_running_loop().run_in_executor(None, start_workers)
    emulator = Emulator(config)
    emulator.app.on_shutdown.append(lambda _app: emulator.close())
    runner = web.AppRunner(emulator.app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return emulator, runner
