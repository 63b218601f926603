"""The model's frames are converted off the app's loop and arrive on it finished: in the
output format asked for (packed or I420, for sessions and spectators), through on_frame and
frames(), on the loop's thread; the receive threads end with the session and the spectator."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from conftest import API_KEY
from test_session import HEIGHT, WIDTH, Camera

import warmrtc

NEGATIVE_BGR = (255 - 40, 255 - 160, 255 - 220)  # the emulator's transform of Camera's colour


def receive_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("warmrtc-output", "warmrtc-watch")]


def test_frames_arrive_converted_on_the_loop_and_the_receive_threads_end(
    emulator_url: str,
) -> None:
    async def run() -> None:
        loop_thread = threading.current_thread()
        callback_threads: set[threading.Thread] = set()
        source = warmrtc.VideoSource(WIDTH, HEIGHT, "bgr24", fps=30)
        async with warmrtc.connect(
            source,
            api_key=API_KEY,
            base_url=emulator_url,
            output_format="rgb24",
            on_frame=lambda _f: callback_threads.add(threading.current_thread()),
        ) as session:
            with Camera(source):
                async with warmrtc.watch(
                    session, api_key=API_KEY, base_url=emulator_url, output_format="i420"
                ) as spectator:
                    generated: list[np.ndarray] = []
                    watched: list[np.ndarray] = []

                    async def read(frames: object, into: list[np.ndarray]) -> None:
                        async for frame in frames:  # type: ignore[attr-defined]
                            into.append(frame)
                            if len(into) >= 10:
                                return

                    await asyncio.wait_for(
                        asyncio.gather(
                            read(session.frames(), generated), read(spectator.frames(), watched)
                        ),
                        30,
                    )
                    assert sorted(receive_threads()) == ["warmrtc-output", "warmrtc-watch"]
            assert callback_threads == {loop_thread}
            rgb = generated[-1]
            height, width = rgb.shape[:2]  # the model's size (720p), not the camera's
            assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
            r, g, b = np.median(rgb.reshape(-1, 3), axis=0)
            assert abs(b - NEGATIVE_BGR[0]) < 20 and abs(g - NEGATIVE_BGR[1]) < 20, (r, g, b)
            assert abs(r - NEGATIVE_BGR[2]) < 20, (r, g, b)
            i420 = watched[-1]  # the spectator's layer may be a smaller one of the model's
            rows, cols = i420.shape
            watched_height = rows * 2 // 3
            assert i420.shape == warmrtc.i420_shape(cols, watched_height)
            # Both frames are one flat colour: the spectator's luma is the session's.
            luma = float(np.median(warmrtc.to_i420(rgb, "rgb24")[:height]))
            assert abs(float(np.median(i420[:watched_height])) - luma) < 8
        source.close()
        async with asyncio.timeout(10):  # each ended within its bounded stop
            while receive_threads():
                await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(run(), 90))


def test_the_receive_benchmark_runs_both_paths() -> None:
    """benchmarks/receive.py swaps its own on-loop reader in for the session's: a change to the
    reader's hooks must not leave the benchmark broken until someone runs ``make bench``."""
    script = Path(__file__).parents[2] / "benchmarks" / "receive.py"
    cmd = [sys.executable, str(script), "--seconds", "1", "--rounds", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    received = re.search(r"frames received/s\s+([\d.]+)/s\s+([\d.]+)/s", proc.stdout)
    assert received is not None, proc.stdout
    assert float(received[1]) > 0 and float(received[2]) > 0, "frames came on both paths"
