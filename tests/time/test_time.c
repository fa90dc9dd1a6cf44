/* SPDX-License-Identifier: MIT */
/*
 * Timers: rook_sleep accuracy (gross bounds only), sleep(0) as a yield, a
 * deadline in the past, a timer that fires while its worker is stuck in a
 * CPU loop (an idle worker, or a busy one between two tasks, must take it
 * over), many concurrent sleepers,
 * and stopping a runtime whose tasks are asleep.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

static int sleep_20ms_main(void *arg)
{
	for (int i = 0; i < 5; i++) {
		uint64_t t0 = rook_now();
		T_CHECK_EQ(rook_sleep(20 * ROOK_MSEC), 0);
		uint64_t took = rook_now() - t0;
		T_CHECK(took >= 20 * ROOK_MSEC);
		T_CHECK(took < 2 * ROOK_SEC);
	}
	return 0;
}

Test(time, sleep_lasts_at_least_its_duration_and_not_grossly_more, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, sleep_20ms_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, sleep_20ms_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static _Atomic int other_ran;

static int set_other_ran(void *arg)
{
	atomic_store(&other_ran, 1);
	return 0;
}

static int sleep0_main(void *arg)
{
	struct rook_task *t;
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_spawn(&t, set_other_ran, NULL), 0);
	T_CHECK_EQ(atomic_load(&other_ran), 0); /* one worker: not yet */
	T_CHECK_EQ(rook_sleep(0), 0);
	T_CHECK_EQ(atomic_load(&other_ran), 1); /* it ran while we yielded */
	T_CHECK(ms_since(t0) < 1000);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	/* sleep(0) is a checkpoint: it reports a pending cancel. */
	T_CHECK_EQ(rook_cancel(rook_self()), 0);
	T_CHECK_EQ(rook_sleep(0), -ECANCELED);
	return 0;
}

Test(time, sleep_zero_yields_to_other_tasks, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, sleep0_main, NULL), 0);
	cr_assert_eq(rook_sleep(0), -EPERM); /* outside a task */
	expect_clean_shutdown(fds);
}

static int forever(void *arg)
{
	return rook_sleep(60 * ROOK_SEC);
}

static int past_deadline_main(void *arg)
{
	struct rook_task *t;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, forever, NULL), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() - ROOK_SEC), 0);
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK_EQ(rook_join(t, NULL), -ETIMEDOUT);
	T_CHECK_EQ(rook_gather(&t, 1, NULL), -ETIMEDOUT);
	T_CHECK_EQ(rook_wait_any(&t, 1), -ETIMEDOUT);
	T_CHECK_EQ(rook_yield(), -ETIMEDOUT);
	T_CHECK(ms_since(t0) < 5000); /* gross: none of them blocked */
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

