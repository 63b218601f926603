"""The concurrency limit: how many sessions each API key may hold at once.

As Decart's service does it (DecartAI/sdk ``examples/realtime-session-queue/README.md``): the
limit is counted per organisation, every client token minted from a key counting into that
key's bucket, and checked once, when a session connects; a running session is never dropped
for it. A session's slot is freed a while after it ends: about 5 s after a clean disconnect,
about 45 s after a client that crashed (its websocket dropped without a close). Both delays
are configurable so that tests can keep them short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Quota:
    """One key's use of its limit, as ``GET /v1/realtime/quota`` reports it."""

    limit: int | None  # None: unlimited
    active: int  # slots held: live sessions and ended ones whose slot is not free yet

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.active, 0)


class SlotLedger:
    """Slots held per key. ``max_sessions`` 0 means no limit (slots are still counted)."""

    def __init__(self, max_sessions: int, release_delay: float, crash_release_delay: float):
        if max_sessions < 0 or release_delay < 0 or crash_release_delay < 0:
            raise ValueError(
                f"max_sessions and the delays must be >= 0, got {max_sessions}, "
                f"{release_delay}, {crash_release_delay}"
            )
        self.max_sessions = max_sessions
        self.release_delay = release_delay
        self.crash_release_delay = crash_release_delay
        self._held: dict[str, int] = {}
        self._timers: set[asyncio.TimerHandle] = set()

    def take(self, key: str) -> bool:
        """Takes a slot for a new session of ``key``; False when the limit is reached."""
        held = self._held.get(key, 0)
        if self.max_sessions and held >= self.max_sessions:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str, *, crashed: bool, then: Callable[[], None]) -> float:
        """Frees one slot of ``key`` after the delay for how the session ended, then calls
        ``then``. Returns the delay."""
        delay = self.crash_release_delay if crashed else self.release_delay
        loop = asyncio.get_running_loop()

        def free() -> None:
            self._timers.discard(handle)
            self._free(key)
            then()

        handle = loop.call_later(delay, free)
        self._timers.add(handle)
        return delay

    def quota(self, key: str) -> Quota:
        return Quota(self.max_sessions or None, self._held.get(key, 0))

    def close(self) -> None:
        """Cancels the pending releases (the emulator is stopping)."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()

    def _free(self, key: str) -> None:
        held = self._held.get(key, 0) - 1
        if held > 0:
            self._held[key] = held
        else:
            self._held.pop(key, None)
