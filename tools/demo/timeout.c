/* SPDX-License-Identifier: MIT */
/*
 * timeout: give a slow operation a time limit, two ways.
 *
 * 1. asyncio.wait_for(slow(), 0.2): rook_wait_for runs the operation as a
 *    task and cancels it (and waits for its cleanup) when time is up.
 * 2. async with asyncio.timeout(0.35): a deadline scope around several
 *    steps of the calling task itself; the step running when the deadline
 *    passes returns -ETIMEDOUT.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

static uint64_t t0;

static double since_start(void)
{
	return (double)(rook_now() - t0) / 1e9;
}

/* A query that takes `arg` milliseconds, then answers 42. */
static int query(void *arg)
{
	unsigned ms = *(const unsigned *)arg;
	int rc = rook_sleep((uint64_t)ms * ROOK_MSEC);
	if (rc < 0) {
		printf("%.2f query(%u ms): interrupted (%s), cleaning up\n", since_start(), ms,
		       strerror(-rc));
		return rc;
	}
	return 42;
}

static int with_wait_for(unsigned ms)
{
	int status, rc = rook_wait_for(query, &ms, 200 * ROOK_MSEC, &status);
	if (rc == -ETIMEDOUT)
		printf("%.2f wait_for(query(%u ms), 0.2 s): timed out\n", since_start(), ms);
	else if (rc == 0)
		printf("%.2f wait_for(query(%u ms), 0.2 s): answered %d\n", since_start(), ms,
		       status);
	return rc;
}

static int with_deadline(void)
{
	int rc = rook_deadline_push(rook_now() + 350 * ROOK_MSEC);
	if (rc < 0)
		return rc;
	for (int step = 1; step <= 10 && rc == 0; step++) {
		rc = rook_sleep(100 * ROOK_MSEC);
		if (rc == 0)
			printf("%.2f step %d done\n", since_start(), step);
		else
			printf("%.2f step %d: %s\n", since_start(), step, strerror(-rc));
	}
	bool expired = rook_deadline_pop();
	printf("%.2f deadline scope %s\n", since_start(), expired ? "expired" : "did not expire");
	return rc;
}

static int main_task(void *arg)
{
	t0 = rook_now();
	if (with_wait_for(50) != 0) /* fast enough: the answer */
		return -EPROTO;
	if (with_wait_for(10000) != -ETIMEDOUT) /* slow: cancelled at 0.2 s */
		return -EPROTO;
	if (with_deadline() != -ETIMEDOUT)
		return -EPROTO;
	printf("%.2f done\n", since_start());
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
