"""The emulator's RSS returns near its baseline after 50 sessions have come and gone."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest
from conftest import API_KEY, Emulator

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "emulator_memory.py"


@pytest.mark.xfail(
    strict=False,
    reason="measured: baseline 76 MiB, 50 live ~2.8 GiB, 3 s after they ended 574-1482 MiB "
    "even with malloc_trim; what keeps it (livekit's native side?) is not found yet",
)
def test_rss_returns_near_baseline_after_50_sessions() -> None:
    spec = importlib.util.spec_from_file_location("emulator_memory", BENCHMARK)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass looks its module up
    spec.loader.exec_module(bench)
    emulator = Emulator(*bench.EMULATOR_ARGS)
    try:
        figures = asyncio.run(
            asyncio.wait_for(bench.measure(emulator.url, API_KEY, emulator.proc.pid, 50, 10), 240)
        )
    finally:
        emulator.stop()
    print(f"\n{figures}")
    assert figures.after_mib - figures.baseline_mib <= 100, str(figures)
