"""ControlChannel against a real websocket server on 127.0.0.1 that sends each scenario's
messages: acks, errors, close codes, malformed fields, refused handshakes, cancellation."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from warmrtc import errors
from warmrtc._protocol import refusals
from warmrtc._protocol.endpoints import Secret, stream_url
from warmrtc._session.control import ControlChannel

KEY = "sk-test-SECRET-9f8e7d6c5b4a"
ROOM = {
    "type": "livekit_room_info",
    "livekit_url": "ws://127.0.0.1:1",
    "token": "lk-token",
    "room_name": "room-1",
    "session_id": "session-1",
}
Script = Callable[[web.WebSocketResponse], Awaitable[None]]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def expect(ws: web.WebSocketResponse, kind: str) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.receive_json(), 5)
    assert message["type"] == kind, message
    return message


async def joined(ws: web.WebSocketResponse) -> None:
    await expect(ws, "livekit_join")
    await ws.send_json(ROOM)


async def drain(ws: web.WebSocketResponse) -> None:
    """Reads until the client closes (bounded): the server side of a scenario that is over."""
    for _ in range(10_000):
        msg = await ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            return


@asynccontextmanager
async def service(
    script: Script | None = None, status: int | None = None
) -> AsyncIterator[Callable[[], str]]:
    """A websocket service on 127.0.0.1 (port 0) running ``script`` per connection, or
    refusing the handshake with HTTP ``status``. Yields what makes the stream URL (key
    included), as a session hands it to its control channel."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if status is not None:
            return web.Response(status=status, text="refused")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if script is not None:
            await script(ws)
        if not ws.closed:
            await asyncio.wait_for(drain(ws), 20)
        return ws

    app = web.Application()
    app.router.add_get("/v1/stream", handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield functools.partial(
            stream_url, f"ws://127.0.0.1:{port}", "lucy-2.6", Secret(KEY), "warmrtc-test"
        )
    finally:
        await runner.cleanup()


class Recorder:
    """on_event / on_closed as a consumer that trusts the documented payloads would write
    them: it does arithmetic on ``seconds`` and compares ``position``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.closed: list[errors.WarmrtcError] = []
        self.billed = 0

    def on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event["type"] in ("generation_tick", "generation_ended") and "seconds" in event:
            self.billed = int(event["seconds"]) + 0
        if event["type"] == "queue_position":
            assert event["position"] >= 0

    def channel(self) -> ControlChannel:
        return ControlChannel(self.on_event, self.closed.append)


async def closed_soon(ch: ControlChannel) -> None:
    """Waits (2 s at the most) for the service's close to reach the channel."""
    for _ in range(100):
        if ch.closed:
            return
        await asyncio.sleep(0.02)


def ends_of(script: Script) -> list[errors.WarmrtcError]:
    """What the channel reports as its end when the service runs ``script`` and closes."""

    async def main() -> list[errors.WarmrtcError]:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await closed_soon(ch)
            await ch.close()
        return rec.closed

    result: list[errors.WarmrtcError] = run(main())
    return result


# ---- A: requests and their acks -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["set_image", "prompt"])
def test_error_message_fails_the_waiting_request_at_once(kind: str) -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await expect(ws, kind)
        await ws.send_json({"type": "error", "error": "image too large for the model"})

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await ch.join(5)
            start = time.monotonic()
            with pytest.raises(errors.ProtocolError, match="image too large") as caught:
                if kind == "prompt":
                    await ch.set_prompt("a cat", True, 5)
                else:
                    await ch.set_image("aGVsbG8=", None, None, 5)
            assert time.monotonic() - start < 1.0, "it waited for the timeout"
            assert not isinstance(caught.value, errors.ModelError)  # "model" is in the text
            assert {"type": "error", "error": "image too large for the model"} in rec.events
            assert not ch.closed and rec.closed == []
            await ch.close()

    run(main())


@pytest.mark.parametrize("kind", ["set_image", "prompt"])
def test_a_timed_out_request_does_not_take_the_next_ack(kind: str) -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await expect(ws, kind)  # the first request is never answered
        second = await expect(ws, kind)
        if kind == "prompt":
            await ws.send_json({"type": "prompt_ack", "prompt": second["prompt"], "success": True})
        else:
            await ws.send_json({"type": "set_image_ack", "success": True, "error": None})

    async def request(ch: ControlChannel, timeout: float) -> None:
        if kind == "prompt":
            await ch.set_prompt("same text", True, timeout)
        else:
            await ch.set_image(None, None, None, timeout)

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5)
            with pytest.raises(errors.ConnectTimeoutError):
                await request(ch, 0.3)
            await request(ch, 3)  # its ack is its own, not swallowed by the timed-out one
            await ch.close()

    run(main())


