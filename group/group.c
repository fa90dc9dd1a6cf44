/* SPDX-License-Identifier: MIT */
/*
 * Task groups (asyncio.TaskGroup). Each child runs in a wrapper task that
 * records itself in its group when it starts and its status when it ends.
 * Invariants, all under g_lock: g_nlive counts children spawned and not yet
 * ended (incremented before the child is published, so rook_group_wait
 * never returns while a spawn is in flight); a child's c_task is set only
 * between its start and its end, so cancelling the group reaches every
 * running child, and a child that starts after the group failed or was
 * cancelled ends -ECANCELED without running. Ended children queue on the
 * done list in completion order until rook_group_next takes them.
 */
#include <errno.h>

#include <rook.h>

#include "sched/alloc.h"
#include "sched/runtime.h"
#include "sched/task.h"
#include "sched/list.h"
#include "sched/wait.h"
#include "sync/waitq.h"
#include "diag/tdiag.h"

struct rook__gchild {
	struct rook_group *c_group;
	rook_fn c_fn;
	void *c_arg;
	int c_status;
	struct rook_task *c_task; /* set while running, under g_lock */
	struct rook__link c_link; /* live list, then done list */
};

struct rook_group {
	struct rook__spin g_lock;
	struct rook_rt *g_rt;
	struct rook__list g_live, g_done;
	long g_nlive;
	bool g_failed, g_cancelled;
	int g_first_status;
	struct rook__waitq g_waitq; /* rook_group_wait/next callers */
	/* rook_group_wait/next calls not yet returned; the destroyer waits on
	 * g_idleq until there are none (the last child's end wakes them all
	 * at once, and the destroyer may run first). */
	long g_active;
	bool g_destroying;
	struct rook__waitq g_idleq;
};

int rook_group_create(struct rook_group **out)
{
	if (!out)
		return -EINVAL;
	struct rook_task *self = rook_self();
	if (!self)
		return -EPERM;
	struct rook_group *g = rook__calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->g_rt = self->t_rt;
	*out = g;
	return 0;
}

/* g_lock held: cancel every running child. */
static void cancel_live(struct rook_group *g)
{
	for (struct rook__link *l = g->g_live.l_first; l; l = l->l_next) {
		struct rook__gchild *c = rook__list_entry(l, struct rook__gchild, c_link);
		if (c->c_task)
			rook__task_cancel(c->c_task);
	}
}

/* The child c ended with st: record it, wake the group's waiters. Also
 * called, on the worker's own stack, for a child that ended without
 * running (no stack, or cancelled before its first run): otherwise it
 * would stay counted in g_nlive and rook_group_wait would never return. */
static void child_ended(void *arg, int st)
{
	struct rook__gchild *c = arg;
	struct rook_group *g = c->c_group;
	rook__spin_lock(&g->g_lock);
	c->c_task = NULL;
	c->c_status = st;
	rook__list_remove(&g->g_live, &c->c_link);
	rook__list_push_back(&g->g_done, &c->c_link);
	g->g_nlive--;
	/* A cancelled child is not a failure: cancellations caused by the
	 * group (or asked for explicitly) never fail it. */
	if (st != 0 && st != -ECANCELED && !g->g_failed) {
		g->g_failed = true;
		g->g_first_status = st;
		cancel_live(g);
	}
	struct rook__waiter *wake = NULL;
	rook__waitq_claim_all(&g->g_waitq, 0, &wake);
	rook__spin_unlock(&g->g_lock);
	rook__waitq_wake_all(wake);
}

static int child_main(void *arg)
{
	struct rook__gchild *c = arg;
	struct rook_group *g = c->c_group;
	rook__spin_lock(&g->g_lock);
	bool skip = g->g_failed || g->g_cancelled;
	if (!skip)
		c->c_task = rook_self();
	rook__spin_unlock(&g->g_lock);
	int st = skip ? -ECANCELED : c->c_fn(c->c_arg);
	child_ended(c, st);
	return st;
}

__attribute__((constructor)) static void group_init(void)
{
	(void)rook__task_on_unrun(child_main, child_ended);
}

int rook_group_spawn(struct rook_group *g, rook_fn fn, void *arg)
{
	if (!g || !fn)
		return -EINVAL;
	struct rook__gchild *c = rook__calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->c_group = g;
	c->c_fn = fn;
	c->c_arg = arg;
	rook__spin_lock(&g->g_lock);
	if (g->g_failed) {
		rook__spin_unlock(&g->g_lock);
		rook__free(c);
		return -ECANCELED;
	}
	rook__list_push_back(&g->g_live, &c->c_link);
	g->g_nlive++;
	rook__spin_unlock(&g->g_lock);
	int r = rook_rt_spawn(g->g_rt, NULL, child_main, c);
	if (r < 0) {
		rook__spin_lock(&g->g_lock);
		rook__list_remove(&g->g_live, &c->c_link);
		g->g_nlive--;
		struct rook__waiter *wake = NULL;
		if (g->g_nlive == 0)
			rook__waitq_claim_all(&g->g_waitq, 0, &wake);
		rook__spin_unlock(&g->g_lock);
		rook__waitq_wake_all(wake);
		rook__free(c);
	}
	return r;
}

