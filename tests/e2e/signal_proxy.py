"""A relay between clients and livekit-server's signalling websocket that can lose a client's
SDP offers, the way livekit-server itself loses them when a participant's queue of signal
requests overflows: the track is published, its negotiation never ends, pings still answered.
It can also hold the answer to a join back for a while, as a slow or briefly dark link does:
the join then ends seconds later than its caller was willing to wait.

Everything else (other requests, every response, plain HTTP such as ``/rtc/validate``) is
relayed as it is. It listens on the stack's namespace address, on a port of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from livekit.protocol import rtc as signal


class SignalProxy:
    """``async with SignalProxy(livekit_url, lose_offers=1) as proxy:`` then give clients
    ``proxy.url``. The first ``lose_offers`` client connections (identities ``client-...``)
    lose every offer sent after their first ``add_track``; ``proxy.lost`` counts them, and
    ``proxy.offers`` the offers of every connection that went through."""

    def __init__(self, livekit_url: str, *, lose_offers: int = 0, hold_join: float = 0.0) -> None:
        self._upstream = livekit_url
        self._lose_left = lose_offers
        self.hold_join = hold_join  # seconds the first answer to a client or viewer waits
        self.lost = 0
        self.offers = 0
        self.connections = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> SignalProxy:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, os.environ["WARMRTC_NETNS_HOST"], 0)
        await site.start()
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        self.url = f"ws://{host}:{port}"
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target = self._upstream.replace("ws://", "http://", 1) + request.path_qs
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with aiohttp.ClientSession() as http:
            if request.headers.get("Upgrade", "").lower() != "websocket":
                body = await request.read()
                async with http.request(request.method, target, data=body, headers=headers) as up:
                    body = await up.read()
                    return web.Response(status=up.status, body=body, headers=_plain(up.headers))
            ws_target = target.replace("http://", "ws://", 1)
            async with http.ws_connect(ws_target, headers=headers) as upstream:
                client = web.WebSocketResponse()
                await client.prepare(request)
                self.connections += 1
                identity = _identity(request)
                lossy = identity.startswith("client-") and self._lose_left > 0
                if lossy:
                    self._lose_left -= 1
                hold = self.hold_join if identity.startswith(("client-", "viewer-")) else 0.0
                await _relay(client, upstream, self, lossy, hold)
                return client


async def _relay(
    client: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    proxy: SignalProxy,
    lossy: bool,
    hold: float,
) -> None:
    published = False

    async def requests() -> None:
        nonlocal published
        async for message in client:
            if message.type != aiohttp.WSMsgType.BINARY:
                break
            kind = signal.SignalRequest.FromString(message.data).WhichOneof("message")
            if lossy:
                published = published or kind == "add_track"
                if published and kind == "offer":
                    proxy.lost += 1
                    continue
            proxy.offers += kind == "offer"
            await upstream.send_bytes(message.data)
        await upstream.close()

    async def responses() -> None:
        await asyncio.sleep(hold)  # the join's answer (and all after it) comes this much later
        async for message in upstream:
            if message.type != aiohttp.WSMsgType.BINARY:
                break
            await client.send_bytes(message.data)
        await client.close()

    tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(responses())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _identity(request: web.Request) -> str:
    """The participant identity in the access token of a join (unverified: a relay)."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    token = token or parse_qs(request.query_string).get("access_token", [""])[0]
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("sub", ""))
    except (IndexError, ValueError):
        return ""


def _plain(headers: object) -> dict[str, str]:
    skip = {"content-length", "transfer-encoding", "content-encoding", "connection"}
    return {k: v for k, v in headers.items() if k.lower() not in skip}  # type: ignore[attr-defined]
