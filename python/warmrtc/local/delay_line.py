"""The link's forwarder: a process that joins two network namespaces with a delay line.

It opens two TUN devices in the namespace it starts in (the service side), then moves itself
into a new, empty network namespace (the client side: it lives as long as this process), and
forwards IP packets between the two devices along :class:`~warmrtc.local.shaping.Schedule`. The
caller moves the client device into that namespace and sets up addresses and routes
(:class:`warmrtc.local.link.ClientLink` does all of it). Linux only; needs /dev/net/tun and root
of the namespace (a user namespace's root will do).

Prints ``ready SERVICE_DEV CLIENT_DEV`` once both devices exist and the namespace is made.
Answers one JSON object a line on the unix socket ``control.sock`` in ``--run-dir`` (a
directory of the link's own, removed when the forwarder ends) (``{"op": "get"}``,
``{"op": "set", "spec": {...}}``, ``{"op": "blackout", "seconds": S}``; see
:class:`warmrtc.local.link.Link`). Ends when its stdin closes (its owner is gone, however it
ended) or on SIGTERM; the devices go with it.

Run by ClientLink: python -m warmrtc.local.delay_line --run-dir DIR --spec JSON (ClientLink
loads it apart from the warmrtc package: this module, shaping and linkspec import the standard
library alone).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import errno
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import time
from typing import Any

from .linkspec import LinkSpec, LinkSpecError
from .shaping import Path, Schedule

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
CLONE_NEWNET = 0x40000000
PR_SET_TIMERSLACK = 29
SERVICE_DEV, CLIENT_DEV = "wrs%d", "wrc%d"  # the kernel picks the number
READ_BATCH = 64  # packets read from one device before the other gets a turn
EARLY = 20e-6  # a packet due this soon leaves now: no wake-up for a few microseconds
IDLE_WAKE = 1.0  # seconds between wake-ups with nothing due
MAX_REQUEST = 65536  # bytes of one control request
MAX_CONNECTIONS = 16
CONTROL_SOCKET = "control.sock"
LATENESS_WINDOW = 4096  # packets whose lateness the control socket reports
NICE = -10  # asked for when real-time scheduling is not granted
CPU_GUARD = 0.5  # share of a core above which the forwarder leaves real-time scheduling


class _Libc:
    """The three calls Python's os module lacks here (3.11): unshare, prctl, and errno."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL(None, use_errno=True)

    def unshare_net(self) -> None:
        if self._lib.unshare(CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")

    def precise_timers(self) -> None:
        """Timer slack of 1 ns (default 50 us): wake-ups come when asked."""
        self._lib.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)


def open_tun(pattern: str) -> tuple[int, str]:
    """A new TUN device (IP packets, no header) named by ``pattern``; its fd and name."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        request = struct.pack("16sH22x", pattern.encode(), IFF_TUN | IFF_NO_PI)
        answer = _ioctl(fd, TUNSETIFF, request)
    except OSError:
        os.close(fd)
        raise
    return fd, answer[:16].rstrip(b"\0").decode()


def _ioctl(fd: int, request: int, arg: bytes) -> bytes:
    import fcntl

    return fcntl.ioctl(fd, request, arg)


def raise_priority() -> str:
    """The scheduling that keeps packets on time on a busy machine, as far as it is granted:
    real-time (the lowest priority, SCHED_FIFO 1; root, or a user whose RLIMIT_RTPRIO allows
    it), else nice -10, else as it was. Which one it got ("fifo", "nice", "normal").

    Measured with four busy loops on two cores (25 ms each way, 3 Mbit/s each way): packets left
    0.08-0.19 ms late at p99 with fifo, 2-4 ms with nice -10, 6-17 ms without either."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        return "fifo"
    except OSError:  # EPERM: not granted
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
        return "nice"
    except OSError:
        return "normal"