void rook_group_cancel(struct rook_group *g)
{
	if (!g)
		return;
	rook__spin_lock(&g->g_lock);
	g->g_cancelled = true;
	cancel_live(g);
	rook__spin_unlock(&g->g_lock);
}

/* Wait until a child ends (or none is left). g_lock held on entry and on
 * return. 0, or the caller's -ECANCELED / -ETIMEDOUT / -ENOMEM. */
static int wait_change(struct rook_group *g, bool interruptible)
{
	struct rook__wnode n;
	struct rook__waiter *w = rook__waiter_self();
	rook__waitq_push(&g->g_waitq, &n, w, interruptible && rook__wait_cancellable(), NULL);
	rook__spin_unlock(&g->g_lock);
	int r = rook__wait_park(w, n.n_token);
	rook__spin_lock(&g->g_lock);
	if (n.n_linked)
		rook__waitq_unlink(&g->g_waitq, &n);
	return r;
}

/* Cancel every child and wait, uninterruptibly, until all have ended. */
static void drain(struct rook_group *g)
{
	rook__spin_lock(&g->g_lock);
	g->g_cancelled = true;
	cancel_live(g);
	while (g->g_nlive > 0)
		wait_change(g, false);
	rook__spin_unlock(&g->g_lock);
}

/* g_lock held: a wait or next call leaves; the last one out of a group
 * being destroyed lets the destroyer go on. */
static void call_end(struct rook_group *g, struct rook__waiter **wake)
{
	if (--g->g_active == 0 && g->g_destroying)
		rook__waitq_claim_all(&g->g_idleq, 0, wake);
}

int rook_group_wait(struct rook_group *g)
{
	ROOK__DIAG_CALL("rook_group_wait");
	if (!g)
		return -EINVAL;
	int r = rook__wait_check();
	rook__spin_lock(&g->g_lock);
	g->g_active++;
	while (r == 0 && g->g_nlive > 0)
		r = wait_change(g, true);
	if (r == 0)
		r = g->g_failed ? g->g_first_status : 0;
	rook__spin_unlock(&g->g_lock);
	if (r == -ECANCELED || r == -ETIMEDOUT || r == -ENOMEM)
		drain(g); /* the waiter was cancelled or timed out: so is the group */
	struct rook__waiter *wake = NULL;
	rook__spin_lock(&g->g_lock);
	call_end(g, &wake);
	rook__spin_unlock(&g->g_lock);
	rook__waitq_wake_all(wake);
	return r;
}

int rook_group_next(struct rook_group *g, void **arg, int *status)
{
	if (!g)
		return -EINVAL;
	rook__spin_lock(&g->g_lock);
	g->g_active++;
	int r = 0;
	struct rook__waiter *wake = NULL;
	while (rook__list_empty(&g->g_done)) {
		if (g->g_nlive == 0)
			r = -ENOENT;
		else if ((r = rook__wait_check()) == 0)
			r = wait_change(g, true);
		if (r) {
			call_end(g, &wake);
			rook__spin_unlock(&g->g_lock);
			rook__waitq_wake_all(wake);
			return r;
		}
	}
	struct rook__gchild *c =
	    rook__list_entry(rook__list_pop_front(&g->g_done), struct rook__gchild, c_link);
	call_end(g, &wake);
	rook__spin_unlock(&g->g_lock);
	rook__waitq_wake_all(wake);
	if (arg)
		*arg = c->c_arg;
	if (status)
		*status = c->c_status;
	rook__free(c);
	return 0;
}

void rook_group_destroy(struct rook_group *g)
{
	if (!g)
		return;
	drain(g);
	/* Callers woken with us must be out before g goes (not cancellable:
	 * they return at once, nothing being left to wait for). */
	rook__spin_lock(&g->g_lock);
	g->g_destroying = true;
	while (g->g_active > 0) {
		struct rook__wnode n;
		struct rook__waiter *w = rook__waiter_self();
		rook__waitq_push(&g->g_idleq, &n, w, false, NULL);
		rook__spin_unlock(&g->g_lock);
		(void)rook__wait_park(w, n.n_token);
		rook__spin_lock(&g->g_lock);
		if (n.n_linked)
			rook__waitq_unlink(&g->g_idleq, &n);
	}
	rook__spin_unlock(&g->g_lock);
	struct rook__link *l;
	while ((l = rook__list_pop_front(&g->g_done)) != NULL)
		rook__free(rook__list_entry(l, struct rook__gchild, c_link));
	rook__free(g);
}
