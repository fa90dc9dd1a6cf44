/* SPDX-License-Identifier: MIT */
/*
 * SEMANTICS.md sections C (shielding, cases 18-20), D (gather, 21-27) and
 * E (wait_any / as_completed / select, 28-34): one test per case, named
 * after it. rook's shield is a section (rook_shield_push/pop), gather
 * always collects every status, and as_completed / first-wins / select are
 * loops over rook_wait_any; where that differs from asyncio the test checks
 * what rook does instead.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

/* Sleeps "forever"; returns p_ret (1: the sleep's result). */
struct probe {
	_Atomic int p_started, p_ended, p_rc;
	int p_ret;
};

static int sleep_forever(void *arg)
{
	struct probe *p = arg;
	atomic_store_explicit(&p->p_started, 1, memory_order_release);
	int rc = rook_sleep(FOREVER);
	atomic_store(&p->p_rc, rc);
	atomic_store_explicit(&p->p_ended, 1, memory_order_release);
	return p->p_ret == 1 ? rc : p->p_ret;
}

/* Children that finish in a chosen order: child k waits for *turn == rank,
 * logs itself, advances the turn and returns its value. */
struct ordered {
	_Atomic int *o_turn;
	_Atomic int *o_log_len;
	int *o_log;
	int o_rank, o_id, o_value;
};

static int ordered_child(void *arg)
{
	struct ordered *o = arg;
	while (atomic_load_explicit(o->o_turn, memory_order_acquire) != o->o_rank)
		if (rook_yield() != 0)
			return -ECANCELED;
	int at = atomic_fetch_add(o->o_log_len, 1);
	o->o_log[at] = o->o_id;
	atomic_fetch_add_explicit(o->o_turn, 1, memory_order_release);
	return o->o_value;
}

static int return_value(void *arg)
{
	return (int)(intptr_t)arg;
}

/* ---- C. shielding ------------------------------------------------------- */

/* Case 18: a shielded section runs to completion under an outer cancel,
 * outcomes pass through it unchanged, and the asyncio pattern "outer
 * cancelled at once, inner keeps running" is a plain cancelled join. */
struct case18 {
	_Atomic int c_in_shield, c_proof, c_sleep_rc, c_after_rc;
	_Atomic int c_join_st, c_join_rc;
};

static int case18_shielded(void *arg)
{
	struct case18 *c = arg;
	struct rook_task *child;
	int st = 0;

	rook_shield_push();
	atomic_store(&c->c_in_shield, 1);
	atomic_store(&c->c_sleep_rc, rook_sleep(30 * ROOK_MSEC));
	atomic_store(&c->c_proof, 1);
	/* An error passes through a shield as it is. */
	T_CHECK_EQ(rook_spawn(&child, return_value, (void *)(intptr_t)-EIO), 0);
	atomic_store(&c->c_join_rc, rook_join(child, &st));
	atomic_store(&c->c_join_st, st);
	rook_shield_pop();
	atomic_store(&c->c_after_rc, rook_sleep(ROOK_MSEC));
	return 0;
}

struct case18b {
	struct probe c_inner;
	struct rook_task *c_ih;
	_Atomic int c_joining;
};

static int case18_outer(void *arg)
{
	struct case18b *c = arg;
	atomic_store(&c->c_joining, 1);
	return rook_join(c->c_ih, NULL);
}

