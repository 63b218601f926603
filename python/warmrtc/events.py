"""Typed events: everything the service says and the session does, as frozen dataclasses.

Every event is an :class:`Event` (``at``: unix seconds when warmrtc saw it). A session hands
them to ``on_event`` (on the event loop) and to every ``session.events()`` reader, in order.

What the service says (the control channel):

- :class:`QueuePositionEvent`: the session waits for a model; ``position`` (1: next),
  ``queue_size`` (None when the service does not say).
- :class:`GenerationStartedEvent`: the model started generating (frames reached it).
- :class:`GenerationTickEvent`: a billing tick; ``seconds`` billed in this service session,
  ``billed_seconds`` over the whole warmrtc session (reconnects included).
- :class:`GenerationEndedEvent`: the service ended generation; ``seconds`` (None when it does
  not say) and ``reason`` (the service's words, e.g. ``"client_disconnected"``, or None).
- :class:`ServiceErrorEvent`: the service's ``error`` message, ``message``.

What the session does:

- :class:`StateChangeEvent`: ``old`` -> ``new`` (:class:`warmrtc.State`) and ``reason``; the
  same changes ``on_state`` sees, in the same order.
- :class:`ReconnectEvent`: one reconnect attempt ended; ``attempt`` (1, 2, ...) of
  ``max_attempts``; ``error``: why it failed, None when it succeeded.
- :class:`StatsEvent`: ``stats``, a :class:`warmrtc.SessionStats`, every ``stats_interval``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import WarmrtcError
    from .state import State
    from .stats import SessionStats


@dataclass(frozen=True)
class Event:
    """The base of every warmrtc event. ``at``: unix time (seconds) when it happened."""

    at: float = field(default_factory=time.time, kw_only=True, compare=False)


@dataclass(frozen=True)
class QueuePositionEvent(Event):
    """The service queued the session: ``position`` in the queue (1: next), ``queue_size``."""

    position: int
    queue_size: int | None = None


@dataclass(frozen=True)
class GenerationStartedEvent(Event):
    """The service says the model started generating."""


@dataclass(frozen=True)
class GenerationTickEvent(Event):
    """A billing tick: ``seconds`` billed in this service session (the service's count, from 0
    after a reconnect), ``billed_seconds`` over the whole session (``session.billed_seconds``)."""

    seconds: int
    billed_seconds: int


@dataclass(frozen=True)
class GenerationEndedEvent(Event):
    """The service ended generation: ``seconds`` billed in the service session and ``reason``,
    each None when the service does not say."""

    seconds: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ServiceErrorEvent(Event):
    """The service sent an ``error`` message; ``message`` is its text."""

    message: str


@dataclass(frozen=True)
class StateChangeEvent(Event):
    """The session's state changed from ``old`` to ``new``; ``reason`` says why."""

    old: State
    new: State
    reason: str


@dataclass(frozen=True)
class ReconnectEvent(Event):
    """A reconnect attempt ended: ``attempt`` (from 1) of ``max_attempts``; ``error`` is why
    it failed, None when it succeeded."""

    attempt: int
    max_attempts: int
    error: WarmrtcError | None = None


@dataclass(frozen=True)
class StatsEvent(Event):
    """The session's figures, sent every ``stats_interval`` seconds."""

    stats: SessionStats


__all__ = [
    "Event",
    "GenerationEndedEvent",
    "GenerationStartedEvent",
    "GenerationTickEvent",
    "QueuePositionEvent",
    "ReconnectEvent",
    "ServiceErrorEvent",
    "StateChangeEvent",
    "StatsEvent",
]