def disable_ipv6(device: str) -> None:
    """No IPv6 on ``device`` (in this process's namespace): no router solicitations or
    multicast reports on the link, only what the programs send. Best effort."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{device}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass


class Forwarder:
    """The loop: packets from each device through its direction's schedule to the other, the
    control socket's requests, and the lifeline (stdin) whose end ends it."""

    def __init__(
        self,
        schedule: Schedule,
        service: int,
        client: int,
        control: socket.socket,
        lifeline: int,
        priority: str,
    ) -> None:
        self.schedule = schedule
        self.priority = priority
        self._guard_from, self._guard_cpu = time.monotonic(), time.process_time()
        self._routes: dict[int, tuple[Path, int]] = {
            client: (schedule.up, service),
            service: (schedule.down, client),
        }
        self._control = control
        self._lifeline = lifeline
        self._connections: dict[int, tuple[socket.socket, bytearray]] = {}
        self._late: collections.deque[float] = collections.deque(maxlen=LATENESS_WINDOW)

    def run(self) -> None:
        while True:
            now = time.monotonic()
            self.schedule.tick(now)
            self._deliver(now)
            if now - self._guard_from >= 1.0:
                self._guard(now)
            due = self.schedule.next_event()
            timeout = IDLE_WAKE if due is None else min(max(due - now, 0.0), IDLE_WAKE)
            watched = [*self._routes, self._control.fileno(), self._lifeline, *self._connections]
            readable, _, _ = select.select(watched, [], [], timeout)
            for fd in readable:
                if fd in self._routes:
                    self._read(fd)
                elif fd == self._control.fileno():
                    self._accept()
                elif fd == self._lifeline:
                    if not os.read(fd, 4096):
                        return
                else:
                    self._serve(fd)

    def _guard(self, now: float) -> None:
        """Leaves real-time scheduling for good if this process used more than CPU_GUARD of a
        core over the last second: a flood through an uncapped link must not starve a core."""
        cpu = time.process_time()
        if self.priority == "fifo" and cpu - self._guard_cpu > CPU_GUARD * (now - self._guard_from):
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            try:
                os.setpriority(os.PRIO_PROCESS, 0, NICE)
                self.priority = "nice"
            except OSError:
                self.priority = "normal"
        self._guard_from, self._guard_cpu = now, cpu

    def _read(self, fd: int) -> None:
        path, _ = self._routes[fd]
        for _ in range(READ_BATCH):
            try:
                packet = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EIO:  # the device is down (being moved, or its side gone)
                    return
                raise
            path.push(time.monotonic(), packet)

    def _deliver(self, now: float) -> None:
        for path, out in self._routes.values():
            for due, packet in path.pop_due(now + EARLY):
                try:
                    os.write(out, packet)
                except OSError:  # the far device is down, or its queue is full
                    path.stats.delivered -= 1
                    path.stats.write_errors += 1
                    continue
                self._late.append(time.monotonic() - due)

    def lateness(self) -> dict[str, float]:
        """How late the last LATENESS_WINDOW packets left, in ms: p50, p99 and max (0 when
        none has left): this process's own timing error, the machine's load included."""
        if not self._late:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "packets": 0}
        late = sorted(self._late)
        return {
            "p50": late[len(late) // 2] * 1000,
            "p99": late[min(len(late) - 1, int(len(late) * 0.99))] * 1000,
            "max": late[-1] * 1000,
            "packets": len(late),
        }

    def _accept(self) -> None:
        try:
            conn, _ = self._control.accept()
        except OSError:  # gone before it was taken
            return
        if len(self._connections) >= MAX_CONNECTIONS:
            conn.close()
            return
        # Never blocks the packets: a reply that does not fit the socket's buffer at once (a
        # peer that asks and never reads) ends the connection.
        conn.setblocking(False)
        self._connections[conn.fileno()] = (conn, bytearray())

    def _serve(self, fd: int) -> None:
        conn, pending = self._connections[fd]
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        pending += data
        try:
            while b"\n" in pending:
                line, _, rest = bytes(pending).partition(b"\n")
                pending[:] = rest
                conn.sendall(json.dumps(self._answer(line)).encode() + b"\n")
            if len(pending) > MAX_REQUEST:
                conn.sendall(b'{"ok": false, "error": "request too long"}\n')
                data = b""
        except OSError:
            data = b""
        if not data:
            del self._connections[fd]
            conn.close()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise LinkSpecError(f"a request is a JSON object, got {line[:80]!r}")
            op = request.get("op")
            if op == "set":
                self.schedule.set(LinkSpec.from_json(request.get("spec")))
            elif op == "blackout":
                self.schedule.blackout(time.monotonic(), request.get("seconds"))  # type: ignore[arg-type]
            elif op != "get":
                raise LinkSpecError(f"unknown op {op!r}; known: get, set, blackout")
        except (ValueError, TypeError) as e:  # LinkSpecError, bad JSON
            return {"ok": False, "error": str(e)}
        report = self.schedule.report(time.monotonic())
        return {"ok": True, **report, "late_ms": self.lateness(), "priority": self.priority}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m warmrtc.local.delay_line", description=__doc__)
    p.add_argument(
        "--run-dir",
        required=True,
        help=f"a directory of the link's own: the control socket ({CONTROL_SOCKET}) is made in "
        "it, and it is removed when the forwarder ends, however its owner ended",
    )
    p.add_argument("--spec", required=True, help="the link spec, as JSON")
    args = p.parse_args(argv)
    try:
        spec = LinkSpec.from_json(json.loads(args.spec))
    except (ValueError, LinkSpecError) as e:
        print(f"delay line: bad --spec: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    libc = _Libc()
    libc.precise_timers()
    priority = raise_priority()
    fds: list[int] = []
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        service, service_name = open_tun(SERVICE_DEV)
        fds.append(service)
        client, client_name = open_tun(CLIENT_DEV)
        fds.append(client)
        disable_ipv6(service_name)
        control.bind(os.path.join(args.run_dir, CONTROL_SOCKET))
        control.listen(MAX_CONNECTIONS)
        control.setblocking(False)
        libc.unshare_net()  # from here on this process is the client side's namespace
        disable_ipv6("default")  # the client device comes in later: it takes the defaults
        disable_ipv6("all")
    except OSError as e:
        hint = ""
        if e.filename == "/dev/net/tun" or e.errno in (errno.ENODEV, errno.ENOENT):
            hint = (
                "; the link needs /dev/net/tun (as root: modprobe tun; in a container: give it "
                "the device, e.g. --device /dev/net/tun)"
            )
        print(f"delay line: {e.strerror or e} ({e.filename or 'setup'}){hint}", file=sys.stderr)
        control.close()
        for fd in fds:
            os.close(fd)
        shutil.rmtree(args.run_dir, ignore_errors=True)
        return 1
    print(f"ready {service_name} {client_name}", flush=True)
    try:
        Forwarder(Schedule(spec), service, client, control, sys.stdin.fileno(), priority).run()
    finally:
        control.close()
        for fd in fds:
            os.close(fd)
        shutil.rmtree(args.run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
