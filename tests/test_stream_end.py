"""The end of a read of the model's output: every frame buffer livekit's FFI sent for the
stream is handed back, also the ones still on their way when the reader stops.

The FFI ends a native video stream when its handle is dropped and then sends the stream's end
(eos); frames it sent before that can still be on their way, each holding a buffer (1.4 MB at
720p) that only a reader of the stream can give back. One left unread stays in the FFI's handle
table for the life of the process. Here a stand-in FFI sends one more frame, from its own
thread, after the stream's handle is dropped, then the eos (or, in the last test, no eos).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from livekit.rtc._ffi_client import FfiQueue
from livekit.rtc._proto import ffi_pb2 as proto_ffi

from warmrtc._media import ffi_video_stream, rtc_frame
from warmrtc._media.ffi_video_stream import generated_frames
from warmrtc._media.rtc_frame import GeneratedFrame

STREAM = 900  # the stream's handle id
IN_FLIGHT_DELAY = 0.02  # seconds between the stream's drop and the frame still on its way


class FakeFfi:
    """livekit's FFI client as generated_frames uses it: its event queue, new_video_stream,
    and handles; every buffer handle sent and given back is recorded."""

    def __init__(self, *, eos_after_drop: bool) -> None:
        self.queue: FfiQueue[proto_ffi.FfiEvent] = FfiQueue()
        self.eos_after_drop = eos_after_drop
        self.sent: list[int] = []
        self.given_back: list[int] = []
        self.stream_dropped = threading.Event()
        self._next = 1000
        self._senders: list[threading.Thread] = []

    def request(self, _request: proto_ffi.FfiRequest) -> proto_ffi.FfiResponse:
        response = proto_ffi.FfiResponse()
        response.new_video_stream.stream.handle.id = STREAM
        return response

    def send_frame(self) -> None:
        """A frame of the stream, as the FFI's callback thread hands it on."""
        self._next += 1
        self.sent.append(self._next)
        event = proto_ffi.FfiEvent()
        event.video_stream_event.stream_handle = STREAM
        event.video_stream_event.frame_received.buffer.handle.id = self._next
        self.queue.put(event)

    def send_eos(self) -> None:
        event = proto_ffi.FfiEvent()
        event.video_stream_event.stream_handle = STREAM
        event.video_stream_event.eos.SetInParent()
        self.queue.put(event)

    def handle(self, handle_id: int) -> Any:
        ffi = self

        class Handle:
            def dispose(self) -> None:
                if handle_id == STREAM:
                    ffi.dropped_stream()
                else:
                    ffi.given_back.append(handle_id)

        return Handle()

    def dropped_stream(self) -> None:
        # The native stream ends; a frame it had sent just before is still on its way.
        self.stream_dropped.set()

        def finish() -> None:
            time.sleep(IN_FLIGHT_DELAY)
            self.send_frame()
            if self.eos_after_drop:
                self.send_eos()

        sender = threading.Thread(target=finish, name="fake-ffi-callback")
        self._senders.append(sender)
        sender.start()

    def join(self) -> None:
        for sender in self._senders:
            sender.join(5)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], FakeFfi]:
    def make(eos_after_drop: bool) -> FakeFfi:
        ffi = FakeFfi(eos_after_drop=eos_after_drop)

        class Client:
            instance = ffi
            _ffi_disposed = False

        def take(received: Any, _fmt: str) -> GeneratedFrame:
            rtc_frame.release(received)
            return GeneratedFrame(np.zeros((2, 2, 3), np.uint8), 0)

        monkeypatch.setattr(ffi_video_stream, "FfiClient", Client)
        monkeypatch.setattr(ffi_video_stream, "FfiHandle", ffi.handle)
        monkeypatch.setattr(rtc_frame, "FfiHandle", ffi.handle)
        monkeypatch.setattr(ffi_video_stream, "take_generated", take)
        return ffi

    return make


async def _read_then_stop(ffi: FakeFfi, frames: int) -> tuple[int, float]:
    """Reads ``frames`` frames, then cancels the reader as a receive thread's stop does;
    returns the frames read and how long the reader took to end once cancelled."""
    read = 0
    have = asyncio.Event()

    async def reader() -> None:
        nonlocal read
        track = SimpleNamespace(_ffi_handle=SimpleNamespace(handle=7))
        async for _frame in generated_frames(track, "bgr24"):  # type: ignore[arg-type]
            read += 1
            if read == frames:
                have.set()

    task = asyncio.create_task(reader())
    await asyncio.sleep(0)  # subscribed, stream made
    for _ in range(frames):
        ffi.send_frame()
    await asyncio.wait_for(have.wait(), 5)
    task.cancel()
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 10)
    took = time.monotonic() - started
    ffi.join()
    return read, took


def test_frames_on_their_way_at_the_stop_are_given_back(
    install: Callable[[bool], FakeFfi],
) -> None:
    ffi = install(True)
    read, _took = asyncio.run(_read_then_stop(ffi, 3))
    assert read == 3
    assert ffi.stream_dropped.is_set()
    assert len(ffi.sent) == 4  # the last one arrived after the stream was dropped
    assert sorted(ffi.given_back) == sorted(ffi.sent), "a frame buffer was never given back"
    assert not ffi.queue._subscribers  # and the reader unsubscribed


def test_a_stream_whose_end_never_comes_stops_within_its_bound(
    install: Callable[[bool], FakeFfi], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ffi_video_stream, "EOS_TIMEOUT", 0.3)
    ffi = install(False)
    read, took = asyncio.run(_read_then_stop(ffi, 2))
    assert read == 2
    assert took < 3, f"the reader took {took:.1f} s to end without an eos"
    assert sorted(ffi.given_back) == sorted(ffi.sent)  # what came within the bound
    assert not ffi.queue._subscribers
