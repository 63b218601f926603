"""End-to-end fixtures: the real livekit-server (started by `warmrtc stack` in a network
namespace) and the emulator, started here as a subprocess the way users start it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from warmrtc.local.link import ClientLink
from warmrtc.local.netns import service_side

API_KEY = "e2e-key"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not os.environ.get("WARMRTC_LIVEKIT_URL") and any("e2e" in i.nodeid for i in items):
        raise pytest.UsageError(
            "end-to-end tests run inside the local stack's network namespace: "
            "python -m warmrtc stack -- python -m pytest tests/e2e, or make test"
        )


@pytest.fixture
def client_link(request: pytest.FixtureRequest) -> Iterator[ClientLink]:
    """A network namespace for the test's client, joined to the stack's namespace (livekit-server,
    the emulator) by a link of the test's own: shaped by the test's ``link`` marker
    (``@pytest.mark.link("broadband")``; default lan), and reshaped as the test likes
    (``client_link.control.set(...)``, ``.blackout(seconds)``). Run a client in it with
    ``client_link.command([...])`` and ``env=client_link.environment()``."""
    marker = request.node.get_closest_marker("link")
    with ClientLink(marker.args[0] if marker else "lan") as link:
        yield link


@pytest.fixture(scope="session")
def livekit_url() -> str:
    return os.environ["WARMRTC_LIVEKIT_URL"]


class Emulator:
    """``python -m warmrtc.emulator`` as a subprocess, the way users start it."""

    def __init__(self, *extra: str) -> None:
        host = os.environ["WARMRTC_NETNS_HOST"]
        args = ["--host", host, "--port", "0", "--api-key", API_KEY, "--log-level", "INFO"]
        args += ["--parent-pid", str(os.getpid())]  # a killed test run leaves no emulator behind
        self.proc = subprocess.Popen(
            # Where livekit-server runs: the stack's namespace, also when the suite runs
            # behind a link (`warmrtc stack --link ...`).
            service_side([sys.executable, "-m", "warmrtc.emulator", *args, *extra]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()
        self.lines: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if line.startswith("emulator ready "):
                    ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(20):
            self.proc.kill()
            pytest.fail("emulator did not start:\n" + "\n".join(self.lines[-30:]))
        self.url = next(x for x in self.lines if x.startswith("emulator ready ")).split()[-1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("emulator did not stop on SIGTERM")
        finally:
            self._reader.join(5)
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        assert self.proc.returncode == 0, "\n".join(self.lines[-30:])


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    emulator = Emulator("--queue-positions", "1", "--fault-injection")
    yield emulator.url
    emulator.stop()


@pytest.fixture(scope="session")
def restarted_servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """livekit-servers a fault test started again. They serve the tests after it, so they are
    stopped when the whole session ends."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait(10)


def _live_sessions(emulator_url: str) -> set[str]:
    url = emulator_url.replace("ws://", "http://", 1) + "/sessions"
    asked = urllib.request.Request(url, headers={"x-api-key": API_KEY})
    with urllib.request.urlopen(asked, timeout=5) as answer:
        return {s["session_id"] for s in json.load(answer) if s["state"] != "ended"}


@pytest.fixture(autouse=True)
def no_session_left_live(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that uses the shared emulator leaves no session of its own live: one left behind
    reconnects in the background of later tests (and fails them or the run's end)."""
    if "emulator_url" not in request.fixturenames:
        yield
        return
    url = request.getfixturevalue("emulator_url")
    before = _live_sessions(url)
    yield
    deadline = time.monotonic() + 10  # a disconnect's last steps may still run
    while (left := _live_sessions(url) - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"sessions left live by {request.node.nodeid}: {sorted(left)}"
