"""The client side of the link tests: run in the client's namespace (``run(link, ...)``), it
measures against a peer the test holds on the service side and prints one JSON line.

    connect HOST PORT N            N TCP connects, one at a time: their times (ms)
    udp HOST PORT N RATE [SIZE]    N numbered datagrams at RATE/s, counting the ones echoed back
    tcp HOST PORT SECONDS          a bulk TCP upload for SECONDS: bytes sent
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time
from typing import Any

NUMBERED = struct.Struct("!Iq")  # sequence, sent at (monotonic ns)


def run(link: Any, *args: str, timeout: float = 60) -> dict[str, Any]:
    """Runs this script with ``args`` on ``link``'s client side; its JSON answer."""
    done = subprocess.run(
        link.command([sys.executable, __file__, *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=link.environment(),
    )
    assert done.returncode == 0, f"client side failed: {done.stderr[-3000:]}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def connect(host: str, port: int, n: int) -> dict[str, Any]:
    times = []
    for _ in range(n):
        started = time.monotonic()
        socket.create_connection((host, port), timeout=10).close()
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.01)
    return {"ms": times}


def udp(host: str, port: int, n: int, rate: float, size: int = 200) -> dict[str, Any]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.connect((host, port))
    sock.setblocking(False)
    echoed: set[int] = set()

    def drain() -> None:
        while True:
            try:
                echoed.add(NUMBERED.unpack_from(sock.recv(65536))[0])
            except BlockingIOError:
                return

    started = time.monotonic()
    for seq in range(n):
        wait = started + seq / rate - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sock.send(NUMBERED.pack(seq, time.monotonic_ns()).ljust(size, b"."))
        drain()
    end = time.monotonic() + 1.0  # the last echoes: a round trip and some
    while time.monotonic() < end:
        time.sleep(0.01)
        drain()
    return {"sent": n, "echoed": len(echoed)}


def tcp(host: str, port: int, seconds: float) -> dict[str, Any]:
    chunk = b"x" * 16384
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent += sock.send(chunk)
    return {"sent": sent}


if __name__ == "__main__":
    what, host, port, *rest = sys.argv[1:]
    if what == "connect":
        answer = connect(host, int(port), int(rest[0]))
    elif what == "udp":
        answer = udp(host, int(port), int(rest[0]), float(rest[1]), *map(int, rest[2:]))
    elif what == "tcp":
        answer = tcp(host, int(port), float(rest[0]))
    else:
        raise SystemExit(f"unknown probe {what!r}")
    print(json.dumps(answer))