static int case18_main(void *arg)
{
	struct case18 c = {0};
	struct case18b b = {.c_inner = {.p_ret = 11}};
	struct rook_task *t, *outer;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, case18_shielded, &c), 0);
	await_flag(&c.c_in_shield);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(atomic_load(&c.c_sleep_rc), 0);
	T_CHECK_EQ(atomic_load(&c.c_proof), 1);
	T_CHECK_EQ(atomic_load(&c.c_join_rc), 0);
	T_CHECK_EQ(atomic_load(&c.c_join_st), -EIO);
	T_CHECK_EQ(atomic_load(&c.c_after_rc), -ECANCELED);

	/* asyncio.shield(inner) awaited by outer: cancel outer, inner lives;
	 * cancelling the inner gives the outer's join the inner's status. */
	T_CHECK_EQ(rook_spawn(&b.c_ih, sleep_forever, &b.c_inner), 0);
	await_flag(&b.c_inner.p_started); /* a task cancelled unstarted never runs */
	T_CHECK_EQ(rook_spawn(&outer, case18_outer, &b), 0);
	await_flag(&b.c_joining);
	T_CHECK_EQ(rook_cancel(outer), 0);
	T_CHECK_EQ(rook_join(outer, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK(!rook_done(b.c_ih));
	T_CHECK_EQ(rook_cancel(b.c_ih), 0);
	T_CHECK_EQ(rook_join(b.c_ih, &st), 0);
	T_CHECK_EQ(st, 11);
	return 0;
}

Test(semantics, case18_shielded_work_survives_outer_cancel_outcomes_pass_through, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case18_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 19: a shield hides outside cancellation and outside deadlines, not
 * the deadlines opened inside it. */
static int case19_task(void *arg)
{
	uint64_t t0;

	T_CHECK_EQ(rook_deadline_push(rook_now() + 5 * ROOK_MSEC), 0); /* outer */
	T_CHECK_EQ(rook_cancel(rook_self()), 0);
	rook_shield_push();
	T_CHECK_EQ(rook_sleep(10 * ROOK_MSEC), 0); /* outer deadline passes here */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_MSEC), 0);
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 19 && ms_since(t0) < 2000);
	T_CHECK(rook_deadline_pop()); /* the inner scope expired */
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	rook_shield_pop();
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ECANCELED); /* cancel checked first */
	T_CHECK(rook_deadline_pop());
	return 0;
}

static int case19_main(void *arg)
{
	struct rook_task *t;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, case19_task, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	return 0;
}

Test(semantics, case19_shield_blocks_only_outside_cancellation, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case19_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 20: a cancel that arrives during a (nested) shield is delivered at
 * the first blocking call after the outermost pop. */
struct case20 {
	_Atomic int c_in, c_inner_rc, c_mid_rc, c_after_rc;
};

static int case20_task(void *arg)
{
	struct case20 *c = arg;

	rook_shield_push();
	rook_shield_push();
	atomic_store(&c->c_in, 1);
	atomic_store(&c->c_inner_rc, rook_sleep(30 * ROOK_MSEC));
	rook_shield_pop();
	atomic_store(&c->c_mid_rc, rook_sleep(ROOK_MSEC)); /* still shielded */
	rook_shield_pop();
	atomic_store(&c->c_after_rc, rook_yield());
	return 0;
}

static int case20_main(void *arg)
{
	struct case20 c = {0};
	struct rook_task *t;

	T_CHECK_EQ(rook_spawn(&t, case20_task, &c), 0);
	await_flag(&c.c_in);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(atomic_load(&c.c_inner_rc), 0);
	T_CHECK_EQ(atomic_load(&c.c_mid_rc), 0);
	T_CHECK_EQ(atomic_load(&c.c_after_rc), -ECANCELED);
	return 0;
}

Test(semantics, case20_cancel_during_shield_is_deferred_not_lost, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case20_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- D. gather ---------------------------------------------------------- */

static int case21_main(void *arg)
{
	_Atomic int turn = 0, log_len = 0;
	int log[3] = {-1, -1, -1}, st[3] = {0};
	/* a, b, c finish in the order b, a, c. */
	struct ordered o[3] = {
	    {&turn, &log_len, log, 1, 0, 1},
	    {&turn, &log_len, log, 0, 1, 2},
	    {&turn, &log_len, log, 2, 2, 3},
	};
	struct rook_task *ts[3];

	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], ordered_child, &o[i]), 0);
	T_CHECK_EQ(rook_gather(ts, 3, st), 0);
	T_CHECK_EQ(atomic_load(&log_len), 3); /* not done before the last */
	T_CHECK_EQ(log[0], 1);
	T_CHECK_EQ(log[1], 0);
	T_CHECK_EQ(log[2], 2);
	T_CHECK_EQ(st[0], 1);
	T_CHECK_EQ(st[1], 2);
	T_CHECK_EQ(st[2], 3);
	return 0;
}

