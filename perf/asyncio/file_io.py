#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""file_io: write F files of 4 MiB concurrently (one task per file, 64 KiB
writes), fsync, then read them all back concurrently and compare CRC32s.

asyncio has no asynchronous file IO: the idiom (aiofiles' model) runs each
blocking call in the default thread pool with asyncio.to_thread, so the
event loop stays one thread while the IO runs on pool threads (reported as
executor_threads). ops = MiB written + read."""
import asyncio
import os
import shutil
import tempfile
import time
import zlib

from common import check, run

FILE_MIB, CHUNK = 4, 64 * 1024


def chunk_data(fid, i, pattern):
    return fid.to_bytes(8, "little") + i.to_bytes(8, "little") + pattern[16:]


async def write_file(path, fid):
    pattern = bytes((fid * 31 + k) & 0xFF for k in range(256)) * (CHUNK // 256)
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    crc = 0
    try:
        for i in range(FILE_MIB * 1024 * 1024 // CHUNK):
            data = chunk_data(fid, i, pattern)
            crc = zlib.crc32(data, crc)
            n = await asyncio.to_thread(os.pwrite, fd, data, i * CHUNK)
            check("file_io short write", n, CHUNK)
        await asyncio.to_thread(os.fsync, fd)
    finally:
        await asyncio.to_thread(os.close, fd)
    return crc


async def read_file(path):
    fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
    crc = 0
    try:
        for i in range(FILE_MIB * 1024 * 1024 // CHUNK):
            data = await asyncio.to_thread(os.pread, fd, CHUNK, i * CHUNK)
            check("file_io short read", len(data), CHUNK)
            crc = zlib.crc32(data, crc)
    finally:
        await asyncio.to_thread(os.close, fd)
    return crc


async def file_io(F):
    d = tempfile.mkdtemp(prefix="rook-asyncio-file_io-")
    try:
        paths = [os.path.join(d, f"f{i:03d}") for i in range(F)]
        t0 = time.perf_counter()
        written = await asyncio.gather(*(write_file(p, i) for i, p in enumerate(paths)))
        t1 = time.perf_counter()
        read = await asyncio.gather(*(read_file(p) for p in paths))
        t2 = time.perf_counter()
    finally:
        shutil.rmtree(d, ignore_errors=True)  # timed too: small next to 1 GiB of IO
    check("file_io checksum mismatches", sum(w != r for w, r in zip(written, read)), 0)
    workers = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
    return F * FILE_MIB * 2, {"write_s": f"{t1 - t0:.3f}", "read_s": f"{t2 - t1:.3f}",
                              "executor_threads": workers}


if __name__ == "__main__":
    run("file_io", file_io, full=dict(F=256), quick=dict(F=16))
