"""Where the service is and how a caller presents its key.

Facts (Decart's public SDKs: decart 0.2.4 on PyPI, DecartAI/sdk ``packages/sdk``): the realtime
stream is a websocket at ``/v1/stream`` with the key and the model in the query; the HTTP
endpoints (client tokens, spectator tokens) take the key in the ``x-api-key`` header. A base
URL may be given in its websocket or its HTTP spelling; each caller turns it into the one it
needs here, and nowhere else.
"""

from __future__ import annotations

import os
from urllib.parse import quote

DEFAULT_BASE_URL = "wss://api.decart.ai"
API_KEY_ENV = "DECART_API_KEY"  # where a key is looked up when none is passed
API_KEY_HEADER = "x-api-key"
URL_SCHEMES = ("ws://", "wss://", "http://", "https://")

STREAM_PATH = "/v1/stream"
TOKENS_PATH = "/v1/client/tokens"
QUOTA_PATH = "/v1/realtime/quota"
WATCH_PATH = "/watch-stream/"  # + the room's name
SESSIONS_PATH = "/sessions"  # the emulator's report of what it saw


class Secret:
    """A credential, shown as ``***`` by every repr and str: no log line, repr or frame an
    error tracker captures holds it. ``reveal()`` it where the protocol needs it (the stream's
    URL, a header), inside that one expression, and nowhere else."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def api_key(explicit: str | None) -> Secret:
    """``explicit``, else ``$DECART_API_KEY``; ValueError when neither gives a key."""
    key = explicit if explicit is not None else os.environ.get(API_KEY_ENV)
    if not isinstance(key, str) or not key:
        raise ValueError(f"no API key: pass api_key= or set {API_KEY_ENV}")
    return Secret(key)


def check_base_url(base_url: object) -> str | None:
    """``base_url`` when it is None or starts with a scheme the service speaks; ValueError
    otherwise."""
    if base_url is not None and (
        not isinstance(base_url, str) or not base_url.startswith(URL_SCHEMES)
    ):
        raise ValueError(
            f"base_url must start with ws://, wss://, http:// or https://: {base_url!r}"
        )
    return base_url


def ws_base(base_url: str) -> str:
    """The websocket spelling of a base URL (``https://`` -> ``wss://``), no trailing slash."""
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base


def http_base(base_url: str) -> str:
    """The HTTP spelling of a base URL (``wss://`` -> ``https://``), no trailing slash."""
    base = base_url.rstrip("/")
    if base.startswith("wss://"):
        return "https://" + base[len("wss://") :]
    if base.startswith("ws://"):
        return "http://" + base[len("ws://") :]
    return base


def stream_url(
    base_url: str,
    model: str,
    key: Secret,
    user_agent: str,
    *,
    resolution: str | None = None,
    speed: str | None = None,
) -> str:
    """The realtime stream's URL, as decart 0.2.4 builds it (the room info comes early; the
    ``resolution`` and ``speed`` asked for, when they are). It holds the key: build it inside
    the call that uses it, never into a variable."""
    asked = "".join(
        f"&{name}={quote(value)}"
        for name, value in (("resolution", resolution), ("speed", speed))
        if value is not None
    )
    return (
        f"{ws_base(base_url)}{STREAM_PATH}?api_key={quote(key.reveal())}&model={quote(model)}"
        f"&livekit_early_room_info=true{asked}&user_agent={quote(user_agent)}"
    )


def watch_url(base_url: str, room: str) -> str:
    return http_base(base_url) + WATCH_PATH + quote(room, safe="")


__all__ = [
    "API_KEY_ENV",
    "API_KEY_HEADER",
    "DEFAULT_BASE_URL",
    "QUOTA_PATH",
    "SESSIONS_PATH",
    "STREAM_PATH",
    "TOKENS_PATH",
    "WATCH_PATH",
    "Secret",
    "api_key",
    "check_base_url",
    "http_base",
    "stream_url",
    "watch_url",
    "ws_base",
]
