"""What an unmute sends: the first frame after it is a keyframe, encoded before the media
server could ask for one, behind a real round trip; a warm session's encoder rests soon after
connect() returns, also when the app captured before connecting; and the client's H.264
encoder says nothing about the frame rate after mutes and unmutes of a few seconds (see
warmrtc._media.keepalive).

The client runs in a process of its own, so its stderr is its own: the emulator's model, which
encodes H.264 too, writes to another pipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY

from warmrtc.local.link import ClientLink

CLIENT = str(Path(__file__).with_name("unmute_client.py"))
CYCLES = 3
REST_WITHIN_MS = 1000  # connect() -> the warm encoder rests, behind 120 ms of round trip
RATE_NOTE = "is different from framerate in setting"  # OpenH264's rate-control warning


def run_client(
    link: ClientLink, emulator_url: str, warm: float, live: float, paused: float
) -> tuple[dict[str, Any], str]:
    seconds = [str(warm), str(live), str(paused)]
    done = subprocess.run(
        link.command([sys.executable, CLIENT, emulator_url, API_KEY, str(CYCLES), *seconds]),
        capture_output=True,
        text=True,
        env={**link.environment(), "PYTHONUNBUFFERED": "1"},
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


@pytest.mark.link("far")
def test_the_first_frame_after_each_unmute_is_a_keyframe_sent_unasked(
    emulator_url: str, client_link: ClientLink
) -> None:
    report, _stderr = run_client(client_link, emulator_url, warm=1.5, live=1.0, paused=1.0)
    print(report)
    unmutes = report["unmutes"]
    assert len(unmutes) == CYCLES
    for unmute in unmutes:
        # A keyframe from the first frame on, before any keyframe request: the media server
        # asks for one as it learns of the unmute, and that cannot reach the client sooner
        # than a round trip (120 ms here) after it.
        assert unmute["key_frames"] >= 1, unmutes
        assert unmute["plis"] == 0, unmutes
    # Warm means resting, and soon: an unmute that meets a rest still on its way can find the
    # encoder neither here nor there, and its first frame no keyframe. The camera ran before
    # connect(), so livekit's keepalive had ended before the track was published.
    assert report["rested_ms"] is not None and report["rested_ms"] <= REST_WITHIN_MS, report


def test_the_encoder_is_quiet_after_mutes_and_unmutes(
    emulator_url: str, client_link: ClientLink
) -> None:
    # Live long enough for the encoder's statistics window to close (more than twice its
    # frame rate in frames: 61 at 30 fps), muted long enough for libwebrtc's frame-rate
    # estimate to fall (~3.5 s).
    report, stderr = run_client(client_link, emulator_url, warm=4.0, live=3.0, paused=4.0)
    assert len(report["unmutes"]) == CYCLES
    assert RATE_NOTE not in stderr, stderr[-3000:]
