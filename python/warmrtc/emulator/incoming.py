"""Reading one control message from a client, within limits. Bad input gets an ``error``.

Limits (the service's own are not published; these are the emulator's, documented in the
README): a message of up to ``MAX_MESSAGE_BYTES`` is read (an image arrives base64-encoded in
one message); one up to ``HARD_MESSAGE_BYTES`` is answered with an ``error`` and skipped; a
larger one ends the socket with close code 1009 (message too big) as the websocket layer
refuses to buffer it. JSON nested deeper than ``MAX_DEPTH`` and prompts longer than
``MAX_PROMPT_CHARS`` are answered with an ``error``; a refused prompt is never echoed back.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .._protocol import limits
from .._protocol.limits import MAX_DEPTH, MAX_MESSAGE_BYTES

_BRACKETS = re.compile(r'[\[\]{}"\\]')


class BadMessage(ValueError):
    """A message the emulator answers with an ``error`` (its text)."""


def parse(text: str) -> dict[str, Any]:
    """The message in ``text``: a JSON object with a string ``type``, or BadMessage."""
    if len(text) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message of {len(text)} bytes is over the limit of {MAX_MESSAGE_BYTES}")
    if nesting_depth(text) > MAX_DEPTH:
        raise BadMessage(f"message nests deeper than {MAX_DEPTH} levels")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadMessage(f"malformed JSON: {e}") from None
    except RecursionError:  # cannot happen after the depth check; never let it end the socket
        raise BadMessage(f"message nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise BadMessage("a message is a JSON object with a string 'type'")
    return message


def check_prompt(prompt: str) -> None:
    """Raises BadMessage for a prompt over the length limit (without quoting it)."""
    try:
        limits.check_prompt(prompt)
    except ValueError as e:
        raise BadMessage(str(e)) from None


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, brackets inside strings aside.

    Scans only brackets, quotes and backslashes (a regular expression finds them), so a long
    base64 string costs one pass of the regex engine, not a Python loop over its characters.
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # the position a backslash inside a string escapes
    for match in _BRACKETS.finditer(text):
        c, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if c == "\\":
                escaped_at = at + 1
            elif c == '"':
                in_string = False
            continue
        if c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest  # no need to read on
        elif c in "]}":
            depth -= 1
    return deepest


__all__ = [
    "BadMessage",
    "check_prompt",
    "nesting_depth",
    "parse",
]
