/* SPDX-License-Identifier: MIT */
/*
 * Synchronization objects (rook_mutex, rook_sem, rook_event, rook_cond; the
 * contract is in include/rook.h). Internal: hooks tests use to wait until a
 * number of callers are parked on an object.
 */
#ifndef ROOK_SCHED_SYNC_H
#define ROOK_SCHED_SYNC_H

#include <stddef.h>

#include <rook.h>

/* Number of calls now linked as waiters (tests only). */
size_t rook__mutex_waiters(struct rook_mutex *m);
size_t rook__sem_waiters(struct rook_sem *s);
size_t rook__event_waiters(struct rook_event *e);
size_t rook__cond_waiters(struct rook_cond *c);

/* The sem's available permits (tests only). */
unsigned rook__sem_value(struct rook_sem *s);

#endif
