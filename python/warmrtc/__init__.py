"""warmrtc: stream live video into a realtime video-to-video model, with an instant Start.

The native core converts frames to I420 (libyuv), gates them with an atomic mute flag and hands
them to LiveKit's FFI with the GIL released.
"""

from ._core import from_i420, i420_shape, to_i420
from ._version import __version__
from .blocking import BlockingSession, connect_blocking
from .errors import (
    AuthenticationError,
    ConnectionLostError,
    ConnectTimeoutError,
    ModelError,
    ProtocolError,
    RejectedError,
    SessionClosedError,
    WarmrtcError,
)
from .session import Session, connect
from .source import VideoSource

__all__ = [
    "AuthenticationError",
    "BlockingSession",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "ModelError",
    "ProtocolError",
    "RejectedError",
    "Session",
    "SessionClosedError",
    "VideoSource",
    "WarmrtcError",
    "__version__",
    "connect",
    "connect_blocking",
    "from_i420",
    "i420_shape",
    "to_i420",
]
