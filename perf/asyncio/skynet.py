#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""skynet: a 10-ary tree of tasks; leaf i returns i, parents gather and sum
their children. The sum of leaves 0..L-1 is L*(L-1)/2."""
import asyncio

from common import check, run


async def skynet_node(num, size):
    if size == 1:
        return num
    sub = size // 10
    children = [asyncio.create_task(skynet_node(num + i * sub, sub)) for i in range(10)]
    return sum(await asyncio.gather(*children))


async def skynet(LEAVES):
    total = await asyncio.create_task(skynet_node(0, LEAVES))
    check("skynet sum", total, LEAVES * (LEAVES - 1) // 2)
    tasks, level = 0, LEAVES
    while level:
        tasks += level
        level //= 10
    return tasks, {}


if __name__ == "__main__":
    run("skynet", skynet, full=dict(LEAVES=1_000_000), default=dict(LEAVES=100_000),
        quick=dict(LEAVES=10_000))
