"""Optional OpenTelemetry metrics, through ``opentelemetry-api`` alone (``warmrtc[otel]``).

Without the package, or without a MeterProvider configured by the application, nothing is
recorded and nothing changes. Instruments (meter ``warmrtc``):

- ``warmrtc.frames.generated`` (counter): generated frames delivered to the app;
- ``warmrtc.billed_seconds`` (counter): billed seconds, as the service's ticks add them;
- ``warmrtc.connect.duration`` (histogram, s): ``connect()`` from start to track published;
- ``warmrtc.first_frame.duration`` (histogram, s): unmute -> the first generated frame.

Every point carries the attribute ``model``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from .._version import __version__

log = logging.getLogger("warmrtc")

_otel: Any
try:
    _otel = importlib.import_module("opentelemetry.metrics")
except ImportError:  # the extra is not installed: metrics are off
    _otel = None


class Metrics:
    """The session's instruments; every method is a no-op without opentelemetry-api.

    ``provider``: a MeterProvider (tests); default the application's global one.
    """

    def __init__(self, model: str, provider: Any = None) -> None:
        self._attributes = {"model": model}
        self._frames: Any = None
        self._billed: Any = None
        self._connect: Any = None
        self._first_frame: Any = None
        if provider is None and _otel is None:
            return
        try:
            meter = (provider or _otel.get_meter_provider()).get_meter("warmrtc", __version__)
            self._frames = meter.create_counter(
                "warmrtc.frames.generated", unit="{frame}", description="generated frames"
            )
            self._billed = meter.create_counter(
                "warmrtc.billed_seconds", unit="s", description="billed seconds"
            )
            self._connect = meter.create_histogram(
                "warmrtc.connect.duration", unit="s", description="connect() duration"
            )
            self._first_frame = meter.create_histogram(
                "warmrtc.first_frame.duration",
                unit="s",
                description="unmute to the first generated frame",
            )
        except Exception:  # a broken provider must not break the session
            log.exception("OpenTelemetry metrics could not be set up; they are off")
            self._frames = self._billed = self._connect = self._first_frame = None

    def frame(self) -> None:
        if self._frames is not None:
            self._frames.add(1, self._attributes)

    def billed(self, seconds: int) -> None:
        if self._billed is not None and seconds > 0:
            self._billed.add(seconds, self._attributes)

    def connected(self, seconds: float) -> None:
        if self._connect is not None:
            self._connect.record(seconds, self._attributes)

    def first_frame(self, seconds: float) -> None:
        if self._first_frame is not None:
            self._first_frame.record(seconds, self._attributes)


__all__ = ["Metrics"]
