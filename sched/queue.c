/* SPDX-License-Identifier: MIT */
/*
 * Queues across threads: a ring of fixed-size items under one spinlock,
 * with FIFO lists of waiting getters, putters and joiners (sched/waitq.h).
 *
 * Direct hand-off, no barging. A put that finds a waiting getter copies its
 * item straight into that getter's buffer; a get that frees a slot of a full
 * queue moves the first waiting putter's item in. So, under the lock:
 *   getters waiting  =>  q_count == 0
 *   putters waiting  =>  the queue is full (bounded) and not closed
 * and a newcomer never overtakes a waiter. An item or a slot goes to a
 * waiter only through a successful rook__wait_claim; a waiter whose wait was
 * already ended by a cancel or a deadline is skipped, so a cancelled getter
 * never consumes an item, a cancelled putter never puts one, and no item or
 * slot is lost to a waiter that has given up.
 *
 * q_unfinished counts items accepted by put and not yet task_done'd; items
 * got and not yet task_done'd are q_unfinished - q_count.
 *
 * Wake-up protocol: every wake of a waiter happens after a successful claim
 * made under q_lock, and the waiter is linked (and its wait begun) under
 * the same lock before it parks, so a grant cannot slip between its check
 * and its park. q_active counts waits that will take q_lock again (every
 * linked waiter until it is granted, or until it leaves after a cancel or a
 * deadline); rook_queue_destroy waits for it to reach zero before freeing.
 */
#include "sched/queue.h"

#include "sched/check.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sched/alloc.h"
#include "sched/lock.h"
#include "sched/wait.h"
#include "sched/waitq.h"

#define MIN_SLOTS 16u

struct rook_queue {
	struct rook__spin q_lock;
	bool q_closed;
	size_t q_item;       /* item size in bytes */
	size_t q_cap;        /* 0: unbounded */
	char *q_buf;         /* q_slots items; grows up to q_cap */
	size_t q_slots;
	size_t q_head;       /* index of the oldest item */
	size_t q_count;      /* items in the ring */
	size_t q_unfinished; /* put and not yet task_done */
	size_t q_active;     /* waits that will take q_lock again */
	struct rook__waitq q_getters; /* n_buf: where the item goes */
	struct rook__waitq q_putters; /* n_buf: the item to put */
	struct rook__waitq q_joiners;
	struct rook__waiter *q_destroyer; /* waiting for q_active == 0 */
	uint32_t q_destroy_token;
};

/* Item copies: the common sizes become single moves. */
static inline void copy_item(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 4:
		memcpy(dst, src, 4);
		break;
	case 8:
		memcpy(dst, src, 8);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, n);
		break;
	}
}

int rook_queue_create(struct rook_queue **qp, size_t item_size, size_t capacity)
{
	if (!qp || item_size == 0)
		return -EINVAL;
	size_t slots = capacity && capacity < MIN_SLOTS ? capacity : MIN_SLOTS;
	if (item_size > SIZE_MAX / MIN_SLOTS)
		return -EINVAL;
	struct rook_queue *q = rook__calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->q_buf = rook__alloc(slots * item_size);
	if (!q->q_buf)
		goto fail_buf;
	q->q_item = item_size;
	q->q_cap = capacity;
	q->q_slots = slots;
	*qp = q;
	return 0;

fail_buf:
	rook__free(q);
	return -ENOMEM;
}

/* ---- ring --------------------------------------------------------------- */

static inline bool ring_full(const struct rook_queue *q)
{
	return q->q_cap && q->q_count == q->q_cap;
}

static inline void ring_take(struct rook_queue *q, void *item)
{
	copy_item(item, q->q_buf + q->q_head * q->q_item, q->q_item);
	if (++q->q_head == q->q_slots)
		q->q_head = 0;
	q->q_count--;
}

/* Needs q_count < q_slots. */
static inline void ring_append(struct rook_queue *q, const void *item)
{
	size_t tail = q->q_head + q->q_count;
	if (tail >= q->q_slots)
		tail -= q->q_slots;
	copy_item(q->q_buf + tail * q->q_item, item, q->q_item);
	q->q_count++;
}

/* The ring size the queue grows to next, or 0 if it cannot grow. */
static size_t ring_next_slots(const struct rook_queue *q)
{
	size_t limit = SIZE_MAX / q->q_item;
	if (q->q_cap && q->q_cap < limit)
		limit = q->q_cap;
	if (q->q_slots >= limit)
		return 0;
	return q->q_slots > limit / 2 ? limit : q->q_slots * 2;
}

/*
 * Called with q_lock held and the ring full of q_slots < capacity items:
 * grow it. Allocates with the lock dropped; returns with it held, 0 or
 * -ENOMEM. The caller re-checks everything (the queue may have changed).
 */
