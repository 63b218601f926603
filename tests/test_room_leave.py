"""A room's leave, the order that lets livekit free what the room knew: with
``publishers_first`` the leave waits (bounded) for the remote participants that publish to go
before livekit's own leave starts; and every finished leave asks for a heap trim.

livekit's room object is replaced by a stand-in that records when its leave was called and
lets the test make a participant leave or unpublish, with livekit's events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from warmrtc._media import heap
from warmrtc._media.room import Room


class FakeRtcRoom:
    """livekit's Room as Room.leave uses it: remote participants, events, disconnect()."""

    def __init__(self) -> None:
        self.name = "room-1"
        self.remote_participants: dict[str, Any] = {}
        self.handlers: dict[str, list[Callable[..., None]]] = {}
        self.connected = True
        self.left_with: list[str] | None = None  # the publishers still there at the leave

    def isconnected(self) -> bool:
        return self.connected

    def on(self, event: str, handler: Callable[..., None]) -> None:
        self.handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Callable[..., None]) -> None:
        self.handlers[event].remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        for handler in list(self.handlers.get(event, [])):
            handler(*args)

    def join(self, identity: str, tracks: int) -> None:
        self.remote_participants[identity] = SimpleNamespace(
            identity=identity, track_publications={f"TR_{i}": object() for i in range(tracks)}
        )

    def participant_left(self, identity: str) -> None:
        self.emit("participant_disconnected", self.remote_participants.pop(identity))

    def unpublished(self, identity: str) -> None:
        participant = self.remote_participants[identity]
        participant.track_publications.clear()
        self.emit("track_unpublished", object(), participant)

    async def disconnect(self) -> None:
        self.left_with = [
            p.identity for p in self.remote_participants.values() if p.track_publications
        ]
        self.connected = False


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[[], tuple[Room, FakeRtcRoom]]:
    trims: list[float] = []
    monkeypatch.setattr(heap, "release_soon", lambda: trims.append(time.monotonic()))

    def make() -> tuple[Room, FakeRtcRoom]:
        # livekit's room, replaced at once, is made on the running loop as in the client.
        ours = Room("test")
        rtc = FakeRtcRoom()
        ours.rtc = rtc  # type: ignore[assignment]
        ours.trims = trims  # type: ignore[attr-defined]
        return ours, rtc

    return make


async def _leave(
    fake: Callable[[], tuple[Room, FakeRtcRoom]],
    prepare: Callable[[FakeRtcRoom], None],
    publishers_first: float,
) -> tuple[Room, FakeRtcRoom, float]:
    """Makes the room, lets ``prepare`` set it up, leaves; returns how long the leave took."""
    ours, rtc = fake()
    prepare(rtc)
    started = time.monotonic()
    await asyncio.wait_for(ours.leave(publishers_first=publishers_first), 10)
    return ours, rtc, time.monotonic() - started


def test_the_leave_waits_for_the_model_to_leave_first(fake: Any) -> None:
    def prepare(rtc: FakeRtcRoom) -> None:
        rtc.join("inference-server-1", tracks=1)
        rtc.join("spectator", tracks=0)  # publishes nothing: not waited for
        asyncio.get_running_loop().call_later(0.2, rtc.participant_left, "inference-server-1")

    ours, rtc, took = asyncio.run(_leave(fake, prepare, 5))
    assert rtc.left_with == []  # nobody publishing was left behind in livekit's memory
    assert 0.15 < took < 3
    assert not any(rtc.handlers.values())  # its handlers went with it
    assert len(ours.trims) == 1  # type: ignore[attr-defined]


def test_an_unpublished_track_ends_the_wait_too(fake: Any) -> None:
    def prepare(rtc: FakeRtcRoom) -> None:
        rtc.join("inference-server-1", tracks=2)
        asyncio.get_running_loop().call_later(0.1, rtc.unpublished, "inference-server-1")

    _ours, rtc, took = asyncio.run(_leave(fake, prepare, 5))
    assert rtc.left_with == []
    assert took < 3


def test_a_model_that_stays_is_waited_for_within_the_bound(fake: Any) -> None:
    def prepare(rtc: FakeRtcRoom) -> None:
        rtc.join("inference-server-1", tracks=1)

    ours, rtc, took = asyncio.run(_leave(fake, prepare, 0.3))
    assert rtc.left_with == ["inference-server-1"]  # left anyway, once the bound passed
    assert 0.25 < took < 2
    assert len(ours.trims) == 1  # type: ignore[attr-defined]


def test_a_room_already_disconnected_is_not_waited_for(fake: Any) -> None:
    def prepare(rtc: FakeRtcRoom) -> None:
        rtc.join("inference-server-1", tracks=1)
        rtc.connected = False

    _ours, _rtc, took = asyncio.run(_leave(fake, prepare, 5))
    assert took < 1


def test_without_publishers_first_the_leave_does_not_wait(fake: Any) -> None:
    def prepare(rtc: FakeRtcRoom) -> None:
        rtc.join("inference-server-1", tracks=1)

    _ours, rtc, took = asyncio.run(_leave(fake, prepare, 0))
    assert took < 1
    assert rtc.left_with == ["inference-server-1"]  # a spectator's leave, as before
