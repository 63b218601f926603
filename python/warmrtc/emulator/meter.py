"""The emulator's billing meter: a second is billed when client frames reached the model in it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Meter:
    """Counts frames and billed seconds of one session. Seconds are counted from `started`."""

    started: float = field(default_factory=time.monotonic)
    frames_received: int = 0
    billed_seconds: int = 0
    first_frame_at: float | None = None  # unix time
    last_frame_at: float | None = None
    muted: bool | None = None  # as the media server reports the client's track; None: no track
    _last_bucket: int = -1

    def frame(self, now: float | None = None) -> bool:
        """Records one frame; True when it opened a newly billed second."""
        now = time.monotonic() if now is None else now
        wall = time.time()
        self.frames_received += 1
        self.first_frame_at = self.first_frame_at or wall
        self.last_frame_at = wall
        bucket = int(now - self.started)
        if bucket == self._last_bucket:
            return False
        self._last_bucket = bucket
        self.billed_seconds += 1
        return True
