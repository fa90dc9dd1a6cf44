#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ping_pong: P pairs of tasks pass a counter back and forth R round trips
over one-slot queues; every pair must count R."""
import asyncio

from common import check, run


async def pinger(ping, pong, R):
    v = 0
    for _ in range(R):
        await ping.put(v)
        v = await pong.get()
    await ping.put(None)  # tells the ponger to stop
    return v


async def ponger(ping, pong):
    while (v := await ping.get()) is not None:
        await pong.put(v + 1)


async def ping_pong(P, R):
    async with asyncio.TaskGroup() as tg:
        pingers = []
        for _ in range(P):
            ping, pong = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
            tg.create_task(ponger(ping, pong))
            pingers.append(tg.create_task(pinger(ping, pong, R)))
    counts = [t.result() for t in pingers]
    check("ping_pong pairs with R round trips", sum(c == R for c in counts), P)
    return P * R, {}


if __name__ == "__main__":
    run("ping_pong", ping_pong, full=dict(P=1000, R=1000), default=dict(P=1000, R=100),
        quick=dict(P=100, R=100))
