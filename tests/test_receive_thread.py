"""The receive thread and the model's output read on it: frames reach the owner's loop in order
and from another thread, a failing reader is reported with its error, and stopping at any point
ends the readers (their clean-up runs) and the thread, within a bound."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from livekit import rtc
from livekit.rtc._proto import stats_pb2

from warmrtc._media import model_output, stalled_track
from warmrtc._media.model_output import ModelOutput
from warmrtc._media.receive_thread import ReceiveThread
from warmrtc._media.rtc_frame import GeneratedFrame


def test_coroutines_run_on_the_thread_and_stop_runs_their_clean_up() -> None:
    thread = ReceiveThread("test-receive")
    started, cleaned = threading.Event(), threading.Event()
    where: list[threading.Thread] = []

    async def forever() -> None:
        where.append(threading.current_thread())
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned.set()

    future = thread.submit(forever())
    assert started.wait(5) and not cleaned.is_set()
    assert thread.join(5)
    assert cleaned.is_set() and future.cancelled()
    assert where and where[0] is not threading.main_thread() and where[0].name == "test-receive"
    assert not thread.alive
    with pytest.raises(RuntimeError, match="'test-receive' is stopping"):
        thread.submit(forever())


def test_wait_stopped_is_bounded_and_stop_is_idempotent() -> None:
    async def run() -> None:
        thread = ReceiveThread("test-receive")
        thread.stop()
        thread.stop()
        await asyncio.wait_for(thread.wait_stopped(), 5)
        await thread.wait_stopped()  # again: at once
        assert not thread.alive

    asyncio.run(run())


class FakeRoom:
    def __init__(self) -> None:
        self.remote_participants: dict[str, Any] = {}

    def on(self, _event: str, _handler: Any) -> None:
        pass


def pub_of(track: Any) -> Any:
    """The track's publication, as the stall watch reads it."""
    return SimpleNamespace(sid=track.sid, muted=False, track=track, subscribed=True)


def model_track(sid: str) -> tuple[Any, Any]:
    track = SimpleNamespace(sid=sid, kind=rtc.TrackKind.KIND_VIDEO)
    return track, SimpleNamespace(identity="inference-server-1")


def frames_then(count: int, error: Exception | None, threads: list[str]) -> Any:
    async def frames(track: Any, fmt: str, **_options: Any) -> AsyncIterator[GeneratedFrame]:
        for i in range(count):
            threads.append(threading.current_thread().name)
            yield GeneratedFrame(np.full((2, 2, 3), i, np.uint8), i)
            await asyncio.sleep(0.001)
        if error is not None:
            raise error

    return frames


def test_frames_reach_the_owner_loop_in_order_converted_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    monkeypatch.setattr(model_output, "generated_frames", frames_then(20, None, threads))

    async def run() -> None:
        got: list[tuple[int, bool]] = []
        output = ModelOutput(
            FakeRoom(),  # type: ignore[arg-type]
            lambda f: got.append((f.user_timestamp_us, threading.current_thread() is main)),
            "test-output",
            "bgr24",
        )
        main = threading.current_thread()
        track, participant = model_track("TR_1")
        output._subscribed(track, pub_of(track), participant)
        async with asyncio.timeout(10):
            while len(got) < 20:
                await asyncio.sleep(0.01)
        assert got == [(i, True) for i in range(20)]
        assert set(threads) == {"test-output"}
        await asyncio.wait_for(asyncio.gather(*output.stop()), 10)
        assert not [t for t in threading.enumerate() if t.name == "test-output"]

    asyncio.run(run())


def test_a_reader_that_fails_is_reported_with_its_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    threads: list[str] = []
    failure = ValueError("the FFI buffer is RGBA; the model's output is read as I420")
    monkeypatch.setattr(model_output, "generated_frames", frames_then(2, failure, threads))

    async def run() -> None:
        got: list[GeneratedFrame] = []
        output = ModelOutput(FakeRoom(), got.append, "test-output", "bgr24")  # type: ignore[arg-type]
        track, participant = model_track("TR_2")
        output._subscribed(track, pub_of(track), participant)  # type: ignore[arg-type]
        async with asyncio.timeout(10):
            while not caplog.records:
                await asyncio.sleep(0.01)
        assert len(got) == 2
        await asyncio.wait_for(asyncio.gather(*output.stop()), 10)

    with caplog.at_level(logging.ERROR, logger="warmrtc"):
        asyncio.run(run())
    (record,) = caplog.records
    assert "reading the model's output track TR_2 failed" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is failure


