#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""mpmc_queue: 4 producers and 4 consumers move the integers 1..N through
one bounded queue of capacity 1,024; the consumers' sums must add up to
N*(N+1)/2. Each consumer stops at its end-of-stream sentinel."""
import asyncio

from common import check, run

PRODUCERS, CONSUMERS, CAPACITY = 4, 4, 1024


async def producer(q, lo, hi):
    for i in range(lo, hi):
        await q.put(i)


async def consumer(q):
    total = 0
    while (v := await q.get()) is not None:
        total += v
    return total


async def mpmc_queue(N):
    q = asyncio.Queue(maxsize=CAPACITY)
    per = N // PRODUCERS
    async with asyncio.TaskGroup() as tg:
        consumers = [tg.create_task(consumer(q)) for _ in range(CONSUMERS)]
        async with asyncio.TaskGroup() as producers:
            for p in range(PRODUCERS):
                lo = 1 + p * per
                producers.create_task(producer(q, lo, N + 1 if p == PRODUCERS - 1 else lo + per))
        for _ in range(CONSUMERS):
            await q.put(None)
    check("mpmc_queue sum", sum(c.result() for c in consumers), N * (N + 1) // 2)
    return N, {}


if __name__ == "__main__":
    run("mpmc_queue", mpmc_queue, full=dict(N=10_000_000), default=dict(N=1_000_000),
        quick=dict(N=100_000))
