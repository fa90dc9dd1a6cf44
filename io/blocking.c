/* SPDX-License-Identifier: MIT */
/*
 * rook_blocking: a process-wide pool of threads for code that blocks or
 * burns CPU (asyncio's run_in_executor). The pool starts empty, creates a
 * thread when a job is queued and no idle thread is left to take it (up to
 * pool_max), and an idle thread exits after pool_idle_ms without work.
 *
 * A job lives on the calling task's stack. Its state (QUEUED, RUNNING,
 * DONE) and j_token change only under pool_lock. The pool thread that ran
 * it marks it DONE and copies the waiter and token under the lock, then
 * claims and wakes after unlocking, without touching the job again. A
 * cancelled caller, under the lock: unlinks a QUEUED job (fn never runs),
 * takes the result of a DONE one, or begins a non-cancellable wait on a
 * RUNNING one (publishing the new token in j_token) and waits for it: fn
 * cannot be interrupted, and the job must outlive it.
 *
 * fork: the child has none of the pool's threads, and none of the tasks
 * whose jobs were queued, but would inherit the counts (an "idle" thread
 * that never takes the next job) and maybe a locked pool_lock. An atfork
 * child handler, registered at the pool's first use, empties the pool, as
 * libuv does for its threadpool: a new runtime in the child starts with a
 * fresh pool.
 */
#include "io/blocking.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include <rook.h>

#include "io/ring.h"
#include "sched/cpus.h"
#include "sched/task.h"
#include "sched/wait.h"

#define POOL_MAX_DEFAULT     64u
#define POOL_IDLE_MS_DEFAULT 10000ul

enum { J_QUEUED, J_RUNNING, J_DONE };

struct job {
	struct job *j_next;
	rook_fn j_fn;
	void *j_arg;
	struct rook__waiter *j_w;
	struct rook__io *j_io;     /* the caller's worker ring: wakes it */
	struct rook__ring_req j_q; /* the wake request posted there */
	uint32_t j_token;          /* under pool_lock */
	int j_state;               /* under pool_lock */
	int j_res;                 /* under pool_lock */
};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv;
static struct job *pool_head, *pool_tail; /* under pool_lock */
static unsigned pool_nthreads, pool_nidle, pool_nqueued;
static unsigned pool_max = POOL_MAX_DEFAULT;
static unsigned long pool_idle_ms = POOL_IDLE_MS_DEFAULT;

static void pool_cv_init(void)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&pool_cv, &a);
	pthread_condattr_destroy(&a);
}

/* In the child of fork: only the forking thread exists. The parent's
 * mutex and condvar may be held or have waiters: made anew, not unlocked.
 * pool_max and pool_idle_ms (the configuration) are kept. */
static void pool_child(void)
{
	pthread_mutex_init(&pool_lock, NULL);
	pool_cv_init();
	pool_head = pool_tail = NULL;
	pool_nthreads = pool_nidle = pool_nqueued = 0;
}

static void pool_init(void)
{
	pool_cv_init();
	/* Without the handler a child could hang in rook_blocking: run
	 * without it then (ENOMEM is the only failure). */
	(void)pthread_atfork(NULL, NULL, pool_child);
}

/* Under pool_lock. */
static struct job *job_pop(void)
{
	struct job *j = pool_head;
	if (j) {
		pool_head = j->j_next;
		if (!pool_head)
			pool_tail = NULL;
		pool_nqueued--;
	}
	return j;
}

/* Under pool_lock; true if j was still queued. */
static bool job_unlink(struct job *j)
{
	struct job **pp = &pool_head, *prev = NULL;
	while (*pp && *pp != j) {
		prev = *pp;
		pp = &(*pp)->j_next;
	}
	if (!*pp)
		return false;
	*pp = j->j_next;
	if (pool_tail == j)
		pool_tail = prev;
	pool_nqueued--;
	return true;
}

