/* SPDX-License-Identifier: MIT */
/*
 * SEMANTICS.md section F (wait_for and timeouts, cases 35-47): one test per
 * case, named after it. rook's timeouts are deadline scopes
 * (rook_deadline_push/pop, absolute CLOCK_MONOTONIC ns) and rook_wait_for;
 * the result-vs-deadline races run many iterations and check that a
 * computed result is never lost.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

struct probe {
	_Atomic int p_started, p_ended, p_rc;
	int p_ret;          /* returned after the sleep; 1: the sleep's result */
	uint64_t p_ns;      /* sleep length; 0: forever */
	uint64_t p_cleanup; /* shielded cleanup after a failed sleep (ns) */
};

/* A wait_for child whose deadline passes before it first runs is cancelled
 * unstarted and never runs (case 37). Tests that need it to run give it a
 * deadline no healthy start comes near, even under TSan on 2 busy cores. */
#define START_MARGIN_MS 100
#define START_MARGIN    (START_MARGIN_MS * ROOK_MSEC)

static int sleeper(void *arg)
{
	struct probe *p = arg;
	atomic_store_explicit(&p->p_started, 1, memory_order_release);
	int rc = rook_sleep(p->p_ns ? p->p_ns : FOREVER);
	atomic_store(&p->p_rc, rc);
	if (rc && p->p_cleanup) {
		rook_shield_push();
		T_CHECK_EQ(rook_sleep(p->p_cleanup), 0);
		rook_shield_pop();
	}
	atomic_store_explicit(&p->p_ended, 1, memory_order_release);
	return p->p_ret == 1 ? rc : p->p_ret;
}

static int return_value(void *arg)
{
	return (int)(intptr_t)arg;
}

static void run_main(rook_fn fn)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fn, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 35: a timeout cancels the inner task and returns after it ended;
 * no timeout (UINT64_MAX) waits as long as it takes. */
static int case35_main(void *arg)
{
	struct probe p = {.p_ret = 1}, q = {.p_ret = 7, .p_ns = 30 * ROOK_MSEC};
	int st = 0;
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_wait_for(sleeper, &p, START_MARGIN, &st), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= START_MARGIN_MS - 1 && ms_since(t0) < 2000);
	T_CHECK_EQ(atomic_load(&p.p_ended), 1); /* finished before we returned */
	T_CHECK_EQ(atomic_load(&p.p_rc), -ECANCELED);
	T_CHECK_EQ(rook_wait_for(sleeper, &q, UINT64_MAX, &st), 0);
	T_CHECK_EQ(st, 7);
	/* A scope with no deadline never expires. */
	T_CHECK_EQ(rook_deadline_push(UINT64_MAX), 0);
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_wait_for(NULL, NULL, 1, &st), -EINVAL);
	return 0;
}

Test(semantics, case35_wait_for_timeout_cancels_and_reaps_inner_task, .timeout = 30)
{
	run_main(case35_main);
	cr_assert_eq(rook_wait_for(return_value, NULL, 1, NULL), -EPERM);
}

/* Case 36: a finished operation succeeds under an expired deadline. */
static int case36_main(void *arg)
{
	struct rook_task *ts[2];
	int st[2] = {0};

	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], return_value, (void *)(intptr_t)(40 + i)), 0);
	while (!rook_done(ts[0]) || !rook_done(ts[1]))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_deadline_push(0), 0); /* expired */
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ETIMEDOUT);
	T_CHECK_EQ(rook_wait_any(ts, 2), 0);
	T_CHECK_EQ(rook_join(ts[0], &st[0]), 0);
	T_CHECK_EQ(st[0], 40);
	T_CHECK_EQ(rook_gather(ts + 1, 1, st + 1), 0);
	T_CHECK_EQ(st[1], 41);
	T_CHECK(rook_deadline_pop());
	return 0;
}

Test(semantics, case36_expired_deadline_still_returns_finished_result, .timeout = 30)
{
	run_main(case36_main);
}

/* Case 37: a deadline in the past (rook's "timeout <= 0") fails a
 * not-ready call at once, and a wait_for child that had not started never
 * runs. */
static _Atomic int case37_ran;

static int mark_ran(void *arg)
{
	atomic_store(&case37_ran, 1);
	return 1;
}

static int case37_main(void *arg)
{
	struct probe p = {.p_ret = 1};
	struct rook_task *t;
	int st = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, sleeper, &p), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() - ROOK_MSEC), 0);
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(0), -ETIMEDOUT); /* even a bare yield */
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK_EQ(rook_join(t, &st), -ETIMEDOUT);
	T_CHECK_EQ(rook_wait_any(&t, 1), -ETIMEDOUT);
	T_CHECK(ms_since(t0) < 5000); /* gross: none of them blocked */
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	if (rook_workers() == 1) {
		t0 = rook_now();
		T_CHECK_EQ(rook_wait_for(mark_ran, NULL, 0, &st), -ETIMEDOUT);
		T_CHECK(ms_since(t0) < 5000); /* gross: none of them blocked */
		T_CHECK_EQ(atomic_load(&case37_ran), 0);
	}
	return 0;
}

