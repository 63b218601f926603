"""SessionStats: one typed snapshot of a live session's figures, and where each comes from.

Sources (nothing here is estimated: a figure its source does not give is None):

- the source's native gate (``VideoSource.stats``): frames captured, sent, dropped;
- the published track's WebRTC stats (livekit ``LocalVideoTrack.get_stats()``):
  ``outbound_rtp`` (encoder), ``remote_inbound_rtp`` (what the media server reports back),
  ``candidate_pair`` (round-trip time of the publishing connection);
- the model's output track's WebRTC stats (``RemoteVideoTrack.get_stats()``): ``inbound_rtp``
  (received, decoded, freezes, jitter, loss) and ``candidate_pair``;
- the session itself: generated frames delivered (and dropped because the app did not keep
  up), billed seconds, connect duration, unmute -> first generated frame and glass-to-glass
  latency (the capture stamps the service echoes, see :class:`warmrtc.Latency`).

Only figures consistent with each other are passed on. The gate's counters count from the
session's start (frames an app captured before ``connect()`` are not the session's). libwebrtc
can report more frames decoded than received, and freezes with no frozen time: then
``frames_received``, or ``total_freeze_duration_s``, is None.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SessionStats:
    """A session's figures at ``at`` (unix seconds). Counters count from the session's start
    (the WebRTC ones from the current room join: a reconnect starts them again)."""

    at: float  # when the figures were taken (unix seconds)
    state: str  # the session's state then (a State value)
    # The source's native gate (VideoSource.stats).
    frames_captured: int  # frames the app handed to capture() since the session started
    frames_sent: int  # handed to WebRTC
    frames_dropped_muted: int  # dropped by the gate while muted
    frames_dropped_closed: int  # dropped after the source was closed
    # The encoder (the published track's outbound_rtp; None before it is published).
    frames_encoded: int | None  # outbound_rtp frames_encoded
    frames_sent_rtp: int | None  # outbound_rtp frames_sent
    encode_fps: float | None  # outbound_rtp frames_per_second
    target_bitrate_bps: float | None  # outbound_rtp target_bitrate (the encoder's target)
    send_bitrate_bps: float | None  # outbound_rtp bytes_sent since the last stats() call
    upload_fraction_lost: float | None  # remote_inbound_rtp fraction_lost, as the server saw it
    # The model's output (inbound_rtp of its track; None before it arrives).
    frames_received: int | None  # None where it would be fewer than frames_decoded

    frames_decoded: int | None  # inbound_rtp frames_decoded
    frames_dropped: int | None  # dropped by the decoder / jitter buffer
    freeze_count: int | None  # inbound_rtp freeze_count
    total_freeze_duration_s: float | None  # None where freezes were counted with no time
    jitter_s: float | None  # inbound_rtp jitter, seconds
    packets_lost: int | None  # inbound_rtp packets_lost
    packets_received: int | None  # inbound_rtp packets_received
    # Round-trip time, seconds: the publishing connection's nominated candidate pair's current
    # RTT, else remote_inbound_rtp round_trip_time, else the subscribing connection's pair.
    rtt_s: float | None
    # The session.
    generated_frames: int  # frames delivered to on_frame / frames()
    # Generated frames dropped before on_frame because the app (its loop, or the receive
    # thread) was not keeping up; each frames() reader also keeps only the newest few.
    generated_frames_dropped: int
    billed_seconds: int  # as the service's billing ticks report them
    setup_s: float | None  # connect() duration: control channel to track published
    unmute_to_first_frame_s: float | None  # the last unmute -> the first generated frame after it
    # Glass-to-glass latency (capture to generated frame in the app), over the last 300
    # generated frames that came back stamped (session.latency); None before one did.
    latency_ms_p50: float | None = None  # median, ms
    latency_ms_p95: float | None = None  # 95th percentile, ms


@dataclass(frozen=True)
class ConnectStep:
    """One step of a connect, in order: ``name`` (``control``, ``room_info``, ``room_join``,
    ``publish``, ``initial_state``), the ``seconds`` it took, and ``ok`` (False: it is the step
    the connect failed in, and ``seconds`` is how long it ran). ``rtt_s``: one round trip to the
    service, as its websocket upgrade took (None before it was timed); ``round_trips`` is the
    step's time in those: what a step costs on a far link, where round trips are most of it."""

    name: str
    seconds: float
    ok: bool = True
    rtt_s: float | None = None

    @property
    def round_trips(self) -> float | None:
        return self.seconds / self.rtt_s if self.rtt_s else None


__all__ = ["ConnectStep", "SessionStats"]
