"""A join that announces an initial state (``passthrough: false``): the emulator drops the
client's frames until it applies, as the service does. A plain livekit client streams from the
start; before the prompt's ack no generated frame comes back and ``frames_received`` stays 0;
after it, both move."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
from conftest import API_KEY
from control import open_control, receive_type, sessions
from livekit import rtc

import warmrtc
from warmrtc._protocol.models import INFERENCE_IDENTITY_PREFIX

WIDTH, HEIGHT, FPS = 320, 240, 30
HELD = 2.0  # seconds of streaming before the initial state is sent


async def walk(emulator_url: str) -> None:
    generated: list[float] = []
    acked = asyncio.Event()
    async with aiohttp.ClientSession() as http:
        ws = await open_control(http, emulator_url, API_KEY)
        await ws.send_json({"type": "livekit_join", "passthrough": False})
        info = await receive_type(ws, "livekit_room_info", timeout=20)
        session_id = info["session_id"]
        room = rtc.Room()
        readers: list[asyncio.Task[None]] = []

        async def read(remote: rtc.Track) -> None:
            async for _event in rtc.VideoStream(remote, format=rtc.VideoBufferType.I420):
                generated.append(asyncio.get_running_loop().time())
                if not acked.is_set():
                    raise AssertionError("a generated frame came before the initial state")

        def subscribed(remote: rtc.Track, _pub: object, who: rtc.RemoteParticipant) -> None:
            if who.identity.startswith(INFERENCE_IDENTITY_PREFIX):
                readers.append(asyncio.create_task(read(remote)))

        room.on("track_subscribed", subscribed)
        source = rtc.VideoSource(WIDTH, HEIGHT)
        streaming: asyncio.Task[None] | None = None
        try:
            await room.connect(info["livekit_url"], info["token"])
            track = rtc.LocalVideoTrack.create_video_track("camera", source)
            options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA)
            await room.local_participant.publish_track(track, options)

            async def stream() -> None:
                i420 = np.full(warmrtc.i420_shape(WIDTH, HEIGHT), 90, np.uint8)
                data = bytearray(i420.tobytes())
                while True:
                    source.capture_frame(
                        rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.I420, data)
                    )
                    await asyncio.sleep(1 / FPS)

            streaming = asyncio.create_task(stream())
            # Held: the model sees the track (subscribed, unmuted) but drops every frame.
            seen = []
            for _ in range(int(HELD / 0.5)):
                await asyncio.sleep(0.5)
                seen.append((await sessions(http, emulator_url, API_KEY))[session_id])
            assert [s["frames_received"] for s in seen] == [0] * len(seen), seen
            assert seen[-1]["billed_seconds"] == 0 and seen[-1]["muted"] is False
            assert generated == [] and all(not r.done() for r in readers)

            acked.set()  # from here on generated frames are expected
            await ws.send_json({"type": "prompt", "prompt": "now", "enhance_prompt": False})
            ack = await receive_type(ws, "prompt_ack", timeout=5)
            assert ack == {"type": "prompt_ack", "prompt": "now", "success": True}
            async with asyncio.timeout(10):
                while not generated:
                    await asyncio.sleep(0.05)
            report = (await sessions(http, emulator_url, API_KEY))[session_id]
            assert report["frames_received"] > 0
        finally:
            if streaming is not None:
                streaming.cancel()
            for task in [*readers, *([streaming] if streaming else [])]:
                task.cancel()
            results = await asyncio.gather(*readers, return_exceptions=True)
            await room.disconnect()
            await source.aclose()
            await ws.close()
        for result in results:  # a reader that saw a frame too early failed
            if isinstance(result, AssertionError):
                raise result


def test_frames_are_dropped_until_the_initial_state_applies(emulator_url: str) -> None:
    asyncio.run(asyncio.wait_for(walk(emulator_url), 60))
