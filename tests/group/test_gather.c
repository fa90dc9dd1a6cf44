/* SPDX-License-Identifier: MIT */
/*
 * rook_gather over children that end at once, yield or block: every status
 * lands in its slot and every handle is released; a gatherer cancelled while
 * a child blocks returns -ECANCELED, releases nothing, and the children go
 * on and are joined later.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

static struct rook_queue *q;

static int get_one(void *arg)
{
	(void)arg;
	int v = 0;
	int r = rook_queue_get(q, &v);
	return r < 0 ? r : v;
}

static int put_later(void *arg)
{
	int v = (int)(intptr_t)arg;
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	return rook_queue_put(q, &v);
}

static int mixed_child(void *arg)
{
	int i = (int)(intptr_t)arg;
	if (i % 3 == 1)
		return get_one(NULL); /* blocks until fed */
	if (i % 3 == 2)
		T_CHECK_EQ(rook_yield(), 0);
	return i;
}

#define GATHER_N 12

/* Children that end at once, yield or block: every
 * status lands in its own slot and every handle is released. */
static int gather_mixed_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), GATHER_N), 0);
	for (int round = 0; round < 30; round++) {
		struct rook_task *c[GATHER_N], *feeder[GATHER_N];
		int nfeed = 0;
		for (int i = 0; i < GATHER_N; i++)
			if (i % 3 == 1)
				T_CHECK_EQ(rook_spawn(&feeder[nfeed++], put_later,
						      (void *)(intptr_t)(100 + i)),
					   0);
		for (int i = 0; i < GATHER_N; i++)
			T_CHECK_EQ(rook_spawn(&c[i], mixed_child, (void *)(intptr_t)i), 0);
		int st[GATHER_N];
		T_CHECK_EQ(rook_gather(c, GATHER_N, st), 0);
		int fed = 0;
		for (int i = 0; i < GATHER_N; i++) {
			if (i % 3 == 1) {
				T_CHECK(st[i] >= 100 && st[i] < 100 + GATHER_N);
				fed += st[i];
			} else {
				T_CHECK_EQ(st[i], i);
			}
			T_CHECK_EQ(rook_join(c[i], NULL), -EINVAL); /* released */
		}
		T_CHECK_EQ(fed, 100 + 1 + 100 + 4 + 100 + 7 + 100 + 10);
		T_CHECK_EQ(rook_gather(feeder, (size_t)nfeed, NULL), 0);
	}
	rook_queue_destroy(q);
	return 0;
}

Test(gather, children_that_end_yield_or_block_keep_every_status, .timeout = 60)
{
	run_on_1_and_2(gather_mixed_main);
}

/* The gatherer is cancelled while a child blocks: -ECANCELED,
 * no handle released; each child is joined afterwards. */
static struct rook_task *gathered[3];
static _Atomic int gatherer_rc = 1;

static int gatherer(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_spawn(&gathered[0], mixed_child, (void *)(intptr_t)0), 0);
	T_CHECK_EQ(rook_spawn(&gathered[1], get_one, NULL), 0);
	T_CHECK_EQ(rook_spawn(&gathered[2], mixed_child, (void *)(intptr_t)2), 0);
	atomic_store(&gatherer_rc, rook_gather(gathered, 3, NULL));
	return 0;
}

static int cancelled_gatherer_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), 4), 0);
	for (int round = 0; round < 20; round++) {
		atomic_store(&gatherer_rc, 1);
		struct rook_task *g;
		T_CHECK_EQ(rook_spawn(&g, gatherer, NULL), 0);
		await_parked(g);
		while (!gathered[1] || !rook__task_parked(gathered[1]))
			T_CHECK_EQ(rook_yield(), 0);
		T_CHECK_EQ(rook_cancel(g), 0);
		T_CHECK_EQ(rook_join(g, NULL), 0);
		T_CHECK_EQ(atomic_load(&gatherer_rc), -ECANCELED);
		int v = 7, st = -1;
		T_CHECK_EQ(rook_queue_put(q, &v), 0);
		T_CHECK_EQ(rook_join(gathered[0], &st), 0);
		T_CHECK_EQ(st, 0);
		T_CHECK_EQ(rook_join(gathered[1], &st), 0);
		T_CHECK_EQ(st, 7);
		T_CHECK_EQ(rook_join(gathered[2], &st), 0);
		T_CHECK_EQ(st, 2);
		gathered[0] = gathered[1] = gathered[2] = NULL;
	}
	rook_queue_destroy(q);
	return 0;
}

Test(gather, cancelled_gatherer_leaves_its_blocked_child_running, .timeout = 60)
{
	run_on_1_and_2(cancelled_gatherer_main);
}
