/* SPDX-License-Identifier: MIT */
/*
 * Task lifecycle: allocation from a type-stable pool, the entry point that
 * runs on the task's stack, finishing and joining, cancellation, detach,
 * yield. Invariants: t_state goes NEW -> STARTED -> DONE (or NEW -> DONE
 * for a task cancelled before it ran) and the DONE edge happens under
 * t_lock together with taking the joiner list, so a joiner either sees DONE
 * or is on the list when the task finishes (no lost wake-up).
 */
#include "sched/task.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sched/alloc.h"
#include "sched/check.h"
#include "sched/fork.h"
#include "sched/park.h"
#include "sched/runtime.h"
#include "sched/testing.h"
#include "sched/san.h"
#include "diag/stats.h"
#include "sched/worker.h"
#include "diag/tdiag.h"
#include "diag/trace.h"

/* ---- type-stable task pool ------------------------------------------ */

/*
 * Tasks come from chunks that are never freed, so a stale handle always
 * points at a task (live or dead). The first chunk is small (a program
 * with a few tasks stays small); later ones are 2 MiB mappings committed
 * in one call (MADV_POPULATE_WRITE, Linux 5.14; older kernels fault them
 * in as they are touched), zero already, so no memset. Chosen over THP
 * chunks, which were bimodal on a VM with free page reporting (numbers:
 * perf/NOTES.md, "task pool chunks").
 */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define FIRST_CHUNK_TASKS 256u
#define BIG_CHUNK_BYTES   ((size_t)2 << 20)
#define CACHE_MAX         512u

struct chunk {
	struct chunk *c_next;
	size_t c_n;
	struct rook_task c_tasks[];
};

static struct rook__spin pool_lock;
static struct rook_task *pool_free;

__attribute__((constructor)) static void pool_lock_guard(void)
{
	rook__fork_guard(&pool_lock);
}

void rook__task_pool_hold(bool hold)
{
	if (hold)
		rook__spin_lock(&pool_lock);
	else
		rook__spin_unlock(&pool_lock);
}
static _Atomic(struct chunk *) chunks; /* append-only, never freed */
static _Atomic bool first_taken;       /* one thread makes the small first chunk */

/* A zeroed chunk, or NULL: the first one small, later ones BIG_CHUNK_BYTES.
 * Mapped memory is outside what LeakSanitizer scans, so it is registered
 * (tasks in it point at heap blocks, and chunks point at each other). */
