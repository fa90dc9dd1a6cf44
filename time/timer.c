/* SPDX-License-Identifier: MIT */
/*
 * 4-ary min-heap of timers (see timer.h). A 4-ary heap halves the depth of
 * a binary one and keeps a node's children's keys on one cache line.
 * Invariants: h_items[i].ts_tm->tm_index == i and h_items[i].ts_deadline ==
 * ts_tm->tm_deadline for every queued timer; h_next mirrors the top
 * deadline for lock-free peeks by other workers.
 */
#include "time/timer.h"

#include <errno.h>
#include <time.h>

#include "sched/alloc.h"
#include "sched/wait.h"

uint64_t rook__now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int rook__timer_heap_init(struct rook__timer_heap *h)
{
	h->h_n = 0;
	h->h_cap = 0;
	h->h_items = NULL;
	atomic_store_explicit(&h->h_lock.s_held, 0, memory_order_relaxed);
	atomic_store_explicit(&h->h_next, UINT64_MAX, memory_order_relaxed);
	return 0;
}

void rook__timer_heap_fini(struct rook__timer_heap *h)
{
	rook__free(h->h_items);
	h->h_items = NULL;
	h->h_n = h->h_cap = 0;
}

static void place(struct rook__timer_heap *h, int i, struct rook__timer_slot x)
{
	h->h_items[i] = x;
	x.ts_tm->tm_index = i;
}

static void sift_up(struct rook__timer_heap *h, int i)
{
	struct rook__timer_slot x = h->h_items[i];
	while (i > 0) {
		int p = (i - 1) / 4;
		if (h->h_items[p].ts_deadline <= x.ts_deadline)
			break;
		place(h, i, h->h_items[p]);
		i = p;
	}
	place(h, i, x);
}

static void sift_down(struct rook__timer_heap *h, int i)
{
	struct rook__timer_slot x = h->h_items[i];
	for (;;) {
		int best = -1;
		uint64_t best_dl = x.ts_deadline;
		int end = 4 * i + 4 < h->h_n ? 4 * i + 4 : h->h_n - 1;
		for (int c = 4 * i + 1; c <= end; c++) {
			if (h->h_items[c].ts_deadline < best_dl) {
				best = c;
				best_dl = h->h_items[c].ts_deadline;
			}
		}
		if (best < 0)
			break;
		place(h, i, h->h_items[best]);
		i = best;
	}
	place(h, i, x);
}

static void publish_next(struct rook__timer_heap *h)
{
	atomic_store_explicit(&h->h_next, h->h_n ? h->h_items[0].ts_deadline : UINT64_MAX,
			      memory_order_release);
}

/* Heap lock held. */
static void remove_at(struct rook__timer_heap *h, int i)
{
	struct rook__timer_slot last = h->h_items[--h->h_n];
	h->h_items[i].ts_tm->tm_index = -1;
	if (i == h->h_n)
		return;
	place(h, i, last);
	sift_up(h, i);
	sift_down(h, last.ts_tm->tm_index);
}

int rook__timer_arm(struct rook__timer_heap *h, struct rook__timer *tm)
{
	rook__spin_lock(&h->h_lock);
	if (h->h_n == h->h_cap) {
		int cap = h->h_cap ? h->h_cap * 2 : 64;
		struct rook__timer_slot *items = rook__alloc((size_t)cap * sizeof(*items));
		if (!items) {
			rook__spin_unlock(&h->h_lock);
			return -ENOMEM;
		}
		for (int i = 0; i < h->h_n; i++)
			items[i] = h->h_items[i];
		rook__free(h->h_items);
		h->h_items = items;
		h->h_cap = cap;
	}
	tm->tm_heap = h;
	int i = h->h_n++;
	place(h, i, (struct rook__timer_slot){tm->tm_deadline, tm});
	sift_up(h, i);
	publish_next(h);
	rook__spin_unlock(&h->h_lock);
	return 0;
}

void rook__timer_disarm(struct rook__timer *tm)
{
	struct rook__timer_heap *h = tm->tm_heap;
	if (!h)
		return;
	rook__spin_lock(&h->h_lock);
	if (tm->tm_index >= 0) {
		remove_at(h, tm->tm_index);
		publish_next(h);
	}
	rook__spin_unlock(&h->h_lock);
	tm->tm_heap = NULL;
}

int rook__timer_fire(struct rook__timer_heap *h, uint64_t now)
{
	struct rook__waiter *wake = NULL;
	int n = 0;
	if (!rook__spin_trylock(&h->h_lock))
		return 0; /* someone else is firing or arming: they publish h_next */
	while (h->h_n > 0 && h->h_items[0].ts_deadline <= now) {
		struct rook__timer *tm = h->h_items[0].ts_tm;
		remove_at(h, 0);
		/* The waiter is in type-stable task memory and the token names
		 * one wait: a claim for a wait that already ended just fails. */
		if (rook__wait_claim(tm->tm_w, tm->tm_token, tm->tm_result)) {
			tm->tm_w->w_next_wake = wake;
			wake = tm->tm_w;
		}
		n++;
	}
	publish_next(h);
	rook__spin_unlock(&h->h_lock);
	while (wake) {
		struct rook__waiter *next = wake->w_next_wake;
		rook__wait_wake(wake);
		wake = next;
	}
	return n;
}
