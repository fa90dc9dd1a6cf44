/* SPDX-License-Identifier: MIT */
/*
 * SEMANTICS.md sections A (spawn and join handle, cases 1-6) and B
 * (cancellation, cases 7-17): one test per case, named after it, plus the
 * cross-thread cancels of issue 3 (from another worker, from a plain
 * thread). Where rook deliberately differs from asyncio the test checks
 * what rook does instead (the README lists each difference).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

/* A task that sleeps "forever" and records what its sleep returned. */
struct probe {
	_Atomic int p_started;
	_Atomic int p_ended;
	_Atomic int p_rc; /* the sleep's result */
	int p_ret;        /* returned after the sleep; 1: return the sleep's rc */
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

static int return_42(void *arg)
{
	return 42;
}

static int return_eio(void *arg)
{
	return -EIO;
}

/* ---- A. spawn and join --------------------------------------------------- */

static int case01_main(void *arg)
{
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, return_42, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 42);
	/* status may be NULL */
	T_CHECK_EQ(rook_spawn(&t, return_42, NULL), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

Test(semantics, case01_join_returns_result, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case01_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int case02_main(void *arg)
{
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, return_eio, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0); /* the wait succeeded ... */
	T_CHECK_EQ(st, -EIO);             /* ... the child failed */
	/* The child's error is not the joiner's: the joiner is not cancelled. */
	T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	return 0;
}

Test(semantics, case02_child_error_reported_to_joiner_not_as_own_cancel, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case02_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 3: several waiters use rook_wait_any (which does not release); the
 * owner joins once; a second join is -EINVAL; joining oneself -EDEADLK. */
struct case03 {
	struct rook_task *c_target;
	_Atomic int c_gate;
	_Atomic int c_waiting;
	_Atomic int c_woken;
};

static int case03_target(void *arg)
{
	struct case03 *c = arg;
	await_flag(&c->c_gate);
	return 7;
}

static int case03_waiter(void *arg)
{
	struct case03 *c = arg;
	atomic_fetch_add(&c->c_waiting, 1);
	T_CHECK_EQ(rook_wait_any(&c->c_target, 1), 0);
	T_CHECK(rook_done(c->c_target));
	atomic_fetch_add(&c->c_woken, 1);
	return 0;
}

static int self_join(void *arg)
{
	return rook_join(rook_self(), NULL);
}

static int case03_main(void *arg)
{
	struct case03 c = {0};
	struct rook_task *w[4], *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&c.c_target, case03_target, &c), 0);
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&w[i], case03_waiter, &c), 0);
	while (atomic_load(&c.c_waiting) < 4)
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(atomic_load(&c.c_woken), 0);
	atomic_store(&c.c_gate, 1);
	T_CHECK_EQ(rook_gather(w, 4, NULL), 0);
	T_CHECK_EQ(atomic_load(&c.c_woken), 4); /* N waiters, N wake-ups */
	T_CHECK_EQ(rook_join(c.c_target, &st), 0);
	T_CHECK_EQ(st, 7);
	/* The join released the handle: a second one is misuse. */
	T_CHECK_EQ(rook_join(c.c_target, &st), -EINVAL);
	T_CHECK_EQ(rook_join(NULL, &st), -EINVAL);
	T_CHECK_EQ(rook_spawn(&t, self_join, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EDEADLK);
	return 0;
}

Test(semantics, case03_many_waiters_one_join_second_join_einval_self_join_edeadlk, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case03_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 4: the child finishes on the other worker while we are between
 * "check done" and "park"; no wake-up may be lost. */
static int return_index(void *arg)
{
	return (int)(intptr_t)arg;
}

static int case04_main(void *arg)
{
	long n = scaled(20000, 10);
	struct rook_task *t;
	int st;

	for (long i = 0; i < n; i++) {
		T_CHECK_EQ(rook_spawn(&t, return_index, (void *)(intptr_t)(i & 0xffff)), 0);
		if (i & 1) /* sometimes let it finish first: the fast path */
			while (!rook_done(t))
				T_CHECK_EQ(rook_yield(), 0);
		st = -1;
		T_CHECK_EQ(rook_join(t, &st), 0);
		T_CHECK_EQ(st, i & 0xffff);
	}
	return 0;
}

Test(semantics, case04_join_racing_completion_never_loses_wakeup, .timeout = 120)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt;
	long n = scaled(5000, 10);

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case04_main, NULL), 0);
	/* From a plain thread too (it blocks on a futex). */
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	for (long i = 0; i < n; i++) {
		struct rook_task *t;
		int st = -1;
		cr_assert_eq(rook_rt_spawn(rt, &t, return_index, (void *)(intptr_t)i), 0);
		cr_assert_eq(rook_join(t, &st), 0);
		cr_assert_eq(st, i);
	}
	cr_assert_eq(rook_rt_stop(rt), 0);
	expect_clean_shutdown(fds);
}

