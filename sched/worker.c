/* SPDX-License-Identifier: MIT */
/*
 * The worker loop: find a task, switch to it, act on why it switched back.
 *
 * Where a worker looks, in order: every 61st round the injection queue and
 * the yield queue first, and every 976th the oldest task of its own deque if
 * it has waited OLDEST_NS (so nothing queued starves behind a LIFO stream);
 * then the LIFO slot (at most LIFO_MAX runs
 * in a row, then its task moves to the deque, where thieves see it; the
 * fairness tick, not the cap, bounds how long older local work waits),
 * its deque (newest first: fork-join stays depth-first), its yield queue, the
 * injection queue, and finally other workers (stealing half, nearest first).
 *
 * Wake-up protocol (no lost wake-ups):
 * - A publisher (push to a deque, LIFO slot or injection queue) issues a
 *   seq_cst fence, then reads rt_nspinning and rt_nidle. If nobody spins and
 *   somebody is idle, it CASes rt_nspinning 0 -> 1 (so concurrent publishers
 *   wake one worker, not many), pops one idle worker and wakes it; that
 *   worker starts out counted as spinning.
 * - A worker about to park adds itself to the idle set, increments rt_nidle
 *   (seq_cst), and only then re-checks every queue. Either the publisher saw
 *   rt_nidle > 0, or the re-check sees the published work (Dekker).
 * - A spinning worker that finds work and was the last spinner calls notify
 *   itself, so that one more worker looks for the rest (Go's handoff).
 * - Exception: a worker's push into its own empty deque does not notify
 *   while no worker sleeps deeply (rt_ndeep == 0, read after a seq_cst
 *   fence). That task is the worker's own next task once the running one
 *   switches out (a chain of spawns stays on one core instead of being
 *   stolen back and forth); a second push, while the first is still
 *   queued, notifies. The rescue for a running task that keeps its worker
 *   for long: a parked worker first sleeps in naps of at most RESCUE_NS,
 *   re-checking every queue in between (and stealing what it sees), so such
 *   a task waits at most about RESCUE_NS plus one spin. After DEEP_NAPS
 *   empty naps it sleeps deeply (no idle wake-ups): it increments rt_ndeep
 *   (seq_cst) and re-checks every queue before sleeping, so either it sees
 *   the unnotified task or the pusher sees rt_ndeep > 0 and notifies
 *   (Dekker, as above).
 * At most half the workers spin at once; a spinner gives up after
 * SPIN_NS and parks. Parking is the IO layer's wait (sched/park.h): an
 * io_uring_enter or an epoll_wait bounded by the next timer.
 */
#include "sched/worker.h"

#include <pthread.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched/alloc.h"
#include "sched/context.h"
#include "sched/park.h"
#include "sched/runtime.h"
#include "sched/san.h"
#include "diag/stats.h"
#include "diag/trace.h"
#include "sched/task.h"
#include "sched/testing.h"
#include "time/timer.h"

#define FAIR_TICKS      61u
#define LIFO_MAX        3u
#define OLDEST_EVERY    16u                /* in fairness ticks: check the deque's oldest */
#define OLDEST_NS       (10 * 1000 * 1000) /* its longest wait (see local_next) */
#define STEAL_MAX       64
#define SPIN_NS         (50 * 1000)       /* longest spin... */
#define SPIN_MIN_NS     (1 * 1000)        /* ...and shortest (see search) */
#define RESCUE_NS       (2 * 1000 * 1000) /* longest nap (see the protocol) */
#define WATCH_NS        (1 * 1000 * 1000) /* nap while a busy worker has IO pending */
#define DEEP_NAPS       64                /* empty naps before a deep sleep */
#define STARVE_EVERY    32                /* rounds between looks at a sibling... */
#define STARVE_PEEK_NS  (200 * 1000)      /* ...at most this often (see poll_siblings) */
#define IDLE_POLL_EVERY 16u               /* rounds between polls of an idle ring */
#define SAN_FIBER_TASKS 256u              /* TSan: tasks per fiber (see post_switch) */

/* initial-exec: one %fs-relative load in the shared library too, instead of
 * a __tls_get_addr call (3 ns per blocking call, measured); the library
 * needs 48 bytes of static TLS, well within what glibc keeps for dlopen. */
_Thread_local struct rook__worker *rook__tls_worker __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) struct rook__worker *rook__worker_self(void)
{
	struct rook__worker *w = rook__tls_worker;
	/* Keeps the compiler from treating this accessor as pure and reusing
	 * its result across a suspension. */
	__asm__ __volatile__("" ::: "memory");
	return w;
}

int rook__worker_index(void)
{
	struct rook__worker *w = rook__worker_self();
	return w ? (int)w->w_index : -1;
}

unsigned rook_workers(void)
{
	struct rook__worker *w = rook__worker_self();
	return w ? w->w_rt->rt_nworkers : 0;
}

unsigned rook__idle_workers(void)
{
	struct rook__worker *w = rook__worker_self();
	return w ? (unsigned)atomic_load_explicit(&w->w_rt->rt_nidle, memory_order_relaxed) : 0;
}

#ifdef ROOK_TESTING
static void (*_Atomic test_hook)(int);
#define TEST_HOOK(point)                                                                           \
	do {                                                                                       \
		void (*h_)(int) = atomic_load_explicit(&test_hook, memory_order_relaxed);          \
		if (h_)                                                                            \
			h_(point);                                                                 \
	} while (0)
#else
#define TEST_HOOK(point) ((void)0)
#endif

void rook__worker_hook(void (*fn)(int point))
{
#ifdef ROOK_TESTING
	atomic_store_explicit(&test_hook, fn, memory_order_relaxed);
#else
	(void)fn;
#endif
}

/* ---- injection queue ------------------------------------------------- */

static void inject(struct rook_rt *rt, struct rook_task *t)
{
	t->t_next = NULL;
	rook__spin_lock(&rt->rt_inj_lock);
	if (rt->rt_inj_tail)
		rt->rt_inj_tail->t_next = t;
	else
		rt->rt_inj_head = t;
	rt->rt_inj_tail = t;
	atomic_fetch_add_explicit(&rt->rt_inj_len, 1, memory_order_relaxed);
	rook__spin_unlock(&rt->rt_inj_lock);
	rook__notify(rt);
}