static int ring_grow(struct rook_queue *q)
{
	size_t slots = ring_next_slots(q);
	if (slots == 0)
		return -ENOMEM;
	rook__spin_unlock(&q->q_lock);
	char *buf = rook__alloc(slots * q->q_item);
	rook__spin_lock(&q->q_lock);
	if (!buf)
		return -ENOMEM;
	if (q->q_slots >= slots || q->q_count < q->q_slots) {
		/* Someone else grew it or made room meanwhile. */
		rook__spin_unlock(&q->q_lock);
		rook__free(buf);
		rook__spin_lock(&q->q_lock);
		return 0;
	}
	size_t first = q->q_slots - q->q_head; /* items from head to the end */
	if (first > q->q_count)
		first = q->q_count;
	memcpy(buf, q->q_buf + q->q_head * q->q_item, first * q->q_item);
	memcpy(buf + first * q->q_item, q->q_buf, (q->q_count - first) * q->q_item);
	char *old = q->q_buf;
	q->q_buf = buf;
	q->q_slots = slots;
	q->q_head = 0;
	rook__spin_unlock(&q->q_lock);
	rook__free(old);
	rook__spin_lock(&q->q_lock);
	return 0;
}

/* ---- waiting ------------------------------------------------------------- */

/* Under q_lock, after a claim of n by the queue: n leaves q_active. */
static inline void grant(struct rook_queue *q, struct rook__wnode *n, struct rook__waiter **wake)
{
	q->q_active--;
	rook__waitq_grant(n, wake);
}

/* Under q_lock: one wait fewer will touch q; let a destroyer go on. */
static void active_drop(struct rook_queue *q, struct rook__waiter **wake)
{
	if (--q->q_active == 0 && q->q_destroyer &&
	    rook__wait_claim(q->q_destroyer, q->q_destroy_token, 0)) {
		q->q_destroyer->w_next_wake = *wake;
		*wake = q->q_destroyer;
		q->q_destroyer = NULL;
	}
}

/*
 * Called with q_lock held: wait on list wq with buf, unlocking q. Returns
 * what the wait ended with: 0 granted (the item moved), -EPIPE closed or
 * destroyed, -ECANCELED, -ETIMEDOUT. Never touches q after a grant.
 */
