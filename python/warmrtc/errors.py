"""The exceptions a session raises. All derive from WarmrtcError."""

from __future__ import annotations


class WarmrtcError(Exception):
    """Base of every warmrtc session error."""


class AuthenticationError(WarmrtcError):
    """The service refused the API key."""


class ModelError(WarmrtcError):
    """The service does not serve the requested model."""


class ProtocolError(WarmrtcError):
    """The service answered something the protocol does not allow, or reported an error."""


class ConnectionLostError(WarmrtcError):
    """The control channel or the media room went away."""


class SessionClosedError(WarmrtcError):
    """The session is disconnected; connect a new one."""


class ConnectTimeoutError(WarmrtcError, TimeoutError):
    """A step of connecting, or an acknowledgement, did not arrive in time."""


class PoolTimeoutError(WarmrtcError, TimeoutError):
    """WarmPool.acquire() found no warm session within its timeout."""


class RejectedError(WarmrtcError):
    """The service acknowledged a prompt or image with success = false."""


def classify_service_error(text: str) -> WarmrtcError:
    """The exception for an ``error`` message of the service, from its text."""
    lowered = text.lower()
    if "api key" in lowered or "unauthorized" in lowered or "auth" in lowered:
        return AuthenticationError(text)
    if "model" in lowered:
        return ModelError(text)
    return ProtocolError(text)
