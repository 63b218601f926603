"""Events and stats plumbing without a network: the lifecycle and the link emit typed events,
the fan-out hands them to on_event and to bounded readers, stats() gathers the figures."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import threading
from typing import Any

import numpy as np
import pytest
from livekit.rtc._proto import stats_pb2

import warmrtc
from test_lifecycle import FakeLink, Gate, run, until
from warmrtc._media.latest_queue import EVENT_DEPTH
from warmrtc._media.rtc_stats import rtc_figures
from warmrtc._session import metrics
from warmrtc._session.fanout import Fanout
from warmrtc._session.lifecycle import Lifecycle
from warmrtc._session.link import ServiceLink
from warmrtc.errors import ConnectionLostError, ConnectTimeoutError
from warmrtc.events import (
    Event,
    GenerationEndedEvent,
    GenerationStartedEvent,
    GenerationTickEvent,
    QueuePositionEvent,
    ReconnectEvent,
    ServiceErrorEvent,
    StateChangeEvent,
    StatsEvent,
)
from warmrtc.session import Session, _Reports
from warmrtc.state import State
from warmrtc.stats import SessionStats


@pytest.fixture(autouse=True)
def fast_reconnects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("warmrtc._session.backoff.DELAYS", (0.01,))


def test_events_are_frozen_typed_and_share_one_base() -> None:
    event = QueuePositionEvent(2, 5)
    assert isinstance(event, Event) and event.position == 2 and event.queue_size == 5
    assert event.at > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.position = 1  # type: ignore[misc]
    assert QueuePositionEvent(2, 5) == QueuePositionEvent(2, 5)  # ``at`` is not compared
    for name in warmrtc.__all__:
        cls = getattr(warmrtc, name)
        if isinstance(cls, type) and issubclass(cls, Event):
            assert cls.__doc__ and dataclasses.is_dataclass(cls), name


def test_the_lifecycle_emits_state_changes_and_reconnect_attempts_in_order() -> None:
    async def body() -> None:
        failure = ConnectTimeoutError("try 1")
        link = FakeLink(None, failure, None)
        states: list[State] = []
        events: list[Event] = []
        life = Lifecycle(
            timeout=5,
            reconnect_attempts=3,
            gate=Gate(muted=False),
            on_state=states.append,
            on_event=events.append,
        )
        await life.connect(link)
        life.generation_started()
        life.lost(ConnectionLostError("socket closed"))
        await until(lambda: life.state == "connected")
        await life.close()
        changes = [e for e in events if isinstance(e, StateChangeEvent)]
        assert [e.new for e in changes] == states  # exactly what on_state saw
        assert [(e.old, e.new) for e in changes] == [
            (State.CONNECTING, State.CONNECTED),
            (State.CONNECTED, State.GENERATING),
            (State.GENERATING, State.RECONNECTING),
            (State.RECONNECTING, State.CONNECTED),
            (State.CONNECTED, State.DISCONNECTED),
        ]
        assert changes[2].reason == "socket closed"
        attempts = [e for e in events if isinstance(e, ReconnectEvent)]
        assert attempts == [ReconnectEvent(1, 3, failure), ReconnectEvent(2, 3, None)]
        # The reconnect events come between reconnecting and connected.
        assert events.index(attempts[-1]) < events.index(changes[3])

    run(body)


class FakeLifecycle:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def generation_started(self) -> None:
        self.calls.append("started")

    def generation_stopped(self, why: str) -> None:
        self.calls.append(f"stopped: {why}")


class Listener:
    """A link's listener that keeps what it is told (the session's is ``_Reports``)."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def control_event(self, event: Event) -> None:
        self.events.append(event)