def test_acks_leave_no_bookkeeping_behind() -> None:
    count = 50

    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        for _ in range(count):
            message = await expect(ws, "prompt")
            await ws.send_json({"type": "prompt_ack", "prompt": message["prompt"], "success": True})

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5)
            for i in range(count):
                await ch.set_prompt(f"prompt number {i}", True, 5)
            left = {
                name: len(value)
                for name, value in vars(ch).items()
                if hasattr(value, "__len__") and not isinstance(value, str) and len(value)
            }
            assert left == {}, f"per-request state kept after every ack arrived: {left}"
            await ch.close()

    run(main())


def test_prompt_acks_are_matched_by_their_text() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        first = await expect(ws, "prompt")
        second = await expect(ws, "prompt")
        await ws.send_json({"type": "prompt_ack", "prompt": second["prompt"], "success": True})
        await ws.send_json(
            {"type": "prompt_ack", "prompt": first["prompt"], "success": False, "error": "nope"}
        )

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5)
            first = asyncio.ensure_future(ch.set_prompt("first", True, 5))
            await asyncio.sleep(0.05)
            second = asyncio.ensure_future(ch.set_prompt("second", True, 5))
            await second
            with pytest.raises(errors.RejectedError, match="nope"):
                await first
            await ch.close()

    run(main())


# ---- B: errors classified by the protocol's structure -------------------------------------


def test_every_error_says_whether_it_is_retryable() -> None:
    expected = {
        "AuthenticationError": False,
        "ModelError": False,
        "RejectedError": False,
        "SessionClosedError": False,
        "ConcurrencyLimitError": True,
        "ConnectionLostError": True,
        "ConnectTimeoutError": True,
        "ProtocolError": True,
        "PoolTimeoutError": True,
        "PoolCapacityError": True,
    }
    import warmrtc

    for name, retryable in expected.items():
        cls = getattr(warmrtc, name)
        assert issubclass(cls, errors.WarmrtcError)
        assert cls.__dict__.get("retryable") is retryable, name
    found = {c.__name__ for c in errors.WarmrtcError.__subclasses__()}
    assert found <= set(expected), found - set(expected)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "AuthenticationError"),
        (403, "AuthenticationError"),
        (404, "ModelError"),
        (429, "ConcurrencyLimitError"),
        (503, "ConnectionLostError"),
    ],
)
def test_a_refused_handshake_is_classified_by_its_http_status(status: int, expected: str) -> None:
    async def main() -> None:
        async with service(status=status) as url:
            ch = Recorder().channel()
            with pytest.raises(errors.WarmrtcError) as caught:
                await ch.open(url, 5)
            assert type(caught.value).__name__ == expected
            assert str(status) in str(caught.value)
            assert ch.closed
            with pytest.raises(errors.WarmrtcError):
                await ch.join(1)  # after a failed open: a clear error, no hang
            await ch.close()

    run(main())


@pytest.mark.parametrize("with_error_message", [True, False])
def test_close_1013_is_a_concurrency_limit_error(with_error_message: bool) -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await expect(ws, "livekit_join")
        if with_error_message:
            await ws.send_json({"type": "error", "error": "Concurrent session limit reached."})
        await ws.close(code=1013, message=b"Concurrent session limit reached.")

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            with pytest.raises(errors.WarmrtcError) as caught:
                await ch.join(5)
            assert type(caught.value).__name__ == "ConcurrencyLimitError"
            assert str(caught.value) == "Concurrent session limit reached."
            assert caught.value.retryable is True
            assert [type(e).__name__ for e in rec.closed] == ["ConcurrencyLimitError"]
            await ch.close()

    run(main())


