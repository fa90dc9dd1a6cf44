/* SPDX-License-Identifier: MIT */
/*
 * Runtime lifecycle: configuration, worker start, spawning from anywhere,
 * and the stop sequence. Stop sets rt_stopping (spawns after that create
 * tasks already cancelled), cancels every live task of the runtime found in
 * the task pool, waits until none is left, then stops the workers.
 */
#include "sched/runtime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#include "diag/diag.h"
#include "diag/trace.h"
#include "sched/alloc.h"
#include "sched/park.h"
#include "sched/task.h"
#include "sched/testing.h"

static void rt_free(struct rook_rt *rt)
{
	if (rt->rt_workers) {
		rook__trace_rt_fini(rt); /* the workers are joined */
		/* After a failed rt_alloc, workers past the failing one were
		 * never initialised (w_rt still NULL: nothing to undo). */
		for (unsigned i = 0; i < rt->rt_nworkers; i++)
			if (rt->rt_workers[i].w_rt)
				rook__worker_fini(&rt->rt_workers[i]);
		free(rt->rt_workers);
	}
	rook__stack_pool_fini(&rt->rt_stacks);
	rook__io_rt_fini(rt->rt_io);
	rook__free(rt->rt_idle);
	free(rt);
}

static int rt_alloc(struct rook_rt **out, const struct rook_config *cfg)
{
	struct rook_rt *rt = NULL;
	if (rook__alloc_fail_now() || posix_memalign((void **)&rt, 64, sizeof(*rt)) != 0)
		return -ENOMEM;
	memset(rt, 0, sizeof(*rt));
	rt->rt_nworkers = cfg->workers;
	rt->rt_stack_size = cfg->stack_size;
	rt->rt_flags = cfg->flags;
	atomic_store_explicit(&rt->rt_idle_deadline, UINT64_MAX, memory_order_relaxed);
	rt->rt_ring_entries = cfg->ring_entries;
	rook__stack_pool_init(&rt->rt_stacks, cfg->stack_size);
	void *ws = NULL;
	if (rook__alloc_fail_now() ||
	    posix_memalign(&ws, 64, sizeof(struct rook__worker) * cfg->workers) != 0)
		goto fail;
	rt->rt_workers = ws;
	memset(ws, 0, sizeof(struct rook__worker) * cfg->workers);
	rt->rt_idle = rook__calloc(cfg->workers, sizeof(unsigned));
	if (!rt->rt_idle)
		goto fail;
	for (unsigned i = 0; i < cfg->workers; i++)
		if (rook__worker_init(&rt->rt_workers[i], rt, i) < 0)
			goto fail;
	*out = rt;
	return 0;
fail:
	rt_free(rt);
	return -ENOMEM;
}

int rook_rt_start(struct rook_rt **out, const struct rook_config *cfg)
{
	if (!out)
		return -EINVAL;
	struct rook_config c;
	int r = rook__config_resolve(cfg, &c);
	if (r < 0)
		return r;
	struct rook_rt *rt;
	r = rt_alloc(&rt, &c);
	if (r < 0)
		return r;
	r = rook__topo_plan(rt, !(c.flags & ROOK_NO_PIN));
	if (r < 0)
		goto fail;
	/* Choose the IO backend (one probe per start, one stderr line). */
	r = rook__io_rt_init(&rt->rt_io, rt->rt_nworkers, rt->rt_ring_entries);
	if (r < 0)
		goto fail;
	rook__trace_rt_init(rt);
	rook__stack_install_handler();
	unsigned started = 0;
	for (; started < rt->rt_nworkers; started++) {
		struct rook__worker *w = &rt->rt_workers[started];
		if (pthread_create(&w->w_thread, NULL, rook__worker_main, w) != 0)
			break;
		rook__topo_pin(rt, w);
	}
	r = started < rt->rt_nworkers ? -EAGAIN : 0;
	/* Wait until every started worker has run its park init (pairs with
	 * the release increment in rook__worker_main). */
	while (atomic_load_explicit(&rt->rt_started, memory_order_acquire) < started)
		sched_yield();
	for (unsigned i = 0; i < started && r == 0; i++)
		r = rt->rt_workers[i].w_init_err;
	if (r < 0) {
		atomic_store_explicit(&rt->rt_exit, true, memory_order_seq_cst);
		rook__wake_all(rt);
		for (unsigned i = 0; i < started; i++)
			pthread_join(rt->rt_workers[i].w_thread, NULL);
		goto fail;
	}
	rook__diag_rt_start(rt);
	*out = rt;
	return 0;
fail:
	rt_free(rt);
	return r;
}

