"""The local media stack: a pinned livekit-server in a network namespace of its own.

``warmrtc stack -- CMD`` (and ``warmrtc demo`` without an API key, and the test suite) runs CMD
next to a livekit-server inside a fresh network namespace with one veth pair
(10.77.0.1/24 <-> 10.77.0.2/24) and nothing else: libwebrtc ignores loopback interfaces when it
gathers ICE candidates, and local traffic must never reach the machine's real network.

No root needed: as a plain user the namespace is an unprivileged user + network namespace
(``unshare --user --map-root-user --net``); as root, a network namespace (``unshare --net``).
Inside, CMD sees ``WARMRTC_LIVEKIT_URL``, ``WARMRTC_LIVEKIT_KEY``, ``WARMRTC_LIVEKIT_SECRET``,
``WARMRTC_NETNS_HOST`` (the address to bind other servers to), ``WARMRTC_SERVICE_NETNS`` (the
namespace they run in) and ``WARMRTC_LINK`` (the link's profile), and for fault tests
``WARMRTC_LIVEKIT_PIDFILE`` and ``WARMRTC_LIVEKIT_CMD`` (how to start the server again).

``--link PROFILE`` (see :mod:`warmrtc.local.linkspec`; default ``lan``: the layout above) puts
CMD in a namespace of its own behind a link with delay, jitter, loss and a rate cap
(:mod:`warmrtc.local.link`); livekit-server stays on the service side, where the emulator must
run too (:func:`warmrtc.local.netns.service_side`). CMD then also sees
``WARMRTC_CLIENT_NETNS``, ``WARMRTC_CLIENT_HOST`` and ``WARMRTC_LINK_CONTROL`` (the link's
control: ``warmrtc.local.link.Link.from_env()``).

The server is found in ``$WARMRTC_LIVEKIT_SERVER``, on PATH as ``livekit-server`` (the pinned
version only), or in the per-user cache; otherwise it is built there from the Go module proxy
with ``go install`` (a few minutes, once).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NoReturn

from . import console, linkspec, netns
from .link import LINK_ENV, ClientLink, LinkError
from .linkspec import LinkSpec

VERSION = "v1.13.5"
MODULE = "github.com/livekit/livekit-server/cmd/server"
HOST, PEER, PORT = netns.SERVICE_HOST, netns.SERVICE_PEER, 7880
# The server asks a track's sender for a keyframe at most this often (its default: 1 s at the
# top quality, which guards senders with many subscribers; here a track has one). A track's
# first keyframe can reach the server before it forwards to the new subscriber, and the next
# request then came up to a second later: 0.8-0.9 s cold starts, in 4 of 10. With 200 ms they
# take 0.65-0.7 s (WebRTC senders ignore a request within 300 ms of their last keyframe).
CONFIG = "rtc: {pli_throttle: {low_quality: 100ms, mid_quality: 200ms, high_quality: 200ms}}"
API_KEY = "devkey"
READY_TIMEOUT = 30.0  # seconds for the server to accept connections
OPEN_FILES = 65536  # the soft limit on open files commands in the stack get, at most the hard one
BUILD_TIMEOUT = 1800.0  # seconds for `go install` at the most


class StackError(RuntimeError):
    """The local stack cannot be started; the message says what to install or change."""


def cache_dir() -> Path:
    """The per-user cache: ``$WARMRTC_CACHE``, else ``$XDG_CACHE_HOME/warmrtc`` or
    ``~/.cache/warmrtc``."""
    if env := os.environ.get("WARMRTC_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "warmrtc"


# ---- the server binary -------------------------------------------------------------------


def find_server() -> Path | None:
    """The pinned livekit-server, if there is one already: no build."""
    if env := os.environ.get("WARMRTC_LIVEKIT_SERVER"):
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StackError(f"WARMRTC_LIVEKIT_SERVER={env} is not an executable file")
        return path
    cached = _cached_server()
    if cached.is_file():
        return cached
    on_path = shutil.which("livekit-server")
    if on_path and _server_version(Path(on_path)) == VERSION.lstrip("v"):
        return Path(on_path)
    return None


def install_server(progress: bool = True) -> Path:
    """The pinned livekit-server, built with Go into the per-user cache if needed."""
    found = find_server()
    if found is not None:
        return found
    go = shutil.which("go")
    if go is None:
        raise StackError(
            f"the local stack needs livekit-server {VERSION}, and Go to build it: install Go "
            "(https://go.dev/dl; Debian/Ubuntu: apt-get install golang) and run this again, or "
            "set WARMRTC_LIVEKIT_SERVER to a livekit-server binary"
        )
    target = _cached_server()
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(target.parent), "GOFLAGS": "-mod=mod"}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        build = subprocess.Popen(
            [go, "install", f"{MODULE}@{VERSION}"], env=env, stdout=log, stderr=log
        )
        with _Progress(
            f"building livekit-server {VERSION} with Go (once; a few minutes)", enabled=progress
        ):
            try:
                build.wait(BUILD_TIMEOUT)
            except subprocess.TimeoutExpired:
                build.kill()
                build.wait()
        if build.returncode != 0 or not (target.parent / "server").is_file():
            log.seek(0)
            tail = "".join(log.readlines()[-15:])
            raise StackError(f"building livekit-server {VERSION} failed:\n{tail}")
    (target.parent / "server").rename(target)
    if progress:
        print(
            f"built livekit-server {VERSION} in {time.monotonic() - started:.0f} s: {target}",
            file=sys.stderr,
        )
    return target


def _cached_server() -> Path:
    return cache_dir() / "livekit" / VERSION / "livekit-server"


def _server_version(path: Path) -> str | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split()[-1] if out.stdout.split() else None


class _Progress:
    """A line that says a long step is still going: elapsed seconds, on a terminal, updated in
    place; elsewhere one line at the start and one every 30 s."""

    def __init__(self, what: str, *, enabled: bool) -> None:
        self._what, self._enabled = what, enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        if self._enabled:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        tty = sys.stderr.isatty()
        started = time.monotonic()
        print(f"warmrtc: {self._what}...", file=sys.stderr, flush=True)
        while not self._stop.wait(1 if tty else 30):
            elapsed = time.monotonic() - started
            end = "\r" if tty else "\n"
            print(f"warmrtc: {self._what}: {elapsed:.0f} s", end=end, file=sys.stderr, flush=True)
        if tty:
            print(file=sys.stderr)


# ---- the namespace --------------------------------------------------------------------------


def rerun_inside(name: str, argv: list[str], link: LinkSpec = linkspec.LAN) -> NoReturn:
    """``warmrtc NAME ARGV`` once more, inside a stack started here (no root needed; behind
    ``link``), its stderr less the encoder's notes; exits with its status."""
    try:
        command = [sys.executable, "-m", "warmrtc", name, *argv]
        sys.exit(run(command, quiet_encoder=True, link=link))
    except StackError as e:
        raise SystemExit(f"warmrtc {name}: {e}") from None


