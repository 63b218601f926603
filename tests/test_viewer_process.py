"""A process that only watches (a spectator, no VideoSource) gets what every livekit process
needs: the exit hook that closes its rooms before the interpreter finalizes, and livekit's
native logs kept out of Python. Checked in a fresh interpreter, where nothing set them up."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import asyncio, os
    from warmrtc._media import exit_hook, native_logs
    from warmrtc.watch import Spectator

    async def main():
        before = (exit_hook._installed_pid, native_logs._configured_pid)
        spectator = Spectator("a-room", None, "bgr24", None)  # what watch() makes
        after = (exit_hook._installed_pid, native_logs._configured_pid)
        await spectator.close()
        print(before == (None, None), after == (os.getpid(), os.getpid()))

    asyncio.run(main())
    """
)


def test_a_spectator_alone_installs_the_exit_hook_and_keeps_logs_native() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"], done.stdout + done.stderr[-2000:]
