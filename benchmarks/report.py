"""`make bench`: every benchmark in one run, then one table of every figure beside its target.

Each benchmark runs as its own process (inside the local stack when `make bench` starts this in
one), writes its figures to a shared file (see figures.py) and its own output to a log under
.cache/bench/; this prints a line as each starts and ends, then the table. Exit status 1 if a
benchmark failed to run (a missed target is reported in the table, not as a failure).

Run: python -m warmrtc stack -- python benchmarks/report.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from figures import FIGURES_ENV, read, table

HERE = Path(__file__).resolve().parent
LOGS = HERE.parent / ".cache" / "bench"
# (script, arguments, about how long it takes on the 2-core development machine)
BENCHMARKS = [
    ("capture.py", [], "3 min"),
    ("cold_start.py", [], "3 min"),
    ("warm_start.py", ["--runs", "12", "--idle", "3"], "3 min"),
    ("receive.py", [], "1 min"),
    ("sessions.py", [], "4 min"),
    ("latency.py", [], "1 min"),
    ("session_memory.py", [], "4 min"),
]
TIMEOUT = 20 * 60  # one benchmark, at most


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    names = [name.removesuffix(".py") for name, _, _ in BENCHMARKS]
    p.add_argument("--only", nargs="+", choices=names, help="run these benchmarks only")
    args = p.parse_args()
    LOGS.mkdir(parents=True, exist_ok=True)
    figures_path = LOGS / "figures.jsonl"
    figures_path.unlink(missing_ok=True)
    env = {**os.environ, FIGURES_ENV: str(figures_path)}
    failed = []
    for script, extra, about in BENCHMARKS:
        name = script.removesuffix(".py")
        if args.only and name not in args.only:
            continue
        if not (HERE / script).exists():
            continue
        log = LOGS / f"{name}.log"
        print(f"bench: {name} (about {about}; output in {log})", flush=True)
        started = time.monotonic()
        with open(log, "w") as out:
            try:
                code = subprocess.run(
                    [sys.executable, str(HERE / script), *extra],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=TIMEOUT,
                ).returncode
            except subprocess.TimeoutExpired:
                code = -1
        took = time.monotonic() - started
        if code != 0:
            failed.append(name)
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"bench: {name} FAILED ({code}) after {took:.0f} s:", *tail, sep="\n  ")
        else:
            print(f"bench: {name} done in {took:.0f} s", flush=True)
    figures = read(str(figures_path)) if figures_path.exists() else []
    print()
    print(table(figures))
    missed = [f.name for f in figures if f.met is False]
    print(f"\n{len(figures)} figures, {len(missed)} missed their target", end="")
    print(f"; benchmarks that failed to run: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
