"""RedisBudget against a real redis-server that the test starts (no LiveKit, no network
namespace): the limit holds across holders, leases live by their heartbeat, a released slot
counts for its delay, and a killed holder's slots come back when its leases expire."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

pytest.importorskip("redis", reason="RedisBudget needs the redis extra")
import redis.asyncio as aioredis
import redis.exceptions

import warmrtc
from redis_server import RedisServer
from warmrtc.redis_budget import KEY_PREFIX, RedisBudget


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        server = RedisServer()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    with server:
        yield server.url


def run(coro: Coroutine[Any, Any, None], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def test_the_limit_holds_across_holders(redis_url: str) -> None:
    async def main() -> None:
        a = RedisBudget(redis_url, 3, name="across")
        b = RedisBudget(redis_url, 3, name="across")
        got = await asyncio.gather(*(h.try_acquire() for h in [a, b] * 5))
        taken = [g for g in got if g is not None]
        assert len(taken) == 3 and await a.held() == 3 and await b.held() == 3
        holder = {id(a): a, id(b): b}
        owners = [a if i % 2 == 0 else b for i, g in enumerate(got) if g is not None]
        for owner, lease in zip(owners, taken, strict=True):
            await holder[id(owner)].release(lease)
        assert await a.held() == 0
        client = aioredis.from_url(redis_url)
        assert await client.exists(KEY_PREFIX + "across") == 0  # gone with its last lease
        await client.aclose()
        await a.aclose()
        await b.aclose()

    run(main())


def test_a_heartbeat_keeps_leases_alive_past_their_ttl(redis_url: str) -> None:
    async def main() -> None:
        a = RedisBudget(redis_url, 1, name="beat", lease_ttl=0.6)
        b = RedisBudget(redis_url, 1, name="beat", lease_ttl=0.6)
        assert await a.try_acquire() is not None
        await asyncio.sleep(1.5)
        assert await b.try_acquire() is None and a.lost == 0
        await a.aclose()  # gives its lease back at once
        assert await b.try_acquire() is not None
        await b.aclose()

    run(main())


def test_a_released_slot_counts_until_its_delay_ends(redis_url: str) -> None:
    async def main() -> None:
        a = RedisBudget(redis_url, 1, name="delay", lease_ttl=5)
        lease = await a.try_acquire()
        assert lease is not None
        await a.release(lease, after=0.5)
        assert await a.held() == 1 and await a.try_acquire() is None
        await asyncio.sleep(0.7)
        assert await a.held() == 0
        assert await a.try_acquire() is not None
        await a.aclose()

    run(main())


HOLDER = """
import asyncio, sys
from warmrtc.redis_budget import RedisBudget

async def main():
    budget = RedisBudget(sys.argv[1], 2, name="killed", lease_ttl=1.0)
    assert await budget.try_acquire() and await budget.try_acquire()
    print("held", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_a_killed_holder_gives_its_slots_back_within_the_lease_ttl(redis_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"

        async def main() -> None:
            other = RedisBudget(redis_url, 2, name="killed", lease_ttl=1.0)
            await asyncio.sleep(1.5)  # alive: its heartbeat keeps both slots
            assert await other.held() == 2 and await other.try_acquire() is None
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            while await other.held() > 0:
                assert time.monotonic() - killed < 3, "the killed holder's leases did not expire"
                await asyncio.sleep(0.1)
            assert await other.try_acquire() is not None
            await other.aclose()

        run(main())
    finally:
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_two_pools_on_one_redis_budget_stay_within_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_pool_limits import SMALL, FakeService
    from warmrtc import pool as pool_module

    service = FakeService()
    monkeypatch.setattr(pool_module, "connect", service.connect)

    async def main() -> None:
        a_budget = RedisBudget(redis_url, 2, name="pools", lease_ttl=2)
        b_budget = RedisBudget(redis_url, 2, name="pools", lease_ttl=2)
        opts: dict[str, Any] = {"release_delay": 0.2, **SMALL}
        async with (
            warmrtc.WarmPool(2, budget=a_budget, **opts) as a,
            warmrtc.WarmPool(2, budget=b_budget, **opts) as b,
        ):
            await asyncio.sleep(1.0)
            assert a.stats.warm + b.stats.warm == 2 and await a_budget.held() == 2
            assert a.stats.held_back or b.stats.held_back
        assert service.most == 2
        await a_budget.aclose()
        await b_budget.aclose()

    run(main())


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("redis://127.0.0.1:1", 0), {}, ValueError, "limit"),
        (("http://127.0.0.1:1", 1), {}, ValueError, "rediss://"),
        ((42, 1), {}, TypeError, "redis must be"),
        (("redis://127.0.0.1:1", 1), {"name": ""}, ValueError, "name"),
        (("redis://127.0.0.1:1", 1), {"lease_ttl": 0.1}, ValueError, "lease_ttl"),
        (("redis://127.0.0.1:1", 1), {"lease_ttl": "5"}, TypeError, "lease_ttl"),
    ],
)
def test_bad_arguments_raise(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RedisBudget(*args, **kwargs)


def test_an_unreachable_redis_is_an_error_of_try_acquire_not_a_hang() -> None:
    async def main() -> None:
        budget = RedisBudget("redis://127.0.0.1:1/0", 1)
        with pytest.raises(redis.exceptions.ConnectionError):
            await budget.try_acquire()
        await budget.aclose()

    run(main(), timeout=10)


def test_a_renewal_after_a_release_does_not_bring_the_lease_back(redis_url: str) -> None:
    """The heartbeat may renew a lease that was released a moment before (its list of leases
    was read first): the slot must still come back ``after`` the release, not a TTL later."""

    async def main() -> None:
        budget = RedisBudget(redis_url, 1, name="renew-after-release", lease_ttl=30)
        lease = await budget.try_acquire()
        assert lease is not None
        await budget.release(lease, after=0.5)
        await budget._renew(keys=[budget.key], args=[budget._ttl_ms, lease.id])  # in flight
        await asyncio.sleep(1.0)
        assert await budget.held() == 0
        await budget.aclose()

    run(main())


def test_a_budget_used_from_another_event_loop_says_what_to_do(redis_url: str) -> None:
    """The Redis client belongs to the loop it was first used on: a second loop (another
    BlockingWarmPool's, in a thread of its own) gets a clear error, not a hang or a client
    error from deep inside."""

    async def main() -> None:
        budget = RedisBudget(redis_url, 2, name="two-loops")
        lease = await budget.try_acquire()
        assert lease is not None
        with pytest.raises(RuntimeError, match="a RedisBudget of its own"):
            await asyncio.to_thread(asyncio.run, budget.try_acquire())
        await budget.release(lease)
        await budget.aclose()

    run(main())
