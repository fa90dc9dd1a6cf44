/* SPDX-License-Identifier: MIT */
/*
 * The task object. A task is created NEW, gets a stack when it first runs,
 * and ends DONE; its memory lives until both references are gone: the
 * handle's (released by join or detach) and the execution's (dropped by the
 * worker once the task has switched away for the last time).
 *
 * Task memory is type-stable: released tasks go back to a pool and are
 * never returned to malloc, so a stale handle reads a DEAD magic (-EINVAL)
 * instead of faulting, as long as the slot has not been reused.
 */
#ifndef ROOK_SCHED_TASK_H
#define ROOK_SCHED_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <rook.h>

#include "sched/lock.h"
#include "sched/san.h"
#include "time/timer.h"
#include "sched/wait.h"

#define ROOK__TASK_MAGIC 0x726f6f6bu /* "rook" */
#define ROOK__TASK_DEAD  0xdeadbeefu

enum {
	ROOK__T_NEW = 0,
	ROOK__T_STARTED = 1,
	ROOK__T_DONE = 2,
};

/* t_park: the handshake between a task that suspends and its waker. */
enum {
	ROOK__P_RUNNING = 0,
	ROOK__P_PARKING = 1, /* decided to suspend, context not yet saved */
	ROOK__P_PARKED = 2,  /* context saved; the waker must schedule it */
	ROOK__P_WOKEN = 3,   /* woken before or while parking */
};

struct rook__stack;
struct rook__jnode;

/* A deadline scope: its deadline and the shield depth it was pushed at
 * (only scopes pushed at the current shield depth apply). */
struct rook__scope {
	uint64_t sc_deadline;
	int sc_shield;
};

/* A task's deadline scopes, allocated by its first rook_deadline_push (most
 * tasks never push one, so the task itself keeps only a pointer). */
struct rook__scopes {
	uint64_t ss_dl_eff; /* effective deadline, UINT64_MAX: none */
	int ss_n, ss_cap;
	struct rook__scope ss_items[];
};

/* Cache-line aligned: a task polled by one worker (its cancel flag, its
 * deadline) must not share a line with tasks another worker writes. Two
 * lines exactly (checked below): spawn_many keeps a million tasks live, and
 * their first touch (page faults and zeroing) is most of its cost, so rare
 * data lives elsewhere (scopes behind a pointer, the task's id in its
 * stack) and the small fields are bytes. */
struct rook_task {
	_Alignas(64) _Atomic uint32_t t_magic;
	_Atomic int t_refs;
	int t_status;
	_Atomic int t_shield;     /* shield depth; written by the owner only */
	struct rook__spin t_lock; /* guards t_joiners and the DONE edge */
	_Atomic uint8_t t_state;  /* ROOK__T_* */
	_Atomic uint8_t t_park;   /* ROOK__P_* */
	_Atomic uint8_t t_cancel; /* cancellation requested (sticky) */
	_Atomic bool t_handle;    /* the handle is held (not joined/detached) */
	rook_fn t_fn;
	void *t_arg;
	struct rook_rt *t_rt;
	void *t_sp;                  /* saved context while not running */
	struct rook__stack *t_stack; /* NULL until first run */
	struct rook_task *t_next;    /* run queues (injection, yield) */
	struct rook__jnode *t_joiners;
	struct rook__scopes *t_scopes; /* NULL until a deadline is pushed */
	struct rook__waiter t_waiter;  /* this task's own blocking calls */
#ifdef ROOK_ASAN
	void *t_asan_fake; /* ASan fake stack while switched out */
#endif
};
#ifndef ROOK_ASAN
_Static_assert(sizeof(struct rook_task) == 128, "struct rook_task grew past two lines");
#endif

/* The task's effective deadline (UINT64_MAX: none); owner only. */
static inline uint64_t rook__task_deadline(const struct rook_task *t)
{
	return t->t_scopes ? t->t_scopes->ss_dl_eff : UINT64_MAX;
}

/* A joiner's entry on a task's t_joiners list (lives on the joiner's stack). */
struct rook__jnode {
	struct rook__waiter *j_w;
	uint32_t j_token;
	bool j_linked;
	struct rook__jnode *j_prev, *j_next;
};

/* t_lock held: put n on t's joiner list / take it off if still there. */
static inline void rook__jnode_push(struct rook_task *t, struct rook__jnode *n)
{
	n->j_linked = true;
	n->j_prev = NULL;
	n->j_next = t->t_joiners;
	if (n->j_next)
		n->j_next->j_prev = n;
	t->t_joiners = n;
}

static inline void rook__jnode_remove(struct rook_task *t, struct rook__jnode *n)
{
	if (!n->j_linked)
		return;
	if (n->j_prev)
		n->j_prev->j_next = n->j_next;
	else
		t->t_joiners = n->j_next;
	if (n->j_next)
		n->j_next->j_prev = n->j_prev;
	n->j_linked = false;
}

struct rook__worker;
/* w: the calling worker (its cache of freed tasks), or NULL. */
struct rook_task *rook__task_alloc(struct rook__worker *w);
void rook__task_put(struct rook_task *t); /* drop one reference */

/* Body of every task (runs on its stack); never returns. */
void rook__task_entry(void *arg);

/* Mark t DONE with status and wake its joiners. */
void rook__task_finish(struct rook_task *t, int status);

/* Make a parked task runnable again (exactly once per park). */
void rook__task_unpark(struct rook_task *t);
/* The same, but t goes to the back of the FIFO yield queue (IO wake-ups). */
void rook__task_unpark_fifo(struct rook_task *t);

/* Request cancellation of t (no handle needed: the caller guarantees t is
 * alive, e.g. by holding a reference). See rook_cancel. */
void rook__task_cancel(struct rook_task *t);

/* True if the caller (a task) has a cancellation to deliver now. */
bool rook__task_cancel_pending(const struct rook_task *t);

/* Take a reference only if the task is still referenced (type-stable
 * memory makes this safe on a stale pointer). */
bool rook__task_tryget(struct rook_task *t);

/* Call fn on every task slot ever allocated (live or not). */
void rook__task_foreach(void (*fn)(struct rook_task *t, void *ctx), void *ctx);

/* Wait until t is DONE without releasing it: 0, -ECANCELED, -ETIMEDOUT. */
int rook__task_wait_done(struct rook_task *t);

/* Called first thing on a task's new stack (sanitizer bookkeeping). */
void rook__task_started(void);

struct rook__task_cache;
void rook__task_cache_drain(struct rook__task_cache *c);

/* A live task (its slot holds a task: a handle, or rook_self()). */
static inline bool rook__task_alive(const struct rook_task *t)
{
	return t && atomic_load_explicit(&((struct rook_task *)t)->t_magic, memory_order_relaxed) ==
			ROOK__TASK_MAGIC;
}

/* Checks a handle: a live task whose handle has not been released yet
 * (a released handle's task may still be running out its last steps). */
static inline bool rook__task_valid(const struct rook_task *t)
{
	struct rook_task *m = (struct rook_task *)t;
	return m && atomic_load_explicit(&m->t_magic, memory_order_relaxed) == ROOK__TASK_MAGIC &&
	       atomic_load_explicit(&m->t_handle, memory_order_relaxed);
}

/* Give up the handle's reference exactly once: false if it was already
 * released (a second join or detach). */
static inline bool rook__task_release_handle(struct rook_task *t)
{
	if (!atomic_exchange_explicit(&t->t_handle, false, memory_order_acq_rel))
		return false;
	rook__task_put(t);
	return true;
}

#endif
