"""The link's own figures: how exactly it keeps its delay, and what it costs in CPU.

A client in the link's namespace and a peer on the service side exchange timestamped UDP
probes (50 a second each way) while a load of the given rate flows each way (1200-byte
datagrams, as video packets): each probe's one-way delay minus the link's delay is its error
(both ends read the same monotonic clock). The forwarder's CPU time over the run, per Mbit/s
that crossed it, is its cost.

Run inside the stack: python -m warmrtc stack -- python benchmarks/link.py
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

from figures import Figure, publish
from warmrtc.local import netns
from warmrtc.local.link import ClientLink
from warmrtc.local.linkspec import Direction, LinkSpec

PROBE = struct.Struct("!cqq")  # kind (p: probe, l: load), sequence, sent at (ns)
LOAD_SIZE = 1200
PROBE_RATE = 50

# The client side: probes and load to the service side's peer, and the same coming back;
# prints the one-way delays of the probes that came back (ms).
CLIENT = """
import socket, struct, sys, threading, time, json
host, port = sys.argv[1], int(sys.argv[2])
seconds, mbit, rate = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
P = struct.Struct("!cqq")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
s.connect((host, port))
s.settimeout(0.5)
down = []
def receive():
    end = time.monotonic() + seconds + 3
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except OSError:
            continue
        now = time.monotonic_ns()
        kind, seq, sent = P.unpack_from(data)
        if kind == b"p":
            down.append((now - sent) / 1e6)
reader = threading.Thread(target=receive)
reader.start()
load_gap = 1200 * 8 / (mbit * 1e6) if mbit else None
probe_gap = 1 / rate
start = time.monotonic()
next_load = next_probe = start
seq = 0
while time.monotonic() - start < seconds:
    now = time.monotonic()
    if now >= next_probe:
        s.send(P.pack(b"p", seq, time.monotonic_ns()).ljust(200, b"."))
        seq += 1
        next_probe += probe_gap
    if load_gap and now >= next_load:
        s.send(P.pack(b"l", 0, 0).ljust(1200, b"."))
        next_load += load_gap
    wake = min(next_probe, next_load if load_gap else next_probe)
    time.sleep(max(0.0, wake - time.monotonic()))
reader.join()
print(json.dumps({"down": down, "sent": seq}))
"""


def serve(sock: socket.socket, up: list[float], stop: threading.Event, mbit: float) -> None:
    """The service side's peer: records the probes' one-way delays, answers each with a probe
    of its own, and sends the load back once it knows where the client is."""
    client = None
    gap = LOAD_SIZE * 8 / (mbit * 1e6) if mbit else None
    next_load = time.monotonic()
    sock.settimeout(0.002)
    while not stop.is_set():
        try:
            data, client = sock.recvfrom(2048)
            now = time.monotonic_ns()
            kind, seq, sent = PROBE.unpack_from(data)
            if kind == b"p":
                up.append((now - sent) / 1e6)
                sock.sendto(PROBE.pack(b"p", seq, time.monotonic_ns()).ljust(200, b"."), client)
        except TimeoutError:
            pass
        if gap and client is not None and time.monotonic() >= next_load:
            sock.sendto(PROBE.pack(b"l", 0, 0).ljust(LOAD_SIZE, b"."), client)
            next_load += gap


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def exchange(command: list[str], mbit: float, seconds: float) -> tuple[list[float], float]:
    """Runs the client side (``command`` + its arguments) against a peer here; the one-way
    delays of the probes each way (ms) and how long it took."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    sock.bind((netns.SERVICE_HOST, 0))
    up: list[float] = []
    stop = threading.Event()
    peer = threading.Thread(target=serve, args=(sock, up, stop, mbit))
    peer.start()
    started = time.monotonic()
    try:
        args = [netns.SERVICE_HOST, str(sock.getsockname()[1]), str(seconds), str(mbit)]
        done = subprocess.run(
            [*command, sys.executable, "-c", CLIENT, *args, str(PROBE_RATE)],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
        )
    finally:
        stop.set()
        peer.join(5)
        sock.close()
    if done.returncode != 0:
        raise RuntimeError(f"the client side failed: {done.stderr[-2000:]}")
    return up + json.loads(done.stdout)["down"], time.monotonic() - started


def run(delay_ms: float | None, mbit: float, seconds: float) -> dict[str, float]:
    """One run: through a link of ``delay_ms`` each way, or with no link (None: the client
    side in this namespace, the measurement's own noise)."""
    if delay_ms is None:
        delays, _ = exchange([], mbit, seconds)
        late = {"p50": float("nan"), "p99": float("nan")}
        cpu = crossed = float("nan")
        delay_ms = 0.0
    else:
        each = Direction(delay_ms=delay_ms)
        with ClientLink(LinkSpec(name=f"{delay_ms:g} ms", up=each, down=each)) as link:
            cpu0, before = cpu_seconds(link.pid), link.control.stats()
            delays, took = exchange(link.command([]), mbit, seconds)
            cpu = (cpu_seconds(link.pid) - cpu0) / took
            after = link.control.stats()
        late = after.late_ms
        moved = after.up.bytes + after.down.bytes - before.up.bytes - before.down.bytes
        crossed = moved * 8 / 1e6 / took
    errors = sorted(d - delay_ms for d in delays)
    return {
        "probes": len(errors),
        "p50": statistics.median(errors),
        "p99": errors[int(len(errors) * 0.99)],
        "max": errors[-1],
        "late50": late["p50"],
        "late99": late["p99"],
        "mbit": crossed,
        "cpu": cpu,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--delay", type=float, default=25, help="one-way delay, ms")
    p.add_argument("--mbit", type=float, nargs="+", default=[0, 3], help="load each way, Mbit/s")
    args = p.parse_args()
    rows = []
    for mbit in args.mbit:
        for delay in (None, 0.0, args.delay):
            rows.append((delay, mbit, run(delay, mbit, args.seconds)))
    print(f"one-way delay error of UDP probes ({PROBE_RATE}/s each way), {args.seconds:g} s each;")
    print("forwarder: how late its packets left (its own clock), its CPU per Mbit/s crossed")
    print(
        f"{'link':>8} {'load':>9} {'probes':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
        f" {'late p50':>8} {'late p99':>8} {'Mbit/s':>6} {'CPU %':>5} {'%/Mbit':>6}"
    )
    for delay, mbit, r in rows:
        per = r["cpu"] * 100 / r["mbit"] if r["mbit"] > 0.5 else float("nan")
        name = "none" if delay is None else f"{delay:g} ms"
        print(
            f"{name:>8} {mbit:5g}Mbit {r['probes']:6d} {r['p50']:7.3f} {r['p99']:7.3f} "
            f"{r['max']:7.3f} {r['late50']:8.3f} {r['late99']:8.3f} {r['mbit']:6.2f} "
            f"{r['cpu'] * 100:5.1f} {per:6.2f}"
        )
    loaded = [r for delay, mbit, r in rows if delay and mbit]
    if loaded:
        r = loaded[-1]
        publish(
            [
                Figure(
                    "link", f"delay error p50 ({args.delay:g} ms, loaded)", f"{r['p50']:.2f} ms"
                ),
                Figure(
                    "link", f"delay error p99 ({args.delay:g} ms, loaded)", f"{r['p99']:.2f} ms"
                ),
                Figure(
                    "link",
                    "forwarder CPU per Mbit/s",
                    f"{r['cpu'] * 100 / r['mbit']:.2f} % of a core",
                    reference=f"{r['mbit']:.1f} Mbit/s crossed",
                ),
            ]
        )


if __name__ == "__main__":
    main()
