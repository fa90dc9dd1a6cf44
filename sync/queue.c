/* SPDX-License-Identifier: MIT */
/*
 * Queues across threads.
 *
 * The common case takes no lock. Items move through a ring of R slots in
 * the manner of Vyukov's bounded MPMC queue: each slot carries a stamp that
 * says whose turn it is, producers claim a slot with one CAS on q_tail and
 * consumers with one CAS on q_head, and those two words sit on cache lines
 * of their own, so producers and consumers on different cores share a line
 * only near an empty or a full ring. Everything else (waiting, hand-off,
 * items beyond the ring, close, task_done/join) goes through q_lock.
 *
 * Positions are stamps, lap * ONE_LAP + index, ONE_LAP being the smallest
 * power of two above R (no division on the fast path). For the position p
 * of slot p's index:
 *   stamp == p             the slot is free for the put at p
 *   stamp == p + 1         it holds the item put at p
 * and the get at p frees it for the next lap by stamping p + ONE_LAP.
 *
 * q_tail and q_head hold stamp << 2 | flags. A set flag makes the fast
 * path's CAS impossible, so the caller takes the slow path under q_lock:
 *   T_CLOSED  (tail)  closed: puts fail with -EPIPE, gets drain what is left.
 *   T_GETTERS (tail)  getters may be waiting. Set under q_lock by a CAS
 *                     that sees head == tail, so the ring is empty and
 *                     stays empty while the flag is up: a put hands its
 *                     item straight to the first getter, and lowers the
 *                     flag when it finds none left.
 *   H_BEHIND  (head)  items wait behind a full ring: in the backlog (the
 *                     part of the capacity beyond the ring, or all of it
 *                     past R for an unbounded queue) or with blocked
 *                     putters. Set under q_lock by a CAS that sees the ring
 *                     full. While it is up each get, under q_lock, takes
 *                     the head item and puts the oldest item from behind
 *                     into the same slot as the new tail, so the ring stays
 *                     full, order is kept, and a newcomer cannot overtake.
 * Invariants under q_lock: T_GETTERS => the ring is empty; backlog items or
 * live waiting putters => H_BEHIND and a full ring; waiting putters => the
 * backlog is at its limit.
 *
 * Hence direct hand-off and no barging: waiters are served in FIFO order,
 * an item or a slot goes to a waiter only through a successful
 * rook__wait_claim, and a waiter whose wait was ended by a cancel or a
 * deadline is skipped, so a cancelled getter consumes nothing and a
 * cancelled putter puts nothing.
 *
 * Counting for task_done/join without a counter on the fast path: items put
 * = linear(tail) + q_handed (hand-offs to getters) + q_bcount (backlog);
 * items got = linear(head) + q_handed; q_done counts task_done calls.
 *
 * q_active counts waits that will take q_lock again (every linked waiter
 * until it is granted, or until it leaves after a cancel or a deadline);
 * rook_queue_destroy waits for it to reach zero before freeing.
 */
#include "sync/queue.h"

#include "sched/check.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sched/alloc.h"
#include "sched/lock.h"
#include "sched/testing.h"
#include "sched/wait.h"
#include "sync/waitq.h"
#include "diag/tdiag.h"

#define T_CLOSED  1u
#define T_GETTERS 2u
#define H_BEHIND  1u
#define FLAGS     3u

/* Ring size: the capacity, but no more than RING_MAX slots or RING_BYTES
 * (a larger capacity continues in the backlog); RING_UNBOUNDED slots for
 * an unbounded queue. */
#define RING_MAX       4096u
#define RING_UNBOUNDED 256u
#define RING_BYTES     (64u * 1024u)
#define BACKLOG_MIN    16u

enum { RING_OK, RING_EMPTY_OR_FULL, RING_FLAGGED };

struct rook_queue {
	/* Fixed at creation. */
	char *q_ring;  /* R slots of q_stride bytes: stamp, then the item */
	size_t q_item; /* item size in bytes */
	size_t q_stride;
	unsigned q_fast_shift; /* log2(q_stride) for 4, 8, 16-byte items; else 0 */
	uint64_t q_rcap;       /* R */
	uint64_t q_lapmask;    /* ONE_LAP - 1 */
	unsigned q_lapshift;
	size_t q_blimit; /* backlog items at most; SIZE_MAX: unbounded */