/* Owner: take a batch from the injection queue; the rest of the batch goes
 * to our deque. */
static struct rook_task *inj_take(struct rook__worker *w)
{
	struct rook_rt *rt = w->w_rt;
	size_t len = atomic_load_explicit(&rt->rt_inj_len, memory_order_relaxed);
	if (len == 0)
		return NULL;
	size_t want = len / rt->rt_nworkers + 1;
	if (want > 32)
		want = 32;
	rook__spin_lock(&rt->rt_inj_lock);
	struct rook_task *first = rt->rt_inj_head, *last = NULL, *t = first;
	size_t got = 0;
	while (t && got < want) {
		last = t;
		t = t->t_next;
		got++;
	}
	if (first) {
		rt->rt_inj_head = t;
		if (!t)
			rt->rt_inj_tail = NULL;
		last->t_next = NULL;
		atomic_fetch_sub_explicit(&rt->rt_inj_len, got, memory_order_relaxed);
	}
	rook__spin_unlock(&rt->rt_inj_lock);
	if (!first)
		return NULL;
	for (struct rook_task *x = first->t_next; x;) {
		struct rook_task *next = x->t_next;
		if (rook__deque_push(&w->w_deque, x) < 0)
			inject(rt, x);
		x = next;
	}
	if (got > 1)
		rook__notify(rt);
	return first;
}

/* ---- yield queue -----------------------------------------------------
 * FIFO of tasks that yielded (and of LIFO-slot overflow). The owner appends
 * and pops under w_yield_lock; a thief takes half of it under the same lock,
 * so a task that never yields cannot strand the tasks queued behind it. A
 * runtime of one worker has no thieves and takes no lock (as its deque's
 * pop takes no fence). */

static inline void yield_lock(struct rook__worker *w)
{
	if (!w->w_deque.d_solo)
		rook__spin_lock(&w->w_yield_lock);
}

static inline void yield_unlock(struct rook__worker *w)
{
	if (!w->w_deque.d_solo)
		rook__spin_unlock(&w->w_yield_lock);
}

static inline __attribute__((always_inline)) void yield_push(struct rook__worker *w,
							     struct rook_task *t)
{
	t->t_next = NULL;
	yield_lock(w);
	bool was_empty = w->w_yield_n == 0;
	if (w->w_yield_tail)
		w->w_yield_tail->t_next = t;
	else
		w->w_yield_head = t;
	w->w_yield_tail = t;
	atomic_store_explicit(&w->w_yield_len, ++w->w_yield_n, memory_order_relaxed);
	yield_unlock(w);
	/* A parker re-checks yield queues after joining the idle set, so a
	 * notify when the queue becomes non-empty is enough. */
	if (was_empty && w->w_rt->rt_nworkers > 1)
		rook__notify(w->w_rt);
}

/* Take up to max tasks from the head; returns the first, chains the rest
 * through t_next. */
static struct rook_task *yield_take(struct rook__worker *v, int max)
{
	if (atomic_load_explicit(&v->w_yield_len, memory_order_relaxed) == 0)
		return NULL;
	yield_lock(v);
	struct rook_task *first = v->w_yield_head, *last = NULL, *t = first;
	int got = 0;
	while (t && got < max) {
		last = t;
		t = t->t_next;
		got++;
	}
	if (first) {
		v->w_yield_head = t;
		if (!t)
			v->w_yield_tail = NULL;
		last->t_next = NULL;
		v->w_yield_n -= got;
		atomic_store_explicit(&v->w_yield_len, v->w_yield_n, memory_order_relaxed);
	}
	yield_unlock(v);
	return first;
}

/* Owner: the head of its own yield queue (yield_take for one, unrolled:
 * every yield pops once). */
static struct rook_task *yield_pop(struct rook__worker *w)
{
	if (atomic_load_explicit(&w->w_yield_len, memory_order_relaxed) == 0)
		return NULL;
	yield_lock(w);
	struct rook_task *t = w->w_yield_head;
	if (t) {
		w->w_yield_head = t->t_next;
		if (!t->t_next)
			w->w_yield_tail = NULL;
		t->t_next = NULL;
		atomic_store_explicit(&w->w_yield_len, --w->w_yield_n, memory_order_relaxed);
	}
	yield_unlock(w);
	return t;
}

/* ---- making tasks runnable ------------------------------------------ */

void rook__schedule(struct rook_task *t, bool lifo)
{
	rook__schedule_on(rook__worker_self(), t, lifo);
}

void rook__schedule_on(struct rook__worker *w, struct rook_task *t, bool lifo)
{
	struct rook_rt *rt = t->t_rt;
	if (!w || w->w_rt != rt) {
		inject(rt, t);
		return;
	}
	if (lifo) {
		/* Pairs with the acquire exchange of a thief taking the slot. */
		t = atomic_exchange_explicit(&w->w_lifo, t, memory_order_acq_rel);
		if (!t)
			goto published;
	}
	/* Empty before the push: t is our own next task (see the top). */
	bool first = rook__deque_size(&w->w_deque) == 0;
	if (rook__deque_push(&w->w_deque, t) < 0) {
		inject(rt, t);
		return;
	}
	if (first && rt->rt_nworkers > 1) {
		/* Pairs with the seq_cst increment of rt_ndeep in park_sleep. */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&rt->rt_ndeep, memory_order_relaxed) == 0)
			return;
	}
published:
	if (rt->rt_nworkers > 1)
		rook__notify(rt);
}

void rook__schedule_fifo(struct rook_task *t)
{
	struct rook__worker *w = rook__worker_self();
	if (!w || w->w_rt != t->t_rt)
		inject(t->t_rt, t);
	else
		yield_push(w, t);
}

