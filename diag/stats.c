/* SPDX-License-Identifier: MIT */
/*
 * Process-wide counters, with per-worker batching (see stats.h).
 */
#include "diag/stats.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "sched/testing.h"
#include "sched/worker.h"

static _Atomic int64_t totals[ROOK__STAT_COUNT];
static _Atomic int64_t peaks[ROOK__STAT_COUNT];

static void fold(enum rook__stat which, long d)
{
	int64_t now = atomic_fetch_add_explicit(&totals[which], d, memory_order_relaxed) + d;
	int64_t peak = atomic_load_explicit(&peaks[which], memory_order_relaxed);
	while (now > peak &&
	       !atomic_compare_exchange_weak_explicit(&peaks[which], &peak, now,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void rook__stat_fold(struct rook__worker *w, enum rook__stat which, long d)
{
	if (w) {
		d += w->w_stat[which];
		w->w_stat[which] = 0;
	}
	fold(which, d);
}

void rook__stat_flush(struct rook__worker *w)
{
	for (int i = 0; i < ROOK__STAT_COUNT; i++) {
		if (w->w_stat[i])
			fold((enum rook__stat)i, w->w_stat[i]);
		w->w_stat[i] = 0;
	}
}

static uint64_t clamp(int64_t v)
{
	return v < 0 ? 0 : (uint64_t)v;
}

extern _Atomic uint64_t rook__stat_guarded, rook__stat_unguarded, rook__stat_released;

void rook__stats_get(struct rook__stats *st)
{
	st->live_tasks =
	    clamp(atomic_load_explicit(&totals[ROOK__STAT_LIVE], memory_order_relaxed));
	st->peak_live_tasks =
	    clamp(atomic_load_explicit(&peaks[ROOK__STAT_LIVE], memory_order_relaxed));
	st->stacks_in_use =
	    clamp(atomic_load_explicit(&totals[ROOK__STAT_STACKS], memory_order_relaxed));
	st->peak_stacks =
	    clamp(atomic_load_explicit(&peaks[ROOK__STAT_STACKS], memory_order_relaxed));
	st->steals = clamp(atomic_load_explicit(&totals[ROOK__STAT_STEALS], memory_order_relaxed));
	st->parks = clamp(atomic_load_explicit(&totals[ROOK__STAT_PARKS], memory_order_relaxed));
	st->stacks_released = atomic_load_explicit(&rook__stat_released, memory_order_relaxed);
	st->guard_stacks = atomic_load_explicit(&rook__stat_guarded, memory_order_relaxed);
	st->canary_stacks = atomic_load_explicit(&rook__stat_unguarded, memory_order_relaxed);
}

void rook__stats_reset_peaks(void)
{
	for (int i = 0; i < ROOK__STAT_COUNT; i++)
		atomic_store_explicit(&peaks[i],
				      atomic_load_explicit(&totals[i], memory_order_relaxed),
				      memory_order_relaxed);
}
