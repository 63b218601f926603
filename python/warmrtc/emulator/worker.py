"""Each session's emulated model in a process of its own.

A session's inference participant (its room, peer connections, codecs and their native
threads) lives in a worker process that ends with the session, so that:

- what livekit's native teardown keeps or frees late (per-thread malloc heaps, buffers let go
  tens of seconds after the room was left) goes back to the system when the worker exits, and
  the emulator itself stays near its baseline however many sessions came and went;
- a fault in that native code (an abort while a room is torn down) ends one worker, not the
  emulator and every other session with it.

Workers are forked from a server process that has the emulator's modules imported but has not
started livekit's runtime (``multiprocessing``'s forkserver, preloaded), so a worker is ready in
milliseconds (where there is no forkserver, on Windows, workers are spawned: slower, the same
otherwise). The emulator talks to a worker over a pipe: it sends ``join``, ``release`` (the
initial state applied) and ``leave``; the worker sends ``joined`` or ``failed``, one ``frame``
per input frame (the meter counts them), ``muted`` changes, and ``left``. A worker whose pipe
closes (the emulator is gone) leaves its room and exits, within LEAVE_TIMEOUT even when leaving
hangs: nobody else is left to kill it.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing import forkserver
from multiprocessing.connection import Connection
from typing import Any

from .._protocol.models import RealtimeModel

log = logging.getLogger("warmrtc.emulator")

JOIN_TIMEOUT = 30.0  # the room join, as the client's connect bounds its own
LEAVE_TIMEOUT = 15.0  # leaving the room, then exiting; a worker that takes longer is killed
_PRELOAD = ["warmrtc.emulator.inference", "warmrtc.emulator.worker"]
_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
_context: Any = multiprocessing.get_context("forkserver" if _FORKSERVER else "spawn")
_reapers: set[asyncio.Task[None]] = set()  # workers that left, until they have exited


def start_workers() -> None:
    """Starts the server that forks workers, with the emulator's modules imported, so that the
    first session does not wait for those imports (about a second). Idempotent."""
    if _FORKSERVER:
        _context.set_forkserver_preload(_PRELOAD)
        forkserver.ensure_running()


class InferenceWorker:
    """The emulator's side of one worker: ``start`` (or ``join``) once, ``release`` when the
    initial state applied, then ``leave``. ``on_frame`` and ``on_muted`` are called on the
    emulator's loop; ``on_lost(reason)`` when the worker ended before it was asked to leave."""

    def __init__(
        self,
        model: RealtimeModel,
        on_frame: Callable[[], None],
        on_muted: Callable[[bool], None],
        on_lost: Callable[[str], None],
        *,
        echo_stamps: bool = False,
        delay: float = 0.0,
        hold: bool = False,
        log_level: int = logging.WARNING,
    ) -> None:
        self._on_frame = on_frame
        self._on_muted = on_muted
        self._on_lost = on_lost
        self._args = (model, echo_stamps, delay, log_level)
        self._hold = hold  # frames dropped before the model until release()
        self._conn: Connection | None = None
        self._process: Any = None
        # The pending command of each kind ("join", "leave") and its reply.
        self._replies: dict[str, asyncio.Future[tuple[str, str]]] = {}
        self._gone: asyncio.Future[None] | None = None  # its end of the pipe closed
        self._leaving = False
        self._reaping = False

    @property
    def pid(self) -> int | None:
        """The worker's process id, once started."""
        return self._process.pid if self._process is not None else None

    def start(self, url: str, token: str) -> asyncio.Task[None]:
        """Joins the room in the background; the task ends once the model's output is
        published, and raises ConnectionError if it could not be."""
        return asyncio.get_running_loop().create_task(self.join(url, token))

    async def join(self, url: str, token: str) -> None:
        if self._leaving:
            return  # left before it started
        start_workers()
        loop = asyncio.get_running_loop()
        ours, theirs = _context.Pipe()
        self._process = _context.Process(
            target=run_worker,
            args=(theirs, *self._args, self._hold),
            daemon=True,
            name="inference",
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        self._gone = loop.create_future()
        loop.add_reader(ours.fileno(), self._read)
        kind, detail = await self._ask(("join", url, token), JOIN_TIMEOUT)
        if kind != "joined":
            self._leaving = True
            self._reap(lost=False)  # it exits by itself; one that hangs is killed
            raise ConnectionError(detail)

    def release(self) -> None:
        """The initial state applied: the client's frames reach the model from now on."""
        self._hold = False
        if self._conn is not None and self._gone is not None and not self._gone.done():
            self._send(("release",))

    def _send(self, command: tuple[str, ...]) -> bool:
        assert self._conn is not None
        try:
            self._conn.send(command)
        except OSError:
            return False  # it is gone; its pipe's end reaches _read too
        return True

    async def _ask(self, command: tuple[str, ...], timeout: float) -> tuple[str, str]:
        """Sends a command; its reply, or ("failed", why) if the worker is gone or silent."""
        assert self._gone is not None
        kind = command[0]
        reply = self._replies[kind] = asyncio.get_running_loop().create_future()
        if self._gone.done() or not self._send(command):
            return ("failed", "the model's worker stopped")
        try:
            return await asyncio.wait_for(asyncio.shield(reply), timeout)
        except TimeoutError:
            return ("failed", f"the model's worker did not answer {kind!r} in {timeout:g} s")
        finally:
            self._replies.pop(kind, None)

    def _read(self) -> None:
        assert self._conn is not None
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            self._closed()
            return
        kind = message[0]
        if kind == "frame":
            self._on_frame()
        elif kind == "muted":
            self._on_muted(bool(message[1]))
        else:  # a reply: "joined" or "failed" to a join, "left" to a leave
            if kind == "failed":
                self._leaving = True  # it exits next: the failure is the join's to report
            reply = self._replies.get("leave" if kind == "left" else "join")
            if reply is not None and not reply.done():
                reply.set_result((kind, str(message[1]) if len(message) > 1 else ""))

    def _closed(self) -> None:
        assert self._conn is not None and self._gone is not None
        asyncio.get_running_loop().remove_reader(self._conn.fileno())
        self._conn.close()
        asked = False
        for reply in self._replies.values():  # each command's caller reports it
            if not reply.done():
                asked = True
                reply.set_result(("failed", "the model's worker stopped"))
        self._gone.set_result(None)
        if not self._leaving and not asked:  # it went by itself while live
            self._leaving = True
            self._reap(lost=True)

    async def leave(self) -> None:
        """Asks the worker to leave its room and waits (bounded) until it has; its exit is
        awaited in the background, and a worker that does not exit is killed."""
        if self._leaving:
            return
        self._leaving = True
        if self._process is None:
            return  # never started: join() sees _leaving and does not
        await self._ask(("leave",), LEAVE_TIMEOUT)
        self._reap(lost=False)

    def _reap(self, *, lost: bool) -> None:
        if self._reaping:
            return
        self._reaping = True
        task = asyncio.get_running_loop().create_task(self._exited(lost))
        _reapers.add(task)
        task.add_done_callback(_reapers.discard)

    async def _exited(self, lost: bool) -> None:
        assert self._gone is not None
        process = self._process
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), LEAVE_TIMEOUT)
        except TimeoutError:
            log.warning("a model worker did not exit within %g s: killed", LEAVE_TIMEOUT)
            process.kill()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, process.join, 5.0)
        if process.exitcode is None:  # its pipe closed, but its native teardown hangs
            process.kill()
            await loop.run_in_executor(None, process.join, 5.0)
        outcome = _describe(process.exitcode)
        if lost:
            self._on_lost(f"the model's worker stopped ({outcome})")
        elif process.exitcode != 0:
            # livekit's native teardown can abort (a WebRTC thread joining itself); the room
            # was being left anyway, and no other session shares the worker.
            log.info("a model worker ended while leaving its room: %s", outcome)


