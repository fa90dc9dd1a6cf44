#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""tcp_echo: an asyncio streams echo server and C client connections on
127.0.0.1 in the same event loop; each client does R round trips of 64
bytes (payload unique per connection and round) and checks every echoed
byte. Reports p50_us and p99_us over every round trip."""
import asyncio
import time

from common import check, run

MSG = 64


async def serve(reader, writer):
    try:
        while data := await reader.read(16384):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


async def client(port, cid, R, lat):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    bad = 0
    for r in range(R):
        out = (cid * R + r).to_bytes(8, "little") * (MSG // 8)
        t0 = time.perf_counter_ns()
        writer.write(out)
        await writer.drain()
        back = await reader.readexactly(MSG)
        lat.append(time.perf_counter_ns() - t0)
        bad += back != out
    writer.close()
    await writer.wait_closed()
    return bad


async def tcp_echo(C, R):
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    lat = []
    async with server:
        bad = await asyncio.gather(*(client(port, c, R, lat) for c in range(C)))
    check("tcp_echo bad round trips", sum(bad), 0)
    check("tcp_echo round trips", len(lat), C * R)
    lat.sort()
    n = len(lat)
    return n, {"p50_us": f"{lat[n // 2] / 1e3:.1f}", "p99_us": f"{lat[n * 99 // 100] / 1e3:.1f}"}


if __name__ == "__main__":
    run("tcp_echo", tcp_echo, full=dict(C=100, R=10_000), default=dict(C=100, R=1000),
        quick=dict(C=100, R=200))
