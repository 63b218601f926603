"""WarmPool under limits: a budget, the service's concurrency limit, slot release delays and a
session duration, against a fake service (no network): connect is replaced by one that counts
open sessions and refuses past a limit, freeing a slot ``release_delay`` after a disconnect."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Coroutine
from typing import Any

import pytest

import warmrtc
from warmrtc import pool as pool_module
from warmrtc.budget import LocalBudget
from warmrtc.config import SessionConfig
from warmrtc.errors import (
    ConcurrencyLimitError,
    ConnectionLostError,
    PoolCapacityError,
    SessionEndedError,
)
from warmrtc.source import VideoSource

SMALL = {"width": 64, "height": 48, "api_key": "k"}
DELAY = 0.3  # the fake service frees a slot this long after a disconnect


class FakeService:
    def __init__(self, limit: int | None = None, release_delay: float = DELAY) -> None:
        self.limit = limit
        self.release_delay = release_delay
        self.slots = 0  # held, as the service counts them (freed release_delay after the end)
        self.most = 0
        self.attempts: list[float] = []
        self.refusals = 0
        self.freed_at: list[float] = []
        self.opened_at: list[float] = []
        self._ids = itertools.count()

    async def connect(
        self, source: VideoSource, _config: SessionConfig, *, start_muted: bool
    ) -> Any:
        assert start_muted
        self.attempts.append(time.monotonic())
        await asyncio.sleep(0.01)
        if self.limit is not None and self.slots >= self.limit:
            self.refusals += 1
            raise ConcurrencyLimitError("Concurrent session limit reached.")
        self.slots += 1
        self.most = max(self.most, self.slots)
        self.opened_at.append(time.monotonic())
        return FakeSession(self, source, f"s{next(self._ids)}")

    async def free_later(self) -> None:
        await asyncio.sleep(self.release_delay)
        self.slots -= 1
        self.freed_at.append(time.monotonic())


class FakeSession:
    def __init__(self, service: FakeService, source: VideoSource, sid: str) -> None:
        self.service, self.source, self.session_id = service, source, sid
        self.state = "connected"
        self.last_error: Exception | None = None
        self.connected_at = time.monotonic()
        self.ended_at: float | None = None
        self._freeing: asyncio.Task[None] | None = None

    async def disconnect(self) -> None:
        if self.state == "disconnected":
            return
        self.state = "disconnected"
        self.ended_at = time.monotonic()
        self._freeing = asyncio.get_running_loop().create_task(self.service.free_later())


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    fake = FakeService()
    monkeypatch.setattr(pool_module, "connect", fake.connect)
    return fake


def run(coro: Coroutine[Any, Any, None], timeout: float = 20) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def test_a_pool_of_3_under_a_limit_of_2_holds_2_says_why_and_does_not_hammer(
    service: FakeService,
) -> None:
    service.limit = 2

    async def main() -> None:
        async with warmrtc.WarmPool(3, release_delay=DELAY, **SMALL) as pool:
            await pool.wait_warm(5, count=2)
            await asyncio.sleep(2.0)
            stats = pool.stats
            assert (stats.warm, stats.in_use) == (2, 0)
            assert stats.capacity_refusals >= 1 and service.refusals == stats.capacity_refusals
            assert stats.held_back is not None and "concurrency limit" in stats.held_back
            assert "Concurrent session limit reached." in (stats.last_error or "")
            # Backing off from DELAY, doubling: tries near 0, 0.3, 0.9, 2.1 s; not a hot loop.
            assert service.refusals <= 4, service.attempts
            async with pool.acquire(0), pool.acquire(0):
                with pytest.raises(PoolCapacityError, match="concurrency limit"):
                    async with pool.acquire(0):
                        pass
        assert service.most == 2

    run(main())


def test_a_budget_caps_warm_plus_in_use_and_waits_for_the_slot_release(
    service: FakeService,
) -> None:
    async def main() -> None:
        async with warmrtc.WarmPool(3, budget=2, release_delay=DELAY, **SMALL) as pool:
            await pool.wait_warm(5, count=2)
            await asyncio.sleep(0.8)
            stats = pool.stats
            assert (stats.warm, stats.budget, stats.budget_held) == (2, 2, 2)
            assert stats.waiting_for_budget == 1 and stats.capacity_refusals == 0
            assert stats.held_back is not None and "budget is full" in stats.held_back
            async with pool.acquire(0) as session:
                ended = session
                assert pool.stats.warm == 1
            # The replacement waited for the slot of the session just released.
            await pool.wait_warm(5, count=2)
            assert ended.ended_at is not None
            later = [t for t in service.opened_at if t > ended.ended_at]
            assert later and later[0] - ended.ended_at >= DELAY * 0.9
        assert service.most == 2 and service.refusals == 0

    run(main())


def test_pools_sharing_a_budget_never_hold_more_than_it(service: FakeService) -> None:
    async def main() -> None:
        budget = LocalBudget(3)
        opts: dict[str, Any] = {"budget": budget, "release_delay": DELAY, **SMALL}
        async with warmrtc.WarmPool(2, **opts) as a, warmrtc.WarmPool(2, **opts) as b:
            await asyncio.sleep(1.0)
            assert a.stats.warm + b.stats.warm == 3
            assert await budget.held() == 3
            for _ in range(4):  # use whichever pool holds a warm one; the other may not
                pool = a if a.stats.warm else b
                async with pool.acquire(5):
                    await asyncio.sleep(0.2)
                    assert service.slots <= 3 and await budget.held() <= 3
        assert service.most == 3
        await asyncio.sleep(DELAY + 0.1)
        assert await budget.held() == 0  # the slots were given back after the release delay

    run(main())


def test_warm_sessions_are_recycled_before_max_session_duration(service: FakeService) -> None:
    async def main() -> None:
        async with warmrtc.WarmPool(
            2, max_session_duration=1.0, release_delay=0.05, **SMALL
        ) as pool:
            await pool.wait_warm(5)
            first = {w.session for w in pool._warm}
            await asyncio.sleep(2.2)
            assert pool.stats.recycled >= 2
            for session in first:
                assert session.ended_at is not None
                assert session.ended_at - session.connected_at < 1.0  # before the service ends it

    run(main())


def test_a_lost_session_holds_its_slot_for_the_crash_release_delay(service: FakeService) -> None:
    async def main() -> None:
        async with warmrtc.WarmPool(
            1, budget=1, release_delay=0.05, crash_release_delay=1.0, **SMALL
        ) as pool:
            await pool.wait_warm(5)
            lost = pool._warm[0].session
            lost.state = "disconnected"  # dropped by the network
            lost.last_error = ConnectionLostError("the control channel failed")
            dropped = time.monotonic()
            await pool.wait_warm(5)
            assert pool.stats.warm == 1
            assert service.opened_at[-1] - dropped >= 0.9

    run(main())


@pytest.mark.parametrize(
    "ended_by",
    [None, SessionEndedError("the service ended the session: timeout", "timeout")],
    ids=["the-app", "the-service"],
)
def test_a_session_that_ended_cleanly_frees_its_slot_after_the_release_delay(
    service: FakeService, ended_by: Exception | None
) -> None:
    """Disconnected inside the block by the app, or ended by the service on purpose: the
    service frees the slot after release_delay, not crash_release_delay."""

    async def main() -> None:
        async with warmrtc.WarmPool(
            1, budget=1, release_delay=0.05, crash_release_delay=5.0, **SMALL
        ) as pool:
            await pool.wait_warm(5)
            async with pool.acquire() as session:
                await session.disconnect()
                session.last_error = ended_by
            ended = time.monotonic()
            await pool.wait_warm(5)
            assert service.opened_at[-1] - ended < 2.0  # not the crash delay

    run(main())


def test_acquire_takes_a_warm_session_back_from_reconnecting_at_once(
    service: FakeService,
) -> None:
    """The only warm session was reconnecting when acquire() began: it is handed out as soon
    as it is connected again, not after the whole timeout."""

    async def main() -> None:
        async with warmrtc.WarmPool(1, **SMALL) as pool:
            await pool.wait_warm(5)
            warm = pool._warm[0].session
            warm.state = "reconnecting"

            async def back() -> None:
                await asyncio.sleep(0.3)
                warm.state = "connected"

            back_task = asyncio.create_task(back())
            started = time.monotonic()
            async with pool.acquire(timeout=10) as session:
                assert session is warm
            assert time.monotonic() - started < 2.0
            await back_task

    run(main())


def test_local_budget_counts_a_released_slot_until_its_delay_ends() -> None:
    async def main() -> None:
        budget = LocalBudget(1)
        lease = await budget.try_acquire()
        assert lease is not None and await budget.try_acquire() is None
        await budget.release(lease, after=0.2)
        assert await budget.held() == 1 and await budget.try_acquire() is None
        await asyncio.sleep(0.25)
        assert await budget.held() == 0
        again = await budget.try_acquire()
        assert again is not None
        await budget.aclose()
        assert await budget.held() == 0

    run(main())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"budget": 0}, ValueError, "limit must be an int >= 1"),
        ({"budget": True}, TypeError, "budget must be"),
        ({"budget": "2"}, TypeError, "budget must be"),
        ({"release_delay": -1}, ValueError, "release_delay"),
        ({"crash_release_delay": float("inf")}, ValueError, "crash_release_delay"),
        ({"release_delay": "5"}, TypeError, "release_delay"),
        ({"max_session_duration": 0}, ValueError, "max_session_duration"),
        ({"max_session_duration": "60"}, TypeError, "max_session_duration"),
    ],
)
def test_bad_limits_raise_at_once(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        warmrtc.WarmPool(1, **SMALL, **options)


def test_bad_wait_and_acquire_arguments_raise(service: FakeService) -> None:
    async def main() -> None:
        async with warmrtc.WarmPool(2, **SMALL) as pool:
            with pytest.raises(ValueError, match="count"):
                await pool.wait_warm(1, count=3)
            with pytest.raises(ValueError, match="timeout"):
                async with pool.acquire(-1):
                    pass

    run(main())


def test_local_budget_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="limit"):
        LocalBudget(-1)
    budget = LocalBudget(1)

    async def main() -> None:
        lease = await budget.try_acquire()
        assert lease is not None
        with pytest.raises(ValueError, match="after"):
            await budget.release(lease, after=-1)

    run(main())


def test_a_local_budget_shared_by_pools_on_two_loops_never_exceeds_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BlockingWarmPools each run a loop in a thread of their own: one LocalBudget given to
    several of them is used from several threads at once. Making a lease's id lets other
    threads run (as reading the system's randomness may), which widens the window between
    the check of the limit and the lease's entry."""
    import secrets
    import sys
    import threading

    make_id = secrets.token_hex

    def slow_id(n: int) -> str:
        time.sleep(0)
        return make_id(n)

    monkeypatch.setattr(secrets, "token_hex", slow_id)
    budget = LocalBudget(3)
    holding = [0]  # leases held right now, counted apart from the budget
    most = [0]
    count = threading.Lock()
    errors: list[BaseException] = []

    def hammer() -> None:
        async def body() -> None:
            for _ in range(3000):
                lease = await budget.try_acquire()
                if lease is not None:
                    with count:
                        holding[0] += 1
                        most[0] = max(most[0], holding[0])
                    time.sleep(0)  # held a moment, as a warm session holds its slot
                    with count:
                        holding[0] -= 1
                    await budget.release(lease)

        try:
            asyncio.run(body())
        except BaseException as e:
            errors.append(e)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between any two steps
    try:
        threads = [threading.Thread(target=hammer) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(switch)
    assert not errors and most[0] <= 3
