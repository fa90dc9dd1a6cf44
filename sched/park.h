/* SPDX-License-Identifier: MIT */
/*
 * The park point of a worker and the seam between the scheduler and the IO
 * layer. The scheduler hands io/ what it needs as parameters (worker count,
 * index, ring size, whether the worker has other work) and keeps an opaque
 * pointer per runtime and per worker; io/ never sees a worker or a runtime.
 * Which backend runs (io_uring or epoll, io/ring.c) is io/'s business.
 *
 * Contract:
 * - rook__io_rt_init(&g, nworkers, entries) runs in rook_rt_start before
 *   any worker starts: it chooses the backend (and may print one line on
 *   stderr saying why); a negative return makes rook_rt_start fail with it.
 *   rook__io_rt_fini(g) runs after every worker has left (g may be NULL).
 * - rook__park_init(g, index, &io) runs on the worker's own thread when it
 *   starts, before any other thread can wake it (rook_rt_start waits for
 *   every worker's init); it sets io only on success. A negative return
 *   makes rook_rt_start fail with that code. rook__park_fini(io) runs on
 *   the same thread when it leaves its loop.
 * - rook__park_wait(io, timeout_ns) is called by io's own thread only; it
 *   returns when rook__park_wake(io) was called since the last return (the
 *   wake is remembered: a wake that comes before the wait is not lost), when
 *   timeout_ns (relative; UINT64_MAX: none) has passed, or spuriously.
 * - rook__park_wake(io) may be called from any thread, any number of times,
 *   with io NULL (init failed or not run: nothing happens) or finished.
 * - rook__park_poll(io, idle): by io's own thread, once per scheduling round
 *   while io->pi_busy, every few rounds otherwise: submit what is queued and
 *   handle completions that are ready, without sleeping. idle: the worker
 *   has nothing else to run (a hint to flush now rather than batch).
 * - rook__park_rescue(g, index): by another worker of g while it is idle,
 *   between naps (at most a few ms apart). If worker index has IO pending
 *   and has not polled since the last call, it is stuck in a long task:
 *   the caller submits, performs and reaps for it (tasks it wakes go to
 *   the caller). Returns ROOK__RESCUE_WORKED if it handled anything (look
 *   for work now), ROOK__RESCUE_WATCH if that worker runs with IO pending
 *   (keep napping, do not sleep deeply: it may get stuck), else NONE. A
 *   backend that cannot be driven from another thread returns NONE.
 */
#ifndef ROOK_SCHED_PARK_H
#define ROOK_SCHED_PARK_H

#include <stdbool.h>
#include <stdint.h>

/* The first member of every backend's per-worker state: the one field the
 * scheduler reads. Written by io/ (its owner thread) only. */
struct rook__park_io {
	bool pi_busy; /* operations queued or in flight: poll every round */
};

struct rook__io_rt; /* the IO state of a runtime (io/ring.h) */

int rook__io_rt_init(struct rook__io_rt **g, unsigned nworkers, unsigned entries);
void rook__io_rt_fini(struct rook__io_rt *g);
/* "io_uring" or "epoll" (g NULL: NULL). */
const char *rook__io_rt_backend(const struct rook__io_rt *g);

int rook__park_init(struct rook__io_rt *g, unsigned index, void **io);
void rook__park_fini(void *io);
void rook__park_wait(void *io, uint64_t timeout_ns);
void rook__park_wake(void *io);
void rook__park_poll(void *io, bool idle);

enum { ROOK__RESCUE_NONE, ROOK__RESCUE_WATCH, ROOK__RESCUE_WORKED };
int rook__park_rescue(struct rook__io_rt *g, unsigned index);

#endif
