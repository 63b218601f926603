"""Budget: how many sessions may be open at once, shared by whoever holds the same budget.

The service limits the sessions an organisation may have open at once; every warm session
counts. A :class:`WarmPool` takes one slot of its budget (a :class:`Lease`) before it opens a
session and gives it back when the service has freed the session's slot (``release(lease,
after=delay)``: the slot stays counted for ``delay`` seconds more, the time the service takes
to free it). A lease is a timestamp of expiry: a holder that dies without releasing gives its
share back when its leases expire.

:class:`LocalBudget` is the in-process default (one process, any number of pools);
:class:`warmrtc.RedisBudget` shares one budget between processes and machines.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .config import seconds


@dataclass(frozen=True)
class Lease:
    """One slot of a budget, held until released (or, for a dead holder, until it expires)."""

    id: str


@runtime_checkable
class Budget(Protocol):
    """A number of session slots shared by several holders. Coroutines run on one event loop."""

    @property
    def limit(self) -> int:
        """The most slots held at once, by every holder together."""
        ...

    async def try_acquire(self) -> Lease | None:
        """A slot now, or None when all ``limit`` are held (never waits for one)."""
        ...

    async def release(self, lease: Lease, *, after: float = 0.0) -> None:
        """Gives the slot back ``after`` seconds from now (it counts until then)."""
        ...

    async def held(self) -> int:
        """Slots held now by every holder, including those counting down after a release."""
        ...

    async def aclose(self) -> None:
        """Stops keeping this holder's leases alive and gives back the ones it still holds."""
        ...


class LocalBudget:
    """A :class:`Budget` inside one process: pools given the same object share its ``limit``,
    on one event loop or on several (BlockingWarmPools each run one in a thread)."""

    def __init__(self, limit: int) -> None:
        self._limit = check_limit(limit)
        self._leases: dict[str, float] = {}  # id -> monotonic expiry (inf while held)
        self._lock = threading.Lock()  # pools on other loops' threads use it at once

    @property
    def limit(self) -> int:
        return self._limit

    async def try_acquire(self) -> Lease | None:
        lease = Lease(secrets.token_hex(8))
        with self._lock:
            self._expire()
            if len(self._leases) >= self._limit:
                return None
            self._leases[lease.id] = math.inf
        return lease

    async def release(self, lease: Lease, *, after: float = 0.0) -> None:
        after = seconds("after", after, zero=True)
        with self._lock:
            if lease.id not in self._leases:
                return
            if after == 0:
                del self._leases[lease.id]
            else:
                self._leases[lease.id] = time.monotonic() + after

    async def held(self) -> int:
        with self._lock:
            self._expire()
            return len(self._leases)

    async def aclose(self) -> None:
        with self._lock:
            self._leases = {k: v for k, v in self._leases.items() if v != math.inf}

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, until in self._leases.items() if until <= now]:
            del self._leases[key]

    def __repr__(self) -> str:
        return f"LocalBudget(limit={self._limit}, held={len(self._leases)})"


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"a budget's limit must be an int >= 1 (sessions), got {limit!r}")
    return limit


__all__ = ["Budget", "Lease", "LocalBudget"]
