"""StatsRecorder: the figures only the session can measure, and its OpenTelemetry instruments."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol

from .._media.rtc_stats import RtcFigures
from ..latency import Latency
from ..stats import SessionStats
from .metrics import Metrics

if TYPE_CHECKING:
    from .._core import PipelineStats

log = logging.getLogger("warmrtc")


class Unmuted(Protocol):
    @property
    def unmuted_at(self) -> float | None:
        """time.monotonic() of the last unmute; None before one."""


class StatsRecorder:
    """The figures only the session can measure, and the OpenTelemetry instruments: generated
    frames, setup time, the last unmute -> first generated frame, billed seconds reported, and
    the send bitrate between two ``stats()`` calls. Runs on the session's loop."""

    def __init__(self, metrics: Metrics, switch: Unmuted, gate: PipelineStats) -> None:
        self._metrics = metrics
        # The source's counters when the session began: frames before it are not its own.
        self._gate_before = gate
        self._switch = switch  # its clock of the last unmute
        self._lock = threading.Lock()  # dropped frames are counted on other threads
        self.generated = 0
        self.dropped = 0
        self.setup_s: float | None = None
        self.first_frame_s: float | None = None
        self._connected_at: float | None = None  # monotonic, when connect() returned
        self._live_since: float | None = None  # the going-live a first frame was measured for
        self._billed_reported = 0
        self._last_sent: tuple[float, int] | None = None  # (monotonic, bytes_sent)

    def connected(self, setup_s: float) -> None:
        self.setup_s = setup_s
        self._connected_at = time.monotonic()
        self._metrics.connected(setup_s)

    def frame_generated(self) -> None:
        self.generated += 1
        self._metrics.frame()
        # Going live: the last unmute, or connect()'s return for a session connected live.
        since = self._switch.unmuted_at
        if since is None:
            since = self._connected_at
        if since is not None and since != self._live_since:
            self._live_since = since
            self.first_frame_s = time.monotonic() - since
            self._metrics.first_frame(self.first_frame_s)
            log.debug("first generated frame %.0f ms after going live", self.first_frame_s * 1000)

    def frame_dropped(self) -> None:
        """A generated frame its reader was too slow for (from any thread)."""
        with self._lock:
            self.dropped += 1

    def billed(self, billed_seconds: int) -> None:
        self._metrics.billed(billed_seconds - self._billed_reported)
        self._billed_reported = max(self._billed_reported, billed_seconds)

    def send_bitrate(self, bytes_sent: int | None) -> float | None:
        """Bits per second since the last call; None on the first (or a new room)."""
        if bytes_sent is None:
            return None
        now, last = time.monotonic(), self._last_sent
        self._last_sent = (now, bytes_sent)
        if last is None or bytes_sent < last[1] or now - last[0] <= 0:
            return None
        return (bytes_sent - last[1]) * 8 / (now - last[0])

    def _since(self, gate: PipelineStats, counter: str) -> int:
        return int(gate[counter]) - int(self._gate_before[counter])  # type: ignore[literal-required]

    def snapshot(
        self,
        *,
        state: str,
        gate: PipelineStats,
        figures: RtcFigures,
        billed_seconds: int,
        latency: Latency | None,
    ) -> SessionStats:
        return SessionStats(
            at=time.time(),
            state=state,
            frames_captured=self._since(gate, "captured"),
            frames_sent=self._since(gate, "converted"),
            frames_dropped_muted=self._since(gate, "dropped_while_muted"),
            frames_dropped_closed=self._since(gate, "dropped_closed"),
            frames_encoded=figures.frames_encoded,
            frames_sent_rtp=figures.frames_sent_rtp,
            encode_fps=figures.encode_fps,
            target_bitrate_bps=figures.target_bitrate_bps,
            send_bitrate_bps=self.send_bitrate(figures.bytes_sent),
            upload_fraction_lost=figures.upload_fraction_lost,
            frames_received=figures.frames_received,
            frames_decoded=figures.frames_decoded,
            frames_dropped=figures.frames_dropped,
            freeze_count=figures.freeze_count,
            total_freeze_duration_s=figures.total_freeze_duration_s,
            jitter_s=figures.jitter_s,
            packets_lost=figures.packets_lost,
            packets_received=figures.packets_received,
            rtt_s=figures.rtt_s,
            generated_frames=self.generated,
            generated_frames_dropped=self.dropped,
            billed_seconds=billed_seconds,
            setup_s=self.setup_s,
            unmute_to_first_frame_s=self.first_frame_s,
            latency_ms_p50=latency.p50_ms if latency else None,
            latency_ms_p95=latency.p95_ms if latency else None,
        )


__all__ = ["StatsRecorder"]
