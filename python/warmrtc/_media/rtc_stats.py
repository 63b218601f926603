"""What livekit's WebRTC stats of a track say, read in one place: frames a published track
sent, frames a received track decoded, and the figures a session's stats report.

livekit ``RtcStats`` lists (``LocalVideoTrack.get_stats()``, ``RemoteVideoTrack.get_stats()``):
``outbound_rtp`` (encoder), ``remote_inbound_rtp`` (what the media server reports back),
``candidate_pair`` (round-trip time), ``inbound_rtp`` (received, decoded, freezes, jitter, loss).
A figure livekit did not set stays None: nothing here is estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


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
    # Pairs libwebrtc can report at odds with each other: the one that cannot be right is left
    # out. Frames received fewer than decoded (it counts them at another point of the
    # receiver); freezes counted with no frozen time (the duration not filled in).
    frames_received, frames_decoded = _sum(inb, "frames_received"), _sum(inb, "frames_decoded")
    if frames_received is not None and frames_decoded is not None:
        frames_received = None if frames_received < frames_decoded else frames_received
    freezes, frozen_s = _sum(inb, "freeze_count"), _sum(inb, "total_freeze_duration")
    if freezes and not frozen_s:
        frozen_s = None
    return RtcFigures(
        frames_encoded=_sum(out, "frames_encoded"),
        frames_sent_rtp=_sum(out, "frames_sent"),
        encode_fps=_sum(out, "frames_per_second"),
        target_bitrate_bps=_sum(out, "target_bitrate"),
        bytes_sent=_sum([o.sent for o in outbound], "bytes_sent"),
        upload_fraction_lost=_max([r.remote_inbound for r in remote_in], "fraction_lost"),
        frames_received=frames_received,
        frames_decoded=frames_decoded,
        frames_dropped=_sum(inb, "frames_dropped"),
        freeze_count=freezes,
        total_freeze_duration_s=frozen_s,
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


def frames_sent(stats: list[Any]) -> int:
    """The fewest frames any of a track's encodings has sent, from its stats; 0 before any."""
    sent = [s.outbound_rtp.outbound.frames_sent for s in stats if s.HasField("outbound_rtp")]
    return min(sent, default=0)


def frames_decoded(stats: list[Any]) -> int:
    """The frames a remote track's receiver has decoded, from its stats; 0 before any."""
    decoded = [s.inbound_rtp.inbound.frames_decoded for s in stats if s.HasField("inbound_rtp")]
    return max(decoded, default=0)


def packets_received(stats: list[Any]) -> int | None:
    """Packets received on a track's transport (its candidate pairs), from its stats: media
    and the media server's feedback alike. None when no pair reports it."""
    pairs = [s.candidate_pair.candidate_pair for s in stats if s.HasField("candidate_pair")]
    counts = [p.packets_received for p in pairs if p.HasField("packets_received")]
    return sum(counts) if counts else None


__all__ = ["RtcFigures", "frames_decoded", "frames_sent", "packets_received", "rtc_figures"]