Test(semantics, case37_past_deadline_fails_unready_call_at_once, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, case37_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case37_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 38: the result arrives as the deadline fires. A join under a
 * deadline either returns it or -ETIMEDOUT with the result still there;
 * wait_for returns any result that was computed. */
static int race_child(void *arg)
{
	intptr_t v = (intptr_t)arg;
	int rc = rook_sleep((uint64_t)(v % 3) * 300 * ROOK_USEC + 700 * ROOK_USEC);
	return rc ? rc : (int)v;
}

struct race_wf {
	_Atomic int w_completed; /* the sleep ended normally: a result exists */
	int w_value;
};

static int race_wf_child(void *arg)
{
	struct race_wf *w = arg;
	int rc = rook_sleep(ROOK_MSEC);
	if (rc)
		return rc;
	atomic_store(&w->w_completed, 1);
	return w->w_value;
}

static int swallow_cancel(void *arg)
{
	int rc = rook_sleep(FOREVER);
	return rc == -ECANCELED ? 1 : 2;
}

static int case38_main(void *arg)
{
	long n = scaled(2000, 10), timeouts = 0, results = 0;

	for (long i = 0; i < n; i++) {
		struct rook_task *t;
		int st = -1, v = 1000 + (int)i;
		T_CHECK_EQ(rook_spawn(&t, race_child, (void *)(intptr_t)v), 0);
		T_CHECK_EQ(rook_deadline_push(rook_now() + ROOK_MSEC), 0);
		int rc = rook_join(t, &st);
		rook_deadline_pop();
		if (rc == 0) {
			T_CHECK_EQ(st, v);
			results++;
			continue;
		}
		T_CHECK_EQ(rc, -ETIMEDOUT);
		timeouts++;
		T_CHECK_EQ(rook_join(t, &st), 0); /* still available */
		T_CHECK_EQ(st, v);
	}
	T_CHECK_EQ(results + timeouts, n);
	for (long i = 0; i < n; i++) {
		struct race_wf w = {.w_value = 2000 + (int)i};
		int st = -1;
		int rc = rook_wait_for(race_wf_child, &w, ROOK_MSEC, &st);
		if (atomic_load(&w.w_completed)) {
			T_CHECK_EQ(rc, 0); /* computed: never lost */
			T_CHECK_EQ(st, w.w_value);
		} else {
			T_CHECK_EQ(rc, -ETIMEDOUT);
		}
	}
	/* The inner catches the cancel and returns 1: wait_for returns 1. */
	int st = 0;
	T_CHECK_EQ(rook_wait_for(swallow_cancel, NULL, START_MARGIN, &st), 0);
	T_CHECK_EQ(st, 1);
	return 0;
}

Test(semantics, case38_result_racing_deadline_is_never_lost, .timeout = 120)
{
	run_main(case38_main);
}

/* Case 39: wait_for waits for the cancelled inner task's cleanup. */
static int case39_main(void *arg)
{
	struct probe p = {.p_ret = 1, .p_cleanup = 100 * ROOK_MSEC};
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_wait_for(sleeper, &p, START_MARGIN, NULL), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= START_MARGIN_MS + 99);
	T_CHECK_EQ(atomic_load(&p.p_ended), 1);
	return 0;
}

Test(semantics, case39_wait_for_waits_for_inner_cleanup, .timeout = 30)
{
	run_main(case39_main);
}

/* Case 40: cancelling the caller of wait_for cancels and reaps the inner
 * task; an inner that ignores the cancel for a while delays the caller
 * (rook always reaps) and its result is dropped. */
struct case40 {
	struct probe c_p;
	_Atomic int c_waiting, c_rc;
	int c_st;
};

static int case40_caller(void *arg)
{
	struct case40 *c = arg;
	atomic_store(&c->c_waiting, 1);
	int rc = rook_wait_for(sleeper, &c->c_p, 10 * ROOK_SEC, &c->c_st);
	atomic_store(&c->c_rc, rc);
	return rc;
}

/* Runs until cancelled, then ignores -ECANCELED for 60 ms more. */
static int ignore_cancel_42(void *arg)
{
	_Atomic int *started = arg;
	uint64_t t0;

	if (started)
		atomic_store(started, 1);
	while (rook_yield() == 0)
		;
	t0 = rook_now();
	while (ms_since(t0) < 60)
		(void)rook_yield();
	return 42;
}

