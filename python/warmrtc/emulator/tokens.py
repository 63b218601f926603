"""Client tokens: short-lived keys minted from an API key, as ``POST /v1/client/tokens`` does.

What the service's token API takes and returns (DecartAI/sdk ``packages/sdk/src/tokens/client.ts``;
decart 0.2.4 on PyPI, ``decart/tokens/client.py`` and ``types.py``): the request is sent with
the API key in ``X-API-KEY`` and a JSON body with the optional ``metadata``, ``expiresIn``
(seconds, 1-3600, default 60), ``allowedModels`` and ``allowedOrigins`` (20 items at most each)
and ``constraints: {realtime: {maxSessionDuration}}``; the answer is ``apiKey`` (``ek_...``),
``token`` (a signed JWT with the same scope and expiry), ``expiresAt`` (ISO 8601), and
``permissions: {models, origins}`` / ``constraints`` when they were set. Either form is accepted
in place of the API key on the control channel. Allowed origins are matched verbatim against
the websocket's ``Origin`` header.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

MAX_EXPIRES_IN = 3600
DEFAULT_EXPIRES_IN = 60
MAX_LIST_ITEMS = 20
KEY_PREFIX = "ek_"


class TokenRequestError(ValueError):
    """A token request the service would refuse (HTTP 400)."""


@dataclass(frozen=True)
class IssuedToken:
    key: str  # ek_...
    jwt: str
    owner: str  # the API key it was minted from: its sessions count into that key's limit
    expires_at: float  # unix seconds
    models: tuple[str, ...] | None  # None: any model
    origins: tuple[str, ...] | None  # None: any origin
    max_session_duration: int | None  # seconds; None: no limit of its own

    def __repr__(self) -> str:  # credentials
        return f"IssuedToken(key={self.key[:6]}..., expires_at={self.expires_at})"

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


class TokenIssuer:
    """Mints client tokens and finds them again by either of their two forms."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._tokens: dict[str, IssuedToken] = {}  # by key and by JWT

    def mint(self, owner: str, body: object) -> tuple[IssuedToken, dict[str, Any]]:
        """A new token of ``owner`` from the request ``body``, and the response to send."""
        if not isinstance(body, dict):
            raise TokenRequestError("the request body is a JSON object")
        expires_in = body.get("expiresIn", DEFAULT_EXPIRES_IN)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int):
            raise TokenRequestError(f"expiresIn must be an integer, got {expires_in!r}")
        if not 1 <= expires_in <= MAX_EXPIRES_IN:
            raise TokenRequestError(f"expiresIn must be 1..{MAX_EXPIRES_IN}, got {expires_in}")
        models = _names(body, "allowedModels")
        origins = _names(body, "allowedOrigins")
        duration = _max_session_duration(body.get("constraints"))
        self._purge()
        expires_at = int(time.time()) + expires_in
        key = KEY_PREFIX + secrets.token_urlsafe(24)
        claims: dict[str, Any] = {"sub": key, "exp": expires_at}
        if models is not None:
            claims["models"] = list(models)
        if origins is not None:
            claims["origins"] = list(origins)
        token = IssuedToken(
            key=key,
            jwt=jwt.encode(claims, self._secret, algorithm="HS256"),
            owner=owner,
            expires_at=expires_at,
            models=models,
            origins=origins,
            max_session_duration=duration,
        )
        self._tokens[token.key] = token
        self._tokens[token.jwt] = token
        stamp = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        response: dict[str, Any] = {"apiKey": token.key, "token": token.jwt, "expiresAt": stamp}
        if models is not None or origins is not None:
            permissions: dict[str, Any] = {}
            if models is not None:
                permissions["models"] = list(models)
            if origins is not None:
                permissions["origins"] = list(origins)
            response["permissions"] = permissions
        if duration is not None:
            response["constraints"] = {"realtime": {"maxSessionDuration": duration}}
        return token, response

    def find(self, credential: str) -> IssuedToken | None:
        """The live token ``credential`` names (its key or its JWT); None if unknown or expired."""
        token = self._tokens.get(credential)
        if token is None or token.expired():
            return None
        return token

    def _purge(self) -> None:
        now = time.time()
        for name in [n for n, t in self._tokens.items() if t.expired(now)]:
            del self._tokens[name]


def _names(body: dict[str, Any], field: str) -> tuple[str, ...] | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TokenRequestError(f"{field} must be a list of non-empty strings")
    if len(value) > MAX_LIST_ITEMS:
        raise TokenRequestError(f"{field} has {len(value)} items; at most {MAX_LIST_ITEMS}")
    return tuple(value)


def _max_session_duration(constraints: object) -> int | None:
    if constraints is None:
        return None
    realtime = constraints.get("realtime") if isinstance(constraints, dict) else None
    if not isinstance(realtime, dict):
        raise TokenRequestError("constraints must be {realtime: {maxSessionDuration: seconds}}")
    value = realtime.get("maxSessionDuration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TokenRequestError(f"maxSessionDuration must be a whole number >= 1, got {value!r}")
    return value
