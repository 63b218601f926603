"""The emulator's control channel, walked by a raw websocket client."""

from __future__ import annotations

import asyncio
import base64

import aiohttp
from conftest import API_KEY
from control import http_url, open_control, receive, receive_type, sessions

import warmrtc


def test_handshake_acks_and_errors(emulator_url: str) -> None:
    async def walk() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator_url, API_KEY)
            await ws.send_json({"type": "livekit_join"})
            assert (await receive(ws)) == {"type": "queue_position", "position": 1, "queue_size": 1}
            info = await receive_type(ws, "livekit_room_info", timeout=20)
            assert set(info) == {"type", "livekit_url", "token", "room_name", "session_id"}
            assert info["livekit_url"].startswith("ws://")

            await ws.send_json({"type": "prompt", "prompt": "a cat", "enhance_prompt": True})
            assert await receive(ws) == {"type": "prompt_ack", "prompt": "a cat", "success": True}
            await ws.send_json({"type": "prompt", "prompt": ""})
            ack = await receive(ws)
            assert ack["type"] == "prompt_ack" and ack["success"] is False and ack["error"]

            # Passthrough, as the official Python SDK sends it without an initial state.
            await ws.send_json({"type": "set_image", "image_data": None, "prompt": None})
            assert await receive(ws) == {"type": "set_image_ack", "success": True}
            image = base64.b64encode(b"\x89PNG fake but valid base64").decode()
            await ws.send_json({"type": "set_image", "image_data": image, "prompt": "x"})
            assert (await receive(ws))["success"] is True
            await ws.send_json({"type": "set_image", "image_ref": "ref-1"})
            assert (await receive(ws))["success"] is True
            await ws.send_json({"type": "set_image", "image_data": "not base64!!"})
            ack = await receive(ws)
            assert ack["success"] is False and "base64" in ack["error"]

            await ws.send_str("{not json")
            assert "malformed JSON" in (await receive(ws))["error"]
            await ws.send_json({"type": "teleport"})
            assert "unknown message type 'teleport'" in (await receive(ws))["error"]
            await ws.send_json(["not", "an", "object"])
            assert (await receive(ws))["type"] == "error"
            await ws.send_str('{"type": "prompt", "prompt": "' + "a" * (9 * 1024 * 1024) + '"}')
            assert "over" in (await receive(ws))["error"]

            # Still serving this session and the others.
            await ws.send_json({"type": "prompt", "prompt": "still here"})
            assert (await receive(ws))["success"] is True
            report = (await sessions(http, emulator_url, API_KEY))[info["session_id"]]
            assert report["model"] == "lucy-2.6"
            assert report["frames_received"] == 0 and report["billed_seconds"] == 0
            await ws.close()

    asyncio.run(asyncio.wait_for(walk(), 60))


def test_lean_join_gets_the_room_before_its_initial_state(emulator_url: str) -> None:
    """JS SDK's lean join (DecartAI/sdk #168): the room info comes off the join alone, and the
    initial prompt written right behind it is acked; nothing waits for the model's own join."""

    async def walk() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator_url, API_KEY)
            await ws.send_json({"type": "livekit_join", "passthrough": False})
            info = await receive_type(ws, "livekit_room_info", timeout=5)
            assert info["session_id"]
            await ws.send_json({"type": "prompt", "prompt": "first", "enhance_prompt": True})
            ack = await receive_type(ws, "prompt_ack", timeout=5)
            assert ack == {"type": "prompt_ack", "prompt": "first", "success": True}
            report = (await sessions(http, emulator_url, API_KEY))[info["session_id"]]
            assert report["frames_received"] == 0
            await ws.close()

    asyncio.run(asyncio.wait_for(walk(), 30))


def test_join_forms_of_other_sdks(emulator_url: str) -> None:
    async def walk() -> None:
        async with aiohttp.ClientSession() as http:
            for join_message in (
                {"type": "livekit_join", "initial_state": None},
                {"type": "livekit_join", "passthrough": True, "client_capabilities": {}},
                {
                    "type": "livekit_join",
                    "initial_state": {
                        "type": "prompt",
                        "prompt": "mobile",
                        "enhance_prompt": False,
                    },
                },
            ):
                ws = await open_control(http, emulator_url, API_KEY)
                await ws.send_json(join_message)
                await receive_type(ws, "livekit_room_info", timeout=20)
                if join_message.get("initial_state"):
                    assert (await receive(ws))["prompt"] == "mobile"
                await ws.send_json({"type": "livekit_join"})
                assert "already" in (await receive(ws))["error"]
                await ws.close()

    asyncio.run(asyncio.wait_for(walk(), 60))


def test_wrong_key_and_unknown_model_are_refused(emulator_url: str) -> None:
    async def walk() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator_url, "wrong-key")
            assert await receive(ws) == {"type": "error", "error": "Invalid API key"}
            assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            ws = await open_control(http, emulator_url, API_KEY, model="lucy-9000")
            assert "Unknown model" in (await receive(ws))["error"]
            assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            url = http_url(emulator_url) + "/watch-stream/nope"
            async with http.post(url, headers={"x-api-key": "wrong"}) as response:
                assert response.status == 401

    asyncio.run(asyncio.wait_for(walk(), 30))


def test_bad_messages_get_an_error_and_the_session_goes_on(emulator_url: str) -> None:
    async def walk() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator_url, API_KEY)
            await ws.send_str("[" * 100_000)  # once a RecursionError that ended the socket
            assert "nests deeper" in (await receive(ws))["error"]
            await ws.send_str('{"type": "prompt", "prompt": "' + "a" * (20 * 1024 * 1024) + '"}')
            assert "over the limit" in (await receive(ws, 30))["error"]
            long_prompt = "p" * 50_000
            await ws.send_json({"type": "prompt", "prompt": long_prompt})
            reply = await receive(ws)
            assert reply["type"] == "error" and "over the limit" in reply["error"]
            assert long_prompt not in str(reply) and len(str(reply)) < 300
            await ws.send_json({"type": "prompt", "prompt": "still here"})
            assert (await receive(ws))["success"] is True
            await ws.close()

    asyncio.run(asyncio.wait_for(walk(), 60))


def test_the_emulator_records_what_a_session_asked_for(emulator_url: str) -> None:
    """resolution and speed, as connect() sends them in the stream URL (as decart 0.2.4 does),
    are in the session's report; a session that asks for neither shows None."""

    async def run() -> None:
        sources = [warmrtc.VideoSource(64, 48) for _ in range(2)]
        try:
            asked = await warmrtc.connect(
                sources[0],
                api_key=API_KEY,
                base_url=emulator_url,
                start_muted=True,
                resolution="1080p",
                speed="fast",
            )
            plain = await warmrtc.connect(
                sources[1], api_key=API_KEY, base_url=emulator_url, start_muted=True
            )
            async with aiohttp.ClientSession() as http:
                reports = await sessions(http, emulator_url, API_KEY)
            mine = reports[asked.session_id]
            assert (mine["resolution"], mine["speed"]) == ("1080p", "fast")
            assert mine["user_agent"].startswith("warmrtc/")
            other = reports[plain.session_id]
            assert (other["resolution"], other["speed"]) == (None, None)
            await asked.disconnect()
            await plain.disconnect()
        finally:
            for source in sources:
                source.close()

    asyncio.run(asyncio.wait_for(run(), 60))
