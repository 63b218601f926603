"""Every endpoint of the emulator refuses a missing or foreign key; a key sees its own."""

from __future__ import annotations

import asyncio

import aiohttp
from conftest import API_KEY, Emulator
from control import http_url, join, key_header, open_control, sessions

import warmrtc

ENDPOINTS = [
    ("GET", "/sessions"),
    ("GET", "/v1/realtime/quota"),
    ("POST", "/v1/client/tokens"),
    ("POST", "/watch-stream/{room}"),
    ("POST", "/sessions/{sid}/drop"),
    ("POST", "/sessions/{sid}/end"),
]


def test_every_endpoint_refuses_a_missing_or_unknown_key(emulator_url: str) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator_url, API_KEY)
            info = await join(ws)
            base = http_url(emulator_url)
            for method, path in ENDPOINTS:
                url = base + path.format(room=info["room_name"], sid=info["session_id"])
                for headers in ({}, key_header("wrong"), key_header("")):
                    async with http.request(method, url, headers=headers, json={}) as r:
                        assert r.status == 401, (method, path, headers, r.status)
            ws2 = await open_control(http, emulator_url, "wrong")
            assert (await ws2.receive_json())["error"] == "Invalid API key"
            await ws2.close()
            await ws.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_a_token_sees_and_watches_only_its_own_session(emulator_url: str) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            base = http_url(emulator_url)
            mine = await warmrtc.create_client_token(API_KEY, base_url=emulator_url)
            theirs = await warmrtc.create_client_token(API_KEY, base_url=emulator_url)
            ws = await open_control(http, emulator_url, mine.key)
            info = await join(ws)
            sid, room = info["session_id"], info["room_name"]
            assert list(await sessions(http, emulator_url, mine.key)) == [sid]
            assert await sessions(http, emulator_url, theirs.key) == {}
            assert sid in await sessions(http, emulator_url, API_KEY)  # the key sees its tokens'
            watch = f"{base}/watch-stream/{room}"
            async with http.post(watch, headers=key_header(theirs.key)) as r:
                assert r.status == 404
            async with http.post(watch, headers=key_header(mine.key)) as r:
                assert r.status == 200 and (await r.json())["session_id"] == sid
            # Fault injection acts on the caller's own sessions only.
            async with http.post(f"{base}/sessions/{sid}/end", headers=key_header(theirs.key)) as r:
                assert r.status == 404
            # A client token cannot mint tokens.
            tokens = f"{base}/v1/client/tokens"
            async with http.post(tokens, headers=key_header(mine.key), json={}) as r:
                assert r.status == 403
            await ws.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_fault_injection_is_off_unless_asked_for() -> None:
    emulator = Emulator()

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            ws = await open_control(http, emulator.url, API_KEY)
            info = await join(ws)
            for action in ("drop", "end"):
                url = f"{http_url(emulator.url)}/sessions/{info['session_id']}/{action}"
                async with http.post(url, headers=key_header(API_KEY)) as r:
                    assert r.status == 403 and "--fault-injection" in (await r.json())["error"]
            await ws.close()

    try:
        asyncio.run(asyncio.wait_for(run(), 30))
    finally:
        emulator.stop()
