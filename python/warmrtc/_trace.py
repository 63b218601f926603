"""An opt-in trace of the steps of going live, for finding where start-up time goes.

With ``WARMRTC_TRACE`` naming a file, :func:`mark` appends one JSON line per event to it:
``{"t": <time.monotonic()>, "pid": ..., "event": ..., **fields}``. The monotonic clock is the
machine's, shared by every process on it, so the client, the emulator and its model workers
can write to one file and their events line up (benchmarks/warm_start.py ``--trace`` reads it).
Without the variable a mark costs one dictionary look-up; only a few events a session are
marked (the first of each kind after going live), never one per frame.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

TRACE_ENV = "WARMRTC_TRACE"


def enabled() -> bool:
    return bool(os.environ.get(TRACE_ENV))


def mark(event: str, **fields: object) -> None:
    """Appends ``event`` with the time now, when tracing; never raises for the file."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    line = json.dumps({"t": time.monotonic(), "pid": os.getpid(), "event": event, **fields})
    try:
        # One write of one line, appended: lines of several processes do not interleave.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # a trace is a diagnostic: it never breaks a session


# The counters of a track's WebRTC stats whose changes a trace records.
_OUTBOUND = ("frames_encoded", "frames_sent", "key_frames_encoded", "pli_count", "fir_count")
_INBOUND = ("frames_received", "frames_decoded", "key_frames_decoded", "pli_count", "fir_count")


async def watch_stats(
    get_stats: Callable[[], Awaitable[list[Any]]], prefix: str, seconds: float = 1.5
) -> None:
    """Marks ``<prefix>.<counter>`` each time a counter of a track's stats changes, polling
    every 5 ms for ``seconds`` (tracing only: it loads the process while it runs)."""
    if not enabled():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    seen: dict[str, int] = {}
    while loop.time() < deadline:
        try:
            stats = await get_stats()
        except Exception:  # a track torn down under the call
            return
        for s in stats:
            counters: list[tuple[str, Any]] = []
            if s.HasField("outbound_rtp"):
                counters = [(n, s.outbound_rtp.outbound) for n in _OUTBOUND]
            elif s.HasField("inbound_rtp"):
                counters = [(n, s.inbound_rtp.inbound) for n in _INBOUND]
            for name, message in counters:
                value = int(getattr(message, name))
                if seen.get(name, 0) != value:
                    if name in seen:
                        mark(f"{prefix}.{name}", value=value)
                    seen[name] = value
                else:
                    seen.setdefault(name, value)
        await asyncio.sleep(0.005)


def read(path: str) -> list[dict[str, object]]:
    """The events of a trace file, in the order written."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


__all__ = ["TRACE_ENV", "enabled", "mark", "read"]
