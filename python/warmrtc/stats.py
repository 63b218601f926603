"""SessionStats: one typed snapshot of a live session's figures, and where each comes from.

Sources (nothing here is estimated: a figure its source does not give is None):

- the source's native gate (``VideoSource.stats``): frames captured, sent, dropped;
- the published track's WebRTC stats (livekit ``LocalVideoTrack.get_stats()``):
  ``outbound_rtp`` (encoder), ``remote_inbound_rtp`` (what the media server reports back),
  ``candidate_pair`` (round-trip time of the publishing connection);
- the model's output track's WebRTC stats (``RemoteVideoTrack.get_stats()``): ``inbound_rtp``
  (received, decoded, freezes, jitter, loss) and ``candidate_pair``;
- the session itself (:class:`StatsRecorder`): generated frames delivered, billed seconds,
  connect duration and unmute -> first generated frame.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._session.metrics import Metrics
from .latency import Latency

if TYPE_CHECKING:
    from ._core import PipelineStats

log = logging.getLogger("warmrtc")


@dataclass(frozen=True)
class SessionStats:
    """A session's figures at ``at`` (unix seconds). Counters count from the session's start
    (the WebRTC ones from the current room join: a reconnect starts them again)."""

    at: float
    state: str
    # The source's native gate (VideoSource.stats).
    frames_captured: int
    frames_sent: int  # handed to WebRTC
    frames_dropped_muted: int  # dropped by the gate while muted
    frames_dropped_closed: int
    # The encoder (the published track's outbound_rtp; None before it is published).
    frames_encoded: int | None
    frames_sent_rtp: int | None  # outbound_rtp frames_sent
    encode_fps: float | None  # outbound_rtp frames_per_second
    target_bitrate_bps: float | None  # outbound_rtp target_bitrate (the encoder's target)
    send_bitrate_bps: float | None  # outbound_rtp bytes_sent since the last stats() call
    upload_fraction_lost: float | None  # remote_inbound_rtp fraction_lost, as the server saw it
    # The model's output (inbound_rtp of its track; None before it arrives).
    frames_received: int | None
    frames_decoded: int | None
    frames_dropped: int | None  # dropped by the decoder / jitter buffer
    freeze_count: int | None
    total_freeze_duration_s: float | None
    jitter_s: float | None  # inbound_rtp jitter, seconds
    packets_lost: int | None  # inbound_rtp packets_lost
    packets_received: int | None
    # Round-trip time, seconds: the publishing connection's nominated candidate pair's current
    # RTT, else remote_inbound_rtp round_trip_time, else the subscribing connection's pair.
    rtt_s: float | None
    # The session.
    generated_frames: int  # frames delivered to on_frame / frames()
    billed_seconds: int
    setup_s: float | None  # connect() duration: control channel to track published
    unmute_to_first_frame_s: float | None  # the last unmute -> the first generated frame after it
    # Glass-to-glass latency (frame metadata stamps): not measured yet, always None here.
    latency_ms_p50: float | None = None
    latency_ms_p95: float | None = None


@dataclass(frozen=True)
class RtcFigures:
    """What livekit's stats give for one session (a part of :class:`SessionStats`)."""

    frames_encoded: int | None = None
    frames_sent_rtp: int | None = None
    encode_fps: float | None = None
    target_bitrate_bps: float | None = None
    bytes_sent: int | None = None
    upload_fraction_lost: float | None = None
    frames_received: int | None = None
    frames_decoded: int | None = None
    frames_dropped: int | None = None
    freeze_count: int | None = None
    total_freeze_duration_s: float | None = None
    jitter_s: float | None = None
    packets_lost: int | None = None
    packets_received: int | None = None
    rtt_s: float | None = None