	_Alignas(64) _Atomic uint64_t q_tail;
	_Alignas(64) _Atomic uint64_t q_head;

	_Alignas(64) struct rook__spin q_lock;
	char *q_bbuf; /* backlog: a growable ring of q_bslots items */
	size_t q_bslots;
	size_t q_bhead;
	size_t q_bcount;
	size_t q_active;           /* waits that will take q_lock again */
	_Atomic uint64_t q_handed; /* written under q_lock */
	_Atomic uint64_t q_done;
	_Atomic bool q_join_wait;     /* joiners are linked */
	struct rook__waitq q_getters; /* n_buf: where the item goes */
	struct rook__waitq q_putters; /* n_buf: the item to put */
	struct rook__waitq q_joiners;
	struct rook__waiter *q_destroyer; /* waiting for q_active == 0 */
	uint32_t q_destroy_token;
};

/* Item copies: the common sizes become single moves; copy_small copies
 * only those (false: n is another size, nothing copied), without a call. */
static inline bool copy_small(void *dst, const void *src, size_t n)
{
	switch (n) {
	case 8:
		memcpy(dst, src, 8);
		return true;
	case 4:
		memcpy(dst, src, 4);
		return true;
	case 16:
		memcpy(dst, src, 16);
		return true;
	default:
		return false;
	}
}

static inline void copy_item(void *dst, const void *src, size_t n)
{
	if (!copy_small(dst, src, n))
		memcpy(dst, src, n);
}

static _Atomic size_t ring_limit;                            /* tests: rook__queue_ring_limit */
static void (*_Atomic unfinished_hook)(struct rook_queue *); /* tests */

void rook__queue_ring_limit(size_t slots)
{
	atomic_store_explicit(&ring_limit, slots, memory_order_relaxed);
}

void rook__queue_unfinished_hook(void (*fn)(struct rook_queue *q))
{
	atomic_store_explicit(&unfinished_hook, fn, memory_order_relaxed);
}

int rook_queue_create(struct rook_queue **qp, size_t item_size, size_t capacity)
{
	if (!qp || item_size == 0 || item_size > SIZE_MAX / 4 - 64)
		return -EINVAL;
	size_t stride = sizeof(uint64_t) + ((item_size + 7) & ~(size_t)7);
	/* The one-attempt fast path's items: a power-of-two stride (a 16-byte
	 * item's slot grows from 24 to 32 bytes), so a slot is a shift away. */
	unsigned fast_shift = 0;
	if (item_size == 4 || item_size == 8) {
		fast_shift = 4;
	} else if (item_size == 16) {
		fast_shift = 5;
		stride = 32;
	}
	size_t r = capacity ? capacity : RING_UNBOUNDED;
	if (r > RING_MAX)
		r = RING_MAX;
	if (r > RING_BYTES / stride)
		r = RING_BYTES / stride ? RING_BYTES / stride : 1;
	size_t limit = atomic_load_explicit(&ring_limit, memory_order_relaxed);
	if (limit && r > limit)
		r = limit;
	unsigned shift = 0;
	while (((uint64_t)1 << shift) <= r)
		shift++;

	struct rook_queue *q = rook__alloc_aligned(64, sizeof(*q));
	if (!q)
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->q_ring = rook__alloc_aligned(64, r * stride);
	if (!q->q_ring) {
		rook__free(q);
		return -ENOMEM;
	}
	q->q_item = item_size;
	q->q_stride = stride;
	q->q_fast_shift = fast_shift;
	q->q_rcap = r;
	q->q_lapshift = shift;
	q->q_lapmask = ((uint64_t)1 << shift) - 1;
	q->q_blimit = capacity ? capacity - r : SIZE_MAX;
	for (size_t i = 0; i < r; i++)
		atomic_init((_Atomic uint64_t *)(q->q_ring + i * stride), (uint64_t)i);
	*qp = q;
	return 0;
}

/* ---- the ring ------------------------------------------------------------ */

static inline _Atomic uint64_t *slot_at(const struct rook_queue *q, uint64_t pos)
{
	return (_Atomic uint64_t *)(q->q_ring + (pos & q->q_lapmask) * q->q_stride);
}

static inline void *slot_item(_Atomic uint64_t *s)
{
	return (char *)s + sizeof(uint64_t);
}

