/* SPDX-License-Identifier: MIT */
/* The README's first example, as a consumer project builds it. */
#include <rook.h>

static int child(void *arg)
{
	return *(int *)arg * 2;
}

static int main_task(void *arg)
{
	int x = 21, status;
	struct rook_task *t;
	int r = rook_spawn(&t, child, &x);
	if (r < 0)
		return r;
	r = rook_join(t, &status);
	return r < 0 ? r : status;
}

int main(void)
{
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	return rook_run(&cfg, main_task, (void *)0) == 42 ? 0 : 1;
}