static int wait_on(struct rook_queue *q, struct rook__waitq *wq, void *buf)
{
	struct rook__waiter *w = rook__waiter_self();
	struct rook__waiter *wake = NULL;
	struct rook__wnode n;

	rook__waitq_push(wq, &n, w, rook__wait_cancellable(), buf);
	q->q_active++;
	rook__spin_unlock(&q->q_lock);
	int r = rook__wait_park(w, n.n_token);
	if (n.n_done)
		return r;
	rook__spin_lock(&q->q_lock);
	if (n.n_linked)
		rook__waitq_unlink(wq, &n);
	active_drop(q, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return r;
}

/* ---- put and get --------------------------------------------------------- */

/*
 * Under q_lock: try to put item without waiting. 0 done, -EAGAIN full,
 * -EPIPE closed, -ENOMEM (unbounded growth failed). May drop and re-take
 * the lock to grow the ring.
 */
static int put_locked(struct rook_queue *q, const void *item, struct rook__waiter **wake)
{
	for (;;) {
		if (q->q_closed)
			return -EPIPE;
		if (!rook__waitq_empty(&q->q_getters)) {
			struct rook__wnode *n = rook__waitq_claim_first(&q->q_getters, 0);
			if (n) {
				copy_item(n->n_buf, item, q->q_item);
				q->q_unfinished++;
				grant(q, n, wake);
				return 0;
			}
		}
		if (q->q_count < q->q_slots) {
			ring_append(q, item);
			q->q_unfinished++;
			return 0;
		}
		if (ring_full(q))
			return -EAGAIN;
		int r = ring_grow(q);
		if (r)
			return r;
	}
}

/* Under q_lock: take the head item; refill from the first waiting putter. */
static void take_locked(struct rook_queue *q, void *item, struct rook__waiter **wake)
{
	ring_take(q, item);
	if (rook__waitq_empty(&q->q_putters))
		return;
	struct rook__wnode *n = rook__waitq_claim_first(&q->q_putters, 0);
	if (n) {
		ring_append(q, n->n_buf);
		q->q_unfinished++;
		grant(q, n, wake);
	}
}

static int put(struct rook_queue *q, const void *item, bool may_wait)
{
	struct rook__waiter *wake = NULL;

	if (!q || !item)
		return -EINVAL;
	if (may_wait) {
		int r = rook__wait_check_fast();
		if (r)
			return r;
	}
	rook__spin_lock(&q->q_lock);
	int r = put_locked(q, item, &wake);
	if (r == -EAGAIN && may_wait)
		return wait_on(q, &q->q_putters, (void *)item); /* unlocks */
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return r;
}

static int get(struct rook_queue *q, void *item, bool may_wait)
{
	struct rook__waiter *wake = NULL;

	if (!q || !item)
		return -EINVAL;
	if (may_wait) {
		int r = rook__wait_check_fast();
		if (r)
			return r;
	}
	rook__spin_lock(&q->q_lock);
	if (q->q_count > 0) {
		take_locked(q, item, &wake);
		rook__spin_unlock(&q->q_lock);
		rook__waitq_wake_all(wake);
		return 0;
	}
	if (q->q_closed) {
		rook__spin_unlock(&q->q_lock);
		return -EPIPE;
	}
	if (!may_wait) {
		rook__spin_unlock(&q->q_lock);
		return -EAGAIN;
	}
	return wait_on(q, &q->q_getters, item); /* unlocks */
}

int rook_queue_put(struct rook_queue *q, const void *item)
{
	return put(q, item, true);
}

int rook_queue_try_put(struct rook_queue *q, const void *item)
{
	return put(q, item, false);
}

int rook_queue_get(struct rook_queue *q, void *item)
{
	return get(q, item, true);
}

int rook_queue_try_get(struct rook_queue *q, void *item)
{
	return get(q, item, false);
}

/* ---- close, task_done, join ---------------------------------------------- */

/* Under q_lock: end every wait on wq with result. */
static void end_all(struct rook_queue *q, struct rook__waitq *wq, int result,
		    struct rook__waiter **wake)
{
	struct rook__wnode *n;

	while ((n = rook__waitq_claim_first(wq, result)) != NULL)
		grant(q, n, wake);
}

void rook_queue_close(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return;
	rook__spin_lock(&q->q_lock);
	q->q_closed = true;
	/* Getters wait only on an empty queue: nothing is left for them. */
	end_all(q, &q->q_getters, -EPIPE, &wake);
	end_all(q, &q->q_putters, -EPIPE, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
}

int rook_queue_task_done(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return -EINVAL;
	rook__spin_lock(&q->q_lock);
	if (q->q_unfinished == q->q_count) {
		/* No item got is waiting for its task_done. */
		rook__spin_unlock(&q->q_lock);
		return -EINVAL;
	}
	if (--q->q_unfinished == 0)
		end_all(q, &q->q_joiners, 0, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return 0;
}

int rook_queue_join(struct rook_queue *q)
{
	if (!q)
		return -EINVAL;
	int r = rook__wait_check_fast();
	if (r)
		return r;
	rook__spin_lock(&q->q_lock);
	if (q->q_unfinished == 0) {
		rook__spin_unlock(&q->q_lock);
		return 0;
	}
	return wait_on(q, &q->q_joiners, NULL); /* unlocks */
}

size_t rook_queue_len(const struct rook_queue *q)
{
	if (!q)
		return 0;
	/* The lock is the object's own mutable state, not part of its value. */
	struct rook_queue *mq = (struct rook_queue *)q;
	rook__spin_lock(&mq->q_lock);
	size_t n = mq->q_count;
	rook__spin_unlock(&mq->q_lock);
	return n;
}

void rook_queue_destroy(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return;
	rook__spin_lock(&q->q_lock);
	q->q_closed = true;
	end_all(q, &q->q_getters, -EPIPE, &wake);
	end_all(q, &q->q_putters, -EPIPE, &wake);
	end_all(q, &q->q_joiners, -EPIPE, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);

	/* Waits that were cancelled or timed out still unlink themselves:
	 * wait (shielded) until the last of them has left. A deadline may end
	 * this wait early, so re-check under the lock each time. */
	struct rook__waiter *w = rook__waiter_self();
	for (;;) {
		rook__spin_lock(&q->q_lock);
		if (q->q_active == 0) {
			q->q_destroyer = NULL;
			rook__spin_unlock(&q->q_lock);
			break;
		}
		q->q_destroyer = w;
		q->q_destroy_token = rook__wait_begin(w, false);
		uint32_t token = q->q_destroy_token;
		rook__spin_unlock(&q->q_lock);
		rook__wait_park(w, token);
	}
	rook__free(q->q_buf);
	rook__free(q);
}

void rook__queue_waiters(struct rook_queue *q, struct rook__queue_waiters *out)
{
	rook__spin_lock(&q->q_lock);
	out->getters = q->q_getters.wq_len;
	out->putters = q->q_putters.wq_len;
	out->joiners = q->q_joiners.wq_len;
	rook__spin_unlock(&q->q_lock);
}