def test_stop_while_reading_ends_the_reader_and_the_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    ended = threading.Event()

    async def endless(track: Any, fmt: str, **_options: Any) -> AsyncIterator[GeneratedFrame]:
        try:
            while True:
                yield GeneratedFrame(np.zeros((2, 2, 3), np.uint8), 0)
                await asyncio.sleep(0.001)
        finally:
            ended.set()  # where the real stream hands its buffers back

    monkeypatch.setattr(model_output, "generated_frames", endless)

    async def run() -> None:
        got: list[GeneratedFrame] = []
        output = ModelOutput(FakeRoom(), got.append, "test-output", "bgr24")  # type: ignore[arg-type]
        track, participant = model_track("TR_3")
        output._subscribed(track, pub_of(track), participant)  # type: ignore[arg-type]
        output._subscribed(track, pub_of(track), participant)  # type: ignore[arg-type]  # read once
        async with asyncio.timeout(10):
            while len(got) < 5:
                await asyncio.sleep(0.01)
        stopping = output.stop()
        assert output.stop() == stopping  # idempotent
        count = len(got)
        await asyncio.wait_for(asyncio.gather(*stopping), 10)
        assert ended.is_set()
        await asyncio.sleep(0.05)
        assert len(got) == count  # nothing delivered once stopped
        assert not [t for t in threading.enumerate() if t.name == "test-output"]
        output._subscribed(track, pub_of(track), participant)  # type: ignore[arg-type]  # no more
        assert output.stop() == stopping

    asyncio.run(run())


def test_clients_tracks_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_output, "generated_frames", frames_then(1, None, []))

    async def run() -> None:
        output = ModelOutput(FakeRoom(), lambda _f: None, "test-output", "bgr24")  # type: ignore[arg-type]
        track, _ = model_track("TR_4")
        output._subscribed(track, pub_of(track), SimpleNamespace(identity="client"))  # type: ignore[arg-type]
        assert output.stop() == []  # no thread was started for it

    asyncio.run(run())


class DecodingTrack(SimpleNamespace):
    """A model track whose receiver decodes frames: 3 more at each read of its stats."""

    def __init__(self, sid: str) -> None:
        super().__init__(sid=sid, kind=rtc.TrackKind.KIND_VIDEO, decoded=0)

    async def get_stats(self) -> list[Any]:
        self.decoded += 3
        stats = stats_pb2.RtcStats()
        stats.inbound_rtp.inbound.frames_decoded = self.decoded
        return [stats]


def test_a_stalled_output_track_is_subscribed_anew_and_the_new_one_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(stalled_track, "IDLE_POLL", 0.05)
    monkeypatch.setattr(stalled_track, "POLL", 0.05)
    monkeypatch.setattr(stalled_track, "STALL", 0.2)
    old, fresh = DecodingTrack("TR_5"), DecodingTrack("TR_5")
    old_ended = threading.Event()

    async def frames(track: Any, fmt: str, **_options: Any) -> AsyncIterator[GeneratedFrame]:
        try:
            if track is old:  # decoded by WebRTC, never handed to the stream
                await asyncio.sleep(3600)
            for i in range(5):
                yield GeneratedFrame(np.full((2, 2, 3), i, np.uint8), i)
                await asyncio.sleep(0.001)
        finally:
            if track is old:
                old_ended.set()

    monkeypatch.setattr(model_output, "generated_frames", frames)

    async def run() -> None:
        got: list[GeneratedFrame] = []
        output = ModelOutput(FakeRoom(), got.append, "test-output", "bgr24")  # type: ignore[arg-type]
        _, participant = model_track("TR_5")
        loop = asyncio.get_running_loop()

        class Publication(SimpleNamespace):
            """livekit's: the (un)subscription lands a moment after it is asked for."""

            def set_subscribed(self, on: bool) -> None:
                self.asked.append(on)
                loop.call_later(0.05, self.subscribe if on else self.unsubscribe)

            def unsubscribe(self) -> None:
                self.subscribed, self.track = False, None

            def subscribe(self) -> None:
                self.subscribed, self.track = True, fresh
                output._subscribed(fresh, self, participant)  # type: ignore[arg-type]

        pub = Publication(sid="TR_5", muted=False, track=old, subscribed=True, asked=[])
        output._subscribed(old, pub, participant)  # type: ignore[arg-type]
        async with asyncio.timeout(10):
            while len(got) < 5:
                await asyncio.sleep(0.01)
        assert pub.asked == [False, True]
        assert old_ended.wait(5), "the stalled track's reader handed its stream back"
        assert output.current_tracks == [fresh]
        output._subscribed(old, pub, participant)  # type: ignore[arg-type]  # a late attach
        assert output.current_tracks == [fresh]
        assert [f.user_timestamp_us for f in got] == list(range(5))
        await asyncio.wait_for(asyncio.gather(*output.stop()), 10)

    asyncio.run(run())
