"""The emulator's memory as sessions come and go: RSS at baseline, with N live sessions that
sent frames to the model, and after they all ended (their slots freed).

Each session connects unmuted with small frames, so the emulator's inference participant
decodes, transforms and publishes for it; the sessions connect in batches. An ended session
must give back its inference participant, room and buffers.

Run inside the stack: python -m warmrtc.stack -- python benchmarks/emulator_memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from dataclasses import dataclass

import numpy as np

import warmrtc
from warmrtc.local_service import LocalService

WIDTH, HEIGHT = 128, 96
EMULATOR_ARGS = ("--release-delay", "0.2", "--crash-release-delay", "1")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


@dataclass
class Figures:
    baseline_mib: float
    live_mib: float
    after_mib: float
    sessions: int

    def __str__(self) -> str:
        return (
            f"emulator RSS: baseline {self.baseline_mib:.0f} MiB, with {self.sessions} live "
            f"sessions {self.live_mib:.0f} MiB, after they ended {self.after_mib:.0f} MiB "
            f"({self.after_mib - self.baseline_mib:+.0f} MiB)"
        )


class Frames:
    """One thread feeding every source at 10 fps, until stopped."""

    def __init__(self) -> None:
        self.sources: list[warmrtc.VideoSource] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        frame = np.full((HEIGHT, WIDTH, 3), (40, 160, 220), np.uint8)
        while not self._stop.wait(0.1):
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
            sources = [warmrtc.VideoSource(WIDTH, HEIGHT, fps=10) for _ in range(count)]
            frames.sources.extend(sources)
            live += await asyncio.gather(
                *(warmrtc.connect(s, api_key=api_key, base_url=base_url) for s in sources)
            )
        deadline = time.monotonic() + 60
        while any(s.state != "generating" for s in live) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)
        with_live = rss_mib(pid)
    finally:
        await asyncio.gather(*(s.disconnect() for s in live))
        frames.stop()
        for source in frames.sources:
            source.close()
    await asyncio.sleep(3)  # slots freed (0.2 s), rooms left
    return Figures(baseline, with_live, rss_mib(pid), n)


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
