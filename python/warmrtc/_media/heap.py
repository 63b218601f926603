"""Handing back to the system the memory glibc's allocator keeps once a room is left.

A live session allocates and frees a lot natively (livekit's WebRTC: video frames of 1.4 MB at
720p, encoder and decoder buffers, packets) on many threads, and glibc gives threads arenas of
their own, up to eight per core. What is freed stays in those arenas; little of it goes back to
the system by itself. ``malloc_trim(0)`` returns the free pages in every arena's bins (20-60 MiB
after a batch of 4 live sessions, ``benchmarks/session_memory.py``). It does not return the
free top of a thread arena's heap, which glibc keeps up to its trim threshold (twice the
biggest block it has mapped and unmapped, up to 64 MiB): that part is bounded by fewer arenas
(``MALLOC_ARENA_MAX=2``, see the docs' Pools page), which is the application's choice.

:func:`release_soon` is called when a room has been left; the trim runs on a short-lived
thread of its own ``TRIM_DELAY`` seconds after the last such call (livekit goes on freeing for
a moment after its leave returns), or ``TRIM_LONGEST`` seconds after the first call of a
burst at the latest: one trim for a batch of sessions ending together. On glibc only; a no-op
elsewhere, and with ``WARMRTC_HEAP_TRIM=0``. A trim takes 20-40 ms on that thread (it holds
each arena's lock in turn, never the GIL): see :func:`stats`.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("warmrtc")

TRIM_ENV = "WARMRTC_HEAP_TRIM"
TRIM_DELAY = 1.0  # seconds after the last leave of a burst
TRIM_LONGEST = 5.0  # seconds after the first leave of a burst, at the latest


def enabled() -> bool:
    """False when :data:`TRIM_ENV` says no (``0``, ``false``, ``no``)."""
    return os.environ.get(TRIM_ENV, "").strip().lower() not in ("0", "false", "no")


def _glibc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)``, or None where the C library has none (musl, macOS,
    Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own: musl has no such symbol
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int

    def trim() -> None:
        function(0)

    return trim


@dataclass(frozen=True)
class TrimStats:
    """The trims of this process so far: how many, their total and longest time (seconds),
    and the resident memory they handed back (MiB, as /proc/self/statm saw it)."""

    trims: int = 0
    seconds: float = 0.0
    longest: float = 0.0
    released_mib: float = 0.0


class Trimmer:
    """Runs ``trim`` on a thread of its own, ``delay`` seconds after the last :meth:`request`
    of a burst and ``longest`` seconds after its first at the latest. A request made while a
    trim runs makes another one."""

    def __init__(self, trim: Callable[[], None], delay: float, longest: float) -> None:
        self._trim = trim
        self._delay = delay
        self._longest = longest
        self._cond = threading.Condition()
        self._first = 0.0  # the first request of the burst that waits
        self._due = 0.0
        self._waiting: threading.Thread | None = None  # the thread that waits for the due time
        self._threads: set[threading.Thread] = set()  # waiting or trimming
        self._stats = TrimStats()

    @property
    def stats(self) -> TrimStats:
        return self._stats

    def request(self) -> None:
        with self._cond:
            now = time.monotonic()
            if self._waiting is None:
                self._first = now
            # Never earlier than before: the waiting thread finds it when it wakes.
            self._due = min(now + self._delay, self._first + self._longest)
            if self._waiting is not None:
                return
            thread = threading.Thread(target=self._run, name="warmrtc-heap-trim", daemon=True)
            self._waiting = thread
            self._threads.add(thread)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a process limit): no trim, no harm
                self._waiting = None
                self._threads.discard(thread)

    def wait_idle(self, timeout: float) -> bool:
        """Waits (bounded) until no trim waits or runs; True when none does."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._threads and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return not self._threads

    def _run(self) -> None:
        with self._cond:
            # Bounded: the due time never passes the burst's first request + ``longest``.
            while (left := self._due - time.monotonic()) > 0:
                self._cond.wait(left)
            self._waiting = None  # from here on, a request starts another trim
        try:
            before = _rss_pages()
            started = time.perf_counter()
            self._trim()
            took = time.perf_counter() - started
            released = max(0, before - _rss_pages()) * _PAGE / 2**20
            with self._cond:
                old = self._stats
                self._stats = TrimStats(
                    old.trims + 1,
                    old.seconds + took,
                    max(old.longest, took),
                    old.released_mib + released,
                )
            log.debug("heap trim: %.1f MiB handed back in %.1f ms", released, took * 1e3)
        except Exception:  # a trim that failed freed nothing; say so, and go
            log.exception("heap trim failed")
        finally:
            with self._cond:
                self._threads.discard(threading.current_thread())
                self._cond.notify_all()


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_pages() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0


_trim = _glibc_trim()
_trimmer = Trimmer(_trim, TRIM_DELAY, TRIM_LONGEST) if _trim is not None else None


def release_soon() -> None:
    """A room was left: the allocator's free memory goes back to the system shortly (glibc,
    unless :data:`TRIM_ENV` says no). Any thread; returns at once."""
    if _trimmer is not None and enabled():
        _trimmer.request()


def stats() -> TrimStats:
    """This process's trims so far (all zero where there are none)."""
    return _trimmer.stats if _trimmer is not None else TrimStats()


def wait_idle(timeout: float) -> bool:
    """Waits (bounded) for a trim asked for to have run; True when none is left."""
    return _trimmer.wait_idle(timeout) if _trimmer is not None else True


__all__ = ["TRIM_ENV", "TrimStats", "Trimmer", "enabled", "release_soon", "stats", "wait_idle"]
