/* SPDX-License-Identifier: MIT */
/*
 * Stack regions, guard budget, per-worker caches and the overflow handler.
 * Invariants: a set-up stack is in exactly one of {a worker cache, the
 * pool's free list, a task}; a never-used slot is in exactly one of {the
 * pool's fresh range, a worker cache's fresh range}; regions are only
 * unmapped by rook__stack_pool_fini once no task of the runtime is alive.
 */
#include "sched/stack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched/alloc.h"
#include "sched/san.h"
#include "diag/stats.h"
#include "sched/task.h"
#include "sched/testing.h"
#include "sched/worker.h"

#define CACHE_MAX    ROOK__STACK_CACHE_MAX
#define CACHE_BATCH  16u
#define CACHE_HOT    8u /* cached stacks a worker keeps warm however idle */
#define TRIM_PERIOD  ((uint64_t)100 * 1000 * 1000)
#define REGION_FIRST 16u
#define REGION_MAX   256u

/* Linux 6.13 added guard markers: a guard page installed in the page
 * table, without splitting the mapping (so without taking the mapping
 * lock for writing, which stalls the page faults of every other worker).
 * Older kernels answer -EINVAL and get mprotect. */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* The guard region below each stack. One page is jumped by any frame
 * larger than a page (a 24 KiB local array lands in the neighbouring
 * slot's top page); 64 KiB of PROT_NONE or guard markers costs the same
 * one mapping split (or none) and no memory, only address space (stack
 * regions are NORESERVE). Frames larger than this still jump it unless
 * the code is built with -fstack-clash-protection (README). Unguarded
 * stacks keep the same bytes below them as a margin of their own slot, so
 * an overflow that the switch-time check catches has not reached the
 * neighbour yet. */
#define GUARD_BYTES ((size_t)64 * 1024)

enum { GUARD_UNPROBED, GUARD_MARKER, GUARD_MPROTECT, GUARD_NONE };

static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static int guard_kind = GUARD_UNPROBED; /* written once, under guard_once */
static _Atomic int guard_forced;        /* tests: GUARD_* or 0 */
static _Atomic long guard_budget = -1;  /* guard pages left; -1 unread */
_Atomic unsigned rook__stack_fail_n;
_Atomic uint64_t rook__stat_guarded, rook__stat_unguarded, rook__stat_released;

void rook__stack_fail_next(unsigned n)
{
	atomic_store_explicit(&rook__stack_fail_n, n, memory_order_relaxed);
}

static size_t page_size(void)
{
	static size_t ps;
	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* A quarter of vm.max_map_count: each guard page made by mprotect splits a
 * mapping in two, and the application needs the rest. Guard markers split
 * nothing, but keep the same budget: the promise (which stacks are guarded)
 * and the one-time cost per stack stay the same on every kernel. */
static long budget_init(void)
{
	long max = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 65530;
		fclose(f);
	}
	return max / 4;
}

static long budget_read(void)
{
	long b = atomic_load_explicit(&guard_budget, memory_order_relaxed);
	if (b < 0) {
		long init = budget_init();
		/* First reader publishes the budget; losers reread it. */
		atomic_compare_exchange_strong_explicit(&guard_budget, &b, init,
							memory_order_relaxed, memory_order_relaxed);
		b = atomic_load_explicit(&guard_budget, memory_order_relaxed);
	}
	return b;
}

long rook__stack_guard_budget(void)
{
	return budget_read();
}

/* Give n guard pages back (their mappings are gone, or never were made). */
static void give_guards(long n)
{
	if (n > 0)
		atomic_fetch_add_explicit(&guard_budget, n, memory_order_relaxed);
}

static bool take_guard(void)
{
	long b = budget_read();
	while (b > 0) {
		if (atomic_compare_exchange_weak_explicit(
			&guard_budget, &b, b - 1, memory_order_relaxed, memory_order_relaxed))
			return true;
	}
	return false;
}

void rook__stack_guard_force_mprotect(bool on)
{
	atomic_store_explicit(&guard_forced, on ? GUARD_MPROTECT : 0, memory_order_relaxed);
}

void rook__stack_guard_force_off(bool on)
{
	atomic_store_explicit(&guard_forced, on ? GUARD_NONE : 0, memory_order_relaxed);
}

static void guard_probe(void)
{
	size_t ps = page_size();
	guard_kind = GUARD_MPROTECT;
	void *m = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return;
	/* Trust a marker only once seen: qemu-user (7.2) answers 0 to any
	 * madvise it does not pass through, so every stack would silently
	 * go unguarded. The kernel's own copy from a guarded page fails with
	 * EFAULT; from a plain page it succeeds. */
	int p[2];
	if (madvise(m, ps, MADV_GUARD_INSTALL) == 0 && pipe2(p, O_CLOEXEC) == 0) {
		if (write(p[1], m, 1) < 0 && errno == EFAULT)
			guard_kind = GUARD_MARKER;
		close(p[0]);
		close(p[1]);
	}
	munmap(m, 2 * ps);
}

static size_t guard_bytes(void)
{
	size_t ps = page_size();
	return GUARD_BYTES > ps ? GUARD_BYTES : ps;
}

/* The guard region below a stack; false if the kernel refused it. */
static bool guard_install(char *page)
{
	size_t len = guard_bytes();
	int kind = atomic_load_explicit(&guard_forced, memory_order_relaxed);
	if (!kind)
		kind = guard_kind;
	if (kind == GUARD_MARKER && madvise(page, len, MADV_GUARD_INSTALL) == 0)
		return true;
	return mprotect(page, len, PROT_NONE) == 0;
}

int rook__stack_pool_init(struct rook__stack_pool *p, size_t stack_size)
{
	size_t ps = page_size();
	pthread_once(&guard_once, guard_probe);
	memset(p, 0, sizeof(*p));
	p->p_usable = (stack_size + ps - 1) & ~(ps - 1);
	p->p_slot = p->p_usable + guard_bytes();
	p->p_next_count = REGION_FIRST;
	return 0;
}

void rook__stack_pool_fini(struct rook__stack_pool *p)
{
	/* The regions go, and their guard pages (and mappings) with them: the
	 * budget is process-wide, so a process that starts and stops runtimes
	 * would otherwise run out of guarded stacks for good. */
	give_guards((long)atomic_exchange_explicit(&p->p_nguarded, 0, memory_order_relaxed));
	for (struct rook__stack *s = p->p_free; s; s = s->s_next)
		if (s->s_san_fiber)
			rook__tsan_destroy(s->s_san_fiber);
	for (struct rook__stack *s = p->p_clean; s; s = s->s_next)
		if (s->s_san_fiber)
			rook__tsan_destroy(s->s_san_fiber);
	struct rook__stack_region *r = p->p_regions;
	while (r) {
		struct rook__stack_region *next = r->r_next;
		munmap(r->r_base, r->r_len);
		rook__free(r);
		r = next;
	}
	p->p_regions = NULL;
	p->p_free = NULL;
	p->p_clean = NULL;
	atomic_store_explicit(&p->p_ndirty, 0, memory_order_relaxed);
	p->p_fresh = NULL;
	p->p_fresh_left = 0;
}

/* Pool lock held: map a new region; its slots become the fresh range. */
static int region_grow(struct rook__stack_pool *p)
{
	unsigned n = p->p_next_count;
	struct rook__stack_region *r = rook__alloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	size_t len = (size_t)n * p->p_slot;
	void *base = rook__alloc_fail_now()
			 ? MAP_FAILED
			 : mmap(NULL, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED) {
		rook__free(r);
		return -ENOMEM;
	}
	r->r_base = base;
	r->r_len = len;
	r->r_next = p->p_regions;
	p->p_regions = r;
	p->p_fresh = base;
	p->p_fresh_left = n;
	if (p->p_next_count < REGION_MAX)
		p->p_next_count *= 2;
	return 0;
}

/* Turn a never-used slot into a stack: guard page (within the budget) and
 * the descriptor at its top. Writing the descriptor commits the top page,
 * the one the task's first frames use anyway. No lock held. */
static struct rook__stack *slot_setup(struct rook__stack_pool *p, char *slot)
{
	bool guarded = false;
	if (atomic_load_explicit(&guard_forced, memory_order_relaxed) != GUARD_NONE &&
	    take_guard()) {
		guarded = guard_install(slot);
		if (guarded)
			atomic_fetch_add_explicit(&p->p_nguarded, 1, memory_order_relaxed);
		else
			give_guards(1); /* the kernel refused: nothing was made */
	}
	char *lo = slot + guard_bytes();
	/* Cache colouring: the hot top lines (descriptor, first frames, saved
	 * context) of slots a page multiple apart share a few cache sets, and
	 * a thousand tasks yielding in turn thrash them (perf/NOTES.md). */
	size_t color = ((uintptr_t)slot / p->p_slot) % 32 * 64;
	struct rook__stack *s =
	    (struct rook__stack *)(lo + p->p_usable - sizeof(struct rook__stack) - color);
	s->s_lo = lo; /* unguarded: the guard bytes below stay as a margin */
	s->s_top = (char *)s;
	s->s_guarded = guarded;
	s->s_san_fiber = NULL;
	s->s_san_tasks = 0;
	s->s_next = NULL;
	atomic_fetch_add_explicit(guarded ? &rook__stat_guarded : &rook__stat_unguarded, 1,
				  memory_order_relaxed);
	return s;
}

static struct rook__stack *list_pop(struct rook__stack **head)
{
	struct rook__stack *s = *head;
	*head = s->s_next;
	s->s_next = NULL;
	return s;
}

static void c_push(struct rook__stack_cache *c, struct rook__stack *s)
{
	s->s_next = c->c_head;
	c->c_head = s;
	c->c_len++;
}

/* Pool lock held; the count is also read without it (trim_due). */
static void dirty_add(struct rook__stack_pool *p, int n)
{
	unsigned v = atomic_load_explicit(&p->p_ndirty, memory_order_relaxed);
	atomic_store_explicit(&p->p_ndirty, v + (unsigned)n, memory_order_relaxed);
}

/* Refill an empty cache: used stacks from the pool if it has any, else a
 * batch of never-used slots (set up one at a time as they are handed out). */
static int cache_refill(struct rook__stack_pool *p, struct rook__stack_cache *c)
{
	rook__spin_lock(&p->p_lock);
	if (p->p_free || p->p_clean) {
		/* Committed stacks first: they are warm, the clean ones fault. */
		unsigned taken = 0;
		for (; taken < CACHE_BATCH && p->p_free; taken++)
			c_push(c, list_pop(&p->p_free));
		dirty_add(p, -(int)taken);
		unsigned left = atomic_load_explicit(&p->p_ndirty, memory_order_relaxed);
		if (left < p->p_low)
			p->p_low = left;
		for (; taken < CACHE_BATCH && p->p_clean; taken++)
			c_push(c, list_pop(&p->p_clean));
	} else {
		if (!p->p_fresh_left && region_grow(p) < 0) {
			rook__spin_unlock(&p->p_lock);
			return -ENOMEM;
		}
		unsigned k = p->p_fresh_left < CACHE_BATCH ? p->p_fresh_left : CACHE_BATCH;
		c->c_fresh = p->p_fresh;
		c->c_fresh_left = k;
		p->p_fresh += (size_t)k * p->p_slot;
		p->p_fresh_left -= k;
	}
	rook__spin_unlock(&p->p_lock);
	return 0;
}

struct rook__stack *rook__stack_get_slow(struct rook__stack_pool *p, struct rook__stack_cache *c)
{
	unsigned fail = atomic_load_explicit(&rook__stack_fail_n, memory_order_relaxed);
	while (fail &&
	       !atomic_compare_exchange_weak_explicit(&rook__stack_fail_n, &fail, fail - 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
	if (fail || rook__alloc_fail_now())
		return NULL;
	if (!c->c_head && !c->c_fresh_left && cache_refill(p, c) < 0)
		return NULL;
	if (!c->c_head) {
		char *slot = c->c_fresh;
		c->c_fresh += p->p_slot;
		c->c_fresh_left--;
		return slot_setup(p, slot);
	}
	return rook__stack_cache_pop(c);
}

void rook__stack_put_spill(struct rook__stack_pool *p, struct rook__stack_cache *c)
{
	/* Hand the coldest half back to the pool. */
	struct rook__stack *keep = c->c_head;
	for (unsigned i = 1; i < CACHE_MAX / 2; i++)
		keep = keep->s_next;
	struct rook__stack *give = keep->s_next;
	keep->s_next = NULL;
	c->c_len = CACHE_MAX / 2;
	struct rook__stack *last = give;
	while (last->s_next)
		last = last->s_next;
	if (c->c_low > c->c_len)
		c->c_low = c->c_len;
	rook__spin_lock(&p->p_lock);
	last->s_next = p->p_free;
	p->p_free = give;
	dirty_add(p, CACHE_MAX + 1 - CACHE_MAX / 2);
	rook__spin_unlock(&p->p_lock);
}

void rook__stack_cache_drain(struct rook__stack_pool *p, struct rook__stack_cache *c)
{
	rook__spin_lock(&p->p_lock);
	dirty_add(p, (int)c->c_len);
	while (c->c_head) {
		struct rook__stack *s = list_pop(&c->c_head);
		s->s_next = p->p_free;
		p->p_free = s;
	}
	rook__spin_unlock(&p->p_lock);
	c->c_len = 0;
	c->c_low = 0;
	/* Never-used slots stay reserved until the pool unmaps their region. */
	c->c_fresh = NULL;
	c->c_fresh_left = 0;
}

/* ---- giving memory back -------------------------------------------- */

uint64_t rook__stack_trim_due(struct rook__stack_pool *p, const struct rook__stack_cache *c)
{
	uint64_t due = UINT64_MAX;
	if (c->c_len > CACHE_HOT)
		due = c->c_trim_next;
	if (atomic_load_explicit(&p->p_ndirty, memory_order_relaxed)) {
		uint64_t pd = atomic_load_explicit(&p->p_trim_next, memory_order_relaxed);
		if (pd < due)
			due = pd;
	}
	return due;
}

/* Drop the pages of s below its top page (which holds the descriptor and
 * the first frames). The bytes need not survive: a stack is reused from
 * a fresh context. */
static void stack_release(struct rook__stack *s)
{
	size_t ps = page_size();
	char *lo = s->s_lo, *hi = (char *)((uintptr_t)s->s_top & ~(uintptr_t)(ps - 1));
	if (hi > lo && madvise(lo, (size_t)(hi - lo), MADV_DONTNEED) == 0)
		atomic_fetch_add_explicit(&rook__stat_released, 1, memory_order_relaxed);
}

/* Cut the list after its first keep entries; return the rest. */
static struct rook__stack *list_cut(struct rook__stack **head, unsigned keep)
{
	struct rook__stack **at = head;
	while (keep-- && *at)
		at = &(*at)->s_next;
	struct rook__stack *rest = *at;
	*at = NULL;
	return rest;
}

/* Release the stacks of list (nobody else holds them) in batches onto the
 * pool's clean list; if stop() says work arrived, the rest go back to
 * p_free unreleased. */
static void release_list(struct rook__stack_pool *p, struct rook__stack *list, bool (*stop)(void *),
			 void *arg)
{
	while (list) {
		struct rook__stack *batch = list, *last = list;
		unsigned n = 1;
		stack_release(last);
		while (n < CACHE_BATCH && last->s_next) {
			last = last->s_next;
			stack_release(last);
			n++;
		}
		list = last->s_next;
		rook__spin_lock(&p->p_lock);
		last->s_next = p->p_clean;
		p->p_clean = batch;
		rook__spin_unlock(&p->p_lock);
		if (list && stop(arg)) {
			unsigned k = 1;
			for (last = list; last->s_next; last = last->s_next)
				k++;
			rook__spin_lock(&p->p_lock);
			last->s_next = p->p_free;
			p->p_free = list;
			dirty_add(p, (int)k);
			rook__spin_unlock(&p->p_lock);
			return;
		}
	}
}

void rook__stack_trim(struct rook__stack_pool *p, struct rook__stack_cache *c, uint64_t now,
		      bool (*stop)(void *), void *arg)
{
	/* The cache: its coldest stacks beyond the hot few that went unused
	 * all period (a LIFO list: the tail is the coldest). */
	if (now >= c->c_trim_next) {
		c->c_trim_next = now + TRIM_PERIOD;
		unsigned low = c->c_low < c->c_len ? c->c_low : c->c_len;
		struct rook__stack *cold = NULL;
		if (low > CACHE_HOT) {
			cold = list_cut(&c->c_head, c->c_len - (low - CACHE_HOT));
			c->c_len -= low - CACHE_HOT;
		}
		c->c_low = c->c_len;
		release_list(p, cold, stop, arg);
	}
	/* The pool: one worker a period (the low mark spans a whole one). */
	uint64_t due = atomic_load_explicit(&p->p_trim_next, memory_order_relaxed);
	if (now < due || stop(arg) ||
	    !atomic_compare_exchange_strong_explicit(&p->p_trim_next, &due, now + TRIM_PERIOD,
						     memory_order_relaxed, memory_order_relaxed))
		return;
	rook__spin_lock(&p->p_lock);
	unsigned n = atomic_load_explicit(&p->p_ndirty, memory_order_relaxed);
	unsigned low = p->p_low < n ? p->p_low : n;
	struct rook__stack *cold = low ? list_cut(&p->p_free, n - low) : NULL;
	dirty_add(p, -(int)low);
	p->p_low = n - low;
	rook__spin_unlock(&p->p_lock);
	release_list(p, cold, stop, arg);
}

/* ---- overflow reporting -------------------------------------------- */

#define ALTSTACK_SIZE (64 * 1024)

static struct sigaction prev_segv;
static _Atomic int handler_installed;

int rook__stack_sigaltstack_setup(void **mem)
{
	void *m = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	stack_t ss = {.ss_sp = m, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
	if (sigaltstack(&ss, NULL) != 0) {
		munmap(m, ALTSTACK_SIZE);
		return -errno;
	}
	*mem = m;
	return 0;
}

void rook__stack_sigaltstack_teardown(void *mem)
{
	if (!mem)
		return;
	stack_t ss = {.ss_flags = SS_DISABLE};
	sigaltstack(&ss, NULL);
	munmap(mem, ALTSTACK_SIZE);
}

static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static size_t put_str(char *buf, const char *s)
{
	size_t n = strlen(s);
	memcpy(buf, s, n);
	return n;
}

void rook__stack_overflow_abort(uint64_t task_id, size_t stack_size)
{
	char msg[256];
	size_t n = 0;
	n += put_str(msg + n, "rook: stack overflow in task ");
	n += fmt_u64(msg + n, task_id);
	n += put_str(msg + n, " (stack size ");
	n += fmt_u64(msg + n, stack_size);
	n += put_str(msg + n, " bytes); raise rook_config.stack_size or ROOK_STACK_SIZE\n");
	ssize_t w = write(STDERR_FILENO, msg, n);
	(void)w;
	abort();
}

static void segv_handler(int sig, siginfo_t *si, void *uctx)
{
	struct rook__worker *w = rook__worker_self();
	struct rook_task *t = w ? w->w_current : NULL;
	if (t && t->t_stack && t->t_stack->s_guarded) {
		char *addr = si->si_addr;
		char *lo = t->t_stack->s_lo;
		if (si->si_code > 0 && addr < lo && addr >= lo - guard_bytes())
			rook__stack_overflow_abort(t->t_stack->s_task_id,
						   (size_t)(t->t_stack->s_top - lo) +
						       sizeof(struct rook__stack));
	}
	/* Not ours: behave as if we were never installed. */
	if (prev_segv.sa_flags & SA_SIGINFO) {
		prev_segv.sa_sigaction(sig, si, uctx);
		return;
	}
	bool sent = si->si_code <= 0; /* kill, raise, sigqueue: no fault */
	if (prev_segv.sa_handler == SIG_IGN && sent)
		return; /* discarded, as it would have been; we stay installed */
	if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN) {
		prev_segv.sa_handler(sig);
		return;
	}
	/* Default action (for a fault also when ignored: the kernel kills a
	 * process whose fault signal is ignored). A fault re-runs its
	 * instruction on return; a sent signal is raised again (SA_NODEFER:
	 * not blocked here), so the process dies of SIGSEGV either way. */
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGSEGV, &dfl, NULL);
	if (sent)
		raise(SIGSEGV);
}

void rook__stack_install_handler(void)
{
	int expect = 0;
	if (!atomic_compare_exchange_strong_explicit(&handler_installed, &expect, 1,
						     memory_order_acq_rel, memory_order_acquire))
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &prev_segv);
}
