#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""yield_many: T tasks each yield to the event loop Y times
(asyncio.sleep(0) is asyncio's yield); wait for all."""
import asyncio

from common import check, run


async def yield_many(T, Y):
    finished = 0

    async def yielder():
        nonlocal finished
        for _ in range(Y):
            await asyncio.sleep(0)
        finished += 1

    async with asyncio.TaskGroup() as tg:
        for _ in range(T):
            tg.create_task(yielder())
    check("yield_many finished", finished, T)
    return T * Y, {}


if __name__ == "__main__":
    run("yield_many", yield_many, full=dict(T=1000, Y=1000), quick=dict(T=100, Y=100))
