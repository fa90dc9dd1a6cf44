/* SPDX-License-Identifier: MIT */
/*
 * The entry check of blocking calls, inline for the hot paths (queue and
 * sync operations cost a few nanoseconds; a call frame more is noticeable).
 * Same contract as rook__wait_check in wait.h. The worker is still reached
 * through the one non-inlined accessor, and nothing read here is kept
 * across a suspension.
 */
#ifndef ROOK_SCHED_CHECK_H
#define ROOK_SCHED_CHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/task.h"
#include "time/timer.h"
#include "sched/worker.h"

/* At the entry of a blocking call, before anything in the calling function
 * can suspend: true if nothing could stop the call (no cancellation
 * pending, no deadline scope), so a fast path may complete it without
 * rook__wait_check_fast; false: take the path that makes the full check.
 * Reads the worker inline (rook__worker_entry), for leaf fast paths. */
static inline bool rook__wait_entry_clear(void)
{
	struct rook__worker *w = rook__worker_entry();
	struct rook_task *t = w ? w->w_current : NULL;
	return !t || (!atomic_load_explicit(&t->t_cancel, memory_order_acquire) && !t->t_scopes);
}

/* The check for task t (the caller's own task: it stays the same task
 * across a suspension, whichever worker resumes it). */
static inline int rook__wait_check_task(const struct rook_task *t)
{
	struct rook_task *m = (struct rook_task *)t;
	if (__builtin_expect(atomic_load_explicit(&m->t_cancel, memory_order_acquire) != 0, 0) &&
	    atomic_load_explicit(&m->t_shield, memory_order_relaxed) == 0)
		return -ECANCELED;
	if (__builtin_expect(t->t_scopes != NULL, 0)) {
		uint64_t dl = t->t_scopes->ss_dl_eff;
		if (dl != UINT64_MAX && rook__now() >= dl)
			return -ETIMEDOUT;
	}
	return 0;
}

static inline int rook__wait_check_fast(void)
{
	struct rook__worker *w = rook__worker_self();
	struct rook_task *t = w ? w->w_current : NULL;
	return t ? rook__wait_check_task(t) : 0;
}

#endif
