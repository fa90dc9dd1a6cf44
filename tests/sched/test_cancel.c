/* SPDX-License-Identifier: MIT */
/*
 * Cancellation (SEMANTICS.md sections A and B): before start, while running,
 * level-triggered delivery, swallowed cancels, a cancelled join that leaves
 * its target running, repeated and late cancels, cancels from plain threads
 * and from other workers, and the cancel-all of rook_run / rook_rt_stop.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

/* A task that reports what its blocking calls returned. */
struct victim {
	_Atomic int v_started;
	_Atomic int v_first_rc;  /* the rook_yield result that ended the loop */
	_Atomic int v_later_bad; /* later yields that did not return -ECANCELED */
	_Atomic long v_iterations;
	_Atomic int v_worker; /* last worker index seen */
	int v_ret;            /* what to return after the cancel */
};

/* Loops on rook_yield until it fails, then checks the cancel is sticky. */
static int yield_until_cancelled(void *arg)
{
	struct victim *v = arg;
	int rc;

	atomic_store_explicit(&v->v_started, 1, memory_order_release);
	do {
		atomic_store_explicit(&v->v_worker, rook__worker_index(), memory_order_relaxed);
		atomic_fetch_add_explicit(&v->v_iterations, 1, memory_order_release);
		rc = rook_yield();
	} while (rc == 0);
	atomic_store(&v->v_first_rc, rc);
	for (int i = 0; i < 5; i++)
		if (rook_yield() != -ECANCELED)
			atomic_fetch_add(&v->v_later_bad, 1);
	return v->v_ret;
}

static void wait_started(struct victim *v)
{
	while (!atomic_load_explicit(&v->v_started, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
}

static int return_eexist_fn(void *arg)
{
	return -EEXIST;
}

/* ---- before start ------------------------------------------------------ */

static _Atomic int body_ran;

static int mark_ran(void *arg)
{
	atomic_store(&body_ran, 1);
	return 0;
}

static int cancel_before_start_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, mark_ran, NULL), 0);
	/* One worker, and we have not suspended: t cannot have started. */
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&body_ran), 0);
	/* Cancelled twice before it starts: still never runs. */
	T_CHECK_EQ(rook_spawn(&t, mark_ran, NULL), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(cancel, body_never_runs_when_cancelled_before_start, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, 0, cancel_before_start_main, NULL), 0);
	cr_assert_eq(atomic_load(&body_ran), 0, "the cancelled task's body ran");
	expect_clean_shutdown(fds);
}

/* ---- while running ------------------------------------------------------ */

static int cancel_running_main(void *arg)
{
	struct victim *v = arg;
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, yield_until_cancelled, v), 0);
	wait_started(v);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, v->v_ret);
	return 0;
}

Test(cancel, yield_keeps_returning_ecanceled_when_running_task_cancelled, .timeout = 60)
{
	int fds = fd_count();
	struct victim v1 = {.v_ret = -ETIME}, v2 = {.v_ret = -ECANCELED};

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_running_main, &v1), 0);
	cr_assert_eq(atomic_load(&v1.v_first_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&v1.v_later_bad), 0, "cancellation is level-triggered");
	cr_assert_eq(run_with(1, 0, cancel_running_main, &v2), 0);
	cr_assert_eq(atomic_load(&v2.v_first_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&v2.v_later_bad), 0);
	expect_clean_shutdown(fds);
}

Test(cancel, join_reports_zero_when_task_swallows_cancel_and_returns_0, .timeout = 60)
{
	int fds = fd_count();
	struct victim v = {.v_ret = 0};

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_running_main, &v), 0);
	cr_assert_eq(atomic_load(&v.v_first_rc), -ECANCELED);
	expect_clean_shutdown(fds);
}

/* Cancelled while it computes, then returns without a blocking call. */
static _Atomic int spin_release;

static int spin_then_return(void *arg)
{
	struct victim *v = arg;

	atomic_store_explicit(&v->v_started, 1, memory_order_release);
	while (!atomic_load_explicit(&spin_release, memory_order_acquire))
		;
	return -EEXIST;
}