bool rook__worker_has_other_work(struct rook__worker *w)
{
	return atomic_load_explicit(&w->w_lifo, memory_order_relaxed) ||
	       atomic_load_explicit(&w->w_yield_len, memory_order_relaxed) > 0 ||
	       rook__deque_size(&w->w_deque) > 0 ||
	       atomic_load_explicit(&w->w_rt->rt_inj_len, memory_order_relaxed) > 0;
}

/* ---- timers ----------------------------------------------------------- */

/* Fire w's due timers; a woken task goes to the firing worker's LIFO slot. */
static void fire_timers(struct rook__worker *w, uint64_t now)
{
	if (atomic_load_explicit(&w->w_timers.h_next, memory_order_acquire) <= now) {
		int n = rook__timer_fire(&w->w_timers, now);
		struct rook__worker *self = rook__worker_entry();
		rook__diag_inc(&self->w_ds.d_timers_fired, (uint64_t)n);
		if (self->w_trace && n > 0)
			rook__trace_event(self, ROOK__TR_TIMERS, now, (uint64_t)n, 0);
	}
}

/* Earliest timer deadline of any worker (a racy snapshot). */
static uint64_t timers_next(struct rook_rt *rt)
{
	uint64_t next = UINT64_MAX;
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		uint64_t d =
		    atomic_load_explicit(&rt->rt_workers[i].w_timers.h_next, memory_order_acquire);
		if (d < next)
			next = d;
	}
	return next;
}

/* An idle worker takes over the due timers of every worker, so a timer
 * does not wait behind a worker busy with a long task. */
static void fire_all_timers(struct rook_rt *rt, uint64_t now)
{
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		fire_timers(&rt->rt_workers[i], now);
}

int rook__worker_timer_arm(struct rook__timer *tm)
{
	struct rook__worker *w = rook__worker_self();
	struct rook_rt *rt = w->w_rt;
	int r = rook__timer_arm(&w->w_timers, tm);
	if (r < 0)
		return r;
	rook__diag_inc(&w->w_ds.d_timers_armed, 1);
	/* A parked worker sleeping past this deadline must re-plan: wake one
	 * (it recomputes its timeout from every heap before parking again). */
	if (rt->rt_nworkers > 1 &&
	    tm->tm_deadline < atomic_load_explicit(&rt->rt_idle_deadline, memory_order_relaxed))
		rook__notify(rt);
	return 0;
}

/* ---- idle set and notify -------------------------------------------- */

void rook__notify(struct rook_rt *rt)
{
again:
	/* Pairs with the seq_cst increment of rt_nidle in park (Dekker). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&rt->rt_nspinning, memory_order_relaxed) != 0 ||
	    atomic_load_explicit(&rt->rt_nidle, memory_order_relaxed) == 0)
		return;
	int zero = 0;
	if (!atomic_compare_exchange_strong_explicit(&rt->rt_nspinning, &zero, 1,
						     memory_order_seq_cst, memory_order_relaxed))
		return;
	TEST_HOOK(ROOK__HOOK_NOTIFY_CLAIMED);
	rook__spin_lock(&rt->rt_idle_lock);
	if (rt->rt_idle_n == 0) {
		rook__spin_unlock(&rt->rt_idle_lock);
		TEST_HOOK(ROOK__HOOK_NOTIFY_EMPTY);
		atomic_fetch_sub_explicit(&rt->rt_nspinning, 1, memory_order_seq_cst);
		/* While our 1 stood no spinner existed, yet other notifies
		 * returned on it; a worker that parked meanwhile may have
		 * missed their work in its re-check (it sleeps for good with
		 * one worker). Look again (tools/models/worker_park.pml). */
		goto again;
	}
	struct rook__worker *w = &rt->rt_workers[rt->rt_idle[--rt->rt_idle_n]];
	w->w_idle_listed = false;
	/* Under the lock: idle_leave reads it under the same lock. */
	atomic_store_explicit(&w->w_woken_spinning, true, memory_order_relaxed);
	rook__spin_unlock(&rt->rt_idle_lock);
	atomic_fetch_sub_explicit(&rt->rt_nidle, 1, memory_order_seq_cst);
	rook__park_wake(w->w_io);
}

void rook__wake_all(struct rook_rt *rt)
{
	for (unsigned i = 0; i < rt->rt_nworkers; i++)
		rook__park_wake(rt->rt_workers[i].w_io);
}

/* Is anything runnable anywhere in rt? (the re-check before sleeping) */
static bool work_visible(struct rook_rt *rt)
{
	/* Pairs with the fence in rook__notify (Dekker, see the top). */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&rt->rt_inj_len, memory_order_seq_cst) > 0)
		return true;
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		struct rook__worker *v = &rt->rt_workers[i];
		if (rook__deque_size(&v->w_deque) > 0 ||
		    atomic_load_explicit(&v->w_lifo, memory_order_seq_cst) ||
		    atomic_load_explicit(&v->w_yield_len, memory_order_relaxed) > 0)
			return true;
	}
	return false;
}

/* Leave the idle set if still on it. Returns true if a notifier took us
 * off it (we then count as spinning). */
static bool idle_leave(struct rook__worker *w)
{
	struct rook_rt *rt = w->w_rt;
	bool removed = false;
	rook__spin_lock(&rt->rt_idle_lock);
	if (w->w_idle_listed) {
		for (unsigned i = 0; i < rt->rt_idle_n; i++) {
			if (rt->rt_idle[i] == w->w_index) {
				rt->rt_idle[i] = rt->rt_idle[--rt->rt_idle_n];
				break;
			}
		}
		w->w_idle_listed = false;
		removed = true;
	}
	bool woken = atomic_exchange_explicit(&w->w_woken_spinning, false, memory_order_relaxed);
	rook__spin_unlock(&rt->rt_idle_lock);
	if (removed)
		atomic_fetch_sub_explicit(&rt->rt_nidle, 1, memory_order_seq_cst);
	return woken;
}

/* Idle: look at every other worker's IO (sched/park.h): the most urgent
 * ROOK__RESCUE_* answer. */