/* Case 5: detaching does not cancel. */
struct case05 {
	_Atomic int c_go;
	_Atomic int c_finished;
	_Atomic int c_saw_error;
};

static int case05_task(void *arg)
{
	struct case05 *c = arg;
	while (!atomic_load(&c->c_go))
		if (rook_yield() != 0)
			atomic_store(&c->c_saw_error, 1);
	if (rook_sleep(ROOK_MSEC) != 0)
		atomic_store(&c->c_saw_error, 1);
	atomic_store(&c->c_finished, 1);
	return 0;
}

static int case05_main(void *arg)
{
	struct case05 *c = arg;
	struct rook_task *t;

	T_CHECK_EQ(rook_spawn(&t, case05_task, c), 0);
	rook_detach(t);
	T_CHECK_EQ(rook_sleep(2 * ROOK_MSEC), 0);
	atomic_store(&c->c_go, 1);
	await_flag(&c->c_finished);
	T_CHECK_EQ(atomic_load(&c->c_saw_error), 0);
	return 0;
}

Test(semantics, case05_detach_does_not_cancel_task, .timeout = 30)
{
	int fds = fd_count();
	struct case05 c = {0};
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case05_main, &c), 0);
	cr_assert_eq(atomic_load(&c.c_finished), 1);
	expect_clean_shutdown(fds);
}

/* Case 6: a cancelled join does not cancel its target. */
struct case06 {
	struct probe c_target;
	struct rook_task *c_th;
	_Atomic int c_joining;
};

static int case06_joiner(void *arg)
{
	struct case06 *c = arg;
	atomic_store(&c->c_joining, 1);
	return rook_join(c->c_th, NULL);
}

static int case06_main(void *arg)
{
	struct case06 c = {.c_target = {.p_ret = 5}};
	struct rook_task *j;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&c.c_th, sleep_forever, &c.c_target), 0);
	await_flag(&c.c_target.p_started); /* cancelled unstarted, it never runs */
	T_CHECK_EQ(rook_spawn(&j, case06_joiner, &c), 0);
	await_flag(&c.c_joining);
	await_parked(j); /* in the join */
	T_CHECK_EQ(rook_cancel(j), 0);
	T_CHECK_EQ(rook_join(j, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	/* The target is untouched and its handle still valid. */
	T_CHECK(!rook_done(c.c_th));
	T_CHECK_EQ(atomic_load(&c.c_target.p_ended), 0);
	T_CHECK_EQ(rook_cancel(c.c_th), 0);
	T_CHECK_EQ(rook_join(c.c_th, &st), 0);
	T_CHECK_EQ(st, 5);
	T_CHECK_EQ(atomic_load(&c.c_target.p_rc), -ECANCELED);
	return 0;
}

Test(semantics, case06_cancelled_join_does_not_cancel_target, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case06_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- B. cancellation ---------------------------------------------------- */

static int case07_main(void *arg)
{
	struct probe p = {.p_ret = 1};
	struct rook_task *t;
	int st = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, sleep_forever, &p), 0);
	await_flag(&p.p_started);
	await_parked(t); /* in the sleep */
	t0 = rook_now();
	T_CHECK_EQ(rook_cancel(t), 0);
	while (!rook_done(t))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK(ms_since(t0) < 2000);  /* promptly, not at its timer */
	T_CHECK_EQ(rook_cancel(t), 0); /* after completion: no effect */
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&p.p_rc), -ECANCELED);
	return 0;
}

Test(semantics, case07_cancel_sleeping_task_join_reports_cancelled, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case07_main, NULL), 0);
	cr_assert_eq(run_with(1, 0, case07_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* From the other worker: the canceller holds its worker (no yield), so the
 * sleeper's wake-up must come through the other one. */
static int case07_worker_main(void *arg)
{
	struct probe p = {.p_ret = 1};
	struct rook_task *t;
	int st = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, sleep_forever, &p), 0);
	await_flag(&p.p_started);
	await_parked(t);
	t0 = rook_now();
	T_CHECK_EQ(rook_cancel(t), 0);
	while (!atomic_load(&p.p_ended) && ms_since(t0) < 5000)
		; /* spin: this worker stays busy */
	T_CHECK(atomic_load(&p.p_ended));
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(semantics, case07_cancel_sleeping_task_from_other_worker, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case07_worker_main, NULL), 0);
	expect_clean_shutdown(fds);
}

