/* SPDX-License-Identifier: MIT */
/*
 * Flat task workloads: spawn_many, yield_many and chained_spawn
 * (shared/bench/WORKLOADS.md). Each runs inside rook's main task and keeps
 * the peers' shape: spawn_many puts all N tasks in flight before waiting for
 * any; chained_spawn has only one live link at a time. spawn_many and
 * yield_many wait with rook_join; chained_spawn's main task waits on an
 * event that the last link sets (as the peers wait on a oneshot channel or
 * a WaitGroup), so it does not keep a worker busy polling.
 */
#include <errno.h>
#include <stdatomic.h>

#include "perf/perf.h"

/* ---- spawn_many ----------------------------------------------------- */

static int spawn_many_task(void *arg)
{
	atomic_long *counter = arg;

	/* Relaxed: the join that follows orders it before the final load. */
	atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	return 0;
}

int perf_spawn_many(struct perf_run *run)
{
	size_t n = run->pr_quick ? 10000 : 1000000;
	atomic_long counter = 0;
	int rc = perf_spawn_join(n, spawn_many_task, &counter);

	if (rc == 0) {
		/* Pairs with the tasks' increments through rook_join. */
		long got = atomic_load_explicit(&counter, memory_order_relaxed);
		perf_check(run, "spawn_many counter", got, (int64_t)n);
	}
	run->pr_ops = n;
	return rc;
}

/* ---- yield_many ----------------------------------------------------- */

struct yield_job {
	long yj_yields;          /* per task */
	atomic_long yj_finished; /* tasks that did all their yields */
};

static int yield_many_task(void *arg)
{
	struct yield_job *job = arg;

	for (long i = 0; i < job->yj_yields; i++) {
		int rc = rook_yield();
		if (rc < 0)
			return rc;
	}
	/* Relaxed: read by the main task only after joining this task. */
	atomic_fetch_add_explicit(&job->yj_finished, 1, memory_order_relaxed);
	return 0;
}

int perf_yield_many(struct perf_run *run)
{
	size_t tasks = run->pr_quick ? 100 : 1000;
	struct yield_job job = {.yj_yields = run->pr_quick ? 100 : 1000};

	atomic_init(&job.yj_finished, 0);
	int rc = perf_spawn_join(tasks, yield_many_task, &job);
	if (rc == 0) {
		long got = atomic_load_explicit(&job.yj_finished, memory_order_relaxed);
		perf_check(run, "yield_many finished", got, (int64_t)tasks);
	}
	run->pr_ops = (uint64_t)tasks * (uint64_t)job.yj_yields;
	return rc;
}

/* ---- chained_spawn -------------------------------------------------- */

struct chain {
	long ch_depth;              /* links wanted */
	atomic_long ch_links;       /* links that have run */
	atomic_int ch_status;       /* 0, or the first spawn error of a link */
	struct rook_event *ch_done; /* set by the last link, or a failing one */
};

static void chain_finish(struct chain *c, int status)
{
	atomic_store_explicit(&c->ch_status, status, memory_order_relaxed);
	/* The event orders the store above before the main task's wake-up. */
	rook_event_set(c->ch_done);
}

static int chain_link(void *arg)
{
	struct chain *c = arg;
	long n = atomic_fetch_add_explicit(&c->ch_links, 1, memory_order_relaxed) + 1;

	if (n >= c->ch_depth) {
		chain_finish(c, 0);
		return 0;
	}
	int rc = rook_spawn(NULL, chain_link, c);
	if (rc < 0)
		chain_finish(c, rc);
	return rc;
}

int perf_chained_spawn(struct perf_run *run)
{
	struct chain c = {.ch_depth = run->pr_quick ? 10000 : 1000000};
	int rc;

	atomic_init(&c.ch_links, 0);
	atomic_init(&c.ch_status, 0);
	rc = rook_event_create(&c.ch_done);
	if (rc < 0)
		return rc;
	rc = rook_spawn(NULL, chain_link, &c);
	if (rc == 0)
		rc = rook_event_wait(c.ch_done);
	if (rc < 0)
		return rc; /* a link may still use the event: left to the process */
	rook_event_destroy(c.ch_done);
	rc = atomic_load_explicit(&c.ch_status, memory_order_relaxed);
	if (rc == 0) {
		long got = atomic_load_explicit(&c.ch_links, memory_order_relaxed);
		perf_check(run, "chained_spawn depth", got, c.ch_depth);
	}
	run->pr_ops = (uint64_t)c.ch_depth;
	return rc;
}
