"""The join announces frame timing the way Decart's JS SDK 0.1.20 does with debugQuality:
``{"type": "livekit_join", ..., "client_capabilities": {"frame_timing": true}}``, and only then.
It is lean: ``passthrough`` says whether an initial state follows as its own frame."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from test_signaling import ROOM, Recorder, expect, run, service


@pytest.mark.parametrize("frame_timing", [True, False])
def test_join_carries_client_capabilities_only_with_frame_timing(frame_timing: bool) -> None:
    seen: list[dict[str, Any]] = []

    async def script(ws: web.WebSocketResponse) -> None:
        seen.append(await expect(ws, "livekit_join"))
        await ws.send_json(ROOM)

    async def main() -> None:
        rec = Recorder()
        async with service(script) as url:
            ch = rec.channel()
            await ch.open(url, 5)
            info = await ch.join(5, frame_timing=frame_timing)
            assert info.room_name == ROOM["room_name"]
            await ch.close()

    run(main())
    expected: dict[str, Any] = {"type": "livekit_join", "passthrough": True}
    if frame_timing:
        expected["client_capabilities"] = {"frame_timing": True}
    assert seen == [expected]
