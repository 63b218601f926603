"""A private redis-server for a test: bound to 127.0.0.1 on a free port, its files in a
temporary directory, no persistence; stopped (and waited for) when the test ends."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT = 10.0  # seconds for redis-server to answer PING


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as redis: redis.url`` (``redis://127.0.0.1:PORT/0``)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self._binary = binary
        self._dir = tempfile.TemporaryDirectory(prefix="warmrtc-redis-")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        for _ in range(3):  # a port taken between the probe and the bind: another one
            self.port = _free_port()
            log = Path(self._dir.name) / "redis.log"
            self.proc = subprocess.Popen(
                [
                    self._binary,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--dir", self._dir.name,
                    "--save", "",
                    "--appendonly", "no",
                    "--logfile", str(log),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._pings():
                    return
                time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"redis-server did not start; see {self._dir.name}/redis.log")

    def _pings(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
        self._dir.cleanup()
