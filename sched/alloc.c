/* SPDX-License-Identifier: MIT */
/*
 * rook__alloc / rook__free: malloc with an injectable failure for tests.
 *
 * The hook (ROOK_TESTING builds only) is armed by a countdown or by
 * tracing; idle, an injection point costs one relaxed load. Armed, every
 * point takes a mutex: tests only, where the order of the points matters
 * more than their speed, and the countdown, the point count and the table
 * of sites seen must move together.
 */
#include "sched/alloc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sched/testing.h"

#define SITES_MAX 512

static _Atomic bool armed; /* countdown > 0 or tracing */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static long countdown;     /* under hook_lock; 0: no failure planned */
static bool tracing;       /* under hook_lock */
static long points;        /* points passed while armed */
static const char *failed; /* the site of the last injected failure */
static const char *sites[SITES_MAX];
static size_t nsites;

static void rearm(void) /* hook_lock held */
{
	/* Relaxed: a point that misses a fresh arming is one that ran before
	 * the test asked for it (the test orders its own calls). */
	atomic_store_explicit(&armed, countdown > 0 || tracing, memory_order_relaxed);
}

void rook__alloc_fail_nth(long n)
{
	pthread_mutex_lock(&hook_lock);
	countdown = n > 0 ? n : 0;
	rearm();
	pthread_mutex_unlock(&hook_lock);
}

void rook__alloc_trace(bool on)
{
	pthread_mutex_lock(&hook_lock);
	tracing = on;
	points = 0;
	nsites = 0;
	failed = NULL;
	rearm();
	pthread_mutex_unlock(&hook_lock);
}

long rook__alloc_points(void)
{
	pthread_mutex_lock(&hook_lock);
	long n = points;
	pthread_mutex_unlock(&hook_lock);
	return n;
}

const char *rook__alloc_failed_site(void)
{
	pthread_mutex_lock(&hook_lock);
	const char *s = failed;
	pthread_mutex_unlock(&hook_lock);
	return s;
}

size_t rook__alloc_sites(const char **out, size_t max)
{
	pthread_mutex_lock(&hook_lock);
	size_t n = nsites < max ? nsites : max;
	memcpy(out, sites, n * sizeof(*out));
	pthread_mutex_unlock(&hook_lock);
	return nsites;
}

#ifdef ROOK_TESTING
bool rook__fail_at(const char *site)
{
	if (!atomic_load_explicit(&armed, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&hook_lock);
	bool fail = false;
	if (tracing) {
		points++;
		size_t i = 0;
		while (i < nsites && sites[i] != site)
			i++;
		if (i == nsites && nsites < SITES_MAX)
			sites[nsites++] = site;
	}
	if (countdown > 0 && --countdown == 0) {
		fail = true;
		failed = site;
		rearm();
	}
	pthread_mutex_unlock(&hook_lock);
	return fail;
}
#endif

void *rook__alloc_at(size_t n, const char *site)
{
#ifdef ROOK_TESTING
	if (rook__fail_at(site))
		return NULL;
#endif
	return malloc(n);
}

void *rook__calloc_at(size_t n, size_t size, const char *site)
{
#ifdef ROOK_TESTING
	if (rook__fail_at(site))
		return NULL;
#endif
	return calloc(n, size);
}

void *rook__alloc_aligned_at(size_t align, size_t n, const char *site)
{
	void *p = NULL;
#ifdef ROOK_TESTING
	if (rook__fail_at(site))
		return NULL;
#endif
	if (posix_memalign(&p, align, n) != 0)
		return NULL;
	return p;
}

void rook__free(void *p)
{
	free(p);
}
