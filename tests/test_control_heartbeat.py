"""The control channel's own heartbeat against a real websocket server on 127.0.0.1: silence is
answered with pings, a service that never answers is lost, but not while the network is known to
be dark (only after a bounded grace), a probe restarts the verdict, and the service's own pings
are answered. Seconds are scaled down (Heartbeat takes them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import WSMsgType, web

from warmrtc import errors
from warmrtc._protocol.endpoints import Secret, stream_url
from warmrtc._session.control import ControlChannel
from warmrtc._session.heartbeat import Heartbeat

FAST = Heartbeat(ping_after=0.2, answer_within=0.6, probe_every=0.1, dark_grace=1.5)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


class Service:
    """A websocket service that, unless ``answering``, never answers a ping (a peer behind a
    dark network looks the same from here); it counts the pings it got and can ping itself."""

    def __init__(self, *, answering: bool, heartbeat: float | None = None) -> None:
        self.answering = answering
        self.heartbeat = heartbeat
        self.pings: list[float] = []
        self.ended: list[str] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False, heartbeat=self.heartbeat)
        await ws.prepare(request)
        for _ in range(100_000):  # bounded: ends with the client, or the test's timeout
            msg = await ws.receive()
            if msg.type == WSMsgType.PING:
                self.pings.append(time.monotonic())
                if self.answering:
                    await ws.pong(msg.data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                self.ended.append("closed")
                break
            elif msg.type == WSMsgType.ERROR:
                self.ended.append(f"error: {ws.exception()}")
                break
        return ws


@asynccontextmanager
async def serving(service: Service) -> AsyncIterator[Callable[[], str]]:
    app = web.Application()
    app.router.add_get("/v1/stream", service.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield lambda: stream_url(f"ws://127.0.0.1:{port}", "lucy-2.6", Secret("k"), "test")
    finally:
        await runner.cleanup()


async def lost_within(closed: list[errors.WarmrtcError], seconds: float) -> float | None:
    """Seconds until the channel reported its loss, None if it did not within ``seconds``."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if closed:
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    return None


def test_a_service_that_never_answers_is_lost_after_the_answer_timeout() -> None:
    async def main() -> None:
        service = Service(answering=False)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(lambda _m: None, closed.append, heartbeat=FAST)
            await channel.open(url, 5)
            took = await lost_within(closed, 5)
            await channel.close()
        # Silent for ping_after, then answer_within after the first ping.
        assert took is not None and 0.7 <= took < 2.0, took
        assert len(closed) == 1 and isinstance(closed[0], errors.ConnectionLostError)
        assert "no answer to pings" in str(closed[0]) and closed[0].retryable
        # Pinged again every probe_every while unanswered.
        assert len(service.pings) >= 4, service.pings

    run(main())


def test_a_service_that_answers_stays_connected() -> None:
    async def main() -> None:
        service = Service(answering=True)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(lambda _m: None, closed.append, heartbeat=FAST)
            await channel.open(url, 5)
            assert await lost_within(closed, 1.5) is None
            assert not channel.closed and len(service.pings) >= 3
            await channel.close()

    run(main())


def test_the_services_own_pings_are_answered() -> None:
    async def main() -> None:
        # aiohttp's server closes a websocket whose pong is late (heartbeat / 2).
        service = Service(answering=True, heartbeat=0.2)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(lambda _m: None, closed.append)  # the real heartbeat
            await channel.open(url, 5)
            assert await lost_within(closed, 1.5) is None
            assert not service.ended, service.ended
            await channel.close()

    run(main())


def test_no_verdict_while_the_network_is_dark_then_one_at_once_when_it_is_not() -> None:
    async def main() -> None:
        service = Service(answering=False)
        dark = [True]
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(
                lambda _m: None, closed.append, network_dark=lambda: dark[0], heartbeat=FAST
            )
            await channel.open(url, 5)
            # Past ping_after + answer_within, well inside the grace: still open.
            assert await lost_within(closed, 1.2) is None
            dark[0] = False
            took = await lost_within(closed, 1.0)
            await channel.close()
        assert took is not None and took < 0.4, took  # at the next check

    run(main())


def test_a_network_that_stays_dark_ends_the_channel_after_the_grace() -> None:
    async def main() -> None:
        service = Service(answering=False)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(
                lambda _m: None, closed.append, network_dark=lambda: True, heartbeat=FAST
            )
            await channel.open(url, 5)
            took = await lost_within(closed, 6)
            await channel.close()
        # ping_after + answer_within + dark_grace = 2.3 s
        assert took is not None and 2.2 <= took < 3.5, took
        assert "the network was dark" in str(closed[0])

    run(main())


def test_a_probe_pings_at_once_and_restarts_the_verdict() -> None:
    async def main() -> None:
        service = Service(answering=False)
        dark = [True]
        slow = Heartbeat(ping_after=5.0, answer_within=0.6, probe_every=0.1, dark_grace=10)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(
                lambda _m: None, closed.append, network_dark=lambda: dark[0], heartbeat=slow
            )
            await channel.open(url, 5)
            await asyncio.sleep(0.3)
            assert not service.pings  # silent for less than ping_after: nothing sent yet
            dark[0] = False  # the media room resumed: the network is back
            probed = time.monotonic()
            channel.probe()
            took = await lost_within(closed, 3)
            await channel.close()
        assert service.pings and service.pings[0] - probed < 0.2, service.pings
        # answer_within from the probe, not from an earlier ping.
        assert took is not None and 0.55 <= took < 1.5, took

    run(main())


def test_a_channel_lost_to_silence_closes_without_waiting_for_a_handshake() -> None:
    async def main() -> None:
        service = Service(answering=False)
        async with serving(service) as url:
            closed: list[errors.WarmrtcError] = []
            channel = ControlChannel(lambda _m: None, closed.append, heartbeat=FAST)
            await channel.open(url, 5)
            assert await lost_within(closed, 5) is not None
            start = time.monotonic()
            await channel.close()
            assert time.monotonic() - start < 1.0
            # Every call after it fails at once with the loss.
            try:
                await channel.set_prompt("x", True, 5)
            except errors.ConnectionLostError as e:
                assert "no answer to pings" in str(e)
            else:
                raise AssertionError("a request on a lost channel succeeded")

    run(main())


def test_the_socket_retries_every_second_and_outlives_a_blackout() -> None:
    """Linux 6.15 on: a segment lost in the dark is sent again every second at most, and TCP
    gives the connection up later than the heartbeat would (with the cap alone its 15 retries
    would end it 15 s into a blackout)."""
    import socket
    import sys

    from warmrtc._session import heartbeat as control

    assert control.USER_TIMEOUT_MS / 1000 > Heartbeat().answer_within + Heartbeat().dark_grace
    if not sys.platform.startswith("linux"):
        return

    async def main() -> None:
        service = Service(answering=True)
        async with serving(service) as url:
            channel = ControlChannel(lambda _m: None, lambda _e: None)
            await channel.open(url, 5)
            assert channel._ws is not None
            sock = channel._ws.get_extra_info("socket")
            try:
                capped = sock.getsockopt(socket.IPPROTO_TCP, control.TCP_RTO_MAX_MS)
            except OSError:
                capped = None  # an older kernel: TCP's own backoff and give-up time
            given_up_after = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
            await channel.close()
        if capped is not None:
            assert capped == control.RTO_MAX_MS
            assert given_up_after == control.USER_TIMEOUT_MS
        else:
            assert given_up_after == 0

    run(main())
