"""The control channel's liveness: when a silent service counts as gone, and a socket that
outlives a dark network.

Silence is answered with pings, and a ping left unanswered ends the channel only while the
network is not known to be dark (the channel's owner says so: the media room resuming means the
whole path is down, and a verdict then would only throw away a service session that may still
be alive). Once the owner knows the network is back it asks for a probe: a ping at once, and the
verdict counted from then.

The socket under it (Linux 6.15 on) retries every second in the dark, so that the first ping
after the network comes back crosses within a second, not after TCP's exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from .._protocol.limits import HEARTBEAT

log = logging.getLogger("warmrtc")

# Linux (6.15 on) caps a socket's retransmission timeout: a segment lost in the dark is sent
# again every second at most, instead of after TCP's exponential backoff (up to 2 minutes), so
# the first ping after the network comes back arrives within a second. Elsewhere: as it is.
TCP_RTO_MAX_MS = 44  # linux/tcp.h
RTO_MAX_MS = 1000  # the least the kernel takes
# TCP gives a connection up after tcp_retries2 (15) retransmissions, which at a 1 s cap is 15 s
# of dark: a blackout would end it. Unacknowledged data is given this long instead (ms), more
# than the heartbeat's own verdict ever waits (Heartbeat.answer_within + dark_grace).
USER_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class Heartbeat:
    """How the channel tells a live service from a dead one (seconds).

    After ``ping_after`` of silence the client pings, and again every ``probe_every`` until it
    hears anything (the first packets to cross a network that comes back are ours: the service
    hears from us before its own ping times out, and one that closed the session answers with a
    reset at once). Nothing heard ``answer_within`` after the first ping ends the channel, unless
    the network is known to be dark; then the verdict waits, ``dark_grace`` more at the most.
    ``answer_within`` is longer than the media room's own detection of a dark network
    (livekit-server's ping timeout, 15 s), so a blackout is seen as one before it is judged."""

    ping_after: float = HEARTBEAT
    answer_within: float = HEARTBEAT
    probe_every: float = 1.0
    dark_grace: float = 60.0


DEFAULT_HEARTBEAT = Heartbeat()


async def keep_alive(
    beat: Heartbeat,
    *,
    heard_at: Callable[[], float],
    probed: asyncio.Event,
    network_dark: Callable[[], bool],
    ping: Callable[[], Awaitable[None]],
    closed: Callable[[], bool],
) -> str | None:
    """Pings the service after silence until the channel is ``closed()`` (then None), or until
    the service stays silent past its verdict: then returns why. ``heard_at()`` is the loop
    time of the last frame of any kind from the service; ``probed`` set asks for a ping now and
    a verdict counted from now (it is cleared here)."""
    loop = asyncio.get_running_loop()
    asked: float | None = None  # when the first ping of this silence went out
    while not closed():
        now = loop.time()
        if asked is not None and heard_at() >= asked:
            asked = None  # answered
        if probed.is_set():
            probed.clear()
            asked = now
        elif asked is None:
            quiet = now - heard_at()
            if quiet < beat.ping_after:
                await _sleep_unless_probed(probed, beat.ping_after - quiet)
                continue
            asked = now
        else:
            silent = now - asked
            dark = network_dark()
            if silent >= beat.answer_within + beat.dark_grace or (
                silent >= beat.answer_within and not dark
            ):
                where = " (the network was dark)" if dark else ""
                return f"no answer to pings for {silent:.0f} s{where}"
        await ping()
        await _sleep_unless_probed(probed, beat.probe_every)
    return None


async def _sleep_unless_probed(probed: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(probed.wait(), seconds)


def cap_retransmissions(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Caps the socket's retransmission timeout where the kernel can (see RTO_MAX_MS), with
    the give-up time that goes with it (USER_TIMEOUT_MS)."""
    sock = ws.get_extra_info("socket")
    if sock is None or not sys.platform.startswith("linux"):
        return
    try:
        # The give-up time first: with the cap alone, TCP would end the connection 15 s into
        # a blackout (its retries counted at the capped timeout).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)
        sock.setsockopt(socket.IPPROTO_TCP, TCP_RTO_MAX_MS, RTO_MAX_MS)
    except OSError:  # before Linux 6.15: TCP's own backoff, and its own give-up time
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 0)
        log.debug("control channel: no cap on TCP's retransmission timeout here")


__all__ = [
    "RTO_MAX_MS",
    "TCP_RTO_MAX_MS",
    "USER_TIMEOUT_MS",
    "Heartbeat",
    "cap_retransmissions",
    "keep_alive",
]
