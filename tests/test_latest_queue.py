"""LatestQueue and LoopDelivery: the one hand-off between threads and loops. Producers never
wait, the newest items are kept (the dropped ones counted and handed back), and a consumer on a
loop takes one item per turn, so a slow callback cannot hold the loop's timers."""

from __future__ import annotations

import asyncio
import queue
import threading
import time

import pytest

from warmrtc._media.latest_queue import Ended, LatestQueue, LoopDelivery


def test_items_from_another_thread_arrive_in_order_on_the_loop() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[int, bool]] = []
        done = asyncio.Event()

        def deliver(item: int) -> None:
            got.append((item, threading.current_thread() is threading.main_thread()))
            if item == 99:
                done.set()

        delivery = LoopDelivery(loop, deliver, depth=200)

        def produce() -> None:
            for i in range(100):
                delivery.put(i)

        producer = threading.Thread(target=produce)
        producer.start()
        await asyncio.wait_for(done.wait(), 5)
        producer.join(5)
        assert got == [(i, True) for i in range(100)]
        assert delivery.dropped == 0

    asyncio.run(run())


def test_a_busy_loop_gets_the_newest_items_and_the_rest_are_counted() -> None:
    async def run() -> None:
        got: list[int] = []
        delivery = LoopDelivery(asyncio.get_running_loop(), got.append, depth=4)
        for i in range(10):  # the loop is busy (it runs this): nothing is delivered yet
            delivery.put(i)
        assert not got
        for _ in range(10):
            await asyncio.sleep(0)
        assert got == [6, 7, 8, 9]
        assert delivery.dropped == 6
        delivery.put(10)
        for _ in range(3):
            await asyncio.sleep(0)
        assert got[-1] == 10 and delivery.dropped == 6

    asyncio.run(run())


def test_a_slow_callback_costs_frames_not_the_loops_timers() -> None:
    """A 40 ms callback fed 30 frames a second: a 0.1 s timer on the same loop comes back
    after at most the one callback under way when it fell due, and the frames beyond the
    newest four are dropped and counted (before, the loop stayed in one delivery as long as
    frames kept coming). Counted in deliveries, not milliseconds: a loaded machine stretches
    both alike."""
    callback_s = 0.04

    async def run() -> tuple[int, int, int, int]:
        loop = asyncio.get_running_loop()
        starts: list[float] = []

        def slow(_item: int) -> None:
            starts.append(loop.time())
            time.sleep(callback_s)

        delivery = LoopDelivery(loop, slow, depth=4)
        produced = 0

        def produce() -> None:
            nonlocal produced
            end = time.monotonic() + 3
            while time.monotonic() < end:
                delivery.put(produced)
                produced += 1
                time.sleep(1 / 30)

        producer = threading.Thread(target=produce)
        producer.start()
        most_in_between = 0
        for _ in range(20):
            due = loop.time() + 0.1
            await asyncio.sleep(0.1)
            woke = loop.time()
            # Deliveries that began after the timer fell due and before its task ran.
            most_in_between = max(most_in_between, sum(due < s < woke for s in starts))
        await asyncio.to_thread(producer.join, 10)
        delivery.close()
        return most_in_between, len(starts), delivery.dropped, produced

    in_between, delivered, dropped, produced = asyncio.run(asyncio.wait_for(run(), 60))
    assert in_between <= 1, f"{in_between} deliveries ran between a due timer and its task"
    assert dropped > 0 and delivered + dropped <= produced


def test_nothing_is_delivered_after_close() -> None:
    async def run() -> None:
        got: list[int] = []
        delivery = LoopDelivery(asyncio.get_running_loop(), got.append, depth=4)
        delivery.put(1)
        delivery.close()
        delivery.put(2)
        await asyncio.sleep(0.01)
        assert got == []

    asyncio.run(run())


def test_a_closed_loop_lets_the_producer_go_on() -> None:
    """The receive thread may still put after the app's loop is gone: the item is let go."""
    loop = asyncio.new_event_loop()
    dropped: list[int] = []
    delivery = LoopDelivery(loop, lambda _item: None, depth=2, on_drop=dropped.append)
    loop.close()
    delivery.put(1)
    delivery.put(2)
    assert dropped == [1, 2]


def test_a_delivery_that_raises_does_not_stop_the_ones_after_it() -> None:
    async def run() -> None:
        got: list[int] = []
        errors: list[object] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: errors.append(context.get("exception")))

        def deliver(item: int) -> None:
            got.append(item)
            if item == 1:
                raise ValueError("the first one")

        delivery = LoopDelivery(loop, deliver, depth=4)
        for i in (1, 2, 3):
            delivery.put(i)
        await asyncio.sleep(0.01)
        assert got == [1, 2, 3]
        assert len(errors) == 1 and isinstance(errors[0], ValueError)

    asyncio.run(run())


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_a_bad_depth_is_refused(depth: object) -> None:
    with pytest.raises(ValueError, match=f"depth must be an int >= 1, got {depth!r}"):
        LatestQueue(depth)  # type: ignore[arg-type]


def test_dropped_items_are_handed_back_and_counted() -> None:
    back: list[int] = []
    q: LatestQueue[int] = LatestQueue(2, on_drop=back.append)
    for i in range(5):
        q.put(i)
    assert back == [0, 1, 2] and q.dropped == 3
    q.close(discard=True)  # what was held goes back too
    assert back == [0, 1, 2, 3, 4] and q.dropped == 5
    q.put(5)  # after the end
    assert back[-1] == 5
    with pytest.raises(Ended):
        q.get_nowait()


def test_a_closed_queue_gives_what_it_holds_then_ends() -> None:
    q: LatestQueue[int] = LatestQueue(4)
    q.put(1)
    q.close()
    assert q.get_blocking(1) == 1
    with pytest.raises(Ended):
        q.get_blocking(1)


def test_a_blocking_get_is_bounded() -> None:
    q: LatestQueue[int] = LatestQueue(4)
    started = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get_blocking(0.1)
    assert time.monotonic() - started < 5


def test_a_blocking_get_wakes_for_a_put_from_another_thread() -> None:
    q: LatestQueue[int] = LatestQueue(4)
    threading.Timer(0.05, q.put, (7,)).start()
    assert q.get_blocking(5) == 7


def test_an_async_get_wakes_for_a_put_from_another_thread_and_can_be_cancelled() -> None:
    async def run() -> None:
        q: LatestQueue[int] = LatestQueue(4)
        threading.Timer(0.05, q.put, (7,)).start()
        assert await asyncio.wait_for(q.get(), 5) == 7
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(q.get(), 0.05)
        q.put(8)  # the cancelled waiter is gone: nothing is lost
        assert await asyncio.wait_for(q.get(), 5) == 8
        q.close()
        with pytest.raises(Ended):
            await q.get()

    asyncio.run(run())


def test_warnings_name_the_queue(caplog: pytest.LogCaptureFixture) -> None:
    q: LatestQueue[int] = LatestQueue(1, name="a test reader", warn=True)
    for i in range(3):
        q.put(i)
    assert "a test reader is not keeping up: 1 dropped" in caplog.text
