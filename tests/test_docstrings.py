"""Every binding of the native core documents itself (help(warmrtc.to_i420) is not empty), and
the type stub, where the documentation site reads the public functions' docs, says the same."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import warmrtc
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


def _stub_docstrings() -> dict[str, str]:
    """The docstrings of the functions in _core.pyi, where the documentation site reads them."""
    stub = Path(warmrtc.__file__).parent / "_core.pyi"
    tree = ast.parse(stub.read_text(encoding="utf-8"))
    return {
        node.name: ast.get_docstring(node) or ""
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


@pytest.mark.parametrize("name", ["to_i420", "from_i420", "i420_shape"])
def test_the_stub_says_what_the_binding_says(name: str) -> None:
    # pybind11 puts the signature line first; the rest is the binding's docstring.
    runtime = (getattr(_core, name).__doc__ or "").split("\n", 1)
    assert runtime[0].startswith(f"{name}("), runtime[0]
    assert _stub_docstrings()[name] == inspect.cleandoc(runtime[1]), (
        f"_core.pyi's docstring of {name} differs from cpp/bindings.cpp's: write it again there"
    )
