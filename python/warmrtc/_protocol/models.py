"""Realtime models of the Decart service: the size and frame rate each one runs at, the speed
tiers each serves, and the options a session may ask for on connect (decart 0.2.4 on PyPI,
``decart/models.py`` and ``decart/realtime``; Decart's JS SDK 0.1.20 ``realtime/client``):

- ``resolution``: ``720p`` or ``1080p`` (the stream URL's ``resolution``; the default is the
  model's own);
- ``speed``: ``fast`` serves the session from a higher-compute tier (lower latency, the same
  quality, billed at twice the rate) where the model has that tier; the service ignores it for
  the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Resolution = Literal["720p", "1080p"]
Speed = Literal["fast"]
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)
SPEEDS: tuple[str, ...] = get_args(Speed)


@dataclass(frozen=True)
class RealtimeModel:
    name: str
    width: int
    height: int
    fps: int
    speeds: tuple[str, ...] = ()  # the speed tiers besides the standard one


_FAST = ("fast",)
_MODELS = [
    RealtimeModel("lucy-2.1", 1280, 720, 30),
    RealtimeModel("lucy-2.5", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-2.6", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-vton-3.5", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-vton-3.6", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-restyle-2", 1280, 704, 30),
    RealtimeModel("lucy-latest", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-vton-latest", 1280, 720, 30, _FAST),
    RealtimeModel("lucy-restyle-latest", 1280, 704, 30),
]
REALTIME_MODELS: dict[str, RealtimeModel] = {m.name: m for m in _MODELS}

DEFAULT_MODEL = "lucy-2.6"  # what connect(), WarmPool, watch and check use unless told
# The model's participant in a session's room; the official clients read only their video.
INFERENCE_IDENTITY_PREFIX = "inference-server-"


def realtime_model(name: str) -> RealtimeModel:
    """The model called `name`; ValueError naming the known ones otherwise."""
    try:
        return REALTIME_MODELS[name]
    except KeyError:
        known = ", ".join(REALTIME_MODELS)
        raise ValueError(f"unknown realtime model {name!r}; expected one of {known}") from None
