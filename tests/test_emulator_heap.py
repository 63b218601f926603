"""The emulator pins glibc's mmap threshold, unless its environment chooses one."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

pytest.importorskip("livekit.api")

from warmrtc.emulator import memory


def test_an_explicit_threshold_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert memory.limit_heap_retention() is False


@pytest.mark.skipif(
    platform.system() != "Linux" or ctypes.util.find_library("c") is None,
    reason="mallopt is glibc's",
)
def test_the_threshold_is_pinned_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    if memory._mallopt is None:
        pytest.skip("no mallopt in this C library (musl)")
    assert memory.limit_heap_retention() is True


def test_give_back_runs_anywhere() -> None:
    memory.give_back()
