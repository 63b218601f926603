"""State: where a session is in its life (``session.state``)."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    """A session's state; compares equal to its string value (``"connected"``...)."""

    CONNECTING = "connecting"  # connect() has not returned yet
    CONNECTED = "connected"  # usable; the model is not generating (warm, muted or idle)
    GENERATING = "generating"  # unmuted and the model is producing frames
    RECONNECTING = "reconnecting"  # the control channel or the media room went away
    DISCONNECTED = "disconnected"  # for good: disconnect(), or reconnecting gave up


__all__ = ["State"]