def _describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"signal {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


def run_worker(
    conn: Connection,
    model: RealtimeModel,
    echo_stamps: bool,
    delay: float,
    log_level: int,
    hold: bool,
) -> None:
    """The worker process: one inference participant, driven over ``conn``."""
    from .._media import exit_hook

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the emulator, which stops us
    logging.basicConfig(level=log_level, format="%(asctime)s %(name)s %(message)s")
    exit_hook.install()
    asyncio.run(_serve(conn, model, echo_stamps, delay, hold))


async def _serve(
    conn: Connection,
    model: RealtimeModel,
    echo_stamps: bool,
    delay: float,
    hold: bool,
    *,
    orphan_exit: float = LEAVE_TIMEOUT,
) -> None:
    from .inference import InferenceParticipant

    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def read() -> None:
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):  # the emulator is gone: leave
            loop.remove_reader(conn.fileno())
            commands.put_nowait(("leave",))
            # Seen once in a benchmark: 9 workers whose leaving never ended outlived the emulator
            # (and kept its forkserver alive) for good. A thread, so a stuck loop cannot stop it.
            exit_anyway = threading.Timer(orphan_exit, os._exit, args=(0,))
            exit_anyway.daemon = True
            exit_anyway.start()

    def send(*message: object) -> None:
        try:
            conn.send(message)
        except OSError:
            pass  # the emulator is gone; the pipe's end reaches read() too

    participant = InferenceParticipant(
        model,
        on_frame=lambda: send("frame"),
        on_muted=lambda muted: send("muted", muted),
        echo_stamps=echo_stamps,
        delay=delay,
        hold=hold,
    )

    async def join(url: str, token: str) -> None:
        try:
            await participant.start(url, token)
        except Exception as e:  # the media server is down or refused us: the emulator says so
            send("failed", str(e) or type(e).__name__)
            commands.put_nowait(("leave",))
        else:
            send("joined")

    loop.add_reader(conn.fileno(), read)
    joining: asyncio.Task[None] | None = None
    # Commands are taken while the room is joined: a release or a leave may come meanwhile.
    while (command := await commands.get())[0] != "leave":
        if command[0] == "join" and joining is None:
            joining = loop.create_task(join(command[1], command[2]))
        elif command[0] == "release":
            participant.release()
    await participant.leave()  # waits for a join under way (bounded)
    if joining is not None:  # a join that leave() cut short ended cancelled: nothing to report
        await asyncio.gather(joining, return_exceptions=True)
    send("left")
