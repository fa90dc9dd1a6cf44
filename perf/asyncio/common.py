# SPDX-License-Identifier: MIT
"""Shared driver of rook's asyncio workloads (perf/asyncio/*.py).

Each workload file is a small idiomatic asyncio program for one workload of
shared/bench/WORKLOADS.md: the single-threaded event-loop model that rook's
M:N runtime is compared with. It calls bench.run() with its coroutine and
its sizes; this module parses the command line, picks the event loop, times
the coroutine (inside the running loop, as rook-perf times inside the
runtime), and prints the BENCH line:

    BENCH workload=W impl=asyncio|uvloop threads=1 ops=N wall_s=S ops_per_s=R [extras]

Options of every workload file:
    --loop asyncio|uvloop   event loop (default: uvloop when importable)
    --quick                 rook-perf's --quick sizes (smoke runs)
    --full                  the WORKLOADS.md sizes even where the default is
                            reduced for Python's speed

Sizes: where the WORKLOADS.md size takes Python more than ~10 s the default
is reduced (the BENCH line says so with size= and reduced=1); ops counts the
work actually done, so ops/s stays comparable. A wrong answer prints
"CHECK FAILED: ..." on stderr and exits 1; PEERBENCH_WRONG=1 perturbs every
answer to show the checks fire. Exit 2: usage error or the loop is missing.
"""
import argparse
import asyncio
import os
import sys
import time

WRONG = 1 if os.environ.get("PEERBENCH_WRONG") == "1" else 0


class CheckFailed(Exception):
    pass


def check(what, got, want):
    """Raise CheckFailed unless got (+1 under PEERBENCH_WRONG=1) == want."""
    got += WRONG
    if got != want:
        raise CheckFailed(f"{what}: got {got} want {want}")


def _uvloop_factory():
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _parse(name, argv):
    p = argparse.ArgumentParser(prog=f"{name}.py",
                                description=f"the {name} workload on asyncio")
    p.add_argument("--loop", choices=("asyncio", "uvloop"),
                   default="uvloop" if _uvloop_factory() else "asyncio")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="smoke-test sizes")
    g.add_argument("--full", action="store_true", help="WORKLOADS.md sizes")
    return p.parse_args(argv)


def run(name, workload, full, default=None, quick=None, argv=None):
    """Run `await workload(**size)` once and print its BENCH line.

    workload returns (ops, extras) where extras is a dict of key=value
    fields for the BENCH line. full is the WORKLOADS.md size, default the
    size used without --full (None: full), quick the --quick size.
    """
    args = _parse(name, sys.argv[1:] if argv is None else argv)
    size = quick if args.quick else full if args.full else (default or full)
    factory = None
    if args.loop == "uvloop":
        factory = _uvloop_factory()
        if factory is None:
            print(f"{name}: uvloop is not importable", file=sys.stderr)
            sys.exit(2)
    result = {}

    async def timed():
        t0 = time.perf_counter()
        result["ops"], result["extras"] = await workload(**size)
        result["wall"] = time.perf_counter() - t0

    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(timed())
    except CheckFailed as e:
        print(f"CHECK FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    ops, wall = result["ops"], result["wall"]
    extras = dict(result["extras"])
    extras["size"] = ",".join(f"{k}={v}" for k, v in size.items())
    if size != full:
        extras["reduced" if not args.quick else "quick"] = 1
    tail = "".join(f" {k}={v}" for k, v in extras.items())
    print(f"BENCH workload={name} impl={args.loop} threads=1 ops={ops} "
          f"wall_s={wall:.6f} ops_per_s={ops / wall:.1f}{tail}", flush=True)