def check_link(name: str, link: LinkSpec) -> None:
    """Inside a stack: SystemExit when ``link`` is not the one this stack runs behind."""
    in_force = os.environ.get(LINK_ENV, linkspec.LAN.name)
    if link.name != in_force:
        raise SystemExit(
            f"warmrtc {name}: --link {link.name} asked for, but this stack's link is "
            f"{in_force}: run it outside a stack (it starts one), or start the stack with that "
            "--link"
        )


def run(
    command: list[str],
    *,
    progress: bool = True,
    quiet_encoder: bool = False,
    link: LinkSpec = linkspec.LAN,
) -> int:
    """Runs ``command`` inside a new namespace next to livekit-server; its exit status.
    ``quiet_encoder``: its stderr passes through here, less the encoder's rate-control notes
    (see :mod:`warmrtc.local.console`). ``link``: a shaped one puts the command behind it."""
    if not command:
        raise StackError("give a command to run inside the stack")
    server = install_server(progress)
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            raise StackError(f"the local stack needs `{tool}`: install {package}")
    enter = ["unshare", "--net"] if os.geteuid() == 0 else _rootless_unshare()
    inside = [sys.executable, "-m", "warmrtc.local.stack", "_inside", str(server), str(link)]
    inside += ["--", *command]
    # unshare execs the inner half (no fork): signals to it reach the namespace's owner.
    stderr = subprocess.PIPE if quiet_encoder else None
    child = subprocess.Popen([*enter, *inside], stderr=stderr)
    passing = console.pump(child.stderr) if child.stderr is not None else None
    try:
        return _wait_forwarding_signals(child)
    finally:
        if passing is not None:
            passing.join(console.DRAIN)


