"""warmrtc.connect end to end: real livekit-server, the emulator, the native source."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import aiohttp
import numpy as np
import pytest
from conftest import API_KEY
from control import sessions

import warmrtc

WIDTH, HEIGHT = 320, 240


class Camera:
    """A capture thread pushing bgr24 frames at 30 fps, as an app's camera loop would."""

    def __init__(self, source: warmrtc.VideoSource) -> None:
        self.source = source
        self.results: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.frame = np.full((HEIGHT, WIDTH, 3), (40, 160, 220), np.uint8)

    def _run(self) -> None:
        deadline = time.monotonic() + 120  # bounded even if a test forgets to stop it
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.results.append((time.monotonic(), self.source.capture(self.frame)))
            self._stop.wait(1 / 30)

    def __enter__(self) -> Camera:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def sent_between(self, start: float, end: float) -> list[bool]:
        return [ok for t, ok in self.results if start <= t < end]


async def report(http: aiohttp.ClientSession, url: str, session_id: str | None) -> dict:
    assert session_id is not None
    return (await sessions(http, url, API_KEY))[session_id]


def test_warm_live_pause_resume_is_billed_for_live_seconds_only(emulator_url: str) -> None:
    states: list[str] = []
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            connected_at = time.monotonic()
            session = await warmrtc.connect(
                source,
                "lucy-2.6",
                api_key=API_KEY,
                base_url=emulator_url,
                prompt="a watercolour",
                start_muted=True,
                on_state=states.append,
            )
            assert session.state == "connected" and session.muted and source.muted
            generated: list[tuple[float, np.ndarray]] = []

            async def collect() -> None:
                async for frame in session.frames():
                    generated.append((time.monotonic(), frame))

            collector = asyncio.create_task(collect())
            with Camera(source) as camera:
                # 1. Warm: the app keeps capturing; nothing reaches the model, nothing billed.
                await asyncio.sleep(5)
                warm = await report(http, emulator_url, session.session_id)
                assert warm["frames_received"] == 0 and warm["billed_seconds"] == 0, warm
                assert warm["muted"] is True
                assert not any(camera.sent_between(connected_at, time.monotonic()))
                assert not generated

                # 2. Live for 5 s: generated frames arrive (colour negative of ours).
                unmuted_at = time.monotonic()
                session.unmute()
                await asyncio.sleep(5)
                live = await report(http, emulator_url, session.session_id)
                assert live["frames_received"] > 60, live
                assert generated, "no generated frame arrived"
                first = generated[0][0] - unmuted_at
                print(f"\nunmute -> first generated frame: {first * 1000:.0f} ms")
                assert generated[-1][1].shape == (720, 1280, 3)
                # One reader per output track: never more frames than the model's 30 fps.
                live_frames = sum(1 for t, _ in generated if t >= unmuted_at)
                assert live_frames <= 5 * 30 * 1.2, live_frames
                b, g, r = np.median(generated[-1][1].reshape(-1, 3), axis=0)
                assert abs(b - (255 - 40)) < 20 and abs(g - (255 - 160)) < 20, (b, g, r)
                assert session.state == "generating"

                # 3. Pause: frames to the model stop within 1 s, billing stops.
                session.mute()
                await asyncio.sleep(1)
                paused = await report(http, emulator_url, session.session_id)
                await asyncio.sleep(7)  # ~18 s alive, 5 s of it live
                later = await report(http, emulator_url, session.session_id)
                assert later["frames_received"] == paused["frames_received"], (paused, later)
                assert later["muted"] is True
                assert 4 <= later["billed_seconds"] <= 6, later
                assert abs(session.billed_seconds - later["billed_seconds"]) <= 1

                # Resume.
                session.unmute()
                await asyncio.sleep(1.5)
                resumed = await report(http, emulator_url, session.session_id)
                assert resumed["frames_received"] > later["frames_received"]
            await session.disconnect()
            await session.disconnect()  # idempotent
            collector.cancel()
            with pytest.raises(warmrtc.SessionClosedError):
                session.unmute()
        assert states[0] == "connected" and "generating" in states
        assert states[-1] == "disconnected"

    try:
        asyncio.run(asyncio.wait_for(run(), 90))
    finally:
        source.close()


def test_unmuted_session_without_captures_is_billed_for_keepalives(emulator_url: str) -> None:
    # The control for pre-warming: an unmuted published track sends keepalive frames.
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")

    async def run() -> dict:
        async with aiohttp.ClientSession() as http:
            async with warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, start_muted=False
            ) as session:
                await asyncio.sleep(4)
                return await report(http, emulator_url, session.session_id)

    try:
        idle = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()
    assert source.stats["captured"] == 0
    assert idle["frames_received"] > 10 and idle["billed_seconds"] >= 2, idle


