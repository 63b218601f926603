"""The local stack's set-up steps that need no namespace: finding or building the server, and
the errors that say what to install."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from warmrtc.local import stack


@pytest.fixture
def no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARMRTC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("WARMRTC_LIVEKIT_SERVER", raising=False)
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_without_go_the_error_says_what_to_install(no_server: Path) -> None:
    with pytest.raises(stack.StackError, match=r"install Go .*WARMRTC_LIVEKIT_SERVER"):
        stack.install_server(progress=False)


def test_a_cached_server_is_found_without_a_build(no_server: Path, tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "livekit" / stack.VERSION / "livekit-server"
    cached.parent.mkdir(parents=True)
    cached.write_text("#!/bin/sh\n")
    cached.chmod(cached.stat().st_mode | stat.S_IXUSR)
    assert stack.install_server(progress=False) == cached


def test_a_bad_server_override_is_named(
    no_server: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WARMRTC_LIVEKIT_SERVER", str(tmp_path / "nope"))
    with pytest.raises(stack.StackError, match=r"WARMRTC_LIVEKIT_SERVER=.*nope"):
        stack.find_server()


def test_a_failed_build_shows_the_tail_of_its_output(no_server: Path) -> None:
    go = no_server / "go"
    go.write_text("#!/bin/sh\necho 'go: module lookup disabled' >&2\nexit 1\n")
    go.chmod(0o755)
    with pytest.raises(stack.StackError, match="module lookup disabled"):
        stack.install_server(progress=False)


def test_the_command_line_reports_errors_without_a_traceback(no_server: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warmrtc.local.stack", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 1
    assert done.stderr.startswith("warmrtc stack: ") and "Traceback" not in done.stderr
    assert "install Go" in done.stderr


def test_run_needs_a_command() -> None:
    with pytest.raises(stack.StackError, match="give a command"):
        stack.run([])


def test_the_open_files_limit_is_raised_towards_the_hard_one() -> None:
    import resource

    from warmrtc.local.stack import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        raise_open_files_limit(4096)
        raised, kept = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert kept == hard
        assert raised == (4096 if hard == resource.RLIM_INFINITY else min(4096, hard))
        raise_open_files_limit(512)  # never lowered
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
