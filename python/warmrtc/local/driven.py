"""A session driven one command at a time, for tests and benchmarks that change the link under
it: the client runs on the client side of a link (``python -m warmrtc.local.driven URL KEY``),
the test or benchmark drives it with :class:`DrivenSession`.

The client connects muted, starts capturing a moving pattern, prints its first answer
(``{"ready": session_id}``), then answers each command on its standard input with one JSON line
(times are ``time.monotonic()``, the machine's clock: the driver reads the same one):

- ``unmute``: goes live and answers once the first generated frame after it arrived
  (``{"first": t}``; ``{"first": null}`` after 30 s without one);
- ``mute``: ``{"ok": true}``;
- ``report``: every generated frame's arrival, each state with its reason and the session id
  then in force, each reconnect attempt, warmrtc's log lines (INFO and up), and the
  session's id, mute, billed seconds now;
- ``stats``: ``session.stats()`` as a dict (``{"stats": null, "error": ...}`` if it failed);
- ``quit`` (or the end of its input): disconnects, answers a last ``report`` and exits.

A command it does not know is answered ``{"error": ...}``. The client's whole run is bounded
(:data:`RUN_BOUND`), and so is every wait of the driver.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import queue
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import numpy as np

from .._protocol.endpoints import API_KEY_HEADER, SESSIONS_PATH, http_base
from ..events import Event, ReconnectEvent, StateChangeEvent
from ..session import Session, connect
from ..source import VideoSource
from .demo import Camera
from .link import ClientLink
from .pattern import moving_pattern

RUN_BOUND = 600.0  # seconds: the client's whole run
FIRST_FRAME_WAIT = 30.0
READY_WAIT = 60.0  # seconds the driver waits for the client to connect
ANSWER_WAIT = 40.0


# ---- the client ------------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.log: list[tuple[float, str, str]] = []  # warmrtc's log lines, with their time
        self.frames: list[float] = []
        self.states: list[tuple[float, str, str, str | None]] = []
        self.reconnects: list[tuple[float, int, str | None]] = []
        self.session: Session | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.log.append((time.monotonic(), record.levelname, record.getMessage()))

    def on_frame(self, _frame: object) -> None:
        self.frames.append(time.monotonic())

    def on_event(self, event: Event) -> None:
        now = time.monotonic()
        if isinstance(event, StateChangeEvent):
            sid = self.session.session_id if self.session is not None else None
            self.states.append((now, str(event.new), event.reason, sid))
        elif isinstance(event, ReconnectEvent):
            error = None if event.error is None else str(event.error)
            self.reconnects.append((now, event.attempt, error))

    def report(self) -> dict[str, Any]:
        session = self.session
        return {
            "frames": list(self.frames),
            "states": list(self.states),
            "reconnects": list(self.reconnects),
            "log": list(self.log),
            "session_id": session.session_id if session else None,
            "muted": session.muted if session else None,
            "billed": session.billed_seconds if session else None,
            "state": str(session.state) if session else None,
        }


def _read_commands(loop: asyncio.AbstractEventLoop, commands: asyncio.Queue[str]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(commands.put_nowait, line.strip())
    loop.call_soon_threadsafe(commands.put_nowait, "quit")  # the driver is gone


def _answer(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


async def _serve(session: Session, rec: _Recorder, commands: asyncio.Queue[str]) -> None:
    while True:
        command = await commands.get()
        if command == "unmute":
            since = time.monotonic()
            session.unmute()
            deadline = since + FIRST_FRAME_WAIT
            while not (rec.frames and rec.frames[-1] >= since) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            _answer({"first": next((t for t in rec.frames if t >= since), None)})
        elif command == "mute":
            session.mute()
            _answer({"ok": True})
        elif command == "report":
            _answer(rec.report())
        elif command == "stats":
            try:
                stats = dataclasses.asdict(await session.stats())
            except Exception as e:  # the answer says so; the driver decides
                _answer({"stats": None, "error": repr(e)})
            else:
                _answer({"stats": stats})
        elif command == "quit":
            await session.disconnect()
            _answer(rec.report())
            return
        else:
            _answer({"error": f"unknown command {command!r}"})


def _busy(frames: Iterator[np.ndarray], seed: int = 1) -> Iterator[np.ndarray]:
    """``frames`` with noise over their left half, new each frame (eight tiles in turn, made
    once): about as hard to encode as a camera's picture (the pattern alone takes a tenth of
    the bits), so the encoder wants more than a mobile uplink carries."""
    rng = np.random.default_rng(seed)
    tiles: list[np.ndarray] = []
    for frame in frames:
        if not tiles:
            shape = (frame.shape[0], frame.shape[1] // 2, frame.shape[2])
            tiles = [rng.integers(0, 256, shape, np.uint8) for _ in range(8)]
            turn = itertools.cycle(tiles)
        frame[:, : frame.shape[1] // 2] = next(turn)
        yield frame


async def _client(url: str, key: str, width: int, height: int, fps: int, busy: bool) -> None:
    source = VideoSource(width, height, fps=fps)
    frames = moving_pattern(width, height)
    camera = Camera(source, _busy(frames) if busy else frames, fps=fps, max_seconds=RUN_BOUND)
    camera.start()
    rec = _Recorder()
    logging.getLogger("warmrtc").addHandler(rec)
    logging.getLogger("warmrtc").setLevel(logging.INFO)
    commands: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    threading.Thread(target=_read_commands, args=(loop, commands), daemon=True).start()
    try:
        session = await connect(
            source,
            api_key=key,
            base_url=url,
            start_muted=True,
            on_frame=rec.on_frame,
            on_event=rec.on_event,
        )
        rec.session = session
        _answer({"ready": session.session_id})
        try:
            await _serve(session, rec, commands)
        finally:
            await session.disconnect()
    finally:
        camera.stop.set()
        camera.join(5)
        source.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m warmrtc.local.driven")
    parser.add_argument("url")
    parser.add_argument("key")
    parser.add_argument("--size", default="320x240", help="WxH of the captured pattern")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--busy", action="store_true", help="camera-like bits (see _busy)")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))
    client = _client(args.url, args.key, width, height, args.fps, args.busy)
    asyncio.run(asyncio.wait_for(client, RUN_BOUND))


# ---- the driver ------------------------------------------------------------------------------


class DrivenSession:
    """The client above behind ``link``: ``ask("report")`` and friends, each answered within
    ``timeout`` seconds or an AssertionError that carries the client's last log lines."""

    def __init__(
        self,
        link: ClientLink,
        url: str,
        key: str,
        *,
        size: str = "320x240",
        fps: int = 30,
        busy: bool = False,
    ) -> None:
        command = [sys.executable, "-m", __name__, url, key, "--size", size, "--fps", str(fps)]
        command += ["--busy"] * busy
        self.proc = subprocess.Popen(
            link.command(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**link.environment(), "PYTHONUNBUFFERED": "1"},
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_answers, daemon=True),
            threading.Thread(target=self._read_log, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            self.session_id: str = self._next(READY_WAIT)["ready"]
        except BaseException:
            self.close()
            raise

    def _read_answers(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout:g} s:\n{self.tail()}") from None
        if line is None:
            raise AssertionError(f"the client ended ({self.proc.poll()}):\n{self.tail()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def tail(self, lines: int = 40) -> str:
        """The client's last lines on its standard error."""
        return "\n".join(self.log[-lines:])

    def ask(self, command: str, timeout: float = ANSWER_WAIT) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._next(timeout)

    def wait_for(self, what: str, check: Any, bound: float, poll: float = 0.1) -> dict[str, Any]:
        """The first ``report`` for which ``check(report)`` is true, asked every ``poll``
        seconds; AssertionError after ``bound`` seconds."""
        deadline = time.monotonic() + bound
        while True:
            report = self.ask("report")
            if check(report):
                return report
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {bound:g} s; states {report['states']}")
            time.sleep(poll)

    def quit(self) -> dict[str, Any]:
        """Disconnects; the last report."""
        final = self.ask("quit")
        self.proc.wait(20)
        return final

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for thread in self._threads:
            thread.join(5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> DrivenSession:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


def frames_between(frames: list[float], start: float, end: float) -> list[float]:
    return [t for t in frames if start <= t < end]


def longest_gap(frames: list[float], start: float, end: float) -> float:
    """The longest time without a generated frame between ``start`` and ``end``."""
    inside = [start, *frames_between(frames, start, end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


def drop_service_session(base_url: str, key: str, session_id: str) -> None:
    """The local service ends the session as a network would end its socket (its
    ``--fault-injection`` endpoint)."""
    request = urllib.request.Request(
        f"{http_base(base_url)}{SESSIONS_PATH}/{session_id}/drop", method="POST"
    )
    request.add_header(API_KEY_HEADER, key)
    with urllib.request.urlopen(request, timeout=5):
        pass


def short_blackout(
    session: DrivenSession,
    link: ClientLink,
    base_url: str,
    key: str,
    seconds: float,
    *,
    live_for: float = 3.0,
    after: float = 4.0,
) -> dict[str, Any]:
    """A live session: ``live_for`` seconds, a blackout of ``seconds``, ``after`` seconds more.
    Returns when it went ``live`` (now), when the link came ``back``, the ``end``, the session's
    ``report`` and the seconds the service ``billed`` the session."""
    live = time.monotonic()
    time.sleep(live_for)
    link.control.blackout(seconds)
    back = time.monotonic() + seconds
    time.sleep(seconds + after)
    end = time.monotonic()
    report = session.ask("report")
    billed = service_sessions(base_url, key)[session.session_id]["billed_seconds"]
    return {"live": live, "back": back, "end": end, "report": report, "billed": billed}


def service_sessions(base_url: str, key: str) -> dict[str, dict[str, Any]]:
    """What the local service reports of ``key``'s sessions (GET /sessions), by session id."""
    request = urllib.request.Request(http_base(base_url) + SESSIONS_PATH)
    request.add_header(API_KEY_HEADER, key)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return {s["session_id"]: s for s in json.load(answer)}


if __name__ == "__main__":
    main()
