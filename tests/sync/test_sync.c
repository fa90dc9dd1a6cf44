/* SPDX-License-Identifier: MIT */
/*
 * Mutex, semaphore, event and condition variable (DESIGN.md
 * "Synchronization"; SEMANTICS.md sections I-L, cases 72-88): FIFO
 * hand-off, ownership errors, cancelled waiters that hold nothing and lose
 * nothing, races of cancel with release, bounded release, event set/clear,
 * condition waits that always return holding the mutex; plus a mutex
 * counter from every worker, a semaphore bounding concurrency, and a
 * condition-variable producer/consumer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sync/sync.h"

static void pause_briefly(void)
{
	if (rook_self())
		rook_yield();
	else
		sched_yield();
}

#define WAIT_UNTIL(cond)                                                                           \
	do {                                                                                       \
		while (!(cond))                                                                    \
			pause_briefly();                                                           \
	} while (0)

static void join_ok(struct rook_task *t)
{
	int st = -1;
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
}

/* A task doing one blocking call and recording the result and an order. */
struct op {
	struct rook_mutex *o_m;
	struct rook_sem *o_s;
	struct rook_event *o_e;
	struct rook_cond *o_c;
	int o_id;
	int o_rc;
	bool o_owned_after; /* cond: held the mutex on return */
	int *o_log;         /* appends o_id here when done (one worker) */
	int *o_nlog;
	_Atomic int o_done;
};

static void log_id(struct op *o)
{
	if (o->o_log)
		o->o_log[(*o->o_nlog)++] = o->o_id;
}

static int mutex_locker(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_mutex_lock(o->o_m);
	if (o->o_rc == 0) {
		log_id(o);
		T_CHECK_EQ(rook_mutex_unlock(o->o_m), 0);
	}
	atomic_store(&o->o_done, 1);
	return 0;
}

static int sem_acquirer(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_sem_acquire(o->o_s);
	if (o->o_rc == 0)
		log_id(o);
	atomic_store(&o->o_done, 1);
	return 0;
}

static int event_waiter(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_event_wait(o->o_e);
	log_id(o);
	atomic_store(&o->o_done, 1);
	return 0;
}

static int cond_waiter(void *arg)
{
	struct op *o = arg;
	T_CHECK_EQ(rook_mutex_lock(o->o_m), 0);
	o->o_rc = rook_cond_wait(o->o_c, o->o_m);
	o->o_owned_after = rook_mutex_trylock(o->o_m) == -EDEADLK;
	log_id(o);
	T_CHECK_EQ(rook_mutex_unlock(o->o_m), 0);
	atomic_store(&o->o_done, 1);
	return 0;
}

/* ---- arguments ------------------------------------------------------------ */

Test(sync, calls_fail_with_einval_when_arguments_misused, .timeout = 30)
{
	cr_assert_eq(rook_mutex_create(NULL), -EINVAL);
	cr_assert_eq(rook_mutex_lock(NULL), -EINVAL);
	cr_assert_eq(rook_mutex_trylock(NULL), -EINVAL);
	cr_assert_eq(rook_mutex_unlock(NULL), -EINVAL);
	cr_assert_eq(rook_sem_create(NULL, 0, 0), -EINVAL);
	cr_assert_eq(rook_sem_acquire(NULL), -EINVAL);
	cr_assert_eq(rook_sem_try_acquire(NULL), -EINVAL);
	cr_assert_eq(rook_sem_release(NULL), -EINVAL);
	cr_assert_eq(rook_event_create(NULL), -EINVAL);
	cr_assert_eq(rook_event_wait(NULL), -EINVAL);
	cr_assert_eq(rook_event_is_set(NULL), false);
	cr_assert_eq(rook_cond_create(NULL), -EINVAL);
	rook_event_set(NULL);
	rook_event_clear(NULL);
	rook_cond_signal(NULL);
	rook_cond_broadcast(NULL);
	rook_mutex_destroy(NULL);
	rook_sem_destroy(NULL);
	rook_event_destroy(NULL);
	rook_cond_destroy(NULL);

	struct rook_mutex *m;
	struct rook_cond *c;
	cr_assert_eq(rook_mutex_create(&m), 0);
	cr_assert_eq(rook_cond_create(&c), 0);
	cr_assert_eq(rook_cond_wait(NULL, m), -EINVAL);
	cr_assert_eq(rook_cond_wait(c, NULL), -EINVAL);
	rook_cond_destroy(c);
	rook_mutex_destroy(m);

	rook__alloc_fail_nth(1);
	cr_assert_eq(rook_mutex_create(&m), -ENOMEM);
	rook__alloc_fail_nth(0);
}

/* ---- 72: FIFO lock hand-off ---------------------------------------------------- */

