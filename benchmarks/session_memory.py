"""The client's memory over session cycles: N sessions warmed, live, then disconnected, again
and again, with the RSS of this process after each cycle.

A cycle: N sources (1280x720 bgr24), N sessions connected with ``start_muted=True`` (warm),
all unmuted and fed by a capture thread each at 30 fps for M seconds, then all disconnected and
their sources closed; then ``gc.collect()``, a short settle, and one reading. Printed per
cycle; then the growth per cycle over the last half of the cycles (a least-squares slope) and
the RSS ``--after`` seconds after the last cycle. The reference: the same cycles (half as many)
in a process started with ``MALLOC_ARENA_MAX=2``, right after.

Each reading says where the memory is: the RSS and its anonymous part; glibc's heap (from
``mallinfo2``: bytes in use, over every arena; from ``malloc_info``: the free memory the
arenas keep, at the top of their heaps and in their bins, and how many arenas there are);
threads; livekit's FFI handles alive in Python; the Python heap (``--tracemalloc``, with the
lines it grew most at); warmrtc's heap trims so far; and the rooms left while the model still
published in them.

Options to find out more: ``--no-trim`` (no heap trim after a room is left, as before it
existed), ``--probe-trim`` (a ``malloc_trim(0)`` after each reading, and the reading again:
what the allocator kept that a trim gives back), ``--maps`` (the mappings holding the most
resident memory, at the end), and ``MALLOC_ARENA_MAX=2`` or other glibc settings in the
environment.

Run inside the stack: python -m warmrtc stack -- python benchmarks/session_memory.py
The defect's repro: ... session_memory.py --sessions 12 --live 5 --cycles 3 --no-reference
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass

import numpy as np

import warmrtc
from figures import Figure, publish
from warmrtc._media import heap
from warmrtc.local.pattern import moving_pattern
from warmrtc.local.service import LocalService

WIDTH, HEIGHT, FPS = 1280, 720, 30
PATTERN_FRAMES = 8  # made once, captured in turn: the benchmark allocates nothing per frame
WARM_TIMEOUT = 60.0
SETTLE_SECONDS = 2.0
# Targets. The heap in use must not grow from cycle to cycle (a leak: 0.45 MiB per session and
# cycle before); the RSS may grow 2 MiB a cycle over the last half (one cycle's sessions can
# leave a few MiB behind in an arena now and then), and be 40 MiB above cycle 1's 30 s after.
HEAP_TARGET_MIB = 0.1
SLOPE_TARGET_MIB = 2.0
AFTER_TARGET_MIB = 40.0

_LIBC = ctypes.CDLL(None)


@dataclass
class Reading:
    """What one look at this process's memory saw (MiB unless said)."""

    rss: float
    anon: float  # anonymous memory (smaps_rollup): heaps, thread stacks, buffers
    heap_used: float  # glibc: allocated and not freed, every arena (mallinfo2)
    kept_top: float  # glibc: free at the top of the arenas' heaps (malloc_info)
    kept_bins: float  # glibc: free in the arenas' bins (malloc_info)
    arenas: int  # glibc arenas besides the main one
    threads: int  # this process's threads, native ones included
    ffi_handles: int  # livekit FFI handles alive in Python
    python_heap: float | None  # tracemalloc's current figure, with --tracemalloc
    trims: int  # warmrtc's heap trims so far
    trimmed: float  # MiB they handed back, all together
    left_with_model: int  # rooms left while the model still published in them, so far

    def line(self) -> str:
        traced = "" if self.python_heap is None else f"  python {self.python_heap:5.1f}"
        return (
            f"RSS {self.rss:6.1f} (anon {self.anon:6.1f})  heap in use {self.heap_used:5.1f}, "
            f"kept: tops {self.kept_top:6.1f} bins {self.kept_bins:5.1f} ({self.arenas:2d} "
            f"arenas){traced}  threads {self.threads:2d}  ffi handles {self.ffi_handles}  "
            f"trims {self.trims} ({self.trimmed:.0f} MiB)  left with model {self.left_with_model}"
        )


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _anon_kib() -> int:
    try:
        with open("/proc/self/smaps_rollup") as f:
            return sum(int(x.split()[1]) for x in f if x.startswith("Anonymous:"))
    except FileNotFoundError:
        return 0


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_in_use() -> float:
    """glibc's bytes in use (in the arenas and mmapped), MiB; NaN without ``mallinfo2``."""
    function = getattr(_LIBC, "mallinfo2", None)
    if function is None:
        return float("nan")
    function.restype = _Mallinfo2
    info = function()
    return float(info.uordblks + info.hblkhd) / 2**20


