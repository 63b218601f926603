"""SessionStats: one typed snapshot of a live session's figures, and where each comes from.

Sources (nothing here is estimated: a figure its source does not give is None):

- the source's native gate (``VideoSource.stats``): frames captured, sent, dropped;
- the published track's WebRTC stats (livekit ``LocalVideoTrack.get_stats()``):
  ``outbound_rtp`` (encoder), ``remote_inbound_rtp`` (what the media server reports back),
  ``candidate_pair`` (round-trip time of the publishing connection);
- the model's output track's WebRTC stats (``RemoteVideoTrack.get_stats()``): ``inbound_rtp``
  (received, decoded, freezes, jitter, loss) and ``candidate_pair``;
- the session itself: generated frames delivered, billed seconds, connect duration and
  unmute -> first generated frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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
    # Round-trip time: the nominated candidate pair's current RTT (publishing connection
    # first, the subscribing one otherwise), seconds.
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
    track's (either may be empty)."""
    published, output = list(published), list(output)
    outbound = [s.outbound_rtp for s in published if s.HasField("outbound_rtp")]
    remote_in = [s.remote_inbound_rtp for s in published if s.HasField("remote_inbound_rtp")]
    inbound = [s.inbound_rtp for s in output if s.HasField("inbound_rtp")]
    figures: dict[str, Any] = {}
    if outbound:
        figures.update(
            frames_encoded=sum(o.outbound.frames_encoded for o in outbound),
            frames_sent_rtp=sum(o.outbound.frames_sent for o in outbound),
            encode_fps=sum(o.outbound.frames_per_second for o in outbound),
            target_bitrate_bps=sum(o.outbound.target_bitrate for o in outbound),
            bytes_sent=sum(o.sent.bytes_sent for o in outbound),
        )
    if remote_in:
        figures["upload_fraction_lost"] = max(r.remote_inbound.fraction_lost for r in remote_in)
    if inbound:
        figures.update(
            frames_received=sum(i.inbound.frames_received for i in inbound),
            frames_decoded=sum(i.inbound.frames_decoded for i in inbound),
            frames_dropped=sum(i.inbound.frames_dropped for i in inbound),
            freeze_count=sum(i.inbound.freeze_count for i in inbound),
            total_freeze_duration_s=sum(i.inbound.total_freeze_duration for i in inbound),
            jitter_s=max(i.received.jitter for i in inbound),
            packets_lost=sum(i.received.packets_lost for i in inbound),
            packets_received=sum(i.received.packets_received for i in inbound),
        )
    figures["rtt_s"] = _rtt(published)
    if figures["rtt_s"] is None:
        figures["rtt_s"] = _rtt(output)
    return RtcFigures(**figures)


def _rtt(stats: list[Any]) -> float | None:
    pairs = [s.candidate_pair.candidate_pair for s in stats if s.HasField("candidate_pair")]
    nominated = [p for p in pairs if p.nominated and p.current_round_trip_time > 0]
    return nominated[0].current_round_trip_time if nominated else None


__all__ = ["RtcFigures", "SessionStats", "rtc_figures"]
