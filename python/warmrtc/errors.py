"""The exceptions a session raises. All derive from WarmrtcError.

Every class says with ``retryable`` whether trying again (reconnecting, warming another session)
can succeed. Callers decide by that flag, not by lists of classes:

=======================  =========  ==========================================================
class                    retryable  meaning
=======================  =========  ==========================================================
AuthenticationError      False      the key (or its permissions) was refused
ModelError               False      the service does not serve the model
RejectedError            False      the service refused this prompt or image (ack success=false)
SessionClosedError       False      the session was disconnected; connect a new one
SessionEndedError        False      (a SessionClosedError) the service ended the session on
                                    purpose (a token's maxSessionDuration...): its ``reason``
ConcurrencyLimitError    True       the organisation's concurrent sessions are all in use:
                                    retry later, with a back-off, not at once
ConnectionLostError      True       the control channel or the media room went away
ConnectTimeoutError      True       a step or an acknowledgement did not arrive in time
ProtocolError            True       the service sent something the protocol does not allow,
                                    or reported an ``error``
PoolTimeoutError         True       no warm session was ready in time
PoolCapacityError        True       ... because the pool's budget or the service's concurrency
                                    limit held its warm-ups back (a PoolTimeoutError)
=======================  =========  ==========================================================

A failure of the service is classified by the protocol's structure (the HTTP status of a
refusal, the websocket close code), never by the words of a message; the service's own text is
kept as the exception's message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stats import ConnectStep


class WarmrtcError(Exception):
    """Base of every warmrtc session error. A connect that failed says how far it got in
    ``connect_steps`` (:class:`~warmrtc.stats.ConnectStep` objects, the failed one last; empty
    otherwise)."""

    retryable: bool = True
    connect_steps: tuple[ConnectStep, ...] = ()


class AuthenticationError(WarmrtcError):
    """The service refused the API key (or what the key may do)."""

    retryable = False


class ModelError(WarmrtcError):
    """The service does not serve the requested model."""

    retryable = False


class ProtocolError(WarmrtcError):
    """The service answered something the protocol does not allow, or reported an error."""

    retryable = True


class ConcurrencyLimitError(WarmrtcError):
    """The service refused a new session: the concurrent session limit is reached.

    A capacity signal, not a fault: a slot frees a few seconds after another session of the
    organisation ends, so retry later with a back-off (not in a tight loop).
    """

    retryable = True


class ConnectionLostError(WarmrtcError):
    """The control channel or the media room went away."""

    retryable = True


class SessionClosedError(WarmrtcError):
    """The session is disconnected; connect a new one."""

    retryable = False


class SessionEndedError(SessionClosedError):
    """The service ended the session on purpose: ``generation_ended`` with a reason, then a
    normal close (as when a client token's ``maxSessionDuration`` is reached). Not a lost
    connection, so nothing reconnects: connect a new session (with a new token) if needed."""

    retryable = False

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason  # the service's reason, e.g. "timeout"

    def __reduce__(self) -> tuple[object, ...]:  # copies keep the reason
        return (type(self), (self.args[0], self.reason))


class ConnectTimeoutError(WarmrtcError, TimeoutError):
    """A step of connecting, or an acknowledgement, did not arrive in time."""

    retryable = True


class PoolTimeoutError(WarmrtcError, TimeoutError):
    """WarmPool.acquire() found no warm session within its timeout."""

    retryable = True


class PoolCapacityError(PoolTimeoutError):
    """WarmPool.acquire() found no warm session in time because warm-ups were held back: the
    pool's budget is full or the service's concurrency limit refused them (``stats.held_back``
    says which)."""

    retryable = True


class RejectedError(WarmrtcError):
    """The service acknowledged a prompt or image with success = false."""

    retryable = False