def test_a_warm_session_ends_the_keepalive_it_would_encode_for_nothing(emulator_url: str) -> None:
    """livekit's keepalive frames are encoded and sent even for a muted track: a warm session
    ends them as soon as its track is published (with a small rest frame of its own, which
    keeps unmute instant), so it idles at ~0 CPU."""
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")

    async def frames_sent(track: object) -> int:
        stats = await track.get_stats()  # type: ignore[attr-defined]
        return sum(s.outbound_rtp.outbound.frames_sent for s in stats if s.HasField("outbound_rtp"))

    async def run() -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http:
            async with warmrtc.connect(
                source, api_key=API_KEY, base_url=emulator_url, start_muted=True
            ) as session:
                assert session._link._media is not None
                track = session._link._media._track
                after = await frames_sent(track)
                async with asyncio.timeout(15):
                    while True:
                        before = after
                        await asyncio.sleep(1)
                        if (after := await frames_sent(track)) == before:
                            break
                assert session.muted and source.stats["captured"] == 0
                return before, await report(http, emulator_url, session.session_id)

    try:
        sent, idle = asyncio.run(asyncio.wait_for(run(), 60))
    finally:
        source.close()
    assert sent >= 1, "nothing was ever sent: the encoder would start cold at unmute"
    assert idle["frames_received"] == 0 and idle["billed_seconds"] == 0, idle


def test_wrong_key_and_unknown_model_raise_typed_errors(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)

    async def run() -> None:
        with pytest.raises(warmrtc.AuthenticationError, match="Invalid API key"):
            await warmrtc.connect(source, api_key="wrong", base_url=emulator_url, timeout=10)
        with pytest.raises(warmrtc.ModelError, match="lucy-9000"):
            await warmrtc.connect(
                source, "lucy-9000", api_key=API_KEY, base_url=emulator_url, timeout=10
            )

    asyncio.run(asyncio.wait_for(run(), 30))
    source.close()


def test_bad_arguments_are_named() -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT)

    async def run() -> None:
        with pytest.raises(ValueError, match="output_format"):
            await warmrtc.connect(source, api_key="k", output_format="yuv9")
        with pytest.raises(TypeError, match="VideoSource"):
            await warmrtc.connect("camera", api_key="k")  # type: ignore[arg-type]
        env = os.environ.pop("DECART_API_KEY", None)
        try:
            with pytest.raises(ValueError, match="DECART_API_KEY"):
                await warmrtc.connect(source)
        finally:
            if env is not None:
                os.environ["DECART_API_KEY"] = env
        with pytest.raises(TypeError, match="image"):
            await warmrtc.connect(source, api_key="k", image=np.zeros(3))  # type: ignore[arg-type]

    asyncio.run(run())
    source.close()


@pytest.fixture
def own_emulator() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """An emulator of this test's own, so the test may kill it."""
    host = os.environ["WARMRTC_NETNS_HOST"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "warmrtc.emulator",
            "--host",
            host,
            "--port",
            "0",
            "--api-key",
            API_KEY,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("emulator ready "), line
    yield line.split()[-1], proc
    proc.kill()
    proc.wait(10)
    proc.stdout.close()


def test_emulator_killed_mid_session_ends_with_a_clear_error(
    own_emulator: tuple[str, subprocess.Popen[str]],
) -> None:
    url, proc = own_emulator
    source = warmrtc.VideoSource(WIDTH, HEIGHT)
    states: list[str] = []

    async def run() -> warmrtc.Session:
        session = await warmrtc.connect(
            source,
            api_key=API_KEY,
            base_url=url,
            start_muted=True,
            on_state=states.append,
            reconnect_attempts=2,
            timeout=5,
        )
        proc.send_signal(signal.SIGKILL)
        async with asyncio.timeout(40):
            while session.state != "disconnected":
                await asyncio.sleep(0.1)
        with pytest.raises(warmrtc.SessionClosedError):
            await session.set_prompt("anything")
        return session

    session = asyncio.run(run())
    source.close()
    assert "reconnecting" in states and states[-1] == "disconnected"
    assert isinstance(session.last_error, warmrtc.ConnectionLostError)
    assert source.muted  # a muted session never went live on the way


def test_connect_blocking_from_a_plain_thread(emulator_url: str) -> None:
    source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24")
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    with warmrtc.connect_blocking(
        source, api_key=API_KEY, base_url=emulator_url, start_muted=True, output_format="rgb24"
    ) as session:
        assert source.capture(frame) is False
        session.set_prompt("a robot")
        session.unmute()
        with Camera(source):
            first = next(iter(session.frames(timeout=10)))
        # The model's 16:9 output; the first frame may come from a lower simulcast layer.
        height, width, channels = first.shape
        assert channels == 3 and height * 16 == width * 9 and width <= 1280, first.shape
        session.mute()
        assert session.muted
    assert session.state == "disconnected"
    source.close()
