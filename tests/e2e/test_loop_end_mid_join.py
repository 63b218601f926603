"""An event loop that ends while a room join is in flight must not take the process down.

livekit's FFI finishes a join whose caller vanished, then waits for the SDK to say it is ready
for the room's events; nobody does, and about 16 s later it declares a panic and sends SIGTERM
to its own process. An app (or a test suite) that runs several loops, or a server that cancels
connects, would die long after the fact. The child process here ends a dozen loops at points
spread over the connect (the join included), then lives on past that timeout.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import API_KEY

LOOPS = 12
LIVE_ON_S = 22  # past the FFI's wait for the ready message (about 16 s)

CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    import warmrtc

    base_url, api_key = sys.argv[1], sys.argv[2]
    loops, live_on = int(sys.argv[3]), float(sys.argv[4])

    async def leave_mid_connect(delay):
        source = warmrtc.VideoSource(64, 64)
        asyncio.ensure_future(
            warmrtc.connect(source, api_key=api_key, base_url=base_url, start_muted=True)
        )
        await asyncio.sleep(delay)  # asyncio.run() ends here, the connect wherever it is

    for i in range(loops):
        started = time.monotonic()
        asyncio.run(leave_mid_connect(0.02 + 0.03 * i))
        print(f"loop {i} ended in {time.monotonic() - started:.2f} s", flush=True)
    time.sleep(live_on)
    print("alive", flush=True)
    """
)


def test_a_loop_ending_mid_join_does_not_kill_the_process_later(emulator_url: str) -> None:
    args = [emulator_url, API_KEY, str(LOOPS), str(LIVE_ON_S)]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=150
    )
    print(proc.stdout)
    assert "FFI Panic" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 0 and "alive" in proc.stdout, proc.stderr[-2000:]