static int rescue_others(struct rook__worker *w)
{
	struct rook_rt *rt = w->w_rt;
	int r = ROOK__RESCUE_NONE;
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		struct rook__worker *v = &rt->rt_workers[i];
		/* seq_cst: after our rt_ndeep increment (Dekker with the
		 * store of false in park_sleep and worker_poll's load). */
		if (i == w->w_index || atomic_load_explicit(&v->w_napping, memory_order_seq_cst))
			continue;
		int k = rook__park_rescue(rt->rt_io, i);
		if (k > r)
			r = k;
	}
	return r;
}

static void nap_loop(struct rook__worker *w, uint64_t next, uint64_t timeout);

/* Sleep up to timeout ns, first in naps of at most RESCUE_NS: between naps,
 * return if a notify took us off the idle set, a timer (deadline next) is
 * due, the runtime exits, or work is visible (a task stranded behind a long
 * task, see the protocol at the top); after DEEP_NAPS naps, deeply. Between
 * naps it drives the IO of a worker stuck in a long task (rescue_others);
 * while any worker runs with IO pending, naps are WATCH_NS and never deep:
 * that IO then waits at most about two naps plus a kernel tick. */
static void park_sleep(struct rook__worker *w, uint64_t next, uint64_t timeout)
{
	struct rook_rt *rt = w->w_rt;
	if (rt->rt_nworkers == 1) {
		rook__park_wait(w->w_io, timeout);
		return;
	}
	atomic_store_explicit(&w->w_napping, true, memory_order_relaxed);
	nap_loop(w, next, timeout);
	/* seq_cst: before our rt_ndeep load in worker_poll, so that a
	 * rescuer about to sleep deeply sees us busy or we see it (Dekker). */
	atomic_store_explicit(&w->w_napping, false, memory_order_seq_cst);
}

static void nap_loop(struct rook__worker *w, uint64_t next, uint64_t timeout)
{
	struct rook_rt *rt = w->w_rt;
	for (unsigned naps = 0;; naps++) {
		int rescue = rescue_others(w);
		if (rescue == ROOK__RESCUE_WORKED)
			return; /* tasks it woke are ours now */
		if (rescue == ROOK__RESCUE_WATCH)
			naps = 0;
		if (naps == DEEP_NAPS) {
			/* Pairs with the fence before the skipped notify in
			 * rook__schedule (work_visible fences too), and with
			 * the busy worker's check in worker_poll. */
			atomic_fetch_add_explicit(&rt->rt_ndeep, 1, memory_order_seq_cst);
			rescue = rescue_others(w);
			if (!work_visible(rt) && rescue == ROOK__RESCUE_NONE)
				rook__park_wait(w->w_io, timeout);
			atomic_fetch_sub_explicit(&rt->rt_ndeep, 1, memory_order_seq_cst);
			if (rescue == ROOK__RESCUE_NONE)
				return;
			naps = 0;
		}
		uint64_t nap = rescue == ROOK__RESCUE_WATCH ? WATCH_NS : RESCUE_NS;
		rook__park_wait(w->w_io, timeout < nap ? timeout : nap);
		if (timeout <= nap ||
		    atomic_load_explicit(&w->w_woken_spinning, memory_order_relaxed) ||
		    atomic_load_explicit(&rt->rt_exit, memory_order_acquire) || work_visible(rt))
			return;
		if (next != UINT64_MAX) {
			uint64_t now = rook__now();
			if (next <= now)
				return;
			timeout = next - now;
		}
	}
}

static bool trim_stop(void *rt)
{
	return work_visible(rt) ||
	       atomic_load_explicit(&((struct rook_rt *)rt)->rt_exit, memory_order_acquire);
}

static void park(struct rook__worker *w)
{
	struct rook_rt *rt = w->w_rt;
	rook__spin_lock(&rt->rt_idle_lock);
	rt->rt_idle[rt->rt_idle_n++] = w->w_index;
	w->w_idle_listed = true;
	rook__spin_unlock(&rt->rt_idle_lock);
	/* Pairs with the fence in rook__notify (see the protocol above). */
	atomic_fetch_add_explicit(&rt->rt_nidle, 1, memory_order_seq_cst);
	if (!work_visible(rt) && !atomic_load_explicit(&rt->rt_exit, memory_order_acquire)) {
		uint64_t next = timers_next(rt), now = 0, timeout = UINT64_MAX, wake = next;
		bool stop = false;
		uint64_t trim = rook__stack_trim_due(&rt->rt_stacks, &w->w_stacks);
		if (trim != UINT64_MAX) {
			/* Idle with stack memory to give back: give it when due,
			 * and wake for that however long nothing else happens. */
			if (rook__now() >= trim) {
				rook__stack_trim(&rt->rt_stacks, &w->w_stacks, rook__now(),
						 trim_stop, rt);
				stop = trim_stop(rt);
				trim = rook__stack_trim_due(&rt->rt_stacks, &w->w_stacks);
			}
			if (trim < wake)
				wake = trim;
		}
		if (wake != UINT64_MAX) {
			now = rook__now();
			timeout = wake > now ? wake - now : 0;
		}
		if (next != UINT64_MAX) {
			/* Publish our planned wake so earlier timers kick us. */
			uint64_t cur =
			    atomic_load_explicit(&rt->rt_idle_deadline, memory_order_relaxed);
			while (next < cur && !atomic_compare_exchange_weak_explicit(
						 &rt->rt_idle_deadline, &cur, next,
						 memory_order_relaxed, memory_order_relaxed))
				;
		}
		if (stop)
			timeout = 0; /* work arrived while trimming */
		if (timeout > 0) {
			rook__topo_contention(w);
			TEST_HOOK(ROOK__HOOK_PARK_SLEEP);
			rook__stat_add(w, ROOK__STAT_PARKS, 1);
			rook__diag_inc(&w->w_ds.d_parks, 1);
			uint64_t t0 = w->w_trace ? rook__now() : 0;
			park_sleep(w, wake, timeout);
			if (w->w_trace)
				rook__trace_event(w, ROOK__TR_PARK, t0, 0, rook__now() - t0);
		}
		if (next != UINT64_MAX) {
			uint64_t cur = next;
			atomic_compare_exchange_strong_explicit(&rt->rt_idle_deadline, &cur,
								UINT64_MAX, memory_order_relaxed,
								memory_order_relaxed);
			fire_all_timers(rt, rook__now());
		}
	}
	w->w_spinning = idle_leave(w);
}