static int case72_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_task *t[3];
	struct op o[3];
	int log[3], nlog = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	for (int i = 0; i < 2; i++) {
		o[i] = (struct op){.o_m = m, .o_id = i + 1, .o_log = log, .o_nlog = &nlog};
		T_CHECK_EQ(rook_spawn(&t[i], mutex_locker, &o[i]), 0);
		WAIT_UNTIL(rook__mutex_waiters(m) == (size_t)i + 1);
	}
	/* No barging while waiters are queued. */
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	T_CHECK_EQ(rook_mutex_trylock(m), -EBUSY); /* handed to c1 already */
	WAIT_UNTIL(nlog >= 1);                     /* c1 ran (c2 may have too) */
	o[2] = (struct op){.o_m = m, .o_id = 3, .o_log = log, .o_nlog = &nlog};
	T_CHECK_EQ(rook_spawn(&t[2], mutex_locker, &o[2]), 0);
	for (int i = 0; i < 3; i++)
		join_ok(t[i]);
	T_CHECK_EQ(nlog, 3);
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(log[i], i + 1);
	T_CHECK_EQ(rook_mutex_trylock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case72_lock_waiters_acquire_in_arrival_order, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case72_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 73: unlock unlocked / by non-owner, recursive lock --------------------------- */

static void *case73_thread(void *arg)
{
	struct rook_mutex *m = arg;
	intptr_t bad = 0;

	bad += rook_mutex_unlock(m) != -EPERM; /* owned by the main thread */
	bad += rook_mutex_trylock(m) != -EBUSY;
	return (void *)bad;
}

Test(sync, case73_unlock_by_non_owner_eperm_and_relock_edeadlk, .timeout = 30)
{
	struct rook_mutex *m;
	pthread_t th;
	void *bad;

	cr_assert_eq(rook_mutex_create(&m), 0);
	cr_assert_eq(rook_mutex_unlock(m), -EPERM, "unlock of an unlocked mutex");
	cr_assert_eq(rook_mutex_lock(m), 0);
	cr_assert_eq(rook_mutex_lock(m), -EDEADLK);
	cr_assert_eq(rook_mutex_trylock(m), -EDEADLK);
	cr_assert_eq(pthread_create(&th, NULL, case73_thread, m), 0);
	cr_assert_eq(pthread_join(th, &bad), 0);
	cr_assert_eq(bad, NULL);
	cr_assert_eq(rook_mutex_unlock(m), 0);
	cr_assert_eq(rook_mutex_unlock(m), -EPERM);
	rook_mutex_destroy(m);
}

/* A thread that exits holding a mutex: a later thread (its waiter may sit
 * at the same TLS address) is not the owner; it gets -EBUSY, not
 * -EDEADLK, and its unlock is -EPERM. */
static void *lock_and_exit(void *arg)
{
	return (void *)(intptr_t)rook_mutex_lock(arg);
}

static void *not_the_owner(void *arg)
{
	struct rook_mutex *m = arg;
	if (rook_mutex_trylock(m) != -EBUSY)
		return (void *)1;
	if (rook_mutex_unlock(m) != -EPERM)
		return (void *)2;
	return NULL;
}

Test(sync, a_thread_after_an_exited_owner_does_not_own_its_mutex, .timeout = 30)
{
	struct rook_mutex *m;
	cr_assert_eq(rook_mutex_create(&m), 0);
	for (int i = 0; i < 20; i++) {
		pthread_t th;
		void *r;
		if (i == 0) {
			cr_assert_eq(pthread_create(&th, NULL, lock_and_exit, m), 0);
			cr_assert_eq(pthread_join(th, &r), 0);
			cr_assert_eq(r, NULL);
		}
		cr_assert_eq(pthread_create(&th, NULL, not_the_owner, m), 0);
		cr_assert_eq(pthread_join(th, &r), 0);
		cr_assert_eq(r, NULL, "thread %d: step %d", i, (int)(intptr_t)r);
	}
	/* The mutex stays locked by the dead owner: only destroy remains. */
	rook_mutex_destroy(m);
}

/* Ownership is the task's, not the worker thread's. */
static int task_unlocks(void *arg)
{
	return rook_mutex_unlock(arg);
}

static int case73_task_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	T_CHECK_EQ(rook_spawn(&t, task_unlocks, m), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EPERM); /* same worker thread, another task */
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case73_owner_is_the_task_not_the_worker_thread, .timeout = 30)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case73_task_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 74: a cancelled waiter is removed; the lock stays held ----------------------- */

static int case74_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_task *t, *t2;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	struct op o = {.o_m = m};
	T_CHECK_EQ(rook_spawn(&t, mutex_locker, &o), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1);
	T_CHECK_EQ(rook_cancel(t), 0);
	join_ok(t);
	T_CHECK_EQ(o.o_rc, -ECANCELED);
	T_CHECK_EQ(rook__mutex_waiters(m), 0);
	T_CHECK_EQ(rook_spawn(&t2, task_unlocks, m), 0);
	int st = 0;
	T_CHECK_EQ(rook_join(t2, &st), 0);
	T_CHECK_EQ(st, -EPERM); /* still ours */
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case74_cancelled_lock_waiter_removed_and_lock_kept, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case74_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 75: cancel vs release: never zero or two holders ------------------------------ */

struct race75 {
	struct rook_mutex *r_m;
	_Atomic int r_holders;
	_Atomic int r_max;
	_Atomic long r_acquired;
};

static int race75_locker(void *arg)
{
	struct race75 *r = arg;
	int rc = rook_mutex_lock(r->r_m);
	if (rc != 0) {
		T_CHECK_EQ(rc, -ECANCELED);
		return 0;
	}
	int h = atomic_fetch_add(&r->r_holders, 1) + 1;
	if (h > atomic_load(&r->r_max))
		atomic_store(&r->r_max, h);
	atomic_fetch_add(&r->r_acquired, 1);
	atomic_fetch_sub(&r->r_holders, 1);
	T_CHECK_EQ(rook_mutex_unlock(r->r_m), 0);
	return 0;
}

