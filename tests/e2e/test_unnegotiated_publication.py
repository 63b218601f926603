"""A publication the media server never negotiates is noticed and recovered.

livekit-server stops reading a participant's signal requests when more than 200 queue up (a
process joining many rooms at once can trickle hundreds of ICE candidates), yet it still
answers that participant's pings: the track counts as published, its SDP offer is never
answered, and no media ever flows. The client's check of its published track must see that
within MEDIA_PROOF seconds and join again. The relay in front of livekit-server loses the
first client connection's offers after its track is published, which is that state exactly.
"""

from __future__ import annotations

import asyncio
import time

from conftest import API_KEY, Emulator
from signal_proxy import SignalProxy
from test_session import HEIGHT, WIDTH, Camera

import warmrtc
from warmrtc._session import media_link as media


async def _connect_through_lossy_relay(livekit_url: str) -> tuple[SignalProxy, list, float]:
    async with SignalProxy(livekit_url, lose_offers=1) as proxy:
        emulator = Emulator("--client-livekit-url", proxy.url)
        source = warmrtc.VideoSource(WIDTH, HEIGHT, fps=30)
        session: warmrtc.Session | None = None
        try:
            with Camera(source):
                session = await warmrtc.connect(source, api_key=API_KEY, base_url=emulator.url)
                events: list = []

                async def collect() -> None:
                    async for event in session.events():
                        events.append(event)

                reader = asyncio.create_task(collect())
                began = time.monotonic()
                deadline = began + media.MEDIA_PROOF + 30
                while session.state != "generating" and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                generating_after = time.monotonic() - began if session.state == "generating" else -1
                await session.disconnect()
                await asyncio.wait_for(reader, 10)
        finally:
            if session is not None:
                await session.disconnect()
            source.close()
            emulator.stop()
    return proxy, events, generating_after


def test_a_publication_never_negotiated_is_joined_again(livekit_url: str) -> None:
    proxy, events, generating_after = asyncio.run(_connect_through_lossy_relay(livekit_url))
    assert proxy.lost >= 1, "the relay lost no offer: the test did not set the fault up"
    assert generating_after >= 0, f"never generated; events: {events}"
    reconnects = [e for e in events if isinstance(e, warmrtc.ReconnectEvent)]
    assert reconnects and reconnects[0].error is None, events
    assert proxy.connections >= 2  # the second join went through the relay too
