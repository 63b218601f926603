"""warmrtc: stream live video into a realtime video-to-video model, with an instant Start.

The native core converts frames to I420 (libyuv), gates them with an atomic mute flag and hands
them to LiveKit's FFI with the GIL released.
"""

from ._core import from_i420, i420_shape, to_i420
from ._version import __version__
from .blocking import (
    BlockingSession,
    BlockingSpectator,
    BlockingWarmPool,
    connect_blocking,
    watch_blocking,
)
from .budget import Budget, Lease, LocalBudget
from .check import CheckReport, CheckStep, check, check_blocking
from .config import ConnectOptions, SessionConfig
from .errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    ConnectTimeoutError,
    ModelError,
    PoolCapacityError,
    PoolTimeoutError,
    ProtocolError,
    RejectedError,
    SessionClosedError,
    SessionEndedError,
    WarmrtcError,
)
from .events import (
    Event,
    GenerationEndedEvent,
    GenerationStartedEvent,
    GenerationTickEvent,
    QueuePositionEvent,
    ReconnectEvent,
    ServiceErrorEvent,
    StateChangeEvent,
    StatsEvent,
)
from .latency import Latency
from .pool import PoolStats, WarmPool
from .redis_budget import RedisBudget
from .session import Session, connect
from .source import VideoSource
from .state import State
from .stats import SessionStats
from .tokens import ClientToken, create_client_token, create_client_token_blocking
from .watch import Spectator, watch

__all__ = [
    "AuthenticationError",
    "BlockingSession",
    "BlockingSpectator",
    "BlockingWarmPool",
    "Budget",
    "CheckReport",
    "CheckStep",
    "ClientToken",
    "ConcurrencyLimitError",
    "ConnectOptions",
    "ConnectTimeoutError",
    "ConnectionLostError",
    "Event",
    "GenerationEndedEvent",
    "GenerationStartedEvent",
    "GenerationTickEvent",
    "Latency",
    "Lease",
    "LocalBudget",
    "ModelError",
    "PoolCapacityError",
    "PoolStats",
    "PoolTimeoutError",
    "ProtocolError",
    "QueuePositionEvent",
    "ReconnectEvent",
    "RedisBudget",
    "RejectedError",
    "ServiceErrorEvent",
    "Session",
    "SessionClosedError",
    "SessionConfig",
    "SessionEndedError",
    "SessionStats",
    "Spectator",
    "State",
    "StateChangeEvent",
    "StatsEvent",
    "VideoSource",
    "WarmPool",
    "WarmrtcError",
    "__version__",
    "check",
    "check_blocking",
    "connect",
    "connect_blocking",
    "create_client_token",
    "create_client_token_blocking",
    "from_i420",
    "i420_shape",
    "to_i420",
    "watch",
    "watch_blocking",
]