Test(semantics, case21_gather_results_in_argument_order, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case21_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int case22_main(void *arg)
{
	struct rook_task *t;
	int st = 5;

	T_CHECK_EQ(rook_gather(NULL, 0, NULL), 0);
	T_CHECK_EQ(rook_gather(&t, 0, &st), 0);
	T_CHECK_EQ(st, 5); /* nothing written */
	T_CHECK_EQ(rook_gather(NULL, 1, NULL), -EINVAL);
	T_CHECK_EQ(rook_wait_any(NULL, 0), -EINVAL);
	T_CHECK_EQ(rook_wait_any(&t, 0), -EINVAL);
	return 0;
}

Test(semantics, case22_gather_of_zero_tasks_returns_at_once, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case22_main, NULL), 0);
	/* From a plain thread as well. */
	cr_assert_eq(rook_gather(NULL, 0, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 23: rook_gather has no fail-fast mode: with one failing child it
 * waits for all (no orphan keeps running), does not cancel the others and
 * reports every status. Fail-fast-and-cancel is a task group (case 49). */
static int slow_ok(void *arg)
{
	struct probe *p = arg;
	atomic_store(&p->p_started, 1);
	atomic_store(&p->p_rc, rook_sleep(30 * ROOK_MSEC));
	atomic_store(&p->p_ended, 1);
	return 8;
}

static int case23_main(void *arg)
{
	struct probe p = {0};
	struct rook_task *ts[2];
	int st[2] = {0};

	T_CHECK_EQ(rook_spawn(&ts[0], return_value, (void *)(intptr_t)-EIO), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], slow_ok, &p), 0);
	T_CHECK_EQ(rook_gather(ts, 2, st), 0);
	T_CHECK_EQ(atomic_load(&p.p_ended), 1); /* joined, not orphaned */
	T_CHECK_EQ(atomic_load(&p.p_rc), 0);    /* and not cancelled */
	T_CHECK_EQ(st[0], -EIO);
	T_CHECK_EQ(st[1], 8);
	return 0;
}

Test(semantics, case23_gather_with_failing_child_waits_for_all_no_orphans, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case23_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int case24_main(void *arg)
{
	const int want[4] = {3, 1, -EIO, -EPERM};
	struct rook_task *ts[4];
	int st[4] = {0};

	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], return_value, (void *)(intptr_t)want[i]), 0);
	T_CHECK_EQ(rook_gather(ts, 4, st), 0);
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(st[i], want[i]);
	return 0;
}

Test(semantics, case24_gather_collects_errors_in_their_slots, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case24_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 25: one child is cancelled; the gather itself is not. */
static int case25_main(void *arg)
{
	struct probe p = {.p_ret = 1};
	struct rook_task *ts[3];
	int st[3] = {0};

	T_CHECK_EQ(rook_spawn(&ts[0], return_value, (void *)(intptr_t)4), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], sleep_forever, &p), 0);
	T_CHECK_EQ(rook_spawn(&ts[2], return_value, (void *)(intptr_t)6), 0);
	await_flag(&p.p_started);
	T_CHECK_EQ(rook_cancel(ts[1]), 0);
	T_CHECK_EQ(rook_gather(ts, 3, st), 0);
	T_CHECK_EQ(st[0], 4);
	T_CHECK_EQ(st[1], -ECANCELED);
	T_CHECK_EQ(st[2], 6);
	T_CHECK_EQ(rook_yield(), 0); /* the gatherer is not cancelled */
	return 0;
}

Test(semantics, case25_gather_with_one_cancelled_child_returns_0, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case25_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 26: cancelling a task blocked in rook_gather interrupts only its
 * wait (-ECANCELED, no handle released, children untouched); to cancel
 * the children it cancels them and gathers again inside a shield. A
 * cancel after gather returned 0 does not rewrite the results. */
struct case26 {
	struct probe c_p[3];
	_Atomic int c_gathering;
	_Atomic int c_first_rc, c_children_ended_at_rc;
	int c_st[3];
	_Atomic int c_go;
};

static int case26_gatherer(void *arg)
{
	struct case26 *c = arg;
	struct rook_task *ts[3];
	int rc;

	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], sleep_forever, &c->c_p[i]), 0);
	atomic_store(&c->c_gathering, 1);
	rc = rook_gather(ts, 3, c->c_st);
	atomic_store(&c->c_first_rc, rc);
	int ended = 0;
	for (int i = 0; i < 3; i++)
		ended += atomic_load(&c->c_p[i].p_ended) + rook_done(ts[i]);
	atomic_store(&c->c_children_ended_at_rc, ended);
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_cancel(ts[i]), 0); /* handles still valid */
	rook_shield_push();
	T_CHECK_EQ(rook_gather(ts, 3, c->c_st), 0);
	rook_shield_pop();
	return rc;
}