static int case40_ignorer_caller(void *arg)
{
	struct case40 *c = arg;
	atomic_store(&c->c_waiting, 1);
	return rook_wait_for(ignore_cancel_42, &c->c_p.p_started, 10 * ROOK_SEC, &c->c_st);
}

static int case40_main(void *arg)
{
	struct case40 c = {.c_p = {.p_ret = 1}, .c_st = 99};
	struct rook_task *t;
	int st = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, case40_caller, &c), 0);
	await_flag(&c.c_waiting);
	await_flag(&c.c_p.p_started);
	t0 = rook_now();
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK(ms_since(t0) < 2000);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_p.p_ended), 1);
	T_CHECK_EQ(atomic_load(&c.c_p.p_rc), -ECANCELED);
	T_CHECK_EQ(c.c_st, 99); /* not written */

	struct case40 d = {.c_st = 99};
	T_CHECK_EQ(rook_spawn(&t, case40_ignorer_caller, &d), 0);
	await_flag(&d.c_waiting);
	await_flag(&d.c_p.p_started);
	t0 = rook_now();
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK(ms_since(t0) >= 50); /* waited for the ignorer to end */
	/* On a timeout instead, the ignorer's 42 is returned, not lost. */
	t0 = rook_now();
	T_CHECK_EQ(rook_wait_for(ignore_cancel_42, NULL, START_MARGIN, &st), 0);
	T_CHECK_EQ(st, 42);
	T_CHECK(ms_since(t0) >= START_MARGIN_MS + 59);
	return 0;
}

Test(semantics, case40_cancelled_wait_for_caller_cancels_and_reaps_inner, .timeout = 30)
{
	run_main(case40_main);
}

/* Case 41: an error raised by the inner while being timed out is returned
 * (as its status) instead of -ETIMEDOUT. */
static int case41_main(void *arg)
{
	struct probe p = {.p_ret = -EIO};
	int st = 0;

	T_CHECK_EQ(rook_wait_for(sleeper, &p, START_MARGIN, &st), 0);
	T_CHECK_EQ(st, -EIO);
	T_CHECK_EQ(atomic_load(&p.p_rc), -ECANCELED);
	return 0;
}

Test(semantics, case41_error_during_timeout_cancellation_replaces_timeout, .timeout = 30)
{
	run_main(case41_main);
}

/* Case 42: a foreign cancel is not a timeout; a caught timeout does not
 * leave the task cancelled. */
struct case42 {
	_Atomic int c_in, c_rc, c_expired;
};

static int case42_task(void *arg)
{
	struct case42 *c = arg;
	T_CHECK_EQ(rook_deadline_push(rook_now() + 10 * ROOK_SEC), 0);
	atomic_store(&c->c_in, 1);
	atomic_store(&c->c_rc, rook_sleep(10 * ROOK_SEC));
	atomic_store(&c->c_expired, rook_deadline_pop());
	return 0;
}

static int case42_main(void *arg)
{
	struct case42 c = {0};
	struct rook_task *t;

	T_CHECK_EQ(rook_spawn(&t, case42_task, &c), 0);
	await_flag(&c.c_in);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(atomic_load(&c.c_rc), -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_expired), 0);
	/* A caught timeout: the task goes on normally. */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 10 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	T_CHECK_EQ(rook_yield(), 0);
	return 0;
}

Test(semantics, case42_foreign_cancel_is_not_a_timeout, .timeout = 30)
{
	run_main(case42_main);
}

/* Case 43: nested scopes: the earliest deadline fails the call with
 * -ETIMEDOUT; each pop says whether its own scope expired. */
