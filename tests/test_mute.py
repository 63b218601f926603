"""The mute switch: the one writer of mute, on a real VideoSource (the native gate) and a
recording stand-in for livekit's track (whose real mute messages need a media server)."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import warmrtc
from warmrtc._session.mute import MuteSwitch
from warmrtc.source import attach, detach, gate_of


class RecordingTrack:
    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.muted: bool | None = None

    def mute(self) -> None:
        self.calls.append(True)
        self.muted = True

    def unmute(self) -> None:
        self.calls.append(False)
        self.muted = False


FRAME = np.zeros((48, 64, 3), np.uint8)


def test_source_and_switch_share_one_mute_state() -> None:
    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0)
        attach(source, switch)
        track = RecordingTrack()
        switch.set(True)
        switch.attach(track)  # before publishing: the track starts muted
        assert track.calls == [True] and source.muted and switch.muted
        source.unmute()  # through the switch: the track follows
        assert track.muted is False and not switch.muted and source.capture(FRAME)
        source.mute()
        assert track.muted is True and switch.muted and not source.capture(FRAME)
        detach(source, switch)
        source.unmute()  # out of the session: the gate alone
        assert not source.muted and track.muted is True
        source.close()

    asyncio.run(body())


def test_unmute_tells_the_track_before_the_gate_opens() -> None:
    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0)
        switch.set(True)
        order: list[str] = []

        class Track(RecordingTrack):
            def unmute(self) -> None:
                order.append(f"track unmuted, gate muted={source.muted}")

        switch.attach(Track())
        switch.set(False)
        assert order == ["track unmuted, gate muted=True"]
        source.close()

    asyncio.run(body())


def test_toggling_from_threads_is_coalesced_and_ends_as_the_last_call() -> None:
    """Four threads toggling for a second: the gate follows every call at once; the track gets
    a bounded number of messages and ends in the state of the last call."""
    interval = 0.05

    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=interval)
        track = RecordingTrack()
        switch.attach(track)
        stop = time.monotonic() + 1.0
        calls = [0] * 4

        def toggle(i: int) -> None:
            n = 0
            while time.monotonic() < stop and n < 1_000_000:
                switch.set(n % 2 == 0)
                n += 1
            calls[i] = n

        threads = [threading.Thread(target=toggle, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            await asyncio.sleep(0.01)
        switch.set(True)  # the app's last word
        await asyncio.sleep(interval * 3)
        assert sum(calls) > 1000
        assert len(track.calls) <= 1.0 / interval * 1.5 + 3, len(track.calls)
        assert track.muted is True and source.muted
        switch.set(False)
        await asyncio.sleep(interval * 3)
        assert track.muted is False and not source.muted
        source.close()

    asyncio.run(body())


def test_a_closed_switch_refuses_unmute_and_stays_muted() -> None:
    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        mutes: list[bool] = []
        switch = MuteSwitch(
            gate_of(source),
            asyncio.get_running_loop(),
            min_interval=0,
            on_muted=lambda: mutes.append(True),
        )
        attach(source, switch)
        track = RecordingTrack()
        switch.attach(track)
        switch.set(False)
        switch.close()  # a shutdown began
        with pytest.raises(warmrtc.SessionClosedError):
            source.unmute()  # through the switch, like session.unmute()
        assert source.muted and track.muted is True and mutes == [True]
        detach(source, switch)
        source.close()

    asyncio.run(body())


def test_the_track_rests_after_each_mute_of_a_live_track_and_reports_going_live() -> None:
    """``rest`` follows a mute of a track that was live, with the track muted already (the
    encoder's rest frame must never go out live); not the mute before publishing. ``live``
    follows every unmute."""

    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0)
        track = RecordingTrack()
        seen: list[str] = []
        switch.set(True)
        switch.attach(
            track,
            rest=lambda: seen.append(f"rest, track muted={track.muted}"),
            live=lambda: seen.append(f"live, track muted={track.muted}"),
        )
        assert seen == []  # the mute before publishing: the media link rests it once published
        switch.published(track)
        switch.set(False)
        switch.set(True)
        switch.set(True)  # muted already: nothing more
        switch.set(False)
        assert seen == [
            "live, track muted=False",
            "rest, track muted=True",
            "live, track muted=False",
        ]
        switch.detach()
        switch.set(True)
        assert len(seen) == 3  # a detached track rests no more
        source.close()

    asyncio.run(body())


def test_refreshing_the_track_mutes_then_unmutes_it_and_leaves_the_gate_open() -> None:
    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0.05)
        attach(source, switch)
        track = RecordingTrack()
        switch.attach(track)
        switch.set(False)
        await asyncio.sleep(0.1)
        assert track.calls == [False]
        assert switch.refresh_track()
        assert track.calls == [False, True] and source.capture(FRAME)  # the gate never closed
        await asyncio.sleep(0.2)  # the unmute follows at the switch's rate
        assert track.calls == [False, True, False] and not switch.muted
        switch.set(True)
        assert not switch.refresh_track()  # muted: nothing to refresh
        await asyncio.sleep(0.1)
        assert track.calls == [False, True, False, True]
        switch.detach()
        switch.set(False)
        assert not switch.refresh_track()  # no track
        detach(source, switch)
        source.close()

    asyncio.run(asyncio.wait_for(body(), 10))


def test_a_refresh_is_no_rest_but_a_mute_within_it_rests() -> None:
    """A refresh mutes the track for a moment while the gate stays open: no rest frame may go
    into a live stream. A mute that comes within that moment finds the track muted already,
    and rests it all the same (else the next unmute's first frame is no keyframe)."""

    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0.05)
        track = RecordingTrack()
        rests: list[bool | None] = []
        switch.attach(track, rest=lambda: rests.append(track.muted))
        switch.set(False)
        await asyncio.sleep(0.1)
        assert switch.refresh_track() and track.muted is True
        assert rests == []  # live: the refresh's mute is no rest
        switch.set(True)  # within the refresh's moment: the track is muted already
        assert rests == [True]
        await asyncio.sleep(0.15)
        assert track.muted is True and switch.muted  # the refresh's unmute does not follow
        switch.detach()
        source.close()

    asyncio.run(asyncio.wait_for(body(), 10))


def test_nothing_runs_as_muted_while_the_track_is_still_live() -> None:
    """A mute right after an unmute closes the gate at once, but the track follows only at the
    switch's rate: until then it is live, and a rest frame captured into it would be sent."""

    async def body() -> None:
        source = warmrtc.VideoSource(64, 48)
        switch = MuteSwitch(gate_of(source), asyncio.get_running_loop(), min_interval=0.05)
        track = RecordingTrack()
        ran: list[int] = []
        switch.attach(track)
        switch.set(False)
        switch.set(True)  # the track's mute waits for the rate
        assert switch.muted and track.muted is False
        assert not switch.run_if_muted(lambda: ran.append(1))
        await asyncio.sleep(0.15)
        assert track.muted is True
        assert switch.run_if_muted(lambda: ran.append(1)) and ran == [1]
        switch.detach()
        source.close()

    asyncio.run(asyncio.wait_for(body(), 10))
