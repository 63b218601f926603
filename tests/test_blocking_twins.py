"""Each blocking class is the twin of an async one: every public name of the async class (its
methods, properties and declared attributes) has a twin, so the two cannot drift apart."""

from __future__ import annotations

import pytest

import warmrtc
from warmrtc.blocking import _public, _Twin

TWINS = [
    (warmrtc.Session, warmrtc.BlockingSession),
    (warmrtc.WarmPool, warmrtc.BlockingWarmPool),
    (warmrtc.Spectator, warmrtc.BlockingSpectator),
]


@pytest.mark.parametrize(("async_class", "twin"), TWINS, ids=lambda c: c.__name__)
def test_every_public_name_of_the_async_class_has_a_twin(async_class: type, twin: type) -> None:
    names = _public(async_class)
    assert {"disconnect", "close", "frames", "acquire", "state", "stats"} & names
    assert names <= _public(twin), sorted(names - _public(twin))


def test_a_twin_that_lacks_a_name_does_not_even_import() -> None:
    with pytest.raises(TypeError, match=r"BlockingHalf lacks .*set_prompt.* of Session"):

        class BlockingHalf(_Twin[warmrtc.Session], twin_of=warmrtc.Session):
            pass


def test_the_public_names_include_declared_attributes_and_properties() -> None:
    names = _public(warmrtc.WarmPool)
    assert {"size", "last_error", "stats", "acquire", "wait_warm"} <= names
    assert {"room_name", "frames_received", "closed"} <= _public(warmrtc.Spectator)
    assert {"latency", "room_name", "config", "connect_steps"} <= _public(warmrtc.Session)
