"""A spectator (warmrtc.watch) receives the generated frames of a live session, publishes
nothing, and is refused without a valid key or for a room that has no live session."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from conftest import API_KEY
from test_session import HEIGHT, WIDTH, Camera

import warmrtc


def test_a_spectator_receives_the_generated_frames_of_a_live_session(emulator_url: str) -> None:
    async def run() -> None:
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
        async with warmrtc.connect(source, api_key=API_KEY, base_url=emulator_url) as session:
            assert session.room_name
            with Camera(source):
                async with warmrtc.watch(
                    session, api_key=API_KEY, base_url=emulator_url
                ) as spectator:
                    assert spectator.session_id == session.session_id
                    frames: list[np.ndarray] = []

                    async def read() -> None:  # until the model's transform of the camera
                        async for frame in spectator:
                            frames.append(frame)
                            if frame.mean() > 5:
                                return

                    await asyncio.wait_for(read(), 20)
                    assert all(f.dtype == np.uint8 and f.shape[2] == 3 for f in frames)
                    # A spectator sends nothing.
                    assert not spectator._room.rtc.local_participant.track_publications
            assert spectator.closed and spectator.frames_received >= 1
        source.close()

    asyncio.run(asyncio.wait_for(run(), 90))


def test_a_spectator_is_refused_without_a_valid_key_or_a_live_room(emulator_url: str) -> None:
    async def run() -> None:
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
        async with warmrtc.connect(
            source, api_key=API_KEY, base_url=emulator_url, start_muted=True
        ) as session:
            room = session.room_name
            assert room
            with pytest.raises(warmrtc.AuthenticationError, match="HTTP 401"):
                await warmrtc.watch(room, api_key="not-a-key", base_url=emulator_url)
            with pytest.raises(warmrtc.SessionClosedError, match="HTTP 404"):
                await warmrtc.watch("no-such-room", api_key=API_KEY, base_url=emulator_url)
        source.close()

    asyncio.run(asyncio.wait_for(run(), 60))
