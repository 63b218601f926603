"""Arrays that end exactly at a PROT_NONE guard page, so reading one byte past them is SIGSEGV.

Native code handed such a view must stay inside the view's real extent: every row but the last
is ``row_stride`` bytes apart, and the last row ends after its own pixels.
"""

from __future__ import annotations

import ctypes
import mmap

import numpy as np

PAGE = mmap.PAGESIZE
PROT_NONE = 0  # <sys/mman.h>; the mmap module has PROT_READ and PROT_WRITE only
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int


def guarded(nbytes: int) -> np.ndarray:
    """A 1-d uint8 array of ``nbytes`` whose last byte is the last one before a guard page.

    The memory is anonymous and reserved lazily (``MAP_NORESERVE``): views with huge strides
    cost address space, not RAM. It is unmapped when the array and its views are gone.
    """
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    data_pages = -(-nbytes // PAGE)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
    region = mmap.mmap(-1, (data_pages + 1) * PAGE, flags=flags)
    whole = np.frombuffer(region, np.uint8)
    guard = whole.ctypes.data + data_pages * PAGE
    if _libc.mprotect(ctypes.c_void_p(guard), PAGE, PROT_NONE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect of the guard page failed")
    end = data_pages * PAGE
    return whole[end - nbytes : end]


def guarded_plane(
    rows: int,
    cols: int,
    channels: int = 1,
    *,
    row_stride: int | None = None,
    col_step: int = 1,
    fill: int = 0,
) -> np.ndarray:
    """A (rows, cols) or (rows, cols, channels) uint8 view laid out like a crop ``big[:, -w:]``.

    Rows are ``row_stride`` bytes apart (default: as close as the columns allow), pixels
    ``col_step * channels`` bytes apart (a ``[:, ::col_step]`` view when col_step > 1). The
    view's last byte sits right before the guard page: there is no slack after the last row's
    last pixel. ``fill`` sets every byte of the view.
    """
    pixel = col_step * channels
    row_span = (cols - 1) * pixel + channels if cols > 0 else 0
    stride = cols * pixel if row_stride is None else row_stride
    if stride < row_span:
        raise ValueError(f"row_stride {stride} is shorter than a row's {row_span} bytes")
    extent = (rows - 1) * stride + row_span if rows > 0 else 0
    memory = guarded(extent)
    shape: tuple[int, ...] = (rows, cols, channels) if channels > 1 else (rows, cols)
    strides: tuple[int, ...] = (stride, pixel, 1) if channels > 1 else (stride, pixel)
    view = np.lib.stride_tricks.as_strided(memory, shape, strides)
    view[...] = fill
    return view
