/* SPDX-License-Identifier: MIT */
/*
 * A test-and-test-and-set spinlock for short critical sections on waiter
 * lists. Bounded spinning with a pause, then sched_yield so a preempted
 * holder can run (there may be more threads than cores).
 */
#ifndef ROOK_SCHED_LOCK_H
#define ROOK_SCHED_LOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

struct rook__spin {
	_Atomic int s_held;
};

static inline void rook__cpu_relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline bool rook__spin_trylock(struct rook__spin *l)
{
	/* Pairs with the release store in rook__spin_unlock. */
	return !atomic_exchange_explicit(&l->s_held, 1, memory_order_acquire);
}

static inline void rook__spin_lock(struct rook__spin *l)
{
	unsigned spins = 0, backoff = 1;
	while (!rook__spin_trylock(l)) {
		/* Exponential backoff: under contention the holder's core keeps
		 * the line for a few acquisitions instead of it bouncing on
		 * every one. */
		for (unsigned i = 0; i < backoff; i++)
			rook__cpu_relax();
		if (backoff < 64)
			backoff *= 2;
		while (atomic_load_explicit(&l->s_held, memory_order_relaxed)) {
			if (++spins < 256)
				rook__cpu_relax();
			else
				sched_yield();
		}
	}
}

static inline void rook__spin_unlock(struct rook__spin *l)
{
	atomic_store_explicit(&l->s_held, 0, memory_order_release);
}

#endif
