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

/* Waiting for another thread to finish a short step: pause, and after a
 * while sched_yield, so a preempted thread can run (there may be more
 * threads than cores). *n counts the calls of one wait; start it at 0. */
static inline void rook__spin_wait(unsigned *n)
{
	if (++*n < 256)
		rook__cpu_relax();
	else
		sched_yield();
}

/* After losing a race for a contended line: back off exponentially (1 to 64
 * pauses), so the winner's core keeps the line for a few operations instead
 * of it bouncing on every one. *n counts the lost races; start it at 0. */
static inline void rook__backoff(unsigned *n)
{
	unsigned k = *n < 6 ? *n : 6;
	for (unsigned i = 0; i < (1u << k); i++)
		rook__cpu_relax();
	++*n;
}

static inline bool rook__spin_trylock(struct rook__spin *l)
{
	/* Pairs with the release store in rook__spin_unlock. */
	return !atomic_exchange_explicit(&l->s_held, 1, memory_order_acquire);
}

static inline void rook__spin_lock(struct rook__spin *l)
{
	unsigned spins = 0, lost = 0;
	while (!rook__spin_trylock(l)) {
		rook__backoff(&lost);
		while (atomic_load_explicit(&l->s_held, memory_order_relaxed))
			rook__spin_wait(&spins);
	}
}

static inline void rook__spin_unlock(struct rook__spin *l)
{
	atomic_store_explicit(&l->s_held, 0, memory_order_release);
}

#endif
