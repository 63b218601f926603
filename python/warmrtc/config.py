"""SessionConfig: everything a session is connected with, checked once, in one typed object.

``connect()``, ``connect_blocking()`` and ``WarmPool`` take the same keyword options
(:class:`ConnectOptions`); each turns them into a :class:`SessionConfig` before any network
work, so a bad option fails at the call that passed it, never later in a background task.
"""

from __future__ import annotations

import base64
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict, get_args

import numpy as np

from ._protocol.endpoints import DEFAULT_BASE_URL, Secret, check_base_url
from ._protocol.endpoints import api_key as resolve_api_key
from ._protocol.limits import check_prompt
from ._protocol.models import (
    DEFAULT_MODEL,
    REALTIME_MODELS,
    RESOLUTIONS,
    SPEEDS,
    RealtimeModel,
    Resolution,
    Speed,
)

if TYPE_CHECKING:
    from .events import Event
    from .state import State

ImageInput = bytes | bytearray | str | Path
OutputFormat = Literal["bgr24", "rgb24", "rgba", "bgra", "argb", "abgr", "gray", "i420"]
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
FrameCallback = Callable[[np.ndarray], None]
StateCallback = Callable[["State"], None]
EventCallback = Callable[["Event"], None]


class ConnectOptions(TypedDict, total=False):
    """The keyword options of :func:`warmrtc.connect` (and of connect_blocking and WarmPool).

    - ``api_key``: the service's key; default ``$DECART_API_KEY``. Never logged or shown.
    - ``base_url``: the service's address; default the public realtime endpoint.
    - ``prompt``: the initial prompt, applied before the first generated frame.
    - ``image``: an initial reference image (PNG/JPEG bytes or a file path).
    - ``output_format``: the layout of generated frames (default ``"bgr24"``).
    - ``on_frame``: called with every generated frame, on the event loop.
    - ``on_state``: called with every state change, on the event loop.
    - ``on_event``: called with every :class:`warmrtc.Event` (queue position, generation,
      billing ticks, state changes, reconnect attempts, service errors, stats), on the loop.
    - ``stats_interval``: seconds between :class:`warmrtc.StatsEvent` events (None: none).
    - ``timeout``: seconds the whole connect (and each reconnect attempt) may take (30).
    - ``reconnect_attempts``: tries after a lost connection before giving up (5; 0: none).
    - ``resolution``: ``"720p"`` or ``"1080p"``, asked of the service (None: the model's own).
    - ``speed``: ``"fast"``: the service's faster tier, where the model has one (lower latency,
      the same quality, billed at twice the rate); None: the standard tier.
    """

    api_key: str | None
    base_url: str | None
    prompt: str | None
    image: ImageInput | None
    output_format: OutputFormat
    on_frame: FrameCallback | None
    on_state: StateCallback | None
    on_event: EventCallback | None
    stats_interval: float | None
    timeout: float
    reconnect_attempts: int
    resolution: Resolution | None
    speed: Speed | None


