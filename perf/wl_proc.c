/* SPDX-License-Identifier: MIT */
/*
 * proc_spawn (rook's own, beyond WORKLOADS.md): 1,000 /bin/true children,
 * one task each, all spawned and waited at once; every exit status is
 * checked. The peers are perf/asyncio/proc_spawn.py
 * (asyncio.create_subprocess_exec) and perf/go/proc_spawn.go (os/exec).
 */
#include <stdatomic.h>
#include <sys/wait.h>

#include "perf/perf.h"

static _Atomic long proc_ok;

static int proc_one(void *arg)
{
	(void)arg;
	const char *argv[] = {"/bin/true", NULL};
	struct rook_process_opts o = {.argv = argv};
	struct rook_process *p;
	int r = rook_process_spawn(&p, &o);
	if (r)
		return r;
	int st = -1;
	r = rook_process_wait(p, &st);
	rook_process_free(p);
	if (r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		atomic_fetch_add_explicit(&proc_ok, 1, memory_order_relaxed);
	return r;
}

int perf_proc_spawn(struct perf_run *run)
{
	size_t n = run->pr_quick ? 100 : 1000;
	atomic_store(&proc_ok, 0);
	int r = perf_spawn_join(n, proc_one, NULL);
	if (r)
		return r;
	run->pr_ops = n;
	perf_check(run, "proc_spawn exits", atomic_load(&proc_ok), (int64_t)n);
	return 0;
}
