/* SPDX-License-Identifier: MIT */
/*
 * Stale handles (issue 11, item 1). A task slot is reused by the next
 * spawn, so a handle kept past its join names the slot's next task unless
 * every use checks the handle's generation: these tests join A, spawn B
 * into A's slot (one worker: the freed slot is the first one handed out
 * again) and check that each call on A fails with -EINVAL (or reports A
 * finished) without touching B. Also: two joins of one handle racing a
 * reuse, a handle listed twice in a gather, and rook_wait_for leaving no
 * child behind when its deadline cannot be pushed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"
#include "sched/wait.h"

static int quick(void *arg)
{
	return (int)(intptr_t)arg;
}

static _Atomic int go;

/* Runs until go is set; -ECANCELED if it was cancelled instead. */
static int until_go(void *arg)
{
	while (!atomic_load_explicit(&go, memory_order_acquire))
		if (rook_yield() != 0)
			return -ECANCELED;
	return (int)(intptr_t)arg;
}

#define ROUNDS 50

static int stale_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		struct rook_task *a, *b;
		int st = -1;
		atomic_store(&go, 0);
		T_CHECK_EQ(rook_spawn(&a, quick, (void *)(intptr_t)7), 0);
		T_CHECK_EQ(rook_join(a, &st), 0);
		T_CHECK_EQ(st, 7);
		T_CHECK_EQ(rook_spawn(&b, until_go, (void *)(intptr_t)42), 0);
		/* Every call on the stale a must leave b alone. */
		T_CHECK_EQ(rook_cancel(a), -EINVAL);
		T_CHECK(rook_done(a)); /* a did finish */
		T_CHECK(!rook_done(b));
		st = -1;
		T_CHECK_EQ(rook_join(a, &st), -EINVAL);
		T_CHECK_EQ(st, -1);
		rook_detach(a);
		T_CHECK_EQ(rook_gather(&a, 1, NULL), -EINVAL);
		T_CHECK_EQ(rook_wait_any(&a, 1), -EINVAL);
		atomic_store(&go, 1);
		T_CHECK_EQ(rook_join(b, &st), 0);
		T_CHECK_EQ(st, 42); /* not cancelled, not joined by a's calls */
	}
	return 0;
}

Test(handles, stale_handle_does_not_name_the_slots_next_task, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, stale_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- two joins of one handle ---------------------------------------- */

struct dj {
	struct rook_task *target;
	_Atomic int ok, einval, other;
	struct rook_task *_Atomic spawned; /* the winner's next task */
};

/* Join the shared target; the winner at once spawns a task, which (one
 * worker, LIFO slot cache) lands in the target's freed slot. */
static int joiner(void *arg)
{
	struct dj *d = arg;
	int st = -1;
	int r = rook_join(d->target, &st);
	if (r == 0) {
		T_CHECK_EQ(st, 5);
		struct rook_task *n;
		T_CHECK_EQ(rook_spawn(&n, until_go, (void *)(intptr_t)9), 0);
		atomic_store(&d->spawned, n);
		atomic_fetch_add(&d->ok, 1);
	} else if (r == -EINVAL) {
		atomic_fetch_add(&d->einval, 1);
	} else {
		atomic_fetch_add(&d->other, 1);
	}
	return 0;
}

static int double_join_main(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		struct dj d = {0};
		struct rook_task *j1, *j2;
		atomic_store(&go, 0);
		T_CHECK_EQ(rook_spawn(&d.target, until_go, (void *)(intptr_t)5), 0);
		T_CHECK_EQ(rook_spawn(&j1, joiner, &d), 0);
		T_CHECK_EQ(rook_spawn(&j2, joiner, &d), 0);
		T_CHECK_EQ(rook_yield(), 0); /* both joiners park on the target */
		atomic_store(&go, 1);
		T_CHECK_EQ(rook_join(j1, NULL), 0);
		T_CHECK_EQ(rook_join(j2, NULL), 0);
		T_CHECK_EQ(atomic_load(&d.ok), 1);
		T_CHECK_EQ(atomic_load(&d.einval), 1);
		T_CHECK_EQ(atomic_load(&d.other), 0);
		struct rook_task *n = atomic_load(&d.spawned);
		int st = -1;
		if (n) {
			/* The loser must not have consumed the winner's task. */
			T_CHECK_EQ(rook_join(n, &st), 0);
			T_CHECK_EQ(st, 9);
		}
	}
	return 0;
}