Test(semantics, case07_cancel_sleeping_task_from_plain_thread, .timeout = 30)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct probe p = {.p_ret = 1};
	struct rook_rt *rt;
	struct rook_task *t;
	int st = 0;

	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_eq(rook_rt_spawn(rt, &t, sleep_forever, &p), 0);
	await_parked(t);
	uint64_t t0 = rook_now();
	cr_assert_eq(rook_cancel(t), 0);
	cr_assert_eq(rook_join(t, &st), 0);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(st, -ECANCELED);
	cr_assert_eq(rook_rt_stop(rt), 0);
	expect_clean_shutdown(fds);
}

static int case08_main(void *arg)
{
	struct rook_task *a, *b;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&a, return_42, NULL), 0);
	T_CHECK_EQ(rook_spawn(&b, return_eio, NULL), 0);
	while (!rook_done(a) || !rook_done(b))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(rook_cancel(a), 0); /* not an error, no effect */
	T_CHECK_EQ(rook_cancel(b), 0);
	T_CHECK_EQ(rook_join(a, &st), 0);
	T_CHECK_EQ(st, 42);
	T_CHECK_EQ(rook_join(b, &st), 0);
	T_CHECK_EQ(st, -EIO);
	return 0;
}

Test(semantics, case08_cancel_finished_task_keeps_result, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case08_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 9: two cancels before delivery deliver one (sticky) cancellation;
 * inside a shield the task can still block normally. */
struct case09 {
	_Atomic int c_started;
	_Atomic int c_first, c_shielded, c_after;
	_Atomic int c_go;
};

static int case09_task(void *arg)
{
	struct case09 *c = arg;
	atomic_store(&c->c_started, 1);
	atomic_store(&c->c_first, rook_sleep(FOREVER));
	rook_shield_push();
	atomic_store(&c->c_shielded, rook_sleep(ROOK_MSEC));
	rook_shield_pop();
	atomic_store(&c->c_after, rook_sleep(ROOK_MSEC));
	return 0;
}

static int case09_canceller(void *arg)
{
	return rook_cancel(arg);
}

static int case09_main(void *arg)
{
	struct case09 c = {0};
	struct rook_task *t, *k;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&t, case09_task, &c), 0);
	await_flag(&c.c_started);
	/* Two cancels at once, from two tasks (maybe two workers). */
	T_CHECK_EQ(rook_spawn(&k, case09_canceller, t), 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(k, &st), 0);
	T_CHECK_EQ(st, 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	T_CHECK_EQ(atomic_load(&c.c_first), -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_shielded), 0);
	T_CHECK_EQ(atomic_load(&c.c_after), -ECANCELED);
	return 0;
}

Test(semantics, case09_cancel_twice_is_idempotent, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case09_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 10: cancelled before its first run, the body never runs; across
 * workers exactly one of "ran" / "cancelled unrun" happens. */
struct case10 {
	_Atomic int c_ran;
};

static int case10_body(void *arg)
{
	struct case10 *c = arg;
	atomic_store(&c->c_ran, 1);
	return 7;
}

static int case10_main(void *arg)
{
	long n = scaled(5000, 10), unrun = 0;
	struct rook_task *t;
	int st = 0;

	if (rook_workers() == 1) {
		struct case10 *c = calloc(1, sizeof(*c)); /* caller-owned arg */
		T_CHECK_EQ(rook_spawn(&t, case10_body, c), 0);
		T_CHECK_EQ(rook_cancel(t), 0);
		T_CHECK_EQ(rook_join(t, &st), 0);
		T_CHECK_EQ(st, -ECANCELED);
		T_CHECK_EQ(atomic_load(&c->c_ran), 0);
		free(c); /* rook borrowed it; the caller frees it after join */
		return 0;
	}
	for (long i = 0; i < n; i++) {
		struct case10 *c = calloc(1, sizeof(*c));
		T_CHECK_EQ(rook_spawn(&t, case10_body, c), 0);
		T_CHECK_EQ(rook_cancel(t), 0);
		T_CHECK_EQ(rook_join(t, &st), 0);
		if (atomic_load(&c->c_ran)) {
			T_CHECK_EQ(st, 7); /* ran without blocking: result kept */
		} else {
			T_CHECK_EQ(st, -ECANCELED);
			unrun++;
		}
		free(c);
	}
	T_CHECK(unrun > 0);
	return 0;
}

Test(semantics, case10_cancel_before_start_body_never_runs, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, case10_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case10_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 11: a cancel lands at the next blocking call, which fails at once. */
static int case11_task(void *arg)
{
	volatile unsigned long sink = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_cancel(rook_self()), 0);
	for (unsigned long i = 0; i < 100000; i++) /* CPU code: nothing happens */
		sink += i;
	T_CHECK(!rook_done(rook_self()));
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(100 * ROOK_SEC), -ECANCELED);
	T_CHECK(ms_since(t0) < 1000);
	T_CHECK_EQ(rook_yield(), -ECANCELED); /* yield is a checkpoint too */
	return sink ? 3 : 4;
}

