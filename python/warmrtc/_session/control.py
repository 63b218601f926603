"""The control channel: the service's websocket, JSON messages and their acknowledgements.

What the messages are and mean is the protocol's (:mod:`warmrtc._protocol.messages`, with the
close codes in :mod:`warmrtc._protocol.refusals`); this module keeps one channel's state: the
socket, the requests waiting for their acks, and how the channel ended. The service drops the
client's frames until the initial state applies, so the client joins the room and publishes
without waiting for its ack (DecartAI/sdk #166).

Liveness is the channel's own (:mod:`.heartbeat`): its owner tells it whether the network is
known to be dark, and asks for a :meth:`~ControlChannel.probe` once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from .._protocol import messages
from .._protocol.messages import BadField, kind_of, text_field
from .._protocol.refusals import error_for_close, error_for_handshake
from ..errors import (
    ConnectionLostError,
    ConnectTimeoutError,
    ProtocolError,
    RejectedError,
    WarmrtcError,
)
from .heartbeat import DEFAULT_HEARTBEAT, Heartbeat, cap_retransmissions, keep_alive

log = logging.getLogger("warmrtc")

# An `error` message is usually followed at once by the close that says what it was (1013: the
# concurrency limit, ...). A pending join waits this long for that close before it fails with
# the bare message.
ERROR_CLOSE_GRACE = 0.5
CLOSE_TIMEOUT = 5.0  # close() gives the closing handshake and the reader this long at most
DROP_TIMEOUT = 0.1  # ... and this long to a channel that went silent (nobody answers it)
# Opening: a connection not made in this long (no answer to the SYN, or a connect and handshake
# that slow) is tried again afresh, with twice the time each try, within the open's own
# timeout. The kernel's own SYN retries back off (1, 2, 4, 8 s...): after a dark spell its next
# one could be seconds after the network came back.
CONNECT_RETRY = 2.0
CONNECT_TRIES = 6  # 2 + 4 + ... + 64 s: more than any open's timeout


@dataclass(frozen=True)
class RoomInfo:
    livekit_url: str
    token: str
    room_name: str
    session_id: str

    def __repr__(self) -> str:  # the token is a credential
        return f"RoomInfo(room_name={self.room_name!r}, session_id={self.session_id!r})"


@dataclass(eq=False)
class _Request:
    """A prompt or set_image in flight. Lives exactly as long as its caller waits for it."""

    ack: str  # "prompt_ack" or "set_image_ack"
    prompt: str | None  # what a prompt_ack must name
    future: asyncio.Future[None]


@dataclass(frozen=True)
class InitialState:
    """A prompt or set_image message and the request its ack answers (make one per send)."""

    message: dict[str, Any]
    request: _Request


def prompt_request(prompt: str, enhance: bool) -> InitialState:
    request = _Request("prompt_ack", prompt, asyncio.get_running_loop().create_future())
    return InitialState(messages.prompt(prompt, enhance), request)


def image_request(
    image_base64: str | None, prompt: str | None, enhance: bool | None
) -> InitialState:
    request = _Request("set_image_ack", None, asyncio.get_running_loop().create_future())
    return InitialState(messages.set_image(image_base64, prompt, enhance), request)


class ControlChannel:
    """One websocket to the service. Requests wait for their acks; events go to callbacks.

    Every public coroutine is bounded in time (its ``timeout``, or :data:`CLOSE_TIMEOUT` for
    :meth:`close`). After :meth:`close`, or once the channel ended, requests raise at once: the
    error that ended the channel, or ``ConnectionLostError`` for a channel closed here.

    ``on_event(message)`` receives validated events as dicts, with ``"type"`` and only the
    fields below (a message with a bad field is logged at WARNING and not passed on):

    - ``{"type": "generation_started"}``
    - ``{"type": "generation_tick", "seconds": int}`` (``seconds >= 0``, billed so far)
    - ``{"type": "generation_ended"[, "seconds": int][, "reason": str]}``
    - ``{"type": "queue_position", "position": int[, "queue_size": int]}``
    - ``{"type": "error", "error": str}``: the service reported an error; pending requests
      have failed with it.

    ``on_closed(error)`` is the loss signal: it is called at most once, and only when the
    service or the network ended the channel (the service closed it, refused the key or the
    session, or the connection dropped). ``error.retryable`` says whether reconnecting can
    help (``AuthenticationError``: no; ``ConcurrencyLimitError``: later; a lost connection:
    yes). It is *not* called when the channel ended because :meth:`close` was called or
    because the reader task was cancelled (e.g. ``asyncio.run()`` ending): neither is a reason
    to reconnect. Callbacks run on the event loop; an exception they raise is logged.
    """

    def __init__(
        self,
        on_event: Callable[[dict[str, Any]], None],
        on_closed: Callable[[WarmrtcError], None],
        *,
        network_dark: Callable[[], bool] = lambda: False,
        heartbeat: Heartbeat = DEFAULT_HEARTBEAT,
    ) -> None:
        self._on_event = on_event
        self._on_closed = on_closed
        self._network_dark = network_dark
        self._heartbeat = heartbeat
        self._keepalive: asyncio.Task[None] | None = None
        self._probe = asyncio.Event()  # probe(): ping now, and judge from now
        self._heard_at = 0.0  # loop time of the last frame of any kind from the service
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._room_info: asyncio.Future[RoomInfo] | None = None
        self._join_grace: asyncio.TimerHandle | None = None
        self._requests: list[_Request] = []  # in flight, oldest first
        self._initial: _Request | None = None  # the join's initial state, until its ack is taken
        self._closed_error: WarmrtcError | None = None  # set once, when the channel ends
        # The text of an `error` message that opens the session's end: the protocol's errors
        # carry no code, and one followed by nothing but generation_ended and the close says
        # what that end was (the model failed: worth a new session). Any other message after
        # it means the session went on, and the error says nothing about how it ends.
        self._service_error: str | None = None
        self._ended: str | None = None  # reason of the last `generation_ended` (or "ended")
        self._close_reason = ""
        self._closing = False
        self._dropped = False  # ended by silence: no closing handshake
        # One round trip to the service, as its websocket upgrade took (None until open).
        self.rtt_s: float | None = None

    @property
    def closed(self) -> bool:
        return self._closed_error is not None or self._closing

    async def open(self, url: Callable[[], str], timeout: float) -> None:
        """Opens the websocket at ``url()``. Raises AuthenticationError/ModelError/... for a
        refused handshake, ConnectTimeoutError or ConnectionLostError. The URL holds the key:
        it is made only inside the call that connects, so that no variable of a frame the
        raised exception carries (and no message of it) holds the key."""
        if self._http is not None or self.closed:
            raise RuntimeError("open() can be called once per ControlChannel")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        failure: WarmrtcError | None = None
        http: aiohttp.ClientSession | None = None
        try:
            connect_within = CONNECT_RETRY
            for _ in range(CONNECT_TRIES):
                left = deadline - loop.time()
                if left <= 0:
                    break
                http = self._http = aiohttp.ClientSession(
                    trace_configs=[self._upgrade_timing()],
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_within),
                )
                try:
                    # The URL holds the key: made inside this call, it is in no variable of
                    # ours. Pings are the channel's own (see .heartbeat): no autoping.
                    self._ws = await asyncio.wait_for(
                        http.ws_connect(url(), heartbeat=None, autoping=False), left
                    )
                    break
                except aiohttp.ServerTimeoutError:
                    # No connection in time (no answer to the SYN, or a connect and handshake
                    # slower than that): again, afresh, with twice the time.
                    await http.close()
                    connect_within *= 2
            else:
                raise TimeoutError
            if self._ws is None:
                raise TimeoutError
        except TimeoutError:
            failure = ConnectTimeoutError(f"the control channel did not open in {timeout:g} s")
        except aiohttp.WSServerHandshakeError as e:
            failure = error_for_handshake(e.status, _redact(e.message))
        except (aiohttp.ClientError, OSError, ValueError) as e:
            detail = f"{type(e).__name__}: {_redact(e)}"
            failure = ConnectionLostError(f"cannot open the control channel: {detail}")
        except BaseException:  # cancelled: the connection is released all the same
            if http is not None:
                await http.close()
            raise
        if failure is not None:
            # Raised here, outside the `except` blocks, so that it has no __context__: the
            # aiohttp error quotes the whole URL, key included.
            self._closed_error = failure
            if http is not None:
                await http.close()
            raise failure
        assert self._ws is not None
        cap_retransmissions(self._ws)
        self._heard_at = loop.time()
        self._reader = loop.create_task(self._read())
        self._keepalive = loop.create_task(self._keep_alive(), name="warmrtc-control-heartbeat")

    def probe(self) -> None:
        """The network just came back (the media room resumed): ping the service now, and
        give it ``answer_within`` from now to answer. Idempotent; no-op on a closed channel."""
        self._probe.set()

    async def _keep_alive(self) -> None:
        """Pings after silence; ends the channel as lost when the service stays silent while
        the network is not known to be dark (see :mod:`.heartbeat`). Ends with the channel."""
        why = await keep_alive(
            self._heartbeat,
            heard_at=lambda: self._heard_at,
            probed=self._probe,
            network_dark=self._network_dark,
            ping=self._ping,
            closed=lambda: self.closed,
        )
        if why is not None:
            self._lost_to_silence(why)

    async def _ping(self) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return
        try:
            # Bounded: a send buffer full in the dark would hold the ping, and the verdict.
            async with asyncio.timeout(self._heartbeat.probe_every):
                await ws.ping()
        except (TimeoutError, ConnectionError, aiohttp.ClientError) as e:  # the reader sees the end
            log.debug("control channel: ping not sent (%s)", type(e).__name__)

    def _lost_to_silence(self, why: str) -> None:
        log.warning("control channel: %s; it is lost", why)
        # No closing handshake over a silent socket (close() would wait for its answer): the
        # reader stops here and close() drops the connection.
        self._dropped = True
        if self._reader is not None:
            self._reader.cancel()
        self._finish(ConnectionLostError(f"the control channel went silent: {why}"), notify=True)

    def _upgrade_timing(self) -> aiohttp.TraceConfig:
        """Times the websocket's HTTP upgrade: from its request sent to its answer is one round
        trip to the service (and the little the service takes to accept), whatever came before
        it (name lookup, TCP, TLS)."""
        sent: list[float] = []
        timing = aiohttp.TraceConfig()

        async def headers_sent(*_args: Any) -> None:
            sent.append(time.monotonic())

        async def answered(*_args: Any) -> None:
            if sent:
                self.rtt_s = time.monotonic() - sent[-1]

        timing.on_request_headers_sent.append(headers_sent)
        timing.on_request_end.append(answered)
        return timing

    async def join(
        self, timeout: float, *, frame_timing: bool = False, initial: InitialState | None = None
    ) -> RoomInfo:
        """Asks for the LiveKit room; returns its credentials. With ``frame_timing`` the join
        announces ``client_capabilities: {frame_timing: true}``, as Decart's JS SDK does with
        ``debugQuality``: the service then echoes each input frame's capture stamp on the
        frame it generates from it.

        ``initial`` (a prompt or image request) is written right after the join, without
        waiting for the room; :meth:`initial_state_applied` waits for its ack. Without it the
        join says ``passthrough``: the model starts on the client's frames as they are."""
        self._check_usable()
        if self._room_info is not None:
            raise RuntimeError("join() is already waiting for the room")
        future: asyncio.Future[RoomInfo] = asyncio.get_running_loop().create_future()
        self._room_info = future
        try:
            async with asyncio.timeout(timeout):
                await self._send(
                    messages.join(frame_timing=frame_timing, passthrough=initial is None)
                )
                if initial is not None:
                    # Armed before it is written: its ack may come before the room info.
                    self._initial = initial.request
                    self._requests.append(initial.request)
                    initial.request.future.add_done_callback(_retrieve)
                    await self._send(initial.message)
                return await future
        except TimeoutError:
            raise ConnectTimeoutError(
                f"no livekit_room_info from the service within {timeout:g} s"
            ) from None
        finally:
            self._room_info = None
            self._cancel_join_grace()

    async def initial_state_applied(self, timeout: float) -> None:
        """Waits for the ack of the initial state :meth:`join` sent (at once without one).
        Raises RejectedError/ProtocolError as :meth:`set_prompt` does, ConnectTimeoutError."""
        request = self._initial
        if request is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(request.future), timeout)
        except TimeoutError:
            raise ConnectTimeoutError(
                f"no {request.ack} for the initial state within {timeout:g} s"
            ) from None
        finally:
            self._initial = None
            if request in self._requests:
                self._requests.remove(request)

    async def set_prompt(self, prompt: str, enhance: bool, timeout: float) -> None:
        initial = prompt_request(prompt, enhance)
        await self._request(initial.request, initial.message, timeout)

    async def set_image(
        self, image_base64: str | None, prompt: str | None, enhance: bool | None, timeout: float
    ) -> None:
        """Sends set_image; ``image_base64=None`` with no prompt is the passthrough form."""
        initial = image_request(image_base64, prompt, enhance)
        await self._request(initial.request, initial.message, timeout)

    async def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Closes the channel; idempotent, any state, at most about ``timeout`` seconds.
        Does not call ``on_closed``; pending requests fail with ConnectionLostError."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            keepalive = self._keepalive
            if keepalive is not None and not keepalive.done():
                keepalive.cancel()
                await asyncio.wait({keepalive}, timeout=1.0)
            if self._ws is not None and not self._ws.closed:
                # In this task, not one of wait_for's: a shutdown runs to its end even when
                # the loop is ending, and the closing handshake with it, which releases the
                # socket (a handshake cut short leaves aiohttp's connection unclosed). A socket
                # gone silent gets no time for it: its close only releases the connection.
                try:
                    async with asyncio.timeout(DROP_TIMEOUT if self._dropped else timeout):
                        await self._ws.close()
                except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
                    log.debug("control channel: closing handshake cut short (%s)", type(e).__name__)
            reader = self._reader
            if reader is not None and not reader.done():
                await asyncio.wait({reader}, timeout=max(0.0, deadline - loop.time()))
                if not reader.done():
                    reader.cancel()
                    await asyncio.wait({reader}, timeout=1.0)
        finally:
            # Even when cancelled above: closing the connector is what releases the socket.
            if self._http is not None:
                await self._http.close()
            if self._closed_error is None:
                self._finish(ConnectionLostError("the control channel was closed"), notify=False)

    # ---- requests -----------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed_error is not None:
            raise _copy(self._closed_error)
        if self._closing:
            raise ConnectionLostError("the control channel was closed")
        if self._ws is None:
            raise RuntimeError("the control channel is not open: call open() first")

    async def _request(self, request: _Request, message: dict[str, Any], timeout: float) -> None:
        self._check_usable()
        self._requests.append(request)
        try:
            await asyncio.wait_for(self._send_then_wait(message, request.future), timeout)
        except TimeoutError:
            raise ConnectTimeoutError(
                f"no {request.ack} from the service within {timeout:g} s"
            ) from None
        finally:
            # Timed out, cancelled or answered: it takes no later ack, and nothing of it stays.
            self._requests.remove(request)

    async def _send_then_wait(self, message: dict[str, Any], future: asyncio.Future[Any]) -> Any:
        await self._send(message)
        return await future

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        try:
            await self._ws.send_str(json.dumps(message))
            return
        except (ConnectionError, aiohttp.ClientError) as e:
            detail = f"{type(e).__name__}: {e}"
        # The socket is going away; its close (if it comes now) says why, e.g. a refused key.
        if self._reader is not None and not self._reader.done():
            await asyncio.wait({self._reader}, timeout=ERROR_CLOSE_GRACE)
        if self._closed_error is not None:
            raise _copy(self._closed_error)
        raise ConnectionLostError(f"the control channel is closed: {detail}")

    # ---- reading ------------------------------------------------------------------------

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        lost: WarmrtcError | None = None
        try:
            while True:  # ends with the socket; _keep_alive ends a silent one
                msg = await ws.receive()
                self._heard_at = asyncio.get_running_loop().time()
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type == aiohttp.WSMsgType.PING:
                    with contextlib.suppress(ConnectionError, aiohttp.ClientError):
                        await ws.pong(msg.data)
                elif msg.type == aiohttp.WSMsgType.PONG:
                    pass  # heard: that is all a pong says
                elif msg.type == aiohttp.WSMsgType.CLOSE:
                    self._close_reason = str(msg.extra or "")
                    break
                elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                    break
                elif msg.type == aiohttp.WSMsgType.ERROR:
                    lost = ConnectionLostError(f"the control channel failed: {ws.exception()}")
                    break
                else:
                    log.debug("control channel: %s message ignored", msg.type.name)
        except asyncio.CancelledError:
            # Not a loss: whoever cancelled us is shutting down, not asking for a reconnect.
            self._finish(
                ConnectionLostError("the control channel was closed (its reader was cancelled)"),
                notify=False,
            )
            raise
        if self._closing:
            self._finish(ConnectionLostError("the control channel was closed"), notify=False)
        elif lost is not None:
            self._finish(lost, notify=True)
        else:
            self._finish(
                error_for_close(
                    ws.close_code, self._close_reason, self._service_error, self._ended
                ),
                notify=True,
            )

    def _on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            log.warning("control channel: the service sent malformed JSON; ignored")
            return
        if not isinstance(message, dict):
            log.debug("control channel: a JSON %s is no message; ignored", type(message).__name__)
            return
        kind = message.get("type")
        if kind not in ("error", "generation_ended"):
            self._service_error = None
        try:
            if kind == "livekit_room_info":
                self._room_info_received(message)
            elif kind in ("prompt_ack", "set_image_ack"):
                self._ack_received(kind, message)
            elif kind == "error":
                self._error_received(message)
            elif kind in messages.EVENT_TYPES:
                event = messages.validated_event(message)
                if kind == "generation_ended":
                    self._ended = event.get("reason", "ended")
                self._emit(event)
            else:
                log.debug("control channel: message type %r ignored", kind)
        except BadField as e:
            log.warning("control channel: %s; ignored", e)

    def _room_info_received(self, message: dict[str, Any]) -> None:
        future = self._room_info
        if future is None or future.done():
            log.debug("control channel: livekit_room_info with no join waiting; ignored")
            return
        try:
            info = RoomInfo(
                livekit_url=text_field(message, "livekit_url"),
                token=text_field(message, "token"),
                room_name=text_field(message, "room_name"),
                session_id=text_field(message, "session_id"),
            )
        except BadField as e:
            future.set_exception(ProtocolError(str(e)))
            return
        future.set_result(info)

    def _ack_received(self, kind: str, message: dict[str, Any]) -> None:
        prompt: str | None = None
        if kind == "prompt_ack":
            prompt = message.get("prompt")
            if not isinstance(prompt, str):
                raise BadField(f"prompt_ack without a string 'prompt' ({kind_of(prompt)})")
        request = next(
            (
                r
                for r in self._requests
                if r.ack == kind and not r.future.done() and (prompt is None or r.prompt == prompt)
            ),
            None,
        )
        if request is None:
            log.debug("control channel: %s for no waiting request; ignored", kind)
            return
        success, error = message.get("success"), message.get("error")
        if not isinstance(success, bool):
            request.future.set_exception(
                ProtocolError(f"{kind} without a boolean 'success' ({kind_of(success)})")
            )
        elif success:
            request.future.set_result(None)
        else:
            text = error if isinstance(error, str) and error else "rejected by the service"
            request.future.set_exception(RejectedError(text))

    def _error_received(self, message: dict[str, Any]) -> None:
        text = message.get("error")
        if not isinstance(text, str) or not text:
            log.warning("control channel: an error message without text (%s)", kind_of(text))
            text = "the service reported an error without a message"
        log.warning("the service reported an error: %s", text)
        self._service_error = text
        # As Decart's SDKs do: an error answers every request in flight, at once.
        for request in self._requests:
            if not request.future.done():
                request.future.set_exception(ProtocolError(text))
        future = self._room_info
        if future is not None and not future.done() and self._join_grace is None:
            self._join_grace = asyncio.get_running_loop().call_later(
                ERROR_CLOSE_GRACE, _fail_unless_done, future, ProtocolError(text)
            )
        self._emit({"type": "error", "error": text})

    def _cancel_join_grace(self) -> None:
        if self._join_grace is not None:
            self._join_grace.cancel()
            self._join_grace = None

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("on_event raised; the channel goes on")

    def _finish(self, error: WarmrtcError, notify: bool) -> None:
        """The one place the channel ends: fails what waits and tells of a loss."""
        if self._closed_error is not None:
            return
        self._closed_error = error
        self._cancel_join_grace()
        waiting: list[asyncio.Future[Any]] = [r.future for r in self._requests]
        if self._room_info is not None:
            waiting.append(self._room_info)
        for future in waiting:
            if not future.done():
                future.set_exception(_copy(error))
                future.exception()  # retrieved: a request nobody awaits any more stays quiet
        if notify:
            try:
                self._on_closed(error)
            except Exception:
                log.exception("on_closed raised")


def _retrieve(future: asyncio.Future[Any]) -> None:
    # The initial state's ack may fail before anyone waits for it (the join failed first).
    if not future.cancelled():
        future.exception()


def _fail_unless_done(future: asyncio.Future[Any], error: WarmrtcError) -> None:
    if not future.done():
        future.set_exception(error)


def _copy(error: WarmrtcError) -> WarmrtcError:
    """A fresh exception like ``error``: one instance raised in many places would pile up
    tracebacks (and keep every frame they name alive)."""
    return type(error)(*error.args)


def _redact(error: object) -> str:
    # aiohttp's handshake errors quote the whole URL, and the protocol puts the key in it.
    return re.sub(r"api_key=[^&'\"\s]*", "api_key=***", str(error))


__all__ = [
    "CLOSE_TIMEOUT",
    "ControlChannel",
    "InitialState",
    "RoomInfo",
    "image_request",
    "prompt_request",
]
