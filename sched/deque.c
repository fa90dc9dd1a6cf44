/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev work-stealing deque with the C11 memory orders of Lê et al.,
 * PPoPP 2013 (fig. 1). Indices are signed 64-bit and never wrap in practice.
 * Invariant: items in [top, bottom) are owned by the deque; each is taken by
 * exactly one pop or steal (the CAS on top decides the last item's race).
 * Retired buffers stay allocated until destroy (a thief may still read one).
 */
#include "sched/deque.h"

#include <errno.h>

#include "sched/alloc.h"

static struct rook__deque_buf *buf_new(int64_t cap)
{
	struct rook__deque_buf *b = rook__alloc(sizeof(*b) + (size_t)cap * sizeof(b->b_slot[0]));
	if (!b)
		return NULL;
	b->b_mask = cap - 1;
	b->b_prev = NULL;
	return b;
}

int rook__deque_init(struct rook__deque *d, unsigned log_cap)
{
	struct rook__deque_buf *b = buf_new((int64_t)1 << log_cap);
	if (!b)
		return -ENOMEM;
	atomic_init(&d->d_top, 0);
	atomic_init(&d->d_bottom, 0);
	atomic_init(&d->d_buf, b);
	d->d_solo = false;
	return 0;
}

void rook__deque_destroy(struct rook__deque *d)
{
	struct rook__deque_buf *b = atomic_load_explicit(&d->d_buf, memory_order_relaxed);
	while (b) {
		struct rook__deque_buf *prev = b->b_prev;
		rook__free(b);
		b = prev;
	}
	atomic_store_explicit(&d->d_buf, NULL, memory_order_relaxed);
}

/* Owner only: double the buffer, copying the live range [t, b). */
struct rook__deque_buf *rook__deque_grow(struct rook__deque *d, struct rook__deque_buf *old,
					 int64_t t, int64_t b)
{
	struct rook__deque_buf *n = buf_new((old->b_mask + 1) * 2);
	if (!n)
		return NULL;
	for (int64_t i = t; i < b; i++) {
		void *x = atomic_load_explicit(&old->b_slot[i & old->b_mask], memory_order_relaxed);
		atomic_store_explicit(&n->b_slot[i & n->b_mask], x, memory_order_relaxed);
	}
	n->b_prev = old;
	/* Pairs with the consume/acquire load of d_buf in steal. */
	atomic_store_explicit(&d->d_buf, n, memory_order_release);
	return n;
}

void *rook__deque_steal(struct rook__deque *d, int *lost)
{
	int64_t t = atomic_load_explicit(&d->d_top, memory_order_acquire);
	/* Pairs with pop's seq_cst fence. */
	atomic_thread_fence(memory_order_seq_cst);
	int64_t b = atomic_load_explicit(&d->d_bottom, memory_order_acquire);
	*lost = 0;
	if (t >= b)
		return NULL;
	/* The paper uses consume; acquire is the portable equivalent. */
	struct rook__deque_buf *a = atomic_load_explicit(&d->d_buf, memory_order_acquire);
	void *x = atomic_load_explicit(&a->b_slot[t & a->b_mask], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&d->d_top, &t, t + 1, memory_order_seq_cst,
						     memory_order_relaxed)) {
		*lost = 1;
		return NULL;
	}
	return x;
}