def test_the_link_turns_the_services_messages_into_events() -> None:
    events: list[Event] = []
    config = warmrtc.SessionConfig.of("lucy-2.6", api_key="k")
    link = ServiceLink(config, None, None, Listener(events))  # type: ignore[arg-type]
    for message in [
        {"type": "queue_position", "position": 3, "queue_size": 7},
        {"type": "queue_position", "position": 1},
        {"type": "generation_started"},
        {"type": "generation_tick", "seconds": 2},
        {"type": "generation_ended", "seconds": 3, "reason": "timeout"},
        {"type": "generation_ended"},
        {"type": "error", "error": "model overloaded"},
    ]:
        link._control_event(message)
    assert events == [
        QueuePositionEvent(3, 7),
        QueuePositionEvent(1, None),
        GenerationStartedEvent(),
        GenerationTickEvent(2, 2),
        GenerationEndedEvent(3, "timeout"),
        GenerationEndedEvent(None, None),
        ServiceErrorEvent("model overloaded"),
    ]
    assert link.billing.seconds == 3
    # The session hands generation's start and end to its lifecycle.
    life = FakeLifecycle()
    reports = _Reports(life, None, None, None, lambda _event: None)  # type: ignore[arg-type]
    for event in events:
        reports.control_event(event)
    assert life.calls == [
        "started",
        "stopped: the service ended generation: timeout",
        "stopped: the service ended generation: None",
    ]


def test_event_readers_are_bounded_drop_the_oldest_with_a_warning_and_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body() -> None:
        seen: list[int] = []
        fanout: Fanout[int] = Fanout(
            seen.append, depth=EVENT_DEPTH, name="on_event", warn_drops=True
        )
        reader = fanout.reader()
        first = asyncio.ensure_future(reader.__anext__())
        await asyncio.sleep(0)  # subscribed
        for i in range(EVENT_DEPTH + 10):
            fanout.deliver(i)
        fanout.end()
        fanout.deliver(-1)  # after the end: nobody gets it
        got = [await first] + [i async for i in reader]
        assert seen == list(range(EVENT_DEPTH + 10))  # the callback sees every one
        # The buffer kept the newest; the end took no place of an event.
        assert got == list(range(10, EVENT_DEPTH + 10))
        assert "on_event reader is not keeping up" in caplog.text
        assert [i async for i in fanout.reader()] == []  # a reader after the end ends at once

    with caplog.at_level(logging.WARNING, "warmrtc"):
        asyncio.run(asyncio.wait_for(body(), 10))


def test_a_thread_reads_events_without_stalling_the_loop() -> None:
    async def body() -> None:
        fanout: Fanout[int] = Fanout(None, depth=8, name="on_event", warn_drops=True)
        first: queue.Queue[int] = queue.Queue()
        got: queue.Queue[list[int]] = queue.Queue()
        resume = threading.Event()
        items = fanout.reader().in_thread(timeout=10)

        def consumer() -> None:
            first.put(next(items))
            resume.wait(10)  # stops reading for a while
            got.put(list(items))

        thread = threading.Thread(target=consumer)
        thread.start()  # subscribed already: reader() subscribes at once
        fanout.deliver(0)
        assert await asyncio.to_thread(first.get, True, 10) == 0
        for i in range(1, 100):
            fanout.deliver(i)  # never waits for the reader
        fanout.end()
        resume.set()
        assert await asyncio.to_thread(got.get, True, 10) == list(range(92, 100))
        await asyncio.to_thread(thread.join, 5)

    asyncio.run(asyncio.wait_for(body(), 20))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"depth": 0}, ValueError), ({"depth": True}, ValueError)],
)
def test_bad_fanout_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="depth"):
        Fanout(None, name="x", **kwargs)


def test_a_failing_on_event_is_logged_and_the_others_still_get_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_event: Event) -> None:
        raise RuntimeError("app bug")

    fanout: Fanout[Event] = Fanout(broken, depth=4, name="on_event")
    fanout.deliver(GenerationStartedEvent())
    assert "on_event raised" in caplog.text


def _stats(**fields: Any) -> stats_pb2.RtcStats:
    return stats_pb2.RtcStats(**fields)


