"""What a process that uses livekit's FFI needs once, before its first room or source: its
rooms closed and the FFI's callbacks stopped before the interpreter finalizes
(:mod:`.exit_hook`), and livekit's native logs kept native (:mod:`.native_logs`). A session
has a source, a spectator has a room: both call :func:`prepare`."""

from __future__ import annotations

from . import exit_hook, native_logs


def prepare() -> None:
    """Idempotent, cheap after the first call (and again in a forked child)."""
    exit_hook.install()
    native_logs.configure()


__all__ = ["prepare"]
