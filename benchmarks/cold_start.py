"""Cold start side by side with Decart's official Python client, on the same emulator.

Cold start: connect -> first generated frame, the camera capturing from the start. Ours and the
official client (the `decart` package, in its own environment: see official_client.py) take
turns, run after run, on one emulator and with the same camera-like picture at the model's
size, so drift on a shared machine hits both alike. Prints the p50 of each, the ratio against
the target, and the median time of each of our connect steps.

The official client needs its own environment (its dependencies may clash with ours): `make
bench` makes it once, with the versions pinned there (the Makefile's OFFICIAL_VENV).
``--official-python`` or WARMRTC_OFFICIAL_PYTHON names another interpreter.

Run inside the stack: python -m warmrtc stack -- python benchmarks/cold_start.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import warmrtc
from figures import Figure, link_facts, publish
from warmrtc.local.demo import Camera, moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT, FPS = 1280, 720, 30  # the model's size: neither client scales
TARGET_RATIO = 0.7  # ours <= 0.7 x the official client's
LINK_RATIO = 0.8  # behind a link without loss; with loss, never worse than the official client
HERE = Path(__file__).resolve().parent
DEFAULT_OFFICIAL = HERE.parent / ".cache" / "decart-venv" / "bin" / "python"


async def ours(base_url: str, api_key: str, steps: dict[str, list[float]]) -> float:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=FPS)
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()
    camera = Camera(source, moving_pattern(WIDTH, HEIGHT), fps=FPS, max_seconds=60)
    camera.start()
    try:
        start = time.monotonic()
        session = await warmrtc.connect(
            source,
            api_key=api_key,
            base_url=base_url,
            on_frame=lambda _f: loop.call_soon_threadsafe(arrived.set),
        )
        connected = time.monotonic() - start
        await asyncio.wait_for(arrived.wait(), 20)
        elapsed = time.monotonic() - start
        for step in session.connect_steps:
            steps[step.name].append(step.seconds)
        steps["connect() returned"].append(connected)
        await session.disconnect()
        return elapsed
    finally:
        camera.stop.set()
        camera.join(2)
        source.close()


class Official:
    """The official client in its own process: one run per request, timed inside it."""

    def __init__(self, python: str, base_url: str, api_key: str) -> None:
        script = str(HERE / "official_client.py")
        args = [python, script, base_url, api_key, str(WIDTH), str(HEIGHT), str(FPS)]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        if self._readline() != "ready":
            raise RuntimeError("the official client did not start (see its error above)")

    def _readline(self) -> str:
        assert self._proc.stdout is not None
        return self._proc.stdout.readline().strip()

    async def run(self) -> float:
        assert self._proc.stdin is not None
        self._proc.stdin.write("run\n")
        self._proc.stdin.flush()
        line = await asyncio.to_thread(self._readline)
        if not line or line.startswith("error"):
            raise RuntimeError(f"official client run failed: {line or 'it exited'}")
        return float(line) / 1000

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


def official_name(python: str) -> str:
    """ "decart <version>" as installed for ``python``."""
    ask = "import importlib.metadata as m; print(m.version('decart'))"
    try:
        done = subprocess.run([python, "-c", ask], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "decart"
    return f"decart {done.stdout.strip()}" if done.returncode == 0 else "decart"


async def main(runs: int, official_python: str) -> None:
    have_official = Path(official_python).exists()
    mine: list[float] = []
    theirs: list[float] = []
    steps: dict[str, list[float]] = defaultdict(list)
    with LocalService() as (base_url, api_key):
        official = Official(official_python, base_url, api_key) if have_official else None
        try:
            # One unreported round each: the livekit runtime's one-time start-up is no session's.
            await ours(base_url, api_key, defaultdict(list))
            if official is not None:
                await official.run()
            for i in range(runs):  # take turns, each going first every other run
                pair = [lambda: ours(base_url, api_key, steps)]
                if official is not None:
                    pair.append(official.run)
                for run in pair if i % 2 == 0 else pair[::-1]:
                    (mine if run is pair[0] else theirs).append(await run())
        finally:
            if official is not None:
                official.close()

    print(f"connect -> first generated frame, {WIDTH}x{HEIGHT}, n = {runs} each, interleaved")
    print(
        "our connect steps (median ms): "
        + ", ".join(
            f"{name} {statistics.median(values) * 1000:.0f}" for name, values in steps.items()
        )
    )
    for name, values in (("warmrtc", mine), (official_name(official_python), theirs)):
        if values:
            shown = " ".join(f"{v * 1000:.0f}" for v in values)
            print(f"{name:13} ms: {shown}")
    ours_p50 = statistics.median(mine)
    figures = [
        Figure(
            benchmark="cold_start",
            name="cold start p50 (warmrtc)",
            measured=f"{ours_p50 * 1000:.0f} ms",
        )
    ]
    if theirs:
        theirs_p50 = statistics.median(theirs)
        ratio = ours_p50 / theirs_p50
        figures.append(
            Figure(
                benchmark="cold_start",
                name="cold start, warmrtc / official client",
                measured=f"{ratio:.2f}",
                target=f"<= {TARGET_RATIO}",
                reference=f"official p50 {theirs_p50 * 1000:.0f} ms",
                met=ratio <= TARGET_RATIO,
            )
        )
        link = link_facts()
        if link.shaped:
            target = 1.0 if link.loss else LINK_RATIO
            figures.append(
                Figure(
                    benchmark="cold_start",
                    name="cold start, warmrtc / official client, behind the link",
                    measured=f"{ratio:.2f}",
                    target=f"<= {target:g}",
                    reference=f"official p50 {theirs_p50 * 1000:.0f} ms",
                    met=ratio <= target,
                    on_link=True,
                )
            )
    else:
        print(f"(no official client at {official_python}: `make bench` installs it)")
    publish(figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--official-python",
        default=os.environ.get("WARMRTC_OFFICIAL_PYTHON", str(DEFAULT_OFFICIAL)),
        help="the interpreter of the environment with the official client",
    )
    args = parser.parse_args()
    asyncio.run(main(max(args.runs, 1), args.official_python))
