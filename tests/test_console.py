"""The demo's and the check's console: the encoder's rate-control note goes, nothing else does,
not even the last words of a child that crashes."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

from warmrtc.local import console

# As OpenH264 prints it from inside livekit's native library (seen after an unmute).
NOTE = (
    b"[OpenH264] this = 0x0x7f6990004180, Warning:Actual input framerate 17.648224 is different "
    b"from framerate in setting 29.000000, suggest to use other rate control modes\n"
)


def test_the_note_goes_and_everything_else_stays() -> None:
    assert not console.shown(NOTE)
    assert not console.shown(NOTE.replace(b"17.648224", b"0.000000").rstrip(b"\n"))
    kept = [
        b"[OpenH264] this = 0x0x7f69, Error:CWelsH264SVCEncoder::EncodeFrame(), cmInitParaError.\n",
        b"Warning:Actual input framerate 17 is different from framerate in setting 29\n",
        b"warmrtc: livekit-server v1.13.5 ready\n",
        NOTE[:-1] + b" and more\n",
        b"\n",
    ]
    for line in kept:
        assert console.shown(line), line


def test_a_crashing_child_still_says_everything_but_the_note() -> None:
    """The lines pass through this process, so what a child wrote just before it died (here,
    by SIGABRT, with its last line unfinished) is shown all the same."""
    script = (
        "import os, sys\n"
        f"out = sys.stderr.buffer\n"
        f"out.write(b'first\\n' + {NOTE!r} + b'second\\n' + {NOTE!r} + b'last words')\n"
        "out.flush()\n"
        "os.abort()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    assert child.stderr is not None
    out = io.BytesIO()
    passing = console.pump(child.stderr, out)
    assert child.wait(30) == -signal.SIGABRT
    passing.join(console.DRAIN)
    assert not passing.is_alive()
    assert out.getvalue() == b"first\nsecond\nlast words"