struct cancel_arg {
	struct rook_task *c_t;
	_Atomic int c_go;
};

static void *canceller_thread(void *arg)
{
	struct cancel_arg *c = arg;
	while (!atomic_load(&c->c_go))
		;
	rook_cancel(c->c_t);
	return NULL;
}

static int case75_main(void *arg)
{
	struct race75 *r = arg;
	long rounds = scaled(3000, 30);

	T_CHECK_EQ(rook_mutex_create(&r->r_m), 0);
	for (long k = 0; k < rounds; k++) {
		struct rook_task *b, *c;
		struct cancel_arg ca = {0};
		pthread_t th;

		T_CHECK_EQ(rook_mutex_lock(r->r_m), 0);
		T_CHECK_EQ(rook_spawn(&b, race75_locker, r), 0);
		WAIT_UNTIL(rook__mutex_waiters(r->r_m) == 1);
		T_CHECK_EQ(rook_spawn(&c, race75_locker, r), 0);
		WAIT_UNTIL(rook__mutex_waiters(r->r_m) == 2);
		ca.c_t = b;
		T_CHECK_EQ(pthread_create(&th, NULL, canceller_thread, &ca), 0);
		atomic_store(&ca.c_go, 1);
		T_CHECK_EQ(rook_mutex_unlock(r->r_m), 0); /* races the cancel of b */
		join_ok(b);
		join_ok(c);
		T_CHECK_EQ(pthread_join(th, NULL), 0);
		/* The lock ended free: nobody leaked ownership. */
		T_CHECK_EQ(rook_mutex_trylock(r->r_m), 0);
		T_CHECK_EQ(rook_mutex_unlock(r->r_m), 0);
	}
	T_CHECK_EQ(atomic_load(&r->r_max), 1);
	T_CHECK(atomic_load(&r->r_acquired) >= rounds); /* c always got it */
	rook_mutex_destroy(r->r_m);
	return 0;
}

Test(sync, case75_cancel_racing_unlock_gives_exactly_one_holder_stress, .timeout = 120)
{
	int fds = fd_count();
	static struct race75 r;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case75_main, &r), 0);
	expect_clean_shutdown(fds);
}

/* A first waiter granted the lock and then cancelled keeps it (returns 0);
 * the second waiter gets it next. */
static int case75_granted_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_task *b, *c;
	int log[2], nlog = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	struct op ob = {.o_m = m, .o_id = 1, .o_log = log, .o_nlog = &nlog};
	struct op oc = {.o_m = m, .o_id = 2, .o_log = log, .o_nlog = &nlog};
	T_CHECK_EQ(rook_spawn(&b, mutex_locker, &ob), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1);
	T_CHECK_EQ(rook_spawn(&c, mutex_locker, &oc), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 2);
	T_CHECK_EQ(rook_mutex_unlock(m), 0); /* grants b */
	T_CHECK_EQ(rook_cancel(b), 0);       /* before b runs */
	join_ok(b);
	join_ok(c);
	T_CHECK_EQ(ob.o_rc, 0);
	T_CHECK_EQ(oc.o_rc, 0);
	T_CHECK_EQ(nlog, 2);
	T_CHECK_EQ(log[0], 1);
	T_CHECK_EQ(log[1], 2);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case75_granted_then_cancelled_waiter_keeps_lock_and_passes_it_on, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case75_granted_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 77: semaphore value rules ----------------------------------------------------- */

Test(sync, case77_sem_value_rules, .timeout = 30)
{
	struct rook_sem *s = NULL;

	cr_assert_eq(rook_sem_create(&s, 5, 3), -EINVAL);
	cr_assert_eq(s, NULL);
	cr_assert_eq(rook_sem_create(&s, 0, 0), 0);
	cr_assert_eq(rook_sem_try_acquire(s), -EAGAIN, "value 0 is locked");
	cr_assert_eq(rook_sem_release(s), 0);
	cr_assert_eq(rook_sem_try_acquire(s), 0);
	rook_sem_destroy(s);
	cr_assert_eq(rook_sem_create(&s, 3, 3), 0);
	cr_assert_eq(rook__sem_value(s), 3);
	rook_sem_destroy(s);
}

/* ---- 78: acquire decrements; release wakes exactly one ------------------------------- */

static int case78_main(void *arg)
{
	struct rook_sem *s;
	struct rook_task *t[3];
	struct op o[3];
	int log[3], nlog = 0;

	T_CHECK_EQ(rook_sem_create(&s, 3, 0), 0);
	T_CHECK_EQ(rook_sem_acquire(s), 0);
	T_CHECK_EQ(rook_sem_acquire(s), 0);
	T_CHECK_EQ(rook__sem_value(s), 1);
	for (int i = 0; i < 3; i++) {
		o[i] = (struct op){.o_s = s, .o_id = i, .o_log = log, .o_nlog = &nlog};
		T_CHECK_EQ(rook_spawn(&t[i], sem_acquirer, &o[i]), 0);
	}
	WAIT_UNTIL(rook__sem_waiters(s) == 2);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook__sem_value(s), 0); /* handed over, not counted */
	for (int i = 0; i < 3; i++)
		join_ok(t[i]);
	T_CHECK_EQ(nlog, 3);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook__sem_value(s), 1);
	rook_sem_destroy(s);
	return 0;
}

