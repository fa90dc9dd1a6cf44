/* SPDX-License-Identifier: MIT */
/*
 * The park point of a worker: where an idle worker sleeps and how others
 * wake it. This is the seam between the scheduler and the IO layer, which
 * implements it (io/ring.c: io_uring_enter waiting for a completion,
 * bounded by the next timer; woken through an eventfd the ring reads).
 *
 * Contract:
 * - rook__park_wait(w, timeout_ns) is called by w's own thread only; it
 *   returns when rook__park_wake(w) was called since the last return (the
 *   wake is remembered: a wake that comes before the wait is not lost), when
 *   timeout_ns (relative; UINT64_MAX: none) has passed, or spuriously.
 * - rook__park_wake(w) may be called from any thread, any number of times,
 *   also on a worker whose init failed (it must then do nothing harmful).
 * - rook__park_init runs on w's own thread when it starts, before any other
 *   thread can wake it (rook_rt_start waits for every worker's init). A
 *   negative return makes rook_rt_start fail with that code.
 * - rook__park_fini runs on w's own thread when it leaves its loop.
 */
#ifndef ROOK_SCHED_PARK_H
#define ROOK_SCHED_PARK_H

#include <stdint.h>

struct rook__worker;

int rook__park_init(struct rook__worker *w);
void rook__park_fini(struct rook__worker *w);
void rook__park_wait(struct rook__worker *w, uint64_t timeout_ns);
void rook__park_wake(struct rook__worker *w);

/* Called by w's own thread once per scheduling round when w->w_io is set:
 * submit what is queued and handle completions that are ready, without
 * sleeping. */
void rook__park_poll(struct rook__worker *w);

#endif
