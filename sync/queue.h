/* SPDX-License-Identifier: MIT */
/*
 * Queues across threads (rook_queue_*; the contract is in include/rook.h).
 * Internal: the queue object and the hooks tests use to wait for waiters.
 */
#ifndef ROOK_SCHED_QUEUE_H
#define ROOK_SCHED_QUEUE_H

#include <stddef.h>

#include <rook.h>

/* Number of calls now waiting in get, put and join on q (tests only). */
struct rook__queue_waiters {
	size_t getters, putters, joiners;
};
void rook__queue_waiters(struct rook_queue *q, struct rook__queue_waiters *out);

#endif
