"""A process with a WarmPool on a shared RedisBudget, for test_pool_under_limits: it prints its
pool's stats as JSON once every 0.2 s until it is killed (or 120 s have passed)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import warmrtc


async def main(redis_url: str, base_url: str, api_key: str) -> None:
    budget = warmrtc.RedisBudget(redis_url, 2, name="e2e", lease_ttl=3)
    async with warmrtc.WarmPool(
        2, budget=budget, width=320, height=240, api_key=api_key, base_url=base_url,
        release_delay=1.0, crash_release_delay=3.0,
    ) as pool:  # fmt: skip
        for _ in range(600):
            print(json.dumps(dataclasses.asdict(pool.stats)), flush=True)
            await asyncio.sleep(0.2)
    await budget.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
