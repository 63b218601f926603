"""What a link between the client and the service does: delay, jitter, loss and a rate cap for
each direction, and the named profiles.

A spec is written as a profile name with optional overrides, ``"broadband"`` or
``"lossy,loss=0.05,rtt=100"``; the stack's and the demo's ``--link`` take that form (and
``--rtt``, ``--loss``, ... as separate options). ``up`` is client -> service, ``down`` is
service -> client. Pure data: no I/O here (see :mod:`warmrtc.local.shaping` for the schedule and
:mod:`warmrtc.local.link` for the link itself).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

MAX_DELAY_MS = 10_000.0  # one way: a bound that catches a unit slip (seconds given as ms)
MAX_RATE_MBIT = 10_000.0
DEFAULT_QUEUE_MS = 100.0  # the rate cap's queue: this long at the capped rate, then drops


class LinkSpecError(ValueError):
    """A link spec or one of its values is not valid; the message names it."""


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LinkSpecError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise LinkSpecError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


@dataclass(frozen=True)
class Direction:
    """One direction of the link. ``delay_ms`` each way; every packet gets a delay drawn
    uniformly from ``delay_ms ± jitter_ms`` (never below 0); ``loss`` is the share of packets
    dropped at random (0-1); ``rate_mbit`` caps the rate (None: no cap), with a queue of
    ``queue_ms`` at that rate beyond which packets are dropped."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    rate_mbit: float | None = None
    queue_ms: float = DEFAULT_QUEUE_MS

    def __post_init__(self) -> None:
        _check_range("delay_ms", self.delay_ms, 0.0, MAX_DELAY_MS)
        _check_range("jitter_ms", self.jitter_ms, 0.0, MAX_DELAY_MS)
        _check_range("loss", self.loss, 0.0, 1.0)
        if self.rate_mbit is not None:
            _check_range("rate_mbit", self.rate_mbit, 0.0, MAX_RATE_MBIT)
            if self.rate_mbit == 0:
                raise LinkSpecError("rate_mbit must be above 0 (None: no cap), got 0")
        _check_range("queue_ms", self.queue_ms, 0.0, MAX_DELAY_MS)

    @property
    def shaped(self) -> bool:
        return bool(self.delay_ms or self.jitter_ms or self.loss or self.rate_mbit is not None)

    def describe(self) -> str:
        parts = [f"{self.delay_ms:g} ms"]
        if self.jitter_ms:
            parts[0] += f" ± {self.jitter_ms:g}"
        if self.loss:
            parts.append(f"{self.loss * 100:g} % loss")
        if self.rate_mbit is not None:
            parts.append(f"{self.rate_mbit:g} Mbit/s")
        return ", ".join(parts)


