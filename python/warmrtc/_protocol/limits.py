"""The service's numbers: delays, sizes and bounds that the client and the emulator share.

Where the service publishes none, the number is the emulator's, and the client follows it.
"""

from __future__ import annotations

# A session's slot of the concurrency limit is free again about this long after a clean
# disconnect, and after a client that crashed (its websocket dropped without a close).
RELEASE_DELAY = 5.0
CRASH_RELEASE_DELAY = 45.0
# Seconds between websocket pings, both ways; a peer that stops answering ends the channel.
HEARTBEAT = 20.0
LIMIT_MESSAGE = "Concurrent session limit reached."  # the refusal's error text
LIMIT_CLOSE_REASON = "Session Limit Reached"  # ... and its close reason
MAX_SESSION_REASON = "timeout"  # generation_ended's reason at a token's maxSessionDuration

# Messages: up to MAX_MESSAGE_BYTES are read (an image comes base64-encoded in one); up to
# HARD_MESSAGE_BYTES are answered with an error; larger ones end the socket (close 1009).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
HARD_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 32  # JSON nesting; no message of the protocol nests deeper than 3
MAX_PROMPT_CHARS = 10_000

# Client tokens (POST /v1/client/tokens).
MAX_TOKEN_EXPIRES_IN = 3600  # seconds; the service's default is 60
MAX_TOKEN_ITEMS = 20  # allowed models, allowed origins


def check_prompt(prompt: str) -> None:
    """ValueError when ``prompt`` is longer than the service takes."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"prompt of {len(prompt)} characters is over the limit of {MAX_PROMPT_CHARS}"
        )


__all__ = [
    "CRASH_RELEASE_DELAY",
    "HARD_MESSAGE_BYTES",
    "HEARTBEAT",
    "LIMIT_CLOSE_REASON",
    "LIMIT_MESSAGE",
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "MAX_PROMPT_CHARS",
    "MAX_SESSION_REASON",
    "MAX_TOKEN_EXPIRES_IN",
    "MAX_TOKEN_ITEMS",
    "RELEASE_DELAY",
    "check_prompt",
]
