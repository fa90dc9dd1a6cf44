#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""fib: fib(n) where every call with n >= 2 spawns fib(n-1) as a task,
computes fib(n-2) itself, then awaits the task. ops = tasks spawned."""
import asyncio

from common import check, run


async def fib_task(n):
    if n < 2:
        return n
    t = asyncio.create_task(fib_task(n - 1))
    b = await fib_task(n - 2)
    return await t + b


def fib_iter(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


async def fib(n):
    check(f"fib({n})", await fib_task(n), fib_iter(n))
    return fib_iter(n + 1) - 1, {}  # calls with n >= 2


if __name__ == "__main__":
    run("fib", fib, full=dict(n=30), default=dict(n=25), quick=dict(n=20))