static inline uint64_t pos_next(const struct rook_queue *q, uint64_t pos)
{
	if ((pos & q->q_lapmask) + 1 < q->q_rcap)
		return pos + 1;
	return (pos | q->q_lapmask) + 1;
}

/* Items that have passed position pos since the queue was made. */
static inline uint64_t pos_linear(const struct rook_queue *q, uint64_t pos)
{
	return (pos >> q->q_lapshift) * q->q_rcap + (pos & q->q_lapmask);
}

/*
 * Put item into the ring. RING_OK; RING_EMPTY_OR_FULL, the ring is full;
 * RING_FLAGGED, q_tail has a flag up (nothing done).
 */
static inline int ring_push(struct rook_queue *q, const void *item)
{
	uint64_t w = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	unsigned spins = 0, lost = 0;

	for (;;) {
		if (w & FLAGS)
			return RING_FLAGGED;
		uint64_t pos = w >> 2;
		_Atomic uint64_t *s = slot_at(q, pos);
		/* Acquire: the get that freed the slot has read its item. */
		uint64_t st = atomic_load_explicit(s, memory_order_acquire);
		if (st == pos) {
			if (atomic_compare_exchange_weak_explicit(
				&q->q_tail, &w, pos_next(q, pos) << 2, memory_order_relaxed,
				memory_order_relaxed)) {
				copy_item(slot_item(s), item, q->q_item);
				atomic_store_explicit(s, pos + 1, memory_order_release);
				return RING_OK;
			}
			rook__backoff(&lost);
			continue;
		}
		if (st + q->q_lapmask == pos) {
			/* The slot still holds the last lap's item: full, unless
			 * its get is under way. */
			uint64_t h = atomic_load_explicit(&q->q_head, memory_order_relaxed) >> 2;
			if (h + q->q_lapmask + 1 == pos)
				return RING_EMPTY_OR_FULL;
		}
		rook__spin_wait(&spins); /* a put or get under way elsewhere */
		w = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	}
}

/*
 * Take the head item of the ring into item. RING_OK; RING_EMPTY_OR_FULL,
 * the ring is empty and *tail is the q_tail seen (its flags say whether
 * the queue is closed); RING_FLAGGED, H_BEHIND is up (nothing done).
 */
static inline int ring_pop(struct rook_queue *q, void *item, uint64_t *tail)
{
	uint64_t w = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	unsigned spins = 0, lost = 0;

	for (;;) {
		if (w & H_BEHIND)
			return RING_FLAGGED;
		uint64_t pos = w >> 2;
		_Atomic uint64_t *s = slot_at(q, pos);
		/* Acquire: the put's item is written. */
		uint64_t st = atomic_load_explicit(s, memory_order_acquire);
		if (st == pos + 1) {
			if (atomic_compare_exchange_weak_explicit(
				&q->q_head, &w, pos_next(q, pos) << 2, memory_order_relaxed,
				memory_order_relaxed)) {
				copy_item(item, slot_item(s), q->q_item);
				atomic_store_explicit(s, pos + q->q_lapmask + 1,
						      memory_order_release);
				return RING_OK;
			}
			rook__backoff(&lost);
			continue;
		}
		if (st == pos) {
			/* Not written this lap: empty, unless its put is under way. */
			uint64_t t = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
			if (t >> 2 == pos) {
				*tail = t;
				return RING_EMPTY_OR_FULL;
			}
		}
		rook__spin_wait(&spins); /* a put or get under way elsewhere */
		w = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	}
}

/*
 * The common case in one attempt: no flag up, the slot free (or full, for
 * a get), the CAS won, an item of 4, 8 or 16 bytes. Leaf code, so the
 * exported calls that try it first need no stack frame (their general
 * path costs six register saves and restores, 2-3 ns a call, measured).
 * false: nothing done, take the general path.
 */
static inline bool push_once(struct rook_queue *q, const void *item)
{
	uint64_t w = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	unsigned shift = q->q_fast_shift;
	if ((w & FLAGS) || !shift)
		return false;
	uint64_t pos = w >> 2;
	_Atomic uint64_t *s = (_Atomic uint64_t *)(q->q_ring + ((pos & q->q_lapmask) << shift));
	/* Acquire: the get that freed the slot has read its item. */
	if (atomic_load_explicit(s, memory_order_acquire) != pos ||
	    !atomic_compare_exchange_strong_explicit(&q->q_tail, &w, pos_next(q, pos) << 2,
						     memory_order_relaxed, memory_order_relaxed))
		return false;
	copy_small(slot_item(s), item, q->q_item);
	atomic_store_explicit(s, pos + 1, memory_order_release);
	return true;
}

