/* SPDX-License-Identifier: MIT */
/*
 * Workers: one OS thread per core, each running tasks from its own deque,
 * its LIFO slot and its yield queue, then the runtime's injection queue,
 * then other workers' deques (stealing), then parking.
 */
#ifndef ROOK_SCHED_WORKER_H
#define ROOK_SCHED_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "diag/tdiag.h"
#include "sched/deque.h"
#include "sched/lock.h"
#include "sched/stack.h"
#include "time/timer.h"

struct rook_rt;
struct rook_task;

/* What the scheduler does with the task that just switched to it. */
enum rook__post {
	ROOK__POST_NONE = 0,
	ROOK__POST_YIELD,
	ROOK__POST_PARK,
	ROOK__POST_EXIT,
	ROOK__POST_ADOPT,    /* a joiner runs its child (rook__task_adopt): nothing */
	ROOK__POST_HANDBACK, /* it ended: as EXIT, its joiner keeps the reference */
};

struct rook__task_cache {
	struct rook_task *tc_head;
	unsigned tc_len;
};

struct rook__worker {
	/* Shared with thieves and wakers. */
	struct rook__deque w_deque;
	_Alignas(64) _Atomic(struct rook_task *) w_lifo;
	_Atomic int w_yield_len; /* published length of the yield queue */
	struct rook__spin w_yield_lock;
	struct rook_task *w_yield_head, *w_yield_tail; /* under w_yield_lock */
	int w_yield_n;                                 /* under w_yield_lock */
	_Atomic bool w_woken_spinning;                 /* woken by notify; counted as a spinner */
	_Atomic bool w_napping;       /* in park_sleep: it serves its own IO (rescue_others) */
	_Atomic uint64_t w_nspawned;  /* single writer: this worker */
	_Atomic uint64_t w_nfinished; /* single writer: this worker */

	struct rook__timer_heap w_timers; /* armed by this worker's tasks */

	/* Owner only. */
	_Alignas(64) struct rook_rt *w_rt;
	unsigned w_index;
	struct rook_task *w_current;
	void *w_sched_sp; /* the scheduler's saved context */
	enum rook__post w_post;
	struct rook_task *w_post_task; /* switched away, post not done yet */
	uint32_t w_fair_n;             /* rounds since the last fairness tick (local_next) */
	uint32_t w_tick;               /* fairness ticks */
	int64_t w_old_top;             /* deque top when w_old_since was taken */
	uint64_t w_old_since;          /* since when that top task waits */
	unsigned w_lifo_runs;
	unsigned w_adopts;            /* joins that ran their child at once (rook__task_adopt) */
	struct rook_task *w_handback; /* POST_HANDBACK's task, for its joiner */
	struct rook_task *w_adopted;  /* running for w_adopter (rook__task_adopt) */
	struct rook_task *w_adopter;
	unsigned w_timer_turn; /* which other worker's timers poll checks */
	unsigned *w_victims;   /* other workers, nearest first */
	struct rook__stack_cache w_stacks;
	struct rook__task_cache w_tasks;
	bool w_idle_listed;    /* guarded by rt_idle_lock */
	void *w_io;            /* the IO layer's per-worker state (sched/park.h) */
	uint32_t w_poll_tick;  /* rounds, for polling an idle ring */
	unsigned w_starve_who; /* the sibling poll_siblings looks at (in */
	uint64_t w_starve_at;  /* w_victims), the time of the last look, and */
	uint64_t w_starve_hb;  /* its heartbeat then */
	int w_init_err;        /* rook__park_init's result */
	bool w_spinning;       /* counted in rt_nspinning */
	uint64_t w_spin_ns;    /* this worker's spin budget (adapts, worker.c) */
	uint64_t w_next_id;
	long w_stat[4];    /* batched counters (stats.h) */
	void *w_asan_fake; /* the scheduler's ASan fake stack */
	pthread_t w_thread;
	int w_cpu; /* OS index of the PU we pin to, or -1 */
	/* Pinning lifted while the core is contended (sched/topo.c). */
	bool w_unpinned;
	int w_ct_fd;             /* its /proc/thread-self/schedstat, or -1 */
	uint64_t w_ct_at;        /* last sample (rook__now), 0 before the first */
	uint64_t w_ct_wait;      /* run-queue wait (ns) at that sample */
	uint32_t w_ct_avg;       /* recent share of time waited, 1/65536ths */
	uint64_t w_ct_quiet;     /* uncontended ns since the pinning was lifted */
	uint64_t w_ct_repin;     /* quiet ns needed to pin again (backs off) */
	uint64_t w_ct_pinned_at; /* when it was last pinned again */
	void *w_altstack;
	void *w_san_fiber;         /* the scheduler's TSan fiber */
	const void *w_asan_bottom; /* the worker thread's own stack (ASan) */
	size_t w_asan_size;
	struct rook__wdiag w_ds;          /* owner-written counters (diag/tdiag.h) */
	struct rook__trace_ring *w_trace; /* ROOK_TRACE ring (diag/trace.h), or NULL */
};

