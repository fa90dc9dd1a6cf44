/* SPDX-License-Identifier: MIT */
/*
 * Chase-Lev deque, used directly (no runtime): single-thread LIFO/FIFO order,
 * growth from a tiny initial capacity, a failed growth, and one owner racing
 * three thieves over ~2,000,000 distinct items, each of which must be taken
 * exactly once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/helpers.h"
#include "sched/deque.h"
#include "sched/testing.h"

/* Items are index + 1: NULL means "empty". */
#define ITEM(i)  ((void *)(uintptr_t)((i) + 1))
#define INDEX(p) ((long)((uintptr_t)(p)-1))

Test(deque, pop_is_lifo_and_steal_is_fifo_when_single_threaded, .timeout = 30)
{
	struct rook__deque d;
	int lost = 0;

	cr_assert_eq(rook__deque_init(&d, 4), 0);
	cr_assert_null(rook__deque_pop(&d));
	cr_assert_null(rook__deque_steal(&d, &lost));
	cr_assert_eq(lost, 0, "an empty deque is not a lost race");
	for (long i = 0; i < 10; i++)
		cr_assert_eq(rook__deque_push(&d, ITEM(i)), 0);
	cr_assert_eq(rook__deque_size(&d), 10);

	cr_assert_eq(rook__deque_peek(&d), ITEM(9), "peek names what pop takes");
	cr_assert_eq(rook__deque_pop(&d), ITEM(9), "pop takes the newest");
	cr_assert_eq(rook__deque_peek(&d), ITEM(8));
	cr_assert_eq(rook__deque_pop(&d), ITEM(8));
	cr_assert_eq(rook__deque_steal(&d, &lost), ITEM(0), "steal takes the oldest");
	cr_assert_eq(lost, 0);
	cr_assert_eq(rook__deque_steal(&d, &lost), ITEM(1));
	cr_assert_eq(rook__deque_size(&d), 6);
	/* Interleave: a push goes to the bottom, where pop finds it first. */
	cr_assert_eq(rook__deque_push(&d, ITEM(100)), 0);
	cr_assert_eq(rook__deque_pop(&d), ITEM(100));
	for (long i = 7; i >= 2; i--)
		cr_assert_eq(rook__deque_pop(&d), ITEM(i));
	cr_assert_null(rook__deque_pop(&d));
	cr_assert_null(rook__deque_peek(&d));
	cr_assert_null(rook__deque_steal(&d, &lost));
	cr_assert_eq(lost, 0);
	cr_assert_eq(rook__deque_size(&d), 0);
	rook__deque_destroy(&d);
}

Test(deque, keeps_every_item_in_order_when_grown_beyond_initial_capacity, .timeout = 30)
{
	struct rook__deque d;
	const long n = 1000;
	int lost;

	cr_assert_eq(rook__deque_init(&d, 2), 0); /* capacity 4 */
	/* Take a few first so the live range wraps the ring before it grows. */
	for (long i = 0; i < 3; i++)
		cr_assert_eq(rook__deque_push(&d, ITEM(i)), 0);
	for (long i = 0; i < 3; i++)
		cr_assert_eq(rook__deque_steal(&d, &lost), ITEM(i));
	for (long i = 0; i < n; i++)
		cr_assert_eq(rook__deque_push(&d, ITEM(1000 + i)), 0);
	cr_assert_eq(rook__deque_size(&d), n);
	for (long i = n - 1; i >= n / 2; i--)
		cr_assert_eq(rook__deque_pop(&d), ITEM(1000 + i), "pop #%ld", i);
	for (long i = 0; i < n / 2; i++) {
		cr_assert_eq(rook__deque_steal(&d, &lost), ITEM(1000 + i), "steal #%ld", i);
		cr_assert_eq(lost, 0);
	}
	cr_assert_null(rook__deque_pop(&d));
	cr_assert_null(rook__deque_steal(&d, &lost));
	rook__deque_destroy(&d);
}

Test(deque, push_fails_with_enomem_and_keeps_items_when_growth_fails, .timeout = 30)
{
	struct rook__deque d;
	int lost;

	cr_assert_eq(rook__deque_init(&d, 2), 0);
	for (long i = 0; i < 4; i++)
		cr_assert_eq(rook__deque_push(&d, ITEM(i)), 0);
	rook__alloc_fail_nth(1);
	cr_assert_eq(rook__deque_push(&d, ITEM(4)), -ENOMEM);
	rook__alloc_fail_nth(0);
	cr_assert_eq(rook__deque_size(&d), 4);
	cr_assert_eq(rook__deque_push(&d, ITEM(4)), 0, "a later push grows the deque");
	cr_assert_eq(rook__deque_pop(&d), ITEM(4));
	for (long i = 0; i < 4; i++)
		cr_assert_eq(rook__deque_steal(&d, &lost), ITEM(i));
	cr_assert_null(rook__deque_pop(&d));
	rook__deque_destroy(&d);
}

