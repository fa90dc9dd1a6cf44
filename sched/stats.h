/* SPDX-License-Identifier: MIT */
/*
 * Counters behind rook__stats_get. Hot counters are batched per worker and
 * folded into the process-wide totals every STAT_BATCH units, so peaks are
 * exact to within STAT_BATCH per worker.
 */
#ifndef ROOK_SCHED_STATS_H
#define ROOK_SCHED_STATS_H

struct rook__worker;

enum rook__stat {
	ROOK__STAT_LIVE = 0,
	ROOK__STAT_STACKS,
	ROOK__STAT_STEALS,
	ROOK__STAT_PARKS,
	ROOK__STAT_COUNT
};

/* w: the calling worker, or NULL on a plain thread. */
void rook__stat_add(struct rook__worker *w, enum rook__stat which, long d);
void rook__stat_flush(struct rook__worker *w);

#endif
