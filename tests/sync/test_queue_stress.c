/* SPDX-License-Identifier: MIT */
/*
 * Queue stress (issue 4): 8 producer and 8 consumer tasks across both
 * workers plus a plain producer thread and a plain consumer thread move
 * 1,000,000 items through one queue while a supervisor cancels random
 * tasks and respawns them where they left off. A per-item tally checks
 * that every item is received exactly once: a cancelled getter consumes
 * nothing and an item handed to a getter is never lost. Three shapes: a
 * bounded queue whose lock-free ring holds it all, one with part of its
 * capacity in the backlog behind the ring, and an unbounded one.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rook.h>

#include "tests/helpers.h"

enum { NPROD = 8, NCONS = 8 };

struct stress;

/* One producer or consumer slot; a respawned task continues its state. */
struct slot {
	struct stress *s_st;
	struct rook_task *s_task; /* NULL once finished and joined */
	uint32_t s_next, s_end;   /* producers: items [next, end) left */
	bool s_producer;
	bool s_finished;  /* written by the task, read after its join */
	long s_cancelled; /* times a call returned -ECANCELED */
};

struct stress {
	struct rook_queue *st_q;
	uint32_t st_n;
	size_t st_cap;  /* queue capacity; 0: unbounded */
	size_t st_ring; /* its lock-free ring's slots at most; 0: default */
	_Atomic uint8_t *st_tally;
	_Atomic long st_received;
	_Atomic long st_dup;
	struct slot st_prod[NPROD + 1]; /* the last one is the plain thread's */
	struct slot st_cons[NCONS + 1];
};

static void receive(struct stress *st, uint32_t v)
{
	if (v >= st->st_n ||
	    atomic_fetch_add_explicit(&st->st_tally[v], 1, memory_order_relaxed) != 0)
		atomic_fetch_add(&st->st_dup, 1);
	atomic_fetch_add_explicit(&st->st_received, 1, memory_order_relaxed);
}

static int producer(void *arg)
{
	struct slot *s = arg;
	while (s->s_next < s->s_end) {
		int rc = rook_queue_put(s->s_st->st_q, &s->s_next);
		if (rc == -ECANCELED) {
			s->s_cancelled++;
			return 0;
		}
		if (rc != 0)
			return rc;
		s->s_next++;
	}
	s->s_finished = true;
	return 0;
}

static int consumer(void *arg)
{
	struct slot *s = arg;
	uint32_t v;
	for (;;) {
		int rc = rook_queue_get(s->s_st->st_q, &v);
		if (rc == 0) {
			receive(s->s_st, v);
			continue;
		}
		if (rc == -ECANCELED) {
			s->s_cancelled++;
			return 0;
		}
		if (rc != -EPIPE)
			return rc;
		s->s_finished = true;
		return 0;
	}
}

static void *plain_producer(void *arg)
{
	struct slot *s = arg;
	for (; s->s_next < s->s_end; s->s_next++)
		if (rook_queue_put(s->s_st->st_q, &s->s_next) != 0)
			return (void *)1;
	return NULL;
}

static void *plain_consumer(void *arg)
{
	struct slot *s = arg;
	uint32_t v;
	int rc;
	while ((rc = rook_queue_get(s->s_st->st_q, &v)) == 0)
		receive(s->s_st, v);
	return rc == -EPIPE ? NULL : (void *)1;
}

static void respawn(struct slot *s)
{
	T_CHECK_EQ(rook_spawn(&s->s_task, s->s_producer ? producer : consumer, s), 0);
}

/* Join s's task, which may have been cancelled, and respawn it unless it
 * had finished its work. */
static void reap(struct slot *s)
{
	int st = -1;
	T_CHECK_EQ(rook_join(s->s_task, &st), 0);
	T_CHECK(st == 0 || st == -ECANCELED); /* -ECANCELED: before it ran */
	s->s_task = NULL;
	if (!s->s_finished)
		respawn(s);
}

static void cancel_and_respawn(struct slot *s)
{
	if (!s->s_task)
		return;
	T_CHECK_EQ(rook_cancel(s->s_task), 0);
	reap(s);
}

static void join_slot(struct slot *s)
{
	int st = -1;
	if (!s->s_task)
		return;
	T_CHECK_EQ(rook_join(s->s_task, &st), 0);
	T_CHECK_EQ(st, 0);
	s->s_task = NULL;
	T_CHECK(s->s_finished);
}

/* Reap the producers that ended; true once all of them finished their
 * items (a finished slot has no task left). */
