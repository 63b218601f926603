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
from typing import TYPE_CHECKING

import numpy as np

from ._protocol.endpoints import API_KEY_ENV
from ._protocol.models import DEFAULT_MODEL
from .config import SessionConfig
from .errors import AuthenticationError, ModelError
from .session import Session
from .source import VideoSource

if TYPE_CHECKING:
    from .errors import WarmrtcError

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
    """The steps that ran, in order; ``ok`` when all six passed."""

    steps: tuple[CheckStep, ...]
    session_id: str | None = None

    @property
    def ok(self) -> bool:
        return len(self.steps) == len(STEPS) and all(s.ok for s in self.steps)

    @property
    def failed(self) -> CheckStep | None:
        """The step that failed, None when all passed."""
        return next((s for s in self.steps if not s.ok), None)

    def __str__(self) -> str:
        lines = []
        for step in self.steps:
            mark = "ok  " if step.ok else "FAIL"
            detail = f"  {step.detail}" if step.detail else ""
            lines.append(
                f"{mark} {DESCRIPTIONS[step.name]:<32} {step.seconds * 1000:7.0f} ms{detail}"
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
    session = Session(source, config, start_muted=True)
    try:
        return await _run(session, source, float(frames_timeout))
    finally:
        await session.disconnect()
        source.close()


def connect_steps(
    link_steps: list[tuple[str, float]],
    failed_step: str | None,
    error: BaseException | None,
) -> list[CheckStep]:
    """The check's steps of a connect, from the link's (``ServiceLink.steps`` and
    ``failed_step``; the failed one goes last): all passed, or up to the one that failed."""
    done = link_steps[:-1] if error is not None else link_steps
    merged: dict[str, float] = {}
    for name, took in done:
        merged[_LINK_STEPS[name]] = merged.get(_LINK_STEPS[name], 0.0) + took
    if error is None:
        return [CheckStep(name, True, merged.get(name, 0.0)) for name in STEPS[:-1]]
    failed = _LINK_STEPS.get(failed_step or "control", "control")
    failed_took = link_steps[-1][1] if link_steps else 0.0
    if isinstance(error, AuthenticationError | ModelError) and failed == "control":
        # Refused at the handshake: the channel was reachable, the key or model was not.
        merged["control"], failed_took, failed = failed_took, 0.0, "auth"
    failed_took += merged.pop(failed, 0.0)
    steps = [CheckStep(name, True, merged.get(name, 0.0)) for name in STEPS[: STEPS.index(failed)]]
    steps.append(CheckStep(failed, False, failed_took, _describe(error)))
    return steps


async def _run(session: Session, source: VideoSource, frames_timeout: float) -> CheckReport:
    error: WarmrtcError | BaseException | None = None
    try:
        await session._life.connect()
    except Exception as e:  # reported as the step that failed
        error = e
    link = session._link
    steps = connect_steps(link.steps, link.failed_step, error)
    if error is not None:
        return CheckReport(tuple(steps), session.session_id)
    # The round trip: live, a moving test pattern in, a generated frame out.
    got = asyncio.Event()
    frames = session._frames.stream()
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
        await frames.aclose()  # type: ignore[attr-defined]
    took = time.monotonic() - started
    if got.is_set():
        sent = source.stats["converted"]
        steps.append(CheckStep("round_trip", True, took, f"{sent} frames sent before the first"))
    else:
        detail = f"no generated frame within {frames_timeout:g} s"
        if session.last_error is not None:
            detail += f" ({_describe(session.last_error)})"
        steps.append(CheckStep("round_trip", False, took, detail))
    return CheckReport(tuple(steps), session.session_id)


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


def main(argv: list[str] | None = None) -> None:
    """``warmrtc check``: exit code 0 when every step passed, 1 otherwise."""
    import argparse
    import os
    import sys

    p = argparse.ArgumentParser(
        prog="warmrtc check",
        description="Checks the way to the realtime service, step by step: the real service "
        "with DECART_API_KEY (or --base-url), else an embedded local service on the local stack.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--base-url", help="the service's address (default: the public endpoint)")
    p.add_argument("--timeout", type=float, default=30, help="seconds for steps 1-5")
    p.add_argument("--frames-timeout", type=float, default=15, help="seconds for the round trip")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    api_key = os.environ.get(API_KEY_ENV)
    options = {"timeout": args.timeout, "frames_timeout": args.frames_timeout}
    try:
        if api_key or args.base_url:
            where = args.base_url or "the realtime service"
            print(f"warmrtc check: {args.model} at {where}")
            report = check_blocking(args.model, api_key=api_key, base_url=args.base_url, **options)
        elif not os.environ.get("WARMRTC_LIVEKIT_URL"):
            # Not inside a local stack: start one (no root needed) and check again inside it.
            from .local import stack

            try:
                sys.exit(
                    stack.run(
                        [sys.executable, "-m", "warmrtc.cli", "check", *argv], quiet_encoder=True
                    )
                )
            except stack.StackError as e:
                raise SystemExit(f"warmrtc check: {e}") from None
        else:
            from .local.service import LocalService

            with LocalService() as (base_url, local_key):
                print(f"warmrtc check: {args.model} at the local service {base_url}")
                report = check_blocking(args.model, api_key=local_key, base_url=base_url, **options)
    except (ValueError, TypeError, RuntimeError) as e:
        print(f"warmrtc check: {e}", file=sys.stderr)
        sys.exit(1)
    print(report)
    sys.exit(0 if report.ok else 1)
