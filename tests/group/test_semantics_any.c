/* SPDX-License-Identifier: MIT */
/*
 * SEMANTICS.md section E (wait_any / wait / as_completed / select, cases
 * 28-34): one test per case, named after it. rook has one primitive,
 * rook_wait_any (the lowest index of a finished task, nothing released);
 * as_completed, "first result wins, cancel the rest", FIRST_EXCEPTION,
 * wait_some and select are short loops over it, written here as the
 * README shows them.
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
	int p_ret;     /* returned after the sleep; 1: the sleep's result */
	uint64_t p_ns; /* sleep length; 0: forever */
};

static int sleeper(void *arg)
{
	struct probe *p = arg;
	atomic_store_explicit(&p->p_started, 1, memory_order_release);
	int rc = rook_sleep(p->p_ns ? p->p_ns : FOREVER);
	atomic_store(&p->p_rc, rc);
	atomic_store_explicit(&p->p_ended, 1, memory_order_release);
	return p->p_ret == 1 ? rc : p->p_ret;
}

static int return_value(void *arg)
{
	return (int)(intptr_t)arg;
}

/* Finishes once the caller's as_completed loop has taken rank results
 * (*got == rank), so exactly one child is done each time the loop waits:
 * the finish order is the rank order. Returns its value. */
struct ordered {
	_Atomic size_t *o_got;
	size_t o_rank;
	int o_value;
};

static int ordered_child(void *arg)
{
	struct ordered *o = arg;
	while (atomic_load_explicit(o->o_got, memory_order_acquire) != o->o_rank)
		if (rook_yield() != 0)
			return -ECANCELED;
	return o->o_value;
}

/* ---- E. wait_any ---------------------------------------------------------- */

struct gated {
	_Atomic int g_go, g_saw_error;
};

static int gated_child(void *arg)
{
	struct gated *g = arg;
	while (!atomic_load(&g->g_go))
		if (rook_yield() != 0)
			atomic_store(&g->g_saw_error, 1);
	return 21;
}

static int case28_main(void *arg)
{
	struct gated g = {0};
	struct rook_task *ts[2];
	int st = 0;

	T_CHECK_EQ(rook_spawn(&ts[0], gated_child, &g), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], return_value, (void *)(intptr_t)22), 0);
	T_CHECK_EQ(rook_wait_any(ts, 2), 1);
	T_CHECK(!rook_done(ts[0])); /* the other one keeps running ... */
	T_CHECK_EQ(rook_join(ts[1], &st), 0);
	T_CHECK_EQ(st, 22);
	atomic_store(&g.g_go, 1);
	T_CHECK_EQ(rook_join(ts[0], &st), 0);
	T_CHECK_EQ(st, 21);
	T_CHECK_EQ(atomic_load(&g.g_saw_error), 0); /* ... uncancelled */
	return 0;
}

Test(semantics, case28_wait_any_returns_first_finished_others_keep_running, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case28_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* The README's "first result wins, cancel the rest". */
static int first_wins(struct rook_task **ts, size_t n, int *winner, int *st)
{
	int i = rook_wait_any(ts, n);
	if (i < 0) { /* we were cancelled or timed out: reap everyone */
		for (size_t k = 0; k < n; k++)
			rook_cancel(ts[k]);
		rook_shield_push();
		rook_gather(ts, n, NULL);
		rook_shield_pop();
		return i;
	}
	rook_join(ts[i], st); /* finished: returns at once */
	*winner = i;
	ts[i] = ts[--n];
	for (size_t k = 0; k < n; k++)
		rook_cancel(ts[k]);
	return rook_gather(ts, n, NULL); /* the losers, cancelled and reaped */
}

static int case28_first_main(void *arg)
{
	struct probe p[3] = {{.p_ret = 1}, {.p_ret = 77, .p_ns = 10 * ROOK_MSEC}, {.p_ret = 1}};
	struct rook_task *ts[3];
	int winner = -1, st = 0;
	uint64_t t0 = rook_now();

	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], sleeper, &p[i]), 0);
	T_CHECK_EQ(first_wins(ts, 3, &winner, &st), 0);
	T_CHECK_EQ(winner, 1);
	T_CHECK_EQ(st, 77);
	T_CHECK(ms_since(t0) < 2000);
	T_CHECK_EQ(atomic_load(&p[0].p_rc), -ECANCELED); /* reaped on return */
	T_CHECK_EQ(atomic_load(&p[2].p_rc), -ECANCELED);
	T_CHECK_EQ(atomic_load(&p[1].p_rc), 0);
	return 0;
}

