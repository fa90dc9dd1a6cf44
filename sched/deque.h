/* SPDX-License-Identifier: MIT */
/*
 * Work-stealing deque (Chase-Lev, C11 version of Lê, Pop, Cohen, Zappa
 * Nardelli, "Correct and Efficient Work-Stealing for Weak Memory Models",
 * PPoPP 2013). The owner pushes and pops at the bottom (LIFO); thieves take
 * from the top (FIFO). Grown buffers are retired to a list freed only by
 * rook__deque_destroy, so a thief that read an old buffer pointer never
 * touches freed memory.
 */
#ifndef ROOK_SCHED_DEQUE_H
#define ROOK_SCHED_DEQUE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rook__deque_buf {
	int64_t b_mask;                 /* capacity - 1; capacity is a power of two */
	struct rook__deque_buf *b_prev; /* retired buffers, freed at destroy */
	_Atomic(void *) b_slot[];
};

struct rook__deque {
	/* thief side: top, on its own cache line */
	_Alignas(64) _Atomic int64_t d_top;
	/* owner side */
	_Alignas(64) _Atomic int64_t d_bottom;
	_Atomic(struct rook__deque_buf *) d_buf;
	bool d_solo; /* no thieves (a runtime of one worker): pop needs no fence */
	char d_pad[64 - sizeof(int64_t) - sizeof(void *) - sizeof(bool)];
};

/* 0 or -ENOMEM. Initial capacity 2^log_cap. */
int rook__deque_init(struct rook__deque *d, unsigned log_cap);
void rook__deque_destroy(struct rook__deque *d);

/* Owner only, out of line: double the buffer (NULL: no memory). */
struct rook__deque_buf *rook__deque_grow(struct rook__deque *d, struct rook__deque_buf *old,
					 int64_t t, int64_t b);

/* Any thread. The oldest item, or NULL if empty or the race was lost
 * (*lost set to 1 in that case so the caller may retry). */
void *rook__deque_steal(struct rook__deque *d, int *lost);

/* The owner's calls are inline: a spawn+join pushes, peeks and pops once
 * each, and the calls were a tenth of its instructions (perf/NOTES.md). */

/* Owner only. 0, or -ENOMEM if the deque had to grow and could not. */
static inline int rook__deque_push(struct rook__deque *d, void *x)
{
	int64_t b = atomic_load_explicit(&d->d_bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&d->d_top, memory_order_acquire);
	struct rook__deque_buf *a = atomic_load_explicit(&d->d_buf, memory_order_relaxed);
	if (b - t > a->b_mask) {
		a = rook__deque_grow(d, a, t, b);
		if (!a)
			return -ENOMEM;
	}
	atomic_store_explicit(&a->b_slot[b & a->b_mask], x, memory_order_relaxed);
	/* Publishes the slot and what x points to; pairs with the acquire load
	 * of d_bottom in steal. (The paper's release fence + relaxed store is
	 * equivalent, but ThreadSanitizer does not model fences.) */
	atomic_store_explicit(&d->d_bottom, b + 1, memory_order_release);
	return 0;
}

/* Owner only. The newest item, or NULL if empty. */
static inline void *rook__deque_pop(struct rook__deque *d)
{
	/* Empty fast path without the fence: top only grows, so a bottom at or
	 * below any top we read means empty now. */
	if (atomic_load_explicit(&d->d_bottom, memory_order_relaxed) <=
	    atomic_load_explicit(&d->d_top, memory_order_relaxed))
		return NULL;
	int64_t b = atomic_load_explicit(&d->d_bottom, memory_order_relaxed) - 1;
	struct rook__deque_buf *a = atomic_load_explicit(&d->d_buf, memory_order_relaxed);
	atomic_store_explicit(&d->d_bottom, b, memory_order_relaxed);
	/* Orders the bottom store before the top load; pairs with steal's fence. */
	if (!d->d_solo)
		atomic_thread_fence(memory_order_seq_cst);
	int64_t t = atomic_load_explicit(&d->d_top, memory_order_relaxed);
	void *x = NULL;
	if (t <= b) {
		x = atomic_load_explicit(&a->b_slot[b & a->b_mask], memory_order_relaxed);
		if (t == b) {
			/* Last item: race thieves for it on top. */
			if (!atomic_compare_exchange_strong_explicit(
				&d->d_top, &t, t + 1, memory_order_seq_cst, memory_order_relaxed))
				x = NULL;
			atomic_store_explicit(&d->d_bottom, b + 1, memory_order_relaxed);
		}
	} else {
		atomic_store_explicit(&d->d_bottom, b + 1, memory_order_relaxed);
	}
	return x;
}

/* Owner only: the item the next pop would return (a thief may still take
 * it first when it is the last one), or NULL if empty. */
static inline void *rook__deque_peek(const struct rook__deque *d)
{
	struct rook__deque *m = (struct rook__deque *)d;
	int64_t b = atomic_load_explicit(&m->d_bottom, memory_order_relaxed);
	if (b <= atomic_load_explicit(&m->d_top, memory_order_relaxed))
		return NULL;
	struct rook__deque_buf *a = atomic_load_explicit(&m->d_buf, memory_order_relaxed);
	return atomic_load_explicit(&a->b_slot[(b - 1) & a->b_mask], memory_order_relaxed);
}

/* Any thread; a racy estimate. */
static inline int64_t rook__deque_size(const struct rook__deque *d)
{
	struct rook__deque *m = (struct rook__deque *)d;
	int64_t b = atomic_load_explicit(&m->d_bottom, memory_order_relaxed);
	int64_t t = atomic_load_explicit(&m->d_top, memory_order_relaxed);
	return b > t ? b - t : 0;
}

#endif