Test(sync, case78_release_hands_one_permit_to_one_waiter, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case78_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 79: bounded release above max ------------------------------------------------------ */

struct race79 {
	struct rook_sem *r_s;
	pthread_barrier_t r_bar;
	_Atomic int r_ok, r_over;
};

static void *race79_thread(void *arg)
{
	struct race79 *r = arg;
	pthread_barrier_wait(&r->r_bar);
	int rc = rook_sem_release(r->r_s);
	if (rc == 0)
		atomic_fetch_add(&r->r_ok, 1);
	else if (rc == -EOVERFLOW)
		atomic_fetch_add(&r->r_over, 1);
	return NULL;
}

Test(sync, case79_bounded_release_above_max_returns_eoverflow, .timeout = 60)
{
	struct rook_sem *s;

	cr_assert_eq(rook_sem_create(&s, 1, 1), 0);
	cr_assert_eq(rook_sem_release(s), -EOVERFLOW);
	cr_assert_eq(rook__sem_value(s), 1);
	cr_assert_eq(rook_sem_try_acquire(s), 0);
	cr_assert_eq(rook_sem_release(s), 0);
	rook_sem_destroy(s);

	/* Two threads release at max - 1: one succeeds, one overflows. */
	for (int k = 0; k < scaled(300, 10); k++) {
		struct race79 r = {0};
		pthread_t th[2];
		cr_assert_eq(rook_sem_create(&r.r_s, 1, 2), 0);
		pthread_barrier_init(&r.r_bar, NULL, 2);
		for (int i = 0; i < 2; i++)
			cr_assert_eq(pthread_create(&th[i], NULL, race79_thread, &r), 0);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&r.r_bar);
		cr_assert_eq(atomic_load(&r.r_ok), 1);
		cr_assert_eq(atomic_load(&r.r_over), 1);
		cr_assert_eq(rook__sem_value(r.r_s), 2);
		rook_sem_destroy(r.r_s);
	}

	/* Unbounded: release past UINT_MAX overflows too. */
	cr_assert_eq(rook_sem_create(&s, UINT32_MAX, 0), 0);
	cr_assert_eq(rook_sem_release(s), -EOVERFLOW);
	rook_sem_destroy(s);
}

/* ---- 80: FIFO, no barging ------------------------------------------------------------------ */

struct fifo80 {
	struct rook_sem *f_s;
	int f_id;
	int *f_log, *f_nlog;
};

static int fifo80_task(void *arg)
{
	struct fifo80 *f = arg;
	for (int round = 1; round <= 2; round++) {
		T_CHECK_EQ(rook_sem_acquire(f->f_s), 0);
		f->f_log[(*f->f_nlog)++] = f->f_id * 10 + round;
		T_CHECK_EQ(rook_sem_release(f->f_s), 0);
	}
	return 0;
}

static int case80_main(void *arg)
{
	struct rook_sem *s;
	struct rook_task *t[3];
	struct fifo80 f[3];
	int log[6], nlog = 0;

	T_CHECK_EQ(rook_sem_create(&s, 1, 1), 0);
	T_CHECK_EQ(rook_sem_acquire(s), 0);
	for (int i = 0; i < 3; i++) {
		f[i] = (struct fifo80){.f_s = s, .f_id = i + 1, .f_log = log, .f_nlog = &nlog};
		T_CHECK_EQ(rook_spawn(&t[i], fifo80_task, &f[i]), 0);
		WAIT_UNTIL(rook__sem_waiters(s) == (size_t)i + 1);
	}
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook_sem_try_acquire(s), -EAGAIN); /* no barging */
	for (int i = 0; i < 3; i++)
		join_ok(t[i]);
	static const int want[6] = {11, 21, 31, 12, 22, 32};
	T_CHECK_EQ(nlog, 6);
	for (int i = 0; i < 6; i++)
		T_CHECK_EQ(log[i], want[i]);
	T_CHECK_EQ(rook__sem_value(s), 1);
	rook_sem_destroy(s);
	return 0;
}

Test(sync, case80_sem_is_fifo_and_releaser_goes_to_the_back, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case80_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 81: cancelled sem waiters skipped; granted ones keep the permit ------------------------ */

static int case81_main(void *arg)
{
	struct rook_sem *s;
	struct rook_task *t[4];
	struct op o[4];

	T_CHECK_EQ(rook_sem_create(&s, 0, 0), 0);
	for (int i = 0; i < 4; i++) {
		o[i] = (struct op){.o_s = s, .o_id = i};
		T_CHECK_EQ(rook_spawn(&t[i], sem_acquirer, &o[i]), 0);
		WAIT_UNTIL(rook__sem_waiters(s) == (size_t)i + 1);
	}
	T_CHECK_EQ(rook_cancel(t[0]), 0);
	T_CHECK_EQ(rook_cancel(t[1]), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	join_ok(t[0]);
	join_ok(t[1]);
	join_ok(t[2]);
	T_CHECK_EQ(o[0].o_rc, -ECANCELED);
	T_CHECK_EQ(o[1].o_rc, -ECANCELED);
	T_CHECK_EQ(o[2].o_rc, 0);
	T_CHECK_EQ(atomic_load(&o[3].o_done), 0);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	join_ok(t[3]);
	T_CHECK_EQ(o[3].o_rc, 0);

	/* Granted, then cancelled before it runs: it holds the permit (0). */
	o[0] = (struct op){.o_s = s};
	T_CHECK_EQ(rook_spawn(&t[0], sem_acquirer, &o[0]), 0);
	WAIT_UNTIL(rook__sem_waiters(s) == 1);
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook_cancel(t[0]), 0);
	join_ok(t[0]);
	T_CHECK_EQ(o[0].o_rc, 0);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook_sem_release(s), 0); /* its holder gives it back */
	T_CHECK_EQ(rook_sem_try_acquire(s), 0);
	rook_sem_destroy(s);
	return 0;
}

