"""warmrtc.watch(): arguments checked at the call, and the service's refusals of a watch token
turned into typed errors (a local HTTP stub answers POST /watch-stream/{room}; no LiveKit)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from aiohttp import web

import warmrtc
from warmrtc._protocol.endpoints import http_base


@pytest.mark.parametrize(
    ("room", "options", "error", "match"),
    [
        ("", {}, ValueError, "room must be"),
        (3, {}, ValueError, "room must be"),
        ("r", {"api_key": ""}, ValueError, "no API key"),
        ("r", {"output_format": "bogus"}, ValueError, "output_format"),
        ("r", {"on_frame": "print"}, TypeError, "on_frame"),
        ("r", {"timeout": 0}, ValueError, "timeout"),
        ("r", {"base_url": "ftp://x"}, ValueError, "base_url"),
    ],
)
def test_bad_arguments_raise_at_the_call(
    room: Any, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    options = {"api_key": "k", **options}
    with pytest.raises(error, match=match):
        warmrtc.watch(room, **options)
    with pytest.raises(error, match=match):
        warmrtc.watch_blocking(room, **options)


def test_the_http_base_follows_the_websocket_spelling() -> None:
    assert http_base("wss://api.decart.ai/") == "https://api.decart.ai"
    assert http_base("ws://10.0.0.1:8788") == "http://10.0.0.1:8788"
    assert http_base("https://x") == "https://x"


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


async def stub(status: int, body: str) -> tuple[web.AppRunner, str, list[web.Request]]:
    seen: list[web.Request] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/watch-stream/{room}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"ws://127.0.0.1:{port}", seen


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (401, '{"error": "Invalid API key"}', warmrtc.AuthenticationError, "Invalid API key"),
        (404, '{"error": "no stream in room"}', warmrtc.SessionClosedError, "HTTP 404"),
        (500, "oops", warmrtc.ConnectionLostError, "HTTP 500"),
        (200, "not json", warmrtc.ProtocolError, "not JSON"),
        (200, '{"token": "t"}', warmrtc.ProtocolError, "lacks livekit_url"),
    ],
)
def test_a_refused_watch_token_is_a_typed_error(
    status: int, body: str, error: type[Exception], match: str
) -> None:
    async def main() -> None:
        runner, url, seen = await stub(status, body)
        try:
            with pytest.raises(error, match=match):
                async with warmrtc.watch("room a/b", api_key="secret", base_url=url):
                    pass
            request = seen[0]
            assert request.headers["x-api-key"] == "secret"
            assert request.match_info["room"] == "room a/b"
        finally:
            await runner.cleanup()

    run(main())


def test_an_unreachable_service_is_connection_lost_not_a_hang() -> None:
    async def main() -> None:
        with pytest.raises(warmrtc.ConnectionLostError):
            await warmrtc.watch("r", api_key="k", base_url="http://127.0.0.1:1", timeout=5)

    run(main())
