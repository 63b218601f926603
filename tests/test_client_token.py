"""create_client_token(): the request it sends, the token it returns, and its errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

import warmrtc
from warmrtc.tokens import ClientToken


@asynccontextmanager
async def token_api(status: int = 200) -> AsyncIterator[tuple[str, list[Any]]]:
    seen: list[Any] = []

    async def mint(request: web.Request) -> web.Response:
        seen.append((request.headers.get("x-api-key"), await request.json()))
        if status != 200:
            return web.json_response({"error": "Invalid API key"}, status=status)
        return web.json_response(
            {
                "apiKey": "ek_secretvalue",
                "token": "a.b.c",
                "expiresAt": "2030-01-01T00:00:00Z",
                "permissions": {"models": ["lucy-2.6"]},
                "constraints": {"realtime": {"maxSessionDuration": 3}},
            }
        )

    app = web.Application()
    app.router.add_post("/v1/client/tokens", mint)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"ws://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def test_a_token_is_minted_with_the_service_fields() -> None:
    async def body() -> None:
        async with token_api() as (url, seen):
            token = await warmrtc.create_client_token(
                "KEY",
                base_url=url,
                expires_in=30,
                allowed_models=["lucy-2.6"],
                max_session_duration=3,
            )
        assert seen == [
            (
                "KEY",
                {
                    "expiresIn": 30,
                    "allowedModels": ["lucy-2.6"],
                    "constraints": {"realtime": {"maxSessionDuration": 3}},
                },
            )
        ]
        assert isinstance(token, ClientToken) and token.key == "ek_secretvalue"
        assert token.allowed_models == ("lucy-2.6",) and token.allowed_origins is None
        assert token.max_session_duration == 3 and token.expires_at.year == 2030
        assert "secretvalue" not in repr(token) and "a.b.c" not in repr(token)

    asyncio.run(asyncio.wait_for(body(), 10))


def test_a_refused_key_is_an_authentication_error() -> None:
    async def body() -> None:
        async with token_api(401) as (url, _seen):
            with pytest.raises(warmrtc.AuthenticationError):
                await warmrtc.create_client_token("BAD", base_url=url)

    asyncio.run(asyncio.wait_for(body(), 10))


@pytest.mark.parametrize(
    "options",
    [
        {"expires_in": 0},
        {"expires_in": 3601},
        {"allowed_models": ["m"] * 21},
        {"max_session_duration": 0},
        {"base_url": "ftp://x"},
    ],
)
def test_bad_arguments_fail_before_any_request(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        warmrtc.create_client_token_blocking("KEY", **options)
    with pytest.raises(TypeError):
        warmrtc.create_client_token_blocking("KEY", allowed_models="lucy-2.6")  # type: ignore[arg-type]


def test_an_unreachable_service_fails_in_time() -> None:
    with pytest.raises(warmrtc.ConnectionLostError):
        warmrtc.create_client_token_blocking("KEY", base_url="http://127.0.0.1:9", timeout=5)
