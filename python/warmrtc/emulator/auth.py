"""Who is calling: an API key the emulator was started with, or a live client token of one.

Every endpoint authenticates. The control channel takes the credential in its ``api_key``
query parameter (as Decart's SDKs send it, a client token in place of the key); the HTTP
endpoints in the ``x-api-key`` header (as the SDKs send it to ``/v1/client/tokens`` and
``/watch-stream``). A caller sees and acts on its own sessions only: an API key those of the
key and of every token minted from it, a client token only the sessions opened with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .tokens import IssuedToken, TokenIssuer


@dataclass(frozen=True)
class Caller:
    owner: str  # the API key whose limit and sessions this caller's are
    token: IssuedToken | None = None  # set when the caller used a client token

    def __repr__(self) -> str:  # the key is a credential
        return f"Caller(token={self.token!r})"

    def owns(self, owner: str, token_key: str | None) -> bool:
        """True when a session of ``owner`` opened with ``token_key`` is this caller's."""
        if owner != self.owner:
            return False
        return self.token is None or token_key == self.token.key


class Authenticator:
    def __init__(self, api_keys: frozenset[str], tokens: TokenIssuer) -> None:
        self._api_keys = api_keys
        self.tokens = tokens

    def resolve(self, credential: str | None) -> Caller | None:
        """The caller ``credential`` names; None when it is missing, unknown or expired."""
        if not credential:
            return None
        if credential in self._api_keys:
            return Caller(credential)
        token = self.tokens.find(credential)
        return Caller(token.owner, token) if token is not None else None

    def http_caller(self, request: web.Request) -> Caller:
        """The caller of an HTTP request, or a 401 answer (raised) without a valid key."""
        caller = self.resolve(request.headers.get("x-api-key"))
        if caller is None:
            raise web.HTTPUnauthorized(
                text='{"error": "Invalid API key"}', content_type="application/json"
            )
        return caller