def _wait_forwarding_signals(child: subprocess.Popen[bytes]) -> int:
    """Waits for ``child``, passing SIGTERM on. SIGINT is not passed on: a terminal's Ctrl-C
    reaches the whole foreground process group already, and a second one would interrupt the
    command's own clean-up; here it only keeps waiting, so that clean-up can finish."""
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: child.terminate()),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    try:
        return child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _rootless_unshare() -> list[str]:
    enter = ["unshare", "--user", "--map-root-user", "--net"]
    probe = subprocess.run([*enter, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise StackError(
            "this system does not let a plain user create a network namespace "
            f"({probe.stderr.strip() or 'unshare failed'}). Enable unprivileged user "
            "namespaces (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 "
            "kernel.apparmor_restrict_unprivileged_userns=0), or run as root"
        )
    return enter


def _inside(server: str, command: list[str], link: LinkSpec) -> int:
    """In the new namespace: the veth pair, livekit-server, the link if it is shaped, then the
    command (behind the link if there is one)."""
    for args in (
        ["ip", "link", "set", "lo", "up"],
        ["ip", "link", "add", "wr0a", "type", "veth", "peer", "name", "wr0b"],
        ["ip", "addr", "add", f"{HOST}/24", "dev", "wr0a"],
        ["ip", "addr", "add", f"{PEER}/24", "dev", "wr0b"],
        ["ip", "link", "set", "wr0a", "up"],
        ["ip", "link", "set", "wr0b", "up"],
    ):
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            hint = " (is the veth kernel module loaded? as root: modprobe veth)" * ("veth" in args)
            raise StackError(f"`{' '.join(args)}` failed: {done.stderr.strip()}{hint}")
    # A full-length secret for this namespace alone: --dev's own is 6 bytes, and every token
    # minted with it warns (HMAC keys under 32 bytes).
    secret = secrets.token_hex(24)
    run_dir = Path(tempfile.mkdtemp(prefix="warmrtc-stack-"))
    server_cmd = [server, "--dev", "--bind", HOST, "--node-ip", HOST, "--config-body", CONFIG]
    service_netns = f"/proc/{os.getpid()}/ns/net"
    # Behind a link, the command runs on the client side: starting the server again must
    # happen here.
    restart_cmd = ["nsenter", f"--net={service_netns}", "--", *server_cmd] if link.shaped else []
    env = {
        **os.environ,
        # Root of this namespace: its network tools (nft, ...) too, which a plain user's PATH
        # may leave out.
        "PATH": _with_sbin(os.environ.get("PATH", "")),
        "LIVEKIT_KEYS": f"{API_KEY}: {secret}",
        "WARMRTC_LIVEKIT_URL": f"ws://{HOST}:{PORT}",
        "WARMRTC_LIVEKIT_KEY": API_KEY,
        "WARMRTC_LIVEKIT_SECRET": secret,
        "WARMRTC_NETNS_HOST": HOST,
        "WARMRTC_LIVEKIT_PIDFILE": str(run_dir / "server.pid"),
        "WARMRTC_LIVEKIT_CMD": shlex.join(restart_cmd or server_cmd),
        netns.SERVICE_NETNS_ENV: service_netns,
        LINK_ENV: link.name,
    }
    log_path = run_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(server_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    (run_dir / "server.pid").write_text(str(proc.pid))
    started = time.monotonic()
    client_link = None
    try:
        if link.shaped:  # made while the server starts
            try:
                client_link = ClientLink(link, service_netns=service_netns)
            except LinkError as e:
                raise StackError(str(e)) from None
            env = client_link.environment(env)
            command = client_link.command(command)
        _wait_ready(proc, log_path)
        print(
            f"warmrtc: livekit-server {VERSION} ready at ws://{HOST}:{PORT} in a namespace of "
            f"its own ({time.monotonic() - started:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        if client_link is not None:
            print(
                f"warmrtc: the command runs at {client_link.client_host}, behind a link "
                f"({link.describe()})",
                file=sys.stderr,
                flush=True,
            )
        raise_open_files_limit()
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as e:
            raise StackError(f"cannot run {command[0]!r}: {e.strerror}") from None
        return _wait_forwarding_signals(child)
    finally:
        if client_link is not None:
            client_link.close()
        _stop_servers(run_dir, proc)
        shutil.rmtree(run_dir, ignore_errors=True)


def raise_open_files_limit(wanted: int = OPEN_FILES) -> None:
    """Raises this process's soft limit on open files towards ``wanted`` (never above the hard
    limit; children inherit it). A session holds a few dozen descriptors (sockets, its receive
    thread's loop, livekit's own): 50 of them in one process, as the suite and the benchmarks
    run, pass a plain user's usual soft limit of 1024, which root's limits hide."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _with_sbin(path: str) -> str:
    parts = path.split(os.pathsep) if path else []
    extra = [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in parts]
    return os.pathsep.join(parts + extra)


def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            socket.create_connection((HOST, PORT), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    tail = "".join(log_path.read_text(errors="replace").splitlines(True)[-30:])
    raise StackError(f"livekit-server did not start within {READY_TIMEOUT:g} s:\n{tail}")


def _stop_servers(run_dir: Path, first: subprocess.Popen[bytes]) -> None:
    # The one in the pid file too: a fault test may have started it again.
    pids = {first.pid}
    try:
        pids.add(int((run_dir / "server.pid").read_text()))
    except (OSError, ValueError):
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_inside"]:  # internal: the half that runs in the namespace
        server, link_json, _dash, *command = argv[1:]
        try:
            return _inside(server, command, LinkSpec.from_json(json.loads(link_json)))
        except StackError as e:
            print(f"warmrtc stack: {e}", file=sys.stderr)
            return 1
    p = argparse.ArgumentParser(
        prog="warmrtc stack",
        description="Run a command next to a local livekit-server, in a network namespace of "
        "its own (no root needed). `warmrtc stack --install` only builds the server.",
    )
    p.add_argument("--install", action="store_true", help="build the pinned server and exit")
    linkspec.add_arguments(p)
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARG...]")
    args, spec = linkspec.parse_arguments(p, argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        if args.install:
            print(install_server())
            return 0
        return run(command, link=spec)
    except StackError as e:
        print(f"warmrtc stack: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
