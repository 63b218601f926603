"""How often a process aborts at exit right after heavy livekit activity.

Each run is a child process that connects a few sessions to the local service, streams frames
for about a second with the sessions live, and then ends in one of these ways:

  exit        returns from asyncio.run() with every session still connected (no disconnect)
  disconnect  disconnects every session, then exits
  cancel      starts connects and cancels them part-way, then exits
  sysexit     calls sys.exit() from inside the event loop, sessions connected

An abort is a child killed by SIGABRT or printing "panic in a function that cannot unwind".
warmrtc.VideoSource installs warmrtc._media.exit_hook's exit hook; --without-hook takes it out again
(atexit.unregister) to measure the rate without it on the same code.

Run inside the stack:
    python -m warmrtc stack -- python benchmarks/exit_aborts.py -n 40 [--without-hook]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

MODES = ("exit", "disconnect", "cancel", "sysexit")
PANIC = "panic in a function that cannot unwind"
RUN_TIMEOUT_S = 60


async def child(mode: str, sessions: int, stream_s: float, hook: bool) -> None:
    import warmrtc
    from warmrtc._media import exit_hook as _exit

    base_url, api_key = os.environ["EXIT_BASE_URL"], os.environ["EXIT_API_KEY"]
    sources = [warmrtc.VideoSource(320, 240, "bgr24") for _ in range(sessions)]
    if not hook:
        atexit.unregister(_exit.shutdown)

    def connect(source: warmrtc.VideoSource) -> warmrtc.Connecting:
        return warmrtc.connect(source, api_key=api_key, base_url=base_url, start_muted=True)

    if mode == "cancel":
        tasks = [asyncio.ensure_future(connect(s)) for s in sources]
        await asyncio.sleep(0.2 + 0.1 * (os.getpid() % 5))  # somewhere mid-join
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return
    live = await asyncio.gather(*(connect(s) for s in sources))
    for s in live:
        s.unmute()
    frame = np.zeros((240, 320, 3), np.uint8)
    deadline = time.monotonic() + stream_s
    n = 0
    while time.monotonic() < deadline:
        frame[:, :, n % 3] = n % 256
        for source in sources:
            source.capture(frame)
        n += 1
        await asyncio.sleep(1 / 30)
    if mode == "disconnect":
        await asyncio.gather(*(s.disconnect() for s in live))
    elif mode == "sysexit":
        sys.exit(0)


@dataclass
class Result:
    mode: str
    returncode: int
    aborted: bool
    seconds: float
    tail: str


def run_one(mode: str, args: argparse.Namespace, env: dict[str, str]) -> Result:
    cmd = [sys.executable, __file__, "--child", mode, "--sessions", str(args.sessions)]
    cmd += ["--stream", str(args.stream)] + ([] if args.hook else ["--without-hook"])
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else ""
        return Result(mode, -999, False, time.monotonic() - started, "TIMEOUT\n" + out[-800:])
    aborted = proc.returncode == -signal.SIGABRT or PANIC in proc.stderr
    tail = "\n".join(proc.stderr.strip().splitlines()[-int(os.environ.get("EXIT_TAIL", "6")) :])
    return Result(mode, proc.returncode, aborted, time.monotonic() - started, tail)


def measure(args: argparse.Namespace, base_url: str, api_key: str) -> list[Result]:
    env = dict(os.environ, EXIT_BASE_URL=base_url, EXIT_API_KEY=api_key)
    modes = [args.modes[i % len(args.modes)] for i in range(args.n)]
    deadline = time.monotonic() + args.budget
    results: list[Result] = []
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_one, m, args, env) for m in modes]
        for f in futures:
            results.append(f.result(timeout=max(deadline - time.monotonic(), 1) + RUN_TIMEOUT_S))
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", type=int, default=40, help="runs (spread over the modes)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--stream", type=float, default=1.0, help="seconds of live frames")
    p.add_argument("--jobs", type=int, default=3, help="runs at a time")
    p.add_argument("--budget", type=float, default=600, help="seconds for all runs")
    p.add_argument(
        "--without-hook",
        dest="hook",
        action="store_false",
        help="unregister warmrtc._media.exit_hook",
    )
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        asyncio.run(child(args.child, args.sessions, args.stream, args.hook))
        return

    from warmrtc.local.service import LocalService

    with LocalService() as (base_url, api_key):
        results = measure(args, base_url, api_key)
    aborts = [r for r in results if r.aborted]
    failed = [r for r in results if r.returncode != 0 and not r.aborted]
    for mode in args.modes:
        mine = [r for r in results if r.mode == mode]
        print(
            f"{mode:10s} runs {len(mine):3d}  aborts {sum(r.aborted for r in mine):3d}  "
            f"other failures {sum(r in failed for r in mine):3d}  "
            f"mean {sum(r.seconds for r in mine) / max(len(mine), 1):.1f} s"
        )
    print(
        f"total: {len(aborts)} aborts in {len(results)} runs (hook={'on' if args.hook else 'off'})"
    )
    for r in (aborts + failed)[:5]:
        print(f"--- {r.mode} rc={r.returncode}\n{r.tail}")
    if aborts or failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
