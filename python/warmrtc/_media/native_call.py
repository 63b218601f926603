"""Awaiting a livekit call that must run to its end, whatever happens to its caller.

Some livekit calls cannot be called off once the request has reached the FFI. A room join is
the sharpest case: the native side joins regardless, then waits for the SDK to say it is ready
for the room's events; if the awaiting coroutine was cancelled in between, nobody ever says so,
and about 16 s later livekit's FFI declares a panic and terminates the whole process (SIGTERM
to itself). A cancelled caller is one thing (shield it); an event loop that ends with the call in
flight is another: ``asyncio.run()`` cancels every task left, shielded ones too. So the call
runs in a task that cancel() does not stop; ``asyncio.run()`` then waits for it to finish (livekit
bounds its own join), and the caller's clean-up leaves the room afterwards. The task ends with
the call's value or error as a pair, never with an exception: nobody may be awaiting it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


# asyncio.timeout() (and wait_for, built on it from 3.12 on) bounds its block by cancelling the
# task it runs in: the one cancel a task that runs to its end must still obey, or every bound
# inside the call is gone (a leave's, a close's) and the loop's end waits for ever.
_TIMEOUT_EXPIRED = asyncio.timeouts.Timeout._on_timeout.__code__  # type: ignore[attr-defined]


class _RunsToEnd(asyncio.Task):  # type: ignore[type-arg]
    """A task that ignores cancel() from outside: whoever awaits it through a shield may give
    up, but the call itself always finishes. A timeout inside the call still ends its block."""

    def cancel(self, msg: Any = None) -> bool:
        if sys._getframe(1).f_code is _TIMEOUT_EXPIRED:
            return super().cancel(msg)
        return False


async def _settled(call: Coroutine[Any, Any, T]) -> tuple[T | None, BaseException | None]:
    # The call's error is carried as a value: a task that ends with an exception nobody awaits
    # any more is reported as unhandled when its loop ends.
    try:
        return await call, None
    except Exception as e:
        return None, e


Settling = asyncio.Task[tuple[Any, BaseException | None]]


def run_to_end(call: Coroutine[Any, Any, T]) -> Settling:
    """``call`` as a task that runs to its end even when cancelled or when its loop is ending.
    Await its result with :func:`outcome` (which stays cancellable itself)."""
    return _RunsToEnd(_settled(call), loop=asyncio.get_running_loop())


async def outcome(task: Settling) -> Any:
    """The call's value, or its error raised; cancelling this leaves the call running."""
    value, error = await asyncio.shield(task)
    if error is not None:
        raise error
    return value


__all__ = ["Settling", "outcome", "run_to_end"]
