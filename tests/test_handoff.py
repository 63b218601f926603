"""Handoff: items from a producer thread reach the loop in order, a busy loop keeps only the
newest few (the dropped ones counted), and nothing is delivered after close()."""

from __future__ import annotations

import asyncio
import threading

import pytest

from warmrtc._media.handoff import Handoff


def test_items_from_another_thread_arrive_in_order_on_the_loop() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        got: list[tuple[int, bool]] = []
        done = asyncio.Event()

        def deliver(item: int) -> None:
            got.append((item, threading.current_thread() is threading.main_thread()))
            if item == 99:
                done.set()

        handoff = Handoff(loop, deliver, depth=200)

        def produce() -> None:
            for i in range(100):
                handoff.put(i)

        producer = threading.Thread(target=produce)
        producer.start()
        await asyncio.wait_for(done.wait(), 5)
        producer.join(5)
        assert got == [(i, True) for i in range(100)]
        assert handoff.dropped == 0

    asyncio.run(run())


def test_a_busy_loop_gets_the_newest_items_and_the_rest_are_counted() -> None:
    async def run() -> None:
        got: list[int] = []
        handoff = Handoff(asyncio.get_running_loop(), got.append, depth=4)
        for i in range(10):  # the loop is busy (it runs this): nothing is delivered yet
            handoff.put(i)
        assert not got
        await asyncio.sleep(0)
        assert got == [6, 7, 8, 9]
        assert handoff.dropped == 6
        handoff.put(10)
        await asyncio.sleep(0)
        assert got[-1] == 10 and handoff.dropped == 6

    asyncio.run(run())


def test_nothing_is_delivered_after_close() -> None:
    async def run() -> None:
        got: list[int] = []
        handoff = Handoff(asyncio.get_running_loop(), got.append, depth=4)
        handoff.put(1)
        handoff.close()
        handoff.put(2)
        await asyncio.sleep(0.01)
        assert got == []

    asyncio.run(run())


def test_a_closed_loop_is_an_error_for_the_producer() -> None:
    loop = asyncio.new_event_loop()
    handoff: Handoff[int] = Handoff(loop, lambda _item: None, depth=2)
    loop.close()
    with pytest.raises(RuntimeError):
        handoff.put(1)


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

        handoff = Handoff(loop, deliver, depth=4)
        for i in (1, 2, 3):
            handoff.put(i)
        await asyncio.sleep(0.01)
        assert got == [1, 2, 3]
        assert len(errors) == 1 and isinstance(errors[0], ValueError)

    asyncio.run(run())


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_a_bad_depth_is_refused(depth: object) -> None:
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(ValueError, match=f"depth must be an int >= 1, got {depth!r}"):
            Handoff(loop, lambda _item: None, depth=depth)  # type: ignore[arg-type]
    finally:
        loop.close()