Test(semantics, case28_first_result_wins_cancel_the_rest, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case28_first_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 29: several finished "at once": wait_any returns the lowest index;
 * the whole done set is read with rook_done (rook has no wait_some). */
struct race29 {
	_Atomic int r_go;
};

static int race_child(void *arg)
{
	struct race29 *r = arg;
	while (!atomic_load_explicit(&r->r_go, memory_order_acquire))
		;
	return 1;
}

static int case29_main(void *arg)
{
	struct rook_task *ts[3];
	long n = scaled(2000, 10);

	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], return_value, (void *)(intptr_t)i), 0);
	for (int i = 0; i < 3; i++)
		while (!rook_done(ts[i]))
			T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_wait_any(ts, 3), 0);
	T_CHECK_EQ(rook_wait_any(ts + 1, 2), 0);
	T_CHECK_EQ(rook_gather(ts, 3, NULL), 0);

	/* Two children finishing together on two workers. */
	for (long it = 0; it < n; it++) {
		struct race29 r = {0};
		int seen = 0;
		T_CHECK_EQ(rook_spawn(&ts[0], race_child, &r), 0);
		T_CHECK_EQ(rook_spawn(&ts[1], race_child, &r), 0);
		atomic_store_explicit(&r.r_go, 1, memory_order_release);
		int i = rook_wait_any(ts, 2);
		T_CHECK(i == 0 || i == 1);
		T_CHECK(rook_done(ts[i]));
		for (int k = 0; k < 2; k++) /* the done set at wake-up */
			seen += rook_done(ts[k]);
		T_CHECK(seen >= 1);
		T_CHECK_EQ(rook_gather(ts, 2, NULL), 0);
	}
	return 0;
}

Test(semantics, case29_wait_any_with_several_already_finished, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case29_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 30: FIRST_EXCEPTION as a loop: stop at the first failed status,
 * then cancel and reap the rest. A child failed before the call is seen at
 * once. */
static int first_error(struct rook_task **ts, size_t n)
{
	int err = 0;
	while (n > 0 && err == 0) {
		int i = rook_wait_any(ts, n), st;
		if (i < 0)
			return i;
		rook_join(ts[i], &st);
		if (st != 0)
			err = st;
		ts[i] = ts[--n];
	}
	for (size_t k = 0; k < n; k++)
		rook_cancel(ts[k]);
	int r = rook_gather(ts, n, NULL);
	return err ? err : r;
}

static int case30_main(void *arg)
{
	struct probe p[3] = {{.p_ret = 0}, {.p_ret = -EIO, .p_ns = 10 * ROOK_MSEC}, {.p_ret = 0}};
	struct rook_task *ts[3];
	uint64_t t0 = rook_now();

	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], sleeper, &p[i]), 0);
	T_CHECK_EQ(first_error(ts, 3), -EIO);
	T_CHECK(ms_since(t0) < 2000);
	T_CHECK_EQ(atomic_load(&p[0].p_rc), -ECANCELED);
	T_CHECK_EQ(atomic_load(&p[2].p_rc), -ECANCELED);

	/* Already failed at call time. */
	struct probe q = {.p_ret = 0};
	T_CHECK_EQ(rook_spawn(&ts[0], sleeper, &q), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], return_value, (void *)(intptr_t)-EPERM), 0);
	while (!rook_done(ts[1]))
		T_CHECK_EQ(rook_yield(), 0);
	t0 = rook_now();
	T_CHECK_EQ(rook_wait_any(ts, 2), 1);
	T_CHECK(ms_since(t0) < 5000); /* gross: it did not wait for the sleeper */
	T_CHECK_EQ(first_error(ts, 2), -EPERM);
	/* No failure: behaves like "all". */
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], return_value, (void *)(intptr_t)0), 0);
	T_CHECK_EQ(first_error(ts, 3), 0);
	return 0;
}