/* ---- owner vs. three thieves ------------------------------------------ */

#define THIEVES 3

struct race {
	struct rook__deque r_deque;
	long r_items;
	_Atomic unsigned char *r_tally; /* times each item was taken */
	_Atomic long r_taken;           /* items taken by anyone */
	_Atomic long r_stolen;          /* items taken by thieves */
	_Atomic long r_lost;            /* lost races reported to thieves */
	_Atomic int r_go;
};

static void take(struct race *r, void *x)
{
	long i = INDEX(x);
	if (i < 0 || i >= r->r_items) {
		t_fail(__FILE__, __LINE__, "item index out of range", i, r->r_items);
		return;
	}
	atomic_fetch_add_explicit(&r->r_tally[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->r_taken, 1, memory_order_release);
}

static void *thief(void *arg)
{
	struct race *r = arg;
	long stolen = 0, lost_races = 0;

	while (!atomic_load_explicit(&r->r_go, memory_order_acquire))
		;
	/* Pairs with the release increments in take(): stop once all are taken. */
	while (atomic_load_explicit(&r->r_taken, memory_order_acquire) < r->r_items) {
		int lost = 0;
		void *x = rook__deque_steal(&r->r_deque, &lost);
		if (x) {
			take(r, x);
			stolen++;
		} else if (lost) {
			lost_races++;
		}
	}
	atomic_fetch_add_explicit(&r->r_stolen, stolen, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->r_lost, lost_races, memory_order_relaxed);
	return NULL;
}

static void owner(struct race *r)
{
	long next = 0;
	unsigned seed = 12345;

	while (next < r->r_items) {
		/* Push a burst of 1..64 items, then pop a burst of 0..32. */
		seed = seed * 1103515245u + 12345u;
		long burst = 1 + (long)((seed >> 16) % 64);
		for (long k = 0; k < burst && next < r->r_items; k++, next++)
			if (rook__deque_push(&r->r_deque, ITEM(next)) != 0)
				t_fail(__FILE__, __LINE__, "push failed", next, 0);
		long pops = (long)((seed >> 8) % 33);
		for (long k = 0; k < pops; k++) {
			void *x = rook__deque_pop(&r->r_deque);
			if (!x)
				break;
			take(r, x);
		}
	}
	/* Drain: pop until the deque is empty; thieves may still race us. */
	for (void *x; (x = rook__deque_pop(&r->r_deque)) != NULL;)
		take(r, x);
}

Test(deque, takes_every_item_exactly_once_when_three_thieves_race_the_owner, .timeout = 120)
{
	static struct race r;
	pthread_t th[THIEVES];

	r.r_items = scaled(2000000, 10);
	r.r_tally = calloc((size_t)r.r_items, sizeof(r.r_tally[0]));
	cr_assert_not_null(r.r_tally);
	/* Tiny initial capacity: the owner grows the buffer while thieves steal. */
	cr_assert_eq(rook__deque_init(&r.r_deque, 2), 0);
	for (int i = 0; i < THIEVES; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, thief, &r), 0);
	atomic_store_explicit(&r.r_go, 1, memory_order_release);
	owner(&r);
	for (int i = 0; i < THIEVES; i++)
		cr_assert_eq(pthread_join(th[i], NULL), 0);

	t_no_failures();
	cr_assert_eq(atomic_load(&r.r_taken), r.r_items);
	long missing = 0, twice = 0, first_bad = -1;
	for (long i = 0; i < r.r_items; i++) {
		unsigned c = atomic_load_explicit(&r.r_tally[i], memory_order_relaxed);
		if (c == 0)
			missing++;
		if (c > 1)
			twice++;
		if (c != 1 && first_bad < 0)
			first_bad = i;
	}
	cr_assert_eq(missing, 0, "%ld items lost (first bad index %ld)", missing, first_bad);
	cr_assert_eq(twice, 0, "%ld items taken twice (first bad index %ld)", twice, first_bad);
	cr_assert_eq(rook__deque_size(&r.r_deque), 0);
	cr_assert_null(rook__deque_pop(&r.r_deque));
	cr_log_info("stolen %ld of %ld, lost races %ld", atomic_load(&r.r_stolen), r.r_items,
		    atomic_load(&r.r_lost));
	rook__deque_destroy(&r.r_deque);
	free(r.r_tally);
}
