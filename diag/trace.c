/* SPDX-License-Identifier: MIT */
/* ROOK_TRACE: the per-worker event rings and their JSON writer (trace.h). */
#include "diag/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#include "diag/diag.h"
#include "sched/alloc.h"
#include "sched/runtime.h"
#include "sched/stack.h"
#include "sched/task.h"
#include "sched/worker.h"
#include "time/timer.h"

#define RING_DEFAULT (1u << 16)
#define COPY_BATCH   256

struct ev {
	_Atomic uint64_t e_ts, e_a, e_b, e_kind;
};

struct rook__trace_ring {
	_Atomic uint64_t r_head; /* events ever written; release by the owner */
	uint64_t r_flushed;      /* events written out (under the writer's lock) */
	uint64_t r_cur_id;       /* the running task's id, 0: none (owner only) */
	uint64_t r_cur_start;
	unsigned r_cap; /* a power of two */
	struct ev r_ev[];
};

struct rook__trace {
	pthread_mutex_t t_lock; /* one flush at a time */
	int t_fd;
	bool t_first; /* nothing written after "[" yet */
	uint64_t t_zero;
	struct rook__out t_out;
};

void rook__trace_event(struct rook__worker *w, enum rook__trace_kind k, uint64_t ts, uint64_t a,
		       uint64_t b)
{
	struct rook__trace_ring *r = w->w_trace;
	uint64_t h = atomic_load_explicit(&r->r_head, memory_order_relaxed);
	/* Orders the last head store before these slot stores, for a
	 * reader that sees them (the seqlock's writer side). */
	atomic_thread_fence(memory_order_release);
	struct ev *e = &r->r_ev[h & (r->r_cap - 1)];
	atomic_store_explicit(&e->e_ts, ts, memory_order_relaxed);
	atomic_store_explicit(&e->e_a, a, memory_order_relaxed);
	atomic_store_explicit(&e->e_b, b, memory_order_relaxed);
	atomic_store_explicit(&e->e_kind, k, memory_order_relaxed);
	/* Pairs with the acquire load in ring_copy. */
	atomic_store_explicit(&r->r_head, h + 1, memory_order_release);
}

static uint64_t flow_id(struct rook_task *t)
{
	uint64_t gen = atomic_load_explicit(&t->t_gen, memory_order_relaxed) / ROOK__GEN_ONE;
	return (gen << 40) ^ ((uintptr_t)t >> 6);
}

void rook__trace_switch(struct rook__worker *w, struct rook_task *to)
{
	struct rook__trace_ring *r = w->w_trace;
	uint64_t now = rook__now();
	if (r->r_cur_id)
		rook__trace_event(w, ROOK__TR_RUN, r->r_cur_start, r->r_cur_id,
				  now - r->r_cur_start);
	r->r_cur_id = 0;
	if (!to)
		return;
	r->r_cur_id = to->t_stack->s_task_id;
	r->r_cur_start = now;
	if (atomic_load_explicit(&to->t_flow, memory_order_relaxed)) {
		atomic_store_explicit(&to->t_flow, 0, memory_order_relaxed);
		rook__trace_event(w, ROOK__TR_FLOW_IN, now, flow_id(to), 0);
	}
}

_Atomic int rook__trace_active;

void rook__trace_flow(struct rook__worker *w, struct rook_task *t, enum rook__trace_kind k)
{
	if (!w)
		w = rook__worker_self();
	if (!w || !w->w_trace || w->w_rt != t->t_rt)
		return;
	atomic_store_explicit(&t->t_flow, 1, memory_order_relaxed);
	rook__trace_event(w, k, rook__now(), flow_id(t), 0);
}

/* ---- writing ---------------------------------------------------------- */

static void emit(struct rook__trace *tr, const char *fmt_event)
{
	rook__out_printf(&tr->t_out, "%s%s", tr->t_first ? "" : ",\n", fmt_event);
	tr->t_first = false;
}

