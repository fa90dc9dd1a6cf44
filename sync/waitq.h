/* SPDX-License-Identifier: MIT */
/*
 * FIFO lists of waiting calls, shared by queues (queue.c) and the
 * synchronization objects (sync.c). A node lives on the waiting caller's
 * stack and is linked on one list of one object, under that object's lock.
 *
 * The protocol on top of sched/wait.h:
 * - A waiter links its node and calls rook__wait_begin under the object
 *   lock, then unlocks and parks.
 * - A granter, under the object lock, takes nodes from the head with
 *   waitq_claim_first: a node whose claim fails (its wait was already ended
 *   by a cancel or a deadline) is unlinked and skipped, so nothing granted
 *   is ever given to a waiter that will not return 0. After a successful
 *   claim the granter may write into the node's buffer, then sets n_done
 *   and collects the waiter on its private wake list (w_next_wake); it
 *   calls waitq_wake_all after dropping the lock.
 * - A waiter whose node has n_done set after park was granted, unlinked,
 *   and must not touch the object again. Otherwise it re-takes the lock and
 *   unlinks its node if still linked (waitq_leave).
 * n_done is written only by the claim's winner before the wake and read by
 * the waiter after it; the wake/park handshake orders the two.
 */
#ifndef ROOK_SCHED_WAITQ_H
#define ROOK_SCHED_WAITQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched/list.h"
#include "sched/wait.h"

struct rook__wnode {
	struct rook__waiter *n_w;
	uint32_t n_token;
	bool n_linked; /* under the object lock */
	bool n_done;   /* granted by a claim of the object (see above) */
	struct rook__link n_link;
	void *n_buf; /* the item to copy in or out, by contract of the list */
};

struct rook__waitq {
	struct rook__list wq_nodes;
	size_t wq_len; /* linked nodes (some may already be claimed elsewhere) */
};

static inline bool rook__waitq_empty(const struct rook__waitq *q)
{
	return rook__list_empty(&q->wq_nodes);
}

/* Under the object lock: the oldest linked node (q must not be empty). */
static inline struct rook__wnode *rook__waitq_first(const struct rook__waitq *q)
{
	return rook__list_entry(q->wq_nodes.l_first, struct rook__wnode, n_link);
}

/* Under the object lock: begin the caller's wait and append its node. */
static inline void rook__waitq_push(struct rook__waitq *q, struct rook__wnode *n,
				    struct rook__waiter *w, bool cancellable, void *buf)
{
	n->n_w = w;
	n->n_buf = buf;
	n->n_done = false;
	n->n_linked = true;
	rook__list_push_back(&q->wq_nodes, &n->n_link);
	q->wq_len++;
	n->n_token = rook__wait_begin(w, cancellable);
}

/* Under the object lock: unlink n (which must be linked). */
static inline void rook__waitq_unlink(struct rook__waitq *q, struct rook__wnode *n)
{
	rook__list_remove(&q->wq_nodes, &n->n_link);
	n->n_linked = false;
	q->wq_len--;
}

/*
 * Under the object lock: claim the first waiter that is still waiting, with
 * result, and unlink it; nodes whose claim fails are unlinked and skipped.
 * Returns the claimed node (not yet marked done, not yet on a wake list) or
 * NULL when none is left.
 */
static inline struct rook__wnode *rook__waitq_claim_first(struct rook__waitq *q, int result)
{
	while (!rook__waitq_empty(q)) {
		struct rook__wnode *n = rook__waitq_first(q);
		rook__waitq_unlink(q, n);
		if (rook__wait_claim(n->n_w, n->n_token, result))
			return n;
	}
	return NULL;
}

/* Under the object lock, after a successful claim of n: mark it granted and
 * put its waiter on the private wake list *wake. n must not be touched
 * after this (its owner may return as soon as it is woken). */
static inline void rook__waitq_grant(struct rook__wnode *n, struct rook__waiter **wake)
{
	struct rook__waiter *w = n->n_w;

	n->n_done = true;
	w->w_next_wake = *wake;
	*wake = w;
}

/* Under the object lock: claim every waiting node with result. */
static inline void rook__waitq_claim_all(struct rook__waitq *q, int result,
					 struct rook__waiter **wake)
{
	struct rook__wnode *n;

	while ((n = rook__waitq_claim_first(q, result)) != NULL)
		rook__waitq_grant(n, wake);
}

/* After dropping the object lock: wake every waiter on the list. */
static inline void rook__waitq_wake_all(struct rook__waiter *wake)
{
	while (wake) {
		struct rook__waiter *next = wake->w_next_wake;
		rook__wait_wake(wake);
		wake = next;
	}
}

#endif
