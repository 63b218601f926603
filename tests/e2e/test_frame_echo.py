"""The emulator echoes input frames' capture stamps on the frames generated from them, only
for a client whose join announces ``client_capabilities: {frame_timing: true}``, and carries
the timestamp alone (Decart's service does not propagate frame ids). A plain livekit client."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest
from conftest import API_KEY
from control import open_control, receive_type
from livekit import rtc

import warmrtc
from warmrtc._protocol.models import INFERENCE_IDENTITY_PREFIX

WIDTH, HEIGHT, FPS = 320, 240, 30
FIRST_STAMP = 1_700_000_000_000_000  # any value goes back as it came


async def echoed(emulator_url: str, *, announce: bool) -> tuple[int, list[rtc.FrameMetadata]]:
    """Streams stamped frames for 3 s; returns (frames sent, metadata of generated frames)."""
    received: list[rtc.FrameMetadata | None] = []
    async with aiohttp.ClientSession() as http:
        ws = await open_control(http, emulator_url, API_KEY)
        join: dict[str, object] = {"type": "livekit_join", "passthrough": True}
        if announce:
            join["client_capabilities"] = {"frame_timing": True}
        await ws.send_json(join)
        info = await receive_type(ws, "livekit_room_info", timeout=20)
        room = rtc.Room()
        tasks: list[asyncio.Task[None]] = []

        async def read(remote: rtc.Track) -> None:
            async for event in rtc.VideoStream(remote, format=rtc.VideoBufferType.I420):
                received.append(event.metadata)

        def subscribed(remote: rtc.Track, _pub: object, who: rtc.RemoteParticipant) -> None:
            if who.identity.startswith(INFERENCE_IDENTITY_PREFIX):
                tasks.append(asyncio.create_task(read(remote)))

        room.on("track_subscribed", subscribed)
        await room.connect(info["livekit_url"], info["token"])
        source = rtc.VideoSource(WIDTH, HEIGHT)
        track = rtc.LocalVideoTrack.create_video_track("camera", source)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
        options.frame_metadata_features.extend(
            [rtc.FrameMetadataFeature.FMF_USER_TIMESTAMP, rtc.FrameMetadataFeature.FMF_FRAME_ID]
        )
        await room.local_participant.publish_track(track, options)
        i420 = np.full(warmrtc.i420_shape(WIDTH, HEIGHT), 90, np.uint8)
        frame = rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, bytearray(i420.tobytes()))
        sent = 3 * FPS
        for i in range(sent):
            meta = rtc.FrameMetadata(user_timestamp=FIRST_STAMP + i, frame_id=i + 1)
            source.capture_frame(frame, metadata=meta)
            await asyncio.sleep(1 / FPS)
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await room.disconnect()
        await source.aclose()
        await ws.close()
    assert len(received) > FPS, f"only {len(received)} generated frames came back"
    return sent, [m for m in received if m is not None and m.HasField("user_timestamp")]


@pytest.mark.parametrize("announce", [True, False])
def test_stamps_are_echoed_only_when_announced(announce: bool, emulator_url: str) -> None:
    sent, stamped = asyncio.run(asyncio.wait_for(echoed(emulator_url, announce=announce), 60))
    if not announce:
        assert stamped == []
        return
    assert len(stamped) > FPS
    stamps = [m.user_timestamp for m in stamped]
    assert all(FIRST_STAMP <= s < FIRST_STAMP + sent for s in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # one per input frame
    assert not any(m.HasField("frame_id") for m in stamped)
