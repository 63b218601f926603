"""`make bench`: every benchmark in one run, then one table of every figure beside its target.

Each benchmark runs as its own process (inside the local stack when `make bench` starts this in
one), writes its figures to a shared file (see figures.py) and its own output to a log under
.cache/bench/; this prints a line as each starts and ends, then the table. Exit status 1 if a
benchmark failed to run (a missed target is reported in the table, not as a failure).

``--link PROFILE ...`` runs them behind a link of each profile in turn (see
warmrtc.local.linkspec: ``broadband``, ``lossy,loss=0.05``, ...; default lan, the stack as it
is): each benchmark's client side in a namespace behind the link, the emulator and
livekit-server on the stack's side; their figures are tagged with the profile.

Run: python -m warmrtc stack -- python benchmarks/report.py [--only NAME ...] [--link P ...]
(`make bench BENCH_ARGS="--link broadband lossy --only cold_start warm_start"`)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from figures import FIGURES_ENV, read, table
from warmrtc.local import linkspec
from warmrtc.local.link import ClientLink

HERE = Path(__file__).resolve().parent
LOGS = HERE.parent / ".cache" / "bench"
# (script, arguments, about how long it takes on the 2-core development machine)
BENCHMARKS = [
    ("capture.py", [], "3 min"),
    ("cold_start.py", [], "3 min"),
    ("warm_start.py", ["--runs", "12", "--idle", "3"], "3 min"),
    ("start_steps.py", ["--runs", "5"], "3 min"),
    ("receive.py", [], "1 min"),
    ("sessions.py", [], "4 min"),
    ("latency.py", [], "1 min"),
    ("link.py", [], "1 min"),
    ("session_memory.py", [], "4 min"),
    ("resilience.py", ["--runs", "3"], "10 min"),
]
LAN_ONLY = {"capture", "link", "resilience"}  # no service traffic, or links of their own
TIMEOUT = 20 * 60  # one benchmark, at most


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    names = [name.removesuffix(".py") for name, _, _ in BENCHMARKS]
    p.add_argument("--only", nargs="+", choices=names, help="run these benchmarks only")
    p.add_argument(
        "--link",
        nargs="+",
        default=["lan"],
        metavar="PROFILE",
        help=f"run behind a link of each profile ({', '.join(linkspec.PROFILES)}; overrides "
        "as in broadband,loss=0.05)",
    )
    args = p.parse_args()
    try:
        links = [linkspec.parse(text) for text in args.link]
    except linkspec.LinkSpecError as e:
        p.error(str(e))
    LOGS.mkdir(parents=True, exist_ok=True)
    figures_path = LOGS / "figures.jsonl"
    figures_path.unlink(missing_ok=True)
    env = {**os.environ, FIGURES_ENV: str(figures_path)}
    failed = []
    for link in links:
        for script, extra, about in BENCHMARKS:
            name = script.removesuffix(".py")
            if args.only and name not in args.only:
                continue
            if not (HERE / script).exists() or (link.shaped and name in LAN_ONLY):
                continue
            tag = name if not link.shaped else f"{name}@{link.name}"
            if run_one(tag, [sys.executable, str(HERE / script), *extra], about, env, link):
                failed.append(tag)
    figures = read(str(figures_path)) if figures_path.exists() else []
    print()
    print(table(figures))
    missed = [f.name for f in figures if f.met is False]
    print(f"\n{len(figures)} figures, {len(missed)} missed their target", end="")
    print(f"; benchmarks that failed to run: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


def run_one(
    tag: str, command: list[str], about: str, env: dict[str, str], link: linkspec.LinkSpec
) -> bool:
    """Runs one benchmark (behind ``link`` if it is shaped), its output to its log; False if
    it ran, True if it failed."""
    log = LOGS / f"{tag.replace('/', '_')}.log"
    print(f"bench: {tag} (about {about}; output in {log})", flush=True)
    started = time.monotonic()
    with open(log, "w") as out:
        client_link = ClientLink(link) if link.shaped else None
        try:
            if client_link is not None:
                command, env = client_link.command(command), client_link.environment(env)
            code = subprocess.run(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=TIMEOUT
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
        finally:
            if client_link is not None:
                print(f"link: {client_link.control.stats()}", file=out)
                client_link.close()
    took = time.monotonic() - started
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        print(f"bench: {tag} FAILED ({code}) after {took:.0f} s:", *tail, sep="\n  ")
        return True
    print(f"bench: {tag} done in {took:.0f} s", flush=True)
    return False


if __name__ == "__main__":
    sys.exit(main())
