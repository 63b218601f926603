"""Starts the emulator as a child process: the local service the demo and benchmarks use."""

from __future__ import annotations

import atexit
import importlib.util
import os
import secrets
import subprocess
import sys
from types import TracebackType

from .netns import service_side


class LocalService:
    """``with LocalService() as (base_url, api_key):`` runs ``python -m warmrtc.emulator``
    (with ``emulator_args`` added to its command line, e.g. ``"--model-delay-ms", "150"``).

    Needs a LiveKit server: ``WARMRTC_LIVEKIT_URL`` (set inside ``warmrtc stack``)
    and binds to ``WARMRTC_NETNS_HOST``, on the stack's service side: behind a link
    (``warmrtc stack --link ...``) the emulator runs where livekit-server does, and the client
    reaches both over the link.
    """

    def __init__(self, *emulator_args: str) -> None:
        url = os.environ.get("WARMRTC_LIVEKIT_URL")
        if not url:
            raise RuntimeError(
                "no local LiveKit server: run inside `warmrtc stack -- ...` "
                "(as `warmrtc demo` does), or set DECART_API_KEY to use the real service"
            )
        if importlib.util.find_spec("livekit.api") is None:
            raise RuntimeError("the local service needs livekit-api: pip install 'warmrtc[local]'")
        self.api_key = "local-" + secrets.token_hex(8)
        host = os.environ.get("WARMRTC_NETNS_HOST", "127.0.0.1")
        self._proc = subprocess.Popen(
            service_side(
                [
                    sys.executable,
                    "-m",
                    "warmrtc.emulator",
                    "--host",
                    host,
                    "--port",
                    "0",
                    "--livekit-url",
                    url,
                    "--api-key",
                    self.api_key,
                    "--parent-pid",  # the emulator exits with us, even if we are killed
                    str(os.getpid()),
                    *emulator_args,
                ]
            ),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("emulator ready "):
            self.close()
            raise RuntimeError(f"the emulator did not start: {line.strip()!r}")
        self.base_url = line.split()[-1]
        atexit.register(self.close)  # an app that exits without close() leaves no server

    @property
    def pid(self) -> int:
        return self._proc.pid

    def close(self) -> None:
        """Stops the emulator. Idempotent."""
        atexit.unregister(self.close)
        if self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> tuple[str, str]:
        return self.base_url, self.api_key

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
