/* SPDX-License-Identifier: MIT */
/*
 * Spawning and joining: rook_run's status, a million joined spawns, nested
 * spawns, joins from plain threads, 100,000 live tasks, detach, rook_done,
 * rook_self, rook_workers and self-join. Every test ends with the runtime
 * stopped and checks that no task, stack or fd was left behind.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

Test(spawn, run_returns_main_status_when_main_returns, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config zero = {0};

	cr_assert_eq(rook_run(NULL, return_arg, (void *)(intptr_t)42), 42);
	cr_assert_eq(rook_run(NULL, return_arg, (void *)(intptr_t)-ENOENT), -ENOENT);
	cr_assert_eq(rook_run(&zero, return_arg, (void *)(intptr_t)0), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, return_arg, (void *)(intptr_t)-EPIPE), -EPIPE);
	expect_clean_shutdown(fds);
}

/* ---- a million spawns ------------------------------------------------- */

static _Atomic long ran;

static int count_and_return(void *arg)
{
	atomic_fetch_add_explicit(&ran, 1, memory_order_relaxed);
	return -(int)((uintptr_t)arg % 5);
}

#define BATCH 10000

static int million_main(void *arg)
{
	long total = *(long *)arg;
	struct rook_task **h = malloc(BATCH * sizeof(*h));
	long long sum = 0, want = 0;

	T_CHECK(h != NULL);
	if (!h)
		return -ENOMEM;
	for (long base = 0; base < total; base += BATCH) {
		long n = total - base < BATCH ? total - base : BATCH;
		for (long i = 0; i < n; i++) {
			int rc = rook_spawn(&h[i], count_and_return, (void *)(uintptr_t)(base + i));
			T_CHECK_EQ(rc, 0);
			want -= (long long)((base + i) % 5);
		}
		for (long i = 0; i < n; i++) {
			int st = 1;
			T_CHECK_EQ(rook_join(h[i], &st), 0);
			T_CHECK_EQ(st, -(int)((base + i) % 5));
			sum += st;
		}
	}
	free(h);
	T_CHECK_EQ(sum, want);
	return 0;
}

Test(spawn, joins_every_task_when_spawning_a_million_in_batches, .timeout = 120)
{
	int fds = fd_count();
	long total = scaled(1000000, 10);

	cr_assert_eq(rook_run(NULL, million_main, &total), 0);
	cr_assert_eq(atomic_load(&ran), total);
	expect_clean_shutdown(fds);
}

/* ---- nested spawns ---------------------------------------------------- */

#define FANOUT 4
#define DEPTH  5

static _Atomic long nodes;
static _Atomic long leaves;