static int case26_done_gatherer(void *arg)
{
	struct case26 *c = arg;
	struct rook_task *ts[2];

	T_CHECK_EQ(rook_spawn(&ts[0], return_value, (void *)(intptr_t)1), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], return_value, (void *)(intptr_t)2), 0);
	T_CHECK_EQ(rook_gather(ts, 2, c->c_st), 0);
	atomic_store(&c->c_gathering, 1);
	while (!atomic_load(&c->c_go) && rook_yield() == 0)
		;
	return 0;
}

static int case26_main(void *arg)
{
	struct case26 c = {.c_p = {{.p_ret = 1}, {.p_ret = 1}, {.p_ret = 1}}};
	struct rook_task *g;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&g, case26_gatherer, &c), 0);
	await_flag(&c.c_gathering);
	/* The children have started (an unstarted one, cancelled, never runs)
	 * and the gatherer is suspended in the gather. */
	for (int i = 0; i < 3; i++)
		await_flag(&c.c_p[i].p_started);
	await_parked(g);
	T_CHECK_EQ(rook_cancel(g), 0);
	T_CHECK_EQ(rook_join(g, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_first_rc), -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_children_ended_at_rc), 0);
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(c.c_st[i], -ECANCELED);
		T_CHECK_EQ(atomic_load(&c.c_p[i].p_rc), -ECANCELED);
	}

	struct case26 d = {0};
	T_CHECK_EQ(rook_spawn(&g, case26_done_gatherer, &d), 0);
	await_flag(&d.c_gathering);
	T_CHECK_EQ(rook_cancel(g), 0); /* after gather returned: results kept */
	T_CHECK_EQ(rook_join(g, &st), 0);
	T_CHECK_EQ(d.c_st[0], 1);
	T_CHECK_EQ(d.c_st[1], 2);
	return 0;
}

Test(semantics, case26_cancelled_gather_leaves_children_caller_cancels_them, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case26_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 27: several children fail: every status is filled, every handle is
 * released exactly once, even a handle listed twice. */
static int case27_main(void *arg)
{
	const int want[4] = {-EIO, 0, -EPERM, -EIO};
	struct rook_task *ts[4], *dup[3];
	int st[4] = {0}, dst[3] = {0};

	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], return_value, (void *)(intptr_t)want[i]), 0);
	T_CHECK_EQ(rook_gather(ts, 4, st), 0);
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(st[i], want[i]);

	T_CHECK_EQ(rook_spawn(&dup[0], return_value, (void *)(intptr_t)-EIO), 0);
	T_CHECK_EQ(rook_spawn(&dup[2], return_value, (void *)(intptr_t)-EBADF), 0);
	dup[1] = dup[0];
	int rc = rook_gather(dup, 3, dst);
	if (rc == 0) {
		T_CHECK_EQ(dst[0], -EIO);
		T_CHECK_EQ(dst[1], -EIO);
		T_CHECK_EQ(dst[2], -EBADF);
		T_CHECK(!rook_done(dup[0])); /* released: no longer a valid handle */
	} else {
		T_CHECK_EQ(rc, -EINVAL); /* or refused, nothing released */
		T_CHECK_EQ(rook_join(dup[0], NULL), 0);
		T_CHECK_EQ(rook_join(dup[2], NULL), 0);
	}
	/* The pool is still sound: new tasks reuse the slots. */
	T_CHECK_EQ(rook_spawn(&dup[0], return_value, (void *)(intptr_t)3), 0);
	T_CHECK_EQ(rook_spawn(&dup[1], return_value, (void *)(intptr_t)4), 0);
	T_CHECK_EQ(rook_gather(dup, 2, dst), 0);
	T_CHECK_EQ(dst[0], 3);
	T_CHECK_EQ(dst[1], 4);
	return 0;
}

Test(semantics, case27_errors_in_several_children_all_reported_released_once, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case27_main, NULL), 0);
	expect_clean_shutdown(fds);
}