Test(semantics, case30_first_error_loop_returns_at_first_failure, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case30_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 31: waiting under a deadline returns -ETIMEDOUT and neither
 * releases nor cancels anything; the done set is what rook_done says. */
static int case31_main(void *arg)
{
	struct probe a = {.p_ret = 3, .p_ns = 10 * ROOK_MSEC}, b = {.p_ret = 1};
	struct rook_task *ts[2];
	int st = 0;
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_spawn(&ts[0], sleeper, &a), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], sleeper, &b), 0);
	T_CHECK_EQ(rook_deadline_push(t0 + 60 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_wait_any(ts, 2), 0);
	T_CHECK_EQ(rook_wait_any(ts + 1, 1), -ETIMEDOUT);
	T_CHECK(ms_since(t0) >= 59);
	T_CHECK(rook_deadline_pop());
	T_CHECK(rook_done(ts[0]));  /* done: {a} */
	T_CHECK(!rook_done(ts[1])); /* pending: {b}, untouched */
	T_CHECK_EQ(atomic_load(&b.p_ended), 0);
	T_CHECK_EQ(rook_join(ts[0], &st), 0);
	T_CHECK_EQ(st, 3);
	T_CHECK_EQ(rook_cancel(ts[1]), 0);
	T_CHECK_EQ(rook_join(ts[1], &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(semantics, case31_wait_any_timeout_neither_raises_nor_cancels, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case31_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int wait_any_self(void *arg)
{
	struct rook_task *ts[2] = {arg, rook_self()};
	return rook_wait_any(ts, 2);
}

static int case32_main(void *arg)
{
	struct probe p = {.p_ret = 1};
	struct rook_task *ts[40], *t, *dup[2];
	int st = 0;

	T_CHECK_EQ(rook_wait_any(NULL, 3), -EINVAL);
	T_CHECK_EQ(rook_wait_any(ts, 0), -EINVAL);
	/* A released handle. */
	T_CHECK_EQ(rook_spawn(&t, return_value, NULL), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(rook_wait_any(&t, 1), -EINVAL);
	/* Itself. */
	T_CHECK_EQ(rook_spawn(&ts[0], sleeper, &p), 0);
	T_CHECK_EQ(rook_spawn(&t, wait_any_self, ts[0]), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EDEADLK);
	/* Duplicates count once: the first index is reported. */
	dup[0] = dup[1] = ts[0];
	T_CHECK_EQ(rook_cancel(ts[0]), 0);
	T_CHECK_EQ(rook_wait_any(dup, 2), 0);
	T_CHECK_EQ(rook_join(ts[0], &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	/* More than fit on the stack: the last one finishes. */
	struct probe many[40];
	for (int i = 0; i < 40; i++) {
		many[i] =
		    (struct probe){.p_ret = i == 39 ? 39 : 1, .p_ns = i == 39 ? 5 * ROOK_MSEC : 0};
		T_CHECK_EQ(rook_spawn(&ts[i], sleeper, &many[i]), 0);
	}
	T_CHECK_EQ(rook_wait_any(ts, 40), 39);
	for (int i = 0; i < 39; i++)
		T_CHECK_EQ(rook_cancel(ts[i]), 0);
	T_CHECK_EQ(rook_gather(ts, 40, NULL), 0);
	return 0;
}

Test(semantics, case32_wait_any_misuse_and_duplicates, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case32_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* The README's as_completed loop; ids[] follows the swaps so the caller
 * knows which input finished. Returns 0 or the interrupting error. */
static int as_completed(struct rook_task **ts, int *ids, size_t n, int *order, int *sts,
			_Atomic size_t *got)
{
	size_t k = 0;
	atomic_store_explicit(got, 0, memory_order_release);
	while (n > 0) {
		int i = rook_wait_any(ts, n), st;
		if (i < 0)
			return i;      /* -ECANCELED / -ETIMEDOUT: the rest keep running */
		rook_join(ts[i], &st); /* finished: returns at once */
		order[k] = ids[i];
		sts[k++] = st;
		atomic_store_explicit(got, k, memory_order_release); /* ordered_child */
		ts[i] = ts[--n];
		ids[i] = ids[n];
	}
	return 0;
}

static int case33_main(void *arg)
{
	_Atomic size_t got = 0;
	/* Finish order: c, a, d, b. */
	struct ordered o[4] = {{&got, 1, 10}, {&got, 3, 11}, {&got, 0, 12}, {&got, 2, 13}};
	struct rook_task *ts[4];
	int ids[4] = {0, 1, 2, 3}, order[4], sts[4];

	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&ts[i], ordered_child, &o[i]), 0);
	T_CHECK_EQ(as_completed(ts, ids, 4, order, sts, &got), 0);
	T_CHECK_EQ(got, 4);
	T_CHECK_EQ(order[0], 2);
	T_CHECK_EQ(order[1], 0);
	T_CHECK_EQ(order[2], 3);
	T_CHECK_EQ(order[3], 1);
	for (int k = 0; k < 4; k++)
		T_CHECK_EQ(sts[k], 10 + order[k]);

	/* Under a deadline: 'a' first, then -ETIMEDOUT for the rest. */
	struct probe a = {.p_ret = 5, .p_ns = 5 * ROOK_MSEC}, b = {.p_ret = 1};
	int ids2[2] = {0, 1};
	T_CHECK_EQ(rook_spawn(&ts[0], sleeper, &a), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], sleeper, &b), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	T_CHECK_EQ(as_completed(ts, ids2, 2, order, sts, &got), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(got, 1);
	T_CHECK_EQ(order[0], 0);
	T_CHECK_EQ(sts[0], 5);
	T_CHECK_EQ(rook_cancel(ts[0]), 0); /* the swap left b in ts[0] */
	T_CHECK_EQ(rook_join(ts[0], &sts[1]), 0);
	T_CHECK_EQ(sts[1], -ECANCELED);
	return 0;
}

Test(semantics, case33_as_completed_loop_yields_completion_order, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case33_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 34: select over {queue get, timer} is wait_any over one task per
 * branch; the losing get is cancelled and consumes nothing. */
struct getter {
	struct rook_queue *g_q;
	int g_item;
};

static int getter(void *arg)
{
	struct getter *g = arg;
	return rook_queue_get(g->g_q, &g->g_item);
}

static int case34_main(void *arg)
{
	struct rook_queue *q;
	struct getter g = {0};
	struct probe tm = {.p_ret = 0, .p_ns = 20 * ROOK_MSEC};
	struct rook_task *ts[2];
	int st = 1, item = 0;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(int), 0), 0);
	g.g_q = q;
	/* The timer wins; the get loses and takes nothing. */
	T_CHECK_EQ(rook_spawn(&ts[0], getter, &g), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], sleeper, &tm), 0);
	T_CHECK_EQ(rook_wait_any(ts, 2), 1);
	T_CHECK_EQ(rook_cancel(ts[0]), 0);
	T_CHECK_EQ(rook_gather(ts, 2, NULL), 0);
	item = 5;
	T_CHECK_EQ(rook_queue_put(q, &item), 0);
	T_CHECK_EQ(rook_queue_len(q), 1);
	item = 0;
	T_CHECK_EQ(rook_queue_try_get(q, &item), 0);
	T_CHECK_EQ(item, 5);
	/* The get wins with the item; the timer is cancelled. */
	tm = (struct probe){.p_ret = 0, .p_ns = 10 * ROOK_SEC};
	T_CHECK_EQ(rook_spawn(&ts[0], getter, &g), 0);
	T_CHECK_EQ(rook_spawn(&ts[1], sleeper, &tm), 0);
	item = 9;
	T_CHECK_EQ(rook_queue_put(q, &item), 0);
	T_CHECK_EQ(rook_wait_any(ts, 2), 0);
	T_CHECK_EQ(rook_join(ts[0], &st), 0);
	T_CHECK_EQ(st, 0);
	T_CHECK_EQ(g.g_item, 9);
	T_CHECK_EQ(rook_cancel(ts[1]), 0);
	T_CHECK_EQ(rook_join(ts[1], NULL), 0);
	T_CHECK_EQ(rook_queue_len(q), 0);
	rook_queue_destroy(q);
	return 0;
}

Test(semantics, case34_select_losing_get_consumes_nothing, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case34_main, NULL), 0);
	expect_clean_shutdown(fds);
}
