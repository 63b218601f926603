"""The control channel's messages, as Decart's public SDKs speak them (decart 0.2.4 on PyPI,
``decart/realtime/messages.py``; DecartAI/sdk ``packages/sdk/src/realtime/types.ts``).

Client to service:

- ``livekit_join``: lean, and says up front whether an initial state follows
  (``passthrough: false``); the initial prompt or image goes as its own message right after it
  (DecartAI/sdk #168). ``client_capabilities: {frame_timing: true}`` asks the service to echo
  each input frame's capture stamp on the frame generated from it (the JS SDK's
  ``debugQuality``). Other SDKs send other joins: none of these fields (Python), ``initial_state:
  null`` (C++), a whole prompt/set_image message inside ``initial_state`` (iOS/Android).
- ``prompt`` (``prompt``, ``enhance_prompt``); ``set_image`` (``image_data`` base64 or null,
  ``prompt``, ``enhance_prompt``; or ``image_ref``). ``set_image`` with a null image and no
  prompt is the passthrough form.

Service to client:

- ``livekit_room_info``: ``livekit_url``, ``token``, ``room_name``, ``session_id``;
- ``prompt_ack``: ``prompt``, ``success``, optional ``error`` (matched to its request by the
  prompt's text); ``set_image_ack``: ``success``, optional ``error`` (nothing to match it by:
  acks of a kind are taken in request order);
- ``error``: one field, ``error`` (text); no code or type. It answers every request in flight;
- ``generation_started``; ``generation_tick``: ``seconds``; ``generation_ended``: ``seconds``
  and ``reason``; ``queue_position``: ``position`` and ``queue_size``.

The builders below make each message; :func:`validated_event` checks the fields of an event
from the service, so that nothing the protocol does not allow reaches a session.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Message = dict[str, Any]

# ---- client to service ------------------------------------------------------------------


def join(*, frame_timing: bool, passthrough: bool = True) -> Message:
    """The lean ``livekit_join``: ``passthrough`` false when an initial prompt or image follows
    (the service then drops frames until it applies); ``client_capabilities`` only when frame
    timing is on."""
    message: Message = {"type": "livekit_join", "passthrough": passthrough}
    if frame_timing:
        message["client_capabilities"] = {"frame_timing": True}
    return message


def prompt(text: str, enhance: bool) -> Message:
    return {"type": "prompt", "prompt": text, "enhance_prompt": enhance}


def set_image(image_base64: str | None, prompt: str | None, enhance: bool | None) -> Message:
    message: Message = {"type": "set_image", "image_data": image_base64, "prompt": prompt}
    if enhance is not None:
        message["enhance_prompt"] = enhance
    return message


# ---- service to client ------------------------------------------------------------------


def room_info(livekit_url: str, token: str, room_name: str, session_id: str) -> Message:
    return {
        "type": "livekit_room_info",
        "livekit_url": livekit_url,
        "token": token,
        "room_name": room_name,
        "session_id": session_id,
    }


def prompt_ack(text: str, error: str | None = None) -> Message:
    message: Message = {"type": "prompt_ack", "prompt": text, "success": error is None}
    if error is not None:
        message["error"] = error
    return message


def set_image_ack(error: str | None = None) -> Message:
    message: Message = {"type": "set_image_ack", "success": error is None}
    if error is not None:
        message["error"] = error
    return message


def error(text: str) -> Message:
    return {"type": "error", "error": text}


def queue_position(position: int, queue_size: int) -> Message:
    return {"type": "queue_position", "position": position, "queue_size": queue_size}


def generation_started() -> Message:
    return {"type": "generation_started"}


def generation_tick(seconds: int) -> Message:
    return {"type": "generation_tick", "seconds": seconds}


def generation_ended(seconds: int, reason: str) -> Message:
    return {"type": "generation_ended", "seconds": seconds, "reason": reason}


# ---- checking what the service sent ----------------------------------------------------------


class BadField(Exception):
    """A message from the service with a field the protocol does not allow."""


def kind_of(value: object) -> str:
    """How a bad field is named in an error: missing, or its type."""
    return "missing" if value is None else f"got {type(value).__name__}"


def text_field(message: Message, field: str) -> str:
    value = message.get(field)
    if not isinstance(value, str) or not value:
        raise BadField(
            f"{message.get('type')} without a non-empty string {field!r} ({kind_of(value)})"
        )
    return value


def count_field(message: Message, field: str) -> int:
    """A whole number >= 0; a float with no fraction (JSON from JS) counts as one."""
    value = message.get(field)
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        number = None
    if number is None or number < 0:
        shown = repr(value) if isinstance(value, int | float) else kind_of(value)
        raise BadField(f"{message.get('type')} with a bad {field!r} ({shown})")
    return number


def _started(message: Message) -> Message:
    return generation_started()


def _tick(message: Message) -> Message:
    return generation_tick(count_field(message, "seconds"))


def _ended(message: Message) -> Message:
    event: Message = {"type": "generation_ended"}
    if message.get("seconds") is not None:
        event["seconds"] = count_field(message, "seconds")
    if message.get("reason") is not None:
        event["reason"] = text_field(message, "reason")
    return event


def _queue_position(message: Message) -> Message:
    event = {"type": "queue_position", "position": count_field(message, "position")}
    if message.get("queue_size") is not None:
        event["queue_size"] = count_field(message, "queue_size")
    return event


_EVENTS: dict[str, Callable[[Message], Message]] = {
    "generation_started": _started,
    "generation_tick": _tick,
    "generation_ended": _ended,
    "queue_position": _queue_position,
}
EVENT_TYPES = frozenset(_EVENTS)


def validated_event(message: Message) -> Message:
    """An event of :data:`EVENT_TYPES` with only the fields the protocol allows, checked;
    BadField otherwise."""
    return _EVENTS[message["type"]](message)