Test(sync, case81_cancelled_sem_waiters_skipped_and_no_permit_leaks, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case81_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 82: wait on a set event; a cancelled waiter is removed ------------------------------- */

static int case82_main(void *arg)
{
	struct rook_event *e;
	struct rook_task *t;

	T_CHECK_EQ(rook_event_create(&e), 0);
	T_CHECK(!rook_event_is_set(e));
	struct op o = {.o_e = e};
	T_CHECK_EQ(rook_spawn(&t, event_waiter, &o), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 1);
	T_CHECK_EQ(rook_cancel(t), 0);
	join_ok(t);
	T_CHECK_EQ(o.o_rc, -ECANCELED);
	T_CHECK_EQ(rook__event_waiters(e), 0);
	rook_event_set(e);
	T_CHECK(rook_event_is_set(e));
	T_CHECK_EQ(rook_event_wait(e), 0);
	T_CHECK_EQ(rook_event_wait(e), 0);
	rook_event_destroy(e);
	return 0;
}

Test(sync, case82_wait_on_set_event_returns_at_once_and_cancel_removes_waiter, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case82_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 83: set wakes all waiters, on every thread ------------------------------------------- */

static void *event_thread(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_event_wait(o->o_e);
	atomic_store(&o->o_done, 1);
	return NULL;
}

static int case83_main(void *arg)
{
	struct rook_event *e;
	struct rook_task *t[16];
	struct op o[18];
	pthread_t th[2];

	T_CHECK_EQ(rook_event_create(&e), 0);
	for (int i = 0; i < 18; i++)
		o[i] = (struct op){.o_e = e, .o_rc = 1};
	for (int i = 0; i < 16; i++)
		T_CHECK_EQ(rook_spawn(&t[i], event_waiter, &o[i]), 0);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(pthread_create(&th[i], NULL, event_thread, &o[16 + i]), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 18);
	rook_event_set(e);
	for (int i = 0; i < 16; i++)
		join_ok(t[i]);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 18; i++)
		T_CHECK_EQ(o[i].o_rc, 0);
	rook_event_destroy(e);
	return 0;
}

Test(sync, case83_event_set_wakes_every_waiter, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case83_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 84: set then clear before the waiters run ----------------------------------------------- */

static int case84_main(void *arg)
{
	struct rook_event *e;
	struct rook_task *t;
	struct op o;

	T_CHECK_EQ(rook_event_create(&e), 0);
	o = (struct op){.o_e = e, .o_rc = 1};
	T_CHECK_EQ(rook_spawn(&t, event_waiter, &o), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 1);
	rook_event_set(e);
	rook_event_clear(e);
	rook_event_set(e);
	rook_event_set(e);
	T_CHECK_EQ(rook__event_waiters(e), 0);
	join_ok(t);
	T_CHECK_EQ(o.o_rc, 0);
	T_CHECK(rook_event_is_set(e));

	rook_event_clear(e);
	o = (struct op){.o_e = e, .o_rc = 1};
	T_CHECK_EQ(rook_spawn(&t, event_waiter, &o), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 1);
	rook_event_set(e);
	rook_event_clear(e); /* the waiter was already released */
	join_ok(t);
	T_CHECK_EQ(o.o_rc, 0);
	T_CHECK(!rook_event_is_set(e));
	rook_event_destroy(e);
	return 0;
}

Test(sync, case84_set_then_clear_still_wakes_waiters, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case84_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 85: cond misuse and predicate loops ------------------------------------------------------
 */

static void *case85_thread(void *arg)
{
	struct op *o = arg;
	/* The mutex is held by the test's thread, not this one. */
	o->o_rc = rook_cond_wait(o->o_c, o->o_m);
	return NULL;
}

Test(sync, case85_cond_wait_without_the_mutex_returns_eperm, .timeout = 30)
{
	struct rook_mutex *m;
	struct rook_cond *c;
	pthread_t th;

	cr_assert_eq(rook_mutex_create(&m), 0);
	cr_assert_eq(rook_cond_create(&c), 0);
	cr_assert_eq(rook_cond_wait(c, m), -EPERM, "unlocked");
	cr_assert_eq(rook_mutex_lock(m), 0);
	struct op o = {.o_m = m, .o_c = c};
	cr_assert_eq(pthread_create(&th, NULL, case85_thread, &o), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(o.o_rc, -EPERM, "locked by another thread");
	cr_assert_eq(rook_mutex_unlock(m), 0);
	/* Signals with nobody waiting are no-ops. */
	rook_cond_signal(c);
	rook_cond_broadcast(c);
	rook_cond_destroy(c);
	rook_mutex_destroy(m);
}

/* A predicate waiter: keeps waiting through spurious wake-ups. */
struct pred85 {
	struct rook_mutex *p_m;
	struct rook_cond *p_c;
	int p_value;
	int p_wakeups;
	int p_seen;
};

static int pred85_task(void *arg)
{
	struct pred85 *p = arg;
	T_CHECK_EQ(rook_mutex_lock(p->p_m), 0);
	while (p->p_value < 3) {
		T_CHECK_EQ(rook_cond_wait(p->p_c, p->p_m), 0);
		p->p_wakeups++;
	}
	p->p_seen = p->p_value;
	T_CHECK_EQ(rook_mutex_unlock(p->p_m), 0);
	return 0;
}

static int case85_pred_main(void *arg)
{
	struct pred85 p = {0};
	struct rook_task *t;

	T_CHECK_EQ(rook_mutex_create(&p.p_m), 0);
	T_CHECK_EQ(rook_cond_create(&p.p_c), 0);
	T_CHECK_EQ(rook_spawn(&t, pred85_task, &p), 0);
	for (int i = 1; i <= 3; i++) {
		WAIT_UNTIL(rook__cond_waiters(p.p_c) == 1);
		T_CHECK_EQ(rook_mutex_lock(p.p_m), 0);
		p.p_value = i;
		rook_cond_signal(p.p_c);
		T_CHECK_EQ(rook_mutex_unlock(p.p_m), 0);
	}
	join_ok(t);
	T_CHECK_EQ(p.p_wakeups, 3); /* two wake-ups with a false predicate */
	T_CHECK_EQ(p.p_seen, 3);
	rook_cond_destroy(p.p_c);
	rook_mutex_destroy(p.p_m);
	return 0;
}

Test(sync, case85_predicate_loop_waits_through_false_wakeups, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case85_pred_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 86: signal wakes one, FIFO; waiters get the mutex after the signaller ----------------- */

static int case86_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_cond *c;
	struct rook_task *t[3];
	struct op o[3];
	int log[3], nlog = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_cond_create(&c), 0);
	for (int i = 0; i < 3; i++) {
		o[i] =
		    (struct op){.o_m = m, .o_c = c, .o_id = i + 1, .o_log = log, .o_nlog = &nlog};
		T_CHECK_EQ(rook_spawn(&t[i], cond_waiter, &o[i]), 0);
		WAIT_UNTIL(rook__cond_waiters(c) == (size_t)i + 1);
	}
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	rook_cond_signal(c);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1); /* woken, queued on m */
	T_CHECK_EQ(nlog, 0);
	T_CHECK_EQ(rook__cond_waiters(c), 2);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	join_ok(t[0]);
	T_CHECK_EQ(nlog, 1);
	T_CHECK_EQ(log[0], 1);
	rook_cond_broadcast(c);
	join_ok(t[1]);
	join_ok(t[2]);
	T_CHECK_EQ(nlog, 3);
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(o[i].o_rc, 0);
		T_CHECK(o[i].o_owned_after);
	}
	rook_cond_destroy(c);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case86_signal_wakes_oldest_and_mutex_passes_after_signaller, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case86_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 87: a cancelled cond wait returns holding the mutex ---------------------------------------
 */

static int case87_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_cond *c;
	struct rook_task *t;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_cond_create(&c), 0);
	struct op o = {.o_m = m, .o_c = c};
	T_CHECK_EQ(rook_spawn(&t, cond_waiter, &o), 0);
	WAIT_UNTIL(rook__cond_waiters(c) == 1);
	T_CHECK_EQ(rook_cancel(t), 0);
	join_ok(t);
	T_CHECK_EQ(o.o_rc, -ECANCELED);
	T_CHECK(o.o_owned_after);
	T_CHECK_EQ(rook__cond_waiters(c), 0);

	/* Contested: the mutex is held when the cancel arrives; the waiter
	 * waits for it (uncancellably) and returns holding it. */
	o = (struct op){.o_m = m, .o_c = c};
	T_CHECK_EQ(rook_spawn(&t, cond_waiter, &o), 0);
	WAIT_UNTIL(rook__cond_waiters(c) == 1);
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1);
	T_CHECK_EQ(atomic_load(&o.o_done), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	join_ok(t);
	T_CHECK_EQ(o.o_rc, -ECANCELED);
	T_CHECK(o.o_owned_after);
	T_CHECK_EQ(rook_mutex_trylock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	rook_cond_destroy(c);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync, case87_cancelled_cond_wait_returns_holding_the_mutex, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case87_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 88: a notify is not lost to a waiter cancelled at the same moment --------------------- */

struct race88 {
	struct rook_mutex *r_m;
	struct rook_cond *r_c;
	int r_tokens; /* under r_m: notifies not yet consumed */
	int r_consumed;
};

static int race88_waiter(void *arg)
{
	struct race88 *r = arg;
	T_CHECK_EQ(rook_mutex_lock(r->r_m), 0);
	int rc = 0;
	while (r->r_tokens == 0 && rc == 0)
		rc = rook_cond_wait(r->r_c, r->r_m);
	if (rc == 0) {
		r->r_tokens--;
		r->r_consumed++;
	} else {
		T_CHECK_EQ(rc, -ECANCELED);
	}
	T_CHECK_EQ(rook_mutex_unlock(r->r_m), 0);
	return 0;
}

static int case88_main(void *arg)
{
	struct race88 r = {0};
	long rounds = scaled(2000, 20);

	T_CHECK_EQ(rook_mutex_create(&r.r_m), 0);
	T_CHECK_EQ(rook_cond_create(&r.r_c), 0);
	for (long k = 0; k < rounds; k++) {
		struct rook_task *w1, *w2;
		struct cancel_arg ca = {0};
		pthread_t th;

		r.r_tokens = 0;
		r.r_consumed = 0;
		T_CHECK_EQ(rook_spawn(&w1, race88_waiter, &r), 0);
		T_CHECK_EQ(rook_spawn(&w2, race88_waiter, &r), 0);
		WAIT_UNTIL(rook__cond_waiters(r.r_c) == 2);
		ca.c_t = w1;
		T_CHECK_EQ(pthread_create(&th, NULL, canceller_thread, &ca), 0);
		T_CHECK_EQ(rook_mutex_lock(r.r_m), 0);
		r.r_tokens = 1;
		atomic_store(&ca.c_go, 1);
		rook_cond_signal(r.r_c); /* races the cancel of w1 */
		T_CHECK_EQ(rook_mutex_unlock(r.r_m), 0);
		T_CHECK_EQ(pthread_join(th, NULL), 0);
		join_ok(w1);
		/* The token was taken by w1 (signal won) or goes to w2. */
		T_CHECK_EQ(rook_mutex_lock(r.r_m), 0);
		int consumed = r.r_consumed;
		T_CHECK_EQ(rook_mutex_unlock(r.r_m), 0);
		if (consumed == 0) {
			join_ok(w2);
		} else {
			T_CHECK_EQ(rook_cancel(w2), 0);
			join_ok(w2);
		}
		T_CHECK_EQ(r.r_consumed, 1);
	}
	rook_cond_destroy(r.r_c);
	rook_mutex_destroy(r.r_m);
	return 0;
}

Test(sync, case88_notify_not_lost_when_waiter_cancelled_at_once_stress, .timeout = 120)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case88_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- mutex counter from every worker ----------------------------------------------------------
 */

struct counter {
	struct rook_mutex *c_m;
	long c_value; /* under c_m; plain on purpose (TSan checks the mutex) */
	long c_per;
};

static int counter_task(void *arg)
{
	struct counter *c = arg;
	for (long i = 0; i < c->c_per; i++) {
		T_CHECK_EQ(rook_mutex_lock(c->c_m), 0);
		c->c_value++;
		if ((i & 63) == 0)
			rook_yield(); /* hold it across a suspension now and then */
		T_CHECK_EQ(rook_mutex_unlock(c->c_m), 0);
	}
	return 0;
}

static void *counter_thread(void *arg)
{
	struct counter *c = arg;
	for (long i = 0; i < c->c_per; i++) {
		if (rook_mutex_lock(c->c_m) != 0)
			continue;
		c->c_value++;
		rook_mutex_unlock(c->c_m);
	}
	return NULL;
}

static int counter_main(void *arg)
{
	struct counter *c = arg;
	enum { NT = 8 };
	struct rook_task *t[NT];
	pthread_t th;

	T_CHECK_EQ(rook_mutex_create(&c->c_m), 0);
	T_CHECK_EQ(pthread_create(&th, NULL, counter_thread, c), 0);
	for (int i = 0; i < NT; i++)
		T_CHECK_EQ(rook_spawn(&t[i], counter_task, c), 0);
	for (int i = 0; i < NT; i++)
		join_ok(t[i]);
	T_CHECK_EQ(pthread_join(th, NULL), 0);
	T_CHECK_EQ(c->c_value, c->c_per * (NT + 1));
	rook_mutex_destroy(c->c_m);
	return 0;
}

Test(sync, mutex_counter_exact_when_tasks_on_all_workers_increment, .timeout = 120)
{
	int fds = fd_count();
	/* 8 tasks + 1 plain thread; 100,000 increments by the tasks. */
	static struct counter c;
	c.c_per = scaled(12500, 10);

	cr_assert_eq(run_with(0, ROOK_NO_PIN, counter_main, &c), 0);
	expect_clean_shutdown(fds);
}

/* ---- semaphore bounds concurrency ---------------------------------------------------------------
 */

struct bound {
	struct rook_sem *b_s;
	_Atomic int b_now, b_max;
};

static int bound_task(void *arg)
{
	struct bound *b = arg;
	for (int k = 0; k < 20; k++) {
		T_CHECK_EQ(rook_sem_acquire(b->b_s), 0);
		int now = atomic_fetch_add(&b->b_now, 1) + 1;
		int m = atomic_load(&b->b_max);
		while (now > m && !atomic_compare_exchange_weak(&b->b_max, &m, now))
			;
		for (int i = 0; i < 3; i++)
			rook_yield();
		atomic_fetch_sub(&b->b_now, 1);
		T_CHECK_EQ(rook_sem_release(b->b_s), 0);
	}
	return 0;
}

static int bound_main(void *arg)
{
	struct bound *b = arg;
	enum { NT = 50, LIMIT = 3 };
	struct rook_task *t[NT];

	T_CHECK_EQ(rook_sem_create(&b->b_s, LIMIT, LIMIT), 0);
	for (int i = 0; i < NT; i++)
		T_CHECK_EQ(rook_spawn(&t[i], bound_task, b), 0);
	for (int i = 0; i < NT; i++)
		join_ok(t[i]);
	T_CHECK_EQ(atomic_load(&b->b_max), LIMIT);
	T_CHECK_EQ(rook__sem_value(b->b_s), LIMIT);
	rook_sem_destroy(b->b_s);
	return 0;
}

Test(sync, sem_bounds_concurrency_to_its_limit, .timeout = 60)
{
	int fds = fd_count();
	static struct bound b;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, bound_main, &b), 0);
	expect_clean_shutdown(fds);
}