static int case11_main(void *arg)
{
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, case11_task, NULL), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 3);
	return 0;
}

Test(semantics, case11_cancel_delivered_at_next_blocking_call, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case11_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 12: cancelled while computing, returns without blocking: the result
 * is kept (rook's choice; asyncio would end it cancelled). */
struct case12 {
	_Atomic int c_started, c_release;
};

static int case12_task(void *arg)
{
	struct case12 *c = arg;
	atomic_store(&c->c_started, 1);
	while (!atomic_load(&c->c_release))
		;
	return 42;
}

static int case12_main(void *arg)
{
	struct case12 c = {0};
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, case12_task, &c), 0);
	await_flag(&c.c_started);
	T_CHECK_EQ(rook_cancel(t), 0);
	atomic_store(&c.c_release, 1);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 42);
	return 0;
}

Test(semantics, case12_cancel_then_return_without_blocking_keeps_result, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case12_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 13: the task catches the cancellation and returns a value. */
static int case13_main(void *arg)
{
	struct probe p0 = {.p_ret = 0}, p42 = {.p_ret = 42};
	struct rook_task *a, *b;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&a, sleep_forever, &p0), 0);
	T_CHECK_EQ(rook_spawn(&b, sleep_forever, &p42), 0);
	await_flag(&p0.p_started);
	await_flag(&p42.p_started);
	T_CHECK_EQ(rook_cancel(a), 0);
	T_CHECK_EQ(rook_cancel(b), 0);
	T_CHECK_EQ(rook_join(a, &st), 0);
	T_CHECK_EQ(st, 0); /* returns 0 anyway: a normal result */
	T_CHECK_EQ(rook_join(b, &st), 0);
	T_CHECK_EQ(st, 42);
	T_CHECK_EQ(atomic_load(&p0.p_rc), -ECANCELED);
	T_CHECK_EQ(atomic_load(&p42.p_rc), -ECANCELED);
	return 0;
}

