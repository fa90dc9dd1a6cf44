#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""proc_spawn: N /bin/true children spawned with
asyncio.create_subprocess_exec and waited, all at once; every exit status
checked."""
import asyncio

from common import check, run


async def proc_spawn(N):
    async def one():
        p = await asyncio.create_subprocess_exec("/bin/true")
        return await p.wait()

    codes = await asyncio.gather(*(one() for _ in range(N)))
    check("proc_spawn exits", sum(1 for c in codes if c == 0), N)
    return N, {}


if __name__ == "__main__":
    run("proc_spawn", proc_spawn, full=dict(N=1000), quick=dict(N=100))