static void write_event(struct rook__trace *tr, unsigned wi, uint64_t kind, uint64_t ts, uint64_t a,
			uint64_t b)
{
	char buf[256];
	double us = (double)(ts - tr->t_zero) / 1000.0;
	int pid = (int)getpid();
	switch (kind) {
	case ROOK__TR_RUN:
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"task %llu\",\"cat\":\"task\",\"ph\":\"X\",\"ts\":%.3f,"
			 "\"dur\":%.3f,\"pid\":%d,\"tid\":%u,\"args\":{\"task\":%llu}}",
			 (unsigned long long)a, us, (double)b / 1000.0, pid, wi,
			 (unsigned long long)a);
		break;
	case ROOK__TR_SPAWN:
	case ROOK__TR_WAKE:
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"%s\",\"cat\":\"flow\",\"ph\":\"s\",\"id\":%llu,\"ts\":%.3f,"
			 "\"pid\":%d,\"tid\":%u}",
			 kind == ROOK__TR_SPAWN ? "spawn" : "wake", (unsigned long long)a, us, pid,
			 wi);
		break;
	case ROOK__TR_FLOW_IN:
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"run\",\"cat\":\"flow\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%llu,"
			 "\"ts\":%.3f,\"pid\":%d,\"tid\":%u}",
			 (unsigned long long)a, us, pid, wi);
		break;
	case ROOK__TR_PARK:
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"park\",\"cat\":\"worker\",\"ph\":\"X\",\"ts\":%.3f,"
			 "\"dur\":%.3f,\"pid\":%d,\"tid\":%u}",
			 us, (double)b / 1000.0, pid, wi);
		break;
	case ROOK__TR_STEAL:
		snprintf(
		    buf, sizeof(buf),
		    "{\"name\":\"steal\",\"cat\":\"worker\",\"ph\":\"i\",\"s\":\"t\","
		    "\"ts\":%.3f,\"pid\":%d,\"tid\":%u,\"args\":{\"tasks\":%llu,\"from\":%llu}}",
		    us, pid, wi, (unsigned long long)a, (unsigned long long)b);
		break;
	case ROOK__TR_IO:
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"io %s\",\"cat\":\"io\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
			 "\"pid\":%d,\"tid\":%u}",
			 a == 0   ? "submit"
			 : a == 1 ? "complete"
				  : "cancel",
			 us, pid, wi);
		break;
	case ROOK__TR_TIMERS:
		snprintf(
		    buf, sizeof(buf),
		    "{\"name\":\"timers\",\"cat\":\"time\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,"
		    "\"pid\":%d,\"tid\":%u,\"args\":{\"fired\":%llu}}",
		    us, pid, wi, (unsigned long long)a);
		break;
	default:
		return; /* a torn slot: skipped */
	}
	emit(tr, buf);
}

/* Write ring r's events since the last flush. An event the owner may have
 * overwritten while we copied it is dropped, and counted. */
static void ring_write(struct rook__trace *tr, unsigned wi, struct rook__trace_ring *r)
{
	uint64_t head = atomic_load_explicit(&r->r_head, memory_order_acquire);
	uint64_t from = r->r_flushed, dropped = 0;
	if (head - from > r->r_cap) {
		dropped += head - r->r_cap - from;
		from = head - r->r_cap;
	}
	struct {
		uint64_t ts, a, b, kind;
	} copy[COPY_BATCH];
	while (from < head) {
		unsigned n = head - from < COPY_BATCH ? (unsigned)(head - from) : COPY_BATCH;
		for (unsigned i = 0; i < n; i++) {
			struct ev *e = &r->r_ev[(from + i) & (r->r_cap - 1)];
			copy[i].ts = atomic_load_explicit(&e->e_ts, memory_order_relaxed);
			copy[i].a = atomic_load_explicit(&e->e_a, memory_order_relaxed);
			copy[i].b = atomic_load_explicit(&e->e_b, memory_order_relaxed);
			copy[i].kind = atomic_load_explicit(&e->e_kind, memory_order_relaxed);
		}
		/* Pairs with the owner's release of its head: slots below
		 * now - cap may have been rewritten while we read them. */
		atomic_thread_fence(memory_order_acquire);
		uint64_t now = atomic_load_explicit(&r->r_head, memory_order_relaxed);
		for (unsigned i = 0; i < n; i++) {
			if (now - (from + i) >= r->r_cap)
				dropped++;
			else
				write_event(tr, wi, copy[i].kind, copy[i].ts, copy[i].a, copy[i].b);
		}
		from += n;
	}
	r->r_flushed = head;
	if (dropped) {
		char buf[160];
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"dropped\",\"ph\":\"i\",\"s\":\"t\",\"ts\":%.3f,\"pid\":%d,"
			 "\"tid\":%u,\"args\":{\"events\":%llu}}",
			 (double)(rook__now() - tr->t_zero) / 1000.0, (int)getpid(), wi,
			 (unsigned long long)dropped);
		emit(tr, buf);
	}
}