Test(handles, concurrent_joins_release_once_and_spare_the_next_task, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, double_join_main, NULL), 0);
	cr_assert_eq(run_with(2, 0, double_join_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- gather with a duplicate ----------------------------------------- */

static int dup_main(void *arg)
{
	(void)arg;
	struct rook_task *a, *b;
	T_CHECK_EQ(rook_spawn(&a, quick, (void *)(intptr_t)1), 0);
	T_CHECK_EQ(rook_spawn(&b, quick, (void *)(intptr_t)2), 0);
	struct rook_task *ts[3] = {a, b, a};
	int st[3] = {-1, -1, -1};
	T_CHECK_EQ(rook_gather(ts, 3, st), -EINVAL);
	T_CHECK_EQ(st[0], -1); /* nothing stored, nothing released */
	int s = -1;
	T_CHECK_EQ(rook_join(a, &s), 0);
	T_CHECK_EQ(s, 1);
	T_CHECK_EQ(rook_join(b, &s), 0);
	T_CHECK_EQ(s, 2);
	/* The same with the tasks still running while gather is refused. */
	atomic_store(&go, 0);
	T_CHECK_EQ(rook_spawn(&a, until_go, (void *)(intptr_t)3), 0);
	struct rook_task *ts2[2] = {a, a};
	T_CHECK_EQ(rook_gather(ts2, 2, NULL), -EINVAL);
	atomic_store(&go, 1);
	T_CHECK_EQ(rook_gather(&a, 1, &s), 0);
	T_CHECK_EQ(s, 3);
	return 0;
}

Test(handles, gather_refuses_a_duplicated_handle_and_releases_none, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, dup_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- wait_for when the deadline cannot be pushed --------------------- */

static _Atomic int child_ran;

static int child(void *arg)
{
	(void)arg;
	atomic_store(&child_ran, 1);
	return 0;
}

static int nospc_main(void *arg)
{
	(void)arg;
	int pushed = 0;
	while (rook_deadline_push(rook_now() + FOREVER) == 0)
		pushed++;
	T_CHECK_EQ(pushed, ROOK_MAX_SCOPES);
	int st = -1;
	T_CHECK_EQ(rook_wait_for(child, NULL, ROOK_SEC, &st), -ENOSPC);
	T_CHECK_EQ(st, -1);
	/* No child is left behind: the deadline is pushed before the spawn,
	 * so nothing was spawned. (Before, the child was spawned, cancelled
	 * and detached: on a second worker it could already be running, and
	 * kept running after the call returned; timing-dependent, so this
	 * test did not fail reliably before the fix.) */
	while (pushed-- > 0)
		rook_deadline_pop();
	for (int i = 0; i < 10; i++)
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(atomic_load(&child_ran), 0);
	return 0;
}

Test(handles, wait_for_without_room_for_its_deadline_spawns_nothing, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, nospc_main, NULL), 0);
	cr_assert_eq(run_with(2, 0, nospc_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A mutex whose owner ended without unlocking it, and whose slot went to
 * the next task: that task must not own the mutex (the owner word holds
 * the slot's waiter address, the same for both). */
struct dead_owner {
	struct rook_mutex *d_m;
	uintptr_t d_waiter; /* the task's waiter address */
	int d_trylock, d_unlock, d_lock;
};

static int lock_and_die(void *arg)
{
	struct dead_owner *d = arg;
	d->d_waiter = (uintptr_t)rook__waiter_self();
	return rook_mutex_lock(d->d_m);
}

static int heir(void *arg)
{
	struct dead_owner *d = arg;
	d->d_waiter = (uintptr_t)rook__waiter_self();
	d->d_trylock = rook_mutex_trylock(d->d_m);
	d->d_unlock = rook_mutex_unlock(d->d_m);
	T_CHECK_EQ(rook_deadline_push(rook_now() + ROOK_MSEC), 0);
	d->d_lock = rook_mutex_lock(d->d_m);
	rook_deadline_pop();
	return 0;
}

static int dead_owner_main(void *arg)
{
	(void)arg;
	int reused = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct dead_owner a = {0}, b = {0};
		struct rook_task *t;
		int st = -1;
		T_CHECK_EQ(rook_mutex_create(&a.d_m), 0);
		b.d_m = a.d_m;
		T_CHECK_EQ(rook_spawn(&t, lock_and_die, &a), 0);
		T_CHECK_EQ(rook_join(t, &st), 0);
		T_CHECK_EQ(st, 0);
		T_CHECK_EQ(rook_spawn(&t, heir, &b), 0);
		T_CHECK_EQ(rook_join(t, &st), 0);
		reused += a.d_waiter == b.d_waiter;
		T_CHECK_EQ(b.d_trylock, -EBUSY); /* not -EDEADLK: b is not the owner */
		T_CHECK_EQ(b.d_unlock, -EPERM);  /* and cannot unlock it */
		T_CHECK_EQ(b.d_lock, -ETIMEDOUT);
		T_CHECK_EQ(rook_mutex_trylock(a.d_m), -EBUSY);
		rook_mutex_destroy(a.d_m);
	}
	T_CHECK(reused > 0); /* the window was exercised */
	return 0;
}

Test(handles, task_in_a_dead_owners_slot_does_not_own_its_mutex, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, dead_owner_main, NULL), 0);
	expect_clean_shutdown(fds);
}