static struct chunk *chunk_new(void)
{
	size_t bytes = BIG_CHUNK_BYTES;
	bool first = !atomic_load_explicit(&first_taken, memory_order_relaxed) &&
		     !atomic_exchange_explicit(&first_taken, true, memory_order_relaxed);
	if (first)
		bytes = sizeof(struct chunk) + FIRST_CHUNK_TASKS * sizeof(struct rook_task);
	struct chunk *c = rook__alloc_fail_now() ? MAP_FAILED
						 : mmap(NULL, bytes, PROT_READ | PROT_WRITE,
							MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* Handles keep a generation in the top 16 address bits (task.h). */
	if (c != MAP_FAILED && ((uintptr_t)c + bytes - 1) >> ROOK__TAG_SHIFT) {
		munmap(c, bytes);
		c = MAP_FAILED;
	}
	if (c == MAP_FAILED) {
		if (first)
			atomic_store_explicit(&first_taken, false, memory_order_relaxed);
		return NULL;
	}
	if (!first)
		(void)madvise(c, bytes, MADV_POPULATE_WRITE); /* else: on touch */
	rook__lsan_root(c, bytes);
	c->c_n = (bytes - sizeof(*c)) / sizeof(struct rook_task);
	return c;
}

/* Out of line: the cached case is the hot one (task_alloc). */
__attribute__((noinline)) static struct rook_task *pool_take(void)
{
	rook__spin_lock(&pool_lock);
	struct rook_task *t = pool_free;
	if (t)
		pool_free = t->t_next;
	rook__spin_unlock(&pool_lock);
	if (t)
		return t;
	struct chunk *c = chunk_new();
	if (!c)
		return NULL;
	for (size_t i = 1; i + 1 < c->c_n; i++)
		c->c_tasks[i].t_next = &c->c_tasks[i + 1];
	rook__spin_lock(&pool_lock);
	if (c->c_n > 1) {
		c->c_tasks[c->c_n - 1].t_next = pool_free;
		pool_free = &c->c_tasks[1];
	}
	rook__spin_unlock(&pool_lock);
	c->c_next = atomic_load_explicit(&chunks, memory_order_relaxed);
	/* Pairs with the acquire load in rook__task_foreach. */
	while (!atomic_compare_exchange_weak_explicit(&chunks, &c->c_next, c, memory_order_release,
						      memory_order_relaxed))
		;
	return &c->c_tasks[0];
}

static void pool_give(struct rook_task *head, struct rook_task *tail)
{
	rook__spin_lock(&pool_lock);
	tail->t_next = pool_free;
	pool_free = head;
	rook__spin_unlock(&pool_lock);
}

/* w: the calling worker (its cache of freed tasks), or NULL. */
static inline struct rook_task *task_alloc(struct rook__worker *w)
{
	if (rook__alloc_fail_now())
		return NULL;
	struct rook_task *t;
	if (w && w->w_tasks.tc_head) {
		t = w->w_tasks.tc_head;
		w->w_tasks.tc_head = t->t_next;
		w->w_tasks.tc_len--;
	} else {
		t = pool_take();
		if (!t)
			return NULL;
	}
	rook__stat_add(w, ROOK__STAT_LIVE, 1);
	return t;
}

/* noinline and never suspends: the inline TLS read is safe here. */
__attribute__((noinline)) static void task_free(struct rook_task *t)
{
	struct rook__worker *w = rook__worker_entry();
	/* A new generation: handles of the task that ends here go stale. */
	uint32_t g = atomic_load_explicit(&t->t_gen, memory_order_relaxed);
	atomic_store_explicit(&t->t_gen, (g & ~(ROOK__GEN_LIVE | ROOK__GEN_HANDLE)) + ROOK__GEN_ONE,
			      memory_order_relaxed);
	rook__stat_add(w, ROOK__STAT_LIVE, -1);
	if (!w) {
		pool_give(t, t);
		return;
	}
	struct rook__task_cache *c = &w->w_tasks;
	t->t_next = c->tc_head;
	c->tc_head = t;
	if (++c->tc_len < CACHE_MAX)
		return;
	/* Give the older half back so one worker cannot hoard freed tasks. */
	struct rook_task *keep = c->tc_head;
	for (unsigned i = 1; i < CACHE_MAX / 2; i++)
		keep = keep->t_next;
	struct rook_task *head = keep->t_next, *tail = head;
	while (tail->t_next)
		tail = tail->t_next;
	keep->t_next = NULL;
	c->tc_len = CACHE_MAX / 2;
	pool_give(head, tail);
}

void rook__task_cache_drain(struct rook__task_cache *c)
{
	if (!c->tc_head)
		return;
	struct rook_task *tail = c->tc_head;
	while (tail->t_next)
		tail = tail->t_next;
	pool_give(c->tc_head, tail);
	c->tc_head = NULL;
	c->tc_len = 0;
}

void rook__task_put(struct rook_task *t)
{
	/* acq_rel: the last dropper sees every write made under the other
	 * reference before it frees. */
	if (atomic_fetch_sub_explicit(&t->t_refs, 1, memory_order_acq_rel) == 1)
		task_free(t);
}

bool rook__handle_release_n(struct rook_task *t, uint32_t gen, int n)
{
	if (!atomic_compare_exchange_strong_explicit(&t->t_gen, &gen, gen & ~ROOK__GEN_HANDLE,
						     memory_order_acq_rel, memory_order_relaxed))
		return false;
	/* acq_rel: as rook__task_put. */
	if (atomic_fetch_sub_explicit(&t->t_refs, n, memory_order_acq_rel) == n)
		task_free(t);
	return true;
}

bool rook__task_tryget(struct rook_task *t)
{
	int r = atomic_load_explicit(&t->t_refs, memory_order_relaxed);
	while (r > 0)
		if (atomic_compare_exchange_weak_explicit(
			&t->t_refs, &r, r + 1, memory_order_acquire, memory_order_relaxed))
			return true;
	return false;
}

struct rook_task *rook__handle_ref(const struct rook_task *h)
{
	if (!h)
		return NULL;
	uint32_t tag;
	struct rook_task *t = rook__handle_slot(h, &tag);
	if (!rook__task_tryget(t))
		return NULL;
	/* With our reference held t_gen cannot change (it does only while
	 * t_refs is 0: in task_free and in spawn before t_refs is stored). */
	if (!rook__gen_match(atomic_load_explicit(&t->t_gen, memory_order_relaxed), tag)) {
		rook__task_put(t);
		return NULL;
	}
	return t;
}

void rook__task_foreach(void (*fn)(struct rook_task *t, void *ctx), void *ctx)
{
	for (struct chunk *c = atomic_load_explicit(&chunks, memory_order_acquire); c;
	     c = c->c_next)
		for (size_t i = 0; i < c->c_n; i++)
			fn(&c->c_tasks[i], ctx);
}

/* ---- running and finishing ------------------------------------------ */

bool rook__task_cancel_pending(const struct rook_task *t)
{
	struct rook_task *m = (struct rook_task *)t;
	return atomic_load_explicit(&m->t_shield, memory_order_relaxed) == 0 &&
	       atomic_load_explicit(&m->t_cancel, memory_order_acquire);
}

static struct {
	rook_fn u_fn;
	void (*u_unrun)(void *arg, int status);
} unrun_hooks[ROOK__UNRUN_MAX];
static _Atomic int unrun_n;

bool rook__task_on_unrun(rook_fn fn, void (*unrun)(void *arg, int status))
{
	int i = atomic_load_explicit(&unrun_n, memory_order_relaxed);
	if (i == ROOK__UNRUN_MAX)
		return false;
	unrun_hooks[i].u_fn = fn;
	unrun_hooks[i].u_unrun = unrun;
	atomic_store_explicit(&unrun_n, i + 1, memory_order_release);
	return true;
}

/* t ends without having run (task_prepare in worker.c). */
static void task_unrun(struct rook_task *t, int status)
{
	int n = atomic_load_explicit(&unrun_n, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (unrun_hooks[i].u_fn == t->t_fn) {
			unrun_hooks[i].u_unrun(t->t_arg, status);
			return;
		}
}

/* noinline and never suspends (wakes only): its inline TLS read cannot
 * meet a suspension of rook__task_entry, its caller in this file. */
__attribute__((noinline)) void rook__task_finish(struct rook_task *t, int status)
{
	struct rook__waiter *wake = NULL;
	if (atomic_load_explicit(&t->t_state, memory_order_relaxed) == ROOK__T_NEW)
		task_unrun(t, status);
	if (t->t_scopes) {
		rook__free(t->t_scopes);
		t->t_scopes = NULL;
	}
	atomic_store_explicit(&t->t_status, status, memory_order_relaxed);
	rook__spin_lock(&t->t_lock);
	/* Pairs with the acquire loads of t_state in join and rook_done. */
	atomic_store_explicit(&t->t_state, ROOK__T_DONE, memory_order_release);
	for (struct rook__jnode *n = t->t_joiners; n; n = n->j_next) {
		n->j_linked = false;
		if (rook__wait_claim(n->j_w, n->j_token, 0)) {
			n->j_w->w_next_wake = wake;
			wake = n->j_w;
		}
	}
	t->t_joiners = NULL;
	rook__spin_unlock(&t->t_lock);
	while (wake) {
		struct rook__waiter *next = wake->w_next_wake;
		rook__wait_wake(wake);
		wake = next;
	}
	/* Tasks always finish on a worker of their runtime (live_tasks). */
	struct rook__worker *w = rook__worker_entry();
	atomic_store_explicit(&w->w_nfinished,
			      atomic_load_explicit(&w->w_nfinished, memory_order_relaxed) + 1,
			      memory_order_release);
}

void rook__task_entry(void *arg)
{
	struct rook_task *t = arg;
	rook__task_started();
	int status = t->t_fn(t->t_arg);
	rook__task_finish(t, status);
	rook__task_switch_out(ROOK__POST_EXIT);
	abort(); /* unreachable: an exited task is never resumed */
}

void rook__task_unpark(struct rook_task *t)
{
	if (atomic_load_explicit(&rook__trace_active, memory_order_relaxed))
		rook__trace_flow(NULL, t, ROOK__TR_WAKE);
	/* acq_rel: pairs with the scheduler's CAS PARKING -> PARKED (one of
	 * the two sees the other) and with the task's acquire load in park. */
	uint32_t old = atomic_exchange_explicit(&t->t_park, ROOK__P_WOKEN, memory_order_acq_rel);
	if (old == ROOK__P_PARKED)
		rook__schedule(t, true);
}

void rook__task_unpark_fifo(struct rook_task *t)
{
	if (atomic_load_explicit(&rook__trace_active, memory_order_relaxed))
		rook__trace_flow(NULL, t, ROOK__TR_WAKE);
	/* As rook__task_unpark. */
	uint32_t old = atomic_exchange_explicit(&t->t_park, ROOK__P_WOKEN, memory_order_acq_rel);
	if (old == ROOK__P_PARKED)
		rook__schedule_fifo(t);
}

/* ---- public task calls ---------------------------------------------- */

int rook__spawn(struct rook_rt *rt, struct rook__worker *w, struct rook_task **out, rook_fn fn,
		void *arg)
{
	if (!fn)
		return -EINVAL;
	if (atomic_load_explicit(&rt->rt_stopping, memory_order_relaxed))
		return -EPIPE;
	struct rook_task *t = task_alloc(w);
	if (!t)
		return -ENOMEM;
	atomic_store_explicit(&t->t_state, ROOK__T_NEW, memory_order_relaxed);
	atomic_store_explicit(&t->t_cancel, 0, memory_order_relaxed);
	atomic_store_explicit(&t->t_flow, 0, memory_order_relaxed);
	atomic_store_explicit(&t->t_park, ROOK__P_RUNNING, memory_order_relaxed);
	atomic_store_explicit(&t->t_status, 0, memory_order_relaxed);
	atomic_store_explicit(&t->t_shield, 0, memory_order_relaxed);
	t->t_scopes = NULL;
	t->t_fn = fn;
	t->t_arg = arg;
	t->t_rt = rt;
	t->t_sp = NULL;
	t->t_stack = NULL;
	t->t_next = NULL;
	atomic_store_explicit(&t->t_lock.s_held, 0, memory_order_relaxed);
	t->t_joiners = NULL;
#ifdef ROOK_ASAN
	t->t_asan_fake = NULL;
#endif
	rook__waiter_init(&t->t_waiter, t);
	if (w) {
		atomic_store_explicit(
		    &w->w_nspawned, atomic_load_explicit(&w->w_nspawned, memory_order_relaxed) + 1,
		    memory_order_release);
	} else {
		atomic_fetch_add_explicit(&rt->rt_ext_spawned, 1, memory_order_release);
	}
	/* The slot's generation (task_free moved it on); tag 0 is reserved
	 * for plain pointers (task.h). */
	uint32_t g = atomic_load_explicit(&t->t_gen, memory_order_relaxed) &
		     ~(ROOK__GEN_LIVE | ROOK__GEN_HANDLE);
	if (rook__gen_tag(g) == 0)
		g += ROOK__GEN_ONE;
	g |= ROOK__GEN_LIVE | (out ? ROOK__GEN_HANDLE : 0);
	atomic_store_explicit(&t->t_gen, g, memory_order_relaxed);
	/* Publishes the fields to rook__task_tryget (the stop sweep). No
	 * fence against rook_rt_stop: a task the sweep missed while this load
	 * still saw no stop is caught by one of its later sweeps. */
	atomic_store_explicit(&t->t_refs, out ? 2 : 1, memory_order_release);
	if (atomic_load_explicit(&rt->rt_stopping, memory_order_relaxed))
		atomic_store_explicit(&t->t_cancel, 1, memory_order_relaxed);
	if (out)
		*out = rook__handle_make(t, g);
	if (atomic_load_explicit(&rook__trace_active, memory_order_relaxed))
		rook__trace_flow(w, t, ROOK__TR_SPAWN);
	rook__schedule_on(w, t, false);
	return 0;
}

/* noinline and never suspends: the inline TLS read is safe here. */
__attribute__((noinline)) struct rook_task *rook__self(void)
{
	struct rook__worker *w = rook__worker_entry();
	return w ? w->w_current : NULL;
}

/* Parenthesised: the public function, not the macro of task.h. */
struct rook_task *(rook_self)(void)
{
	struct rook_task *t = rook__self();
	return t ? rook__handle_make(t, atomic_load_explicit(&t->t_gen, memory_order_relaxed))
		 : NULL;
}

int rook_spawn(struct rook_task **t, rook_fn fn, void *arg)
{
	struct rook__worker *w = rook__worker_entry(); /* a spawn never suspends */
	if (!w || !w->w_current)
		return -EPERM;
	return rook__spawn(w->w_rt, w, t, fn, arg);
}

bool rook_done(const struct rook_task *h)
{
	/* A reference, so that the state read is that of h's task and not of
	 * a task spawned into its slot meanwhile. A task whose slot moved on
	 * has finished (a slot is freed only after its task ends). */
	struct rook_task *t = rook__handle_ref(h);
	if (!t) {
		uint32_t tag;
		return h && (rook__handle_slot(h, &tag), tag != 0);
	}
	bool done = atomic_load_explicit(&t->t_state, memory_order_acquire) == ROOK__T_DONE;
	rook__task_put(t);
	return done;
}

bool rook__task_parked(const struct rook_task *h)
{
	struct rook_task *t = rook__handle_ref(h);
	if (!t)
		return false;
	/* Acquire: pairs with the worker's CAS to PARKED after the switch. */
	bool parked = atomic_load_explicit(&t->t_park, memory_order_acquire) == ROOK__P_PARKED;
	rook__task_put(t);
	return parked;
}

void rook_detach(struct rook_task *h)
{
	uint32_t g;
	struct rook_task *t = rook__handle_get(h, &g);
	if (t)
		rook__handle_release(t, g);
}

int rook_cancel(struct rook_task *h)
{
	/* A reference, so that a stale handle cannot cancel the slot's next
	 * task: the generation is checked with the slot pinned. */
	struct rook_task *t = rook__handle_ref(h);
	if (!t)
		return -EINVAL;
	rook__task_cancel(t);
	rook__task_put(t);
	return 0;
}

void rook__task_cancel(struct rook_task *t)
{
	/* seq_cst: pairs with the store of w_state in wait_begin and the load
	 * of t_cancel in wait_park (see wait.c). */
	atomic_store_explicit(&t->t_cancel, 1, memory_order_seq_cst);
	struct rook__waiter *w = &t->t_waiter;
	uint32_t s = atomic_load_explicit(&w->w_state, memory_order_seq_cst);
	/* A wait begun inside a shield keeps going: the shield depth was
	 * stored before that wait's state, which we just read (seq_cst). */
	if ((s & 3u) == ROOK__W_WAITING &&
	    atomic_load_explicit(&t->t_shield, memory_order_relaxed) == 0 &&
	    rook__wait_claim(w, s, -ECANCELED))
		rook__wait_wake(w);
}

/* Wait until t is DONE without releasing it. 0, -ECANCELED, -ETIMEDOUT. */
int rook__task_wait_done(struct rook_task *t)
{
	return rook__task_wait_gen(t, 0);
}

int rook__task_wait_gen(struct rook_task *t, uint32_t tag)
{
	if (atomic_load_explicit(&t->t_state, memory_order_acquire) == ROOK__T_DONE)
		return 0;
	int r = rook__wait_check_fast();
	if (r)
		return r;
	struct rook__waiter *w = rook__waiter_self();
	struct rook__jnode n = {.j_w = w};
	rook__spin_lock(&t->t_lock);
	if (atomic_load_explicit(&t->t_state, memory_order_acquire) == ROOK__T_DONE) {
		rook__spin_unlock(&t->t_lock);
		return 0;
	}
	/* Not DONE and still tag's task under t_lock: its DONE edge (taken
	 * under t_lock) has not happened and will wake us. If the slot moved
	 * on, tag's task finished long ago (a concurrent join released it). */
	if (!rook__gen_match(atomic_load_explicit(&t->t_gen, memory_order_relaxed), tag)) {
		rook__spin_unlock(&t->t_lock);
		return 0;
	}
	n.j_token = rook__wait_begin(w, rook__wait_cancellable());
	rook__jnode_push(t, &n);
	rook__spin_unlock(&t->t_lock);
	r = rook__wait_park(w, n.j_token);
	if (r != 0) {
		rook__spin_lock(&t->t_lock);
		rook__jnode_remove(t, &n);
		rook__spin_unlock(&t->t_lock);
	}
	return r;
}

int rook_join(struct rook_task *h, int *status)
{
	ROOK__DIAG_CALL("rook_join");
	uint32_t g;
	struct rook_task *t = rook__handle_get(h, &g);
	if (!t)
		return -EINVAL;
	struct rook__worker *w = rook__worker_self();
	struct rook_task *self = w ? w->w_current : NULL;
	if (t == self)
		return -EDEADLK;
	/* A child not started yet runs now, on this worker, if it is the
	 * newest task there. If it ended, its run's reference is ours and
	 * goes with the handle's (one fetch_sub for both); if it blocked,
	 * the wait below waits as usual. */
	if (self && atomic_load_explicit(&t->t_state, memory_order_relaxed) == ROOK__T_NEW &&
	    !rook__task_cancel_pending(self) && rook__task_deadline(self) == UINT64_MAX &&
	    rook__task_adopt(w, t)) {
		int st = atomic_load_explicit(&t->t_status, memory_order_relaxed);
		if (!rook__handle_release_n(t, g, 2)) {
			rook__task_put(t); /* another join or a detach released it */
			return -EINVAL;
		}
		if (status)
			*status = st;
		return 0;
	}
	/* The wait checks the generation under t_lock, so a concurrent join
	 * that released the handle (and a spawn that reused the slot) cannot
	 * leave us waiting on the slot's next task. */
	int r = rook__task_wait_gen(t, rook__gen_tag(g));
	if (r != 0)
		return r;
	/* Relaxed and atomic: a losing concurrent join may read it while the
	 * slot's next task writes it (the value is then dropped below). */
	int st = atomic_load_explicit(&t->t_status, memory_order_relaxed);
	/* Fails if another join released it meanwhile (or the slot moved on:
	 * then st may be another task's, and is dropped). */
	if (!rook__handle_release(t, g))
		return -EINVAL;
	if (status)
		*status = st;
	return 0;
}

int rook_yield(void)
{
	struct rook__worker *w = rook__worker_entry(); /* not used past the yield */
	struct rook_task *t = w ? w->w_current : NULL;
	if (!t)
		return -EPERM;
	int r = rook__wait_check_task(t);
	if (r)
		return r;
	rook__task_yield();
	return rook__wait_check_task(t);
}