static bool producers_finished(struct stress *st)
{
	bool all = true;
	for (int i = 0; i < NPROD; i++) {
		struct slot *s = &st->st_prod[i];
		if (s->s_task && rook_done(s->s_task))
			reap(s);
		if (s->s_task)
			all = false;
	}
	return all;
}

static int stress_main(void *arg)
{
	struct stress *st = arg;
	pthread_t pth, cth;
	uint32_t per = st->st_n / (NPROD + 1);
	unsigned seed = 12345;
	long cancels = 0;

	rook__queue_ring_limit(st->st_ring);
	T_CHECK_EQ(rook_queue_create(&st->st_q, sizeof(uint32_t), st->st_cap), 0);
	rook__queue_ring_limit(0);
	for (int i = 0; i <= NPROD; i++) {
		struct slot *s = &st->st_prod[i];
		*s = (struct slot){.s_st = st,
				   .s_producer = true,
				   .s_next = per * (uint32_t)i,
				   .s_end = i == NPROD ? st->st_n : per * (uint32_t)(i + 1)};
	}
	for (int i = 0; i <= NCONS; i++)
		st->st_cons[i] = (struct slot){.s_st = st};
	T_CHECK_EQ(pthread_create(&cth, NULL, plain_consumer, &st->st_cons[NCONS]), 0);
	T_CHECK_EQ(pthread_create(&pth, NULL, plain_producer, &st->st_prod[NPROD]), 0);
	for (int i = 0; i < NCONS; i++)
		respawn(&st->st_cons[i]);
	for (int i = 0; i < NPROD; i++)
		respawn(&st->st_prod[i]);

	/* Cancel random producers and consumers while items flow. */
	while (!producers_finished(st)) {
		int k = (int)(rand_r(&seed) % (NPROD + NCONS));
		cancel_and_respawn(k < NPROD ? &st->st_prod[k] : &st->st_cons[k - NPROD]);
		cancels++;
		for (unsigned y = rand_r(&seed) % 8; y > 0; y--)
			rook_yield();
	}
	void *bad = NULL;
	T_CHECK_EQ(pthread_join(pth, &bad), 0);
	T_CHECK(bad == NULL);
	rook_queue_close(st->st_q);
	for (int i = 0; i < NCONS; i++)
		join_slot(&st->st_cons[i]);
	T_CHECK_EQ(pthread_join(cth, &bad), 0);
	T_CHECK(bad == NULL);
	T_CHECK(cancels > 0);
	rook_queue_destroy(st->st_q);
	return 0;
}

static void stress(size_t cap, size_t ring)
{
	int fds = fd_count();
	static struct stress st;

	memset(&st, 0, sizeof(st));
	st.st_cap = cap;
	st.st_ring = ring;
	/* Only 17 tasks live at once, so TSan's cap on task stacks (see
	 * scaled) does not apply: a 20th of the items under any sanitizer. */
	st.st_n = sanitized() ? 50000 : 1000000;
	st.st_tally = calloc(st.st_n, sizeof(*st.st_tally));
	cr_assert(st.st_tally);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, stress_main, &st), 0);
	cr_assert_eq(atomic_load(&st.st_dup), 0, "items received twice or out of range");
	cr_assert_eq(atomic_load(&st.st_received), (long)st.st_n, "items lost");
	for (uint32_t i = 0; i < st.st_n; i++)
		cr_assert_eq(atomic_load(&st.st_tally[i]), 1, "item %u received %u times", i,
			     (unsigned)atomic_load(&st.st_tally[i]));
	long cancelled = 0;
	for (int i = 0; i < NPROD; i++)
		cancelled += st.st_prod[i].s_cancelled;
	for (int i = 0; i < NCONS; i++)
		cancelled += st.st_cons[i].s_cancelled;
	cr_log_info("%ld blocking calls ended by a cancel", cancelled);
	free((void *)st.st_tally);
	expect_clean_shutdown(fds);
}

/* Items through the lock-free ring only, putters waiting behind it. */
Test(queue, every_item_received_once_when_tasks_cancelled_at_random_stress, .timeout = 300)
{
	stress(64, 0);
}

/* A ring of 8 slots and 56 more in the backlog, putters behind both. */
Test(queue, every_item_received_once_through_ring_and_backlog_stress, .timeout = 300)
{
	stress(64, 8);
}

/* Unbounded: a ring of 8 slots, the rest in a backlog that grows. */
Test(queue, every_item_received_once_through_unbounded_backlog_stress, .timeout = 300)
{
	stress(0, 8);
}
