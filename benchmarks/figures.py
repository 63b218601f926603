"""One figure of a benchmark beside its target, and the table `make bench` prints.

Each benchmark prints its own table when run alone and, when ``WARMRTC_BENCH_FIGURES`` names a
file, also appends its figures to it (one JSON object a line), so that ``benchmarks/report.py``
prints every figure of one ``make bench`` run in one table.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass

FIGURES_ENV = "WARMRTC_BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    """A measured figure: ``measured`` and ``reference`` as printed (units included),
    ``target`` in words, ``met`` None where the figure has no target (a reading)."""

    benchmark: str
    name: str
    measured: str
    target: str = ""
    reference: str = ""
    met: bool | None = None
    on_link: bool = False  # a target set for the link in force: it keeps its verdict there

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("ok" if self.met else "MISSED")


def table(figures: Iterable[Figure]) -> str:
    rows = [("benchmark", "figure", "measured", "reference", "target", "")]
    rows += [(f.benchmark, f.name, f.measured, f.reference, f.target, f.verdict) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[2].rjust(widths[2]), row[3].rjust(widths[3]), row[4].ljust(widths[4])]
        lines.append("  ".join([*cells, row[5]]).rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 2 * 5 + 6))
    return "\n".join(lines)


def publish(figures: list[Figure]) -> None:
    """Prints the figures as a table, and appends them to the run's file when one is named.
    Behind a shaped link (``warmrtc stack --link``, or ``report.py --link``), each figure is
    tagged with the link's profile, and its target, set for the local stack as it is, becomes
    a note (no verdict)."""
    link = os.environ.get("WARMRTC_LINK", "lan")
    if link != "lan":
        figures = [
            Figure(
                benchmark=f"{f.benchmark}@{link}",
                name=f.name,
                measured=f.measured,
                target=f.target if f.on_link else (f"({f.target} on lan)" if f.target else ""),
                reference=f.reference,
                met=f.met if f.on_link else None,
                on_link=f.on_link,
            )
            for f in figures
        ]
    print(table(figures))
    path = os.environ.get(FIGURES_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            for figure in figures:
                f.write(json.dumps(asdict(figure)) + "\n")


@dataclass(frozen=True)
class LinkFacts:
    """The link the benchmark runs behind: its round trip and loss (0 for lan)."""

    rtt_ms: float = 0.0
    loss: float = 0.0

    @property
    def shaped(self) -> bool:
        return os.environ.get("WARMRTC_LINK", "lan") != "lan"


def link_facts() -> LinkFacts:
    """The round trip and loss of the link in force, asked of its control socket."""
    from warmrtc.local.link import Link, LinkError

    try:
        spec = Link.from_env().spec()
    except LinkError:
        return LinkFacts()
    return LinkFacts(spec.up.delay_ms + spec.down.delay_ms, max(spec.up.loss, spec.down.loss))


def read(path: str) -> list[Figure]:
    with open(path, encoding="utf-8") as f:
        return [Figure(**json.loads(line)) for line in f if line.strip()]