/* ---- condition-variable producer/consumer -----------------------------------------------------
 */

#define PC_SLOTS 4

struct cpc {
	struct rook_mutex *p_m;
	struct rook_cond *p_not_full, *p_not_empty;
	long p_buf[PC_SLOTS];
	int p_head, p_len;
	long p_per;   /* items per producer */
	long p_sum;   /* under p_m */
	long p_taken; /* under p_m */
	long p_total;
};

static int cpc_producer(void *arg)
{
	struct cpc *p = arg;
	for (long i = 1; i <= p->p_per; i++) {
		T_CHECK_EQ(rook_mutex_lock(p->p_m), 0);
		while (p->p_len == PC_SLOTS)
			T_CHECK_EQ(rook_cond_wait(p->p_not_full, p->p_m), 0);
		p->p_buf[(p->p_head + p->p_len++) % PC_SLOTS] = i;
		rook_cond_signal(p->p_not_empty);
		T_CHECK_EQ(rook_mutex_unlock(p->p_m), 0);
	}
	return 0;
}

static int cpc_consumer(void *arg)
{
	struct cpc *p = arg;
	for (;;) {
		T_CHECK_EQ(rook_mutex_lock(p->p_m), 0);
		while (p->p_len == 0 && p->p_taken < p->p_total)
			T_CHECK_EQ(rook_cond_wait(p->p_not_empty, p->p_m), 0);
		if (p->p_taken == p->p_total) {
			rook_cond_broadcast(p->p_not_empty); /* release the others */
			T_CHECK_EQ(rook_mutex_unlock(p->p_m), 0);
			return 0;
		}
		p->p_sum += p->p_buf[p->p_head];
		p->p_head = (p->p_head + 1) % PC_SLOTS;
		p->p_len--;
		p->p_taken++;
		rook_cond_signal(p->p_not_full);
		T_CHECK_EQ(rook_mutex_unlock(p->p_m), 0);
	}
}

