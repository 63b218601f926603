"""Every binding of the native core documents itself (help(warmrtc.to_i420) is not empty)."""

from __future__ import annotations

import pytest

from warmrtc import _core

BINDINGS = [_core.to_i420, _core.from_i420, _core.i420_shape, _core.Pipeline]
BINDINGS += [
    getattr(_core.Pipeline, name)
    for name in ("__init__", "capture", "mute", "unmute", "_close_gate")
]
PROPERTIES = ["muted", "closed", "stats", "width", "height", "fmt"]


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.__qualname__)
def test_every_binding_has_a_docstring(binding: object) -> None:
    doc = binding.__doc__ or ""
    signature_free = [ln for ln in doc.splitlines() if ln.strip() and "->" not in ln]
    assert len(signature_free) >= 1, f"{binding!r} has no docstring beyond its signature"


@pytest.mark.parametrize("name", PROPERTIES)
def test_every_property_has_a_docstring(name: str) -> None:
    assert getattr(_core.Pipeline, name).__doc__, f"Pipeline.{name} has no docstring"


def test_the_docstrings_say_what_callers_need() -> None:
    to_i420 = _core.to_i420.__doc__ or ""
    for words in ("padding", "GIL", "ValueError", "TypeError", "nv12", "size", "out"):
        assert words in to_i420, words
    capture = _core.Pipeline.capture.__doc__ or ""
    for words in ("True", "False", "muted", "GIL", "ValueError"):
        assert words in capture, words
