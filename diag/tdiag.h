/* SPDX-License-Identifier: MIT */
/*
 * Per-task and per-worker diagnostic state kept where the hot paths already
 * write: a task's name and the start of its current wait live in its stack's
 * descriptor (struct rook__stack, already written at first run), so struct
 * rook_task does not grow; a worker's heartbeat and counters live at the end
 * of its owner-only fields. Writers are the owner only (the task, the
 * worker); readers (rook_dump, rook_stats, the stall watchdog) read racily
 * and validate what they read.
 */
#ifndef ROOK_DIAG_TDIAG_H
#define ROOK_DIAG_TDIAG_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define ROOK__NAME_MAX 32 /* bytes with the NUL */

struct rook__tdiag {
	char d_name[ROOK__NAME_MAX]; /* "" until rook_task_set_name */
	uint64_t d_since_ns;         /* CLOCK_MONOTONIC_COARSE at the last park */
	int d_fd;                    /* fd of the IO call parked in, or -1 */
	const char *d_call;          /* public call parked in (static string) */
	uintptr_t d_ra;              /* that call's return address in the user */
};

/* The public blocking call in progress on this thread, recorded at its
 * entry (two stores to initial-exec TLS) and moved into the task's
 * descriptor when it parks: an optimised build inlines and tail-calls the
 * call's own frames away, so the frame-pointer walk alone cannot name it
 * nor find the user's frame. Cleared at each park, so a park reached
 * without a record shows no stale one. */
struct rook__dcall {
	const char *c_name;
	uintptr_t c_ra;
};
extern _Thread_local struct rook__dcall rook__dcall __attribute__((tls_model("initial-exec")));

/* First statement of a public call that may park; must be expanded in that
 * function itself (its return address is the user's call site). */
#define ROOK__DIAG_CALL(name)                                                                      \
	do {                                                                                       \
		rook__dcall.c_name = (name);                                                       \
		rook__dcall.c_ra = (uintptr_t)__builtin_return_address(0);                         \
	} while (0)

/* Per-worker counters: single writer (the worker), relaxed load + store so
 * an increment is a plain add; readers sum them racily. */
struct rook__wdiag {
	_Atomic uint64_t d_hb;          /* scheduling points reached (stall watch) */
	_Atomic uint64_t d_steal_tries; /* victims probed with work queued */
	_Atomic uint64_t d_stolen;      /* tasks taken from other workers */
	_Atomic uint64_t d_parks;       /* times this worker went to sleep */
	_Atomic uint64_t d_timers_armed;
	_Atomic uint64_t d_timers_fired; /* by this worker, on any worker's heap */
	_Atomic uint64_t d_io_submitted;
	_Atomic uint64_t d_io_completed;
	_Atomic uint64_t d_io_cancelled;
};

static inline void rook__diag_inc(_Atomic uint64_t *c, uint64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
			      memory_order_relaxed);
}

/* Count one IO operation on the calling worker (diag/metrics.c): io/ does
 * not see workers. */
enum rook__diag_io { ROOK__DIAG_IO_SUBMITTED, ROOK__DIAG_IO_COMPLETED, ROOK__DIAG_IO_CANCELLED };
void rook__diag_io(enum rook__diag_io which);

/* A task's stack was handed to it (first run). */
static inline void rook__tdiag_reset(struct rook__tdiag *d)
{
	d->d_name[0] = '\0';
	d->d_fd = -1;
	d->d_call = NULL;
	d->d_ra = 0;
}

/* A task is about to suspend in a blocking call. */
static inline void rook__tdiag_park(struct rook__tdiag *d);

/* The coarse clock (a few ns through the vDSO, 1-4 ms resolution): enough
 * to say how long a task has waited. */
static inline uint64_t rook__diag_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void rook__tdiag_park(struct rook__tdiag *d)
{
	d->d_since_ns = rook__diag_coarse_ns();
	d->d_call = rook__dcall.c_name;
	d->d_ra = rook__dcall.c_ra;
	rook__dcall.c_name = NULL;
	rook__dcall.c_ra = 0;
}

#endif
