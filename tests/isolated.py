"""Runs test code in a fresh interpreter, so a crash (SIGSEGV, abort) fails a test, not pytest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def run_isolated(source: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Runs ``source`` with ``python -c`` (tests/ importable); raises AssertionError unless it
    exits 0, naming the signal that ended it and showing its output."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        how = (
            f"was killed by {signal.Signals(-result.returncode).name}"
            if result.returncode < 0
            else f"exited with {result.returncode}"
        )
        raise AssertionError(
            f"the isolated run {how}\n--- stdout\n{result.stdout[-4000:]}\n"
            f"--- stderr\n{result.stderr[-4000:]}"
        )
    return result