@pytest.mark.parametrize(
    ("code", "text", "expected"),
    [
        (4001, "Invalid API key", errors.AuthenticationError),
        (1008, "Invalid API key", errors.AuthenticationError),
        (4004, "Unknown model: 'lucy-9000'", errors.ModelError),
        (1000, "model weights failed to load", errors.ProtocolError),
        (1011, None, errors.ConnectionLostError),
    ],
)
def test_a_closed_channel_is_classified_by_its_close_code(
    code: int, text: str | None, expected: type[errors.WarmrtcError]
) -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        if text is not None:
            await ws.send_json({"type": "error", "error": text})
        await ws.close(code=code)

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await closed_soon(ch)  # the service closes right away
            assert len(rec.closed) == 1 and type(rec.closed[0]) is expected, rec.closed
            if text is not None:
                assert str(rec.closed[0]) == text  # the service's words, kept whole
            with pytest.raises(expected):
                await ch.join(1)
            await ch.close()

    run(main())


def test_an_error_that_mentions_the_model_is_not_a_model_error() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await expect(ws, "livekit_join")
        await ws.send_json({"type": "error", "error": "model overloaded, try again"})

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            with pytest.raises(errors.WarmrtcError) as caught:
                await ch.join(5)
            assert type(caught.value) is errors.ProtocolError
            assert caught.value.retryable is True
            assert str(caught.value) == "model overloaded, try again"
            await ch.close()

    run(main())


# ---- C: malformed fields do not end the channel -------------------------------------------


def test_malformed_events_are_ignored_and_the_channel_goes_on() -> None:
    bad = [
        {"type": "generation_tick", "seconds": "abc"},
        {"type": "generation_tick", "seconds": None},
        {"type": "generation_tick"},
        {"type": "generation_tick", "seconds": -3},
        {"type": "generation_tick", "seconds": 1.5},
        {"type": "generation_tick", "seconds": True},
        {"type": "generation_ended", "seconds": "x", "reason": "stopped"},
        {"type": "generation_ended", "seconds": 3, "reason": 7},
        {"type": "queue_position", "queue_size": 3},
        {"type": "queue_position", "position": "first"},
        {"type": "something_new", "value": 1},
        {"no_type": True},
        [1, 2, 3],
        "just a string",
        None,
    ]
    good = [
        {"type": "generation_started"},
        {"type": "generation_tick", "seconds": 7},
        {"type": "generation_tick", "seconds": 8.0},
        {"type": "queue_position", "position": 2, "queue_size": 5},
        {"type": "generation_ended", "seconds": 9, "reason": "client_muted"},
        {"type": "generation_ended"},
    ]

    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        for message in bad[:4]:
            await ws.send_json(message)
        await ws.send_str("{not json")
        for message in [good[0], good[1], *bad[4:], *good[2:]]:
            await ws.send_json(message)
        prompt = await expect(ws, "prompt")
        await ws.send_json({"type": "prompt_ack", "prompt": prompt["prompt"], "success": True})

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await ch.join(5)
            await ch.set_prompt("still alive", True, 5)  # the reader survived every one
            assert not ch.closed and rec.closed == []
            assert rec.events == [
                {"type": "generation_started"},
                {"type": "generation_tick", "seconds": 7},
                {"type": "generation_tick", "seconds": 8},
                {"type": "queue_position", "position": 2, "queue_size": 5},
                {"type": "generation_ended", "seconds": 9, "reason": "client_muted"},
                {"type": "generation_ended"},
            ]
            assert type(rec.events[2]["seconds"]) is int
            await ch.close()

    run(main())


@pytest.mark.parametrize("field", ["token", "livekit_url", "room_name", "session_id"])
def test_room_info_with_a_bad_field_fails_the_join_and_not_the_channel(field: str) -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await expect(ws, "livekit_join")
        broken = dict(ROOM)
        if field == "token":
            del broken["token"]
        else:
            broken[field] = 42
        await ws.send_json(broken)
        await joined(ws)  # a second join gets a good answer

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            with pytest.raises(errors.ProtocolError, match=field):
                await ch.join(5)
            assert not ch.closed and rec.closed == []
            info = await ch.join(5)
            assert info.session_id == "session-1"
            await ch.close()

    run(main())


