/* SPDX-License-Identifier: MIT */
/*
 * rook__alloc / rook__free: malloc with an injectable failure for tests.
 * The failure countdown is one relaxed atomic; when disabled (0) the check
 * costs a load.
 */
#include "sched/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "sched/testing.h"

static _Atomic long fail_countdown;

void rook__alloc_fail_nth(long n)
{
	atomic_store_explicit(&fail_countdown, n, memory_order_relaxed);
}

bool rook__alloc_fail_now(void)
{
	if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) <= 0)
		return 0;
	return atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed) == 1;
}

void *rook__alloc(size_t n)
{
	if (rook__alloc_fail_now())
		return NULL;
	return malloc(n);
}

void *rook__calloc(size_t n, size_t size)
{
	if (rook__alloc_fail_now())
		return NULL;
	return calloc(n, size);
}

void *rook__alloc_aligned(size_t align, size_t n)
{
	void *p = NULL;
	if (rook__alloc_fail_now() || posix_memalign(&p, align, n) != 0)
		return NULL;
	return p;
}

void rook__free(void *p)
{
	free(p);
}
