"""Giving memory back to the system after sessions end.

An inference participant's room decodes and encodes video on livekit's native threads; glibc
serves those threads from per-thread arenas and keeps freed blocks in them, so the process
stays hundreds of MB above its baseline after every session is gone although nothing is
referenced any more. ``malloc_trim(0)`` returns the free pages of every arena to the system.
A no-op where the C library has no ``malloc_trim`` (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

_libc_name = ctypes.util.find_library("c")
_malloc_trim = getattr(ctypes.CDLL(_libc_name), "malloc_trim", None) if _libc_name else None


def give_back() -> None:
    """Collects Python garbage, then returns the C heap's free pages to the system."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