def test_a_callback_that_raises_does_not_end_the_reader() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await ws.send_json({"type": "generation_started"})
        prompt = await expect(ws, "prompt")
        await ws.send_json({"type": "prompt_ack", "prompt": prompt["prompt"], "success": True})

    def on_event(event: dict[str, Any]) -> None:
        raise RuntimeError("a bug in the app's callback")

    async def main() -> None:
        closed: list[errors.WarmrtcError] = []
        async with service(script) as url:
            ch = ControlChannel(on_event, closed.append)
            await ch.open(url, 5)
            await ch.join(5)
            await ch.set_prompt("still alive", True, 5)
            assert not ch.closed and closed == []
            await ch.close()

    run(main())


# ---- D: the API key is in nothing an exception holds --------------------------------------


def _reachable_text(root: BaseException) -> list[tuple[str, str]]:
    """(path, repr) of everything reachable from ``root``: context, cause, args, attributes,
    and the locals of the traceback's frames in signaling.py."""
    texts: list[tuple[str, str]] = []
    seen: set[int] = set()
    stack: list[tuple[str, object]] = [("error", root)]
    for _ in range(5_000):
        if not stack:
            break
        path, obj = stack.pop()
        if obj is None or id(obj) in seen:
            continue
        seen.add(id(obj))
        texts.append((path, repr(obj)))
        if isinstance(obj, BaseException):
            texts.append((path, str(obj)))
            stack += [(f"{path}.__context__", obj.__context__)]
            stack += [(f"{path}.__cause__", obj.__cause__)]
            stack += [(f"{path}.args", a) for a in obj.args]
            stack += [(f"{path}.{k}", v) for k, v in vars(obj).items()]
            tb = obj.__traceback__
            while tb is not None:
                frame = tb.tb_frame
                if frame.f_code.co_filename.endswith(
                    ("warmrtc/signaling.py", "warmrtc\\signaling.py")
                ):
                    where = f"{path}.<{frame.f_code.co_name}>"
                    stack += [(f"{where}.{k}", v) for k, v in frame.f_locals.items()]
                tb = tb.tb_next
        elif isinstance(obj, list | tuple | set):
            stack += [(f"{path}[]", v) for v in obj]
        elif isinstance(obj, dict):
            stack += [(f"{path}[{k!r}]", v) for k, v in obj.items()]
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack += [(f"{path}.{k}", v) for k, v in vars(obj).items()]
    return texts


def _leaks(error: BaseException) -> list[str]:
    return [path for path, text in _reachable_text(error) if KEY in text]


@pytest.mark.parametrize("case", ["http-401", "http-404", "refused"])
def test_a_failed_open_holds_no_api_key(case: str) -> None:
    async def main() -> None:
        if case == "refused":
            async with service() as url:
                pass  # the port is closed now
        else:
            status = int(case.split("-")[1])
            async with service(status=status) as live:
                url = live
                ch = Recorder().channel()
                with pytest.raises(errors.WarmrtcError) as caught:
                    await ch.open(url, 5)
                await ch.close()
                assert _leaks(caught.value) == []
                return
        ch = Recorder().channel()
        with pytest.raises(errors.WarmrtcError) as caught:
            await ch.open(url, 5)
        await ch.close()
        assert _leaks(caught.value) == []

    run(main())


# ---- E: cancellation and close are not losses; every call is bounded -----------------------


def test_a_cancelled_reader_is_not_reported_as_a_loss() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await expect(ws, "prompt")  # never answered

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await ch.join(5)
            pending = asyncio.ensure_future(ch.set_prompt("waiting", True, 10))
            await asyncio.sleep(0.1)
            # What asyncio.run() does to the tasks left when its main coroutine ends.
            readers = [
                t for t in asyncio.all_tasks() if "ControlChannel._read" in repr(t.get_coro())
            ]
            assert len(readers) == 1
            readers[0].cancel()
            await asyncio.wait(readers, timeout=2)
            assert rec.closed == [], "a cancelled reader was reported as a lost connection"
            assert ch.closed
            with pytest.raises(errors.ConnectionLostError):
                await asyncio.wait_for(pending, 2)  # the waiting request ends too
            await ch.close()
            assert rec.closed == []

    run(main())


