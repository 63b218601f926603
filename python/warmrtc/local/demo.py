"""warmrtc demo: warm a session, go live, pause, resume, and print the timeline.

Against the local stack by default (no DECART_API_KEY set: an embedded emulator), or the real
service when DECART_API_KEY is set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._protocol.endpoints import API_KEY_ENV, API_KEY_HEADER, SESSIONS_PATH, http_base
from .._protocol.models import DEFAULT_MODEL
from ..session import Session, connect
from ..source import VideoSource
from ..stats import SessionStats
from . import linkspec, stack
from .pattern import moving_pattern
from .service import LocalService
from .timeline import Timeline, draw


def video_frames(path: str, width: int, height: int) -> Iterator[np.ndarray]:
    import cv2  # optional: only for --input

    capture = cv2.VideoCapture(int(path) if path.isdigit() else path)
    if not capture.isOpened():
        raise SystemExit(f"cannot open --input {path!r}")
    while True:
        ok, frame = capture.read()
        if not ok:  # loop a file
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = capture.read()
            if not ok:
                raise SystemExit(f"--input {path!r} gives no frames")
        yield cv2.resize(frame, (width, height))


class Camera(threading.Thread):
    """A capture thread feeding `source` at `fps` until stopped or `max_seconds` pass."""

    def __init__(
        self,
        source: VideoSource,
        frames: Iterator[np.ndarray],
        fps: float,
        max_seconds: float = 3600,
    ) -> None:
        super().__init__(daemon=True, name="warmrtc-camera")
        self.source, self.frames, self.fps = source, frames, fps
        self.deadline = time.monotonic() + max_seconds
        self.stop = threading.Event()

    def run(self) -> None:
        for frame in self.frames:
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            self.source.capture(frame)
            self.stop.wait(1 / self.fps)


class OutputVideo:
    """An .mp4 of the generated frames, at the size of the first one (the received simulcast
    layer can change size while bandwidth ramps up; later frames are resized to match)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.frames = 0
        self._writer: Any = None
        self._size: tuple[int, int] = (0, 0)

    def write(self, frame: np.ndarray) -> None:
        import cv2  # optional: only for --output

        size = (frame.shape[1], frame.shape[0])
        if self._writer is None:
            self._size = size
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter.fourcc(*"mp4v"), 30, size)
            if not self._writer.isOpened():
                raise SystemExit(f"cannot write --output {self.path!r} (mp4v)")
        if size != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def service_report(base_url: str, api_key: str, session_id: str | None) -> dict[str, Any] | None:
    """What the local service saw of the session (it shows a key its own sessions only)."""
    url = http_base(base_url) + SESSIONS_PATH
    request = urllib.request.Request(url, headers={API_KEY_HEADER: api_key})
    with contextlib.suppress(OSError, ValueError):
        with urllib.request.urlopen(request, timeout=2) as response:
            for entry in json.load(response):
                if entry["session_id"] == session_id:
                    return dict(entry)
    return None


async def run_demo(args: argparse.Namespace, base_url: str | None, api_key: str | None) -> None:
    width, height = args.size
    source = VideoSource(width, height, "bgr24", fps=args.fps)
    frames = (
        video_frames(args.input, width, height) if args.input else moving_pattern(width, height)
    )
    writer = OutputVideo(args.output) if args.output else None
    first_frame: list[float] = []

    def on_frame(frame: np.ndarray) -> None:
        if not first_frame:
            first_frame.append(time.monotonic())
        if writer is not None:
            writer.write(frame)

    camera = Camera(source, frames, args.fps)
    camera.start()
    timeline = Timeline()
    session: Session | None = None

    def counters() -> tuple[int, int, int]:
        stats = source.stats
        return stats["captured"], stats["converted"], session.billed_seconds if session else 0

    async def received() -> int | None:
        if session is None or base_url is None or api_key is None:  # the real service
            return None  # reports no frame counts
        seen = await asyncio.to_thread(service_report, base_url, api_key, session.session_id)
        return seen["frames_received"] if seen else None

    recording = asyncio.create_task(timeline.record(counters, received))
    t0 = time.monotonic()
    session = await connect(
        source,
        args.model,
        api_key=api_key,
        base_url=base_url,
        prompt=args.prompt,
        start_muted=True,
        on_frame=on_frame,
    )
    timeline.mark("warm")
    connected = time.monotonic()
    print(f"connected (warm, muted) in {connected - t0:.2f} s; session {session.session_id}")
    # Counted from here: the camera ran before connect(), and a frame it captured before the
    # session muted the source went into a source no track carried yet.
    warm_from = source.stats
    await asyncio.sleep(args.warm)
    seen = await received()
    warm_to = source.stats
    print(
        f"warm idle {args.warm:.1f} s: the app captured "
        f"{warm_to['captured'] - warm_from['captured']} frames, "
        f"sent {warm_to['converted'] - warm_from['converted']}, the model received "
        f"{'n/a' if seen is None else seen}, billed {session.billed_seconds} s"
    )
    unmuted = time.monotonic()
    timeline.mark("live")
    session.unmute()
    async with asyncio.timeout(10):
        while not first_frame:
            await asyncio.sleep(0.005)
    print(f"unmute -> first generated frame: {(first_frame[0] - unmuted) * 1000:.0f} ms")
    await asyncio.sleep(args.live)
    session.mute()
    timeline.mark("paused")
    print(f"live {args.live:.1f} s, now paused")
    await asyncio.sleep(args.pause)
    session.unmute()
    timeline.mark("live")
    print(f"paused {args.pause:.1f} s, resumed")
    await asyncio.sleep(args.live)
    session.mute()
    timeline.mark("paused")
    await asyncio.sleep(1.5)  # let the last billing tick arrive
    billed = session.billed_seconds
    stats = await session.stats()
    recording.cancel()
    await asyncio.gather(recording, return_exceptions=True)
    await session.disconnect()
    camera.stop.set()
    camera.join(2)
    source.close()
    if writer is not None:
        writer.close()
        print(f"wrote {writer.frames} generated frames to {args.output}")
    print(
        f"billed seconds: {billed} (live {2 * args.live:.1f} s of "
        f"{time.monotonic() - connected:.1f} s connected)"
    )
    print_stats(stats)
    if args.plot:
        draw(timeline, args.plot)
        print(f"timeline drawn to {args.plot}")