Test(semantics, case13_task_swallows_cancel_and_returns_value, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case13_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 14: level-triggered: after swallowing one -ECANCELED every later
 * blocking call fails too, until the task returns or enters a shield. */
static int case14_task(void *arg)
{
	struct rook_task *other = arg;
	uint64_t t0;

	T_CHECK_EQ(rook_sleep(FOREVER), -ECANCELED);
	t0 = rook_now();
	T_CHECK_EQ(rook_sleep(10 * ROOK_SEC), -ECANCELED);
	T_CHECK_EQ(rook_sleep(0), -ECANCELED);
	T_CHECK_EQ(rook_yield(), -ECANCELED);
	T_CHECK_EQ(rook_join(other, NULL), -ECANCELED); /* handle stays valid */
	T_CHECK_EQ(rook_wait_any(&other, 1), -ECANCELED);
	T_CHECK_EQ(rook_gather(&other, 1, NULL), -ECANCELED);
	T_CHECK(ms_since(t0) < 1000);
	rook_shield_push();
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	rook_shield_pop();
	T_CHECK_EQ(rook_sleep(ROOK_MSEC), -ECANCELED);
	return 0;
}

static int case14_main(void *arg)
{
	struct probe p = {.p_ret = 9};
	struct rook_task *other, *t;
	int st = 1;

	T_CHECK_EQ(rook_spawn(&other, sleep_forever, &p), 0);
	await_flag(&p.p_started); /* cancelled unstarted, it never runs */
	T_CHECK_EQ(rook_spawn(&t, case14_task, other), 0);
	await_parked(t); /* in its first sleep */
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	T_CHECK(!rook_done(other));
	T_CHECK_EQ(rook_cancel(other), 0);
	T_CHECK_EQ(rook_join(other, &st), 0);
	T_CHECK_EQ(st, 9);
	return 0;
}

Test(semantics, case14_swallowed_cancel_is_redelivered_level_triggered, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case14_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 15: a read cancelled while blocked consumed nothing; close always
 * closes, even in a cancelled task. */
struct case15 {
	int c_rfd;
	_Atomic int c_started;
	_Atomic long c_rc;
	_Atomic int c_close_rc, c_fd_gone;
};

static int case15_reader(void *arg)
{
	struct case15 *c = arg;
	char buf[16];

	atomic_store(&c->c_started, 1);
	atomic_store(&c->c_rc, (long)rook_read(c->c_rfd, buf, sizeof(buf), -1));
	return 0;
}

static int case15_closer(void *arg)
{
	struct case15 *c = arg;
	int fd = dup(c->c_rfd);

	T_CHECK(fd >= 0);
	T_CHECK_EQ(rook_cancel(rook_self()), 0);
	atomic_store(&c->c_close_rc, rook_close(fd));
	atomic_store(&c->c_fd_gone, fcntl(fd, F_GETFD) == -1 && errno == EBADF);
	return 0;
}

static int case15_main(void *arg)
{
	struct case15 *c = arg;
	int p[2];
	struct rook_task *t;
	char buf[16];

	T_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	c->c_rfd = p[0];
	T_CHECK_EQ(rook_spawn(&t, case15_reader, c), 0);
	await_flag(&c->c_started);
	await_parked(t); /* in the read */
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(atomic_load(&c->c_rc), -ECANCELED);
	/* The bytes written now are all still there for the next reader. */
	T_CHECK_EQ(write(p[1], "abc", 3), 3);
	T_CHECK_EQ(read(p[0], buf, sizeof(buf)), 3);
	T_CHECK_EQ(rook_spawn(&t, case15_closer, c), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(atomic_load(&c->c_close_rc), 0);
	T_CHECK_EQ(atomic_load(&c->c_fd_gone), 1);
	close(p[0]);
	close(p[1]);
	return 0;
}

Test(semantics, case15_cancelled_read_consumes_nothing_close_still_closes, .timeout = 30)
{
	int fds = fd_count();
	struct case15 c = {0};
	int r = run_with(2, ROOK_NO_PIN, case15_main, &c);

	if (r == -ENOSYS)
		cr_skip_test("io_uring unavailable");
	cr_assert_eq(r, 0);
	expect_clean_shutdown(fds);
}

/* Case 16: an error returned while cancelling wins over the cancellation. */
static int case16_main(void *arg)
{
	struct probe p = {.p_ret = -EIO};
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, sleep_forever, &p), 0);
	await_flag(&p.p_started);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -EIO);
	T_CHECK_EQ(atomic_load(&p.p_rc), -ECANCELED);
	return 0;
}

Test(semantics, case16_error_during_cancel_cleanup_wins, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case16_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Case 17: the join after a cancel waits for the task's shielded cleanup
 * (rook has no cancel_and_join: it is rook_cancel then rook_join). */
struct case17 {
	_Atomic int c_started, c_cleaned;
};

static int case17_task(void *arg)
{
	struct case17 *c = arg;
	int rc;

	atomic_store(&c->c_started, 1);
	rc = rook_sleep(FOREVER);
	rook_shield_push();
	T_CHECK_EQ(rook_sleep(50 * ROOK_MSEC), 0); /* blocking cleanup */
	atomic_store(&c->c_cleaned, 1);
	rook_shield_pop();
	return rc;
}

static int case17_main(void *arg)
{
	struct case17 c = {0};
	struct rook_task *t;
	int st = 0;
	uint64_t t0;

	T_CHECK_EQ(rook_spawn(&t, case17_task, &c), 0);
	await_flag(&c.c_started);
	t0 = rook_now();
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK(!rook_done(t));
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(atomic_load(&c.c_cleaned), 1);
	T_CHECK(ms_since(t0) >= 50);
	T_CHECK_EQ(st, -ECANCELED);
	return 0;
}

Test(semantics, case17_join_after_cancel_waits_for_shielded_cleanup, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case17_main, NULL), 0);
	expect_clean_shutdown(fds);
}
