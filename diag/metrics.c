/* SPDX-License-Identifier: MIT */
/*
 * rook_stats and rook_stats_write: the per-worker counters of struct
 * rook__wdiag (diag/tdiag.h) and the scheduler's own per-worker counts,
 * summed when someone asks. Nothing here runs unless called.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#include "diag/diag.h"
#include "diag/stats.h"
#include "diag/trace.h"
#include "io/blocking.h"
#include "sched/alloc.h"
#include "sched/runtime.h"
#include "sched/testing.h"
#include "sched/worker.h"

static uint64_t ld(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

ROOK__DIAG_NOSAN static bool worker_running(struct rook__worker *w)
{
	return __atomic_load_n(&w->w_current, __ATOMIC_RELAXED) != NULL;
}

void rook__diag_io(enum rook__diag_io which)
{
	struct rook__worker *w = rook__worker_self();
	if (!w)
		return;
	struct rook__wdiag *d = &w->w_ds;
	if (w->w_trace)
		rook__trace_event(w, ROOK__TR_IO, rook__now(),
				  which == ROOK__DIAG_IO_SUBMITTED   ? 0
				  : which == ROOK__DIAG_IO_COMPLETED ? 1
								     : 2,
				  0);
	rook__diag_inc(which == ROOK__DIAG_IO_SUBMITTED   ? &d->d_io_submitted
		       : which == ROOK__DIAG_IO_COMPLETED ? &d->d_io_completed
							  : &d->d_io_cancelled,
		       1);
}

static void worker_fill(struct rook__worker *w, struct rook_worker_stats *ws)
{
	memset(ws, 0, sizeof(*ws));
	ws->spawned = atomic_load_explicit(&w->w_nspawned, memory_order_acquire);
	ws->finished = atomic_load_explicit(&w->w_nfinished, memory_order_acquire);
	ws->rounds = ld(&w->w_ds.d_hb);
	ws->steal_attempts = ld(&w->w_ds.d_steal_tries);
	ws->stolen = ld(&w->w_ds.d_stolen);
	ws->parks = ld(&w->w_ds.d_parks);
	int64_t q = rook__deque_size(&w->w_deque);
	q += atomic_load_explicit(&w->w_yield_len, memory_order_relaxed);
	q += atomic_load_explicit(&w->w_lifo, memory_order_relaxed) != NULL;
	ws->runq_depth = q > 0 ? (uint64_t)q : 0;
	ws->io_submitted = ld(&w->w_ds.d_io_submitted);
	ws->io_completed = ld(&w->w_ds.d_io_completed);
	ws->io_cancelled = ld(&w->w_ds.d_io_cancelled);
	ws->timers_armed = ld(&w->w_ds.d_timers_armed);
	ws->timers_fired = ld(&w->w_ds.d_timers_fired);
	ws->running = worker_running(w);
}

static int fill(struct rook_rt *rt, void *ctx)
{
	struct rook_stats *st = ctx;
	memset(st, 0, sizeof(*st));
	st->nworkers = rt->rt_nworkers;
	/* Finished first: a task counted there was counted as spawned. */
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		st->tasks_finished +=
		    atomic_load_explicit(&rt->rt_workers[i].w_nfinished, memory_order_acquire);
	st->tasks_spawned = atomic_load_explicit(&rt->rt_ext_spawned, memory_order_acquire);
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		struct rook_worker_stats ws;
		worker_fill(&rt->rt_workers[i], &ws);
		st->tasks_spawned += ws.spawned;
		st->steal_attempts += ws.steal_attempts;
		st->stolen += ws.stolen;
		st->parks += ws.parks;
		st->runq_depth += ws.runq_depth;
		st->io_submitted += ws.io_submitted;
		st->io_completed += ws.io_completed;
		st->io_cancelled += ws.io_cancelled;
		st->timers_armed += ws.timers_armed;
		st->timers_fired += ws.timers_fired;
		if (i < ROOK_STATS_WORKERS)
			st->workers[i] = ws;
	}
	st->tasks_live =
	    st->tasks_spawned > st->tasks_finished ? st->tasks_spawned - st->tasks_finished : 0;
	st->injection_depth = atomic_load_explicit(&rt->rt_inj_len, memory_order_relaxed);
	st->blocking_threads = rook__blocking_threads();
	struct rook__stats ps;
	rook__stats_get(&ps);
	st->stacks_in_use = ps.stacks_in_use;
	struct rook__stack_pool *p = &rt->rt_stacks;
	rook__spin_lock(&p->p_lock);
	for (struct rook__stack_region *r = p->p_regions; r; r = r->r_next)
		st->stack_bytes_reserved += r->r_len;
	rook__spin_unlock(&p->p_lock);
	st->longest_run_ns = rook__diag_longest_ns(rt);
	return 0;
}

int rook_stats(struct rook_stats *out, size_t size)
{
	if (!out || size < offsetof(struct rook_stats, workers))
		return -EINVAL;
	struct rook_stats *st = rook__alloc(sizeof(*st));
	if (!st)
		return -ENOMEM;
	int r = rook__diag_with_rt(fill, st);
	if (r == 0) {
		size_t n = size < sizeof(*st) ? size : sizeof(*st);
		st->size = n;
		memcpy(out, st, n);
	}
	rook__free(st);
	return r;
}

