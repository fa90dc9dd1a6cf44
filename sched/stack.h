/* SPDX-License-Identifier: MIT */
/*
 * Task stacks, carved from large reserved regions (mmap NORESERVE: memory
 * is committed only where a task touches it). While a process-wide budget
 * of kernel mappings lasts (a quarter of vm.max_map_count), every stack gets
 * a 64 KiB PROT_NONE guard region below it (one mapping, however large),
 * and an overflow into it is reported as a stack overflow by a SIGSEGV
 * handler. Beyond the budget a stack has no guard; the same 64 KiB below it
 * stay a margin, and the stack pointer is checked against the stack's limit
 * on every switch and on a yield that finds nothing else to run (it
 * catches overflows still in progress when the task suspends, not all). Stacks are cached per
 * worker and pooled per runtime; regions are unmapped when the runtime stops.
 *
 * A slot is set up (guard page, descriptor) only when a worker first hands
 * it to a task, by that worker and outside the pool lock: the pool lock
 * only moves a cursor, so workers commit fresh stack memory in parallel
 * and nobody stalls behind a whole region being set up.
 */
#ifndef ROOK_SCHED_STACK_H
#define ROOK_SCHED_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdatomic.h>

#include "diag/tdiag.h"
#include "sched/alloc.h"
#include "sched/lock.h"

/* Lives at the top of its own stack memory. */
struct rook__stack {
	char *s_lo;  /* lowest usable byte */
	char *s_top; /* one past the highest usable byte (this struct) */
	bool s_guarded;
	unsigned s_san_tasks; /* tasks that ended on s_san_fiber (in the padding) */
	struct rook__stack *s_next;
	void *s_san_fiber;         /* TSan fiber, reused by the tasks on this stack */
	uint64_t s_task_id;        /* the running task's id, for overflow reports */
	struct rook__tdiag s_diag; /* name, current wait (diag/tdiag.h) */
};

struct rook__stack_region {
	struct rook__stack_region *r_next;
	void *r_base;
	size_t r_len;
};

struct rook__stack_pool {
	struct rook__spin p_lock;
	struct rook__stack *p_free;   /* used stacks given back, memory committed */
	struct rook__stack *p_clean;  /* used stacks whose memory was released */
	_Atomic unsigned p_ndirty;    /* stacks on p_free (read without the lock) */
	unsigned p_low;               /* fewest on p_free since the last trim */
	_Atomic uint64_t p_trim_next; /* the pool's next trim (rook__now ns) */
	struct rook__stack_region *p_regions;
	char *p_fresh;                    /* first never-used slot of the newest region */
	unsigned p_fresh_left;            /* never-used slots left there */
	unsigned p_next_count;            /* stacks in the next region (grows) */
	size_t p_slot;                    /* bytes per stack slot incl. guard page */
	size_t p_usable;                  /* usable bytes */
	_Atomic unsigned long p_nguarded; /* guard pages taken from the budget */
};

struct rook__stack_cache {
	struct rook__stack *c_head; /* used stacks, ready to reuse */
	unsigned c_len;
	unsigned c_low;       /* shortest c_len since the last trim */
	uint64_t c_trim_next; /* this cache's next trim (rook__now ns) */
	char *c_fresh;        /* never-used slots reserved by this worker */
	unsigned c_fresh_left;
};

int rook__stack_pool_init(struct rook__stack_pool *p, size_t stack_size);
void rook__stack_pool_fini(struct rook__stack_pool *p);

#define ROOK__STACK_CACHE_MAX 64u /* stacks a worker keeps before giving half back */

extern _Atomic unsigned rook__stack_fail_n; /* tests: rook__stack_fail_next */
struct rook__stack *rook__stack_get_slow(struct rook__stack_pool *p, struct rook__stack_cache *c);
void rook__stack_put_spill(struct rook__stack_pool *p, struct rook__stack_cache *c);

/* Take the cache's newest stack (c->c_head must be set). */
static inline struct rook__stack *rook__stack_cache_pop(struct rook__stack_cache *c)
{
	struct rook__stack *s = c->c_head;
	c->c_head = s->s_next;
	if (--c->c_len < c->c_low)
		c->c_low = c->c_len;
	return s;
}

/* NULL if memory or mappings ran out (or a test injected a failure). Inline
 * for the cached case: every first run of a task takes one. Builds with the
 * injection hook take the slow path, the one injection point. */
static inline struct rook__stack *rook__stack_get(struct rook__stack_pool *p,
						  struct rook__stack_cache *c)
{
	if (ROOK__FAULT_HOOKS || atomic_load_explicit(&rook__stack_fail_n, memory_order_relaxed) ||
	    !c->c_head)
		return rook__stack_get_slow(p, c);
	return rook__stack_cache_pop(c);
}

static inline void rook__stack_put(struct rook__stack_pool *p, struct rook__stack_cache *c,
				   struct rook__stack *s)
{
	s->s_next = c->c_head;
	c->c_head = s;
	if (++c->c_len > ROOK__STACK_CACHE_MAX)
		rook__stack_put_spill(p, c);
}
void rook__stack_cache_drain(struct rook__stack_pool *p, struct rook__stack_cache *c);

/* Memory given back after a burst (MADV_DONTNEED below each stack's top
 * page), decided by low-water marks: a stack that sat unused in a cache or
 * in the pool for a whole trim period is released, so a steady load keeps
 * its stacks warm and a burst's extra stacks go back within two periods.
 * trim_due: when trim could next release something (UINT64_MAX: nothing
 * to release), for a parking worker's timeout. trim: called by a parking
 * worker; returns early once stop(arg) says work arrived. */
uint64_t rook__stack_trim_due(struct rook__stack_pool *p, const struct rook__stack_cache *c);
void rook__stack_trim(struct rook__stack_pool *p, struct rook__stack_cache *c, uint64_t now,
		      bool (*stop)(void *), void *arg);

/* True if sp is below the usable range (an overflow in progress). */
static inline bool rook__stack_sp_bad(const struct rook__stack *s, const void *sp)
{
	return (const char *)sp < s->s_lo;
}

/* Overflow reporting: per-thread alternate signal stack + SIGSEGV handler. */
int rook__stack_sigaltstack_setup(void **mem);
void rook__stack_sigaltstack_teardown(void *mem);
void rook__stack_install_handler(void);
/* Report an overflow of the running task and abort (async-signal-safe). */
void rook__stack_overflow_abort(uint64_t task_id, size_t stack_size);

#endif
