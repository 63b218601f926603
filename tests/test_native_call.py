"""run_to_end: a call that neither a cancelled caller nor an ending loop can stop half-way,
and whose own timeouts still bound it."""

from __future__ import annotations

import asyncio

from warmrtc._media.native_call import outcome, run_to_end


def test_an_ending_loop_waits_for_the_call_to_finish() -> None:
    finished: list[str] = []

    async def call() -> None:
        await asyncio.sleep(0.2)
        finished.append("call")

    async def main() -> None:
        run_to_end(call())
        await asyncio.sleep(0.01)  # asyncio.run() ends with the call in flight

    asyncio.run(main())
    assert finished == ["call"]


def test_a_cancelled_caller_gives_up_but_the_call_goes_on() -> None:
    async def call() -> str:
        await asyncio.sleep(0.1)
        return "done"

    async def main() -> tuple[bool, str, bool]:
        task = run_to_end(call())
        waiter = asyncio.ensure_future(outcome(task))
        await asyncio.sleep(0.01)
        refused = task.cancel()
        waiter.cancel()
        caller_cancelled = False
        try:
            await waiter
        except asyncio.CancelledError:
            caller_cancelled = True
        return refused, await outcome(task), caller_cancelled

    refused, result, caller_cancelled = asyncio.run(main())
    assert refused is False and result == "done" and caller_cancelled


def test_an_error_in_the_call_reaches_whoever_awaits_it() -> None:
    async def call() -> None:
        raise ValueError("native refusal")

    async def main() -> None:
        await outcome(run_to_end(call()))

    try:
        asyncio.run(main())
    except ValueError as e:
        assert str(e) == "native refusal"
    else:
        raise AssertionError("the error was lost")


def test_a_failed_call_nobody_awaits_is_not_reported_at_loop_end() -> None:
    reported: list[object] = []

    async def call() -> None:
        await asyncio.sleep(0.05)
        raise ConnectionError("the room refused")

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: reported.append(ctx))
        run_to_end(call())
        await asyncio.sleep(0.01)  # the loop ends with the call in flight; it then fails

    asyncio.run(main())
    assert reported == []


def test_a_timeout_inside_the_call_still_ends_its_block() -> None:
    async def main() -> tuple[bool, str | None]:
        release = asyncio.Event()

        async def call() -> str:
            try:
                async with asyncio.timeout(0.1):
                    await release.wait()
            except TimeoutError:
                return "timed out"
            return "released"

        task = run_to_end(call())
        done, _ = await asyncio.wait({task}, timeout=2)
        release.set()  # an unbounded call ends here: a failing test ends too
        return bool(done), await outcome(task)

    timed, value = asyncio.run(main())
    assert timed and value == "timed out"


def test_wait_for_inside_the_call_is_bounded_too() -> None:
    async def main() -> tuple[bool, str]:
        release = asyncio.Event()

        async def call() -> str:
            try:
                await asyncio.wait_for(release.wait(), 0.1)
            except TimeoutError:
                return "timed out"
            return "released"

        task = run_to_end(call())
        done, _ = await asyncio.wait({task}, timeout=2)
        release.set()
        return bool(done), await outcome(task)

    timed, value = asyncio.run(main())
    assert timed and value == "timed out"
