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

The functions below classify a failure of the service by the protocol's structure (the HTTP
status of a refused websocket handshake, the websocket close code), never by the words of a
message. The service's own text is kept as the exception's message.
"""

from __future__ import annotations


class WarmrtcError(Exception):
    """Base of every warmrtc session error."""

    retryable: bool = True


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


# Websocket close codes (RFC 6455 section 7.4.1, and the 4000-4999 private range).
CLOSE_NORMAL = 1000
CLOSE_POLICY_VIOLATION = 1008
CLOSE_TRY_AGAIN_LATER = 1013  # Decart: "Concurrent session limit reached."
_CLOSE_PROTOCOL = {1002, 1003, 1007, 1009}  # protocol error, bad data type or payload, too big
# The private codes the local emulator uses for a refused key or an unknown model. Decart's
# public SDKs name no 4xxx code; these follow the emulator until the service's are known.
_CLOSE_PRIVATE = {4001: "auth", 4003: "auth", 4004: "model"}


def error_for_handshake(status: int, detail: str) -> WarmrtcError:
    """The exception for a websocket handshake the service refused with HTTP ``status``."""
    text = f"the service refused the control channel (HTTP {status}): {detail}"
    if status in (401, 403):
        return AuthenticationError(text)
    if status == 404:
        return ModelError(text)
    if status == 429:
        return ConcurrencyLimitError(text)
    if 400 <= status < 500:
        return ProtocolError(text)
    return ConnectionLostError(text)  # 5xx and anything else: the service is not there now


def error_for_close(
    code: int | None, reason: str, service_error: str | None, ended: str | None = None
) -> WarmrtcError:
    """The exception for a control channel the service closed with ``code``.

    ``service_error`` is the text of the last ``error`` message the service sent before closing
    (the protocol's error message carries only text); it becomes the exception's message.
    ``ended`` is the reason of a ``generation_ended`` the service sent before it: followed by a
    normal close (1000) and no error, the service ended the session on purpose.
    """
    what = f"close code {code}" if code is not None else "no close code"
    closed = f"the service closed the control channel ({what})" + (f": {reason}" if reason else "")
    text = service_error or closed
    if code == CLOSE_TRY_AGAIN_LATER:
        return ConcurrencyLimitError(service_error or reason or closed)
    if code == CLOSE_POLICY_VIOLATION:
        return AuthenticationError(text)
    if ended is not None and code == CLOSE_NORMAL and service_error is None:
        return SessionEndedError(f"the service ended the session: {ended}", ended)
    kind = _CLOSE_PRIVATE.get(code) if code is not None else None
    if kind == "auth":
        return AuthenticationError(text)
    if kind == "model":
        return ModelError(text)
    if code in _CLOSE_PROTOCOL or service_error is not None:
        return ProtocolError(text)
    return ConnectionLostError(closed)