def test_close_is_not_a_loss_and_every_call_after_it_fails_fast() -> None:
    async def main() -> None:
        rec = Recorder()
        async with service(joined) as url:
            ch = rec.channel()
            with pytest.raises(RuntimeError, match="open"):
                await ch.join(1)  # before open: a clear error
            await ch.open(url, 5)
            await ch.join(5)
            await ch.close()
            await ch.close()  # idempotent
            assert ch.closed and rec.closed == []
            start = time.monotonic()
            with pytest.raises(errors.ConnectionLostError):
                await ch.join(10)
            with pytest.raises(errors.ConnectionLostError):
                await ch.set_prompt("x", True, 10)
            with pytest.raises(errors.ConnectionLostError):
                await ch.set_image(None, None, None, 10)
            assert time.monotonic() - start < 1.0
            with pytest.raises(RuntimeError):
                await ch.open(url, 1)

    run(main())


def test_close_is_bounded_when_the_service_does_not_answer() -> None:
    release = asyncio.Event()

    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await asyncio.wait_for(release.wait(), 20)  # reads nothing: no close reply

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5)
            start = time.monotonic()
            await ch.close(timeout=0.5)
            assert time.monotonic() - start < 2.0
            release.set()

    run(main())


def test_a_lost_connection_is_reported_once() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await joined(ws)
        await ws.close(code=1011, message=b"internal error")

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            await ch.join(5)
            await closed_soon(ch)
            await ch.close()
            assert len(rec.closed) == 1
            assert isinstance(rec.closed[0], errors.ConnectionLostError)
            assert rec.closed[0].retryable is True
            assert "1011" in str(rec.closed[0])

    run(main())


def test_generation_ended_then_a_normal_close_is_the_service_ending_the_session() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "generation_ended", "seconds": 3, "reason": "timeout"})
        await ws.close(code=1000, message=b"timeout")

    ends = ends_of(script)
    assert [type(e) for e in ends] == [errors.SessionEndedError], ends
    ended = ends[0]
    assert isinstance(ended, errors.SessionEndedError) and ended.reason == "timeout"
    assert not ended.retryable and isinstance(ended, errors.SessionClosedError)


def test_a_close_without_generation_ended_is_still_a_loss() -> None:
    assert type(refusals.error_for_close(1000, "", None)) is errors.ConnectionLostError
    assert type(refusals.error_for_close(1006, "", None, "timeout")) is errors.ConnectionLostError
    assert type(refusals.error_for_close(1013, "", None, "timeout")) is errors.ConcurrencyLimitError


def test_an_earlier_error_does_not_change_how_a_later_end_is_read() -> None:
    """A refused prompt's ``error``, then later the service ends the session on purpose: that
    end is the service's (SessionEndedError, no reconnect into a new billed session), not a
    protocol error."""

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "error", "error": "prompt refused"})
        await ws.send_json({"type": "generation_tick", "seconds": 1})
        await ws.send_json({"type": "generation_ended", "seconds": 3, "reason": "timeout"})
        await ws.close(code=1000, message=b"timeout")

    ends = ends_of(script)
    assert [type(e) for e in ends] == [errors.SessionEndedError], ends


def test_an_error_right_before_the_close_still_says_what_it_was() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "generation_tick", "seconds": 1})
        await ws.send_json({"type": "error", "error": "inference failed"})
        await ws.close(code=1000)

    ends = ends_of(script)
    assert [type(e) for e in ends] == [errors.ProtocolError], ends
    assert "inference failed" in str(ends[0])


def test_an_error_then_the_end_is_a_failure_worth_a_new_session() -> None:
    """The model failed: the service says so, ends generation and closes. That end is the
    error's (retryable), not an end on purpose."""

    async def script(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "generation_tick", "seconds": 1})
        await ws.send_json({"type": "error", "error": "inference failed"})
        await ws.send_json({"type": "generation_ended", "seconds": 1, "reason": "error"})
        await ws.close(code=1000, message=b"error")

    ends = ends_of(script)
    assert [type(e) for e in ends] == [errors.ProtocolError], ends
    assert ends[0].retryable


def test_opening_times_one_round_trip_to_the_service() -> None:
    async def main() -> None:
        rec = Recorder()
        async with service(joined) as url:
            ch = rec.channel()
            assert ch.rtt_s is None
            await ch.open(url, 5)
            assert ch.rtt_s is not None and 0 < ch.rtt_s < 1.0
            await ch.close()

    run(main())
