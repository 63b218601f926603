"""Realtime models of the Decart service: the resolution and frame rate each one runs at."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RealtimeModel:
    name: str
    width: int
    height: int
    fps: int


_MODELS = [
    RealtimeModel("lucy-2.1", 1280, 720, 30),
    RealtimeModel("lucy-2.5", 1280, 720, 30),
    RealtimeModel("lucy-2.6", 1280, 720, 30),
    RealtimeModel("lucy-vton-3.5", 1280, 720, 30),
    RealtimeModel("lucy-vton-3.6", 1280, 720, 30),
    RealtimeModel("lucy-restyle-2", 1280, 704, 30),
    RealtimeModel("lucy-latest", 1280, 720, 30),
    RealtimeModel("lucy-vton-latest", 1280, 720, 30),
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