static int cancel_computing_main(void *arg)
{
	struct victim *v = arg;
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, spin_then_return, v), 0);
	wait_started(v);
	T_CHECK_EQ(rook_cancel(t), 0);
	atomic_store_explicit(&spin_release, 1, memory_order_release);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EEXIST); /* a computed result is kept */
	return 0;
}

Test(cancel, result_is_kept_when_task_returns_without_blocking_after_cancel, .timeout = 60)
{
	int fds = fd_count();
	struct victim v = {0};

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_computing_main, &v), 0);
	expect_clean_shutdown(fds);
}

/* ---- a cancelled join leaves its target running ------------------------ */

static _Atomic int long_stop;
static _Atomic int long_saw_cancel;
static _Atomic int joiner_entered;

static int long_task(void *arg)
{
	while (!atomic_load_explicit(&long_stop, memory_order_acquire))
		if (rook_yield() != 0)
			atomic_store(&long_saw_cancel, 1);
	return -EALREADY;
}

static int join_long(void *arg)
{
	struct rook_task *target = arg;

	atomic_store_explicit(&joiner_entered, 1, memory_order_release);
	return rook_join(target, NULL);
}

static int cancel_joiner_main(void *arg)
{
	struct rook_task *lt = NULL, *j = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&lt, long_task, NULL), 0);
	T_CHECK_EQ(rook_spawn(&j, join_long, lt), 0);
	while (!atomic_load_explicit(&joiner_entered, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
	/* Give j turns to park in its join; the outcome is the same if not. */
	for (int i = 0; i < 100 && !rook_done(j); i++)
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK(!rook_done(j));
	T_CHECK_EQ(rook_cancel(j), 0);
	T_CHECK_EQ(rook_join(j, &st), 0);
	T_CHECK_EQ(st, -ECANCELED); /* j returned its join's result */
	/* The long task was not cancelled and its handle is still valid. */
	T_CHECK(!rook_done(lt));
	for (int i = 0; i < 10; i++)
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK(!rook_done(lt));
	atomic_store_explicit(&long_stop, 1, memory_order_release);
	st = 1;
	T_CHECK_EQ(rook_join(lt, &st), 0);
	T_CHECK_EQ(st, -EALREADY);
	T_CHECK_EQ(atomic_load(&long_saw_cancel), 0);
	return 0;
}

Test(cancel, join_returns_ecanceled_and_target_runs_on_when_joiner_cancelled, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_joiner_main, NULL), 0);
	cr_assert_eq(atomic_load(&long_saw_cancel), 0);
	expect_clean_shutdown(fds);
}

/* ---- twice, and after finish ------------------------------------------- */

static int cancel_twice_main(void *arg)
{
	struct victim *v = arg;
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, yield_until_cancelled, v), 0);
	wait_started(v);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(cancel, delivers_one_sticky_cancel_when_cancelled_twice, .timeout = 60)
{
	int fds = fd_count();
	struct victim v = {.v_ret = -ECANCELED};

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_twice_main, &v), 0);
	cr_assert_eq(atomic_load(&v.v_first_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&v.v_later_bad), 0);
	expect_clean_shutdown(fds);
}

static int cancel_after_finish_main(void *arg)
{
	struct rook_task *t = NULL;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, return_eexist_fn, NULL), 0);
	while (!rook_done(t))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EEXIST);
	return 0;
}

