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

/* Owner only. 0, or -ENOMEM if the deque had to grow and could not. */
int rook__deque_push(struct rook__deque *d, void *x);
/* Owner only. The newest item, or NULL if empty. */
void *rook__deque_pop(struct rook__deque *d);
/* Owner only: the item the next pop would return (a thief may still take
 * it first when it is the last one), or NULL if empty. */
void *rook__deque_peek(const struct rook__deque *d);
/* Any thread. The oldest item, or NULL if empty or the race was lost
 * (*lost set to 1 in that case so the caller may retry). */
void *rook__deque_steal(struct rook__deque *d, int *lost);
/* Any thread; a racy estimate. */
int64_t rook__deque_size(const struct rook__deque *d);

#endif