@dataclass(frozen=True)
class SessionConfig:
    """A checked, resolved :class:`ConnectOptions`: the key looked up, the image encoded."""

    model: RealtimeModel
    api_key: Secret = field(repr=False)  # a credential: never in a repr
    base_url: str = DEFAULT_BASE_URL
    prompt: str | None = None
    image_base64: str | None = field(default=None, repr=False)
    output_format: OutputFormat = "bgr24"
    on_frame: FrameCallback | None = None
    on_state: StateCallback | None = None
    on_event: EventCallback | None = None
    stats_interval: float | None = None
    timeout: float = 30.0
    reconnect_attempts: int = 5
    resolution: Resolution | None = None
    speed: Speed | None = None

    @classmethod
    def of(
        cls,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        prompt: str | None = None,
        image: ImageInput | None = None,
        output_format: OutputFormat = "bgr24",
        on_frame: FrameCallback | None = None,
        on_state: StateCallback | None = None,
        on_event: EventCallback | None = None,
        stats_interval: float | None = None,
        timeout: float = 30,
        reconnect_attempts: int = 5,
        resolution: Resolution | None = None,
        speed: Speed | None = None,
    ) -> SessionConfig:
        """Checks every option; raises TypeError/ValueError naming the one that is wrong."""
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a model name such as {DEFAULT_MODEL!r}, got {model!r}")
        key = resolve_api_key(api_key)
        check_base_url(base_url)
        if prompt is not None:
            check_prompt_text(prompt)
        check_output_format(output_format)
        for name, callback in (
            ("on_frame", on_frame),
            ("on_state", on_state),
            ("on_event", on_event),
        ):
            check_callback(name, callback)
        seconds("timeout", timeout)
        if stats_interval is not None:
            seconds("stats_interval", stats_interval, optional=True)
        if (
            isinstance(reconnect_attempts, bool)
            or not isinstance(reconnect_attempts, int)
            or reconnect_attempts < 0
        ):
            raise ValueError(f"reconnect_attempts must be an int >= 0, got {reconnect_attempts!r}")
        if resolution is not None and resolution not in RESOLUTIONS:
            raise ValueError(
                f"resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}"
            )
        if speed is not None and speed not in SPEEDS:
            raise ValueError(f"speed must be one of {', '.join(SPEEDS)} or None, got {speed!r}")
        realtime = _model(model)
        if speed is not None and speed not in realtime.speeds:
            # As decart's own client does: sent all the same (the service may know better).
            warnings.warn(
                f"model {model!r} has no {speed!r} tier that we know of; the service ignores "
                "the option for models without it",
                UserWarning,
                stacklevel=3,
            )
        return cls(
            model=realtime,
            api_key=key,
            base_url=base_url or DEFAULT_BASE_URL,
            prompt=prompt,
            image_base64=None if image is None else encode_image(image),
            output_format=output_format,
            on_frame=on_frame,
            on_state=on_state,
            on_event=on_event,
            stats_interval=None if stats_interval is None else float(stats_interval),
            timeout=float(timeout),
            reconnect_attempts=reconnect_attempts,
            resolution=resolution,
            speed=speed,
        )


def check_prompt_text(prompt: object, *, optional: bool = False) -> str:
    """A prompt the service takes: a non-empty string within its length limit; ValueError
    otherwise (a prompt over the limit is refused here, before it is sent). ``optional``: the
    caller also takes None (and handles it), which the error says."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("prompt must be a non-empty string" + (" or None" * optional))
    check_prompt(prompt)
    return prompt


def check_output_format(output_format: object) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"output_format {output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}"
        )


def check_callback(name: str, callback: object) -> None:
    if callback is not None and not callable(callback):
        raise TypeError(f"{name} must be callable, got {type(callback).__name__}")


def seconds(name: str, value: object, *, zero: bool = False, optional: bool = False) -> float:
    """``value`` as seconds: a finite int or float, positive (``zero``: or 0). Raises
    TypeError/ValueError naming ``name`` otherwise. ``optional``: the caller also takes None
    (and handles it), which the TypeError says."""
    or_none = " or None" if optional else ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = type(value).__name__
        raise TypeError(f"{name} must be a number of seconds{or_none}, got {kind}")
    if not ((value >= 0 if zero else value > 0) and math.isfinite(value)):
        what = "a finite number of seconds >= 0" if zero else "a positive number of seconds"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def _model(name: str) -> RealtimeModel:
    # Unknown names still go to the service (it may serve newer models); 720p30 is assumed.
    return REALTIME_MODELS.get(name) or RealtimeModel(name, 1280, 720, 30)


def encode_image(image: ImageInput) -> str:
    """Base64 of an encoded image given as bytes or a file path."""
    if isinstance(image, bytes | bytearray):
        data = bytes(image)
    elif isinstance(image, str | Path):
        path = Path(image)
        if not path.is_file():
            raise ValueError(f"image {str(path)!r} is not a file")
        data = path.read_bytes()
    else:
        kind = type(image).__name__
        raise TypeError(f"image must be encoded image bytes (PNG/JPEG) or a file path, got {kind}")
    if not data:
        raise ValueError("image is empty")
    return base64.b64encode(data).decode("ascii")


__all__ = [
    "OUTPUT_FORMATS",
    "ConnectOptions",
    "EventCallback",
    "ImageInput",
    "OutputFormat",
    "SessionConfig",
]
