"""A live session behind a link that changes under it: a new profile mid-session, then a
blackout. The client runs behind a link of the test's own (client_link); the emulator and
livekit-server on the stack's side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import API_KEY

from warmrtc.local.link import ClientLink

CLIENT = str(Path(__file__).with_name("live_client.py"))
BLACKOUT = 2.0


@pytest.mark.link("broadband")
def test_a_live_session_rides_out_a_new_profile_and_a_blackout(
    emulator_url: str, client_link: ClientLink
) -> None:
    client = subprocess.Popen(
        client_link.command([sys.executable, CLIENT, emulator_url, API_KEY, "14"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**client_link.environment(), "PYTHONUNBUFFERED": "1"},
    )
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.extend(client.stderr or []), daemon=True)
    drain.start()
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "live", "".join(errors[-30:])
        time.sleep(2)
        mobile = time.monotonic()
        client_link.control.set("mobile")
        time.sleep(3)
        dark = time.monotonic()
        client_link.control.blackout(BLACKOUT)
        outcome = json.loads(client.stdout.readline())
        client.wait(60)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
        drain.join(5)
        for pipe in (client.stdout, client.stderr):
            if pipe is not None:
                pipe.close()
    assert client.returncode == 0, "".join(errors[-30:])
    frames, states = outcome["frames"], outcome["states"]
    stats = client_link.control.stats()
    before = [t for t in frames if mobile - 2 <= t < mobile]
    on_mobile = [t for t in frames if mobile + 0.5 <= t < dark]
    after = [t for t in frames if t > dark + BLACKOUT]
    resumed = after[0] - (dark + BLACKOUT) if after else None
    print(
        f"frames/s: broadband {len(before) / 2:.1f}, "
        f"mobile {len(on_mobile) / (dark - mobile - 0.5):.1f}; "
        f"{BLACKOUT:g} s blackout: frames back {resumed} s after it; states {states}; "
        f"link dropped {stats.up.dark + stats.down.dark} in the dark, lost "
        f"{stats.up.lost + stats.down.lost}, late {stats.late_ms}"
    )
    assert len(before) > 20 and len(on_mobile) > 20  # ~30/s on broadband
    assert not [t for t in frames if dark + 0.2 < t < dark + BLACKOUT]  # dark means dark
    assert stats.up.dark > 0 and stats.down.dark > 0
    # Back within a few seconds of the link's return, in the same session or a new one.
    assert resumed is not None and resumed < 6, resumed
    assert os.environ.get("WARMRTC_LINK", "lan") == "lan"  # the suite's own link is as it was