Test(time, deadline_in_past_returns_etimedout_without_blocking, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, past_deadline_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/*
 * Timer takeover. A sleeps 10 ms; its timer is armed on the worker it ran
 * on. Main runs on that same worker and then spins there without ever
 * yielding until A has woken (giving up after 10 s). The busy worker never
 * looks at its timers, so A can only wake if the idle worker takes the
 * timer over: without takeover this waits the full 10 s.
 */
struct takeover {
	_Atomic int k_worker; /* where A armed its timer; -1 before */
	_Atomic int k_woke;
	_Atomic uint64_t k_slept_ns;
};

static int takeover_sleeper(void *arg)
{
	struct takeover *k = arg;
	uint64_t t0 = rook_now();
	/* No blocking call between these two lines: A cannot migrate, so
	 * the timer is armed on the worker recorded here. */
	atomic_store_explicit(&k->k_worker, rook__worker_index(), memory_order_release);
	int rc = rook_sleep(10 * ROOK_MSEC);
	atomic_store(&k->k_slept_ns, rook_now() - t0);
	atomic_store_explicit(&k->k_woke, rc == 0 ? 1 : -1, memory_order_release);
	return rc;
}

/*
 * One attempt: spawn A and, if A armed its timer on our worker and parked,
 * spin there without yielding until A wakes; A must have slept at least its
 * 10 ms and less than max_ns. Returns 1 if the attempt ran, 0 to try again.
 */
static int takeover_try(uint64_t max_ns)
{
	struct takeover k = {.k_worker = -1};
	struct rook_task *t;
	int ran = 0;

	T_CHECK_EQ(rook_spawn(&t, takeover_sleeper, &k), 0);
	while (atomic_load_explicit(&k.k_worker, memory_order_acquire) < 0)
		T_CHECK_EQ(rook_yield(), 0);
	/* If A armed on our worker and we run there now, A has parked (it
	 * ran on this worker before us). Otherwise try again. */
	if (atomic_load(&k.k_worker) == rook__worker_index() && !atomic_load(&k.k_woke)) {
		uint64_t t0 = rook_now();
		while (!atomic_load_explicit(&k.k_woke, memory_order_acquire) &&
		       ms_since(t0) < 10000)
			; /* busy, never yields */
		T_CHECK_EQ(atomic_load(&k.k_woke), 1);
		T_CHECK(atomic_load(&k.k_slept_ns) >= 10 * ROOK_MSEC);
		T_CHECK(atomic_load(&k.k_slept_ns) < max_ns);
		ran = 1;
	}
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return ran;
}

static int takeover_main(void *arg)
{
	int tries = 0, done = 0;

	while (!done && tries++ < 200)
		done = takeover_try(2 * ROOK_SEC);
	T_CHECK(done);
	return 0;
}

Test(time, timer_fires_while_its_worker_is_busy_in_cpu_loop, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, takeover_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/*
 * The same with no idle worker: the other worker runs a task that yields
 * every 50 us, so it never parks (where an idle worker fires every heap).
 * Its scheduling rounds must fire the stuck worker's due timers too.
 */
struct busy_takeover {
	_Atomic int b_hog_worker; /* -1 until the hog runs */
	_Atomic int b_stop;
};

static int takeover_yielder(void *arg)
{
	struct busy_takeover *b = arg;
	uint64_t start = rook_now();
	atomic_store_explicit(&b->b_hog_worker, rook__worker_index(), memory_order_release);
	while (!atomic_load_explicit(&b->b_stop, memory_order_acquire) && ms_since(start) < 30000) {
		uint64_t t0 = rook_now();
		while (rook_now() - t0 < 50 * ROOK_USEC)
			;
		T_CHECK_EQ(rook_yield(), 0);
	}
	return 0;
}

static int busy_takeover_main(void *arg)
{
	struct busy_takeover b = {.b_hog_worker = -1};
	struct rook_task *hog;
	int tries = 0, done = 0;

	T_CHECK_EQ(rook_spawn(&hog, takeover_yielder, &b), 0);
	/* Busy, never yielding: the hog can only start on the other worker. */
	uint64_t t0 = rook_now();
	while (atomic_load_explicit(&b.b_hog_worker, memory_order_acquire) < 0 &&
	       ms_since(t0) < 10000)
		;
	T_CHECK(atomic_load(&b.b_hog_worker) >= 0);
	T_CHECK(atomic_load(&b.b_hog_worker) != rook__worker_index());
	while (!done && tries++ < 200)
		done = takeover_try(5 * ROOK_SEC);
	T_CHECK(done);
	atomic_store_explicit(&b.b_stop, 1, memory_order_release);
	T_CHECK_EQ(rook_join(hog, NULL), 0);
	return 0;
}

Test(time, timer_fires_while_its_worker_is_stuck_and_the_other_runs_yielding_task, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, busy_takeover_main, NULL), 0);
	t_no_failures();
	expect_clean_shutdown(fds);
}

static int sleep_50ms(void *arg)
{
	return rook_sleep(50 * ROOK_MSEC);
}

static int many_sleepers_main(void *arg)
{
	long n = scaled(100000, 10);
	struct rook_task **ts = calloc((size_t)n, sizeof(*ts));
	int *st = calloc((size_t)n, sizeof(*st));
	uint64_t t0 = rook_now();
	long bad = 0;

	T_CHECK(ts && st);
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], sleep_50ms, NULL), 0);
	T_CHECK_EQ(rook_gather(ts, (size_t)n, st), 0);
	for (long i = 0; i < n; i++)
		bad += st[i] != 0;
	T_CHECK_EQ(bad, 0);
	T_CHECK(ms_since(t0) >= 50);
	T_CHECK(ms_since(t0) < 30000);
	free(ts);
	free(st);
	return 0;
}

