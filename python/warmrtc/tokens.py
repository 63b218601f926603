"""Client tokens: short-lived keys for browsers and devices, minted on a server from the API key.

``create_client_token()`` calls the service's token API, ``POST /v1/client/tokens`` with the
key in ``X-API-KEY`` (as DecartAI/sdk ``packages/sdk/src/tokens/client.ts`` and decart 0.2.4's
``decart/tokens/client.py`` do). The returned :class:`ClientToken`'s ``key`` (``ek_...``) is
passed to ``connect(api_key=...)`` like an API key: the service then enforces the token's
expiry, allowed models and origins, and ends sessions after ``max_session_duration`` seconds
(the session then ends with :class:`~warmrtc.errors.SessionEndedError`). Its sessions count
against the concurrency limit of the key it was minted from.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._protocol.endpoints import DEFAULT_BASE_URL, TOKENS_PATH, check_base_url, http_base
from ._protocol.endpoints import api_key as resolve_api_key
from ._protocol.limits import MAX_TOKEN_EXPIRES_IN, MAX_TOKEN_ITEMS
from ._service_http import post_json
from .config import seconds
from .errors import ProtocolError


@dataclass(frozen=True)
class ClientToken:
    """A client token. ``key`` and ``token`` are credentials: no repr shows them."""

    key: str = field(repr=False)  # "ek_...": pass it as connect(api_key=...)
    expires_at: datetime  # UTC
    allowed_models: tuple[str, ...] | None = None  # None: any model
    allowed_origins: tuple[str, ...] | None = None  # None: any origin
    max_session_duration: int | None = None  # seconds; None: no limit of the token's own
    token: str | None = field(default=None, repr=False)  # the signed JWT twin of ``key``


async def create_client_token(
    api_key: str | None = None,
    *,
    base_url: str | None = None,
    expires_in: int = 60,
    allowed_models: list[str] | tuple[str, ...] | None = None,
    allowed_origins: list[str] | tuple[str, ...] | None = None,
    max_session_duration: int | None = None,
    timeout: float = 10.0,
) -> ClientToken:
    """Mints a client token from ``api_key`` (default ``$DECART_API_KEY``).

    ``expires_in``: seconds the token can be used to connect (1..3600). ``allowed_models`` /
    ``allowed_origins``: at most 20 each (origins are full, e.g. ``https://example.com``, and
    matched against the websocket's ``Origin`` header). ``max_session_duration``: seconds after
    which the service ends a session opened with the token.

    Raises ValueError for a bad argument (before any request), AuthenticationError when the
    key is refused, ProtocolError when the service refuses the request, ConnectTimeoutError /
    ConnectionLostError when it cannot be reached in ``timeout`` seconds.
    """
    key = resolve_api_key(api_key)
    body = _request_body(expires_in, allowed_models, allowed_origins, max_session_duration)
    url = http_base(check_base_url(base_url) or DEFAULT_BASE_URL) + TOKENS_PATH
    seconds("timeout", timeout)
    data = await post_json(url, key, body, what="the token API", timeout=timeout)
    return _token_of(data)


def create_client_token_blocking(api_key: str | None = None, **options: Any) -> ClientToken:
    """:func:`create_client_token` for code without an event loop (not from inside one)."""
    return asyncio.run(create_client_token(api_key, **options))


def _request_body(
    expires_in: int,
    models: list[str] | tuple[str, ...] | None,
    origins: list[str] | tuple[str, ...] | None,
    max_session_duration: int | None,
) -> dict[str, Any]:
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise TypeError(f"expires_in must be an int (seconds), got {type(expires_in).__name__}")
    if not 1 <= expires_in <= MAX_TOKEN_EXPIRES_IN:
        raise ValueError(f"expires_in must be 1..{MAX_TOKEN_EXPIRES_IN} seconds, got {expires_in}")
    body: dict[str, Any] = {"expiresIn": expires_in}
    for name, field_name, values in (
        ("allowed_models", "allowedModels", models),
        ("allowed_origins", "allowedOrigins", origins),
    ):
        if values is None:
            continue
        if isinstance(values, str) or not all(isinstance(v, str) and v for v in values):
            raise TypeError(f"{name} must be a list of non-empty strings, got {values!r}")
        if len(values) > MAX_TOKEN_ITEMS:
            raise ValueError(f"{name} has {len(values)} items; the service takes {MAX_TOKEN_ITEMS}")
        body[field_name] = list(values)
    if max_session_duration is not None:
        d = max_session_duration
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"max_session_duration must be a whole number >= 1, got {d!r}")
        body["constraints"] = {"realtime": {"maxSessionDuration": d}}
    return body


def _token_of(data: object) -> ClientToken:
    if not isinstance(data, dict):
        raise ProtocolError("the token API answered something other than a JSON object")
    key, expires = data.get("apiKey"), data.get("expiresAt")
    if not isinstance(key, str) or not key or not isinstance(expires, str):
        raise ProtocolError("the token API's answer lacks apiKey or expiresAt")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"the token API's expiresAt is no ISO 8601 time: {expires!r}") from None
    permissions = data.get("permissions") or {}
    constraints = data.get("constraints") or {}
    realtime = constraints.get("realtime") if isinstance(constraints, dict) else None
    duration = realtime.get("maxSessionDuration") if isinstance(realtime, dict) else None
    jwt = data.get("token")
    return ClientToken(
        key=key,
        expires_at=expires_at,
        allowed_models=_names(permissions, "models"),
        allowed_origins=_names(permissions, "origins"),
        max_session_duration=duration if isinstance(duration, int) else None,
        token=jwt if isinstance(jwt, str) else None,
    )


def _names(permissions: object, field_name: str) -> tuple[str, ...] | None:
    values = permissions.get(field_name) if isinstance(permissions, dict) else None
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else None


__all__ = ["ClientToken", "create_client_token", "create_client_token_blocking"]