/* ---- stealing --------------------------------------------------------- */

/* A victim's only queued task is its own next task (see the protocol at
 * the top): taken on a thief's last pass only, as the LIFO slot is, so a
 * chain of spawns is not pulled from core to core. */
static struct rook_task *steal_from(struct rook__worker *w, struct rook__worker *v, bool last_pass)
{
	int64_t size = rook__deque_size(&v->w_deque);
	if (size <= 0 || (size == 1 && !last_pass))
		return NULL;
	rook__diag_inc(&w->w_ds.d_steal_tries, 1);
	int64_t want = (size + 1) / 2;
	if (want > STEAL_MAX)
		want = STEAL_MAX;
	struct rook_task *first = NULL;
	int64_t got = 0;
	for (int tries = 0; got < want && tries < want + 4; tries++) {
		int lost;
		struct rook_task *t = rook__deque_steal(&v->w_deque, &lost);
		if (!t) {
			if (lost)
				continue;
			break;
		}
		got++;
		if (!first)
			first = t;
		else if (rook__deque_push(&w->w_deque, t) < 0)
			inject(w->w_rt, t);
	}
	if (got)
		rook__stat_add(w, ROOK__STAT_STEALS, got);
	rook__diag_inc(&w->w_ds.d_stolen, (uint64_t)got);
	if (w->w_trace && got)
		rook__trace_event(w, ROOK__TR_STEAL, rook__now(), (uint64_t)got, v->w_index);
	return first;
}

static struct rook_task *steal_any(struct rook__worker *w, bool last_pass)
{
	struct rook_rt *rt = w->w_rt;
	for (unsigned i = 0; i + 1 < rt->rt_nworkers; i++) {
		struct rook__worker *v = &rt->rt_workers[w->w_victims[i]];
		struct rook_task *t = steal_from(w, v, last_pass);
		if (t)
			return t;
		if (last_pass && atomic_load_explicit(&v->w_lifo, memory_order_relaxed)) {
			/* Pairs with the exchange in rook__schedule. */
			t = atomic_exchange_explicit(&v->w_lifo, NULL, memory_order_acq_rel);
			if (t)
				return t;
		}
		int n = atomic_load_explicit(&v->w_yield_len, memory_order_relaxed);
		if (n > 0 && (t = yield_take(v, n > 1 ? (n + 1) / 2 : 1))) {
			for (struct rook_task *x = t->t_next; x;) {
				struct rook_task *next = x->t_next;
				yield_push(w, x);
				x = next;
			}
			t->t_next = NULL;
			return t;
		}
	}
	return NULL;
}

/* ---- choosing the next task ------------------------------------------ */

static struct rook_task *lifo_take(struct rook__worker *w)
{
	if (!atomic_load_explicit(&w->w_lifo, memory_order_relaxed))
		return NULL;
	struct rook_task *t = atomic_exchange_explicit(&w->w_lifo, NULL, memory_order_acq_rel);
	if (t && ++w->w_lifo_runs > LIFO_MAX) {
		/* A ping-pong pair would monopolize the slot: make it stealable
		 * (the deque keeps fork-join depth-first; the fairness tick
		 * bounds how long older work waits). Measured: sending it to
		 * the back of the yield queue instead (Tokio's choice) takes
		 * ping_pong from 7.2M to 4.0M/s at threads=1 (1,000 pairs each
		 * wait behind all the others) for no gain in the bound. */
		w->w_lifo_runs = 0;
		if (rook__deque_push(&w->w_deque, t) < 0)
			yield_push(w, t);
		return NULL;
	}
	return t;
}

/* Whether the deque's oldest task has waited OLDEST_NS. Taking it on a tick
 * count (every 976th round) started a new subtree near the root of a
 * fork-join every ~50 us, each one more chain of live stacks: fib(35) peak
 * RSS 38 MiB against 5.5 without the rule. A task that sits at the top
 * keeps the top index (a steal, or a pop of the last task, moves it), so an
 * unchanged index over OLDEST_NS means the same task waited that long. */
static bool oldest_due(struct rook__worker *w)
{
	int64_t top = atomic_load_explicit(&w->w_deque.d_top, memory_order_relaxed);
	if (rook__deque_size(&w->w_deque) <= 0) {
		/* A pop from an empty deque leaves top, and the next push
		 * reuses its index for a new task. */
		w->w_old_top = -1;
		return false;
	}
	uint64_t now = rook__now();
	if (top != w->w_old_top) {
		w->w_old_top = top;
		w->w_old_since = now;
		return false;
	}
	return now - w->w_old_since >= OLDEST_NS;
}

/* Every FAIR_TICKS rounds: the queues a busy deque would starve. Out of
 * line, so that the hot round keeps fewer registers. */
__attribute__((noinline, cold)) static struct rook_task *fair_next(struct rook__worker *w)
{
	struct rook_task *t;
	int lost;
	w->w_fair_n = 0;
	if ((t = inj_take(w)) || (t = yield_pop(w)))
		return t;
	if ((++w->w_tick & (OLDEST_EVERY - 1)) == 0 && oldest_due(w) &&
	    (t = rook__deque_steal(&w->w_deque, &lost)))
		return t;
	return NULL;
}

static struct rook_task *local_next(struct rook__worker *w)
{
	struct rook_task *t;
	if (++w->w_fair_n >= FAIR_TICKS && (t = fair_next(w)))
		return t;
	if ((t = lifo_take(w)))
		return t;
	w->w_lifo_runs = 0;
	if ((t = rook__deque_pop(&w->w_deque)) || (t = yield_pop(w)) || (t = inj_take(w)))
		return t;
	return NULL;
}

/* Spin looking for work elsewhere, within the spinning budget. The budget
 * halves after a spin that found nothing and doubles after one that found
 * work: fork-join keeps long spins, while an IO-bound server, whose spins
 * find nothing, stops burning the CPU a load generator or a sidecar on the
 * same cores needs (25% of a 2-worker HTTP server's CPU went to the spin
 * loop; perf/NOTES.md, issue 14). */