static int cpc_main(void *arg)
{
	enum { NP = 4, NC = 4 };
	struct cpc p = {.p_per = scaled(20000, 20)};
	struct rook_task *t[NP + NC];

	p.p_total = p.p_per * NP;
	T_CHECK_EQ(rook_mutex_create(&p.p_m), 0);
	T_CHECK_EQ(rook_cond_create(&p.p_not_full), 0);
	T_CHECK_EQ(rook_cond_create(&p.p_not_empty), 0);
	for (int i = 0; i < NC; i++)
		T_CHECK_EQ(rook_spawn(&t[i], cpc_consumer, &p), 0);
	for (int i = 0; i < NP; i++)
		T_CHECK_EQ(rook_spawn(&t[NC + i], cpc_producer, &p), 0);
	for (int i = 0; i < NP + NC; i++)
		join_ok(t[i]);
	T_CHECK_EQ(p.p_sum, NP * (p.p_per * (p.p_per + 1) / 2));
	rook_cond_destroy(p.p_not_full);
	rook_cond_destroy(p.p_not_empty);
	rook_mutex_destroy(p.p_m);
	return 0;
}

Test(sync, cond_producer_consumer_moves_every_item, .timeout = 120)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cpc_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* An event destroyed as soon as a wait on it saw it set, while the set
 * that did it may still be returning (its unlock came after its store):
 * rook.h allows it. ASan and TSan saw the set's unlock on freed memory. */
static int set_it(void *arg)
{
	rook_event_set(arg);
	return 0;
}

static int destroy_after_wait(void *arg)
{
	(void)arg;
	for (int i = 0; i < (int)scaled(5000, 10); i++) {
		struct rook_event *e;
		struct rook_task *t;
		T_CHECK_EQ(rook_event_create(&e), 0);
		T_CHECK_EQ(rook_spawn(&t, set_it, e), 0);
		if (i % 2) {
			T_CHECK_EQ(rook_event_wait(e), 0);
		} else {
			while (!rook_event_is_set(e))
				T_CHECK_EQ(rook_yield(), 0);
		}
		rook_event_destroy(e);
		T_CHECK_EQ(rook_join(t, NULL), 0);
	}
	return 0;
}

Test(sync, an_event_destroyed_once_seen_set_while_its_set_returns, .timeout = 120)
{
	cr_assert_eq(run_with(2, ROOK_NO_PIN, destroy_after_wait, NULL), 0);
}
