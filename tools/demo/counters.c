/* SPDX-License-Identifier: MIT */
/*
 * counters: asyncio's first example, ported. Three counters each print
 * "One", sleep one second and print "Two"; run concurrently, the whole
 * program takes about one second, not three.
 *
 *   async def count():
 *       print("One"); await asyncio.sleep(1); print("Two")
 *   await asyncio.gather(count(), count(), count())
 */
#include <stdint.h>
#include <stdio.h>

#include <rook.h>

static int count(void *arg)
{
	int id = (int)(intptr_t)arg;

	printf("One (counter %d)\n", id);
	int rc = rook_sleep(1 * ROOK_SEC); /* suspends this task only */
	printf("Two (counter %d)\n", id);
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *t[3];
	int status[3], rc = 0;
	uint64_t t0 = rook_now();

	for (int i = 0; i < 3 && rc == 0; i++)
		rc = rook_spawn(&t[i], count, (void *)(intptr_t)(i + 1));
	if (rc < 0)
		return rc; /* rook_run cancels and waits for any spawned */
	rc = rook_gather(t, 3, status);
	printf("counters executed in %.2f seconds.\n", (double)(rook_now() - t0) / 1e9);
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = status[i];
	return rc;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
