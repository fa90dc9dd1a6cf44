/* SPDX-License-Identifier: MIT */
/*
 * The CPUs the process may use, as the thread that started the first
 * runtime saw them. A thread or child inherits its creator's affinity, and
 * a pinned worker's is one core: helper threads (blocking pool, reaper,
 * watchdog) and spawned processes get this mask instead, so that a
 * rook_blocking job or a child does not share one core with a worker while
 * the others sit idle.
 */
#ifndef ROOK_SCHED_CPUS_H
#define ROOK_SCHED_CPUS_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>

/* Record the calling thread's mask, once (rook__topo_plan). */
void rook__cpus_capture(void);
/* Set the recorded mask on a thread's attributes (no-op before a capture). */
void rook__cpus_attr(pthread_attr_t *a);
/* Give the calling thread the recorded mask for a while (around
 * posix_spawn); true if it changed, and then *saved restores it. */
bool rook__cpus_unpin(cpu_set_t *saved);
void rook__cpus_restore(const cpu_set_t *saved);

#endif