static void deadline_after(struct timespec *ts, unsigned long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void run_job(struct job *j)
{
	int res = j->j_fn(j->j_arg);
	pthread_mutex_lock(&pool_lock);
	j->j_res = res;
	j->j_state = J_DONE;
	struct rook__waiter *w = j->j_w;
	uint32_t token = j->j_token;
	pthread_mutex_unlock(&pool_lock);
	/* A stale token (the caller was cancelled and saw DONE) fails the
	 * claim harmlessly: waiters are type-stable. Once claimed, the caller
	 * stays suspended until woken, so j is still there; the wake itself is
	 * done by a worker: waking from here would touch the runtime, which may
	 * be freed as soon as the task has run to its end. */
	if (rook__wait_claim(w, token, res)) {
		j->j_q = (struct rook__ring_req){.q_kind = ROOK__REQ_WAKE, .q_waiter = w};
		rook__ring_post(j->j_io, &j->j_q);
	}
}

static void *pool_main(void *arg)
{
	(void)arg;
	(void)pthread_setname_np(pthread_self(), "rook-blocking");
	pthread_mutex_lock(&pool_lock);
	for (;;) {
		struct job *j;
		while (!(j = job_pop())) {
			struct timespec ts;
			deadline_after(&ts, pool_idle_ms);
			pool_nidle++;
			int e = pthread_cond_timedwait(&pool_cv, &pool_lock, &ts);
			pool_nidle--;
			if (e == ETIMEDOUT && !pool_head) {
				pool_nthreads--;
				pthread_mutex_unlock(&pool_lock);
				return NULL;
			}
		}
		j->j_state = J_RUNNING;
		pthread_mutex_unlock(&pool_lock);
		run_job(j);
		pthread_mutex_lock(&pool_lock);
	}
}

/* Under pool_lock: make sure a thread will take the job just queued.
 * Returns 0, or -EAGAIN if no thread exists and none could be created. */
static int pool_grow(void)
{
	if (pool_nidle >= pool_nqueued) {
		pthread_cond_signal(&pool_cv);
		return 0;
	}
	if (pool_nthreads < pool_max) {
		pthread_t th;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		rook__cpus_attr(&a); /* not the pinned core of the worker asking */
		int e = pthread_create(&th, &a, pool_main, NULL);
		pthread_attr_destroy(&a);
		if (e == 0) {
			pool_nthreads++;
			return 0;
		}
	}
	if (pool_nidle)
		pthread_cond_signal(&pool_cv);
	return pool_nthreads ? 0 : -EAGAIN;
}

/* The caller's wait ended with reason (the job's result if the pool
 * claimed it): settle the job and return what the call returns. */
static int job_finish(struct job *j, struct rook__waiter *w, int reason)
{
	pthread_mutex_lock(&pool_lock);
	if (j->j_state == J_QUEUED && job_unlink(j)) {
		pthread_mutex_unlock(&pool_lock);
		return reason;
	}
	if (j->j_state == J_DONE) {
		int res = j->j_res;
		pthread_mutex_unlock(&pool_lock);
		return res;
	}
	j->j_token = rook__wait_begin(w, false);
	uint32_t token = j->j_token;
	pthread_mutex_unlock(&pool_lock);
	return rook__wait_park(w, token);
}

int rook_blocking(rook_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	struct rook_task *self = rook_self();
	if (!self)
		return fn(arg); /* a plain thread may block itself */
	int r = rook__wait_check();
	if (r)
		return r;
	pthread_once(&pool_once, pool_init);
	struct rook__waiter *w = &self->t_waiter;
	struct rook__io *me = rook__io_self();
	struct job j = {.j_fn = fn, .j_arg = arg, .j_w = w, .j_io = me, .j_state = J_QUEUED};
	pthread_mutex_lock(&pool_lock);
	j.j_token = rook__wait_begin(w, rook__wait_cancellable());
	uint32_t token = j.j_token;
	if (pool_tail)
		pool_tail->j_next = &j;
	else
		pool_head = &j;
	pool_tail = &j;
	pool_nqueued++;
	r = pool_grow();
	if (r < 0) {
		job_unlink(&j);
		rook__wait_claim(w, token, r);
		pthread_mutex_unlock(&pool_lock);
		rook__wait_wake(w);
		return rook__wait_park(w, token);
	}
	pthread_mutex_unlock(&pool_lock);
	r = rook__wait_park(w, token);
	/* Claimed by the pool (DONE: its result) or by a canceller. */
	return job_finish(&j, w, r);
}

unsigned rook__blocking_threads(void)
{
	pthread_mutex_lock(&pool_lock);
	unsigned n = pool_nthreads;
	pthread_mutex_unlock(&pool_lock);
	return n;
}

int rook__blocking_configure(unsigned max_threads, unsigned long idle_ms)
{
	pthread_mutex_lock(&pool_lock);
	if (max_threads)
		pool_max = max_threads;
	if (idle_ms)
		pool_idle_ms = idle_ms;
	pthread_mutex_unlock(&pool_lock);
	return 0;
}
