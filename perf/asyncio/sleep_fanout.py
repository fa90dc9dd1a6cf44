#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sleep_fanout: N tasks each sleep 100 ms; gather all. Reports
overhead_ms = wall - 100 ms (the timer wheel's and the wake-ups' cost)."""
import asyncio
import time

from common import check, run

SLEEP_S = 0.1


async def sleep_fanout(N):
    woke = 0

    async def sleeper():
        nonlocal woke
        await asyncio.sleep(SLEEP_S)
        woke += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(sleeper() for _ in range(N)))
    wall = time.perf_counter() - t0
    check("sleep_fanout woke", woke, N)
    check("sleep_fanout slept at least 100 ms", wall >= SLEEP_S, True)
    return N, {"overhead_ms": f"{(wall - SLEEP_S) * 1000:.2f}"}


if __name__ == "__main__":
    run("sleep_fanout", sleep_fanout, full=dict(N=100_000), quick=dict(N=10_000))