static int case43_main(void *arg)
{
	uint64_t t0 = rook_now();

	/* Inner expires first; the outer goes on, then expires itself. */
	T_CHECK_EQ(rook_deadline_push(t0 + ROOK_SEC), 0);
	T_CHECK_EQ(rook_deadline_push(t0 + 20 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 19 && ms_since(t0) < 900);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 999);
	T_CHECK(rook_deadline_pop());
	/* Outer expires first: the inner scope did not expire. */
	t0 = rook_now();
	T_CHECK_EQ(rook_deadline_push(t0 + 20 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_deadline_push(t0 + 10 * ROOK_SEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ETIMEDOUT); /* the outer still has */
	T_CHECK(rook_deadline_pop());
	/* Equal deadlines: both expired. */
	t0 = rook_now();
	T_CHECK_EQ(rook_deadline_push(t0 + 10 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_deadline_push(t0 + 10 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	return 0;
}

Test(semantics, case43_nested_deadlines_earliest_wins_pop_reports_own_expiry, .timeout = 30)
{
	run_main(case43_main);
}

/* Case 44: in the cleanup of a cancelled task a timeout scope works only
 * inside a shield (without one, the cancel fails every call first). */
static int case44_task(void *arg)
{
	uint64_t t0;

	T_CHECK_EQ(rook_sleep(FOREVER), -ECANCELED);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 10 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ECANCELED);
	T_CHECK(!rook_deadline_pop());
	rook_shield_push();
	T_CHECK_EQ(rook_deadline_push(rook_now() + 10 * ROOK_MSEC), 0);
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 9 && ms_since(t0) < 2000);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_cancel(rook_self()), 0); /* a second cancel: deferred */
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	rook_shield_pop();
	return rook_sleep(ROOK_MSEC);
}

static int case44_main(void *arg)
{
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, case44_task, NULL), 0);
	T_CHECK_EQ(rook_sleep(2 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(semantics, case44_timeout_in_cleanup_of_cancelled_task_needs_shield, .timeout = 30)
{
	run_main(case44_main);
}

/* Case 45: no reschedule: pop the scope and push a new deadline. */
static int case45_main(void *arg)
{
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_deadline_push(t0 + 20 * ROOK_MSEC), 0);
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_deadline_push(t0 + 100 * ROOK_MSEC), 0); /* later */
	T_CHECK_EQ(rook_sleep(40 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 99);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_deadline_push(UINT64_MAX), 0); /* "None" */
	T_CHECK_EQ(rook_sleep(5 * ROOK_MSEC), 0);
	T_CHECK(!rook_deadline_pop());
	return 0;
}

Test(semantics, case45_deadline_replaced_by_pop_and_push, .timeout = 30)
{
	run_main(case45_main);
}

/* Case 46: misuse of scopes: outside a task -EPERM, a pop with nothing
 * pushed (at this shield depth) does nothing, more than ROOK_MAX_SCOPES is
 * -ENOSPC, a shield pop closes the scopes opened inside it. */
static int case46_main(void *arg)
{
	int n = 0;

	T_CHECK(!rook_deadline_pop());
	rook_shield_pop(); /* no shield open: no effect */
	T_CHECK_EQ(rook_deadline_push(rook_now() - 1), 0);
	rook_shield_push();
	T_CHECK(!rook_deadline_pop()); /* pushed outside the shield: kept */
	T_CHECK_EQ(rook_deadline_push(UINT64_MAX), 0);
	T_CHECK_EQ(rook_deadline_push(UINT64_MAX), 0);
	rook_shield_pop();                             /* closes both */
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ETIMEDOUT); /* the outer one again */
	T_CHECK(rook_deadline_pop());
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	while (n <= ROOK_MAX_SCOPES && rook_deadline_push(UINT64_MAX) == 0)
		n++;
	T_CHECK_EQ(n, ROOK_MAX_SCOPES);
	T_CHECK_EQ(rook_deadline_push(UINT64_MAX), -ENOSPC);
	while (n-- > 0)
		T_CHECK(!rook_deadline_pop());
	T_CHECK(!rook_deadline_pop());
	return 0;
}

Test(semantics, case46_scope_misuse_is_reported_or_harmless, .timeout = 30)
{
	run_main(case46_main);
	cr_assert_eq(rook_deadline_push(rook_now() + ROOK_SEC), -EPERM);
	cr_assert(!rook_deadline_pop());
	rook_shield_push(); /* outside a task: no effect */
	rook_shield_pop();
	cr_assert_eq(rook_sleep(ROOK_MSEC), -EPERM);
}

/* Case 47: a timed-out get consumes nothing and leaves no stale getter. */
struct getter {
	struct rook_queue *g_q;
	_Atomic int g_waiting;
	int g_item;
};

static int getter(void *arg)
{
	struct getter *g = arg;
	atomic_store(&g->g_waiting, 1);
	return rook_queue_get(g->g_q, &g->g_item);
}

static int case47_main(void *arg)
{
	struct rook_queue *q;
	struct getter g = {0};
	struct rook_task *t;
	int item = 0, st = 1;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), 4), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_queue_get(q, &item), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_queue_len(q), 0);
	/* The next put goes to the next getter, not to our stale wait. */
	g.g_q = q;
	T_CHECK_EQ(rook_spawn(&t, getter, &g), 0);
	await_flag(&g.g_waiting);
	item = 31;
	T_CHECK_EQ(rook_queue_put(q, &item), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	T_CHECK_EQ(g.g_item, 31);
	/* A put that lands before the deadline is returned. */
	item = 32;
	T_CHECK_EQ(rook_queue_put(q, &item), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_MSEC), 0);
	item = 0;
	T_CHECK_EQ(rook_queue_get(q, &item), 0);
	T_CHECK_EQ(item, 32);
	T_CHECK(!rook_deadline_pop());
	rook_queue_destroy(q);
	return 0;
}

Test(semantics, case47_timed_out_get_consumes_nothing, .timeout = 30)
{
	run_main(case47_main);
}