def test_stats_figures_come_from_livekits_protobufs() -> None:
    outbound = _stats(
        outbound_rtp=stats_pb2.RtcStats.OutboundRtp(
            sent=stats_pb2.SentRtpStreamStats(bytes_sent=1000, packets_sent=10),
            outbound=stats_pb2.OutboundRtpStreamStats(
                frames_encoded=90, frames_sent=88, frames_per_second=29.5, target_bitrate=2e6
            ),
        )
    )
    remote_in = _stats(
        remote_inbound_rtp=stats_pb2.RtcStats.RemoteInboundRtp(
            remote_inbound=stats_pb2.RemoteInboundRtpStreamStats(fraction_lost=0.01)
        )
    )
    pair = _stats(
        candidate_pair=stats_pb2.RtcStats.CandidatePair(
            candidate_pair=stats_pb2.CandidatePairStats(
                nominated=True, current_round_trip_time=0.02
            )
        )
    )
    inbound = _stats(
        inbound_rtp=stats_pb2.RtcStats.InboundRtp(
            received=stats_pb2.ReceivedRtpStreamStats(
                packets_received=500, packets_lost=3, jitter=0.004
            ),
            inbound=stats_pb2.InboundRtpStreamStats(
                frames_received=80,
                frames_decoded=79,
                frames_dropped=1,
                freeze_count=2,
                total_freeze_duration=0.5,
            ),
        )
    )
    figures = rtc_figures([outbound, remote_in, pair], [inbound])
    assert (figures.frames_encoded, figures.frames_sent_rtp, figures.bytes_sent) == (90, 88, 1000)
    assert figures.encode_fps == pytest.approx(29.5) and figures.target_bitrate_bps == 2e6
    assert figures.upload_fraction_lost == pytest.approx(0.01)
    assert (figures.frames_received, figures.frames_decoded, figures.frames_dropped) == (80, 79, 1)
    assert figures.freeze_count == 2 and figures.total_freeze_duration_s == 0.5
    assert figures.jitter_s == pytest.approx(0.004) and figures.packets_lost == 3
    assert figures.packets_received == 500 and figures.rtt_s == pytest.approx(0.02)
    # Nothing there: nothing invented.
    empty = rtc_figures([], [])
    assert all(v is None for v in dataclasses.asdict(empty).values())


class HangingMedia:
    async def rtc_stats(self) -> tuple[list[Any], list[Any]]:
        await asyncio.sleep(3600)
        raise AssertionError


def _session(**options: Any) -> tuple[Session, warmrtc.VideoSource]:
    source = warmrtc.VideoSource(64, 48)
    config = warmrtc.SessionConfig.of("lucy-2.6", api_key="k", **options)
    return Session(source, config, start_muted=True), source


def test_stats_are_bounded_and_measure_time_to_first_frame() -> None:
    async def body() -> None:
        session, source = _session()
        with pytest.raises(ValueError, match="timeout"):
            await session.stats(timeout=0)
        with pytest.raises(TypeError, match="timeout"):
            await session.stats(timeout="1")  # type: ignore[arg-type]
        stats = await session.stats()  # no room at all: gate figures, WebRTC ones None
        assert isinstance(stats, SessionStats) and stats.frames_received is None
        assert stats.latency_ms_p50 is None and stats.latency_ms_p95 is None
        session._link._media = HangingMedia()  # type: ignore[assignment]
        started = asyncio.get_running_loop().time()
        stats = await session.stats(timeout=0.2)  # a room that never answers
        assert asyncio.get_running_loop().time() - started < 1.0
        assert stats.frames_encoded is None
        session._link._media = None
        session._connected(0.25)
        assert (await session.stats()).setup_s == 0.25
        source.capture(np.zeros((48, 64, 3), np.uint8))  # muted: dropped by the gate
        session.unmute()
        await asyncio.sleep(0.05)
        session._frames.deliver(np.zeros((2, 2), np.uint8))
        session._frames.deliver(np.zeros((2, 2), np.uint8))
        stats = await session.stats()
        assert stats.generated_frames == 2 and stats.frames_dropped_muted == 1
        assert stats.unmute_to_first_frame_s is not None
        assert 0.05 <= stats.unmute_to_first_frame_s < 1
        await session.disconnect()
        source.close()

    run(body)


