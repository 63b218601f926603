"""offer_now() makes livekit send an SDP offer at once, on the real stack.

The server adds a subscription to a track published meanwhile at the participant's next offer
and asks for one no sooner than 150 ms after the last negotiation, so the session and the
emulator's model ask for an offer themselves when the other side publishes. This proves the
means: a relay in front of livekit-server counts the offers a participant sends.
"""

from __future__ import annotations

import asyncio
import os
import time

from livekit import api, rtc
from signal_proxy import SignalProxy

from warmrtc._media.early_offer import offer_now

SETTLE = 1.5  # seconds without an offer after which a connection counts as negotiated
BOUND = 5.0  # seconds an asked-for offer may take at most


def _token(identity: str) -> str:
    grants = api.VideoGrants(room_join=True, room="early-offer")
    token = api.AccessToken(os.environ["WARMRTC_LIVEKIT_KEY"], os.environ["WARMRTC_LIVEKIT_SECRET"])
    return token.with_identity(identity).with_grants(grants).to_jwt()


async def _settled(proxy: SignalProxy) -> int:
    """The offer count once none has come for SETTLE seconds (bounded)."""
    deadline = time.monotonic() + 20
    count, since = proxy.offers, time.monotonic()
    while time.monotonic() - since < SETTLE and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if proxy.offers != count:
            count, since = proxy.offers, time.monotonic()
    return count


async def _offers_after(ask: bool, livekit_url: str) -> int:
    async with SignalProxy(livekit_url, lose_offers=0) as proxy:
        room = rtc.Room()
        try:
            await room.connect(proxy.url, _token(f"offer-{ask}-{os.getpid()}"))
            before = await _settled(proxy)
            if ask:
                offer_now(room.local_participant, "test.offer_now")
            deadline = time.monotonic() + BOUND
            while proxy.offers == before and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            return proxy.offers - before
        finally:
            await room.disconnect()


def test_an_offer_comes_when_asked_for(livekit_url: str) -> None:
    assert asyncio.run(_offers_after(True, livekit_url)) >= 1


def test_no_offer_comes_unasked(livekit_url: str) -> None:
    """The control: a settled connection makes no offer on its own in that time, so the
    offer above was the one asked for."""
    assert asyncio.run(_offers_after(False, livekit_url)) == 0