Test(time, hundred_thousand_concurrent_sleepers_all_wake, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, many_sleepers_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Stopping a runtime whose tasks sleep for a minute is prompt. */
static _Atomic long sleepers_started, sleepers_cancelled;

static int long_sleeper(void *arg)
{
	atomic_fetch_add(&sleepers_started, 1);
	int rc = rook_sleep(60 * ROOK_SEC);
	if (rc == -ECANCELED)
		atomic_fetch_add(&sleepers_cancelled, 1);
	return rc;
}

static int leave_sleepers_main(void *arg)
{
	long n = *(long *)arg;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(NULL, long_sleeper, NULL), 0);
	while (atomic_load(&sleepers_started) < n)
		T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	return 0;
}

Test(time, runtime_stops_promptly_with_sleeping_tasks, .timeout = 60)
{
	int fds = fd_count();
	long n = scaled(1000, 4);
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt;
	uint64_t t0 = rook_now();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, leave_sleepers_main, &n), 0);
	cr_assert_lt(ms_since(t0), 5000);
	cr_assert_eq(atomic_load(&sleepers_cancelled), n);

	atomic_store(&sleepers_started, 0);
	atomic_store(&sleepers_cancelled, 0);
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	for (long i = 0; i < n; i++)
		cr_assert_eq(rook_rt_spawn(rt, NULL, long_sleeper, NULL), 0);
	while (atomic_load(&sleepers_started) < n)
		sched_yield();
	t0 = rook_now();
	cr_assert_eq(rook_rt_stop(rt), 0);
	cr_assert_lt(ms_since(t0), 5000);
	cr_assert_eq(atomic_load(&sleepers_cancelled), n);
	expect_clean_shutdown(fds);
}

/*
 * Timers fire while every worker runs CPU-bound tasks that yield often
 * (issue 3's timer_lateness scenario): a yield is a scheduling point, so
 * a due timer must fire there even when no other task is runnable yet.
 */
struct yielding_hogs {
	_Atomic int y_woke;
	_Atomic uint64_t y_slept_ns;
};

static int timed_sleeper(void *arg)
{
	struct yielding_hogs *y = arg;
	uint64_t t0 = rook_now();
	int rc = rook_sleep(10 * ROOK_MSEC);
	atomic_store(&y->y_slept_ns, rook_now() - t0);
	atomic_store_explicit(&y->y_woke, rc == 0 ? 1 : -1, memory_order_release);
	return rc;
}

/* Spins in 50 us slices with a yield between them until the sleeper woke
 * (at most 5 s). */
static int yielding_hog(void *arg)
{
	struct yielding_hogs *y = arg;
	uint64_t start = rook_now();
	while (!atomic_load_explicit(&y->y_woke, memory_order_acquire) && ms_since(start) < 5000) {
		uint64_t t0 = rook_now();
		while (rook_now() - t0 < 50 * ROOK_USEC)
			;
		T_CHECK_EQ(rook_yield(), 0);
	}
	return 0;
}

static int yielding_hogs_main(void *arg)
{
	struct yielding_hogs y = {0};
	struct rook_task *s, *hog = NULL;

	T_CHECK_EQ(rook_spawn(&s, timed_sleeper, &y), 0);
	T_CHECK_EQ(rook_yield(), 0); /* let it start and arm its timer */
	if (rook_workers() > 1)
		T_CHECK_EQ(rook_spawn(&hog, yielding_hog, &y), 0);
	yielding_hog(&y);
	T_CHECK_EQ(atomic_load(&y.y_woke), 1);
	T_CHECK(atomic_load(&y.y_slept_ns) >= 10 * ROOK_MSEC);
	T_CHECK(atomic_load(&y.y_slept_ns) < 2 * ROOK_SEC);
	if (hog)
		T_CHECK_EQ(rook_join(hog, NULL), 0);
	T_CHECK_EQ(rook_join(s, NULL), 0);
	return 0;
}

Test(time, timer_fires_while_every_worker_runs_yielding_cpu_tasks, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, yielding_hogs_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, yielding_hogs_main, NULL), 0);
	expect_clean_shutdown(fds);
}
