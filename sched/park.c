/* SPDX-License-Identifier: MIT */
/*
 * Futex park point (see park.h). w_park_word is 1 when a wake is pending:
 * the waker stores 1 (release) then FUTEX_WAKEs; the sleeper waits while it
 * reads 0 and consumes the wake by storing 0.
 */
#include "sched/park.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "sched/worker.h"

int rook__park_init(struct rook__worker *w)
{
	atomic_store_explicit(&w->w_park_word, 0, memory_order_relaxed);
	return 0;
}

void rook__park_fini(struct rook__worker *w)
{
	(void)w;
}

void rook__park_wait(struct rook__worker *w, uint64_t timeout_ns)
{
	struct timespec ts, *tsp = NULL;
	if (timeout_ns != UINT64_MAX) {
		ts.tv_sec = (time_t)(timeout_ns / 1000000000u);
		ts.tv_nsec = (long)(timeout_ns % 1000000000u);
		tsp = &ts;
	}
	/* Pairs with the release store in rook__park_wake. */
	if (atomic_load_explicit(&w->w_park_word, memory_order_acquire) == 0)
		syscall(SYS_futex, (uint32_t *)&w->w_park_word, FUTEX_WAIT_PRIVATE, 0, tsp, NULL, 0);
	atomic_store_explicit(&w->w_park_word, 0, memory_order_relaxed);
}

void rook__park_wake(struct rook__worker *w)
{
	atomic_store_explicit(&w->w_park_word, 1, memory_order_release);
	syscall(SYS_futex, (uint32_t *)&w->w_park_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void rook__park_poll(struct rook__worker *w)
{
	(void)w;
}
