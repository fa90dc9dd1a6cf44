/* SPDX-License-Identifier: MIT */
/*
 * chores: household chores, where one chore is CPU-bound. The kettle ticks
 * every 50 ms and the laundry runs in timed steps; the dishes are pure CPU
 * work that never yields. On a single-threaded event loop the dishes
 * freeze everything else (the kettle's longest gap is the whole chore). On
 * rook they do not:
 *
 *   demo-chores worker     2 workers; the dishes are a task like any other
 *                          and the other worker runs the rest (default)
 *   demo-chores blocking   the dishes go to the blocking pool (rook_blocking,
 *                          asyncio's run_in_executor); 1 worker suffices
 *   demo-chores single     1 worker, dishes as a task: asyncio's behaviour
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define TICK_NS   (50 * ROOK_MSEC)
#define DISHES_NS (500 * ROOK_MSEC)

static uint64_t t0;
static uint64_t kettle_max_gap_ns;

static double since_start(void)
{
	return (double)(rook_now() - t0) / 1e9;
}

static int kettle(void *arg)
{
	uint64_t last = rook_now();
	for (int i = 1; i <= 20; i++) {
		int rc = rook_sleep(TICK_NS);
		if (rc < 0)
			return rc;
		uint64_t now = rook_now();
		if (now - last > kettle_max_gap_ns)
			kettle_max_gap_ns = now - last;
		last = now;
		printf("%5.2f kettle: tick %d\n", since_start(), i);
	}
	return 0;
}

static int laundry(void *arg)
{
	static const char *const steps[] = {"wash", "rinse", "spin"};
	for (int i = 0; i < 3; i++) {
		int rc = rook_sleep(300 * ROOK_MSEC);
		if (rc < 0)
			return rc;
		printf("%5.2f laundry: %s done\n", since_start(), steps[i]);
	}
	return 0;
}

/* CPU-bound: scrubs (mixes a hash) without ever yielding. */
static int scrub(void *arg)
{
	uint64_t until = rook_now() + DISHES_NS, h = 1;
	while (rook_now() < until)
		for (int i = 0; i < 10000; i++)
			h = (h ^ (uint64_t)i) * 1099511628211u;
	*(uint64_t *)arg = h;
	return 0;
}

static int dishes(void *arg)
{
	bool blocking = *(const bool *)arg;
	uint64_t h;
	int rc = rook_sleep(100 * ROOK_MSEC); /* start once the others run */
	if (rc < 0)
		return rc;
	printf("%5.2f dishes: start (%s)\n", since_start(), blocking ? "blocking pool" : "task");
	rc = blocking ? rook_blocking(scrub, &h) : scrub(&h);
	printf("%5.2f dishes: done\n", since_start());
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *t[3];
	int st[3], rc;

	t0 = rook_now();
	rc = rook_spawn(&t[0], kettle, NULL);
	if (rc == 0)
		rc = rook_spawn(&t[1], laundry, NULL);
	if (rc == 0)
		rc = rook_spawn(&t[2], dishes, arg);
	if (rc == 0)
		rc = rook_gather(t, 3, st);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = st[i];
	if (rc == 0)
		printf("all chores done in %.2f s; kettle's longest gap between ticks: %.0f ms\n",
		       since_start(), (double)kettle_max_gap_ns / 1e6);
	return rc;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "worker";
	struct rook_config cfg = {.workers = 2};
	bool blocking = strcmp(mode, "blocking") == 0;

	if (blocking || strcmp(mode, "single") == 0)
		cfg.workers = 1;
	else if (strcmp(mode, "worker") != 0) {
		fprintf(stderr, "usage: demo-chores [worker|blocking|single]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(&cfg, main_task, &blocking) == 0 ? 0 : 1;
}