int rook_rt_spawn(struct rook_rt *rt, struct rook_task **t, rook_fn fn, void *arg)
{
	if (!rt || !fn)
		return -EINVAL;
	struct rook__worker *w = rook__worker_self();
	if (w && (w->w_rt != rt || !w->w_current))
		w = NULL;
	return rook__spawn(rt, w, t, fn, arg);
}

static uint64_t live_tasks(struct rook_rt *rt)
{
	uint64_t fin = 0, spawned = 0;
	/* Finished counts first: a task counted there was spawned before, so
	 * the difference never undercounts. */
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		fin += atomic_load_explicit(&rt->rt_workers[i].w_nfinished, memory_order_acquire);
	spawned = atomic_load_explicit(&rt->rt_ext_spawned, memory_order_acquire);
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		spawned +=
		    atomic_load_explicit(&rt->rt_workers[i].w_nspawned, memory_order_acquire);
	return spawned - fin;
}

static void cancel_if_ours(struct rook_task *t, void *ctx)
{
	if (!rook__task_tryget(t))
		return;
	if (t->t_rt == ctx)
		rook__task_cancel(t);
	rook__task_put(t);
}

int rook_rt_stop(struct rook_rt *rt)
{
	if (!rt)
		return -EINVAL;
	struct rook__worker *self = rook__worker_self();
	if (self && self->w_rt == rt)
		return -EBUSY;
	rook__diag_rt_stop(rt);
	atomic_store_explicit(&rt->rt_stopping, true, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst);
	rook__task_foreach(cancel_if_ours, rt);
	/* A spawn racing the stop may publish its task after the sweep passed
	 * it and still read no stop (spawn has no fence: it is on every fork
	 * of a fork-join). Such a task is live, so the sweep is repeated, at
	 * doubling intervals from 1 ms, until no task is left; the stop is
	 * visible to spawns by then and they return -EPIPE. */
	struct timespec nap = {0, 100 * 1000};
	unsigned naps = 0, sweep_at = 10;
	while (live_tasks(rt) > 0) {
		nanosleep(&nap, NULL);
		if (++naps == sweep_at) {
			rook__task_foreach(cancel_if_ours, rt);
			sweep_at = sweep_at < 1000 ? sweep_at * 2 : sweep_at + 1000;
		}
	}
	atomic_store_explicit(&rt->rt_exit, true, memory_order_seq_cst);
	rook__wake_all(rt);
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		pthread_join(rt->rt_workers[i].w_thread, NULL);
	rt_free(rt);
	return 0;
}

int rook_run(const struct rook_config *cfg, rook_fn main, void *arg)
{
	if (!main)
		return -EINVAL;
	if (rook_self())
		return -EBUSY;
	struct rook_rt *rt;
	int r = rook_rt_start(&rt, cfg);
	if (r < 0)
		return r;
	struct rook_task *t;
	int status = 0;
	r = rook_rt_spawn(rt, &t, main, arg);
	if (r == 0)
		r = rook_join(t, &status);
	rook_rt_stop(rt);
	return r < 0 ? r : status;
}

const char *rook_io_backend(void)
{
	struct rook__worker *w = rook__worker_self();
	return w ? rook__io_rt_backend(w->w_rt->rt_io) : NULL;
}
