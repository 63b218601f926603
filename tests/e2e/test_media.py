"""Media through the real livekit-server and the emulator, with a plain livekit.rtc client."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
import numpy as np
from conftest import API_KEY
from control import join, open_control, sessions
from livekit import rtc

import warmrtc
from warmrtc._protocol.models import INFERENCE_IDENTITY_PREFIX

WIDTH, HEIGHT, FPS = 320, 240, 30


@dataclass
class Client:
    """One plain livekit.rtc client in a session's room, counting generated frames."""

    room: rtc.Room
    source: rtc.VideoSource
    track: rtc.LocalVideoTrack
    session_id: str
    generated: list[tuple[float, np.ndarray]] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def connect_client(
    http: aiohttp.ClientSession,
    emulator_url: str,
    *,
    publish_muted: bool,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> tuple[Client, aiohttp.ClientWebSocketResponse]:
    ws = await open_control(http, emulator_url, API_KEY)
    info = await join(ws)
    room = rtc.Room()
    source = rtc.VideoSource(width, height)
    track = rtc.LocalVideoTrack.create_video_track("camera", source)
    client = Client(room, source, track, info["session_id"])

    async def read(remote: rtc.Track) -> None:
        async for event in rtc.VideoStream(remote, format=rtc.VideoBufferType.I420):
            f = event.frame
            y = np.frombuffer(f.data, np.uint8)[: f.width * f.height].reshape(f.height, f.width)
            client.generated.append((time.monotonic(), y.copy()))

    def subscribed(remote: rtc.Track, _pub: object, participant: rtc.RemoteParticipant) -> None:
        if participant.identity.startswith(INFERENCE_IDENTITY_PREFIX):
            client.tasks.append(asyncio.create_task(read(remote)))

    room.on("track_subscribed", subscribed)
    await room.connect(info["livekit_url"], info["token"])
    if publish_muted:
        track.mute()
    await room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
    )
    return client, ws


async def close_client(client: Client, ws: aiohttp.ClientWebSocketResponse) -> None:
    for task in client.tasks:
        task.cancel()
    await asyncio.gather(*client.tasks, return_exceptions=True)
    await client.room.disconnect()
    await client.source.aclose()
    await ws.close()


def grey_frame(level: int, width: int = WIDTH, height: int = HEIGHT) -> rtc.VideoFrame:
    i420 = np.full(warmrtc.i420_shape(width, height), 128, np.uint8)
    i420[:height] = level
    return rtc.VideoFrame(width, height, rtc.VideoBufferType.I420, bytearray(i420.tobytes()))


async def stream(client: Client, frame: rtc.VideoFrame, seconds: float, fps: int = FPS) -> int:
    sent, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        client.source.capture_frame(frame)
        sent += 1
        await asyncio.sleep(1 / fps)
    return sent


def test_generated_frames_come_back_transformed_and_billed(emulator_url: str) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            client, ws = await connect_client(http, emulator_url, publish_muted=False)
            await stream(client, grey_frame(60), 3.0)
            await asyncio.sleep(0.5)
            report = (await sessions(http, emulator_url, API_KEY))[client.session_id]
            await close_client(client, ws)
        assert client.generated, "no generated frames arrived"
        # The model's output: the colour negative, at the model's resolution.
        _, y = client.generated[-1]
        assert y.shape == (720, 1280)
        assert abs(float(np.median(y)) - (255 - 60)) <= 6, np.median(y)
        assert report["frames_received"] > 30
        assert 2 <= report["billed_seconds"] <= 4, report
        assert report["muted"] is False
        assert report["state"] in ("generating", "ended")

    asyncio.run(asyncio.wait_for(run(), 60))


def test_track_published_muted_delivers_nothing_and_bills_nothing(emulator_url: str) -> None:
    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            client, ws = await connect_client(http, emulator_url, publish_muted=True)
            await stream(client, grey_frame(200), 3.0)  # the app keeps capturing while muted
            report = (await sessions(http, emulator_url, API_KEY))[client.session_id]
            unmuted_at = time.monotonic()
            client.track.unmute()
            await stream(client, grey_frame(200), 2.0)
            after = (await sessions(http, emulator_url, API_KEY))[client.session_id]
            await close_client(client, ws)
        assert report["frames_received"] == 0 and report["billed_seconds"] == 0, report
        assert report["muted"] is True
        # Nothing was generated while muted; after unmute the model answers.
        assert not [t for t, _ in client.generated if t < unmuted_at]
        assert client.generated, "no generated frame after unmute"
        assert after["frames_received"] > 0 and after["muted"] is False, after

    asyncio.run(asyncio.wait_for(run(), 60))


def test_unmuted_idle_track_sends_keepalive_frames(emulator_url: str) -> None:
    # Why pre-warming mutes: a published, unmuted track on which the app never captures still
    # delivers frames (LiveKit's native source sends keepalive frames) and is billed.
    async def run() -> dict:
        async with aiohttp.ClientSession() as http:
            client, ws = await connect_client(http, emulator_url, publish_muted=False)
            await asyncio.sleep(1.0)  # subscription settles
            before = (await sessions(http, emulator_url, API_KEY))[client.session_id]
            await asyncio.sleep(3.0)
            after = (await sessions(http, emulator_url, API_KEY))[client.session_id]
            await close_client(client, ws)
        return {"before": before, "after": after}

    result = asyncio.run(asyncio.wait_for(run(), 60))
    rate = (result["after"]["frames_received"] - result["before"]["frames_received"]) / 3.0
    print(f"\nkeepalive frames reaching the model from an idle unmuted track: {rate:.1f}/s")
    assert rate >= 1, result
    assert result["after"]["billed_seconds"] >= 3, result


def test_720p_frame_rate_through_the_stack(emulator_url: str) -> None:
    async def run() -> tuple[int, float]:
        async with aiohttp.ClientSession() as http:
            client, ws = await connect_client(
                http, emulator_url, publish_muted=False, width=1280, height=720
            )
            await stream(client, grey_frame(90, 1280, 720), 1.0)  # warm up the encoders
            start = time.monotonic()
            await stream(client, grey_frame(90, 1280, 720), 4.0)
            received = sum(1 for t, _ in client.generated if t >= start)
            await close_client(client, ws)
        return received, 4.0

    received, seconds = asyncio.run(asyncio.wait_for(run(), 60))
    print(f"\n720p generated frames/s through the stack: {received / seconds:.1f}")
    assert received / seconds >= 5
