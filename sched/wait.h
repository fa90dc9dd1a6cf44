/* SPDX-License-Identifier: MIT */
/*
 * Waiters: the single linearization point of every blocking wait.
 *
 * A waiter belongs to one task (embedded in it) or to one plain thread (on
 * its stack). A wait begins with rook__wait_begin, which returns a token;
 * the waiter is then published on one or more objects' lists. Whoever wins
 * rook__wait_claim(w, token, result) — the object that grants, a canceller,
 * a timer — is the only one that ends this wait, and it must then call
 * rook__wait_wake(w) after it has dropped its locks. A token stops a stale
 * claim (for a wait that already ended) from ending a later wait.
 *
 * Ownership: a claimed waiter stays valid until rook__wait_wake; after that
 * the claimer must not touch it. Object lists are unlinked by whoever holds
 * the object's lock: the claimer when it grants, the waiter after waking.
 */
#ifndef ROOK_SCHED_WAIT_H
#define ROOK_SCHED_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rook_task;

enum {
	ROOK__W_IDLE = 0,
	ROOK__W_WAITING = 1,  /* cancellable */
	ROOK__W_SHIELDED = 2, /* not cancellable (shield or cleanup) */
	ROOK__W_CLAIMED = 3,
};

struct rook__waiter {
	_Atomic uint32_t w_state;         /* seq << 2 | phase */
	_Atomic uint32_t w_wake;          /* plain threads: futex word, 1 when woken */
	int w_result;                     /* written by the claimer before the wake */
	uint32_t w_thread_gen;            /* plain threads: unique per thread (sync.c) */
	struct rook_task *w_task;         /* NULL for a plain thread */
	struct rook__waiter *w_next_wake; /* claimer's private wake list */
	void *w_data;                     /* the granted item / index, by contract */
};

static inline void rook__waiter_init(struct rook__waiter *w, struct rook_task *t)
{
	/* w_state keeps its sequence across reuse of the task slot, so a
	 * stale token (a late timer) never matches a new task's wait. */
	atomic_store_explicit(&w->w_state,
			      atomic_load_explicit(&w->w_state, memory_order_relaxed) & ~3u,
			      memory_order_relaxed);
	atomic_init(&w->w_wake, 0);
	w->w_result = 0;
	w->w_task = t;
	w->w_next_wake = NULL;
	w->w_data = NULL;
}

/* Start a wait; the caller's waiter. Returns the token for claims. */
uint32_t rook__wait_begin(struct rook__waiter *w, bool cancellable);

/* Try to end the wait identified by token with result; true if we won. */
bool rook__wait_claim(struct rook__waiter *w, uint32_t token, int result);

/* Wake the owner of a waiter we claimed. */
void rook__wait_wake(struct rook__waiter *w);

/* Suspend the caller until its waiter is woken; returns w_result. Checks
 * for a pending cancellation first (a claim by the caller itself), and arms
 * a timer for the task's effective deadline (-ETIMEDOUT) on interruptible
 * waits. May return -ENOMEM if the timer could not be queued. */
int rook__wait_park(struct rook__waiter *w, uint32_t token);

/* As rook__wait_park, but the wait also ends at wake_at (absolute ns) with
 * wake_result, unless the deadline comes first. */
int rook__wait_park_until(struct rook__waiter *w, uint32_t token, uint64_t wake_at,
			  int wake_result);

/* Entry check of every blocking call: -ECANCELED if the calling task has a
 * cancellation to deliver (and is not shielded), -ETIMEDOUT if its
 * effective deadline has passed, else 0. Plain threads: always 0. */
int rook__wait_check(void);

/* Whether a wait begun now by the caller may be interrupted: true for any
 * task (cancellation then ends it unless the task is inside a shield, and
 * its effective deadline ends it). Pass false to rook__wait_begin for an
 * uninterruptible wait (cleanup that must complete: re-locking a mutex,
 * waiting for a cancelled IO operation's completion). */
bool rook__wait_cancellable(void);

/* The waiter for a blocking call by the caller (its task's, or a
 * thread-local one for a plain thread). */
struct rook__waiter *rook__waiter_self(void);

#endif
