/* SPDX-License-Identifier: MIT */
/*
 * A join whose child has not started runs it at once (rook__task_adopt):
 * the child may still block or yield, the joiner then waits as usual and
 * stays cancellable; fork-join made only of such joins still lets timers
 * and older tasks run; a stop racing a stream of spawns cancels them all.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <sched.h>
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

/* The child blocks on its first call: the joiner resumes, waits, and gets
 * the status once a third task feeds the queue. */
static int blocking_child_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), 4), 0);
	for (int i = 0; i < 50; i++) {
		struct rook_task *feeder, *c;
		T_CHECK_EQ(rook_spawn(&feeder, put_later, (void *)(intptr_t)(i + 1)), 0);
		T_CHECK_EQ(rook_spawn(&c, get_one, NULL), 0);
		int st = -1;
		T_CHECK_EQ(rook_join(c, &st), 0);
		T_CHECK_EQ(st, i + 1);
		T_CHECK_EQ(rook_join(feeder, &st), 0);
		T_CHECK_EQ(st, 0);
	}
	rook_queue_destroy(q);
	return 0;
}

Test(adopt, joined_child_that_blocks_returns_its_status, .timeout = 60)
{
	run_on_1_and_2(blocking_child_main);
}

static _Atomic int yields_done;

static int yield_thrice(void *arg)
{
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(rook_yield(), 0);
		atomic_fetch_add(&yields_done, 1);
	}
	return (int)(intptr_t)arg;
}

static int yielding_child_main(void *arg)
{
	(void)arg;
	atomic_store(&yields_done, 0);
	for (int i = 0; i < 100; i++) {
		struct rook_task *c;
		T_CHECK_EQ(rook_spawn(&c, yield_thrice, (void *)(intptr_t)i), 0);
		int st = -1;
		T_CHECK_EQ(rook_join(c, &st), 0);
		T_CHECK_EQ(st, i);
	}
	T_CHECK_EQ(atomic_load(&yields_done), 300);
	return 0;
}

Test(adopt, joined_child_that_yields_returns_its_status, .timeout = 60)
{
	run_on_1_and_2(yielding_child_main);
}

/* The joiner is cancelled while the child it started blocks: its join
 * returns -ECANCELED, the child keeps running and is joined later. */
static struct rook_task *child_of_joiner;
static _Atomic int joiner_rc = 1;

static int joiner(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_spawn(&child_of_joiner, get_one, NULL), 0);
	int r = rook_join(child_of_joiner, NULL);
	atomic_store(&joiner_rc, r);
	return r;
}

static int cancelled_joiner_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), 4), 0);
	atomic_store(&joiner_rc, 1);
	struct rook_task *j;
	T_CHECK_EQ(rook_spawn(&j, joiner, NULL), 0);
	await_parked(j);
	T_CHECK(!rook_done(child_of_joiner));
	T_CHECK_EQ(rook_cancel(j), 0);
	int st = 0;
	T_CHECK_EQ(rook_join(j, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&joiner_rc), -ECANCELED);
	T_CHECK(!rook_done(child_of_joiner));
	int v = 77;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	T_CHECK_EQ(rook_join(child_of_joiner, &st), 0);
	T_CHECK_EQ(st, 77);
	rook_queue_destroy(q);
	return 0;
}

Test(adopt, cancelled_joiner_leaves_its_blocked_child_running, .timeout = 60)
{
	run_on_1_and_2(cancelled_joiner_main);
}

/* One worker busy with spawn+join pairs that all find their child
 * unstarted: a sleeper spawned before them (the oldest task of the deque)
 * still wakes, and its timer still fires. */
static _Atomic int slept;

static int sleeper(void *arg)
{
	(void)arg;
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	atomic_store(&slept, 1);
	return 0;
}

static int nothing(void *arg)
{
	return (int)(intptr_t)arg;
}

static int busy_joins_main(void *arg)
{
	(void)arg;
	atomic_store(&slept, 0);
	struct rook_task *s;
	T_CHECK_EQ(rook_spawn(&s, sleeper, NULL), 0);
	uint64_t t0 = rook_now();
	long n = 0;
	while (!atomic_load(&slept) && ms_since(t0) < 30000) {
		struct rook_task *c;
		int st = -1;
		T_CHECK_EQ(rook_spawn(&c, nothing, (void *)(intptr_t)(n & 7)), 0);
		T_CHECK_EQ(rook_join(c, &st), 0);
		T_CHECK_EQ(st, (int)(n & 7));
		n++;
	}
	T_CHECK(atomic_load(&slept));
	T_CHECK_EQ(rook_join(s, NULL), 0);
	return 0;
}

Test(adopt, busy_joins_let_an_older_sleeper_wake, .timeout = 60)
{
	cr_assert_eq(run_with(1, ROOK_NO_PIN, busy_joins_main, NULL), 0);
}

/* A stop while tasks keep spawning children that sleep until cancelled:
 * spawn has no fence against the stop's sweep, so a child published as
 * the sweep passes is found by a later sweep; the stop returns. */
static _Atomic long spawned_sleepers;

static int sleep_forever(void *arg)
{
	(void)arg;
	return rook_sleep(FOREVER);
}

static int spawn_stream(void *arg)
{
	(void)arg;
	while (rook_spawn(NULL, sleep_forever, NULL) == 0) {
		atomic_fetch_add(&spawned_sleepers, 1);
		if (rook_yield() < 0)
			break;
	}
	return 0;
}

Test(adopt, stop_during_a_spawn_stream_cancels_every_task, .timeout = 120)
{
	int fds = fd_count();
	for (int round = 0; round < 20; round++) {
		struct rook_rt *rt;
		struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
		cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
		atomic_store(&spawned_sleepers, 0);
		for (int i = 0; i < 4; i++)
			cr_assert_eq(rook_rt_spawn(rt, NULL, spawn_stream, NULL), 0);
		while (atomic_load(&spawned_sleepers) < 200 + 50 * round)
			sched_yield();
		cr_assert_eq(rook_rt_stop(rt), 0);
	}
	t_no_failures();
	expect_clean_shutdown(fds);
}