static inline bool pop_once(struct rook_queue *q, void *item)
{
	uint64_t w = atomic_load_explicit(&q->q_head, memory_order_relaxed);
	unsigned shift = q->q_fast_shift;
	if ((w & H_BEHIND) || !shift)
		return false;
	uint64_t pos = w >> 2;
	_Atomic uint64_t *s = (_Atomic uint64_t *)(q->q_ring + ((pos & q->q_lapmask) << shift));
	/* Acquire: the put's item is written. */
	if (atomic_load_explicit(s, memory_order_acquire) != pos + 1 ||
	    !atomic_compare_exchange_strong_explicit(&q->q_head, &w, pos_next(q, pos) << 2,
						     memory_order_relaxed, memory_order_relaxed))
		return false;
	copy_small(item, slot_item(s), q->q_item);
	atomic_store_explicit(s, pos + q->q_lapmask + 1, memory_order_release);
	return true;
}

/* ---- the backlog (under q_lock) ------------------------------------------ */

static inline void *backlog_at(const struct rook_queue *q, size_t i)
{
	size_t k = q->q_bhead + i;
	if (k >= q->q_bslots)
		k -= q->q_bslots;
	return q->q_bbuf + k * q->q_item;
}

static inline void backlog_drop_head(struct rook_queue *q)
{
	if (++q->q_bhead == q->q_bslots)
		q->q_bhead = 0;
	q->q_bcount--;
}

/*
 * Append item (needs q_bcount < q_blimit). 0, 1 if the backlog had to grow
 * (the lock was dropped meanwhile: the caller re-checks everything and
 * calls again), or -ENOMEM.
 */
