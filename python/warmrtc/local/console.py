"""The console of ``warmrtc demo`` and ``warmrtc check``: a child's stderr, less one kind of
line that nobody caused.

OpenH264, the H.264 encoder inside livekit's native library, writes "Warning:Actual input
framerate X is different from framerate in setting Y, suggest to use other rate control modes"
to stderr whenever the frame rate it measures strays from the one it was set up with: after an
unmute, a pause, a resume. It is a note about its rate control that no app can act on, and the
library gives no way to turn it off. Both commands already run as a child inside the local
stack; :func:`pump` passes the child's stderr on from the parent, every other line as it comes.
It runs in the parent, so a child that crashes still has its last words shown in full.
"""

from __future__ import annotations

import re
import sys
import threading
from typing import IO

ENCODER_NOTE = re.compile(
    rb"^\[OpenH264\] this = 0x[0-9a-fA-Fx]+, Warning:Actual input framerate -?[0-9.]+ is "
    rb"different from framerate in setting -?[0-9.]+, suggest to use other rate control modes"
    rb"\r?\n?$"
)
DRAIN = 5.0  # seconds the parent waits, after the child ended, for the last of its stderr


def shown(line: bytes) -> bool:
    """False for the encoder's rate-control note, True for every other line."""
    return ENCODER_NOTE.match(line) is None


def pump(stream: IO[bytes], out: IO[bytes] | None = None) -> threading.Thread:
    """Starts a thread that copies ``stream`` to ``out`` (this process's stderr) line by line,
    dropping the encoder's note, until the stream ends; join it (bounded by :data:`DRAIN`) once
    the child has. Closes ``stream`` at the end."""
    target = out if out is not None else getattr(sys.stderr, "buffer", None)

    def copy() -> None:
        with stream:
            for line in iter(stream.readline, b""):
                if not shown(line):
                    continue
                if target is not None:
                    target.write(line)
                    target.flush()
                else:  # a stderr without bytes underneath (replaced by the app)
                    sys.stderr.write(line.decode(errors="replace"))
                    sys.stderr.flush()

    thread = threading.Thread(target=copy, name="warmrtc-stderr", daemon=True)
    thread.start()
    return thread


__all__ = ["DRAIN", "ENCODER_NOTE", "pump", "shown"]
