"""offer_now(): has livekit make an offer at once, so that a new subscription starts sooner.

With one peer connection (livekit's default), the participant makes every offer, and the
server adds a subscription to a track published meanwhile at the participant's next one. When
it needs one, the server asks for it, but no sooner than 150 ms after the last negotiation, and
a track published soon after our own publish or join (the model's output, the client's input)
falls in that window: the first frame waited for it. Registering an RPC method makes livekit
offer at once (it readies the connection for RPC answers); the method goes again straight away,
so nobody can call it.
"""

from __future__ import annotations

import logging

from livekit import rtc

from .. import _trace

log = logging.getLogger("warmrtc")

_METHOD = "warmrtc-offer-now"


def offer_now(participant: rtc.LocalParticipant, mark: str) -> None:
    """Asks for an offer now; traces ``mark`` when it was asked. Never raises: an early offer
    only saves time."""
    try:
        participant.register_rpc_method(_METHOD, _refuse)
        participant.unregister_rpc_method(_METHOD)
    except Exception as e:
        log.debug("no early offer: %r", e)
        return
    _trace.mark(mark)


async def _refuse(_data: rtc.RpcInvocationData) -> str:
    raise rtc.RpcError(rtc.RpcError.ErrorCode.UNSUPPORTED_METHOD, "not a method of warmrtc")