static int backlog_push(struct rook_queue *q, const void *item)
{
	if (q->q_bcount < q->q_bslots) {
		copy_item(backlog_at(q, q->q_bcount), item, q->q_item);
		q->q_bcount++;
		return 0;
	}
	size_t limit = SIZE_MAX / q->q_item;
	if (q->q_blimit < limit)
		limit = q->q_blimit;
	size_t slots = q->q_bslots ? q->q_bslots * 2 : BACKLOG_MIN;
	if (slots > limit || slots < q->q_bslots)
		slots = limit;
	rook__spin_unlock(&q->q_lock);
	char *buf = rook__alloc(slots * q->q_item);
	rook__spin_lock(&q->q_lock);
	if (!buf)
		return -ENOMEM;
	if (q->q_bslots >= slots) {
		/* Someone else grew it meanwhile. */
		rook__spin_unlock(&q->q_lock);
		rook__free(buf);
		rook__spin_lock(&q->q_lock);
		return 1;
	}
	size_t first = q->q_bslots - q->q_bhead; /* items from head to the end */
	if (first > q->q_bcount)
		first = q->q_bcount;
	if (q->q_bcount) {
		memcpy(buf, q->q_bbuf + q->q_bhead * q->q_item, first * q->q_item);
		memcpy(buf + first * q->q_item, q->q_bbuf, (q->q_bcount - first) * q->q_item);
	}
	char *old = q->q_bbuf;
	q->q_bbuf = buf;
	q->q_bslots = slots;
	q->q_bhead = 0;
	rook__spin_unlock(&q->q_lock);
	rook__free(old);
	rook__spin_lock(&q->q_lock);
	return 1;
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

/* Under q_lock: lower the flag that says wq has waiters once it has none.
 * Nobody else moves q_tail while T_GETTERS is up, nor q_head while
 * H_BEHIND is. */
static void flags_settle(struct rook_queue *q)
{
	if (rook__waitq_empty(&q->q_getters) &&
	    (atomic_load_explicit(&q->q_tail, memory_order_relaxed) & T_GETTERS))
		atomic_fetch_and_explicit(&q->q_tail, ~(uint64_t)T_GETTERS, memory_order_relaxed);
	if (rook__waitq_empty(&q->q_putters) && q->q_bcount == 0 &&
	    (atomic_load_explicit(&q->q_head, memory_order_relaxed) & H_BEHIND))
		atomic_fetch_and_explicit(&q->q_head, ~(uint64_t)H_BEHIND, memory_order_relaxed);
	if (rook__waitq_empty(&q->q_joiners) &&
	    atomic_load_explicit(&q->q_join_wait, memory_order_relaxed))
		atomic_store_explicit(&q->q_join_wait, false, memory_order_relaxed);
}

/*
 * Called with q_lock held, the list's flag up: wait on list wq with buf,
 * unlocking q. Returns what the wait ended with: 0 granted (the item
 * moved), -EPIPE closed or destroyed, -ECANCELED, -ETIMEDOUT. Never
 * touches q after a grant.
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
	flags_settle(q);
	active_drop(q, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return r;
}

/* ---- put and get --------------------------------------------------------- */

/*
 * Under q_lock, H_BEHIND up (so the ring is full, or it is about to be
 * lowered): take the head item into item and refill its slot, as the new
 * tail, from the backlog or the first waiting putter.
 */
static void take_behind(struct rook_queue *q, uint64_t pos, void *item, struct rook__waiter **wake)
{
	_Atomic uint64_t *s = slot_at(q, pos);
	unsigned spins = 0;

	while (atomic_load_explicit(s, memory_order_acquire) != pos + 1)
		rook__spin_wait(&spins); /* its put is under way */
	copy_item(item, slot_item(s), q->q_item);

	struct rook__wnode *n = NULL;
	const void *src = NULL;
	if (q->q_bcount > 0)
		src = backlog_at(q, 0);
	else if ((n = rook__waitq_claim_first(&q->q_putters, 0)) != NULL)
		src = n->n_buf;
	if (!src) {
		/* Nothing behind after all (putters gave up): a plain get. */
		atomic_store_explicit(&q->q_head, pos_next(q, pos) << 2, memory_order_relaxed);
		atomic_store_explicit(s, pos + q->q_lapmask + 1, memory_order_release);
		return;
	}
	/* Full ring: the tail is this slot one lap on, and no put can claim
	 * it (its stamp says it still holds an item). */
	uint64_t t = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
	uint64_t tpos = t >> 2;
	copy_item(slot_item(s), src, q->q_item);
	atomic_store_explicit(&q->q_tail, pos_next(q, tpos) << 2 | (t & FLAGS),
			      memory_order_relaxed);
	atomic_store_explicit(s, tpos + 1, memory_order_release);
	if (n) {
		grant(q, n, wake);
	} else {
		backlog_drop_head(q);
		/* A blocked putter moves into the backlog's free place. */
		n = rook__waitq_claim_first(&q->q_putters, 0);
		if (n) {
			copy_item(backlog_at(q, q->q_bcount), n->n_buf, q->q_item);
			q->q_bcount++;
			grant(q, n, wake);
		}
	}
	bool behind = q->q_bcount > 0 || !rook__waitq_empty(&q->q_putters);
	atomic_store_explicit(&q->q_head, pos_next(q, pos) << 2 | (behind ? H_BEHIND : 0),
			      memory_order_release);
}

static int put_slow(struct rook_queue *q, const void *item, bool may_wait)
{
	struct rook__waiter *wake = NULL;
	int r;

	rook__spin_lock(&q->q_lock);
	for (;;) {
		uint64_t t = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
		if (t & T_CLOSED) {
			r = -EPIPE;
			break;
		}
		if (t & T_GETTERS) {
			/* The flag is lowered only once a put finds no getter
			 * left (here, or when a getter gives up): a getter that
			 * comes back for the next item, as in a ping-pong, finds
			 * it still up and waits without a CAS. */
			struct rook__wnode *n = rook__waitq_claim_first(&q->q_getters, 0);
			if (!n) {
				flags_settle(q);
				continue;
			}
			copy_item(n->n_buf, item, q->q_item);
			atomic_store_explicit(
			    &q->q_handed,
			    atomic_load_explicit(&q->q_handed, memory_order_relaxed) + 1,
			    memory_order_relaxed);
			grant(q, n, &wake);
			r = 0;
			break;
		}
		uint64_t h = atomic_load_explicit(&q->q_head, memory_order_relaxed);
		if (!(h & H_BEHIND)) {
			if (ring_push(q, item) == RING_OK) {
				r = 0;
				break;
			}
			/* Full. Raise H_BEHIND, if the ring is still full, before
			 * anything goes behind it. */
			h = atomic_load_explicit(&q->q_head, memory_order_relaxed);
			t = atomic_load_explicit(&q->q_tail, memory_order_relaxed);
			if ((h >> 2) + q->q_lapmask + 1 != t >> 2)
				continue;
			if (q->q_blimit == 0 && !may_wait) {
				r = -EAGAIN;
				break;
			}
			if (!atomic_compare_exchange_strong_explicit(&q->q_head, &h, h | H_BEHIND,
								     memory_order_relaxed,
								     memory_order_relaxed))
				continue;
		}
		if (q->q_bcount < q->q_blimit) {
			r = backlog_push(q, item);
			if (r == 1)
				continue;
			if (r < 0)
				flags_settle(q);
			break;
		}
		if (!may_wait) {
			r = -EAGAIN;
			break;
		}
		return wait_on(q, &q->q_putters, (void *)item); /* unlocks */
	}
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return r;
}

static int get_slow(struct rook_queue *q, void *item, bool may_wait)
{
	struct rook__waiter *wake = NULL;
	int r;

	rook__spin_lock(&q->q_lock);
	for (;;) {
		uint64_t h = atomic_load_explicit(&q->q_head, memory_order_relaxed);
		if (h & H_BEHIND) {
			take_behind(q, h >> 2, item, &wake);
			r = 0;
			break;
		}
		uint64_t t;
		r = ring_pop(q, item, &t);
		if (r == RING_OK)
			break;
		if (r == RING_FLAGGED)
			continue;
		if (t & T_CLOSED) {
			r = -EPIPE;
			break;
		}
		if (!may_wait) {
			r = -EAGAIN;
			break;
		}
		/* Empty: head == tail was seen at t, and the head cannot pass
		 * the tail, so if the CAS succeeds the ring is still empty. */
		if (!(t & T_GETTERS) &&
		    !atomic_compare_exchange_strong_explicit(
			&q->q_tail, &t, t | T_GETTERS, memory_order_relaxed, memory_order_relaxed))
			continue;
		return wait_on(q, &q->q_getters, item); /* unlocks */
	}
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
	return r;
}

static __attribute__((noinline)) int put(struct rook_queue *q, const void *item, bool may_wait)
{
	if (!q || !item)
		return -EINVAL;
	if (may_wait) {
		int r = rook__wait_check_fast();
		if (r)
			return r;
	}
	int r = ring_push(q, item);
	if (__builtin_expect(r == RING_OK, 1))
		return 0;
	if (r == RING_EMPTY_OR_FULL && !may_wait && q->q_blimit == 0)
		return -EAGAIN;
	return put_slow(q, item, may_wait);
}

static __attribute__((noinline)) int get(struct rook_queue *q, void *item, bool may_wait)
{
	if (!q || !item)
		return -EINVAL;
	if (may_wait) {
		int r = rook__wait_check_fast();
		if (r)
			return r;
	}
	uint64_t t;
	int r = ring_pop(q, item, &t);
	if (__builtin_expect(r == RING_OK, 1))
		return 0;
	if (r == RING_EMPTY_OR_FULL && !may_wait)
		return t & T_CLOSED ? -EPIPE : -EAGAIN;
	return get_slow(q, item, may_wait);
}

int rook_queue_put(struct rook_queue *q, const void *item)
{
	ROOK__DIAG_CALL("rook_queue_put");
	if (q && item && rook__wait_entry_clear() && push_once(q, item))
		return 0;
	return put(q, item, true);
}

int rook_queue_try_put(struct rook_queue *q, const void *item)
{
	if (q && item && push_once(q, item))
		return 0;
	return put(q, item, false);
}

int rook_queue_get(struct rook_queue *q, void *item)
{
	ROOK__DIAG_CALL("rook_queue_get");
	if (q && item && rook__wait_entry_clear() && pop_once(q, item))
		return 0;
	return get(q, item, true);
}

int rook_queue_try_get(struct rook_queue *q, void *item)
{
	if (q && item && pop_once(q, item))
		return 0;
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

/* Under q_lock: close q and end the waits of getters and putters. */
static void close_locked(struct rook_queue *q, struct rook__waiter **wake)
{
	atomic_fetch_or_explicit(&q->q_tail, T_CLOSED, memory_order_relaxed);
	/* Getters wait only on an empty ring: nothing is left for them. */
	end_all(q, &q->q_getters, -EPIPE, wake);
	end_all(q, &q->q_putters, -EPIPE, wake);
	flags_settle(q);
}

void rook_queue_close(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return;
	rook__spin_lock(&q->q_lock);
	close_locked(q, &wake);
	rook__spin_unlock(&q->q_lock);
	rook__waitq_wake_all(wake);
}

/*
 * Items put and not yet task_done'd. Under q_lock, so q_handed and q_bcount
 * hold still; puts on the lock-free path and task_done calls do not. The
 * done count is read first: every task_done counted in it was for an item
 * got, hence put, by then, so the put count read after it covers them all,
 * and 0 means that at the read of q_done every item put was done. (Read
 * the other way round, a put and a task_done between the two reads let
 * the done count catch up with a stale put count: 0 while an item was
 * outstanding all along.)
 */
static uint64_t unfinished(struct rook_queue *q)
{
	uint64_t done = atomic_load_explicit(&q->q_done, memory_order_seq_cst);
	void (*hook)(struct rook_queue *) =
	    atomic_load_explicit(&unfinished_hook, memory_order_relaxed);
	if (__builtin_expect(hook != NULL, 0))
		hook(q);
	uint64_t put = pos_linear(q, atomic_load_explicit(&q->q_tail, memory_order_seq_cst) >> 2) +
		       atomic_load_explicit(&q->q_handed, memory_order_relaxed) + q->q_bcount;
	return put - done;
}

int rook_queue_task_done(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return -EINVAL;
	uint64_t done = atomic_load_explicit(&q->q_done, memory_order_relaxed);
	do {
		/* Items got only grow: one seen now is one got. */
		uint64_t got =
		    pos_linear(q, atomic_load_explicit(&q->q_head, memory_order_relaxed) >> 2) +
		    atomic_load_explicit(&q->q_handed, memory_order_relaxed);
		if (done >= got)
			return -EINVAL; /* no item got is waiting for its task_done */
	} while (!atomic_compare_exchange_weak_explicit(
	    &q->q_done, &done, done + 1, memory_order_seq_cst, memory_order_relaxed));
	/* Pairs with the joiner's store of q_join_wait and re-check. */
	if (!atomic_load_explicit(&q->q_join_wait, memory_order_seq_cst))
		return 0;
	rook__spin_lock(&q->q_lock);
	if (unfinished(q) == 0) {
		end_all(q, &q->q_joiners, 0, &wake);
		flags_settle(q);
	}
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
	if (unfinished(q) != 0) {
		atomic_store_explicit(&q->q_join_wait, true, memory_order_seq_cst);
		/* A task_done that did not see the flag finished before this. */
		if (unfinished(q) != 0)
			return wait_on(q, &q->q_joiners, NULL); /* unlocks */
		flags_settle(q);
	}
	rook__spin_unlock(&q->q_lock);
	return 0;
}

size_t rook_queue_len(const struct rook_queue *q)
{
	if (!q)
		return 0;
	/* The lock is the object's own mutable state, not part of its value. */
	struct rook_queue *mq = (struct rook_queue *)q;
	rook__spin_lock(&mq->q_lock);
	/* Head first: the tail read after it is at or past it. */
	uint64_t h = atomic_load_explicit(&mq->q_head, memory_order_acquire) >> 2;
	uint64_t t = atomic_load_explicit(&mq->q_tail, memory_order_acquire) >> 2;
	size_t n = (size_t)(pos_linear(q, t) - pos_linear(q, h)) + mq->q_bcount;
	rook__spin_unlock(&mq->q_lock);
	return n;
}

void rook_queue_destroy(struct rook_queue *q)
{
	struct rook__waiter *wake = NULL;

	if (!q)
		return;
	rook__spin_lock(&q->q_lock);
	close_locked(q, &wake);
	end_all(q, &q->q_joiners, -EPIPE, &wake);
	flags_settle(q);
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
	rook__free(q->q_bbuf);
	rook__free(q->q_ring);
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
