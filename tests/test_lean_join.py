"""The lean join (DecartAI/sdk #166, #168): the initial prompt or image is written right behind
``livekit_join`` (``passthrough: false``), before the room info comes; its ack is taken later,
whenever it came, and a refusal still reaches the caller."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from test_signaling import ROOM, Recorder, expect, run, service
from warmrtc._session.control import image_request, prompt_request
from warmrtc.errors import ConnectTimeoutError, RejectedError


def test_initial_prompt_follows_the_join_before_the_room_info() -> None:
    seen: list[dict[str, Any]] = []

    async def script(ws: web.WebSocketResponse) -> None:
        seen.append(await expect(ws, "livekit_join"))
        seen.append(await expect(ws, "prompt"))  # before the room info was sent
        await ws.send_json({"type": "prompt_ack", "prompt": "a cat", "success": True})
        await ws.send_json(ROOM)

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            info = await ch.join(5, initial=prompt_request("a cat", True))
            assert info.room_name == ROOM["room_name"]
            await ch.initial_state_applied(5)  # acked before the room info: taken all the same
            await ch.close()

    run(main())
    assert seen == [
        {"type": "livekit_join", "passthrough": False},
        {"type": "prompt", "prompt": "a cat", "enhance_prompt": True},
    ]


def test_a_refused_initial_image_fails_when_its_ack_is_taken() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await expect(ws, "livekit_join")
        await expect(ws, "set_image")
        await ws.send_json(ROOM)
        await ws.send_json({"type": "set_image_ack", "success": False, "error": "bad image"})

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5, initial=image_request("aGk=", None, None))
            with pytest.raises(RejectedError, match="bad image"):
                await ch.initial_state_applied(5)
            await ch.close()

    run(main())


def test_a_missing_initial_ack_times_out_and_passthrough_waits_for_nothing() -> None:
    async def script(ws: web.WebSocketResponse) -> None:
        await expect(ws, "livekit_join")
        await ws.send_json(ROOM)

    async def main() -> None:
        async with service(script) as url:
            ch = Recorder().channel()
            await ch.open(url, 5)
            await ch.join(5, initial=prompt_request("never acked", True))
            with pytest.raises(ConnectTimeoutError, match="initial state"):
                await ch.initial_state_applied(0.2)
            await ch.initial_state_applied(0.2)  # taken once: nothing is left to wait for
            await ch.close()

    run(main())
