"""Giving memory back to the system after sessions end.

What an ended session leaves behind is native, and most of it is let go late: livekit tears a
room's peer connections, encoders and their threads down on its own threads after
``Room.disconnect()`` returned, and the RSS keeps falling for 20-40 s after the last session
(measured with 50 sessions: ~1 GiB above the baseline 3 s after they ended, and no Python
object of livekit's, no FFI handle, left by then). What glibc then keeps is mostly the
emulator's 720p frame buffers (1.4 MB each): glibc raises its mmap threshold to the size of
the largest block freed so far, so after the first frame such buffers come from the heaps,
whose freed memory stays with the process. ``limit_heap_retention`` pins the threshold
(as ``MALLOC_MMAP_THRESHOLD_`` would): a block of 256 KiB or more is its own mapping, given
back when freed. ``give_back`` collects Python garbage and returns the heaps' free pages.
Both are no-ops where the C library has no ``mallopt`` / ``malloc_trim`` (macOS, musl,
Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os

# glibc's mallopt parameter, and the threshold the measurement was made with.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024

_libc = ctypes.CDLL(_name) if (_name := ctypes.util.find_library("c")) else None
_malloc_trim = getattr(_libc, "malloc_trim", None)
_mallopt = getattr(_libc, "mallopt", None)


def limit_heap_retention() -> bool:
    """Pins glibc's mmap threshold at ``MMAP_THRESHOLD`` unless the environment sets
    ``MALLOC_MMAP_THRESHOLD_``. Call it first thing, before livekit's threads start. True
    when it was set."""
    if _mallopt is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    return bool(_mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def give_back() -> None:
    """Collects Python garbage, then returns the C heap's free pages to the system."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
