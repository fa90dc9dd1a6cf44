/* SPDX-License-Identifier: MIT */
/*
 * gather_errors: several tasks, some of which fail, two ways.
 *
 * 1. asyncio.gather(..., return_exceptions=True): rook_gather waits for
 *    every task and hands back each one's status, errors included.
 * 2. asyncio.TaskGroup: the first failure cancels the siblings still
 *    running; rook_group_wait reports that first failure, and
 *    rook_group_next lists every child's own outcome (the ExceptionGroup).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define JOBS 5

struct job {
	const char *j_name;
	unsigned j_ms; /* runs this long ... */
	int j_result;  /* ... then returns this */
};

static const struct job jobs[JOBS] = {
    {"fetch-users", 50, 0},  {"fetch-orders", 100, -EIO}, {"fetch-stock", 150, -ENOENT},
    {"fetch-prices", 60, 0}, {"rebuild-index", 500, 0},
};

static int run_job(void *arg)
{
	const struct job *j = arg;
	int rc = rook_sleep((uint64_t)j->j_ms * ROOK_MSEC);
	return rc < 0 ? rc : j->j_result;
}

static const char *outcome(int status)
{
	return status == 0 ? "ok" : strerror(-status);
}

static int gather_all(void)
{
	struct rook_task *t[JOBS];
	int st[JOBS], rc;

	printf("gather (return_exceptions=True):\n");
	for (int i = 0; i < JOBS; i++) {
		rc = rook_spawn(&t[i], run_job, (void *)&jobs[i]);
		if (rc < 0)
			return rc; /* rook_run cancels the ones started */
	}
	rc = rook_gather(t, JOBS, st);
	for (int i = 0; i < JOBS && rc == 0; i++)
		printf("  %-14s %s\n", jobs[i].j_name, outcome(st[i]));
	return rc;
}

static int group_all(void)
{
	struct rook_group *g;
	int rc = rook_group_create(&g), first;

	if (rc < 0)
		return rc;
	printf("task group:\n");
	for (int i = 0; i < JOBS && rc == 0; i++)
		rc = rook_group_spawn(g, run_job, (void *)&jobs[i]);
	first = rook_group_wait(g);
	printf("  group failed with: %s\n", outcome(first));
	for (;;) { /* every child's outcome, in completion order */
		void *arg;
		int st;
		if (rook_group_next(g, &arg, &st) < 0)
			break;
		printf("  %-14s %s\n", ((const struct job *)arg)->j_name,
		       st == -ECANCELED ? "cancelled" : outcome(st));
	}
	rook_group_destroy(g);
	return rc;
}

static int main_task(void *arg)
{
	uint64_t t0 = rook_now();
	int rc = gather_all();
	if (rc == 0)
		rc = group_all();
	printf("done in %.2f s\n", (double)(rook_now() - t0) / 1e9);
	return rc;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