static struct rook_task *search(struct rook__worker *w)
{
	struct rook_rt *rt = w->w_rt;
	if (!w->w_spinning) {
		int s = atomic_load_explicit(&rt->rt_nspinning, memory_order_relaxed);
		if (rt->rt_nworkers == 1 || 2 * (unsigned)s >= rt->rt_nworkers)
			return NULL;
		atomic_fetch_add_explicit(&rt->rt_nspinning, 1, memory_order_seq_cst);
		w->w_spinning = true;
	}
	struct rook_task *t = NULL;
	uint64_t start = 0;
	for (unsigned round = 0; rt->rt_nworkers > 1; round++) {
		bool last = false;
		if ((round & 15) == 15) {
			uint64_t now = rook__now();
			if (!start)
				start = now;
			else if (now - start > w->w_spin_ns)
				last = true;
		}
		if ((t = steal_any(w, last)) || (t = inj_take(w)))
			break;
		if (last || atomic_load_explicit(&rt->rt_exit, memory_order_relaxed))
			break;
		rook__cpu_relax();
	}
	if (t)
		w->w_spin_ns = w->w_spin_ns * 2 < SPIN_NS ? w->w_spin_ns * 2 : SPIN_NS;
	else
		w->w_spin_ns = w->w_spin_ns / 2 > SPIN_MIN_NS ? w->w_spin_ns / 2 : SPIN_MIN_NS;
	return t;
}

/* We found work (or give up) while counted as spinning. */
static void stop_spinning(struct rook__worker *w, bool found)
{
	w->w_spinning = false;
	if (atomic_fetch_sub_explicit(&w->w_rt->rt_nspinning, 1, memory_order_seq_cst) == 1 &&
	    found)
		rook__notify(w->w_rt);
}

static bool task_prepare(struct rook__worker *w, struct rook_task *t);
static struct rook_task *pick_local(struct rook__worker *w);

static struct rook_task *next_task(struct rook__worker *w)
{
	for (;;) {
		struct rook_task *t = pick_local(w);
		if (!t)
			t = search(w);
		if (w->w_spinning)
			stop_spinning(w, t != NULL);
		if (t && atomic_load_explicit(&t->t_state, memory_order_relaxed) == ROOK__T_NEW &&
		    !task_prepare(w, t))
			continue;
		if (t)
			return t;
		if (atomic_load_explicit(&w->w_rt->rt_exit, memory_order_acquire))
			return NULL;
		park(w);
	}
}

/* ---- running a task --------------------------------------------------- */

/* First run: give the task a stack, or finish it without running. */
static bool task_prepare(struct rook__worker *w, struct rook_task *t)
{
	if (atomic_load_explicit(&t->t_cancel, memory_order_acquire)) {
		rook__task_finish(t, -ECANCELED);
		rook__task_put(t);
		return false;
	}
	struct rook__stack *s = rook__stack_get(&w->w_rt->rt_stacks, &w->w_stacks);
	if (!s) {
		rook__task_finish(t, -ENOMEM);
		rook__task_put(t);
		return false;
	}
	rook__stat_add(w, ROOK__STAT_STACKS, 1);
	/* For overflow reports only: numbered in order of first run. */
	s->s_task_id = (w->w_next_id++ << 10) | w->w_index;
	rook__tdiag_reset(&s->s_diag);
	t->t_stack = s;
	t->t_sp = rook__ctx_make(s->s_top, rook__task_entry, t);
	atomic_store_explicit(&t->t_state, ROOK__T_STARTED, memory_order_relaxed);
	return true;
}

static void poll_siblings(struct rook__worker *w, uint64_t now);

/* Owner: IO completions and due timers, once per scheduling round. Besides
 * its own heap a worker looks at one other worker's heap per round (in
 * turn): a worker stalled in a long task, or preempted by the OS, then
 * does not hold back the timers armed on it while another one runs. A
 * ring with nothing queued or in flight can only deliver wake-ups and
 * remote requests: it is polled every IDLE_POLL_EVERY rounds (a poll is
 * 4.6 ns of the 31 ns of a yield between 10 tasks, measured). Inline in
 * pick_local: every yield and switch polls once. */
static inline void worker_poll(struct rook__worker *w)
{
	rook__diag_inc(&w->w_ds.d_hb, 1);
	const struct rook__park_io *io = w->w_io;
	if (io && (io->pi_busy || (++w->w_poll_tick & (IDLE_POLL_EVERY - 1)) == 0))
		rook__park_poll(w->w_io, !rook__worker_has_other_work(w));
	struct rook_rt *rt = w->w_rt;
	/* IO pending and every other worker asleep deeply: wake one to watch
	 * this worker's IO (park_sleep), in case the next task runs long.
	 * seq_cst: pairs with its rt_ndeep increment (Dekker, with the
	 * in-flight count io/ reads in its rescue check). */
	if (io && io->pi_busy && rt->rt_nworkers > 1 &&
	    atomic_load_explicit(&rt->rt_ndeep, memory_order_seq_cst) == (int)rt->rt_nworkers - 1)
		rook__notify(rt);
	uint64_t now = 0;
	if (atomic_load_explicit(&w->w_timers.h_next, memory_order_relaxed) != UINT64_MAX) {
		now = rook__now();
		fire_timers(w, now);
	}
	if (rt->rt_nworkers > 1)
		poll_siblings(w, now);
}

/* The other workers' part of a round: one sibling's timers, and a look at
 * a sibling that may be starved. now: rook__now() if read already, or 0. */
