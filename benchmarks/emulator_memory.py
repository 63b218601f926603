"""The emulator's memory as sessions come and go: RSS at baseline, with N live sessions that
sent frames to the model, and after they all ended (their slots freed).

Each session connects unmuted with small frames, so the emulator's inference participant
decodes, transforms and publishes for it; the sessions connect in batches, each batch
generating before the next starts. An ended session must give back its inference participant,
room and buffers. A session that does not connect or never generates fails the run, with what
the client and the emulator saw of it.

Run inside the stack: python -m warmrtc stack -- python benchmarks/emulator_memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from dataclasses import dataclass

import aiohttp
import numpy as np

import warmrtc
from warmrtc.local.service import LocalService

WIDTH, HEIGHT = 128, 96
# Each input frame makes the model generate one at its own size (720p), which the emulator
# encodes: ~7 % of a core per session at 10 fps. A few frames a second keep 50 sessions within
# two cores, and every session still generates.
FPS = 2
EMULATOR_ARGS = ("--release-delay", "0.2", "--crash-release-delay", "1")
# After the last session, how long the emulator may take to report none, and for its RSS to
# settle (livekit tears a room's peer connections, encoders and their threads down natively,
# after Room.disconnect() returned: the RSS keeps falling for tens of seconds).
GONE_TIMEOUT = 60.0
SETTLE_TIMEOUT = 60.0
SETTLE_STEP = 2.0
SETTLE_MIB = 8.0  # a reading this close to the one a step before: settled


def rss_mib(pid: int) -> float:
    """The RSS of the emulator and every process under it (its models' workers), in MiB."""
    total = 0
    for each in _tree(pid):
        try:
            with open(f"/proc/{each}/status") as f:
                total += next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass  # it exited meanwhile (or is a zombie, with no memory)
    return total / 1024


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        each = todo.pop()
        found.append(each)
        try:
            for task in os.listdir(f"/proc/{each}/task"):
                with open(f"/proc/{each}/task/{task}/children") as f:
                    todo += [int(child) for child in f.read().split()]
        except FileNotFoundError:
            pass
    return found


@dataclass
class Figures:
    baseline_mib: float
    live_mib: float
    after_mib: float
    sessions: int
    gone_s: float = 0.0  # from the disconnects until the emulator reported no session
    settled_s: float = 0.0  # from the disconnects until the RSS settled
    after_3s_mib: float = 0.0  # 3 s after the disconnects (the figure the issue first used)

    def __str__(self) -> str:
        return (
            f"emulator RSS: baseline {self.baseline_mib:.0f} MiB, with {self.sessions} live "
            f"sessions {self.live_mib:.0f} MiB, after they ended {self.after_mib:.0f} MiB "
            f"({self.after_mib - self.baseline_mib:+.0f} MiB; no session reported after "
            f"{self.gone_s:.0f} s, settled after {self.settled_s:.0f} s; "
            f"3 s after the end {self.after_3s_mib:.0f} MiB)"
        )


class Frames:
    """One thread feeding every source at FPS, until stopped."""

    def __init__(self) -> None:
        self.sources: list[warmrtc.VideoSource] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = np.full((HEIGHT, WIDTH, 3), (40, 160, 220), np.uint8)
        while not self._stop.wait(1 / FPS):
            for source in list(self.sources):
                source.capture(frame)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


async def measure(base_url: str, api_key: str, pid: int, n: int, batch: int) -> Figures:
    await asyncio.sleep(1)  # the emulator settles after its start
    baseline = rss_mib(pid)
    frames = Frames()
    live: list[warmrtc.Session] = []
    try:
        for start in range(0, n, batch):
            count = min(batch, n - start)
            sources = [warmrtc.VideoSource(WIDTH, HEIGHT, fps=FPS) for _ in range(count)]
            frames.sources.extend(sources)
            began = time.monotonic()
            connected = await asyncio.gather(
                *(warmrtc.connect(s, api_key=api_key, base_url=base_url) for s in sources),
                return_exceptions=True,
            )
            live += [s for s in connected if isinstance(s, warmrtc.Session)]
            failed = [e for e in connected if isinstance(e, BaseException)]
            if failed:
                raise RuntimeError(
                    f"{len(failed)} of {count} sessions did not connect after {start} had: "
                    f"{failed[0]!r}"
                ) from failed[0]
            # Each batch generating before the next one starts: starts do not pile up.
            unready = await _until_generating(live, time.monotonic() + 60)
            print(
                f"  {len(live)}/{n} generating (+{count} in {time.monotonic() - began:.1f} s), "
                f"RSS {rss_mib(pid):.0f} MiB, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            if unready:
                stuck = [s for s in live if s.state != "generating"]
                details = await _describe(stuck, base_url, api_key)
                raise RuntimeError(f"{unready} of {len(live)} sessions never generated:\n{details}")
        await asyncio.sleep(1)
        with_live = rss_mib(pid)
    finally:
        await asyncio.gather(*(s.disconnect() for s in live))
        frames.stop()
        for source in frames.sources:
            source.close()
    ended = time.monotonic()
    await asyncio.sleep(3)
    after_3s = rss_mib(pid)
    await _until_no_session(base_url, api_key, ended + GONE_TIMEOUT)
    gone = time.monotonic() - ended
    after = await _settled_rss(pid, time.monotonic() + SETTLE_TIMEOUT)
    settled = time.monotonic() - ended
    return Figures(baseline, with_live, after, n, gone, settled, after_3s)


async def _until_generating(sessions: list[warmrtc.Session], deadline: float) -> int:
    """Waits until every session gets generated frames; how many did not by the deadline."""
    while time.monotonic() < deadline:
        unready = sum(s.state != "generating" for s in sessions)
        if not unready:
            return 0
        await asyncio.sleep(0.2)
    return sum(s.state != "generating" for s in sessions)


async def _describe(sessions: list[warmrtc.Session], base_url: str, api_key: str) -> str:
    """Each session's figures as the client and the emulator see them (for a failure)."""
    url = base_url.replace("ws://", "http://", 1) + "/sessions"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"x-api-key": api_key}) as response:
            reports = {r["session_id"]: r for r in await response.json()}
    lines = []
    for session in sessions:
        stats = await session.stats()
        lines.append(
            f"  {session.session_id} {session.state}: client sent {stats.frames_sent}, "
            f"encoded {stats.frames_encoded}, received {stats.frames_received}, "
            f"decoded {stats.frames_decoded}; emulator {reports.get(session.session_id)}"
        )
    return "\n".join(lines)


async def _until_no_session(base_url: str, api_key: str, deadline: float) -> None:
    """Until GET /sessions lists none (every slot freed, every room left), or the deadline."""
    url = base_url.replace("ws://", "http://", 1) + "/sessions"
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            async with http.get(url, headers={"x-api-key": api_key}) as response:
                response.raise_for_status()
                if not await response.json():
                    return
            await asyncio.sleep(0.5)


async def _settled_rss(pid: int, deadline: float) -> float:
    """The RSS once it stops falling (two readings SETTLE_STEP apart within SETTLE_MIB), or
    at the deadline."""
    last = rss_mib(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(SETTLE_STEP)
        now = rss_mib(pid)
        if last - now < SETTLE_MIB:
            return now
        last = now
    return rss_mib(pid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--batch", type=int, default=10)
    args = p.parse_args()
    service = LocalService(*EMULATOR_ARGS)
    try:
        figures = asyncio.run(
            measure(service.base_url, service.api_key, service.pid, args.sessions, args.batch)
        )
    finally:
        service.close()
    print(figures)


if __name__ == "__main__":
    main()
