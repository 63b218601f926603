"""The link between the client and the service does what it says: a TCP connect takes one round
trip, losses stay within their statistical bounds, the rate cap holds, a blackout drops
everything and then ends, and `lan` keeps the stack as it was.

Each test's client runs in a namespace of the test's own behind a link (the client_link
fixture); its peer runs here, on the stack's side, in a thread.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import link_probe
import pytest

from warmrtc.local import netns
from warmrtc.local.link import ClientLink, Link, LinkError

HOST = netns.SERVICE_HOST
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's; Python 3.11 lacks the name


def kernel_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    """When the kernel took a packet in (SO_TIMESTAMPNS), on the monotonic clock: the peer's
    own wake-ups on a busy machine stay out of the figures."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds + nanoseconds / 1e9 - (time.time() - time.monotonic())
    raise AssertionError("no receive timestamp")


class TcpPeer:
    """A TCP server on the service side: takes connections one at a time and counts what each
    sends (with when its bytes came)."""

    def __init__(self) -> None:
        self.sock = socket.create_server((HOST, 0), backlog=64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, int]] = []  # (time, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.2)
                conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                while not self._stop.is_set():
                    try:
                        data, ancillary, _, _ = conn.recvmsg(1 << 16, 1024)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    self.arrivals.append((kernel_time(ancillary), len(data)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


class UdpPeer:
    """A UDP peer on the service side: notes each numbered datagram's arrival and echoes it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.arrivals: list[tuple[float, int, int]] = []  # (time, sequence, bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, sender = self.sock.recvmsg(65536, 1024)
            except TimeoutError:
                continue
            seq, _sent = link_probe.NUMBERED.unpack_from(data)
            self.arrivals.append((kernel_time(ancillary), seq, len(data)))
            self.sock.sendto(data[: link_probe.NUMBERED.size], sender)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def tcp_peer() -> Iterator[TcpPeer]:
    peer = TcpPeer()
    yield peer
    peer.close()


@pytest.fixture
def udp_peer() -> Iterator[UdpPeer]:
    peer = UdpPeer()
    yield peer
    peer.close()


def connect_ms(link: ClientLink, peer: TcpPeer, n: int = 10) -> list[float]:
    return list(link_probe.run(link, "connect", HOST, str(peer.port), str(n))["ms"])


@pytest.mark.link("broadband")
def test_a_tcp_connect_takes_one_round_trip(client_link: ClientLink, tcp_peer: TcpPeer) -> None:
    broadband = connect_ms(client_link, tcp_peer)
    client_link.control.set("far")
    far = connect_ms(client_link, tcp_peer)
    client_link.control.set("lan")
    lan = connect_ms(client_link, tcp_peer)
    late = client_link.control.stats().late_ms
    print(f"TCP connect ms: broadband {broadband}, far {far}, lan {lan}; link late {late}")
    # Never faster than the round trip; the median within a few ms of it (the client's own
    # wake-ups on a busy machine are in there too).
    assert min(broadband) >= 50 and statistics.median(broadband) < 50 + 4
    assert min(far) >= 120 and statistics.median(far) < 120 + 4
    assert statistics.median(lan) < 4


def within_binomial(kept: int, n: int, loss: float, sigmas: float = 5) -> bool:
    return abs(kept - n * (1 - loss)) <= sigmas * math.sqrt(n * loss * (1 - loss))


@pytest.mark.link("lan,loss=0.1,seed=5")
def test_losses_are_within_statistical_bounds_each_way(
    client_link: ClientLink, udp_peer: UdpPeer
) -> None:
    n = 3000
    answer = link_probe.run(client_link, "udp", HOST, str(udp_peer.port), str(n), "2000")
    up = len({seq for _, seq, _ in udp_peer.arrivals})
    echoed = answer["echoed"]
    stats = client_link.control.stats()
    print(f"sent {n}, {up} arrived, {echoed} of them came back; link: {stats}")
    assert within_binomial(up, n, 0.1), up
    assert within_binomial(echoed, up, 0.1), echoed
    # Every loss is the link's own: none in sockets or devices.
    assert stats.up.lost == n - up and stats.down.lost == up - echoed
    assert stats.up.write_errors == stats.down.write_errors == 0


# A queue of 1 s: a client stalled by a busy machine leaves it full, and the cap busy.
@pytest.mark.link("lan,up=2,queue=1000")
def test_the_rate_cap_holds(client_link: ClientLink, udp_peer: UdpPeer, tcp_peer: TcpPeer) -> None:
    # UDP offered at 6 Mbit/s for 3 s: 2 Mbit/s arrive, the rest overflows the cap's queue.
    link_probe.run(client_link, "udp", HOST, str(udp_peer.port), "1875", "625", "1200")
    times = [t for t, _, _ in udp_peer.arrivals]
    window = [(t, size) for t, _, size in udp_peer.arrivals if t >= times[0] + 0.5]
    udp_mbit = sum(size + 28 for _, size in window[1:]) * 8 / (window[-1][0] - window[0][0]) / 1e6
    # TCP for 3 s: it fills the cap without passing it.
    link_probe.run(client_link, "tcp", HOST, str(tcp_peer.port), "3")
    got = [(t, n) for t, n in tcp_peer.arrivals if t >= tcp_peer.arrivals[0][0] + 0.5]
    tcp_mbit = sum(n for _, n in got[1:]) * 8 / (got[-1][0] - got[0][0]) / 1e6
    stats = client_link.control.stats()
    print(
        f"capped at 2 Mbit/s: UDP {udp_mbit:.3f} Mbit/s (IP), TCP {tcp_mbit:.3f} Mbit/s "
        f"(payload); dropped by the queue {stats.up.overflow}"
    )
    assert 1.96 < udp_mbit < 2.04, udp_mbit
    assert 1.6 < tcp_mbit < 2.0, tcp_mbit
    assert stats.up.overflow > 500 and stats.down.overflow == 0


@pytest.mark.link("broadband")
def test_a_blackout_drops_everything_then_ends(client_link: ClientLink, udp_peer: UdpPeer) -> None:
    done: list[dict[str, int]] = []
    args = ("udp", HOST, str(udp_peer.port), "600", "200")  # 3 s at 200/s
    sender = threading.Thread(target=lambda: done.append(link_probe.run(client_link, *args)))
    sender.start()
    deadline = time.monotonic() + 10
    while len(udp_peer.arrivals) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert udp_peer.arrivals, "nothing crossed the link before the blackout"
    asked = time.monotonic()
    client_link.control.blackout(1.0)
    answered = time.monotonic()
    dark = client_link.control.stats()
    sender.join(30)
    after = client_link.control.stats()
    arrivals = [t for t, _, _ in udp_peer.arrivals]
    during = [t for t in arrivals if answered < t < asked + 1.0]
    resumed = min(t for t in arrivals if t > answered)
    print(
        f"blackout 1 s: {len(during)} arrived during it, the next {resumed - asked:.3f} s "
        f"after it was asked for; dropped {after.up.dark} up, {after.down.dark} down"
    )
    assert 0.9 < dark.dark_for <= 1.0 and after.dark_for == 0
    assert not during
    # Back by itself: the first datagram sent after the end arrives 25 ms later.
    assert 1.0 + 0.025 <= resumed - asked < answered - asked + 1.0 + 0.025 + 0.05
    assert 190 <= after.up.dark <= 215  # 1 s of 200/s, and those on the link
    # The way back is back too: what arrived was echoed, less those dark on their way.
    assert done and done[0]["echoed"] >= len(arrivals) - after.down.dark - 2


@pytest.mark.skipif(os.environ.get("WARMRTC_LINK", "lan") != "lan", reason="the stack has a link")
def test_lan_keeps_the_stack_as_it_was() -> None:
    """Under the default profile the command runs next to livekit-server, as before: one
    namespace, no link process, no link variables."""
    assert os.environ["WARMRTC_LINK"] == "lan"
    assert netns.is_current(os.environ[netns.SERVICE_NETNS_ENV])
    assert "WARMRTC_CLIENT_NETNS" not in os.environ and "WARMRTC_LINK_CONTROL" not in os.environ
    assert not [name for _, name in socket.if_nameindex() if name.startswith(("wrs", "wrc"))]
    times = []
    for _ in range(10):
        started = time.monotonic()
        socket.create_connection((HOST, 7880), timeout=5).close()
        times.append((time.monotonic() - started) * 1000)
    assert statistics.median(times) < 2, times
    with pytest.raises(LinkError, match="this stack's link is 'lan'"):
        Link.from_env()


def test_the_stack_runs_its_command_behind_the_link() -> None:
    """A stack started with --link puts its command on the client side; livekit-server and the
    emulator (LocalService) stay on the service side; all of it is gone after."""
    script = """
import json, os, socket, time
from warmrtc.local.link import Link
from warmrtc.local.service import LocalService
started = time.monotonic()
socket.create_connection((os.environ["WARMRTC_NETNS_HOST"], 7880), timeout=5).close()
connect_ms = (time.monotonic() - started) * 1000
def ns(path):
    s = os.stat(path)
    return [s.st_dev, s.st_ino]
service = LocalService()
emulator_ns = ns(f"/proc/{service.pid}/ns/net")
service.close()
print(json.dumps({
    "connect_ms": connect_ms,
    "emulator": emulator_ns,
    "service": ns(os.environ["WARMRTC_SERVICE_NETNS"]),
    "client": ns(os.environ["WARMRTC_CLIENT_NETNS"]),
    "me": ns("/proc/self/ns/net"),
    "forwarder": int(os.environ["WARMRTC_CLIENT_NETNS"].split("/")[2]),
    "spec": Link.from_env().spec().name,
    "restart": os.environ["WARMRTC_LIVEKIT_CMD"].split()[0],
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WARMRTC_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "warmrtc",
            "stack",
            "--link",
            "broadband",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    print(seen)
    assert seen["me"] == seen["client"] != seen["service"] == seen["emulator"]
    assert 50 <= seen["connect_ms"] < 60
    assert seen["spec"] == "broadband" and seen["restart"] == "nsenter"
    assert not alive(seen["forwarder"]), "the link outlived its stack"


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (an ended one may wait to be reaped: a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


OWNER = """
import sys, time
from warmrtc.local.link import ClientLink
link = ClientLink("broadband")
print(link.pid, link.control.control, flush=True)
time.sleep(60)
"""


def test_a_killed_owner_leaves_no_link_behind() -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid, control = owner.stdout.readline().split()
        forwarder = int(pid)
        devices = {name for _, name in socket.if_nameindex() if name.startswith("wrs")}
        assert devices, "the link's device is not here"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        if owner.stdout is not None:
            owner.stdout.close()
    deadline = time.monotonic() + 5
    while alive(forwarder) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(forwarder), "the forwarder outlived its owner"
    left = {name for _, name in socket.if_nameindex() if name.startswith("wrs")}
    assert not devices & left
    assert not os.path.exists(os.path.dirname(control)), "the link's run directory is left"
