"""Strided, cropped and odd-size frames at guard pages never crash (tests/planar_fuzz.py)."""

from __future__ import annotations

import json

import pytest

from isolated import run_isolated

EXAMPLES = {"planar": 3000, "packed": 1000}


@pytest.mark.parametrize("family", sorted(EXAMPLES))
def test_guarded_frames_convert_and_capture_without_crashing(family: str) -> None:
    # A crash (SIGSEGV at a guard page, an abort inside livekit-ffi) ends the isolated run
    # and fails here with the signal and the falsifying example.
    result = run_isolated(
        f"import planar_fuzz; planar_fuzz.main({family!r}, {EXAMPLES[family]})", timeout=120
    )
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts["examples"] == EXAMPLES[family]
    assert counts["captures"] == counts["conversions"] == counts["examples"] - counts["rejected"]
    assert counts["captures"] > EXAMPLES[family] // 2
