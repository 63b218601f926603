"""One HTTP request to the service's endpoints (client tokens, spectator tokens): the key in
its header, the answer's status classified into a typed error, the JSON body returned."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from ._protocol.endpoints import API_KEY_HEADER, Secret
from ._protocol.refusals import error_for_status
from .errors import ConnectionLostError, ConnectTimeoutError, ProtocolError, WarmrtcError

DETAIL_CHARS = 500  # of a refusal's body, quoted in the error


async def post_json(
    url: str,
    key: Secret,
    body: dict[str, Any] | None = None,
    *,
    what: str,
    timeout: float,
    not_found: type[WarmrtcError] = ProtocolError,
    http: aiohttp.ClientSession | None = None,
) -> Any:
    """POSTs ``body`` to ``url`` with ``key``; returns the parsed JSON answer.

    ``what`` names the endpoint in errors ("the token API"). Raises the typed error of a
    refusal (:func:`~warmrtc._protocol.refusals.error_for_status`, ``not_found`` for a 404),
    ProtocolError for an answer that is not JSON, ConnectTimeoutError past ``timeout`` and
    ConnectionLostError when the service cannot be reached. ``http``: a session to reuse (one
    per client object); without it the call makes and closes its own."""
    failure: WarmrtcError | None = None
    try:
        async with asyncio.timeout(timeout):
            if http is not None:
                return await _post(http, url, key, body, what, not_found)
            async with aiohttp.ClientSession() as own:
                return await _post(own, url, key, body, what, not_found)
    except TimeoutError:
        failure = ConnectTimeoutError(f"{what} did not answer within {timeout:g} s")
    except aiohttp.ClientError as e:
        failure = ConnectionLostError(f"{what} could not be reached: {e}")
    # Raised outside the `except` blocks, so that it carries no context: aiohttp's frames
    # hold the request's headers, the key among them.
    raise failure


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    key: Secret,
    body: dict[str, Any] | None,
    what: str,
    not_found: type[WarmrtcError],
) -> Any:
    # The headers hold the key: made inside the call, they are in no variable of ours.
    async with http.post(
        url, json=body, headers={API_KEY_HEADER: key.reveal(), "content-type": "application/json"}
    ) as response:
        text = await response.text()
        if response.status != 200:
            detail = _detail(text) or response.reason or ""
            message = f"{what} refused the request (HTTP {response.status}): {detail}"
            raise error_for_status(response.status, message, not_found=not_found)
    try:
        return json.loads(text)
    except ValueError:
        raise ProtocolError(f"{what}'s answer is not JSON") from None


def _detail(text: str) -> str:
    """The service's ``{"error": ...}`` text, else the start of the body."""
    text = text[:DETAIL_CHARS]
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    return text


__all__ = ["post_json"]
