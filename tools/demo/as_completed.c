/* SPDX-License-Identifier: MIT */
/*
 * as_completed: start several downloads of different durations and handle
 * each result as soon as it is ready, in completion order, not start order.
 *
 *   for coro in asyncio.as_completed(downloads):
 *       print(await coro)
 *
 * rook_wait_any returns the index of a finished task without releasing it;
 * join that one, drop it from the set, repeat.
 */
#include <stdint.h>
#include <stdio.h>

#include <rook.h>

#define DOWNLOADS 5

struct download {
	const char *d_name;
	unsigned d_ms;
	unsigned d_bytes;
};

static int download(void *arg)
{
	struct download *d = arg;
	int rc = rook_sleep((uint64_t)d->d_ms * ROOK_MSEC);
	if (rc < 0)
		return rc;
	d->d_bytes = d->d_ms * 1000;
	return 0;
}

static int main_task(void *arg)
{
	static struct download d[DOWNLOADS] = {
	    {.d_name = "a.iso", .d_ms = 300}, {.d_name = "b.tar", .d_ms = 100},
	    {.d_name = "c.zip", .d_ms = 500}, {.d_name = "d.pdf", .d_ms = 200},
	    {.d_name = "e.mp4", .d_ms = 400},
	};
	struct rook_task *t[DOWNLOADS];
	struct download *which[DOWNLOADS];
	size_t left = 0;
	uint64_t t0 = rook_now();
	int rc = 0;

	for (; left < DOWNLOADS; left++) {
		rc = rook_spawn(&t[left], download, &d[left]);
		if (rc < 0)
			return rc; /* rook_run cancels the ones started */
		which[left] = &d[left];
		printf("started %s (%u ms)\n", d[left].d_name, d[left].d_ms);
	}
	while (rc == 0 && left > 0) {
		int status, i = rook_wait_any(t, left);
		if (i < 0)
			return i;
		rc = rook_join(t[i], &status);
		if (rc == 0)
			rc = status;
		if (rc == 0)
			printf("%.2f s: %s done, %u bytes\n", (double)(rook_now() - t0) / 1e9,
			       which[i]->d_name, which[i]->d_bytes);
		/* Keep the set dense: the last one takes the finished one's place. */
		left--;
		t[i] = t[left];
		which[i] = which[left];
	}
	return rc;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
