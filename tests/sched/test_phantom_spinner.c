/* SPDX-License-Identifier: MIT */
/*
 * Regression test for the phantom spinner that tools/models/worker_park.pml
 * found in rook__notify (fixed in e5339d3): a notifier A wins the
 * rt_nspinning 0 -> 1 CAS, then finds the idle set empty (the worker left
 * it meanwhile) and still counts as a spinner until its decrement. A
 * notify in that window (B's) returns on A's 1; if the worker parked
 * again before B published, its re-check missed B's task, and with A's
 * old plain return nobody ever woke it: with one worker, B's task never
 * ran. The window is a few instructions, so the worker hook of
 * sched/testing.h holds A inside it while the worker parks and B spawns.
 * Before the fix B's task never runs (the test fails after 10 s, checked
 * by reverting the fix); after it, A looks again and wakes the worker.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include "tests/helpers.h"

static struct rook_rt *rt;
static _Thread_local bool is_a; /* the notifier held in the window */
static _Atomic int stage;       /* 1: A armed; 2: A past the claim; 3: done */
static _Atomic int parks;       /* PARK_SLEEP passes (the one worker) */
static _Atomic int a_running, a_release;
static _Atomic int sleeper_parks = -1;
static sem_t b_ran;

static void relax(void)
{
	sched_yield();
}

static int task_b(void *arg)
{
	(void)arg;
	sem_post(&b_ran);
	return 0;
}

static void hook(int point)
{
	if (point == ROOK__HOOK_PARK_SLEEP) {
		atomic_fetch_add(&parks, 1);
		return;
	}
	if (!is_a)
		return;
	if (point == ROOK__HOOK_NOTIFY_CLAIMED && atomic_load(&stage) == 1) {
		/* A holds the 1; the worker wakes by its timer and leaves the
		 * idle set to run task_a, which holds it off the set. */
		while (!atomic_load(&a_running))
			relax();
		atomic_store(&stage, 2);
	} else if (point == ROOK__HOOK_NOTIFY_EMPTY && atomic_load(&stage) == 2) {
		atomic_store(&stage, 3);
		/* A found the set empty: the phantom window. Let the worker
		 * park again (its re-check finds nothing), then B publishes;
		 * B's notify sees A's 1 and returns. */
		int p = atomic_load(&parks);
		atomic_store(&a_release, 1);
		while (atomic_load(&parks) == p)
			relax();
		T_CHECK_EQ(rook_rt_spawn(rt, NULL, task_b, NULL), 0);
	}
}

static int task_a(void *arg)
{
	(void)arg;
	atomic_store(&a_running, 1);
	while (!atomic_load(&a_release))
		(void)rook_yield();
	return 0;
}

static int sleeper(void *arg)
{
	(void)arg;
	atomic_store(&sleeper_parks, atomic_load(&parks));
	/* Parks the worker with a timeout: it wakes without a notify. */
	return rook_sleep(200 * ROOK_MSEC);
}

static void *thread_a(void *arg)
{
	(void)arg;
	is_a = true;
	atomic_store(&stage, 1);
	T_CHECK_EQ(rook_rt_spawn(rt, NULL, task_a, NULL), 0);
	return NULL;
}

Test(phantom_spinner, notify_in_the_window_still_wakes_the_worker, .timeout = 60)
{
	int fds = fd_count();
	sem_init(&b_ran, 0, 0);
	rook__worker_hook(hook);
	struct rook_config cfg = {.workers = 1, .flags = ROOK_NO_PIN};
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_eq(rook_rt_spawn(rt, NULL, sleeper, NULL), 0);
	/* The worker runs the sleeper, then parks (listed idle, timer set). */
	while (atomic_load(&sleeper_parks) < 0 ||
	       atomic_load(&parks) <= atomic_load(&sleeper_parks))
		relax();
	pthread_t a;
	cr_assert_eq(pthread_create(&a, NULL, thread_a, NULL), 0);
	pthread_join(a, NULL);
	cr_assert_eq(atomic_load(&stage), 3, "the window was not reached (stage %d)",
		     atomic_load(&stage));
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	int r;
	while ((r = sem_timedwait(&b_ran, &until)) != 0 && errno == EINTR)
		;
	/* Before the stop: a worker that lost its wake-up cannot be stopped
	 * either (the test process is the test's own). */
	cr_assert_eq(r, 0, "lost wake-up: B's task stayed queued while the only worker slept");
	rook__worker_hook(NULL);
	cr_assert_eq(rook_rt_stop(rt), 0);
	t_no_failures();
	expect_clean_shutdown(fds);
	sem_destroy(&b_ran);
}
