"""Warm sessions at scale on the local stack: N = 1, 4, 16 warm sessions in one WarmPool.

For each N: time to warm the pool, memory per warm session (RSS delta of this process), CPU
while the pool sits warm and idle, and acquire latency with a non-empty pool (p50/p99).
The emulator runs in its own process, so its costs are not counted here. The reference for idle
CPU is the same pools measured in a second process with livekit's native logs forwarded into
Python (livekit's default, WARMRTC_LIVEKIT_LOGS=1), right after.

Run inside the stack: python -m warmrtc stack -- python benchmarks/sessions.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import warmrtc
from figures import Figure, publish
from warmrtc._media.native_logs import LOGS_ENV
from warmrtc.local.service import LocalService

WIDTH, HEIGHT = 640, 360
IDLE_SECONDS = 5
SETTLE_SECONDS = 4


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(n: int, base_url: str, api_key: str, samples: int) -> dict[str, float]:
    gc.collect()
    rss_before = rss_mib()
    started = time.perf_counter()
    pool = warmrtc.WarmPool(n, width=WIDTH, height=HEIGHT, api_key=api_key, base_url=base_url)
    async with pool:
        await pool.wait_warm(120)
        warm_s = time.perf_counter() - started
        # Let the last negotiations settle, and each session end livekit's keepalive (a few
        # frames after publishing, later when 16 sessions share two cores).
        await asyncio.sleep(SETTLE_SECONDS)
        rss_per_session = (rss_mib() - rss_before) / n

        cpu_before, wall_before = cpu_seconds(), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle_cpu = (cpu_seconds() - cpu_before) / (time.perf_counter() - wall_before)

        latencies: list[float] = []
        while len(latencies) < samples:
            # Take every warm session (each acquire with a non-empty pool), then release them
            # all and wait for the replacements.
            held = []
            for _ in range(min(n, samples - len(latencies))):
                t0 = time.perf_counter()
                taking = pool.acquire(timeout=60)
                await taking.__aenter__()
                latencies.append(time.perf_counter() - t0)
                held.append(taking)
            for taking in held:
                await taking.__aexit__(None, None, None)
            await pool.wait_warm(120)
        failed = pool.stats.failed
    latencies.sort()
    return {
        "n": n,
        "warm_s": warm_s,
        "rss_mib": rss_per_session,
        "idle_cpu": idle_cpu,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e3,
        "samples": len(latencies),
        "failed": failed,
    }


def logs_forwarded(sizes: list[int]) -> dict[int, float]:
    """Idle CPU per pool size with livekit's native logs forwarded into Python, measured by
    this script in a process of its own (the setting holds for a whole process)."""
    cmd = [sys.executable, __file__, "--sizes", *map(str, sizes), "--samples", "1", "--json"]
    env = {**os.environ, LOGS_ENV: "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        print(f"(the reference run failed: {done.stderr.strip()[-500:]})")
        return {}
    return {int(r["n"]): r["idle_cpu"] for r in json.loads(done.stdout.splitlines()[-1])}


async def main(sizes: list[int], samples: int, as_json: bool) -> None:
    with LocalService() as (base_url, api_key):
        # One unreported round first: the livekit runtime's one-time start-up is not a session.
        await measure(1, base_url, api_key, 1)
        rows = [await measure(n, base_url, api_key, samples) for n in sizes]
    if as_json:
        print(json.dumps(rows))
        return
    forwarded = logs_forwarded(sizes)
    print(
        f"{'warm sessions':>13} {'time to warm':>13} {'RSS/session':>12} "
        f"{'idle CPU':>9} {'acquire p50':>12} {'acquire p99':>12}  target"
    )
    for r in rows:
        print(
            f"{r['n']:>13} {r['warm_s']:>11.2f} s {r['rss_mib']:>8.1f} MiB "
            f"{r['idle_cpu'] * 100:>7.1f} % {r['p50_ms']:>9.3f} ms {r['p99_ms']:>9.3f} ms"
            f"  p99 <= 5 ms ({r['samples']} acquires, {r['failed']} failed warm-ups)"
        )
    print("(idle CPU: this process's CPU time over wall time while the pool sat warm, % of a core)")
    publish(
        [
            Figure(
                "sessions",
                f"idle CPU, {r['n']} warm",
                f"{r['idle_cpu'] * 100:.1f} %",
                reference=(
                    f"{forwarded[int(r['n'])] * 100:.1f} % with livekit's logs forwarded"
                    if int(r["n"]) in forwarded
                    else ""
                ),
            )
            for r in rows
        ]
        + [
            Figure(
                "sessions",
                f"acquire p99, {r['n']} warm",
                f"{r['p99_ms']:.3f} ms",
                "<= 5 ms",
                f"p50 {r['p50_ms']:.3f} ms",
                r["p99_ms"] <= 5,
            )
            for r in rows
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--samples", type=int, default=48, help="acquires measured per size")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the reference
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.samples, args.json))