static int tree_node(void *arg)
{
	uintptr_t depth = (uintptr_t)arg;
	struct rook_task *kids[FANOUT];

	atomic_fetch_add_explicit(&nodes, 1, memory_order_relaxed);
	if (depth == DEPTH) {
		atomic_fetch_add_explicit(&leaves, 1, memory_order_relaxed);
		return 0;
	}
	for (int i = 0; i < FANOUT; i++)
		T_CHECK_EQ(rook_spawn(&kids[i], tree_node, (void *)(depth + 1)), 0);
	for (int i = 0; i < FANOUT; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(kids[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	return 0;
}

Test(spawn, runs_every_node_when_tasks_spawn_a_tree_of_depth_5, .timeout = 60)
{
	int fds = fd_count();
	long want = 0, level = 1;

	for (int d = 0; d <= DEPTH; d++, level *= FANOUT)
		want += level;
	cr_assert_eq(rook_run(NULL, tree_node, (void *)(uintptr_t)0), 0);
	cr_assert_eq(atomic_load(&nodes), want);
	cr_assert_eq(atomic_load(&leaves), level / FANOUT);
	expect_clean_shutdown(fds);
}

/* ---- join from a plain thread ----------------------------------------- */

struct plain {
	struct rook_rt *p_rt;
	int p_spawn_rc, p_join_rc, p_status;
	int p_self_null;
	unsigned p_workers;
};

static void *plain_thread(void *arg)
{
	struct plain *p = arg;
	struct rook_task *t = NULL;

	p->p_self_null = rook_self() == NULL;
	p->p_workers = rook_workers();
	p->p_spawn_rc = rook_rt_spawn(p->p_rt, &t, return_arg, (void *)(intptr_t)-EEXIST);
	if (p->p_spawn_rc == 0)
		p->p_join_rc = rook_join(t, &p->p_status);
	return NULL;
}

Test(spawn, join_blocks_and_returns_status_when_called_from_plain_threads, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt = NULL;
	struct rook_task *t = NULL;
	struct plain p = {.p_join_rc = 1, .p_status = 1};
	pthread_t th;
	int st = 1;

	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_not_null(rt);
	/* From the test's own thread. */
	cr_assert_eq(rook_rt_spawn(rt, &t, return_arg, (void *)(intptr_t)-ENOENT), 0);
	cr_assert_not_null(t);
	cr_assert_eq(rook_join(t, &st), 0);
	cr_assert_eq(st, -ENOENT);
	/* And from a second plain thread. */
	p.p_rt = rt;
	cr_assert_eq(pthread_create(&th, NULL, plain_thread, &p), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert(p.p_self_null, "rook_self() outside a task is NULL");
	cr_assert_eq(p.p_workers, 0, "rook_workers() outside a task is 0");
	cr_assert_eq(p.p_spawn_rc, 0);
	cr_assert_eq(p.p_join_rc, 0);
	cr_assert_eq(p.p_status, -EEXIST);
	/* A detached task from outside (t NULL) is fine too. */
	cr_assert_eq(rook_rt_spawn(rt, NULL, return_arg, NULL), 0);
	cr_assert_eq(rook_rt_stop(rt), 0);
	expect_clean_shutdown(fds);
}

/* ---- 100,000 live tasks ----------------------------------------------- */

static _Atomic long started;
static _Atomic int release_all;

static int wait_for_release(void *arg)
{
	atomic_fetch_add_explicit(&started, 1, memory_order_relaxed);
	/* Pairs with the release store in live_main. */
	while (!atomic_load_explicit(&release_all, memory_order_acquire))
		if (rook_yield() != 0)
			return -ECANCELED;
	return 0;
}

/*
 * The stats fold per-worker batches of up to 64 (diag/stats.h), so keep
 * that many extra tasks per worker alive for the counters to reach n.
 */
static long stat_slack(void)
{
	return 64L * (long)rook_workers();
}

static int live_main(void *arg)
{
	long n = *(long *)arg + stat_slack();
	struct rook_task **h = malloc((size_t)n * sizeof(*h));
	struct rook__stats st;

	T_CHECK(h != NULL);
	if (!h)
		return -ENOMEM;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&h[i], wait_for_release, NULL), 0);
	/* Every task has started and none may finish before the flag flips. */
	while (atomic_load_explicit(&started, memory_order_relaxed) < n)
		T_CHECK_EQ(rook_yield(), 0);
	rook__stats_get(&st);
	T_CHECK(st.peak_live_tasks >= (uint64_t) * (long *)arg);
	T_CHECK(st.peak_stacks >= (uint64_t) * (long *)arg);
	T_CHECK(st.live_tasks >= (uint64_t) * (long *)arg);
	atomic_store_explicit(&release_all, 1, memory_order_release);
	for (long i = 0; i < n; i++) {
		int s = 1;
		T_CHECK_EQ(rook_join(h[i], &s), 0);
		T_CHECK_EQ(s, 0);
	}
	free(h);
	return 0;
}

Test(spawn, keeps_all_alive_when_100000_tasks_wait_at_once, .timeout = 120)
{
	int fds = fd_count();
	long n = scaled(100000, 10);
	struct rook__stats st;

	rook__stats_reset_peaks();
	cr_assert_eq(rook_run(NULL, live_main, &n), 0);
	cr_assert_geq(atomic_load(&started), n);
	rook__stats_get(&st);
	cr_assert_geq(st.peak_live_tasks, (uint64_t)n, "peak_live_tasks %llu, want >= %ld",
		      (unsigned long long)st.peak_live_tasks, n);
	expect_clean_shutdown(fds);
}

/* ---- detach, done, self, workers -------------------------------------- */

static _Atomic int flag;

static int set_flag_after_yields(void *arg)
{
	for (int i = 0; i < 100; i++)
		if (rook_yield() != 0)
			return -ECANCELED;
	atomic_store_explicit(&flag, 1, memory_order_release);
	return 0;
}

static int detach_main(void *arg)
{
	struct rook_task *t = NULL;

	rook_detach(NULL); /* no-op */
	T_CHECK_EQ(rook_spawn(&t, set_flag_after_yields, NULL), 0);
	rook_detach(t);
	/* The detached task keeps running to completion. */
	while (!atomic_load_explicit(&flag, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
	/* A detached spawn (t NULL) also runs. */
	atomic_store(&flag, 0);
	T_CHECK_EQ(rook_spawn(NULL, set_flag_after_yields, NULL), 0);
	while (!atomic_load_explicit(&flag, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
	return 0;
}

Test(spawn, detached_task_runs_to_completion_when_handle_released, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, detach_main, NULL), 0);
	cr_assert_eq(atomic_load(&flag), 1);
	expect_clean_shutdown(fds);
}

static int wait_for_flag(void *arg)
{
	while (!atomic_load_explicit(&flag, memory_order_acquire))
		if (rook_yield() != 0)
			return -ECANCELED;
	return -EALREADY;
}

static int done_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK(!rook_done(NULL));
	T_CHECK_EQ(rook_spawn(&t, wait_for_flag, NULL), 0);
	for (int i = 0; i < 10; i++) {
		T_CHECK(!rook_done(t)); /* it cannot end before the flag flips */
		T_CHECK_EQ(rook_yield(), 0);
	}
	atomic_store_explicit(&flag, 1, memory_order_release);
	while (!rook_done(t))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK(rook_done(t));
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EALREADY);
	return 0;
}

Test(spawn, done_turns_true_only_when_task_finished, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, done_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static _Atomic(struct rook_task *) child_self;

static int record_self(void *arg)
{
	atomic_store(&child_self, rook_self());
	return 0;
}

static int self_main(void *arg)
{
	struct rook_task *me = rook_self();
	struct rook_task *t = NULL;

	T_CHECK(me != NULL);
	T_CHECK_EQ(rook_spawn(&t, record_self, NULL), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK(atomic_load(&child_self) != NULL);
	T_CHECK(atomic_load(&child_self) == t);
	T_CHECK(atomic_load(&child_self) != me);
	T_CHECK(rook_self() == me); /* unchanged across a blocking call */
	return 0;
}

Test(spawn, self_is_null_outside_and_the_task_inside, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_null(rook_self());
	cr_assert_eq(rook_workers(), 0);
	cr_assert_eq(rook__worker_index(), -1);
	cr_assert_eq(rook_run(NULL, self_main, NULL), 0);
	cr_assert_null(rook_self());
	expect_clean_shutdown(fds);
}

static int join_self(void *arg)
{
	int st = 12345;

	T_CHECK_EQ(rook_join(rook_self(), &st), -EDEADLK);
	T_CHECK_EQ(st, 12345); /* not written on failure */
	return -EDEADLK;
}

Test(spawn, join_fails_with_edeadlk_when_task_joins_itself, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(rook_run(NULL, join_self, NULL), -EDEADLK);
	expect_clean_shutdown(fds);
}

/* ---- worker counts ---------------------------------------------------- */

#define WTASKS 1000

struct wrun {
	unsigned w_want;
	unsigned w_seen;
	_Atomic int w_bad_index;
	_Atomic long w_ran;
};

static int note_index(void *arg)
{
	struct wrun *w = arg;
	int idx = rook__worker_index();

	if (idx < 0 || idx >= (int)w->w_want)
		atomic_store(&w->w_bad_index, idx);
	atomic_fetch_add(&w->w_ran, 1);
	return 0;
}

static int workers_main(void *arg)
{
	struct wrun *w = arg;
	struct rook_task *h[WTASKS];

	w->w_seen = rook_workers();
	note_index(w);
	atomic_fetch_sub(&w->w_ran, 1);
	for (int i = 0; i < WTASKS; i++)
		T_CHECK_EQ(rook_spawn(&h[i], note_index, w), 0);
	for (int i = 0; i < WTASKS; i++)
		T_CHECK_EQ(rook_join(h[i], NULL), 0);
	return 0;
}

static void check_workers(unsigned n)
{
	struct wrun w = {.w_want = n, .w_bad_index = 0};

	cr_assert_eq(run_with(n, ROOK_NO_PIN, workers_main, &w), 0);
	cr_assert_eq(w.w_seen, n, "rook_workers() = %u, want %u", w.w_seen, n);
	cr_assert_eq(atomic_load(&w.w_bad_index), 0, "worker index %d out of [0, %u)",
		     atomic_load(&w.w_bad_index), n);
	cr_assert_eq(atomic_load(&w.w_ran), WTASKS);
}

Test(spawn, runs_on_one_worker_when_workers_is_1, .timeout = 60)
{
	int fds = fd_count();

	check_workers(1);
	expect_clean_shutdown(fds);
}

Test(spawn, runs_on_two_workers_when_workers_is_2, .timeout = 60)
{
	int fds = fd_count();

	check_workers(2);
	check_workers(3); /* more workers than this machine may have cores */
	expect_clean_shutdown(fds);
}