/* The worker running the caller, NULL on a plain thread. Never inlined: a
 * task may resume on another thread, so TLS addresses must not be cached
 * across a suspension. */
struct rook__worker *rook__worker_self(void);

/* The same, inline, for the first thing a hot call does: valid only until
 * the calling function first calls anything that may suspend, and not to
 * be kept past it (the compiler may reuse a TLS address within a function).
 * One %fs-relative load (initial-exec model, see worker.c). */
extern _Thread_local struct rook__worker *rook__tls_worker
    __attribute__((tls_model("initial-exec")));
static inline struct rook__worker *rook__worker_entry(void)
{
	return rook__tls_worker;
}

/* Make t runnable. From a worker of t's runtime it goes to that worker's
 * LIFO slot (lifo) or deque; otherwise to the injection queue. */
void rook__schedule(struct rook_task *t, bool lifo);
/* The same, called on w (the caller's worker, or NULL on a plain thread). */
void rook__schedule_on(struct rook__worker *w, struct rook_task *t, bool lifo);

/* Make t runnable at the back of the caller's yield queue (FIFO; the
 * injection queue from outside): for tasks woken by IO completions, which
 * must run in completion order. */
void rook__schedule_fifo(struct rook_task *t);

/* Switch from the running task to its worker's scheduler, which performs
 * post on the task once its context is saved. Returns when the task runs
 * again (maybe on another worker). */
void rook__task_switch_out(enum rook__post post);

/* The running task yields: it switches to the next local task, if there is
 * one, and goes to the back of its worker's yield queue; otherwise it goes
 * on at once. Returns when it runs again. */
void rook__task_yield(void);

/* The running task (on w, with no cancellation pending and no deadline:
 * it cannot run again until t switches out) joins t, which has not
 * started: if t is still the newest task of w's deque, take it back and
 * switch to it at once (on its own stack). The caller resumes on w when
 * t ends or first suspends (blocks or yields). True if t ran and ended:
 * the caller then holds t's run's reference too. */
bool rook__task_adopt(struct rook__worker *w, struct rook_task *t);

void *rook__worker_main(void *arg);

/* True if something else is runnable on w or in the injection queue. */
bool rook__worker_has_other_work(struct rook__worker *w);

/* Arm tm on the calling worker's heap (the caller is a task). 0/-ENOMEM. */
int rook__worker_timer_arm(struct rook__timer *tm);

/* Wake every worker (stop). */
void rook__wake_all(struct rook_rt *rt);

/* Wake one parked worker if work was published and nobody is spinning. */
void rook__notify(struct rook_rt *rt);

int rook__worker_init(struct rook__worker *w, struct rook_rt *rt, unsigned index);
void rook__worker_fini(struct rook__worker *w);

#endif
