"""RedisBudget: one :class:`~warmrtc.budget.Budget` shared by processes and machines, in Redis.

The budget is one sorted set, ``warmrtc:budget:<name>``: a member per lease (a random id), its
score the lease's expiry in milliseconds of the Redis server's own clock (``TIME``; the
holders' clocks never matter). Each operation is one Lua script, so it is atomic:

- acquire: drop the expired members, and if fewer than ``limit`` are left, add the new lease
  expiring ``lease_ttl`` from now;
- renew (a heartbeat every ``lease_ttl / 3`` while the holder has leases): push the expiry of
  the holder's leases to ``lease_ttl`` from now; a lease already dropped is reported lost;
- release: remove the lease, or with ``after`` put it back as ``released:<id>`` expiring
  ``after`` seconds from now (the slot counts until the service has freed it): under another
  name, so that a renewal already on its way finds the lease gone and cannot push it back to a
  full ``lease_ttl``.

A holder that dies (SIGKILL, a lost machine) stops renewing: its slots come back within
``lease_ttl`` (default 70 s, so that they come back 47-70 s after its last heartbeat, never
before the service frees the slots of a crashed client's sessions, after about 45 s). The key
itself expires once every lease in it has.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from typing import TYPE_CHECKING, Any

from .budget import Lease, check_limit
from .config import seconds

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("warmrtc")

KEY_PREFIX = "warmrtc:budget:"
# Seconds a lease lives without a heartbeat. The sessions of a holder that died are dropped,
# not closed, and the service frees their slots only after about 45 s: its leases should count
# that long too, or the survivors would open sessions the service still refuses. A heartbeat
# every third of the TTL means a dead holder's leases last 2/3 to all of it after its last
# beat: 47-70 s, never under the service's 45.
LEASE_TTL = 70.0

# Every script reads the time from the Redis server: one clock for all holders.
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
# The key lives as long as its longest lease, then goes away by itself.
_KEEP_KEY = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])) + 1000) end
"""
# KEYS[1] the set; ARGV: limit, ttl (ms), lease id. Returns 1 (taken) or 0 (full).
ACQUIRE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
"""
    + _KEEP_KEY
    + "return 1"
)
# KEYS[1] the set; ARGV: ttl (ms), lease ids. Returns the ids that were no longer there.
RENEW = (
    _NOW
    + """
local lost = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    table.insert(lost, ARGV[i])
  end
end
"""
    + _KEEP_KEY
    + "return lost"
)
# KEYS[1] the set; ARGV: after (ms), lease id.
RELEASE = (
    _NOW
    + """
if redis.call('ZREM', KEYS[1], ARGV[2]) == 1 and tonumber(ARGV[1]) > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), 'released:' .. ARGV[2])
end
"""
    + _KEEP_KEY
    + "return 1"
)
# KEYS[1] the set. Returns the leases held now.
HELD = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)


class RedisBudget:
    """A :class:`~warmrtc.budget.Budget` of ``limit`` sessions kept in Redis under ``name``.

    ``redis`` is a URL (``redis://host:port/db``, ``rediss://...``, ``unix:///path.sock``) or a
    ``redis.asyncio.Redis`` client (then closing it stays the caller's job). Every holder of
    the same ``name`` must pass the same ``limit``. Needs ``pip install warmrtc[redis]``.

    A Redis client belongs to the event loop it is first used on, and so does this budget: a
    pool on another loop (each BlockingWarmPool runs one) gets a RedisBudget of its own, with
    the same ``name`` and ``limit``; they share the budget through Redis. Using one from a
    second loop raises RuntimeError saying so.
    """

    def __init__(
        self,
        redis: str | Redis,
        limit: int,
        *,
        name: str = "default",
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "RedisBudget needs redis-py >= 5: pip install 'warmrtc[redis]'"
            ) from None
        self._limit = check_limit(limit)
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        ttl = seconds("lease_ttl", lease_ttl, zero=True)
        if ttl < 0.5:
            raise ValueError(f"lease_ttl must be at least 0.5 s, got {lease_ttl!r}")
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(
                    f"redis must be a redis://, rediss:// or unix:// URL or a client: {redis!r}"
                )
            self._redis: Redis = aioredis.from_url(redis)
            self._owns_client = True
        elif isinstance(redis, aioredis.Redis):
            self._redis = redis
            self._owns_client = False
        else:
            kind = type(redis).__name__
            raise TypeError(f"redis must be a URL or a redis.asyncio.Redis client, got {kind}")
        self.name = name
        self.key = KEY_PREFIX + name
        self.lease_ttl = ttl
        self.lost = 0  # leases that expired before their heartbeat (the holder was too late)
        self._ttl_ms = int(ttl * 1000)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)
        self._held = self._redis.register_script(HELD)
        self._mine: set[str] = set()  # lease ids this holder renews
        self._heartbeat: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one it was first used on
        self._closed = False

    @property
    def limit(self) -> int:
        return self._limit

    def _on_its_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError(
                f"RedisBudget {self.name!r} is used from a second event loop; its Redis client "
                "belongs to the loop it was first used on. Give each loop (each "
                f"BlockingWarmPool) a RedisBudget of its own with name={self.name!r} and "
                f"limit={self._limit}: they share the budget through Redis"
            )

    async def try_acquire(self) -> Lease | None:
        if self._closed:
            raise RuntimeError("the budget is closed")
        self._on_its_loop()
        lease = Lease(secrets.token_hex(12))
        # Cancelled half-way, a lease taken in Redis is not renewed: it expires by itself.
        taken = await self._acquire(keys=[self.key], args=[self._limit, self._ttl_ms, lease.id])
        if not int(taken):
            return None
        self._mine.add(lease.id)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(
                self._beat(), name="warmrtc-budget-heartbeat"
            )
        return lease

    async def release(self, lease: Lease, *, after: float = 0.0) -> None:
        after = seconds("after", after, zero=True)
        self._on_its_loop()
        self._mine.discard(lease.id)  # failed below, it expires: no one renews it any more
        await self._release(keys=[self.key], args=[math.ceil(after * 1000), lease.id])

    async def held(self) -> int:
        self._on_its_loop()
        return int(await self._held(keys=[self.key]))

    async def aclose(self) -> None:
        """Stops the heartbeat and gives back at once the leases still held. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
        mine, self._mine = list(self._mine), set()
        try:
            for lease_id in mine:
                await self._release(keys=[self.key], args=[0, lease_id])
        except Exception as e:  # they expire within lease_ttl anyway
            log.warning(
                "budget %s: could not give leases back (%r); they will expire", self.name, e
            )
        finally:
            if self._owns_client:
                await self._redis.aclose()

    async def _beat(self) -> None:
        """Renews this holder's leases every lease_ttl / 3 while it has any."""
        while self._mine:
            await asyncio.sleep(self.lease_ttl / 3)
            mine = list(self._mine)
            if not mine:
                return
            try:
                lost: Any = await self._renew(keys=[self.key], args=[self._ttl_ms, *mine])
            except Exception as e:  # Redis away for a moment: the next beat tries again
                log.warning("budget %s: heartbeat failed (%r)", self.name, e)
                continue
            for raw in lost or ():
                lease_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                if lease_id in self._mine:
                    self._mine.discard(lease_id)
                    self.lost += 1
                    log.warning("budget %s: a lease expired before its heartbeat", self.name)

    def __repr__(self) -> str:
        return f"RedisBudget(name={self.name!r}, limit={self._limit}, mine={len(self._mine)})"


__all__ = ["RedisBudget"]