static int trace_flush(struct rook_rt *rt, void *ctx)
{
	(void)ctx;
	struct rook__trace *tr = rt->rt_trace;
	if (!tr)
		return 0;
	pthread_mutex_lock(&tr->t_lock);
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		if (rt->rt_workers[i].w_trace)
			ring_write(tr, i, rt->rt_workers[i].w_trace);
	rook__out_flush(&tr->t_out);
	int r = tr->t_out.o_err;
	pthread_mutex_unlock(&tr->t_lock);
	return r;
}

int rook_trace_flush(void)
{
	int r = rook__diag_with_rt(trace_flush, NULL);
	return r == -ESRCH ? -EPERM : r;
}

void rook__trace_rt_init(struct rook_rt *rt)
{
	const char *path = getenv("ROOK_TRACE");
	if (!path || !*path)
		return;
	unsigned cap = RING_DEFAULT;
	const char *ev = getenv("ROOK_TRACE_EVENTS");
	if (ev && *ev) {
		char *end;
		errno = 0;
		long long v = strtoll(ev, &end, 10);
		if (*end || errno || v <= 0 || v > (1 << 24)) {
			fprintf(
			    stderr,
			    "rook: ROOK_TRACE_EVENTS=%s is not a count in 1..16777216; using %u\n",
			    ev, cap);
		} else {
			cap = 64;
			while (cap < (unsigned long long)v)
				cap <<= 1;
		}
	}
	struct rook__trace *tr = rook__calloc(1, sizeof(*tr));
	int fd = tr ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	if (fd < 0) {
		fprintf(stderr, "rook: ROOK_TRACE: cannot write %s (%s); tracing is off\n", path,
			tr ? strerror(errno) : "no memory");
		rook__free(tr);
		return;
	}
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		struct rook__trace_ring *r =
		    rook__calloc(1, sizeof(*r) + (size_t)cap * sizeof(struct ev));
		if (!r)
			break; /* that worker and the rest go untraced */
		r->r_cap = cap;
		rt->rt_workers[i].w_trace = r;
	}
	pthread_mutex_init(&tr->t_lock, NULL);
	tr->t_fd = fd;
	tr->t_first = true;
	tr->t_zero = rook__now();
	rook__out_init(&tr->t_out, fd);
	rook__out_printf(&tr->t_out, "[\n");
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		char buf[128];
		snprintf(buf, sizeof(buf),
			 "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,"
			 "\"args\":{\"name\":\"worker %u\"}}",
			 (int)getpid(), i, i);
		emit(tr, buf);
	}
	rt->rt_trace = tr;
	atomic_fetch_add_explicit(&rook__trace_active, 1, memory_order_relaxed);
}

void rook__trace_rt_fini(struct rook_rt *rt)
{
	struct rook__trace *tr = rt->rt_trace;
	if (tr) {
		trace_flush(rt, NULL);
		rook__out_printf(&tr->t_out, "\n]\n");
		rook__out_flush(&tr->t_out);
		int err = close(tr->t_fd) < 0 ? errno : 0;
		if (tr->t_out.o_err)
			err = -tr->t_out.o_err;
		if (err) /* a full disk, say: the file is not valid JSON */
			fprintf(stderr, "rook: ROOK_TRACE: the trace is incomplete (%s)\n",
				strerror(err));
		pthread_mutex_destroy(&tr->t_lock);
		rook__free(tr);
		rt->rt_trace = NULL;
		atomic_fetch_sub_explicit(&rook__trace_active, 1, memory_order_relaxed);
	}
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		rook__free(rt->rt_workers[i].w_trace);
		rt->rt_workers[i].w_trace = NULL;
	}
}
