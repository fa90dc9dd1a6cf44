#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""spawn_many: spawn N tiny tasks from one task, each adds 1 to a counter;
wait for all of them (a TaskGroup waits for its children)."""
import asyncio

from common import check, run


async def spawn_many(N):
    counter = 0

    async def tiny():
        nonlocal counter
        counter += 1

    async with asyncio.TaskGroup() as tg:
        for _ in range(N):
            tg.create_task(tiny())
    check("spawn_many counter", counter, N)
    return N, {}


if __name__ == "__main__":
    run("spawn_many", spawn_many, full=dict(N=1_000_000), default=dict(N=250_000),
        quick=dict(N=10_000))
