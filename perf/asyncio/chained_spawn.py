#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""chained_spawn: a chain of D tasks, each spawns the next and ends; the
last one resolves a future the main task awaits."""
import asyncio

from common import check, run


async def chained_spawn(D):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    background = set()  # strong references: the loop keeps only weak ones

    async def link(n):
        if n == D:
            done.set_result(n)
            return
        t = asyncio.create_task(link(n + 1))
        background.add(t)
        t.add_done_callback(background.discard)

    first = asyncio.create_task(link(1))
    depth = await done
    await first
    check("chained_spawn depth", depth, D)
    return D, {}


if __name__ == "__main__":
    run("chained_spawn", chained_spawn, full=dict(D=1_000_000), default=dict(D=250_000),
        quick=dict(D=10_000))
