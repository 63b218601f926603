"""A link between the client and the service: delay, jitter, loss and a rate cap, each way.

``ClientLink(spec)`` makes a network namespace for the client, joined to the stack's namespace
(the service side: livekit-server, the emulator, its model workers) by a userspace delay line
between two TUN devices (:mod:`warmrtc.local.delay_line`; no netem needed). Run a client in it
with ``link.command([...])`` and ``env=link.environment()``. ``warmrtc stack --link PROFILE``
makes one for its command; inside it, ``Link.from_env()`` is the link's control::

    link = Link.from_env()
    link.set("far")                  # a new profile, from the next packet on
    link.blackout(3.0)               # drop everything for 3 s, then back as before
    with link.shaped("lossy,loss=0.1"): ...   # and back to the profile before after
    link.stats().up.lost             # counters of each direction

Must run inside the local stack (as root of its namespace, which a plain user is in the
stack's user namespace): ``warmrtc stack -- ...``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from . import linkspec, netns
from .delay_line import CONTROL_SOCKET
from .linkspec import LinkSpec
from .shaping import PathStats

CONTROL_ENV = "WARMRTC_LINK_CONTROL"
LINK_ENV = "WARMRTC_LINK"  # the link's spec as the stack was given it (lan: no link)
CLIENT_HOST_ENV = "WARMRTC_CLIENT_HOST"
READY_TIMEOUT = 10.0  # seconds for the forwarder to make its devices and namespace
STOP_TIMEOUT = 5.0
CONTROL_TIMEOUT = 5.0  # seconds for each read of an answer on the control socket
MAX_ANSWER = 1 << 20  # bytes: a report is a few hundred


# The forwarder's modules (delay_line, shaping, linkspec) use the standard library alone: loaded
# as a package of their own, it starts in ~50 ms, where importing warmrtc (livekit, numpy) takes
# ~0.5 s and tens of MB it would never use.
BOOT_PACKAGE = (
    "import sys, types; package = types.ModuleType('_warmrtc_link'); "
    "package.__path__ = [sys.argv.pop(1)]; sys.modules['_warmrtc_link'] = package; "
)
_BOOT = BOOT_PACKAGE + "from _warmrtc_link.delay_line import main; sys.exit(main(sys.argv[1:]))"
FORWARDER = [sys.executable, "-c", _BOOT, os.path.dirname(os.path.abspath(__file__))]


class LinkError(RuntimeError):
    """The link cannot be made or controlled; the message says why."""


@dataclass(frozen=True)
class LinkStats:
    """The spec in force, seconds left of a blackout, each direction's counters, and the
    forwarder's own timing error."""

    spec: LinkSpec
    dark_for: float
    up: PathStats
    down: PathStats
    late_ms: dict[str, float]  # how late the last packets left: p50, p99, max, packets
    priority: str  # the forwarder's scheduling: fifo (real-time), nice (-10) or normal


class Link:
    """The control of a running link: its forwarder's unix socket. Each call is one request
    (a few milliseconds), from any thread or process that can open the socket."""

    def __init__(self, control: str, *, timeout: float = CONTROL_TIMEOUT) -> None:
        self.control = control
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> Link:
        """The link of the stack this runs in (``warmrtc stack --link PROFILE``), or that a
        ClientLink's environment names."""
        control = os.environ.get(CONTROL_ENV)
        if not control:
            name = os.environ.get(LINK_ENV)
            where = (
                f"this stack's link is {name!r}: no link to control; start it with "
                "`warmrtc stack --link PROFILE`, or make one with ClientLink"
                if name
                else "not inside a local stack with a link (`warmrtc stack --link PROFILE`)"
            )
            raise LinkError(f"no {CONTROL_ENV}: {where}")
        return cls(control)

    def _ask(self, request: Mapping[str, object]) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(self.timeout)
                conn.connect(self.control)
                conn.sendall(json.dumps(request).encode() + b"\n")
                answer = b""
                while not answer.endswith(b"\n") and len(answer) <= MAX_ANSWER:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    answer += chunk
        except OSError as e:
            raise LinkError(
                f"the link's control socket {self.control}: {e.strerror or e} (has the link ended?)"
            ) from None
        try:
            reply = json.loads(answer)
        except ValueError:
            raise LinkError(f"the link answered {answer[:200]!r}") from None
        if not reply.get("ok"):
            raise LinkError(f"the link refused {request.get('op')}: {reply.get('error')}")
        return dict(reply)

    def stats(self) -> LinkStats:
        reply = self._ask({"op": "get"})
        return LinkStats(
            spec=LinkSpec.from_json(reply["spec"]),
            dark_for=float(reply["dark_for"]),
            up=PathStats(**reply["up"]),
            down=PathStats(**reply["down"]),
            late_ms=dict(reply["late_ms"]),
            priority=str(reply["priority"]),
        )

    def spec(self) -> LinkSpec:
        return self.stats().spec

    def set(self, spec: LinkSpec | str) -> LinkSpec:
        """Shapes the packets that come from now on by ``spec`` (a LinkSpec or a profile with
        overrides, ``"far"``, ``"lossy,loss=0.1"``); those on the link keep their schedule.
        During a blackout, it applies when the blackout ends."""
        wanted = linkspec.parse(spec) if isinstance(spec, str) else spec
        return LinkSpec.from_json(self._ask({"op": "set", "spec": wanted.to_json()})["spec"])

    def blackout(self, seconds: float) -> None:
        """Drops every packet, those on the link too, for ``seconds`` (0 < seconds <= 3600);
        then the link is as it was. The forwarder ends it itself: a caller that dies in the
        middle leaves no dark link."""
        self._ask({"op": "blackout", "seconds": seconds})

    @contextlib.contextmanager
    def shaped(self, spec: LinkSpec | str) -> Iterator[LinkSpec]:
        """``spec`` for the ``with`` block, then the spec that was in force before."""
        before = self.spec()
        try:
            yield self.set(spec)
        finally:
            self.set(before)


