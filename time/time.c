/* SPDX-License-Identifier: MIT */
/*
 * Time, deadline scopes and shields. A task keeps a stack of deadline
 * scopes; each records the shield depth it was pushed at, and only scopes
 * pushed at the current depth apply (a shield hides the deadlines outside
 * it, and cancellation, until it is popped). ss_dl_eff caches the earliest
 * applicable deadline (the scopes are allocated by the first push); every interruptible wait arms
 * one timer for it (wait.c). All of this is owner-only state: only the task touches it.
 */
#include <errno.h>

#include <rook.h>

#include "sched/alloc.h"
#include "sched/task.h"
#include "time/timer.h"
#include "sched/wait.h"
#include "diag/tdiag.h"

uint64_t rook_now(void)
{
	return rook__now();
}

static void recompute(struct rook_task *t)
{
	struct rook__scopes *ss = t->t_scopes;
	if (!ss)
		return;
	int depth = atomic_load_explicit(&t->t_shield, memory_order_relaxed);
	uint64_t eff = UINT64_MAX;
	for (int i = ss->ss_n - 1; i >= 0 && ss->ss_items[i].sc_shield == depth; i--)
		if (ss->ss_items[i].sc_deadline < eff)
			eff = ss->ss_items[i].sc_deadline;
	ss->ss_dl_eff = eff;
}

/* The number of scopes t holds. */
static int nscopes(const struct rook_task *t)
{
	return t->t_scopes ? t->t_scopes->ss_n : 0;
}

int rook_deadline_push(uint64_t abs_ns)
{
	struct rook_task *t = rook_self();
	if (!t)
		return -EPERM;
	struct rook__scopes *ss = t->t_scopes;
	if (!ss || ss->ss_n == ss->ss_cap) {
		int n = ss ? ss->ss_n : 0;
		int cap = ss ? ss->ss_cap * 2 : 4;
		if (cap > ROOK_MAX_SCOPES)
			return -ENOSPC;
		struct rook__scopes *grown =
		    rook__alloc(sizeof(*grown) + (size_t)cap * sizeof(grown->ss_items[0]));
		if (!grown)
			return -ENOMEM;
		grown->ss_n = n;
		grown->ss_cap = cap;
		for (int i = 0; i < n; i++)
			grown->ss_items[i] = ss->ss_items[i];
		rook__free(ss);
		t->t_scopes = ss = grown;
	}
	ss->ss_items[ss->ss_n].sc_deadline = abs_ns;
	ss->ss_items[ss->ss_n].sc_shield = atomic_load_explicit(&t->t_shield, memory_order_relaxed);
	ss->ss_n++;
	recompute(t);
	return 0;
}

bool rook_deadline_pop(void)
{
	struct rook_task *t = rook_self();
	if (!t || nscopes(t) == 0 ||
	    t->t_scopes->ss_items[t->t_scopes->ss_n - 1].sc_shield !=
		atomic_load_explicit(&t->t_shield, memory_order_relaxed))
		return false; /* nothing pushed at this depth: misuse, no effect */
	uint64_t dl = t->t_scopes->ss_items[--t->t_scopes->ss_n].sc_deadline;
	recompute(t);
	return rook__now() >= dl;
}

void rook_shield_push(void)
{
	struct rook_task *t = rook_self();
	if (!t)
		return;
	/* Relaxed: the canceller reads it after a seq_cst load of the wait
	 * state stored later by this task (see rook_cancel). */
	atomic_store_explicit(&t->t_shield,
			      atomic_load_explicit(&t->t_shield, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	recompute(t);
}

void rook_shield_pop(void)
{
	struct rook_task *t = rook_self();
	if (!t)
		return;
	int depth = atomic_load_explicit(&t->t_shield, memory_order_relaxed);
	if (depth == 0)
		return;
	/* Scopes pushed inside the shield and never popped end with it. */
	while (nscopes(t) > 0 && t->t_scopes->ss_items[t->t_scopes->ss_n - 1].sc_shield == depth)
		t->t_scopes->ss_n--;
	atomic_store_explicit(&t->t_shield, depth - 1, memory_order_relaxed);
	recompute(t);
}

int rook_sleep(uint64_t ns)
{
	ROOK__DIAG_CALL("rook_sleep");
	struct rook_task *t = rook_self();
	if (!t)
		return -EPERM;
	if (ns == 0)
		return rook_yield();
	int r = rook__wait_check();
	if (r)
		return r;
	uint64_t at = rook__now() + ns;
	if (at < ns)
		at = UINT64_MAX - 1; /* saturate: sleep "forever" */
	struct rook__waiter *w = &t->t_waiter;
	uint32_t token = rook__wait_begin(w, true);
	return rook__wait_park_until(w, token, at, 0);
}
