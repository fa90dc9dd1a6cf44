/* SPDX-License-Identifier: MIT */
/*
 * Pinning under contention (sched/topo.c): a pinned worker whose core
 * another thread keeps busy lifts its pinning, and pins itself again once
 * the core is free for long enough. The hog is a plain thread pinned to
 * worker 0's core; the main task sleeps in short steps so that the workers
 * park (where they sample their run-queue wait).
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

static int pin_main(void *arg)
{
	(void)arg;
	int cpu = w0_cpu();
	T_CHECK(cpu >= 0);
	if (cpu < 0)
		return 0;
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
	T_CHECK(wait_w0(true)); /* quiet again: pinned again */
	return 0;
}

Test(pin, contended_worker_lifts_its_pinning_then_pins_again, .timeout = 120)
{
	cpu_set_t set;
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	if (CPU_COUNT(&set) < 2 || under_qemu())
		cr_skip_test("needs 2 CPUs and a real /proc/thread-self/schedstat");
	cr_assert_eq(run_with(2, 0, pin_main, NULL), 0);
}
