/* SPDX-License-Identifier: MIT */
/*
 * prodcons: producers and consumers around one queue, ported from the
 * asyncio.Queue example. Two producers put 10 jobs each (a job is "sleep
 * this long"); three consumers get jobs, do them and mark each with
 * task_done. main waits for the producers, then joins the queue (every job
 * got and done), then cancels the consumers, which sit in get forever.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define PRODUCERS 2
#define CONSUMERS 3
#define JOBS_EACH 10

struct job {
	int j_id;
	uint64_t j_ns;
};

static struct rook_queue *q;
static _Atomic uint64_t slept_ns;

static int producer(void *arg)
{
	int p = (int)(intptr_t)arg;
	for (int i = 0; i < JOBS_EACH; i++) {
		struct job j = {p * 100 + i, (uint64_t)(10 + (i * 7 + p * 3) % 40) * ROOK_MSEC};
		int rc = rook_queue_put(q, &j);
		if (rc < 0)
			return rc;
		printf("producer %d: put job %d (%.3f s)\n", p, j.j_id, (double)j.j_ns / 1e9);
	}
	return 0;
}

static int consumer(void *arg)
{
	int c = (int)(intptr_t)arg;
	for (;;) {
		struct job j;
		int rc = rook_queue_get(q, &j);
		if (rc < 0) {
			printf("consumer %d: %s\n", c,
			       rc == -ECANCELED ? "cancelled" : strerror(-rc));
			return rc;
		}
		rc = rook_sleep(j.j_ns); /* the work */
		atomic_fetch_add_explicit(&slept_ns, j.j_ns, memory_order_relaxed);
		rook_queue_task_done(q);
		if (rc < 0)
			return rc;
		printf("consumer %d: did job %d\n", c, j.j_id);
	}
}

static int main_task(void *arg)
{
	struct rook_task *prod[PRODUCERS], *cons[CONSUMERS];
	int pst[PRODUCERS], cst[CONSUMERS], rc, np = 0, nc = 0;
	uint64_t t0 = rook_now();

	rc = rook_queue_create(&q, sizeof(struct job), 4); /* bounded: producers wait */
	if (rc < 0)
		return rc;
	for (; nc < CONSUMERS && rc == 0; nc++)
		rc = rook_spawn(&cons[nc], consumer, (void *)(intptr_t)(nc + 1));
	for (; np < PRODUCERS && rc == 0; np++)
		rc = rook_spawn(&prod[np], producer, (void *)(intptr_t)(np + 1));
	if (rc == 0)
		rc = rook_gather(prod, PRODUCERS, pst);
	if (rc == 0)
		rc = rook_queue_join(q); /* every job got and task_done */
	if (rc < 0)
		return rc; /* rook_run cancels the tasks; q is left to the exit */
	printf("all %d jobs done: %.2f s of work in %.2f s\n", PRODUCERS * JOBS_EACH,
	       (double)atomic_load(&slept_ns) / 1e9, (double)(rook_now() - t0) / 1e9);
	for (int i = 0; i < CONSUMERS; i++)
		rook_cancel(cons[i]);
	rc = rook_gather(cons, CONSUMERS, cst);
	if (rc < 0)
		return rc;
	for (int i = 0; i < CONSUMERS; i++)
		if (cst[i] != -ECANCELED)
			return -EPROTO;
	for (int i = 0; i < PRODUCERS; i++)
		if (pst[i] != 0)
			return pst[i];
	printf("consumers cancelled\n");
	rook_queue_destroy(q); /* nobody uses it any more */
	return 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
