"""The API key is in no local variable of any frame an error of a failed connect carries: error
trackers that capture frame locals (Sentry, Rollbar...) would send it. Every way the control
channel can fail is tried against a local websocket server: refused handshakes, a refusing
close, a handshake that never answers, nothing listening."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import TracebackType

import pytest
from aiohttp import web

import warmrtc

KEY = "sk-never-in-a-frame-" + "7f3a9c"


def frames_of(error: BaseException) -> Iterator[tuple[str, dict[str, object]]]:
    """Every frame of ``error``'s traceback and of the errors it was raised from or during."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        tb: TracebackType | None = e.__traceback__
        while tb is not None:
            yield tb.tb_frame.f_code.co_qualname, dict(tb.tb_frame.f_locals)
            tb = tb.tb_next
        todo += [e.__cause__, e.__context__]


def leaks(error: BaseException) -> list[str]:
    found = []
    for where, names in frames_of(error):
        for name, value in names.items():
            shown = value if isinstance(value, str) else repr(value)
            if KEY in shown:
                found.append(f"{where}: {name}")
    return found


@asynccontextmanager
async def server(kind: str) -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if kind == "refused":
            return web.Response(status=401, text="Invalid API key")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "error", "error": "Invalid API key"})
        await ws.close(code=4001, message=b"invalid api key")
        return ws

    if kind == "silent":  # accepts the connection, never answers the handshake
        listener = socket.create_server(("127.0.0.1", 0))
        try:
            yield f"ws://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            listener.close()
        return
    if kind == "nothing":
        probe = socket.create_server(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        yield f"ws://127.0.0.1:{port}"
        return
    app = web.Application()
    app.router.add_get("/v1/stream", handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["refused", "closed", "silent", "nothing"])
def test_no_frame_of_a_failed_connect_holds_the_key(kind: str) -> None:
    async def run() -> BaseException:
        source = warmrtc.VideoSource(64, 48)
        try:
            async with server(kind) as url:
                try:
                    await warmrtc.connect(source, api_key=KEY, base_url=url, timeout=1)
                except warmrtc.WarmrtcError as e:
                    return e
                raise AssertionError("connected to a server that refuses")
        finally:
            source.close()

    error = asyncio.run(asyncio.wait_for(run(), 30))
    assert isinstance(error, warmrtc.WarmrtcError)
    assert KEY not in f"{error} {error!r}"
    assert not leaks(error), leaks(error)
