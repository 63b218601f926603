"""warmrtc.check(): can this machine reach the service and get generated video back?

The steps, each timed, stop at the first that fails:

1. ``control``: the control channel (websocket) is reachable;
2. ``auth``: the key (and the model) are accepted: the service assigns a room;
3. ``room``: the LiveKit room is joined;
4. ``publish``: the input track is published (muted);
5. ``initial_state``: the service acknowledged the initial state (sent right behind the join,
   applied while the room is joined and the track published, acked after);
6. ``round_trip``: unmuted, a generated test pattern goes in and a generated frame comes back.

It runs the same code as :func:`warmrtc.connect`, so what passes here passes there.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np

from ._protocol.models import DEFAULT_MODEL
from .config import SessionConfig
from .errors import AuthenticationError, ModelError, WarmrtcError
from .session import Session, connect
from .source import VideoSource
from .stats import ConnectStep

STEPS = ("control", "auth", "room", "publish", "initial_state", "round_trip")
DESCRIPTIONS = {
    "control": "control channel reachable",
    "auth": "key accepted (room assigned)",
    "room": "room joined",
    "publish": "track published",
    "initial_state": "initial state acknowledged",
    "round_trip": "round trip through the model",
}
# The link's connect steps (_session.link.STEP_NAMES, in the order connect runs them), as
# the check reports them.
_LINK_STEPS = {
    "control": "control",
    "room_info": "auth",
    "room_join": "room",
    "publish": "publish",
    "initial_state": "initial_state",
}


@dataclass(frozen=True)
class CheckStep:
    """One step: ``name`` (see :data:`STEPS`), ``ok``, ``seconds`` it took, ``detail`` (why it
    failed, or what it saw)."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class CheckReport:
    """The steps that ran, in order; ``ok`` when all six passed. ``rtt_s``: one round trip to
    the service, as its websocket upgrade took (None when it was not reached); each step's time
    is also shown in those round trips."""

    steps: tuple[CheckStep, ...]
    session_id: str | None = None
    rtt_s: float | None = None

    @property
    def ok(self) -> bool:
        """True when all six steps ran and passed."""
        return len(self.steps) == len(STEPS) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> CheckStep | None:
        """The step that failed, None when all passed."""
        return next((s for s in self.steps if not s.ok), None)

    def __str__(self) -> str:
        lines = []
        if self.rtt_s:
            lines.append(f"round trip to the service: {self.rtt_s * 1000:.0f} ms")
        for step in self.steps:
            mark = "ok  " if step.ok else "FAIL"
            trips = f" {step.seconds / self.rtt_s:5.1f} RTT" if self.rtt_s else ""
            detail = f"  {step.detail}" if step.detail else ""
            lines.append(
                f"{mark} {DESCRIPTIONS[step.name]:<32} {step.seconds * 1000:7.0f} ms{trips}{detail}"
            )
        failed = self.failed
        verdict = "ok" if self.ok else f"failed at {failed.name if failed else '?'}"
        lines.append(f"verdict: {verdict}")
        return "\n".join(lines)


async def check(
    model: str = DEFAULT_MODEL,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 30,
    frames_timeout: float = 15,
) -> CheckReport:
    """Runs the connectivity check (see the module's doc); never raises for a failed step.

    ``timeout`` bounds the connect (steps 1-5), ``frames_timeout`` the round trip. Bad
    arguments raise ValueError/TypeError, as they do for :func:`warmrtc.connect`.
    """
    config = SessionConfig.of(model, api_key=api_key, base_url=base_url, timeout=timeout)
    if isinstance(frames_timeout, bool) or not isinstance(frames_timeout, int | float):
        raise TypeError(f"frames_timeout must be a number, got {type(frames_timeout).__name__}")
    if not frames_timeout > 0:
        raise ValueError(f"frames_timeout must be a positive number, got {frames_timeout!r}")
    width, height = 320, 240
    source = VideoSource(width, height, "bgr24", fps=15)
    try:
        try:
            session = await connect(source, config, start_muted=True)
        except WarmrtcError as e:  # reported as the step that failed
            return CheckReport(
                tuple(connect_steps(e.connect_steps, e)), rtt_s=_rtt(e.connect_steps)
            )
        try:
            return await _round_trip(session, source, float(frames_timeout))
        finally:
            await session.disconnect()
    finally:
        source.close()


def connect_steps(steps: tuple[ConnectStep, ...], error: BaseException | None) -> list[CheckStep]:
    """The check's steps of a connect (``Session.connect_steps``, or a failed connect's
    ``error.connect_steps``, the failed one last): all passed, or up to the one that failed."""
    done = [s for s in steps if s.ok]
    merged: dict[str, float] = {}
    for step in done:
        name = _LINK_STEPS[step.name]
        merged[name] = merged.get(name, 0.0) + step.seconds
    if error is None:
        return [CheckStep(name, True, merged.get(name, 0.0)) for name in STEPS[:-1]]
    failing = next((s for s in steps if not s.ok), None)
    failed = _LINK_STEPS[failing.name] if failing is not None else "control"
    failed_took = failing.seconds if failing is not None else 0.0
    if isinstance(error, AuthenticationError | ModelError) and failed == "control":
        # Refused at the handshake: the channel was reachable, the key or model was not.
        merged["control"], failed_took, failed = failed_took, 0.0, "auth"
    failed_took += merged.pop(failed, 0.0)
    passed = [CheckStep(name, True, merged.get(name, 0.0)) for name in STEPS[: STEPS.index(failed)]]
    return [*passed, CheckStep(failed, False, failed_took, _describe(error))]


async def _round_trip(session: Session, source: VideoSource, frames_timeout: float) -> CheckReport:
    """Connected: live, a moving test pattern in, a generated frame out."""
    steps = connect_steps(session.connect_steps, None)
    got = asyncio.Event()
    frames = session.frames()
    started = time.monotonic()
    session.unmute()

    async def feed() -> None:
        for n in range(int(frames_timeout * 15) + 1):
            source.capture(_pattern(n, source.width, source.height))
            await asyncio.sleep(1 / 15)

    async def first() -> None:
        async for _frame in frames:
            got.set()
            return

    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(frames_timeout):
            await first()
    except TimeoutError:
        pass
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await frames.aclose()
    took = time.monotonic() - started
    if got.is_set():
        sent = source.stats["converted"]
        steps.append(CheckStep("round_trip", True, took, f"{sent} frames sent before the first"))
    else:
        detail = f"no generated frame within {frames_timeout:g} s"
        if session.last_error is not None:
            detail += f" ({_describe(session.last_error)})"
        steps.append(CheckStep("round_trip", False, took, detail))
    return CheckReport(tuple(steps), session.session_id, _rtt(session.connect_steps))


def _rtt(steps: tuple[ConnectStep, ...]) -> float | None:
    return steps[-1].rtt_s if steps else None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _pattern(n: int, width: int, height: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:, :, 0] = (np.arange(width, dtype=np.uint32) * 255 // max(width - 1, 1)).astype(np.uint8)
    x = (n * 8) % max(width - 32, 1)
    frame[height // 2 - 16 : height // 2 + 16, x : x + 32] = 255
    return frame


def check_blocking(
    model: str = DEFAULT_MODEL,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = 30,
    frames_timeout: float = 15,
) -> CheckReport:
    """:func:`check` for plain code (runs its own event loop; not from inside a running one)."""
    return asyncio.run(
        check(
            model,
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            frames_timeout=frames_timeout,
        )
    )


__all__ = ["STEPS", "CheckReport", "CheckStep", "check", "check_blocking"]
