"""The demo's timeline: phases from samples, and the drawing of it."""

from __future__ import annotations

from pathlib import Path

from warmrtc.local.timeline import Sample, Timeline, draw


def timeline() -> Timeline:
    t = Timeline(period=0.5)
    phases = ["connecting", "warm", "warm", "live", "live", "paused", "live"]
    for i, phase in enumerate(phases):
        live = phase == "live"
        t.samples.append(Sample(i * 0.5, phase, 15 * i, 15 * i if live else 0, None, i // 3))
    return t


def test_phases_are_runs_of_samples() -> None:
    assert timeline().phases() == [
        ("connecting", 0.0, 0.0),
        ("warm", 0.5, 1.0),
        ("live", 1.5, 2.0),
        ("paused", 2.5, 2.5),
        ("live", 3.0, 3.0),
    ]


def test_draw_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "timeline.png"
    draw(timeline(), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
