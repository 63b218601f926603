"""The link's control without a link: the forwarder's answers to good and bad requests, the
client's errors when no link answers, and running a command in a namespace."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from warmrtc.local import netns
from warmrtc.local.delay_line import Forwarder
from warmrtc.local.link import CONTROL_ENV, LINK_ENV, Link, LinkError
from warmrtc.local.linkspec import LinkSpec
from warmrtc.local.shaping import Schedule

unix_only = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no unix sockets here")
linux_only = pytest.mark.skipif(sys.platform != "linux", reason="network namespaces: Linux")


@pytest.fixture
def forwarder() -> Iterator[Forwarder]:
    with socket.socket() as control:  # only answers are asked for: no device, no socket use
        yield Forwarder(Schedule(LinkSpec()), 10, 11, control, 0, "normal")


def ask(forwarder: Forwarder, request: object) -> dict[str, object]:
    return forwarder._answer(json.dumps(request).encode())


def test_get_reports_the_spec_and_the_counters(forwarder: Forwarder) -> None:
    answer = ask(forwarder, {"op": "get"})
    assert answer["ok"] and answer["spec"] == LinkSpec().to_json()
    assert (
        answer["up"]
        == answer["down"]
        == {
            "packets": 0,
            "bytes": 0,
            "delivered": 0,
            "lost": 0,
            "overflow": 0,
            "dark": 0,
            "write_errors": 0,
        }
    )
    assert answer["dark_for"] == 0.0 and answer["priority"] == "normal"
    assert answer["late_ms"] == {"p50": 0.0, "p99": 0.0, "max": 0.0, "packets": 0}


def test_set_and_blackout_change_the_schedule(forwarder: Forwarder) -> None:
    far = LinkSpec(name="far").to_json() | {"up": {"delay_ms": 60.0}, "down": {"delay_ms": 60.0}}
    answer = ask(forwarder, {"op": "set", "spec": far})
    assert answer["ok"] and forwarder.schedule.spec.up.delay_ms == 60
    answer = ask(forwarder, {"op": "blackout", "seconds": 2})
    assert answer["ok"] and 1.9 < answer["dark_for"] <= 2  # type: ignore[operator]
    assert forwarder.schedule.up.dark and forwarder.schedule.down.dark


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json", "Expecting value"),
        (b"[1]", "a request is a JSON object"),
        (b'{"op": "explode"}', "unknown op 'explode'; known: get, set, blackout"),
        (b'{"op": "set", "spec": {"up": {"loss": 2}}}', "loss must be between 0 and 1, got 2"),
        (b'{"op": "set"}', "a link spec is a JSON object, got NoneType"),
        (b'{"op": "blackout", "seconds": -1}', "blackout seconds must be above 0"),
        (b'{"op": "blackout"}', "blackout seconds must be a number, got None"),
    ],
)
def test_bad_requests_get_an_error_that_names_them(
    forwarder: Forwarder, line: bytes, error: str
) -> None:
    answer = forwarder._answer(line)
    assert answer["ok"] is False and error in str(answer["error"])
    assert forwarder.schedule.spec == LinkSpec() and not forwarder.schedule.up.dark


@unix_only
def test_no_link_at_the_socket_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LinkError, match=r"control socket .*nothing\.sock.*has the link ended"):
        Link(str(tmp_path / "nothing.sock")).stats()


@pytest.fixture
def silent_socket() -> Iterator[str]:
    """A control socket that takes a connection and never answers."""
    path = os.path.join(tempfile.mkdtemp(), "silent.sock")  # short: unix paths are bounded
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    yield path
    server.close()
    os.unlink(path)


def raised_within(seconds: float, call: Callable[[], object]) -> BaseException | None:
    """What ``call`` raised, run in a thread given ``seconds``: a call that hangs fails the
    test instead of hanging it (the thread ends when the test's fixtures close its socket)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds:g} s"
    return raised[0] if raised else None


@unix_only
def test_a_link_that_does_not_answer_fails_within_the_timeout(silent_socket: str) -> None:
    raised = raised_within(5, lambda: Link(silent_socket, timeout=0.3).stats())
    assert isinstance(raised, LinkError) and "timed out" in str(raised)


@pytest.fixture
def refusing_socket() -> Iterator[str]:
    """A control socket that refuses every request."""
    path = os.path.join(tempfile.mkdtemp(), "refusing.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)

    def serve() -> None:
        with server.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(b'{"ok": false, "error": "blackout seconds must be above 0"}\n')

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    thread.join(10)
    server.close()
    os.unlink(path)


@pytest.fixture
def babbling_socket() -> Iterator[str]:
    """A control socket that answers with bytes and never a newline."""
    path = os.path.join(tempfile.mkdtemp(), "babbling.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    server.settimeout(10)
    stop = threading.Event()

    def serve() -> None:
        with server.accept()[0] as conn:
            conn.settimeout(1)
            while not stop.is_set():
                try:
                    conn.sendall(b"x" * 65536)
                except OSError:
                    return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join(10)
    server.close()
    os.unlink(path)


@unix_only
def test_an_endless_answer_is_cut_off(babbling_socket: str) -> None:
    raised = raised_within(5, lambda: Link(babbling_socket).stats())
    assert isinstance(raised, LinkError) and "the link answered b'xxx" in str(raised)


@unix_only
def test_a_refusal_is_raised_with_the_links_reason(refusing_socket: str) -> None:
    with pytest.raises(LinkError, match="refused blackout: blackout seconds must be above 0"):
        Link(refusing_socket).blackout(-1)


def test_outside_a_linked_stack_from_env_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONTROL_ENV, raising=False)
    monkeypatch.setenv(LINK_ENV, "lan")
    with pytest.raises(LinkError, match=r"this stack's link is 'lan': no link to control"):
        Link.from_env()
    monkeypatch.delenv(LINK_ENV)
    with pytest.raises(LinkError, match=r"not inside a local stack with a link"):
        Link.from_env()


@linux_only
def test_a_command_for_this_namespace_runs_as_it_is() -> None:
    assert netns.enter(None, ["true"]) == ["true"]
    assert netns.enter(f"/proc/{os.getpid()}/ns/net", ["true"]) == ["true"]


@linux_only
def test_a_command_for_another_namespace_goes_through_nsenter(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "net"  # any other file stands for another namespace here
    other.touch()
    monkeypatch.setenv(netns.SERVICE_NETNS_ENV, str(other))
    assert netns.service_side(["true"]) == ["nsenter", f"--net={other}", "--", "true"]
    monkeypatch.setenv(netns.SERVICE_NETNS_ENV, "")
    assert netns.service_side(["true"]) == ["true"]


@linux_only
def test_a_namespace_that_is_gone_is_named() -> None:
    with pytest.raises(netns.NamespaceError, match=r"/proc/999999999/ns/net: .*has the process"):
        netns.enter("/proc/999999999/ns/net", ["true"])


def test_the_forwarder_starts_without_the_warmrtc_package() -> None:
    """The forwarder is loaded apart from warmrtc (fast, small): its modules must keep to the
    standard library. Its own command line answers --help that way."""
    import subprocess

    from warmrtc.local.link import BOOT_PACKAGE, FORWARDER

    imported = "print(sorted(m for m in sys.modules if m.startswith(('warmrtc', 'numpy'))))"
    script = BOOT_PACKAGE + "import _warmrtc_link.delay_line; " + imported
    probe = [sys.executable, "-c", script, FORWARDER[3]]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    helped = subprocess.run([*FORWARDER, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--run-dir" in helped.stdout


def test_the_forwarder_takes_the_best_scheduling_it_is_granted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from warmrtc.local import delay_line

    calls: list[str] = []

    def refuse(*_args: object) -> None:
        calls.append("refused")
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(delay_line.os, "sched_setscheduler", lambda *_a: calls.append("fifo"))
    assert delay_line.raise_priority() == "fifo"
    monkeypatch.setattr(delay_line.os, "sched_setscheduler", refuse)
    monkeypatch.setattr(delay_line.os, "setpriority", lambda *_a: calls.append("nice"))
    assert delay_line.raise_priority() == "nice"
    monkeypatch.setattr(delay_line.os, "setpriority", refuse)
    assert delay_line.raise_priority() == "normal"


def test_the_forwarder_leaves_real_time_when_it_uses_over_half_a_core(
    forwarder: Forwarder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmrtc.local import delay_line

    policies: list[int] = []
    monkeypatch.setattr(
        delay_line.os, "sched_setscheduler", lambda _p, policy, _s: policies.append(policy)
    )
    monkeypatch.setattr(delay_line.os, "setpriority", lambda *_a: None)
    cpu = [10.0]
    monkeypatch.setattr(delay_line.time, "process_time", lambda: cpu[0])
    forwarder.priority = "fifo"
    forwarder._guard_from, forwarder._guard_cpu = 100.0, 10.0
    cpu[0] = 10.4  # 0.4 s of CPU in 1 s: stays
    forwarder._guard(101.0)
    assert forwarder.priority == "fifo" and not policies
    cpu[0] = 11.0  # 0.6 s in the next second: leaves, for good
    forwarder._guard(102.0)
    assert forwarder.priority == "nice" and policies == [delay_line.os.SCHED_OTHER]


@linux_only
def test_the_forwarder_names_a_bad_spec_and_a_missing_tun(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from warmrtc.local import delay_line

    run_dir = tmp_path / "link"
    run_dir.mkdir()
    assert delay_line.main(["--run-dir", str(run_dir), "--spec", '{"up": {"loss": 7}}']) == 2
    assert "bad --spec: loss must be between 0 and 1, got 7" in capsys.readouterr().err

    def no_tun(_pattern: str) -> tuple[int, str]:
        raise FileNotFoundError(2, "No such file or directory", "/dev/net/tun")

    monkeypatch.setattr(delay_line, "open_tun", no_tun)
    monkeypatch.setattr(delay_line, "raise_priority", lambda: "normal")
    monkeypatch.setattr(delay_line.signal, "signal", lambda *_a: None)
    assert delay_line.main(["--run-dir", str(run_dir), "--spec", "{}"]) == 1
    err = capsys.readouterr().err
    assert "No such file or directory (/dev/net/tun)" in err and "modprobe tun" in err
    assert not run_dir.exists()  # its run directory goes with it
