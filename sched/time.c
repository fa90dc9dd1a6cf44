/* SPDX-License-Identifier: MIT */
/*
 * Time, deadline scopes and shields. A task keeps a stack of deadline
 * scopes; each records the shield depth it was pushed at, and only scopes
 * pushed at the current depth apply (a shield hides the deadlines outside
 * it, and cancellation, until it is popped). t_dl_eff caches the earliest
 * applicable deadline; every interruptible wait arms one timer for it
 * (wait.c). All of this is owner-only state: only the task touches it.
 */
#include <errno.h>

#include <rook.h>

#include "sched/alloc.h"
#include "sched/task.h"
#include "sched/timer.h"
#include "sched/wait.h"

uint64_t rook_now(void)
{
	return rook__now();
}

static void recompute(struct rook_task *t)
{
	int depth = atomic_load_explicit(&t->t_shield, memory_order_relaxed);
	uint64_t eff = UINT64_MAX;
	for (int i = t->t_nscopes - 1; i >= 0 && t->t_scopes[i].sc_shield == depth; i--)
		if (t->t_scopes[i].sc_deadline < eff)
			eff = t->t_scopes[i].sc_deadline;
	t->t_dl_eff = eff;
}

int rook_deadline_push(uint64_t abs_ns)
{
	struct rook_task *t = rook_self();
	if (!t)
		return -EPERM;
	if (t->t_nscopes == t->t_scope_cap) {
		int cap = t->t_scope_cap ? t->t_scope_cap * 2 : 4;
		if (cap > ROOK_MAX_SCOPES)
			return -ENOSPC;
		struct rook__scope *sc = rook__alloc((size_t)cap * sizeof(*sc));
		if (!sc)
			return -ENOMEM;
		for (int i = 0; i < t->t_nscopes; i++)
			sc[i] = t->t_scopes[i];
		rook__free(t->t_scopes);
		t->t_scopes = sc;
		t->t_scope_cap = cap;
	}
	t->t_scopes[t->t_nscopes].sc_deadline = abs_ns;
	t->t_scopes[t->t_nscopes].sc_shield = atomic_load_explicit(&t->t_shield,
								   memory_order_relaxed);
	t->t_nscopes++;
	recompute(t);
	return 0;
}

bool rook_deadline_pop(void)
{
	struct rook_task *t = rook_self();
	if (!t || t->t_nscopes == 0 ||
	    t->t_scopes[t->t_nscopes - 1].sc_shield !=
		    atomic_load_explicit(&t->t_shield, memory_order_relaxed))
		return false; /* nothing pushed at this depth: misuse, no effect */
	uint64_t dl = t->t_scopes[--t->t_nscopes].sc_deadline;
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
	while (t->t_nscopes > 0 && t->t_scopes[t->t_nscopes - 1].sc_shield == depth)
		t->t_nscopes--;
	atomic_store_explicit(&t->t_shield, depth - 1, memory_order_relaxed);
	recompute(t);
}

int rook_sleep(uint64_t ns)
{
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