Test(cancel, keeps_status_when_cancelled_after_finish, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_after_finish_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- from a plain thread, from another worker --------------------------- */

Test(cancel, running_task_sees_ecanceled_when_cancelled_from_plain_thread, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt = NULL;
	struct rook_task *t = NULL;
	struct victim v = {.v_ret = -ENOTCONN};
	int st = 1;

	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_eq(rook_rt_spawn(rt, &t, yield_until_cancelled, &v), 0);
	while (!atomic_load_explicit(&v.v_started, memory_order_acquire))
		sched_yield();
	cr_assert_eq(rook_cancel(t), 0);
	cr_assert_eq(rook_join(t, &st), 0);
	cr_assert_eq(st, -ENOTCONN);
	cr_assert_eq(atomic_load(&v.v_first_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&v.v_later_bad), 0);
	cr_assert_eq(rook_rt_stop(rt), 0);
	expect_clean_shutdown(fds);
}

static int cancel_cross_worker_main(void *arg)
{
	struct victim *v = arg;
	struct rook_task *t = NULL;
	int me = rook__worker_index();
	int st = 1;
	long seen;

	T_CHECK_EQ(rook_spawn(&t, yield_until_cancelled, v), 0);
	/*
	 * Hold this worker without yielding, so t can only run on the other
	 * one; cancel once it has been seen there and has gone round again.
	 */
	while (atomic_load_explicit(&v->v_worker, memory_order_relaxed) == me ||
	       atomic_load_explicit(&v->v_iterations, memory_order_acquire) == 0)
		;
	seen = atomic_load_explicit(&v->v_iterations, memory_order_acquire);
	while (atomic_load_explicit(&v->v_iterations, memory_order_acquire) < seen + 2)
		;
	T_CHECK(atomic_load(&v->v_worker) != me);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(cancel, running_task_sees_ecanceled_when_cancelled_from_other_worker, .timeout = 60)
{
	int fds = fd_count();
	struct victim v = {.v_ret = -ECANCELED, .v_worker = -1};

	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_cross_worker_main, &v), 0);
	cr_assert_eq(atomic_load(&v.v_first_rc), -ECANCELED);
	cr_assert_eq(atomic_load(&v.v_later_bad), 0);
	expect_clean_shutdown(fds);
}

/* ---- cancel-all at shutdown -------------------------------------------- */

static _Atomic int left_started;
static _Atomic int cleaned_up;
static _Atomic int cleanup_saw;

/* Loops until cancelled, then "cleans up" (sets a flag) before returning. */
static int leftover(void *arg)
{
	int rc;

	atomic_fetch_add_explicit(&left_started, 1, memory_order_release);
	while ((rc = rook_yield()) == 0)
		;
	atomic_store(&cleanup_saw, rc);
	atomic_fetch_add_explicit(&cleaned_up, 1, memory_order_release);
	return rc;
}

static int leave_tasks_main(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(NULL, leftover, NULL), 0);
	while (atomic_load_explicit(&left_started, memory_order_acquire) < n)
		T_CHECK_EQ(rook_yield(), 0);
	/* One more that may not have started when main returns. */
	T_CHECK_EQ(rook_spawn(NULL, leftover, NULL), 0);
	return -EINTR;
}

Test(cancel, run_cancels_and_waits_for_tasks_when_main_leaves_them_running, .timeout = 60)
{
	int fds = fd_count();
	long n = 100;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, leave_tasks_main, &n), -EINTR);
	cr_assert_geq(atomic_load(&left_started), n);
	/* Each task that started was cancelled and finished its cleanup. */
	cr_assert_eq(atomic_load(&cleaned_up), atomic_load(&left_started));
	cr_assert_eq(atomic_load(&cleanup_saw), -ECANCELED);
	expect_clean_shutdown(fds);
}

Test(cancel, rt_stop_cancels_and_waits_for_tasks_when_some_still_run, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt = NULL;
	const long n = 50;

	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	for (long i = 0; i < n; i++)
		cr_assert_eq(rook_rt_spawn(rt, NULL, leftover, NULL), 0);
	while (atomic_load_explicit(&left_started, memory_order_acquire) < n)
		sched_yield();
	cr_assert_eq(rook_rt_stop(rt), 0);
	cr_assert_eq(atomic_load(&cleaned_up), n);
	cr_assert_eq(atomic_load(&cleanup_saw), -ECANCELED);
	expect_clean_shutdown(fds);
}
