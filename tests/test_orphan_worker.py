"""A model worker whose emulator is gone exits, even when leaving its room never ends.

Nobody else is left to kill it then (the emulator kills a worker that takes too long to leave,
but only while it runs). Workers whose room disconnect never returned once outlived the
emulator for good, and kept its forkserver alive with them. Here the participant's leave()
hangs (standing in for livekit's disconnect), and the emulator's end of the pipe closes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import time

from warmrtc._protocol.models import RealtimeModel
from warmrtc.emulator import inference, worker

EXIT_AFTER = 0.5  # seconds the orphaned worker gives its leave() here


class _StuckParticipant:
    def __init__(self, *_args: object, **_kwargs: object) -> None:
        pass

    async def leave(self) -> None:
        await asyncio.Event().wait()  # never returns


def _worker(conn: multiprocessing.connection.Connection) -> None:
    inference.InferenceParticipant = _StuckParticipant  # type: ignore[misc,assignment]
    model = RealtimeModel("test", 64, 64, 30)
    asyncio.run(worker._serve(conn, model, False, 0.0, False, orphan_exit=EXIT_AFTER))


def test_an_orphaned_worker_exits_though_leaving_hangs() -> None:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_worker, args=(theirs,))
    child.start()
    theirs.close()
    try:
        time.sleep(0.5)
        assert child.is_alive(), f"the worker ended before its emulator did: {child.exitcode}"
        ours.close()  # the emulator is gone
        child.join(EXIT_AFTER + 10)
        assert not child.is_alive(), "the orphaned worker is still running"
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)
