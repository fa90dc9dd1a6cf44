/* SPDX-License-Identifier: MIT */
/*
 * Per-worker timers: a 4-ary min-heap of deadlines under a spinlock. A
 * timer belongs to one task (embedded in it) and ends one wait: when it
 * fires it claims the task's waiter with the timer's result (0 for a sleep
 * that ran out, -ETIMEDOUT for a deadline). It is armed on the heap of the
 * worker the task runs on and disarmed by the task when its wait ends,
 * from whatever worker it resumed on (hence the lock). Any worker may fire
 * any heap's expired timers: an idle worker takes over the timers of a
 * worker busy with a long task, and so does a busy one between two tasks
 * (worker_poll (sched/worker.c) looks at one other heap per round).
 */
#ifndef ROOK_SCHED_TIMER_H
#define ROOK_SCHED_TIMER_H

#include <stdatomic.h>
#include <stdint.h>

#include "sched/lock.h"

struct rook__waiter;
struct rook__worker;

struct rook__timer {
	uint64_t tm_deadline;
	int tm_index; /* slot in its heap; -1 when not queued */
	struct rook__timer_heap *tm_heap;
	struct rook__waiter *tm_w;
	uint32_t tm_token;
	int tm_result;
};

/* A heap slot keeps a copy of its timer's deadline: sifting compares keys
 * in the array (a node's four children on one cache line) instead of
 * reading each timer, which lives on its own task's stack page. */
struct rook__timer_slot {
	uint64_t ts_deadline;
	struct rook__timer *ts_tm;
};

struct rook__timer_heap {
	struct rook__spin h_lock;
	struct rook__timer_slot *h_items;
	int h_n, h_cap;
	_Atomic uint64_t h_next; /* earliest deadline, UINT64_MAX if empty */
};

int rook__timer_heap_init(struct rook__timer_heap *h);
void rook__timer_heap_fini(struct rook__timer_heap *h);

/* Queue tm on h. 0, or -ENOMEM if the heap could not grow. */
int rook__timer_arm(struct rook__timer_heap *h, struct rook__timer *tm);
/* Take tm off its heap if it is still queued (any thread). */
void rook__timer_disarm(struct rook__timer *tm);
/* Fire every timer of h due at now; returns how many fired. */
int rook__timer_fire(struct rook__timer_heap *h, uint64_t now);

uint64_t rook__now(void);

#endif
