/* SPDX-License-Identifier: MIT */
/*
 * rook_blocking: 1,000 blocking calls while other tasks keep running, the
 * pool's growth limit, idle threads exiting, cancellation of a queued job
 * (withdrawn) and of a running one (waited for), and plain-thread callers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "io/blocking.h"
#include "tests/helpers.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static _Atomic int in_pool_now, in_pool_peak;

static int sleepy(void *arg)
{
	int now = atomic_fetch_add(&in_pool_now, 1) + 1;
	int peak = atomic_load(&in_pool_peak);
	while (now > peak && !atomic_compare_exchange_weak(&in_pool_peak, &peak, now))
		;
	usleep(1000); /* a real blocking call */
	atomic_fetch_sub(&in_pool_now, 1);
	return (int)(intptr_t)arg;
}

static int caller(void *arg)
{
	T_CHECK_EQ(rook_blocking(sleepy, arg), (int)(intptr_t)arg);
	return 0;
}

static _Atomic long ticks;
static _Atomic int stop_ticking;

static int ticker(void *arg)
{
	while (!atomic_load(&stop_ticking)) {
		atomic_fetch_add(&ticks, 1);
		T_CHECK_EQ(rook_yield(), 0);
	}
	return 0;
}

#define NCALLS 1000

static int thousand_main(void *arg)
{
	static struct rook_task *t[NCALLS];
	long n = (long)(intptr_t)arg;
	struct rook_task *tick;
	T_CHECK_EQ(rook_spawn(&tick, ticker, NULL), 0);
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&t[i], caller, (void *)(intptr_t)i), 0);
	long before = atomic_load(&ticks);
	for (long i = 0; i < n; i++) {
		int st = -1;
		T_CHECK_EQ(rook_join(t[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	/* The other task kept running while the calls blocked. */
	T_CHECK(atomic_load(&ticks) - before > 100);
	atomic_store(&stop_ticking, 1);
	T_CHECK_EQ(rook_join(tick, NULL), 0);
	return 0;
}

Test(blocking, thousand_calls_while_other_tasks_run, .timeout = 120)
{
	int fds = fd_count();
	rook__blocking_configure(16, 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, thousand_main, (void *)(intptr_t)scaled(NCALLS, 4)),
		     0);
	cr_expect((atomic_load(&in_pool_peak)) <= (16), "pool grew to %d threads",
		  atomic_load(&in_pool_peak));
	cr_expect((atomic_load(&in_pool_peak)) > (1), "the pool never grew");
	cr_expect((rook__blocking_threads()) <= (16));
	expect_clean_shutdown(fds);
}

static int one_call(void *arg)
{
	T_CHECK_EQ(rook_blocking(sleepy, (void *)7), 7);
	return 0;
}

Test(blocking, idle_threads_exit, .timeout = 60)
{
	rook__blocking_configure(4, 50);
	cr_assert_eq(run_with(1, ROOK_NO_PIN, one_call, NULL), 0);
	cr_expect((rook__blocking_threads()) >= (1));
	uint64_t until = mono_ns() + 10 * ROOK_SEC;
	while (rook__blocking_threads() > 0 && mono_ns() < until)
		usleep(1000);
	cr_expect_eq(rook__blocking_threads(), 0, "idle pool threads did not exit");
}

/* ---- cancellation ----------------------------------------------------------- */

static _Atomic int gate_open;
static _Atomic int gate_entered;
static _Atomic int queued_ran;

static int gate(void *arg)
{
	atomic_fetch_add(&gate_entered, 1);
	while (!atomic_load(&gate_open))
		usleep(100);
	return 42;
}

static int mark(void *arg)
{
	atomic_store(&queued_ran, 1);
	return 0;
}

static int call_gate(void *arg)
{
	return rook_blocking(gate, NULL);
}

static int call_mark(void *arg)
{
	return rook_blocking(mark, NULL);
}

static int cancel_main(void *arg)
{
	struct rook_task *running, *queued;
	/* One pool thread: the gate job runs, the mark job queues behind it. */
	T_CHECK_EQ(rook_spawn(&running, call_gate, NULL), 0);
	while (!atomic_load(&gate_entered))
		rook_yield();
	T_CHECK_EQ(rook_spawn(&queued, call_mark, NULL), 0);
	for (int i = 0; i < 100; i++)
		rook_yield();
	T_CHECK_EQ(rook_cancel(queued), 0);
	int st = 0;
	T_CHECK_EQ(rook_join(queued, &st), 0);
	T_CHECK_EQ(st, -ECANCELED); /* withdrawn: never ran */
	T_CHECK_EQ(rook_cancel(running), 0);
	for (int i = 0; i < 100; i++)
		rook_yield();
	T_CHECK(!rook_done(running)); /* it waits for fn */
	atomic_store(&gate_open, 1);
	T_CHECK_EQ(rook_join(running, &st), 0);
	T_CHECK_EQ(st, 42); /* fn ran: its value */
	T_CHECK_EQ(atomic_load(&queued_ran), 0);
	return 0;
}

Test(blocking, cancel_withdraws_a_queued_job_and_waits_for_a_running_one, .timeout = 60)
{
	int fds = fd_count();
	rook__blocking_configure(1, 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int plain_fn(void *arg)
{
	*(pthread_t *)arg = pthread_self();
	return 5;
}

Test(blocking, plain_thread_runs_fn_inline, .timeout = 30)
{
	pthread_t who;
	cr_assert_eq(rook_blocking(plain_fn, &who), 5);
	cr_assert(pthread_equal(who, pthread_self()));
	cr_assert_eq(rook_blocking(NULL, NULL), -EINVAL);
}