static void poll_siblings(struct rook__worker *w, uint64_t now)
{
	struct rook_rt *rt = w->w_rt;
	if (++w->w_timer_turn >= rt->rt_nworkers - 1)
		w->w_timer_turn = 0;
	struct rook__worker *v = &rt->rt_workers[w->w_victims[w->w_timer_turn]];
	if (atomic_load_explicit(&v->w_timers.h_next, memory_order_relaxed) != UINT64_MAX)
		fire_timers(v, now = now ? now : rook__now());
	/* A sibling that neither ran a round nor napped for STARVE_PEEK_NS is
	 * runnable but without a core, most likely behind us on ours: with a
	 * load generator on two cores both workers of a server end up on one,
	 * never sleep, and the kernel switched them once a tick, so the other
	 * one's connections waited 4 ms at p99. Give it the core. Siblings in
	 * turn: one look records a heartbeat, the next compares it. */
	if ((atomic_load_explicit(&w->w_ds.d_hb, memory_order_relaxed) & (STARVE_EVERY - 1)) == 0 &&
	    (now = now ? now : rook__now()) - w->w_starve_at >= STARVE_PEEK_NS) {
		struct rook__worker *s = &rt->rt_workers[w->w_victims[w->w_starve_who]];
		uint64_t hb = atomic_load_explicit(&s->w_ds.d_hb, memory_order_relaxed);
		if (hb == w->w_starve_hb &&
		    !atomic_load_explicit(&s->w_napping, memory_order_relaxed)) {
			sched_yield(); /* and look at the same one next time */
		} else if (rt->rt_nworkers > 2) {
			w->w_starve_who = (w->w_starve_who + 1) % (rt->rt_nworkers - 1);
			s = &rt->rt_workers[w->w_victims[w->w_starve_who]];
			hb = atomic_load_explicit(&s->w_ds.d_hb, memory_order_relaxed);
		}
		w->w_starve_hb = hb;
		w->w_starve_at = now;
		/* A worker that never parks is where a shared core costs most. */
		rook__topo_contention(w);
	}
}

/* Owner: the next local task, ready to switch to; NULL if none. */
static struct rook_task *pick_local(struct rook__worker *w)
{
	for (;;) {
		worker_poll(w);
		struct rook_task *t = local_next(w);
		if (!t || atomic_load_explicit(&t->t_state, memory_order_relaxed) != ROOK__T_NEW ||
		    task_prepare(w, t))
			return t;
	}
}

/* Runs on whichever context a switch lands in (the scheduler, a resumed
 * task, a new task): completes what the task that switched away asked for,
 * now that its context is saved. */
static void post_switch(struct rook__worker *w)
{
	struct rook_task *t = w->w_post_task;
	if (!t)
		return;
	w->w_post_task = NULL;
	if (!t->t_stack->s_guarded && rook__stack_sp_bad(t->t_stack, t->t_sp))
		rook__stack_overflow_abort(t->t_stack->s_task_id, w->w_rt->rt_stack_size);
	switch (w->w_post) {
	case ROOK__POST_YIELD:
		yield_push(w, t);
		break;
	case ROOK__POST_PARK: {
		uint8_t expect = ROOK__P_PARKING;
		/* Pairs with the exchange in rook__task_unpark: if the wake came
		 * first, the task is ours to run again. */
		if (!atomic_compare_exchange_strong_explicit(&t->t_park, &expect, ROOK__P_PARKED,
							     memory_order_acq_rel,
							     memory_order_acquire))
			rook__schedule(t, true);
		break;
	}
	case ROOK__POST_EXIT:
	case ROOK__POST_HANDBACK: {
		struct rook__stack *s = t->t_stack;
#ifdef ROOK_TSAN
		/* The ended task's few frames never return, and TSan's shadow
		 * stack of a fiber holds at most 65,536: a fiber serves
		 * SAN_FIBER_TASKS tasks, then a new one comes. One per task
		 * cost 1.2 ms each where page faults are dear (its state is
		 * mapped and cleared): a TSan test's 30 s ran 24k joins. */
		if (++s->s_san_tasks >= SAN_FIBER_TASKS) {
			rook__tsan_destroy(s->s_san_fiber);
			s->s_san_fiber = NULL;
			s->s_san_tasks = 0;
		}
#endif
		rook__stack_put(&w->w_rt->rt_stacks, &w->w_stacks, s);
		rook__stat_add(w, ROOK__STAT_STACKS, -1);
		t->t_stack = NULL;
		if (w->w_post == ROOK__POST_HANDBACK)
			w->w_handback = t;
		else
			rook__task_put(t);
		break;
	}
	case ROOK__POST_ADOPT:
		break; /* resumed by the child it runs (rook__task_adopt) */
	case ROOK__POST_NONE:
		abort(); /* a task switched out without saying why */
	}
}

/* Save the current context in *save_sp and switch to `to` (a prepared
 * task), or to the scheduler if to is NULL. fake: where ASan keeps the
 * current context's fake stack (NULL: this context ends). */
static void switch_to(struct rook__worker *w, void **save_sp, void **fake, struct rook_task *to)
{
	if (w->w_trace)
		rook__trace_switch(w, to);
	w->w_current = to;
	if (to) {
		struct rook__stack *s = to->t_stack;
		if (!s->s_san_fiber)
			s->s_san_fiber = rook__tsan_create();
		rook__tsan_switch(s->s_san_fiber);
		rook__asan_start(fake, s->s_lo, (size_t)(s->s_top - s->s_lo));
		rook__ctx_switch(save_sp, to->t_sp);
	} else {
		rook__tsan_switch(w->w_san_fiber);
		rook__asan_start(fake, w->w_asan_bottom, w->w_asan_size);
		rook__ctx_switch(save_sp, w->w_sched_sp);
	}
}

/* Task t leaves its worker for next (NULL: the scheduler); post is done
 * once its context is saved. Returns when t runs again. */
static void switch_from(struct rook__worker *w, struct rook_task *t, enum rook__post post,
			struct rook_task *next)
{
	w->w_post = post;
	w->w_post_task = t;
#ifdef ROOK_ASAN
	switch_to(w, &t->t_sp,
		  post == ROOK__POST_EXIT || post == ROOK__POST_HANDBACK ? NULL : &t->t_asan_fake,
		  next);
	/* Resumed, possibly on another worker: re-read the worker. */
	rook__asan_finish(t->t_asan_fake);
#else
	switch_to(w, &t->t_sp, NULL, next);
#endif
	post_switch(rook__worker_self());
}

