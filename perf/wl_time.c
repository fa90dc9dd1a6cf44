/* SPDX-License-Identifier: MIT */
/*
 * Timer workloads: sleep_fanout (shared/bench/WORKLOADS.md: N tasks each
 * sleep 100 ms, gather all; overhead_ms = wall - 100 ms), timer_lateness
 * (10,000 tasks sleep a random 1-100 ms while two CPU-bound tasks yield
 * every 50 us; p50/p99/max lateness in us) and sleep_million (1,000,000
 * tasks asleep at once; peak RSS per sleeping task). Each reports its
 * extras through run->pr_extra.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "perf/perf.h"

/* ---- sleep_fanout ---------------------------------------------------- */

static int sleep_task(void *arg)
{
	return rook_sleep((uint64_t)(uintptr_t)arg);
}

/* Spawn n sleepers of ns each, gather them; count the ones that slept. */
static int fanout(size_t n, uint64_t ns, size_t *ok)
{
	struct rook_task **ts = malloc(n * sizeof(*ts));
	int *st = malloc(n * sizeof(*st));
	size_t spawned = 0;
	int rc = 0;

	if (!ts || !st) {
		free(ts);
		free(st);
		return -ENOMEM;
	}
	while (spawned < n && rc == 0) {
		rc = rook_spawn(&ts[spawned], sleep_task, (void *)(uintptr_t)ns);
		if (rc == 0)
			spawned++;
	}
	int grc = rook_gather(ts, spawned, st);
	*ok = 0;
	for (size_t i = 0; grc == 0 && i < spawned; i++)
		*ok += st[i] == 0;
	free(ts);
	free(st);
	return rc ? rc : grc;
}

int perf_sleep_fanout(struct perf_run *run)
{
	size_t n = run->pr_quick ? 10000 : 100000, ok = 0;
	uint64_t t0 = rook_now();
	int rc = fanout(n, 100 * ROOK_MSEC, &ok);
	double wall_ms = (double)(rook_now() - t0) / 1e6;

	if (rc == 0) {
		perf_check(run, "sleep_fanout tasks that slept", (int64_t)ok, (int64_t)n);
		perf_check(run, "sleep_fanout wall >= 100 ms", wall_ms >= 100.0, 1);
	}
	run->pr_ops = n;
	snprintf(run->pr_extra, sizeof(run->pr_extra), "overhead_ms=%.2f", wall_ms - 100.0);
	return rc;
}

/* ---- timer_lateness -------------------------------------------------- */

struct lateness {
	uint64_t *l_late_ns; /* one slot per sleeper */
	atomic_int l_stop;
	atomic_long l_spin_yields;
};

struct sleeper_arg {
	struct lateness *s_l;
	uint32_t s_idx, s_ms;
};

static int lateness_sleeper(void *arg)
{
	struct sleeper_arg *s = arg;
	uint64_t want = rook_now() + s->s_ms * ROOK_MSEC;
	int rc = rook_sleep(s->s_ms * ROOK_MSEC);
	uint64_t now = rook_now();

	s->s_l->l_late_ns[s->s_idx] = now > want ? now - want : 0;
	return rc;
}

/* CPU-bound: spin, yielding every 50 us, until told to stop. It gives up
 * after 10 s so that a runtime whose timers starve behind yielding tasks
 * shows it as ~10 s of lateness instead of hanging the suite. */
static int cpu_hog(void *arg)
{
	struct lateness *l = arg;
	uint64_t start = rook_now();
	while (!atomic_load_explicit(&l->l_stop, memory_order_relaxed) &&
	       rook_now() - start < 10 * ROOK_SEC) {
		uint64_t t0 = rook_now();
		while (rook_now() - t0 < 50 * ROOK_USEC)
			;
		if (rook_yield() != 0)
			break;
		atomic_fetch_add_explicit(&l->l_spin_yields, 1, memory_order_relaxed);
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int perf_timer_lateness(struct perf_run *run)
{
	size_t n = run->pr_quick ? 1000 : 10000;
	struct lateness l = {.l_late_ns = calloc(n, sizeof(uint64_t))};
	struct sleeper_arg *args = malloc(n * sizeof(*args));
	struct rook_task **ts = malloc(n * sizeof(*ts)), *hogs[2];
	int *st = malloc(n * sizeof(*st));
	uint64_t seed = 0x9e3779b97f4a7c15u;
	size_t ok = 0;
	int rc = 0;

	if (!l.l_late_ns || !args || !ts || !st) {
		rc = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < 2; i++)
		if ((rc = rook_spawn(&hogs[i], cpu_hog, &l)) < 0)
			goto out; /* (a hog already started stops with the runtime) */
	size_t spawned = 0;
	for (; spawned < n; spawned++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		args[spawned] =
		    (struct sleeper_arg){&l, (uint32_t)spawned, (uint32_t)(1 + seed % 100)};
		if ((rc = rook_spawn(&ts[spawned], lateness_sleeper, &args[spawned])) < 0)
			break;
	}
	int grc = rook_gather(ts, spawned, st);
	atomic_store(&l.l_stop, 1);
	int hrc = rook_gather(hogs, 2, NULL);
	if (rc == 0)
		rc = grc ? grc : hrc;
	if (rc == 0) {
		for (size_t i = 0; i < n; i++)
			ok += st[i] == 0;
		perf_check(run, "timer_lateness sleepers that slept", (int64_t)ok, (int64_t)n);
		qsort(l.l_late_ns, n, sizeof(uint64_t), cmp_u64);
		snprintf(run->pr_extra, sizeof(run->pr_extra),
			 "p50_us=%.1f p99_us=%.1f max_us=%.1f hog_yields=%ld",
			 (double)l.l_late_ns[n / 2] / 1e3, (double)l.l_late_ns[n * 99 / 100] / 1e3,
			 (double)l.l_late_ns[n - 1] / 1e3, atomic_load(&l.l_spin_yields));
	}
	run->pr_ops = n;
out:
	free(l.l_late_ns);
	free(args);
	free(ts);
	free(st);
	return rc;
}

/* ---- sleep_million --------------------------------------------------- */

int perf_sleep_million(struct perf_run *run)
{
	size_t n = run->pr_quick ? 100000 : 1000000, ok = 0;
	long rss0 = perf_rss_kib();
	int rc = fanout(n, ROOK_SEC, &ok);
	long peak = perf_peak_rss_kib();

	if (rc == 0)
		perf_check(run, "sleep_million tasks that slept", (int64_t)ok, (int64_t)n);
	run->pr_ops = n;
	snprintf(run->pr_extra, sizeof(run->pr_extra), "peak_rss_kib=%ld rss_per_task_b=%.0f", peak,
		 peak > rss0 ? (double)(peak - rss0) * 1024.0 / (double)n : 0.0);
	return rc;
}
