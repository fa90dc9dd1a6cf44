/* SPDX-License-Identifier: MIT */
/*
 * Waiting on many tasks: gather (all), wait_any (first), wait_for (one,
 * with a timeout). wait_any publishes one waiter on every task's joiner
 * list with the same token, so whichever finishes first claims it; the
 * others' claims fail, and the waiter unlinks every node before returning.
 */
#include <errno.h>

#include <rook.h>

#include "sched/alloc.h"
#include "sched/task.h"
#include "sched/wait.h"
#include "diag/tdiag.h"

#define STACK_NODES 16

static bool is_done(struct rook_task *t)
{
	return atomic_load_explicit(&t->t_state, memory_order_acquire) == ROOK__T_DONE;
}

/* The task slot of a handle already checked by check_handles. */
static struct rook_task *slot(struct rook_task *h)
{
	uint32_t tag;
	return rook__handle_slot(h, &tag);
}

static int check_handles(struct rook_task **ts, size_t n)
{
	struct rook_task *self = rook_self();
	for (size_t i = 0; i < n; i++) {
		uint32_t g;
		struct rook_task *t = rook__handle_get(ts[i], &g);
		if (!t)
			return -EINVAL;
		if (t == self)
			return -EDEADLK;
	}
	return 0;
}

/* Give the claims on ts[0..n) back (their handles are held again). */
static void unclaim(struct rook_task **ts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		atomic_fetch_or_explicit(&slot(ts[i])->t_gen, ROOK__GEN_HANDLE,
					 memory_order_relaxed);
}

int rook_gather(struct rook_task **ts, size_t n, int *statuses)
{
	ROOK__DIAG_CALL("rook_gather");
	if (n == 0)
		return 0;
	if (!ts)
		return -EINVAL;
	int r = check_handles(ts, n);
	if (r)
		return r;
	/* Claim every handle first (clear its held bit, keeping its
	 * reference): a handle listed twice, released meanwhile or stale
	 * fails its claim, and the claimed slots cannot be reused while we
	 * wait. Interrupted or refused, the claims are given back. */
	for (size_t i = 0; i < n; i++) {
		uint32_t g;
		struct rook_task *t = rook__handle_get(ts[i], &g);
		if (!t || !atomic_compare_exchange_strong_explicit(
			      &t->t_gen, &g, g & ~ROOK__GEN_HANDLE, memory_order_acq_rel,
			      memory_order_relaxed)) {
			unclaim(ts, i);
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < n; i++) {
		r = rook__task_wait_done(slot(ts[i]));
		if (r) {
			unclaim(ts, n);
			return r; /* interrupted: no handle released */
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct rook_task *t = slot(ts[i]);
		if (statuses)
			statuses[i] = atomic_load_explicit(&t->t_status, memory_order_relaxed);
		rook__task_put(t); /* the handle's reference */
	}
	return 0;
}

static int first_done(struct rook_task **ts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rook_task *t = slot(ts[i]);
		if (!is_done(t))
			continue;
		/* t may have ended just after we passed an earlier listing of
		 * it: a duplicate reports its first index. */
		for (size_t j = 0; j < i; j++)
			if (slot(ts[j]) == t)
				return (int)j;
		return (int)i;
	}
	return -1;
}

static void unlink_node(struct rook_task *t, struct rook__jnode *n)
{
	rook__spin_lock(&t->t_lock);
	rook__jnode_remove(t, n);
	rook__spin_unlock(&t->t_lock);
}

/* Link n on t unless t is done; false if it is. Caller's wait has begun. */
static bool link_node(struct rook_task *t, struct rook__jnode *n)
{
	rook__spin_lock(&t->t_lock);
	bool done = is_done(t);
	if (!done)
		rook__jnode_push(t, n);
	rook__spin_unlock(&t->t_lock);
	return !done;
}

int rook_wait_any(struct rook_task **ts, size_t n)
{
	ROOK__DIAG_CALL("rook_wait_any");
	if (!ts || n == 0 || n > INT32_MAX)
		return -EINVAL;
	int r = check_handles(ts, n);
	if (r)
		return r;
	int idx = first_done(ts, n);
	if (idx >= 0)
		return idx;
	r = rook__wait_check();
	if (r)
		return r;
	struct rook__jnode local[STACK_NODES], *nodes = local;
	if (n > STACK_NODES && !(nodes = rook__calloc(n, sizeof(*nodes))))
		return -ENOMEM;
	struct rook__waiter *w = rook__waiter_self();
	uint32_t token = rook__wait_begin(w, rook__wait_cancellable());
	size_t linked = 0;
	bool some_done = false;
	for (; linked < n; linked++) {
		nodes[linked] = (struct rook__jnode){.j_w = w, .j_token = token};
		if (!link_node(slot(ts[linked]), &nodes[linked])) {
			some_done = true;
			break;
		}
	}
	if (some_done) {
		/* End our own wait; if a finisher claimed it first, its wake is
		 * on the way and must be consumed by parking. */
		if (!rook__wait_claim(w, token, 0))
			r = rook__wait_park(w, token);
		else if (w->w_task)
			atomic_store_explicit(&w->w_task->t_park, ROOK__P_RUNNING,
					      memory_order_relaxed);
	} else {
		r = rook__wait_park(w, token);
	}
	for (size_t i = 0; i < linked; i++)
		unlink_node(slot(ts[i]), &nodes[i]);
	if (nodes != local)
		rook__free(nodes);
	if (r)
		return r;
	idx = first_done(ts, n);
	return idx >= 0 ? idx : -EAGAIN; /* unreachable: a finisher woke us */
}

int rook_wait_for(rook_fn fn, void *arg, uint64_t timeout_ns, int *status)
{
	ROOK__DIAG_CALL("rook_wait_for");
	if (!fn)
		return -EINVAL;
	if (!rook_self())
		return -EPERM;
	uint64_t now = rook_now();
	uint64_t at = timeout_ns > UINT64_MAX - now ? UINT64_MAX - 1 : now + timeout_ns;
	/* The deadline first: if it cannot be pushed (-ENOSPC) nothing has
	 * been spawned, so no child is left running unwatched. */
	int r = rook_deadline_push(at);
	if (r)
		return r;
	struct rook_task *h;
	r = rook_spawn(&h, fn, arg);
	if (r) {
		rook_deadline_pop();
		return r;
	}
	struct rook_task *t = slot(h);
	r = rook__task_wait_done(t);
	rook_deadline_pop();
	if (r) {
		/* Timed out or cancelled: cancel the child and wait for it to
		 * end, cleanup included, so nothing is left running. */
		rook_cancel(h);
		rook_shield_push();
		rook__task_wait_done(t);
		rook_shield_pop();
		/* A result computed anyway (the child ignored or outran the
		 * cancellation) is returned, not lost. */
		if (atomic_load_explicit(&t->t_status, memory_order_relaxed) != -ECANCELED &&
		    r == -ETIMEDOUT)
			r = 0;
	}
	if (r == 0 && status)
		*status = atomic_load_explicit(&t->t_status, memory_order_relaxed);
	rook_detach(h); /* t is done: this releases our handle */
	return r;
}