@dataclass
class Arena:
    size: float  # MiB the arena has from the system
    top: float  # free at the top of its heap: malloc_trim leaves it to a thread arena
    bins: float  # free in its bins: malloc_trim gives their whole pages back


def arenas() -> list[Arena]:
    """Every arena of glibc's, from ``malloc_info`` (empty without it)."""
    function = getattr(_LIBC, "malloc_info", None)
    if function is None:
        return []
    _LIBC.fopen.restype = ctypes.c_void_p
    _LIBC.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    _LIBC.fclose.argtypes = [ctypes.c_void_p]
    function.argtypes = [ctypes.c_int, ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as xml:
        f = _LIBC.fopen(xml.name.encode(), b"w")
        if not f:
            return []
        function(0, f)
        _LIBC.fclose(f)
        text = xml.read()
    found = []
    for body in re.findall(r'<heap nr="\d+">(.*?)</heap>', text, re.S):
        size = int(re.search(r'<system type="current" size="(\d+)"', body)[1])  # type: ignore[index]
        # "fast" and "rest" count every free chunk and the top; the sizes list the chunks.
        free = sum(int(x) for x in re.findall(r'<total type="\w+" count="\d+" size="(\d+)"', body))
        binned = sum(int(x) for x in re.findall(r'<(?:size|unsorted) [^>]*total="(\d+)"', body))
        found.append(Arena(size / 2**20, (free - binned) / 2**20, binned / 2**20))
    return found


def read() -> Reading:
    from livekit.rtc import _ffi_client

    every = arenas()
    trims = heap.stats()
    return Reading(
        rss=_status("VmRSS") / 1024,
        anon=_anon_kib() / 1024,
        heap_used=heap_in_use(),
        kept_top=sum(a.top for a in every),
        kept_bins=sum(a.bins for a in every),
        arenas=max(0, len(every) - 1),
        threads=_status("Threads"),
        ffi_handles=len(_ffi_client._live_handles),
        python_heap=tracemalloc.get_traced_memory()[0] / 2**20
        if tracemalloc.is_tracing()
        else None,
        trims=trims.trims,
        trimmed=trims.released_mib,
        left_with_model=_LeftWithModel.count,
    )


def biggest_mappings(top: int = 12) -> str:
    """The mappings of this process that hold the most resident memory (/proc/self/smaps)."""
    rows: list[tuple[int, str]] = []
    with open("/proc/self/smaps") as f:
        head = ""
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                head = line.strip()
            elif line.startswith("Rss:"):
                rows.append((int(line.split()[1]), head))
    rows.sort(reverse=True)
    lines = []
    for kib, mapping in rows[:top]:
        start, end = (int(x, 16) for x in mapping.split()[0].split("-"))
        name = " ".join(mapping.split()[5:]) or "[anonymous]"
        lines.append(f"{kib / 1024:7.1f} MiB resident of {(end - start) / 2**20:7.1f}  {name}")
    return "\n".join(lines)


class _LeftWithModel(logging.Handler):
    """Counts the rooms left while the model still published in them (warmrtc's debug log)."""

    count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "still publishing" in record.getMessage():
            _LeftWithModel.count += 1


def _count_left_with_model() -> None:
    logger = logging.getLogger("warmrtc")
    logger.addHandler(_LeftWithModel(logging.DEBUG))
    logger.setLevel(logging.DEBUG)


def _python_growth(before: tracemalloc.Snapshot, top: int = 5) -> tracemalloc.Snapshot:
    """Prints where the Python heap grew most since ``before``; returns the new snapshot."""
    now = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    for stat in now.compare_to(before, "lineno")[:top]:
        print(f"    {stat}", flush=True)
    return now


class Capture(threading.Thread):
    """Feeds one source at FPS from the shared frames until halted (``seconds`` + 5 at most)."""

    def __init__(self, source: warmrtc.VideoSource, frames: list[np.ndarray], seconds: float):
        super().__init__(daemon=True, name="bench-capture")
        self.source, self.frames = source, frames
        self.deadline = time.monotonic() + seconds + 5
        self.halt = threading.Event()
        self.captured = 0

    def run(self) -> None:
        n = 0
        next_at = time.monotonic()
        while not self.halt.is_set() and time.monotonic() < self.deadline:
            self.captured += self.source.capture(self.frames[n % len(self.frames)])
            n += 1
            next_at += 1 / FPS
            self.halt.wait(max(0.0, next_at - time.monotonic()))


@dataclass
class Cycle:
    frames: int  # handed on by the sources while live
    generated: int  # the model's frames the sessions received
    disconnect_s: float  # the disconnects, all together
    cpu_s: float  # this process's CPU time over the cycle


async def cycle(
    base_url: str, api_key: str, sessions: int, live: float, frames: list[np.ndarray]
) -> Cycle:
    """One cycle: connect warm, go live, disconnect."""
    cpu_before = time.process_time()
    generated = 0
    disconnect_s = 0.0

    def on_frame(_frame: np.ndarray) -> None:
        nonlocal generated
        generated += 1

    sources = [warmrtc.VideoSource(WIDTH, HEIGHT, fps=FPS) for _ in range(sessions)]
    connected: list[warmrtc.Session] = []
    captures: list[Capture] = []
    try:
        async with asyncio.timeout(WARM_TIMEOUT):
            results = await asyncio.gather(
                *(
                    warmrtc.connect(
                        s, start_muted=True, api_key=api_key, base_url=base_url, on_frame=on_frame
                    )
                    for s in sources
                ),
                return_exceptions=True,
            )
        connected = [s for s in results if isinstance(s, warmrtc.Session)]
        failed = [e for e in results if isinstance(e, BaseException)]
        if failed:
            raise RuntimeError(f"{len(failed)} of {sessions} did not connect") from failed[0]
        for session in connected:
            session.unmute()
        captures = [Capture(s, frames, live) for s in sources]
        for capture in captures:
            capture.start()
        await asyncio.sleep(live)
    finally:
        for capture in captures:
            capture.halt.set()
        for capture in captures:
            capture.join(5)
        began = time.monotonic()
        await asyncio.gather(*(s.disconnect() for s in connected))
        disconnect_s = time.monotonic() - began
        for source in sources:
            source.close()
    return Cycle(
        sum(c.captured for c in captures), generated, disconnect_s, time.process_time() - cpu_before
    )


def slope(values: list[float]) -> float:
    """Least-squares growth per step."""
    if len(values) < 2:
        return 0.0
    xs = range(len(values))
    mx, my = statistics.fmean(xs), statistics.fmean(values)
    num = sum((x - mx) * (y - my) for x, y in zip(xs, values, strict=True))
    return num / sum((x - mx) ** 2 for x in xs)


@dataclass
class Result:
    sessions: int
    live: float
    trim: bool
    environment: dict[str, str]  # glibc's malloc settings given in the environment
    start: Reading
    cycles: list[Reading]
    after: Reading
    after_seconds: float
    disconnect_s: list[float]
    trim_longest_ms: float

    @property
    def rss(self) -> list[float]:
        return [r.rss for r in self.cycles]

    @property
    def half(self) -> int:
        """How many cycles the slopes are taken over: the last half."""
        return len(self.cycles) - len(self.cycles) // 2

    @property
    def slope(self) -> float:
        return slope(self.rss[-self.half :])

    @property
    def heap_slope(self) -> float:
        return slope([r.heap_used for r in self.cycles][-self.half :])

    def summary(self) -> str:
        return (
            f"over the last {self.half} cycles, per cycle: RSS {self.slope:+.2f} MiB, heap in "
            f"use {self.heap_slope:+.3f} MiB; RSS after cycle 1 {self.rss[0]:.1f} MiB, after "
            f"the last {self.rss[-1]:.1f} MiB, {self.after_seconds:g} s later "
            f"{self.after.rss:.1f} MiB; disconnects p50 "
            f"{statistics.median(self.disconnect_s) * 1e3:.0f} ms; longest heap trim "
            f"{self.trim_longest_ms:.1f} ms"
        )


async def measure(
    base_url: str,
    api_key: str,
    *,
    cycles: int,
    sessions: int,
    live: float,
    settle: float = SETTLE_SECONDS,
    after: float = 30.0,
    probe_trim: bool = False,
    maps: bool = False,
) -> Result:
    """Runs the cycles, printing each one's reading."""
    frames = [
        f.copy() for f, _ in zip(moving_pattern(WIDTH, HEIGHT), range(PATTERN_FRAMES), strict=False)
    ]
    _count_left_with_model()
    gc.collect()
    start = read()
    print(f"start     {start.line()}", flush=True)
    readings: list[Reading] = []
    disconnects: list[float] = []
    snapshot = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    for i in range(cycles):
        began = time.monotonic()
        done = await cycle(base_url, api_key, sessions, live, frames)
        disconnects.append(done.disconnect_s)
        gc.collect()
        await asyncio.sleep(settle)
        readings.append(read())
        print(
            f"cycle {i + 1:2d}  {readings[-1].line()}  ({done.frames} frames in, "
            f"{done.generated} out, CPU {done.cpu_s:.1f} s, disconnects {done.disconnect_s:.2f} "
            f"s, cycle {time.monotonic() - began:.1f} s)",
            flush=True,
        )
        if probe_trim:
            _LIBC.malloc_trim(0)
            print(f"  trimmed {read().line()}", flush=True)
        if snapshot is not None:
            snapshot = _python_growth(snapshot)
    await asyncio.sleep(after)
    gc.collect()
    last = read()
    print(f"+{after:g} s     {last.line()}", flush=True)
    if maps:
        print(biggest_mappings(), flush=True)
    settings = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    trims = heap.stats()
    return Result(
        sessions,
        live,
        heap.enabled(),
        settings,
        start,
        readings,
        last,
        after,
        disconnects,
        trims.longest * 1e3,
    )


def reference(args: argparse.Namespace) -> Result | None:
    """The same cycles (``--reference-cycles``) in a process of its own with 2 arenas."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reference.json")
        cmd = [
            sys.executable,
            __file__,
            *("--cycles", str(args.reference_cycles), "--sessions", str(args.sessions)),
            *("--live", str(args.live), "--after", "0", "--no-reference", "--json", path),
        ]
        env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
        env.pop("WARMRTC_BENCH_FIGURES", None)  # its figures are not this run's
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        print(f"\nreference, MALLOC_ARENA_MAX=2:\n{done.stdout.strip()}", flush=True)
        if done.returncode != 0:
            print(f"(the reference run failed: {done.stderr.strip()[-1500:]})")
            return None
        with open(path) as f:
            data = json.load(f)
    return Result(
        **{
            **data,
            "start": Reading(**data["start"]),
            "cycles": [Reading(**r) for r in data["cycles"]],
            "after": Reading(**data["after"]),
        }
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--sessions", type=int, default=4, help="sessions per cycle (repro: 12)")
    p.add_argument("--live", type=float, default=2.0, help="seconds live per cycle (repro: 5)")
    p.add_argument("--settle", type=float, default=SETTLE_SECONDS)
    p.add_argument("--after", type=float, default=30.0, help="seconds after the last cycle")
    p.add_argument("--reference-cycles", type=int, default=10)
    p.add_argument("--no-reference", action="store_true", help="no MALLOC_ARENA_MAX=2 run")
    p.add_argument("--no-trim", action="store_true", help="no heap trim after a leave")
    p.add_argument("--probe-trim", action="store_true", help="malloc_trim(0) after each reading")
    p.add_argument("--tracemalloc", action="store_true", help="trace the Python heap too")
    p.add_argument("--maps", action="store_true", help="the biggest mappings at the end")
    p.add_argument("--json", help="also write the readings to this file")
    args = p.parse_args()
    if args.no_trim:
        os.environ[heap.TRIM_ENV] = "0"
    if args.tracemalloc:
        tracemalloc.start()
    with LocalService() as (base_url, api_key):
        result = asyncio.run(
            measure(
                base_url,
                api_key,
                cycles=args.cycles,
                sessions=args.sessions,
                live=args.live,
                settle=args.settle,
                after=args.after,
                probe_trim=args.probe_trim,
                maps=args.maps,
            )
        )
    print(result.summary(), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(asdict(result), f, indent=1)
    ref = None if args.no_reference else reference(args)
    what = f"{args.sessions} x 720p30 live {args.live:g} s"
    two = f"{ref.slope:+.2f} MiB with 2 arenas" if ref else ""
    publish(
        [
            Figure(
                "session_memory",
                f"heap in use, growth per cycle ({what})",
                f"{result.heap_slope:+.3f} MiB",
                f"<= {HEAP_TARGET_MIB:g} MiB",
                f"{ref.heap_slope:+.3f} MiB with 2 arenas" if ref else "",
                result.heap_slope <= HEAP_TARGET_MIB,
            ),
            Figure(
                "session_memory",
                f"RSS growth per cycle, last {result.half} of {args.cycles}",
                f"{result.slope:+.2f} MiB",
                f"<= {SLOPE_TARGET_MIB:g} MiB",
                two,
                result.slope <= SLOPE_TARGET_MIB,
            ),
            Figure(
                "session_memory",
                f"RSS {args.after:g} s after the last cycle, over cycle 1's",
                f"{result.after.rss - result.rss[0]:+.1f} MiB",
                f"<= {AFTER_TARGET_MIB:g} MiB",
                f"{result.after.rss:.0f} MiB",
                result.after.rss - result.rss[0] <= AFTER_TARGET_MIB,
            ),
            Figure(
                "session_memory",
                f"disconnect of {args.sessions} sessions p50 / longest heap trim",
                f"{statistics.median(result.disconnect_s) * 1e3:.0f} / "
                f"{result.trim_longest_ms:.1f} ms",
            ),
        ]
    )


if __name__ == "__main__":
    main()