/* A task that runs for the joiner that adopted it hands the worker back
 * to that joiner when it first switches out, whatever the reason. The
 * pair lives in the worker, beside w_current: a yield reads no more lines
 * than before. */
static struct rook_task *adopter_take(struct rook__worker *w, struct rook_task *t)
{
	if (w->w_adopted != t)
		return NULL;
	w->w_adopted = NULL; /* the joiner puts back its own pair (rook__task_adopt) */
	return w->w_adopter;
}

/* The running task gives up its worker: straight to the next local task if
 * there is one (one switch instead of two), else to the scheduler. */
__attribute__((noinline)) void rook__task_switch_out(enum rook__post post)
{
	/* Inline: before the switch; after it only switch_from's
	 * rook__worker_self call reads the worker again. */
	struct rook__worker *w = rook__worker_entry();
	struct rook_task *t = w->w_current, *next = adopter_take(w, t);
	if (!next)
		next = pick_local(w);
	else if (post == ROOK__POST_EXIT)
		post = ROOK__POST_HANDBACK;
	switch_from(w, t, post, next);
}

/* Every ADOPT_EVERY-th join takes the scheduler's way (polls, the fairness
 * tick): a fork-join whose joins all adopt would otherwise never look at
 * IO, timers or other queues. (A joiner with a deadline never adopts: its
 * wait's timer could not resume it while the child computes.) */
#define ADOPT_EVERY 64u

bool rook__task_adopt(struct rook__worker *w, struct rook_task *t)
{
	struct rook_task *j = w->w_current;
	if (rook__deque_peek(&w->w_deque) != t || ++w->w_adopts % ADOPT_EVERY == 0)
		return false;
	/* Ours alone once popped: no thief can start it. */
	if (rook__deque_pop(&w->w_deque) != t || !task_prepare(w, t))
		return false; /* a thief took it, or it ended without running */
	/* j may itself run for an adopter: keep that pair for when t hands
	 * the worker back (on this worker, at t's first switch out). */
	struct rook_task *adopted = w->w_adopted, *adopter = w->w_adopter;
	w->w_adopted = t;
	w->w_adopter = j;
	switch_from(w, j, ROOK__POST_ADOPT, t);
	w->w_adopted = adopted;
	w->w_adopter = adopter;
	if (w->w_handback != t)
		return false;
	w->w_handback = NULL;
	return true;
}

__attribute__((noinline)) void rook__task_yield(void)
{
	struct rook__worker *w = rook__worker_entry(); /* as in rook__task_switch_out */
	struct rook_task *next = adopter_take(w, w->w_current);
	/* pick_local polls IO and timers first, so a task they wake counts. */
	if (!next)
		next = pick_local(w);
	if (next) {
		switch_from(w, w->w_current, ROOK__POST_YIELD, next);
		return;
	}
	/* Nothing else to run: no switch, so check here what post_switch
	 * checks on every switch (an unguarded stack overflowed). */
	struct rook__stack *s = w->w_current->t_stack;
	if (!s->s_guarded && rook__stack_sp_bad(s, __builtin_frame_address(0)))
		rook__stack_overflow_abort(s->s_task_id, w->w_rt->rt_stack_size);
}

/* noinline and never suspends: the inline TLS read is safe here. */
__attribute__((noinline)) void rook__task_started(void)
{
	rook__asan_finish(NULL);
	post_switch(rook__worker_entry());
}

static void run_task(struct rook__worker *w, struct rook_task *t)
{
	w->w_post_task = NULL;
	switch_to(w, &w->w_sched_sp, &w->w_asan_fake, t);
	rook__asan_finish(w->w_asan_fake);
	post_switch(w);
}

void *rook__worker_main(void *arg)
{
	struct rook__worker *w = arg;
	rook__tls_worker = w;
	/* "rook-w3" in ps, top, gdb and /proc/PID/task/TID/comm. */
	char name[16];
	snprintf(name, sizeof(name), "rook-w%u", w->w_index);
	(void)pthread_setname_np(pthread_self(), name);
	w->w_san_fiber = rook__tsan_current();
	pthread_attr_t attr;
	if (pthread_getattr_np(pthread_self(), &attr) == 0) {
		void *addr;
		size_t size;
		if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
			w->w_asan_bottom = addr;
			w->w_asan_size = size;
		}
		pthread_attr_destroy(&attr);
	}
	rook__stack_sigaltstack_setup(&w->w_altstack);
	rook__topo_worker_start(w);
	w->w_init_err = rook__park_init(w->w_rt->rt_io, w->w_index, &w->w_io);
	/* Pairs with the acquire load in rook_rt_start. */
	atomic_fetch_add_explicit(&w->w_rt->rt_started, 1, memory_order_release);
	if (w->w_init_err == 0) {
		struct rook_task *t;
		while ((t = next_task(w)))
			run_task(w, t);
		rook__park_fini(w->w_io);
	}
	rook__stat_flush(w);
	rook__topo_worker_stop(w);
	rook__stack_sigaltstack_teardown(w->w_altstack);
	w->w_altstack = NULL;
	rook__tls_worker = NULL;
	return NULL;
}

int rook__worker_init(struct rook__worker *w, struct rook_rt *rt, unsigned index)
{
	memset(w, 0, sizeof(*w));
	w->w_old_top = -1;
	/* w_rt first: rook__worker_fini, also run after a failed init, needs it. */
	w->w_rt = rt;
	w->w_index = index;
	w->w_cpu = -1;
	w->w_spin_ns = SPIN_NS;
	w->w_next_id = 1;
	int r = rook__deque_init(&w->w_deque, 8);
	if (r < 0)
		return r;
	w->w_deque.d_solo = rt->rt_nworkers == 1;
	return rook__timer_heap_init(&w->w_timers);
}

void rook__worker_fini(struct rook__worker *w)
{
	rook__stack_cache_drain(&w->w_rt->rt_stacks, &w->w_stacks);
	rook__task_cache_drain(&w->w_tasks);
	rook__deque_destroy(&w->w_deque);
	rook__timer_heap_fini(&w->w_timers);
	rook__free(w->w_victims);
	w->w_victims = NULL;
}
