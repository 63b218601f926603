"""Awaiting a livekit call that must run to its end, whatever happens to its caller.

Some livekit calls cannot be called off once the request has reached the FFI. A room join is
the sharpest case: the native side joins regardless, then waits for the SDK to say it is ready
for the room's events; if the awaiting coroutine was cancelled in between, nobody ever says so,
and about 16 s later livekit's FFI declares a panic and terminates the whole process (SIGTERM
to itself). A cancelled caller is one thing (shield it); an event loop that ends with the call in
flight is another: ``asyncio.run()`` cancels every task left, shielded ones too. So the call
runs in a task that cancel() does not stop; ``asyncio.run()`` then waits for it to finish (livekit
bounds its own join), and the caller's clean-up leaves the room afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _RunsToEnd(asyncio.Task):  # type: ignore[type-arg]
    """A task that ignores cancel(): whoever awaits it through a shield may give up, but the
    call itself always finishes."""

    def cancel(self, msg: Any = None) -> bool:
        return False


def run_to_end(call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``call`` as a task that runs to its end even when cancelled or when its loop is ending.
    Await it through ``asyncio.shield`` to stay cancellable yourself."""
    return _RunsToEnd(call, loop=asyncio.get_running_loop())


__all__ = ["run_to_end"]
