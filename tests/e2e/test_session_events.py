"""Events, stats and the connectivity check on the real stack (livekit-server + emulator)."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import time

import aiohttp
import pytest
from conftest import API_KEY
from control import http_url, key_header, sessions
from test_session import HEIGHT, WIDTH, Camera

import warmrtc
from warmrtc.events import (
    Event,
    GenerationEndedEvent,
    GenerationStartedEvent,
    GenerationTickEvent,
    QueuePositionEvent,
    StateChangeEvent,
    StatsEvent,
)


async def until(predicate: object, timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                await asyncio.sleep(0.02)
    except TimeoutError:
        pytest.fail(f"no {what} within {timeout} s")


def test_the_services_events_and_state_changes_arrive_typed(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    events: list[Event] = []
    states: list[str] = []

    async def run() -> None:
        session = await warmrtc.connect(
            source,
            api_key=API_KEY,
            base_url=emulator_url,
            start_muted=True,
            on_event=events.append,
            on_state=states.append,
        )
        # The session-wide emulator queues every session once before the room info.
        assert events[0] == QueuePositionEvent(1, 1)
        read: list[Event] = []

        async def reader() -> None:
            async for event in session.events():
                read.append(event)

        reading = asyncio.create_task(reader())
        with Camera(source):
            await asyncio.sleep(0.5)
            assert not any(isinstance(e, GenerationStartedEvent) for e in events)  # warm: none
            session.unmute()
            await until(
                lambda: any(isinstance(e, GenerationTickEvent) for e in events), 15, "billing tick"
            )
        await session.disconnect()
        await asyncio.wait_for(reading, 5)  # the iterator ends with the session
        assert isinstance(read[-1], StateChangeEvent) and read[-1].new == "disconnected"
        assert read == events[events.index(read[0]) :]  # the same events, in the same order

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()
    kinds = [type(e).__name__ for e in events]
    started = kinds.index("GenerationStartedEvent")
    assert started < kinds.index("GenerationTickEvent")
    ticks = [e for e in events if isinstance(e, GenerationTickEvent)]
    assert ticks[-1].billed_seconds >= 1 and ticks[-1].seconds == ticks[-1].billed_seconds
    changes = [e for e in events if isinstance(e, StateChangeEvent)]
    assert [str(c.new) for c in changes] == states  # exactly what on_state saw
    assert [(str(c.old), str(c.new)) for c in changes] == [
        ("connecting", "connected"),
        ("connected", "generating"),
        ("generating", "disconnected"),
    ]


def test_the_service_ending_generation_is_an_event_with_its_reason(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    events: list[Event] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source,
                api_key=API_KEY,
                base_url=emulator_url,
                on_event=events.append,
                reconnect_attempts=0,
            )
            with Camera(source):
                await until(lambda: session.state == "generating", 15, "generating")
                await until(lambda: session.billed_seconds >= 1, 15, "a billed second")
                url = f"{http_url(emulator_url)}/sessions/{session.session_id}/end"
                async with http.post(
                    url, params={"reason": "max_duration_reached"}, headers=key_header(API_KEY)
                ) as response:
                    response.raise_for_status()
                    assert (await response.json())["was"] == "generating"
                await until(
                    lambda: any(isinstance(e, GenerationEndedEvent) for e in events), 10, "ended"
                )
            await until(lambda: session.state == "disconnected", 10, "disconnected")
            await session.disconnect()

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()
    ended = next(e for e in events if isinstance(e, GenerationEndedEvent))
    assert ended.reason == "max_duration_reached" and ended.seconds is not None
    assert ended.seconds >= 1
    changes = [(str(e.old), str(e.new)) for e in events if isinstance(e, StateChangeEvent)]
    assert ("generating", "connected") in changes  # generation ended before the channel closed


def test_stats_agree_with_what_the_model_received(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    figures: dict[str, object] = {}
    periodic: list[StatsEvent] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            session = await warmrtc.connect(
                source,
                api_key=API_KEY,
                base_url=emulator_url,
                start_muted=True,
                stats_interval=0.5,
                on_event=lambda e: periodic.append(e) if isinstance(e, StatsEvent) else None,
            )
            with Camera(source):
                await asyncio.sleep(1.0)
                session.unmute()
                await asyncio.sleep(4.0)
                session.mute()
                await asyncio.sleep(1.0)  # the last frames reach the model
                stats = await session.stats()
                seen = (await sessions(http, emulator_url, API_KEY))[session.session_id]
            await session.disconnect()
            after = await session.stats(timeout=0.5)  # a torn-down room: at once, no hang
            figures.update(stats=stats, seen=seen, after=after)

    try:
        asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()
    stats = figures["stats"]
    seen = figures["seen"]
    assert isinstance(stats, warmrtc.SessionStats) and isinstance(seen, dict)
    received = seen["frames_received"]
    print(f"\nstats: {stats}\nemulator: {seen}")
    assert stats.frames_dropped_muted > 0  # the warm second
    # What the app sent, what WebRTC sent and what the model received agree within a few frames.
    assert abs(stats.frames_sent - received) <= max(5, received // 20), (
        stats.frames_sent,
        received,
    )
    assert stats.frames_sent_rtp is not None
    # WebRTC's count also has the warm track's keepalive frames (livekit's, sent muted and
    # dropped by the server, until a few are out: 3 to 6 on a slow machine) and our black frame
    # that ends them.
    keepalive = 7
    assert -5 <= stats.frames_sent_rtp - received <= max(5, received // 20) + keepalive
    assert stats.frames_encoded is not None and stats.frames_encoded >= stats.frames_sent_rtp
    assert stats.frames_received is not None and stats.frames_received > 0
    assert stats.frames_decoded is not None and stats.generated_frames > 0
    assert abs(stats.generated_frames - stats.frames_decoded) <= 5
    assert stats.rtt_s is not None and 0 <= stats.rtt_s < 1  # sub-ms on a veth pair
    assert stats.setup_s is not None and 0 < stats.setup_s < 10
    assert stats.unmute_to_first_frame_s is not None and 0 < stats.unmute_to_first_frame_s < 5
    # Glass-to-glass, from the stamps the emulator echoes (tests/e2e/test_glass_to_glass.py).
    assert stats.latency_ms_p50 is not None and stats.latency_ms_p95 is not None
    assert 0 < stats.latency_ms_p50 <= stats.latency_ms_p95
    assert len(periodic) >= 6 and all(isinstance(p.stats, warmrtc.SessionStats) for p in periodic)
    after = figures["after"]
    assert isinstance(after, warmrtc.SessionStats) and after.frames_encoded is None
    assert after.state == "disconnected"


def test_the_blocking_api_reads_events(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    session = warmrtc.connect_blocking(
        source, api_key=API_KEY, base_url=emulator_url, start_muted=True
    )
    try:
        events = session.events(timeout=15)
        with Camera(source):
            session.unmute()
            first = next(e for e in events if isinstance(e, GenerationStartedEvent))
            assert first.at <= time.time()
            stats = session.stats()
            assert stats.state in ("connected", "generating") and stats.frames_captured > 0
        session.disconnect()
        rest = list(events)  # ends with the session
        assert isinstance(rest[-1], StateChangeEvent) and rest[-1].new == "disconnected"
        quiet_source = warmrtc.VideoSource(WIDTH, HEIGHT)
        quiet = warmrtc.connect_blocking(
            quiet_source, api_key=API_KEY, base_url=emulator_url, start_muted=True
        )
        try:
            with pytest.raises(queue.Empty):
                next(iter(quiet.events(timeout=0.3)))
        finally:
            quiet.disconnect()
            quiet_source.close()
    finally:
        session.disconnect()
        source.close()


def test_the_check_passes_on_the_local_stack_and_names_a_refused_key(emulator_url: str) -> None:
    report = warmrtc.check_blocking(api_key=API_KEY, base_url=emulator_url)
    print(f"\n{report}")
    assert report.ok, str(report)
    assert [s.name for s in report.steps] == [
        "control",
        "auth",
        "room",
        "publish",
        "initial_state",
        "round_trip",
    ]
    bad = warmrtc.check_blocking(api_key="wrong-key", base_url=emulator_url)
    assert not bad.ok and bad.failed is not None and bad.failed.name == "auth"
    assert "AuthenticationError" in bad.failed.detail
    assert [s.ok for s in bad.steps] == [True, False]


def test_the_check_command_inside_the_stack() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DECART_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "warmrtc.cli", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    print(done.stdout, done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: ok" in done.stdout and "round trip through the model" in done.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "warmrtc.cli", "check", "--base-url", "ws://10.77.0.1:1"],
        env={**env, "DECART_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert refused.returncode == 1 and "failed at control" in refused.stdout, refused.stdout