def rtc_figures(published: Iterable[Any], output: Iterable[Any]) -> RtcFigures:
    """The figures from livekit ``RtcStats`` lists: the published track's and the output
    track's (either may be empty). A field livekit did not set stays None."""
    published, output = list(published), list(output)
    outbound = [s.outbound_rtp for s in published if s.HasField("outbound_rtp")]
    remote_in = [s.remote_inbound_rtp for s in published if s.HasField("remote_inbound_rtp")]
    inbound = [s.inbound_rtp for s in output if s.HasField("inbound_rtp")]
    out = [o.outbound for o in outbound]
    inb = [i.inbound for i in inbound]
    received = [i.received for i in inbound]
    rtt = _rtt(published)
    if rtt is None:
        rtt = _first(r.remote_inbound for r in remote_in if r.HasField("remote_inbound"))
    if rtt is None:
        rtt = _rtt(output)
    return RtcFigures(
        frames_encoded=_sum(out, "frames_encoded"),
        frames_sent_rtp=_sum(out, "frames_sent"),
        encode_fps=_sum(out, "frames_per_second"),
        target_bitrate_bps=_sum(out, "target_bitrate"),
        bytes_sent=_sum([o.sent for o in outbound], "bytes_sent"),
        upload_fraction_lost=_max([r.remote_inbound for r in remote_in], "fraction_lost"),
        frames_received=_sum(inb, "frames_received"),
        frames_decoded=_sum(inb, "frames_decoded"),
        frames_dropped=_sum(inb, "frames_dropped"),
        freeze_count=_sum(inb, "freeze_count"),
        total_freeze_duration_s=_sum(inb, "total_freeze_duration"),
        jitter_s=_max(received, "jitter"),
        packets_lost=_sum(received, "packets_lost"),
        packets_received=_sum(received, "packets_received"),
        rtt_s=rtt,
    )


def _values(messages: Iterable[Any], name: str) -> list[Any]:
    return [getattr(m, name) for m in messages if m.HasField(name)]


def _sum(messages: Iterable[Any], name: str) -> Any:
    values = _values(messages, name)
    return sum(values) if values else None


def _max(messages: Iterable[Any], name: str) -> Any:
    values = _values(messages, name)
    return max(values) if values else None


def _first(remote_inbound: Iterable[Any]) -> float | None:
    values = _values(remote_inbound, "round_trip_time")
    return float(values[0]) if values else None


def _rtt(stats: list[Any]) -> float | None:
    """The current RTT of the nominated candidate pair (of any pair that has one otherwise)."""
    pairs = [s.candidate_pair.candidate_pair for s in stats if s.HasField("candidate_pair")]
    timed = [p for p in pairs if p.HasField("current_round_trip_time")]
    timed.sort(key=lambda p: not p.nominated)
    return float(timed[0].current_round_trip_time) if timed else None


class StatsRecorder:
    """The figures only the session can measure, and the OpenTelemetry instruments: generated
    frames, setup time, the last unmute -> first generated frame, billed seconds reported, and
    the send bitrate between two ``stats()`` calls. Runs on the session's loop."""

    def __init__(self, metrics: Metrics, unmuted_at: Callable[[], float | None]) -> None:
        self._metrics = metrics
        self._unmuted_at = unmuted_at  # the mute switch's clock of the last unmute
        self.generated = 0
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
        since = self._unmuted_at()
        if since is None:
            since = self._connected_at
        if since is not None and since != self._live_since:
            self._live_since = since
            self.first_frame_s = time.monotonic() - since
            self._metrics.first_frame(self.first_frame_s)
            log.debug("first generated frame %.0f ms after going live", self.first_frame_s * 1000)

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
            frames_captured=gate["captured"],
            frames_sent=gate["converted"],
            frames_dropped_muted=gate["dropped_while_muted"],
            frames_dropped_closed=gate["dropped_closed"],
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
            billed_seconds=billed_seconds,
            setup_s=self.setup_s,
            unmute_to_first_frame_s=self.first_frame_s,
            latency_ms_p50=latency.p50_ms if latency else None,
            latency_ms_p95=latency.p95_ms if latency else None,
        )


def frames_sent(stats: list[Any]) -> int:
    """The fewest frames any of a track's encodings has sent, from its stats; 0 before any."""
    sent = [s.outbound_rtp.outbound.frames_sent for s in stats if s.HasField("outbound_rtp")]
    return min(sent, default=0)


def frames_decoded(stats: list[Any]) -> int:
    """The frames a remote track's receiver has decoded, from its stats; 0 before any."""
    decoded = [s.inbound_rtp.inbound.frames_decoded for s in stats if s.HasField("inbound_rtp")]
    return max(decoded, default=0)


__all__ = [
    "RtcFigures",
    "SessionStats",
    "StatsRecorder",
    "frames_decoded",
    "frames_sent",
    "rtc_figures",
]