class ClientLink:
    """A network namespace for the client, joined to the service side by a link shaped by
    ``spec`` (a LinkSpec or ``"broadband"``-style text; default ``lan``: no shaping, which
    :meth:`Link.set` can change later). ``service_netns``: the service side's namespace (default
    ``$WARMRTC_SERVICE_NETNS``, else this process's). Close it (or use ``with``) to end the
    link; it also ends with the process that made it, however that ends."""

    def __init__(
        self, spec: LinkSpec | str = linkspec.LAN, *, service_netns: str | None = None
    ) -> None:
        self.spec = linkspec.parse(spec) if isinstance(spec, str) else spec
        self.service_netns = (
            service_netns
            or os.environ.get(netns.SERVICE_NETNS_ENV)
            or f"/proc/{os.getpid()}/ns/net"
        )
        if shutil.which("ip") is None:
            raise LinkError("a link needs `ip`: install iproute2")
        self._dir = Path(tempfile.mkdtemp(prefix="warmrtc-link-"))
        self.control = Link(str(self._dir / CONTROL_SOCKET))
        self._log = open(self._dir / "delay_line.log", "w+b")  # closed by close()
        forwarder = [*FORWARDER, "--run-dir", str(self._dir), "--spec", str(self.spec)]
        try:
            self._proc = subprocess.Popen(
                netns.enter(self.service_netns, forwarder),
                stdin=subprocess.PIPE,  # its lifeline: it ends when this end closes
                stdout=subprocess.PIPE,
                stderr=self._log,
            )
        except (OSError, netns.NamespaceError) as e:
            self._cleanup()
            raise LinkError(f"cannot start the link's forwarder: {e}") from None
        try:
            service_dev, client_dev = self._wait_ready()
            number = int(service_dev.removeprefix("wrs"))
            if not 0 <= number <= 255:
                raise LinkError(f"too many links at once (device {service_dev})")
            net = netns.LINK_NET.format(number).removesuffix(".0/24")
            self.service_host, self.client_host = f"{net}.1", f"{net}.2"
            self.netns = f"/proc/{self._proc.pid}/ns/net"
            self._ip(
                netns.enter(self.service_netns, ["ip", "-batch", "-"]),
                [
                    f"addr add {self.service_host}/24 dev {service_dev}",
                    f"link set {service_dev} up",
                    f"link set {client_dev} netns {self._proc.pid}",
                ],
            )
            self._ip(
                ["nsenter", f"--net={self.netns}", "--", "ip", "-batch", "-"],
                [
                    "link set lo up",
                    f"addr add {self.client_host}/24 dev {client_dev}",
                    f"link set {client_dev} up",
                    f"route add {netns.SERVICE_NET} dev {client_dev}",
                ],
            )
        except BaseException:
            self.close()
            raise

    def _wait_ready(self) -> tuple[str, str]:
        assert self._proc.stdout is not None
        ready, _, _ = select.select([self._proc.stdout], [], [], READY_TIMEOUT)
        line = self._proc.stdout.readline().decode().split() if ready else []
        if line[:1] != ["ready"] or len(line) != 3:
            self._proc.kill()
            self._proc.wait(STOP_TIMEOUT)
            self._log.seek(0)
            why = self._log.read().decode(errors="replace").strip()[-2000:]
            if not ready:
                why = f"no answer within {READY_TIMEOUT:g} s. {why}"
            raise LinkError(f"the link's forwarder did not start: {why or 'it exited'}")
        return line[1], line[2]

    @staticmethod
    def _ip(command: list[str], lines: list[str]) -> None:
        try:
            done = subprocess.run(
                command, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=10
            )
        except subprocess.TimeoutExpired:
            raise LinkError("setting up the link: `ip` did not finish within 10 s") from None
        if done.returncode != 0:
            raise LinkError(f"setting up the link: `ip` said {done.stderr.strip()!r}")

    @property
    def pid(self) -> int:
        """The forwarder's process id (the client namespace lives as long as it)."""
        return self._proc.pid

    def command(self, command: Sequence[str]) -> list[str]:
        """``command`` run on the client side (through ``nsenter``)."""
        return ["nsenter", f"--net={self.netns}", "--", *command]

    def environment(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with the link's variables, for a
        command on the client side: where the service side and the link's control are."""
        return {
            **(os.environ if base is None else base),
            netns.SERVICE_NETNS_ENV: self.service_netns,
            netns.CLIENT_NETNS_ENV: self.netns,
            CONTROL_ENV: self.control.control,
            LINK_ENV: self.spec.name,
            CLIENT_HOST_ENV: self.client_host,
        }

    def close(self) -> None:
        """Ends the link: the forwarder, its devices, the namespace (once nothing else runs in
        it). Idempotent."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        self._cleanup()

    def _cleanup(self) -> None:
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ClientLink:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()