def test_periodic_stats_events_and_the_event_stream_ends_with_the_session() -> None:
    async def body() -> None:
        events: list[Event] = []
        session, source = _session(on_event=events.append, stats_interval=0.05)
        read: list[Event] = []

        async def reader() -> None:
            async for event in session.events():
                read.append(event)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        session._connected(0.1)
        await until(lambda: sum(isinstance(e, StatsEvent) for e in events) >= 2)
        await session.disconnect()
        await asyncio.wait_for(task, 5)  # the iterator ends with the session
        assert isinstance(read[-1], StateChangeEvent) and read[-1].new == State.DISCONNECTED
        assert any(isinstance(e, StatsEvent) for e in read)
        count = len(events)
        await asyncio.sleep(0.2)
        assert len(events) == count  # the periodic stats stopped
        source.close()

    run(body)


class FakeInstrument:
    def __init__(self, points: list[tuple[str, float]], name: str) -> None:
        self.points, self.name = points, name

    def add(self, value: float, attributes: dict[str, str]) -> None:
        self.points.append((self.name, value))

    record = add


class FakeMeter:
    def __init__(self) -> None:
        self.points: list[tuple[str, float]] = []

    def get_meter(self, _name: str, _version: str) -> FakeMeter:
        return self

    def create_counter(self, name: str, **_kw: str) -> FakeInstrument:
        return FakeInstrument(self.points, name)

    create_histogram = create_counter


def test_opentelemetry_metrics_are_recorded_only_with_a_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = FakeMeter()
    m = metrics.Metrics("lucy-2.6", provider)
    m.frame()
    m.billed(2)
    m.billed(0)
    m.connected(0.4)
    m.first_frame(0.1)
    assert provider.points == [
        ("warmrtc.frames.generated", 1),
        ("warmrtc.billed_seconds", 2),
        ("warmrtc.connect.duration", 0.4),
        ("warmrtc.first_frame.duration", 0.1),
    ]
    monkeypatch.setattr(metrics, "_otel", None)  # opentelemetry-api not installed
    off = metrics.Metrics("lucy-2.6")
    off.frame()
    off.connected(1.0)  # no error, nothing recorded


def test_stats_that_contradict_each_other_are_not_passed_on() -> None:
    """libwebrtc can report freezes with no frozen time, and fewer frames received than
    decoded: neither pair is passed on as it is (the one that cannot be right is None)."""
    inbound = _stats(
        inbound_rtp=stats_pb2.RtcStats.InboundRtp(
            received=stats_pb2.ReceivedRtpStreamStats(packets_received=500),
            inbound=stats_pb2.InboundRtpStreamStats(
                frames_received=619, frames_decoded=972, freeze_count=30, total_freeze_duration=0.0
            ),
        )
    )
    figures = rtc_figures([], [inbound])
    assert figures.frames_decoded == 972 and figures.frames_received is None
    assert figures.freeze_count == 30 and figures.total_freeze_duration_s is None
    calm = _stats(
        inbound_rtp=stats_pb2.RtcStats.InboundRtp(
            inbound=stats_pb2.InboundRtpStreamStats(
                frames_received=80, frames_decoded=79, freeze_count=0, total_freeze_duration=0.0
            )
        )
    )
    figures = rtc_figures([], [calm])
    assert (figures.frames_received, figures.total_freeze_duration_s) == (80, 0.0)


def test_the_sources_counters_count_from_the_session_on() -> None:
    """Frames the app captured before connect() (a camera started first, the source not
    muted yet) are not the session's: a warm session that was never unmuted sent none."""

    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        frame = np.zeros((48, 64, 3), np.uint8)
        for _ in range(19):
            assert source.capture(frame)  # before any session: handed on
        config = warmrtc.SessionConfig.of("lucy-2.6", api_key="k")
        session = Session(source, config, start_muted=True)
        source.capture(frame)  # warm: dropped by the gate
        stats = await session.stats()
        assert (stats.frames_captured, stats.frames_sent, stats.frames_dropped_muted) == (1, 0, 1)
        await session.disconnect()
        source.close()

    run(body)
