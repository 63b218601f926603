"""The emulator's RSS (summed over its process tree: the emulator, its fork server and the
models' workers) returns near its baseline after 50 sessions have come and gone: once it
reports no session and its RSS has settled (each session's worker exits with it)."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

from conftest import API_KEY, Emulator

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "emulator_memory.py"


def test_rss_returns_near_baseline_after_50_sessions() -> None:
    spec = importlib.util.spec_from_file_location("emulator_memory", BENCHMARK)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclass looks its module up
    spec.loader.exec_module(bench)
    emulator = Emulator(*bench.EMULATOR_ARGS)
    try:
        figures = asyncio.run(
            asyncio.wait_for(bench.measure(emulator.url, API_KEY, emulator.proc.pid, 50, 10), 420)
        )
    finally:
        emulator.stop()
    print(f"\n{figures}")
    assert figures.after_mib - figures.baseline_mib <= 100, str(figures)
