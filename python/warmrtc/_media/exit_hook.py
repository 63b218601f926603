"""A clean exit for a process that used livekit: no native thread may call into Python late.

livekit's Python SDK starts its FFI with log capture on: every log record of the Rust and
WebRTC code, and every room, track and stream event, reaches Python through a ctypes callback
run on a native (tokio) thread, which first takes the GIL. On CPython <= 3.13 a thread that
asks for the GIL once the interpreter is finalizing is ended with ``pthread_exit``; unwinding
through the Rust frames of that thread aborts the process ("panic in a function that cannot
unwind"). livekit registers ``livekit_ffi_dispose`` at exit (python-sdks #274), which closes
the rooms and then stops the callbacks; but the callbacks already under way when it returns
(room close makes a burst of them, and a log line from the dispose itself) still need the GIL,
and the interpreter goes on to finalize under them.

:func:`shutdown`, run at exit before livekit's own dispose, does it in an order that leaves
no callback behind:

1. log forwarding off (the FFI is initialized again with the same callback and
   ``capture_logs=False``), so closing the rooms does not make a callback per log line;
2. livekit's dispose: every room still open is closed natively (the event loops are usually
   gone by then), and from its return on the FFI calls no callback at all;
3. the GIL is released until the callbacks that started before step 2 ended have returned:
   a native thread holds a Python thread state from the moment it asks for the GIL until
   its callback returns, so they are done when the only thread states left are those of
   Python's own threads (bounded by ``DRAIN_SECONDS``; a library that keeps thread states
   of its own makes it wait the whole bound, nothing worse).

Use: :func:`install` once livekit's FFI client exists; :class:`warmrtc.VideoSource` does
it, so every session, pool and blocking session is covered. Idempotent, and a no-op in a
forked child (livekit's FFI does not survive a fork).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import time

from livekit.rtc import _ffi_client
from livekit.rtc.version import __version__ as _livekit_version

#: How long (at most) callbacks already under way are given to return, with the GIL free.
DRAIN_SECONDS = 1.0
_DRAIN_STEP = 0.005

_lock = threading.Lock()
_installed_pid: int | None = None
_done_pid: int | None = None


def install() -> None:
    """Registers :func:`shutdown` to run at exit, before livekit's own dispose. Idempotent.

    Call it after ``FfiClient.instance`` exists (it creates it otherwise): exit handlers run
    last-registered first, and livekit registers its dispose when its client starts.
    """
    global _installed_pid
    with _lock:
        if _installed_pid == os.getpid():
            return
        _ffi_client.FfiClient.instance  # noqa: B018 - started first, so disposed after us
        _installed_pid = os.getpid()
        atexit.register(shutdown)


def shutdown() -> None:
    """Closes every livekit room and stops the FFI's callbacks into Python, then waits for
    the ones under way. Runs at exit; callable earlier (after it livekit cannot be used again
    in this process). Idempotent; returns within about ``DRAIN_SECONDS`` plus room closing."""
    global _done_pid
    with _lock:
        if _done_pid == os.getpid():
            return
        _done_pid = os.getpid()
    ffi = _ffi_client.FfiClient._instance
    if ffi is None or ffi._pid != os.getpid():
        return
    if not _ffi_client.FfiClient._ffi_disposed:
        # Same callback, capture_logs=False: Rust logs go to its own env_logger from now on.
        ffi._ffi_lib.livekit_ffi_initialize(
            _ffi_client.ffi_event_callback, False, b"python", _livekit_version.encode("ascii")
        )
        ffi._dispose()
    deadline = time.monotonic() + DRAIN_SECONDS
    steps = 0
    while time.monotonic() < deadline:
        time.sleep(_DRAIN_STEP)  # the GIL is free while we sleep
        steps += 1
        # Two steps at least: a callback may be between its start and asking for the GIL.
        if steps >= 2 and _foreign_thread_states() == 0:
            break


def _foreign_thread_states() -> int:
    """Thread states of threads Python did not start: native threads inside a callback.

    Called with the GIL held: thread states are deleted only under the GIL, and a new one
    is linked in at the head, so walking the list from its head is safe.
    """
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    states = 0
    state = api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        states += 1
        state = api.PyThreadState_Next(state)
    # Dummy threads are native threads Python code once asked about; they keep no state.
    own = sum(not isinstance(t, threading._DummyThread) for t in threading.enumerate())
    return states - own
