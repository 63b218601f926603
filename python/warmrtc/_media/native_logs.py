"""Where livekit's native logs go: not into Python, unless asked for.

livekit's Python SDK starts its FFI with log capture on: every record of the Rust SDK and of
WebRTC, at every level down to trace, crosses into Python one by one (a callback on a native
thread that takes the GIL and parses a protobuf), and the SDK then drops the debug and trace
ones. An idle, connected session makes some 30 of them a second (WebRTC's ICE connectivity
checks log each ping): most of what a warm session cost this process's Python while idle.

:func:`configure` turns the capture off once per process (the FFI is initialized again with the
same callback and ``capture_logs=False``, as livekit allows). The native logs then go to the
Rust SDK's own logger: errors to stderr, more with ``RUST_LOG`` (e.g. ``RUST_LOG=livekit=debug``).
``WARMRTC_LIVEKIT_LOGS=1`` keeps livekit's default: every record forwarded to Python's
``livekit`` logger.
"""

from __future__ import annotations

import os
import threading

from livekit.rtc import _ffi_client
from livekit.rtc.version import __version__ as _livekit_version

LOGS_ENV = "WARMRTC_LIVEKIT_LOGS"

_lock = threading.Lock()
_configured_pid: int | None = None


def forwarded() -> bool:
    """True when livekit's native logs are to reach Python's ``livekit`` logger."""
    return os.environ.get(LOGS_ENV, "").strip().lower() in ("1", "true", "yes")


def configure() -> None:
    """Stops livekit's native logs from crossing into Python, unless :data:`LOGS_ENV` asks
    for them. Once per process (and again in a forked child); idempotent."""
    global _configured_pid
    with _lock:
        if _configured_pid == os.getpid():
            return
        _configured_pid = os.getpid()
        if forwarded():
            return
        ffi = _ffi_client.FfiClient.instance
        if _ffi_client.FfiClient._ffi_disposed:
            return
        ffi._ffi_lib.livekit_ffi_initialize(
            _ffi_client.ffi_event_callback, False, b"python", _livekit_version.encode("ascii")
        )


__all__ = ["LOGS_ENV", "configure", "forwarded"]
