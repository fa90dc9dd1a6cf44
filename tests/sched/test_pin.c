/* SPDX-License-Identifier: MIT */
/*
 * Pinning under contention (sched/topo.c): a pinned worker whose core
 * another thread keeps busy lifts its pinning, and pins itself again once
 * the core is free for long enough. The hog is a plain thread pinned to
 * worker 0's core. Busy tasks keep the workers wanting more than a fair
 * share of a core (a worker that mostly sleeps gets its core on demand
 * and is not contended), parking every few ms (where workers sample their
 * run-queue wait). How quiet a shared
 * machine's cores are is not the test's to choose, so the cases after a
 * real hog play worker 0's run-queue wait through rook__topo_wait_hook.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rook.h>

#include "tests/helpers.h"

/* rook-w0's CPU mask; false if the thread is not found. */
static bool w0_mask(cpu_set_t *set)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	bool found = false;
	while (d && !found && (e = readdir(d))) {
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool w0 = fgets(comm, sizeof(comm), f) && strcmp(comm, "rook-w0\n") == 0;
		fclose(f);
		found = w0 && sched_getaffinity(atoi(e->d_name), sizeof(*set), set) == 0;
	}
	if (d)
		closedir(d);
	return found;
}

static int w0_cpus(void)
{
	cpu_set_t set;
	return w0_mask(&set) ? CPU_COUNT(&set) : -1;
}

/* The one CPU rook-w0 is pinned to, or -1. */
static int w0_cpu(void)
{
	cpu_set_t set;
	if (!w0_mask(&set) || CPU_COUNT(&set) != 1)
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			return i;
	return -1;
}

static _Atomic int hog_stop;

static void *hog(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&hog_stop, memory_order_relaxed))
		;
	return NULL;
}

/* Sleep in 2 ms steps until w0's CPU count satisfies want (or 30 s). */
static bool wait_w0(bool pinned)
{
	uint64_t t0 = rook_now();
	while (rook_now() - t0 < 30 * ROOK_SEC) {
		int n = w0_cpus();
		if (pinned ? n == 1 : n > 1)
			return true;
		if (rook_sleep(2 * ROOK_MSEC) < 0)
			return false;
	}
	return false;
}

/* The core worker 0's samples see, as a cumulative wait W(t) that each
 * sample differences, so a sample of any length sees the share of the
 * time it spans: QUIET waits nothing, BUSY 25% of the time, NOISY 1%
 * plus 13% more in one 20 ms slot of every 140 ms (about the light
 * background load of a 3 ms burst every 30 ms per core). */
enum { PLAY_REAL, PLAY_QUIET, PLAY_NOISY, PLAY_BUSY };
static _Atomic int play = PLAY_REAL;
static _Atomic unsigned long w0_samples;
static uint64_t w0_wait, w0_at; /* written by worker 0 only */

static uint64_t played(int mode, uint64_t t)
{
	if (mode == PLAY_BUSY)
		return t / 4;
	if (mode != PLAY_NOISY)
		return 0;
	uint64_t slot = 20 * ROOK_MSEC, period = 7 * slot, in = t % period;
	uint64_t spiked = t / period * slot + (in < slot ? in : slot);
	return t / 100 + spiked * 13 / 100;
}

static uint64_t played_wait(unsigned worker, uint64_t now, uint64_t wait)
{
	int mode = atomic_load(&play);
	if (worker != 0)
		return wait;
	atomic_fetch_add(&w0_samples, 1);
	if (mode == PLAY_REAL || w0_at == 0) {
		w0_at = now;
		w0_wait = wait > w0_wait ? wait : w0_wait;
		return w0_wait;
	}
	w0_wait += played(mode, now) - played(mode, w0_at);
	w0_at = now;
	return w0_wait;
}

/* Let worker 0 take n more samples (sleeping 2 ms steps); false if it took
 * none for 30 s. */
static bool w0_sample(unsigned long n)
{
	unsigned long want = atomic_load(&w0_samples) + n;
	uint64_t t0 = rook_now();
	while (atomic_load(&w0_samples) < want) {
		if (rook_now() - t0 > 30 * ROOK_SEC || rook_sleep(2 * ROOK_MSEC) < 0)
			return false;
	}
	return true;
}

/* While worker 0 takes n samples, is its pinning ever other than pinned? */
static bool w0_stays(bool pinned, unsigned long n)
{
	unsigned long want = atomic_load(&w0_samples) + n;
	uint64_t t0 = rook_now();
	while (atomic_load(&w0_samples) < want) {
		int c = w0_cpus();
		if (pinned ? c != 1 : c == 1)
			return false;
		if (rook_now() - t0 > 30 * ROOK_SEC || rook_sleep(2 * ROOK_MSEC) < 0)
			return false;
	}
	return true;
}

static _Atomic int busy_stop;

static int busy(void *arg)
{
	(void)arg;
	while (!atomic_load(&busy_stop)) {
		uint64_t t0 = rook_now();
		while (rook_now() - t0 < 10 * ROOK_MSEC)
			;
		if (rook_sleep(ROOK_MSEC) < 0)
			break;
	}
	return 0;
}

static int pin_main(void *arg)
{
	(void)arg;
	int cpu = w0_cpu();
	T_CHECK(cpu >= 0);
	if (cpu < 0)
		return 0;
	struct rook_task *b[4] = {NULL};
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&b[i], busy, NULL), 0);
	pthread_attr_t a;
	pthread_attr_init(&a);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_attr_setaffinity_np(&a, sizeof(set), &set);
	pthread_t th;
	atomic_store(&hog_stop, 0);
	T_CHECK_EQ(pthread_create(&th, &a, hog, NULL), 0);
	pthread_attr_destroy(&a);
	T_CHECK(wait_w0(false)); /* contended: its pinning is lifted */
	atomic_store(&hog_stop, 1);
	pthread_join(th, NULL);
	atomic_store(&busy_stop, 1);
	for (int i = 0; i < 4; i++)
		if (b[i])
			T_CHECK_EQ(rook_join(b[i], NULL), 0);
	atomic_store(&play, PLAY_QUIET);
	T_CHECK(wait_w0(true)); /* quiet again: pinned again */
	return 0;
}

/* Light background load neither lifts the pinning nor keeps it from
 * coming back; a busy core lifts it and keeps it lifted. */
static int noise_main(void *arg)
{
	(void)arg;
	T_CHECK_EQ(w0_cpus(), 1);
	T_CHECK(w0_sample(1));
	atomic_store(&play, PLAY_NOISY);
	T_CHECK(w0_stays(true, 100)); /* about 2 s */
	atomic_store(&play, PLAY_BUSY);
	T_CHECK(wait_w0(false));
	T_CHECK(w0_stays(false, 100));
	atomic_store(&play, PLAY_NOISY);
	T_CHECK(wait_w0(true));
	return 0;
}

/* Run fn on 2 pinned workers with worker 0's samples played; skipped
 * where pinning cannot be watched. */
static void run_pinned(rook_fn fn)
{
	cpu_set_t set;
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	if (CPU_COUNT(&set) < 2 || under_qemu())
		cr_skip_test("needs 2 CPUs and a real /proc/thread-self/schedstat");
	rook__topo_wait_hook(played_wait);
	cr_assert_eq(run_with(2, 0, fn, NULL), 0);
	rook__topo_wait_hook(NULL);
}

Test(pin, contended_worker_lifts_its_pinning_then_pins_again, .timeout = 120)
{
	run_pinned(pin_main);
}

Test(pin, light_noise_keeps_the_pinning_a_busy_core_lifts_it, .timeout = 120)
{
	run_pinned(noise_main);
}
