"""A raw control-channel client for the end-to-end tests: plain aiohttp, no warmrtc session."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from warmrtc._protocol.endpoints import STREAM_PATH


def http_url(ws_url: str) -> str:
    return ws_url.replace("ws://", "http://", 1)


async def open_control(
    http: aiohttp.ClientSession, base: str, api_key: str, model: str = "lucy-2.6"
) -> aiohttp.ClientWebSocketResponse:
    query = f"?api_key={api_key}&model={model}&livekit_early_room_info=true&user_agent=e2e"
    return await http.ws_connect(base + STREAM_PATH + query)


async def receive(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, f"expected a text message, got {msg.type!r}"
    return json.loads(msg.data)


async def receive_type(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 10
) -> dict[str, Any]:
    """The next message of type `kind`, skipping billing/queue messages on the way."""
    async with asyncio.timeout(timeout):
        while True:
            message = await receive(ws, timeout)
            if message["type"] == kind:
                return message
            assert message["type"] in ("queue_position", "generation_started", "generation_tick"), (
                message
            )


async def join(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    await ws.send_json({"type": "livekit_join"})
    return await receive_type(ws, "livekit_room_info", timeout=20)


def key_header(api_key: str) -> dict[str, str]:
    """How every HTTP endpoint of the emulator takes the key (as Decart's SDKs send it)."""
    return {"x-api-key": api_key}


async def sessions(
    http: aiohttp.ClientSession, base: str, api_key: str
) -> dict[str, dict[str, Any]]:
    """The sessions of ``api_key`` the emulator reports (those of other keys are not shown)."""
    async with http.get(http_url(base) + "/sessions", headers=key_header(api_key)) as response:
        response.raise_for_status()
        return {s["session_id"]: s for s in await response.json()}