@dataclass(frozen=True)
class LinkSpec:
    """Both directions of the link, and how it draws its random numbers: ``seed`` makes the
    losses and jitter of a run repeatable; ``reorder`` lets a packet drawn a shorter delay
    overtake the one before it (by default packets leave in the order they came)."""

    name: str = "lan"
    up: Direction = Direction()
    down: Direction = Direction()
    reorder: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise LinkSpecError(f"a link spec's name is a non-empty string, got {self.name!r}")
        for side in ("up", "down"):
            if not isinstance(getattr(self, side), Direction):
                raise LinkSpecError(f"{side} must be a Direction, got {getattr(self, side)!r}")
        if not isinstance(self.reorder, bool):
            raise LinkSpecError(f"reorder must be true or false, got {self.reorder!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise LinkSpecError(f"seed must be a whole number >= 0, got {self.seed!r}")

    @property
    def shaped(self) -> bool:
        """False for a link that does nothing: the stack keeps its one-namespace layout."""
        return self.up.shaped or self.down.shaped

    @property
    def rtt_ms(self) -> float:
        """The round trip the link adds, without jitter."""
        return self.up.delay_ms + self.down.delay_ms

    def describe(self) -> str:
        if not self.shaped:
            return f"{self.name}: no shaping"
        if self.up == self.down:
            return f"{self.name}: RTT {self.rtt_ms:g} ms; each way {self.up.describe()}"
        up, down = self.up.describe(), self.down.describe()
        return f"{self.name}: RTT {self.rtt_ms:g} ms; up {up}; down {down}"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> LinkSpec:
        """The inverse of :meth:`to_json`, for what comes over the link's control socket."""
        if not isinstance(data, dict):
            raise LinkSpecError(f"a link spec is a JSON object, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        if unknown := set(data) - fields:
            raise LinkSpecError(f"unknown link spec fields: {sorted(unknown)}")
        values = dict(data)
        for side in ("up", "down"):
            if side in values:
                values[side] = _direction_from_json(side, values[side])
        try:
            return cls(**values)
        except TypeError as e:
            raise LinkSpecError(f"bad link spec {data!r}: {e}") from None

    def __str__(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))


def _direction_from_json(side: str, data: object) -> Direction:
    if not isinstance(data, dict):
        raise LinkSpecError(f"{side}: a direction is a JSON object, got {type(data).__name__}")
    fields = {f.name for f in dataclasses.fields(Direction)}
    if unknown := set(data) - fields:
        raise LinkSpecError(f"{side}: unknown direction fields: {sorted(unknown)}")
    for key, value in data.items():
        ok = value is None if key == "rate_mbit" else False
        if not ok and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise LinkSpecError(f"{side}.{key} must be a number, got {value!r}")
    return Direction(**data)


def _symmetric(name: str, rtt_ms: float, *, jitter_ms: float = 0.0, loss: float = 0.0) -> LinkSpec:
    each = Direction(delay_ms=rtt_ms / 2, jitter_ms=jitter_ms, loss=loss)
    return LinkSpec(name=name, up=each, down=each)


LAN = LinkSpec()
PROFILES: dict[str, LinkSpec] = {
    "lan": LAN,
    "broadband": _symmetric("broadband", 50),
    "far": _symmetric("far", 120),
    "lossy": _symmetric("lossy", 50, loss=0.02),
    "mobile": dataclasses.replace(
        _symmetric("mobile", 80, jitter_ms=20, loss=0.01),
        up=Direction(delay_ms=40, jitter_ms=20, loss=0.01, rate_mbit=2),
    ),
}

# Overrides: what each one sets. rtt, jitter and loss apply to both directions.
OVERRIDES = {
    "rtt": "round trip in ms, half each way",
    "jitter": "± ms on each way's delay",
    "loss": "share of packets lost each way, 0-1",
    "up": "rate cap client -> service, Mbit/s",
    "down": "rate cap service -> client, Mbit/s",
    "queue": "the rate cap's queue, ms at the capped rate",
    "seed": "seed of the random losses and jitter",
    "reorder": "1: jitter may reorder packets",
}


def with_overrides(spec: LinkSpec, **values: float | None) -> LinkSpec:
    """``spec`` with the given overrides (keys of :data:`OVERRIDES`; None leaves one as it is)."""
    if unknown := set(values) - set(OVERRIDES):
        raise LinkSpecError(
            f"unknown link setting {sorted(unknown)[0]!r}; known: {', '.join(OVERRIDES)}"
        )
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return spec
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LinkSpecError(f"{key} must be a number, got {value!r}")
    up, down = dataclasses.asdict(spec.up), dataclasses.asdict(spec.down)
    if "rtt" in given:
        _check_range("rtt", given["rtt"], 0.0, 2 * MAX_DELAY_MS)
        up["delay_ms"] = down["delay_ms"] = given["rtt"] / 2
    if "jitter" in given:
        up["jitter_ms"] = down["jitter_ms"] = given["jitter"]
    if "loss" in given:
        up["loss"] = down["loss"] = given["loss"]
    if "up" in given:
        up["rate_mbit"] = given["up"]
    if "down" in given:
        down["rate_mbit"] = given["down"]
    if "queue" in given:
        up["queue_ms"] = down["queue_ms"] = given["queue"]
    seed = spec.seed
    if "seed" in given:
        if given["seed"] != int(given["seed"]) or given["seed"] < 0:
            raise LinkSpecError(f"seed must be a whole number >= 0, got {given['seed']!r}")
        seed = int(given["seed"])
    reorder = spec.reorder
    if "reorder" in given:
        if given["reorder"] not in (0, 1):
            raise LinkSpecError(f"reorder must be 0 or 1, got {given['reorder']!r}")
        reorder = bool(given["reorder"])
    shown = ",".join(f"{k}={v:g}" for k, v in given.items())
    return LinkSpec(
        name=f"{spec.name},{shown}",
        up=Direction(**up),
        down=Direction(**down),
        reorder=reorder,
        seed=seed,
    )


def parse(text: str) -> LinkSpec:
    """A spec from ``NAME[,KEY=VALUE...]`` (``"broadband"``, ``"lossy,loss=0.05"``)."""
    if not isinstance(text, str):
        raise LinkSpecError(f"a link spec is a string like 'broadband', got {text!r}")
    name, *settings = [part.strip() for part in text.split(",")]
    if name not in PROFILES:
        raise LinkSpecError(
            f"unknown link profile {name!r}; known: {', '.join(PROFILES)} "
            "(with overrides: 'broadband,loss=0.05')"
        )
    values: dict[str, float | None] = {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep:
            raise LinkSpecError(f"link setting {setting!r} in {text!r} is not KEY=VALUE")
        try:
            values[key.strip()] = float(raw)
        except ValueError:
            raise LinkSpecError(f"link setting {key.strip()}={raw!r} is not a number") from None
    return with_overrides(PROFILES[name], **values)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--link`` and its overrides, for the stack's and the demo's command lines."""
    profiles = ", ".join(PROFILES)
    group = parser.add_argument_group("the link between the client and the service")
    group.add_argument(
        "--link",
        default="lan",
        metavar="PROFILE",
        help=f"a profile ({profiles}; default lan: no shaping), optionally with overrides "
        "(broadband,loss=0.05)",
    )
    group.add_argument("--rtt", type=float, metavar="MS", help=OVERRIDES["rtt"])
    group.add_argument("--jitter", type=float, metavar="MS", help=OVERRIDES["jitter"])
    group.add_argument("--loss", type=float, metavar="P", help=OVERRIDES["loss"])
    group.add_argument("--up-mbit", type=float, metavar="MBIT", help=OVERRIDES["up"])
    group.add_argument("--down-mbit", type=float, metavar="MBIT", help=OVERRIDES["down"])
    group.add_argument("--link-seed", type=int, metavar="N", help=OVERRIDES["seed"])


def parse_arguments(
    parser: argparse.ArgumentParser, argv: list[str]
) -> tuple[argparse.Namespace, LinkSpec]:
    """``argv`` parsed by ``parser`` (which has :func:`add_arguments`'s options) and the link
    they name; a bad link is the parser's error, like any other bad option."""
    args = parser.parse_args(argv)
    try:
        return args, from_arguments(args)
    except LinkSpecError as e:
        parser.error(str(e))


def from_arguments(args: argparse.Namespace) -> LinkSpec:
    """The spec that :func:`add_arguments`'s options name."""
    return with_overrides(
        parse(args.link),
        rtt=args.rtt,
        jitter=args.jitter,
        loss=args.loss,
        up=args.up_mbit,
        down=args.down_mbit,
        seed=args.link_seed,
    )


def argument_list(args: argparse.Namespace) -> list[str]:
    """:func:`add_arguments`'s options as they were given, to pass on to another command."""
    out = ["--link", args.link]
    for flag, value in (
        ("--rtt", args.rtt),
        ("--jitter", args.jitter),
        ("--loss", args.loss),
        ("--up-mbit", args.up_mbit),
        ("--down-mbit", args.down_mbit),
        ("--link-seed", args.link_seed),
    ):
        if value is not None:
            out += [flag, repr(value)]
    return out