def print_stats(stats: SessionStats) -> None:
    """The session's figures at the end, a few lines (n/a: not reported by livekit)."""

    def f(value: float | None, unit: str = "", scale: float = 1, digits: int = 0) -> str:
        return "n/a" if value is None else f"{value * scale:.{digits}f}{unit}"

    print(
        f"stats: frames captured {stats.frames_captured}, sent {stats.frames_sent}, "
        f"dropped while muted {stats.frames_dropped_muted}; encoded "
        f"{f(stats.frames_encoded)}, sent by WebRTC {f(stats.frames_sent_rtp)}"
    )
    print(
        f"stats: generated frames received {f(stats.frames_received)}, decoded "
        f"{f(stats.frames_decoded)}, delivered {stats.generated_frames}; freezes "
        f"{f(stats.freeze_count)}, jitter {f(stats.jitter_s, ' ms', 1000, 1)}, packets lost "
        f"{f(stats.packets_lost)}, RTT {f(stats.rtt_s, ' ms', 1000, 1)}"
    )
    print(
        f"stats: setup (connect) {f(stats.setup_s, ' ms', 1000)}, last unmute -> first generated "
        f"frame {f(stats.unmute_to_first_frame_s, ' ms', 1000)}; glass-to-glass latency p50 "
        f"{f(stats.latency_ms_p50, ' ms')}, p95 {f(stats.latency_ms_p95, ' ms')}"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="warmrtc demo", description=__doc__)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--prompt", default="an oil painting")
    p.add_argument("--input", help="a video file or a webcam index (default: a moving pattern)")
    p.add_argument("--output", help="write the generated video to this .mp4")
    p.add_argument("--size", type=int, nargs=2, default=(640, 360), metavar=("W", "H"))
    p.add_argument("--fps", type=float, default=30)
    p.add_argument("--warm", type=float, default=3.0, help="seconds to stay warm before Start")
    p.add_argument("--live", type=float, default=3.0, help="seconds live, before and after pause")
    p.add_argument("--pause", type=float, default=2.0)
    p.add_argument("--plot", metavar="FILE", help="draw the timeline into FILE (e.g. a .png)")
    linkspec.add_arguments(p)
    argv = sys.argv[1:] if argv is None else argv
    args, link = linkspec.parse_arguments(p, argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # in order with logs
    api_key = os.environ.get(API_KEY_ENV)
    if api_key:
        if link.shaped:
            p.error(
                "--link shapes the local stack's link; with DECART_API_KEY set, the real "
                "service is used over the real network"
            )
        print("using the realtime service (DECART_API_KEY is set)")
        asyncio.run(run_demo(args, None, api_key))
        return
    if not os.environ.get("WARMRTC_LIVEKIT_URL"):
        stack.rerun_inside("demo", argv, link)  # not inside a local stack yet: start one
    stack.check_link("demo", link)
    print("using the local stack (set DECART_API_KEY to use the real service)")
    if link.shaped:
        print(f"the client is behind a link: {link.describe()}")
    with LocalService() as (base_url, local_key):
        asyncio.run(run_demo(args, base_url, local_key))
