"""How the service says no: websocket close codes and HTTP statuses, and the typed error each
one means. Failures are classified by this structure, never by the words of a message; the
service's own text is kept as the exception's message.

Facts: a refused new session over the concurrency limit is closed with 1013, "try again later"
(DecartAI/sdk ``examples/realtime-session-queue/README.md``); a session the service ends on
purpose (a client token's ``maxSessionDuration``) gets ``generation_ended`` with a reason, then
a normal close. Decart's public SDKs name no other code: the private ones below are the local
emulator's, and the client follows it until the service's are known.
"""

from __future__ import annotations

import enum

from aiohttp import WSCloseCode

from ..errors import (
    AuthenticationError,
    ConcurrencyLimitError,
    ConnectionLostError,
    ModelError,
    ProtocolError,
    SessionEndedError,
    WarmrtcError,
)


class PrivateClose(enum.IntEnum):
    """The emulator's close codes (the 4000-4999 private range) for a refused session."""

    INVALID_KEY = 4001
    NOT_ALLOWED = 4003  # a client token's allowedModels / allowedOrigins
    UNKNOWN_MODEL = 4004


LIMIT_CLOSE_CODE = WSCloseCode.TRY_AGAIN_LATER
# Closes that say the peer broke the protocol: bad frame, data type or payload, too big.
_PROTOCOL_CLOSES = frozenset(
    {
        WSCloseCode.PROTOCOL_ERROR,
        WSCloseCode.UNSUPPORTED_DATA,
        WSCloseCode.INVALID_TEXT,
        WSCloseCode.MESSAGE_TOO_BIG,
    }
)
_AUTH_CLOSES = frozenset(
    {WSCloseCode.POLICY_VIOLATION, PrivateClose.INVALID_KEY, PrivateClose.NOT_ALLOWED}
)


def error_for_status(
    status: int, text: str, *, not_found: type[WarmrtcError] = ProtocolError
) -> WarmrtcError:
    """The exception for an HTTP refusal with ``status``. What a 404 means depends on what was
    asked for (an unknown model, no live session...): ``not_found`` says it."""
    if status in (401, 403):
        return AuthenticationError(text)
    if status == 404:
        return not_found(text)
    if status == 429:
        return ConcurrencyLimitError(text)
    if 400 <= status < 500:
        return ProtocolError(text)
    return ConnectionLostError(text)  # 5xx and anything else: the service is not there now


def error_for_handshake(status: int, detail: str) -> WarmrtcError:
    """The exception for a websocket handshake the service refused with HTTP ``status``."""
    text = f"the service refused the control channel (HTTP {status}): {detail}"
    return error_for_status(status, text, not_found=ModelError)


def error_for_close(
    code: int | None, reason: str, service_error: str | None, ended: str | None = None
) -> WarmrtcError:
    """The exception for a control channel the service closed with ``code``.

    ``service_error`` is the text of an ``error`` message the service sent just before closing
    (the protocol's error message carries only text); it becomes the exception's message.
    ``ended`` is the reason of a ``generation_ended`` the service sent before it: followed by a
    normal close and no error, the service ended the session on purpose.
    """
    what = f"close code {code}" if code is not None else "no close code"
    closed = f"the service closed the control channel ({what})" + (f": {reason}" if reason else "")
    text = service_error or closed
    if code == LIMIT_CLOSE_CODE:
        return ConcurrencyLimitError(service_error or reason or closed)
    if code in _AUTH_CLOSES:
        return AuthenticationError(text)
    if code == PrivateClose.UNKNOWN_MODEL:
        return ModelError(text)
    if ended is not None and code == WSCloseCode.OK and service_error is None:
        return SessionEndedError(f"the service ended the session: {ended}", ended)
    if code in _PROTOCOL_CLOSES or service_error is not None:
        return ProtocolError(text)
    return ConnectionLostError(closed)


__all__ = [
    "LIMIT_CLOSE_CODE",
    "PrivateClose",
    "error_for_close",
    "error_for_handshake",
    "error_for_status",
]
