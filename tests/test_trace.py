"""warmrtc._trace: one JSON line per mark with the monotonic time, only when asked for."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from warmrtc import _trace as trace


def test_marks_go_to_the_named_file_with_monotonic_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trace.jsonl"
    monkeypatch.setenv(trace.TRACE_ENV, str(path))
    before = time.monotonic()
    trace.mark("client.unmute")
    trace.mark("model.out.pli_count", value=2)
    events = trace.read(str(path))
    assert [e["event"] for e in events] == ["client.unmute", "model.out.pli_count"]
    assert events[1]["value"] == 2 and events[0]["pid"] == os.getpid()
    assert before <= float(events[0]["t"]) <= float(events[1]["t"]) <= time.monotonic()  # type: ignore[arg-type]


def test_without_the_variable_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(trace.TRACE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert not trace.enabled()
    trace.mark("client.unmute")
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_trace_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(trace.TRACE_ENV, str(tmp_path / "no" / "such" / "dir" / "t.jsonl"))
    trace.mark("client.unmute")  # a diagnostic: the session goes on
