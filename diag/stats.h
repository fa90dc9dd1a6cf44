/* SPDX-License-Identifier: MIT */
/*
 * Counters behind rook__stats_get. Hot counters are batched per worker and
 * folded into the process-wide totals every STAT_BATCH units, so peaks are
 * exact to within STAT_BATCH per worker.
 */
#ifndef ROOK_SCHED_STATS_H
#define ROOK_SCHED_STATS_H

#include <stddef.h>

#include "sched/worker.h"

#define ROOK__STAT_BATCH 64

enum rook__stat {
	ROOK__STAT_LIVE = 0,
	ROOK__STAT_STACKS,
	ROOK__STAT_STEALS,
	ROOK__STAT_PARKS,
	ROOK__STAT_COUNT
};

/* Fold d (and w's batch of which, if w) into the totals. */
void rook__stat_fold(struct rook__worker *w, enum rook__stat which, long d);

/* w: the calling worker, or NULL on a plain thread. Inline: tasks count
 * themselves at spawn, first run and end (four calls per task). */
static inline void rook__stat_add(struct rook__worker *w, enum rook__stat which, long d)
{
	if (w) {
		long v = w->w_stat[which] + d;
		if (v < ROOK__STAT_BATCH && v > -ROOK__STAT_BATCH) {
			w->w_stat[which] = v;
			return;
		}
	}
	rook__stat_fold(w, which, d);
}

void rook__stat_flush(struct rook__worker *w);

#endif
