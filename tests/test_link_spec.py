"""Link specs: the named profiles, overrides, and the errors bad values get."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys

import pytest

from warmrtc.local import linkspec
from warmrtc.local.linkspec import Direction, LinkSpec, LinkSpecError


def test_the_profiles_are_what_they_say() -> None:
    p = linkspec.PROFILES
    assert not p["lan"].shaped and p["lan"] == linkspec.LAN
    for name, rtt in (("broadband", 50), ("far", 120), ("lossy", 50), ("mobile", 80)):
        assert p[name].shaped and p[name].rtt_ms == rtt and p[name].name == name
    assert p["broadband"].up == p["broadband"].down == Direction(delay_ms=25)
    assert p["lossy"].up.loss == p["lossy"].down.loss == 0.02
    mobile = p["mobile"]
    assert (mobile.up.jitter_ms, mobile.up.loss, mobile.up.rate_mbit) == (20, 0.01, 2)
    assert (mobile.down.jitter_ms, mobile.down.loss, mobile.down.rate_mbit) == (20, 0.01, None)


def test_overrides_change_only_what_they_name() -> None:
    spec = linkspec.parse("broadband,loss=0.05")
    assert spec.up == spec.down == Direction(delay_ms=25, loss=0.05)
    assert spec.name == "broadband,loss=0.05"
    far = linkspec.parse("broadband, rtt=100, up=3, seed=7")
    assert (far.up.delay_ms, far.down.delay_ms, far.rtt_ms) == (50, 50, 100)
    assert (far.up.rate_mbit, far.down.rate_mbit, far.seed) == (3, None, 7)
    assert linkspec.parse("lan,reorder=1,jitter=5").reorder
    assert linkspec.parse("lan,rtt=0") == linkspec.LAN.__class__(name="lan,rtt=0")
    assert not linkspec.parse("lan,rtt=0").shaped


def test_the_command_line_options_become_overrides() -> None:
    p = argparse.ArgumentParser()
    linkspec.add_arguments(p)
    args = p.parse_args(["--link", "mobile", "--rtt", "100", "--loss", "0.05", "--down-mbit", "4"])
    spec = linkspec.from_arguments(args)
    assert spec.rtt_ms == 100 and spec.up.loss == spec.down.loss == 0.05
    assert (spec.up.rate_mbit, spec.down.rate_mbit, spec.up.jitter_ms) == (2, 4, 20)
    assert linkspec.from_arguments(p.parse_args([])) == linkspec.LAN
    again = linkspec.from_arguments(p.parse_args(linkspec.argument_list(args)))
    assert again == spec


@pytest.mark.parametrize("spec", list(linkspec.PROFILES.values()))
def test_a_spec_goes_through_json_unchanged(spec: LinkSpec) -> None:
    import json

    assert LinkSpec.from_json(json.loads(str(spec))) == spec


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Direction(delay_ms=-5), r"delay_ms must be between 0 and .* got -5"),
        (lambda: Direction(jitter_ms=-1), r"jitter_ms must be between 0"),
        (lambda: Direction(loss=1.5), r"loss must be between 0 and 1, got 1.5"),
        (lambda: Direction(loss=-0.1), r"loss must be between 0 and 1"),
        (lambda: Direction(loss=math.nan), r"loss must be between 0 and 1, got nan"),
        (lambda: Direction(rate_mbit=0), r"rate_mbit must be above 0"),
        (lambda: Direction(delay_ms="5"), r"delay_ms must be a number, got '5'"),  # type: ignore[arg-type]
        (lambda: Direction(delay_ms=20_000), r"delay_ms must be between 0 and 10000"),
        (lambda: LinkSpec(seed=-1), r"seed must be a whole number >= 0"),
        (lambda: LinkSpec(reorder=1), r"reorder must be true or false"),  # type: ignore[arg-type]
        (lambda: linkspec.parse("nowhere"), r"unknown link profile 'nowhere'; known: lan, "),
        (lambda: linkspec.parse("broadband,rtt=-5"), r"rtt must be between 0 and .* got -5"),
        (lambda: linkspec.parse("broadband,loss=2"), r"loss must be between 0 and 1, got 2"),
        (lambda: linkspec.parse("broadband,lag=5"), r"unknown link setting 'lag'; known: rtt"),
        (lambda: linkspec.parse("broadband,loss"), r"'loss' in 'broadband,loss' is not KEY=V"),
        (lambda: linkspec.parse("broadband,loss=lots"), r"loss='lots' is not a number"),
        (lambda: linkspec.parse("lan,seed=1.5"), r"seed must be a whole number"),
        (lambda: linkspec.parse("lan,reorder=2"), r"reorder must be 0 or 1"),
        (lambda: linkspec.parse(None), r"a link spec is a string"),  # type: ignore[arg-type]
    ],
)
def test_bad_values_are_named(make: object, message: str) -> None:
    with pytest.raises(LinkSpecError, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"a link spec is a JSON object, got list"),
        ({"lag": 1}, r"unknown link spec fields: \['lag'\]"),
        ({"up": 5}, r"up: a direction is a JSON object"),
        ({"up": {"loss": "x"}}, r"up.loss must be a number, got 'x'"),
        ({"down": {"loss": True}}, r"down.loss must be a number, got True"),
        ({"down": {"delay": 1}}, r"down: unknown direction fields: \['delay'\]"),
        ({"up": {"loss": 3}}, r"loss must be between 0 and 1, got 3"),
        ({"name": ""}, r"name is a non-empty string"),
    ],
)
def test_bad_json_specs_are_named(data: object, message: str) -> None:
    with pytest.raises(LinkSpecError, match=message):
        LinkSpec.from_json(data)


def test_a_spec_describes_itself() -> None:
    assert linkspec.LAN.describe() == "lan: no shaping"
    assert linkspec.PROFILES["broadband"].describe() == "broadband: RTT 50 ms; each way 25 ms"
    assert linkspec.PROFILES["mobile"].describe() == (
        "mobile: RTT 80 ms; up 40 ms ± 20, 1 % loss, 2 Mbit/s; down 40 ms ± 20, 1 % loss"
    )


@pytest.mark.parametrize("command", ["stack", "demo"])
def test_the_command_lines_name_a_bad_link(command: str) -> None:
    rest = ["--", "true"] if command == "stack" else []
    done = subprocess.run(
        [sys.executable, "-m", "warmrtc.cli", command, "--link", "nowhere", *rest],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DECART_API_KEY": ""},
    )
    assert done.returncode == 2
    assert "unknown link profile 'nowhere'" in done.stderr and "Traceback" not in done.stderr
