/* SPDX-License-Identifier: MIT */
/*
 * Internal hooks for rook's own tests and perf suite. Not installed, not
 * exported from the shared library: tests link the static archive.
 */
#ifndef ROOK_SCHED_TESTING_H
#define ROOK_SCHED_TESTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Index of the worker running the caller, or -1 outside a worker. */
int rook__worker_index(void);

/* Workers of the caller's runtime now in the idle set (parked or about to
 * park); 0 outside a worker. */
unsigned rook__idle_workers(void);

/* Whether task h is suspended now: its context saved, no wake yet (a
 * blocking call has parked it). Lets a test wait for that event instead of
 * sleeping. Any thread; h must be a handle not yet released. */
struct rook_task;
bool rook__task_parked(const struct rook_task *h);
/* Fail the n-th injection point passed from now on (1 = the next): every
 * rook__alloc, the mmap of stack regions and task chunks, and objects
 * taken from caches (tasks, stacks, rings). 0 disables. Needs a
 * ROOK_TESTING build (see sched/alloc.h); elsewhere these are no-ops. */
void rook__alloc_fail_nth(long n);

/* Count the injection points passed and record their sites ("file:line")
 * from now on (on), or stop; either way the count, the sites and the
 * failed site start afresh. */
void rook__alloc_trace(bool on);
/* Points passed while tracing. */
long rook__alloc_points(void);
/* The site of the last injected failure, or NULL. */
const char *rook__alloc_failed_site(void);
/* Copy up to max distinct sites seen while tracing to out; returns how
 * many there are. */
size_t rook__alloc_sites(const char **out, size_t max);

/* Fail the next n task-stack allocations (as if mmap returned ENOMEM). */
void rook__stack_fail_next(unsigned n);

/* Queues created from now on keep at most this many slots in their
 * lock-free ring (the rest of their capacity goes to the backlog); 0
 * restores the default. Lets tests drive the backlog with few items. */
void rook__queue_ring_limit(size_t slots);

/* Called, when set, inside the queue's count of unfinished items (join,
 * and task_done with joiners), with the queue's lock held, between its
 * reads of the items done and the items put. Lets a test interleave
 * lock-free puts and task_done calls there; NULL: none. */
struct rook_queue;
void rook__queue_unfinished_hook(void (*fn)(struct rook_queue *q));

/* Called, when set (ROOK_TESTING builds), at these points of the
 * park/notify protocol of sched/worker.c, on the thread that passes them:
 * NOTIFY_CLAIMED, a notifier won the rt_nspinning 0 -> 1 CAS; NOTIFY_EMPTY,
 * it then found the idle set empty and still counts as a spinner;
 * PARK_SLEEP, a worker in the idle set re-checked the queues, found
 * nothing and goes to sleep. Lets a test hold a thread inside a window of
 * a few instructions. NULL: none. */
enum { ROOK__HOOK_NOTIFY_CLAIMED = 1, ROOK__HOOK_NOTIFY_EMPTY, ROOK__HOOK_PARK_SLEEP };
void rook__worker_hook(void (*fn)(int point));

/* Called, when set (ROOK_TESTING builds), each time a pinned worker
 * samples its run-queue wait for the contention check of sched/topo.c:
 * gets the worker's index, the time (rook__now) and the wait read from
 * schedstat (ns, cumulative) and returns the wait to use instead. Lets a
 * test play a quiet, noisy or busy core. NULL: none. */
void rook__topo_wait_hook(uint64_t (*fn)(unsigned worker, uint64_t now, uint64_t wait));

/* Make guard pages with mprotect even where the kernel has guard markers
 * (MADV_GUARD_INSTALL), to test the older kernels' path. */
void rook__stack_guard_force_mprotect(bool on);
/* Tests: set up new stacks without a guard, as past the guard budget. */
void rook__stack_guard_force_off(bool on);

/* Guard pages left in the process-wide budget (see sched/stack.c). */
long rook__stack_guard_budget(void);

/* Process-wide counters (all runtimes). */
struct rook__stats {
	uint64_t live_tasks;      /* tasks spawned and not yet freed */
	uint64_t peak_live_tasks; /* high-water mark of live_tasks */
	uint64_t stacks_in_use;   /* task stacks handed out now */
	uint64_t peak_stacks;     /* high-water mark of stacks_in_use */
	uint64_t steals;          /* tasks taken by thieves */
	uint64_t parks;           /* times a worker went to sleep */
	uint64_t guard_stacks;    /* stacks protected by a guard page */
	uint64_t canary_stacks;   /* stacks protected by a canary only */
	uint64_t stacks_released; /* times an idle stack's memory was given back */
};
void rook__stats_get(struct rook__stats *st);
void rook__stats_reset_peaks(void);

/* Take (true) or release the task pool's lock, to fork while it is held. */
void rook__task_pool_hold(bool hold);

#endif