/* One counter: its name, help text, and where it is in each struct. */
struct metric {
	const char *m_name, *m_help;
	bool m_gauge;
	size_t m_rt_off, m_w_off; /* (size_t)-1: not in that struct */
};

#define NONE  ((size_t)-1)
#define RT(f) offsetof(struct rook_stats, f)
#define WK(f) offsetof(struct rook_worker_stats, f)
static const struct metric metrics[] = {
    {"tasks_spawned_total", "Tasks spawned", false, RT(tasks_spawned), WK(spawned)},
    {"tasks_finished_total", "Tasks that ended", false, RT(tasks_finished), WK(finished)},
    {"tasks_live", "Tasks spawned and not finished", true, RT(tasks_live), NONE},
    {"rounds_total", "Scheduling rounds", false, NONE, WK(rounds)},
    {"steal_attempts_total", "Victims with queued work probed", false, RT(steal_attempts),
     WK(steal_attempts)},
    {"stolen_total", "Tasks taken by thieves", false, RT(stolen), WK(stolen)},
    {"parks_total", "Times a worker went to sleep", false, RT(parks), WK(parks)},
    {"runq_depth", "Tasks queued on workers", true, RT(runq_depth), WK(runq_depth)},
    {"injection_depth", "Tasks queued from outside", true, RT(injection_depth), NONE},
    {"io_submitted_total", "IO operations submitted", false, RT(io_submitted), WK(io_submitted)},
    {"io_completed_total", "IO operations completed", false, RT(io_completed), WK(io_completed)},
    {"io_cancelled_total", "IO operations cancelled", false, RT(io_cancelled), WK(io_cancelled)},
    {"timers_armed_total", "Timers armed", false, RT(timers_armed), WK(timers_armed)},
    {"timers_fired_total", "Timers fired", false, RT(timers_fired), WK(timers_fired)},
    {"worker_running", "1 if the worker is running a task", true, NONE, WK(running)},
    {"blocking_threads", "Threads of the blocking pool", true, RT(blocking_threads), NONE},
    {"stacks_in_use", "Task stacks handed out", true, RT(stacks_in_use), NONE},
    {"stack_bytes_reserved", "Address space reserved for stacks", true, RT(stack_bytes_reserved),
     NONE},
    {"longest_stall_ns", "Longest stall seen by ROOK_STALL_MS", true, RT(longest_run_ns), NONE},
};

static uint64_t field(const void *base, size_t off)
{
	uint64_t v;
	memcpy(&v, (const char *)base + off, sizeof(v));
	return v;
}

static void write_metric(struct rook__out *o, const struct rook_stats *st, const struct metric *m,
			 bool prom)
{
	unsigned nw = st->nworkers < ROOK_STATS_WORKERS ? st->nworkers : ROOK_STATS_WORKERS;
	if (prom)
		rook__out_printf(o, "# HELP rook_%s %s\n# TYPE rook_%s %s\n", m->m_name, m->m_help,
				 m->m_name, m->m_gauge ? "gauge" : "counter");
	if (m->m_rt_off != NONE)
		rook__out_printf(o, "rook_%s %llu\n", m->m_name,
				 (unsigned long long)field(st, m->m_rt_off));
	if (m->m_w_off == NONE)
		return;
	for (unsigned i = 0; i < nw; i++)
		rook__out_printf(
		    o, prom ? "rook_%s{worker=\"%u\"} %llu\n" : "rook_%s.worker%u %llu\n",
		    m->m_name, i, (unsigned long long)field(&st->workers[i], m->m_w_off));
}

/* rt: that runtime (its caller keeps it from stopping), or NULL: the
 * caller's, as rook_stats finds it. */
int rook__stats_write_rt(struct rook_rt *rt, int fd, int format)
{
	if (format != ROOK_STATS_TEXT && format != ROOK_STATS_PROMETHEUS)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	struct rook_stats *st = rook__calloc(1, sizeof(*st));
	struct rook__out *o = rook__alloc(sizeof(*o));
	int r = -ENOMEM;
	if (!st || !o)
		goto out;
	r = rt ? fill(rt, st) : rook_stats(st, sizeof(*st));
	if (r < 0)
		goto out;
	rook__out_init(o, fd);
	rook__out_printf(o, "%srook_workers %u\n",
			 format == ROOK_STATS_PROMETHEUS
			     ? "# HELP rook_workers Worker threads\n# TYPE rook_workers gauge\n"
			     : "",
			 st->nworkers);
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		write_metric(o, st, &metrics[i], format == ROOK_STATS_PROMETHEUS);
	rook__out_flush(o);
	r = o->o_err ? o->o_err : (int)(o->o_total > INT_MAX ? INT_MAX : o->o_total);
out:
	rook__free(o);
	rook__free(st);
	return r;
}

int rook_stats_write(int fd, int format)
{
	return rook__stats_write_rt(NULL, fd, format);
}
