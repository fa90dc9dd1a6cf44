/* SPDX-License-Identifier: MIT */
/*
 * SEMANTICS.md section G (task groups, cases 48-57): one test per case,
 * named after it. rook's group (asyncio.TaskGroup): the first failing
 * child cancels its siblings, rook_group_wait returns that failure after
 * every child ended, rook_group_next yields children in completion order,
 * a cancelled owner cancels the group, spawning into a failed group is
 * -ECANCELED.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

struct probe {
	_Atomic int p_started, p_ended, p_rc;
	int p_ret;              /* 1: return the sleep's result */
	uint64_t p_ns;          /* 0: forever */
	uint64_t p_shielded_ns; /* > 0: sleep this long in a shield first */
};

static int sleeper(void *arg)
{
	struct probe *p = arg;
	atomic_store_explicit(&p->p_started, 1, memory_order_release);
	if (p->p_shielded_ns) {
		rook_shield_push();
		T_CHECK_EQ(rook_sleep(p->p_shielded_ns), 0);
		rook_shield_pop();
	}
	int rc = rook_sleep(p->p_ns ? p->p_ns : FOREVER);
	atomic_store(&p->p_rc, rc);
	atomic_store_explicit(&p->p_ended, 1, memory_order_release);
	return p->p_ret == 1 ? rc : p->p_ret;
}

static void run_main(rook_fn fn)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fn, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Drain rook_group_next; returns how many children it yielded. */
static int drain_next(struct rook_group *g, void **args, int *sts, int cap)
{
	int n = 0, rc;
	void *a;
	int st;
	while ((rc = rook_group_next(g, &a, &st)) == 0) {
		if (n < cap) {
			args[n] = a;
			sts[n] = st;
		}
		n++;
	}
	T_CHECK_EQ(rc, -ENOENT);
	return n;
}

/* Case 48: the group waits for all children, one spawned late by a child;
 * a child cancelled explicitly does not fail the group. */
struct case48 {
	struct rook_group *c_g;
	struct probe c_late;
	_Atomic int c_spawned;
};

static int spawn_late(void *arg)
{
	struct case48 *c = arg;
	T_CHECK_EQ(rook_sleep(5 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_group_spawn(c->c_g, sleeper, &c->c_late), 0);
	atomic_store(&c->c_spawned, 1);
	return 0;
}

static int cancel_self(void *arg)
{
	T_CHECK_EQ(rook_cancel(rook_self()), 0);
	return rook_sleep(FOREVER); /* -ECANCELED */
}

static int case48_main(void *arg)
{
	struct case48 c = {.c_late = {.p_ret = 0, .p_ns = 20 * ROOK_MSEC}};
	struct probe a = {.p_ret = 0, .p_ns = 10 * ROOK_MSEC};
	void *args[8];
	int sts[8];

	T_CHECK_EQ(rook_group_create(&c.c_g), 0);
	T_CHECK_EQ(rook_group_spawn(c.c_g, sleeper, &a), 0);
	T_CHECK_EQ(rook_group_spawn(c.c_g, spawn_late, &c), 0);
	T_CHECK_EQ(rook_group_spawn(c.c_g, cancel_self, NULL), 0);
	T_CHECK_EQ(rook_group_wait(c.c_g), 0);
	T_CHECK_EQ(atomic_load(&c.c_spawned), 1);
	T_CHECK_EQ(atomic_load(&c.c_late.p_ended), 1);
	T_CHECK_EQ(atomic_load(&a.p_ended), 1);
	T_CHECK_EQ(drain_next(c.c_g, args, sts, 8), 4);
	rook_group_destroy(c.c_g);
	return 0;
}

Test(semantics, case48_group_waits_for_all_cancelled_child_is_not_failure, .timeout = 30)
{
	run_main(case48_main);
}

/* rook_group_next yields children in completion order. Child k may end
 * only once the owner has taken the one before it (a child's end is
 * recorded after its body returns, so the body cannot order it). */
struct ordered {
	_Atomic int *o_turn;
	int o_rank;
};

static int ordered_child(void *arg)
{
	struct ordered *o = arg;
	while (atomic_load_explicit(o->o_turn, memory_order_acquire) != o->o_rank)
		if (rook_yield() != 0)
			return -ECANCELED;
	return 0;
}

static int case48_next_main(void *arg)
{
	_Atomic int turn = 0;
	struct ordered o[4] = {{&turn, 2}, {&turn, 0}, {&turn, 3}, {&turn, 1}};
	struct rook_group *g;
	void *a = NULL;
	int st = -1;

	T_CHECK_EQ(rook_group_create(&g), 0);
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_group_spawn(g, ordered_child, &o[i]), 0);
	const int want[4] = {1, 3, 0, 2};
	for (int k = 0; k < 4; k++) {
		T_CHECK_EQ(rook_group_next(g, &a, &st), 0);
		T_CHECK(a == &o[want[k]]);
		T_CHECK_EQ(st, 0);
		atomic_store_explicit(&turn, k + 1, memory_order_release);
	}
	T_CHECK_EQ(rook_group_next(g, &a, &st), -ENOENT);
	T_CHECK_EQ(rook_group_wait(g), 0);
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case48_group_next_yields_completion_order, .timeout = 30)
{
	run_main(case48_next_main);
}

/* Case 49: the first failure cancels the siblings, which have ended when
 * rook_group_wait returns it. rook does not cancel the owner (the body). */
static int case49_main(void *arg)
{
	struct probe s[2] = {{.p_ret = 1}, {.p_ret = 1}};
	struct probe f = {.p_ret = -EIO, .p_ns = 10 * ROOK_MSEC};
	struct rook_group *g;
	uint64_t t0 = rook_now();

	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &s[0]), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &f), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &s[1]), 0);
	/* The body keeps going while the child fails. */
	T_CHECK_EQ(rook_sleep(30 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_group_wait(g), -EIO);
	T_CHECK(ms_since(t0) < 2000);
	/* A sibling that had not started when the group failed never runs
	 * (on a loaded machine that happens); one that had, ended cancelled. */
	for (int i = 0; i < 2; i++) {
		if (!atomic_load(&s[i].p_started)) {
			T_CHECK_EQ(atomic_load(&s[i].p_ended), 0);
			continue;
		}
		T_CHECK_EQ(atomic_load(&s[i].p_ended), 1);
		T_CHECK_EQ(atomic_load(&s[i].p_rc), -ECANCELED);
	}
	T_CHECK_EQ(rook_yield(), 0); /* the owner is not cancelled */
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case49_first_child_error_cancels_siblings, .timeout = 30)
{
	run_main(case49_main);
}

/* Case 50: no group_fail: a failing body cancels the group and waits. */
static int case50_main(void *arg)
{
	struct probe s[3] = {{.p_ret = 1}, {.p_ret = 1}, {.p_ret = 1}};
	struct rook_group *g;
	void *args[4];
	int sts[4];

	T_CHECK_EQ(rook_group_create(&g), 0);
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_group_spawn(g, sleeper, &s[i]), 0);
	for (int i = 0; i < 3; i++)
		await_flag(&s[i].p_started);
	/* The body fails: */
	rook_group_cancel(g);
	T_CHECK_EQ(rook_group_wait(g), 0); /* cancellations are not failures */
	T_CHECK_EQ(drain_next(g, args, sts, 4), 3);
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(sts[i], -ECANCELED);
		T_CHECK_EQ(atomic_load(&s[i].p_rc), -ECANCELED);
	}
	rook_group_destroy(g);
	return -EPROTO; /* the body's own error */
}

Test(semantics, case50_body_error_cancels_children_via_group_cancel, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, case50_main, NULL), -EPROTO);
	expect_clean_shutdown(fds);
}

/* Case 51: several children fail: rook_group_wait returns the first; every
 * status, errors and induced cancellations, comes from rook_group_next. */
static int case51_main(void *arg)
{
	struct probe f1 = {.p_ret = -EIO, .p_ns = 5 * ROOK_MSEC};
	struct probe f2 = {.p_ret = -EPERM, .p_shielded_ns = 40 * ROOK_MSEC};
	struct probe s = {.p_ret = 1};
	struct rook_group *g;
	void *args[4];
	int sts[4], n_err = 0, n_cancel = 0;

	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &f1), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &f2), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &s), 0);
	T_CHECK_EQ(rook_group_wait(g), -EIO);
	T_CHECK_EQ(drain_next(g, args, sts, 4), 3);
	T_CHECK(args[0] == &f1);
	T_CHECK_EQ(sts[0], -EIO);
	T_CHECK(args[2] == &f2); /* finished last, after its shielded sleep */
	T_CHECK_EQ(sts[2], -EPERM);
	for (int i = 0; i < 3; i++) {
		n_err += sts[i] != 0 && sts[i] != -ECANCELED;
		n_cancel += sts[i] == -ECANCELED;
	}
	T_CHECK_EQ(n_err, 2);
	T_CHECK_EQ(n_cancel, 1);
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case51_multiple_child_errors_all_available_from_next, .timeout = 30)
{
	run_main(case51_main);
}

/* Case 52: cancelling the owner cancels the children; its wait returns
 * -ECANCELED after they ended; their statuses stay available. */
struct case52 {
	struct probe c_p[3];
	_Atomic int c_waiting;
	_Atomic int c_ended_at_return;
	_Atomic int c_next_count, c_next_cancelled;
};

static int case52_owner(void *arg)
{
	struct case52 *c = arg;
	struct rook_group *g;
	void *args[4];
	int sts[4];

	T_CHECK_EQ(rook_group_create(&g), 0);
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_group_spawn(g, sleeper, &c->c_p[i]), 0);
	atomic_store(&c->c_waiting, 1);
	int rc = rook_group_wait(g);
	int ended = 0;
	for (int i = 0; i < 3; i++)
		ended += atomic_load(&c->c_p[i].p_ended);
	atomic_store(&c->c_ended_at_return, ended);
	int n = drain_next(g, args, sts, 4); /* finished ones even when cancelled */
	atomic_store(&c->c_next_count, n);
	for (int i = 0; i < n && i < 4; i++)
		atomic_fetch_add(&c->c_next_cancelled, sts[i] == -ECANCELED);
	rook_group_destroy(g);
	return rc;
}

static int case52_main(void *arg)
{
	struct case52 c = {.c_p = {{.p_ret = 1}, {.p_ret = 1}, {.p_ret = 1}}};
	struct rook_task *t;
	int st = 0;

	T_CHECK_EQ(rook_spawn(&t, case52_owner, &c), 0);
	await_flag(&c.c_waiting);
	for (int i = 0; i < 3; i++)
		await_flag(&c.c_p[i].p_started);
	T_CHECK_EQ(rook_cancel(t), 0);
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&c.c_ended_at_return), 3);
	T_CHECK_EQ(atomic_load(&c.c_next_count), 3);
	T_CHECK_EQ(atomic_load(&c.c_next_cancelled), 3);
	return 0;
}

Test(semantics, case52_cancelled_owner_cancels_children_and_reaps_them, .timeout = 30)
{
	run_main(case52_main);
}

/* Case 53: nested groups. An outer failure cancels the inner group (its
 * wait returns -ECANCELED, not a failure); an inner failure propagates as
 * the outer failure. */
struct inner_arg {
	struct probe i_kids[2];
	_Atomic int i_rc;
	int i_fail; /* make an inner child fail with this */
};

static int inner_owner(void *arg)
{
	struct inner_arg *in = arg;
	struct rook_group *g;
	struct probe f = {.p_ret = in->i_fail, .p_ns = 5 * ROOK_MSEC};

	T_CHECK_EQ(rook_group_create(&g), 0);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(rook_group_spawn(g, sleeper, &in->i_kids[i]), 0);
	if (in->i_fail)
		T_CHECK_EQ(rook_group_spawn(g, sleeper, &f), 0);
	int rc = rook_group_wait(g);
	atomic_store(&in->i_rc, rc);
	rook_group_destroy(g);
	return rc;
}

static int case53_main(void *arg)
{
	struct inner_arg in = {.i_kids = {{.p_ret = 1}, {.p_ret = 1}}};
	struct probe f = {.p_ret = -EIO, .p_ns = 10 * ROOK_MSEC};
	struct rook_group *g;

	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, inner_owner, &in), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &f), 0);
	T_CHECK_EQ(rook_group_wait(g), -EIO);
	T_CHECK_EQ(atomic_load(&in.i_rc), -ECANCELED);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(atomic_load(&in.i_kids[i].p_rc), -ECANCELED);
	rook_group_destroy(g);

	struct inner_arg in2 = {.i_kids = {{.p_ret = 1}, {.p_ret = 1}}, .i_fail = -EPERM};
	struct probe sib = {.p_ret = 1};
	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, inner_owner, &in2), 0);
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &sib), 0);
	T_CHECK_EQ(rook_group_wait(g), -EPERM);
	T_CHECK_EQ(atomic_load(&in2.i_rc), -EPERM);
	T_CHECK_EQ(atomic_load(&sib.p_rc), -ECANCELED);
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case53_nested_groups_propagate_failure_and_cancel, .timeout = 30)
{
	run_main(case53_main);
}

/* Case 54: a group's internal cancellation does not leak into its owner;
 * an external cancel of the owner is still delivered. */
struct case54 {
	_Atomic int c_waiting, c_gate;
	_Atomic int c_wait_rc, c_after_rc;
};

static int gated_fail(void *arg)
{
	struct case54 *c = arg;
	rook_shield_push(); /* fails only when the gate opens */
	while (!atomic_load(&c->c_gate))
		T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
	rook_shield_pop();
	return -EIO;
}

static int case54_owner(void *arg)
{
	struct case54 *c = arg;
	struct rook_group *g;
	struct probe s = {.p_ret = 1};

	T_CHECK_EQ(rook_group_create(&g), 0);
	/* The sleeper first: with the gate open the failing child may fail on
	 * the other worker at once, and a spawn after that is -ECANCELED. */
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &s), 0);
	T_CHECK_EQ(rook_group_spawn(g, gated_fail, c), 0);
	atomic_store(&c->c_waiting, 1);
	atomic_store(&c->c_wait_rc, rook_group_wait(g));
	atomic_store(&c->c_after_rc, rook_sleep(ROOK_MSEC));
	rook_group_destroy(g);
	return 0;
}

static int case54_main(void *arg)
{
	struct case54 c = {.c_gate = 1}, d = {0};
	struct rook_task *t;

	/* Child failure only: the owner's later sleep succeeds. */
	T_CHECK_EQ(rook_spawn(&t, case54_owner, &c), 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK_EQ(atomic_load(&c.c_wait_rc), -EIO);
	T_CHECK_EQ(atomic_load(&c.c_after_rc), 0);
	/* External cancel while the child fails: the cancel is kept. */
	T_CHECK_EQ(rook_spawn(&t, case54_owner, &d), 0);
	await_flag(&d.c_waiting);
	T_CHECK_EQ(rook_cancel(t), 0);
	atomic_store(&d.c_gate, 1);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK(atomic_load(&d.c_wait_rc) == -ECANCELED || atomic_load(&d.c_wait_rc) == -EIO);
	T_CHECK_EQ(atomic_load(&d.c_after_rc), -ECANCELED);
	return 0;
}

Test(semantics, case54_group_cancellation_does_not_leak_into_owner, .timeout = 30)
{
	run_main(case54_main);
}

/* Case 55: spawning into a failed group is -ECANCELED (arg untouched, the
 * caller frees it); into a cancelled group the child ends -ECANCELED
 * unrun; a finished group takes new children (no "finished" state). */
static _Atomic int case55_ran;

static int count_run(void *arg)
{
	atomic_fetch_add(&case55_ran, 1);
	return (int)(intptr_t)arg;
}

static int case55_main(void *arg)
{
	struct rook_group *g;
	int *heap_arg = malloc(sizeof(int)), st = 0, ok = 0, refused = 0;
	void *a;

	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, count_run, (void *)(intptr_t)-EIO), 0);
	T_CHECK_EQ(rook_group_wait(g), -EIO);
	T_CHECK_EQ(rook_group_spawn(g, count_run, heap_arg), -ECANCELED);
	free(heap_arg);
	T_CHECK_EQ(rook_group_spawn(NULL, count_run, NULL), -EINVAL);
	T_CHECK_EQ(rook_group_spawn(g, NULL, NULL), -EINVAL);
	rook_group_destroy(g);
	T_CHECK_EQ(atomic_load(&case55_ran), 1);

	/* Cancelled: accepted, never runs. */
	T_CHECK_EQ(rook_group_create(&g), 0);
	rook_group_cancel(g);
	T_CHECK_EQ(rook_group_spawn(g, count_run, NULL), 0);
	T_CHECK_EQ(rook_group_wait(g), 0);
	T_CHECK_EQ(rook_group_next(g, &a, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&case55_ran), 1);
	rook_group_destroy(g);

	/* Finished: a group is reusable until destroyed. */
	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, count_run, NULL), 0);
	T_CHECK_EQ(rook_group_wait(g), 0);
	T_CHECK_EQ(rook_group_spawn(g, count_run, (void *)(intptr_t)0), 0);
	T_CHECK_EQ(rook_group_wait(g), 0);
	T_CHECK_EQ(atomic_load(&case55_ran), 3);
	rook_group_destroy(g);

	/* A fast-failing first child makes our own spawn loop hit -ECANCELED. */
	atomic_store(&case55_ran, 0);
	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_spawn(g, count_run, (void *)(intptr_t)-EIO), 0);
	for (int i = 0; i < 1000; i++) {
		int rc = rook_group_spawn(g, count_run, NULL);
		if (rc == 0)
			ok++;
		else if (rc == -ECANCELED)
			refused++;
		else
			T_CHECK_EQ(rc, 0);
		if (i % 16 == 0)
			(void)rook_yield();
	}
	T_CHECK_EQ(rook_group_wait(g), -EIO);
	T_CHECK_EQ(ok + refused, 1000);
	T_CHECK(refused > 0);
	T_CHECK(atomic_load(&case55_ran) <= ok + 1);
	void *args[1];
	int sts[1];
	T_CHECK_EQ(drain_next(g, args, sts, 1), ok + 1);
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case55_spawn_into_failed_group_is_ecanceled, .timeout = 30)
{
	run_main(case55_main);
}

/* Case 56: children spawn siblings while the owner waits (a hydra). */
struct hydra {
	struct rook_group *h_g;
	_Atomic long h_count;
	int h_fail_at; /* a node with this id fails; 0: none */
};

struct hydra_node {
	struct hydra *n_h;
	int n_depth, n_id;
};

static int hydra_child(void *arg)
{
	struct hydra_node *n = arg;
	struct hydra *h = n->n_h;
	int rc = 0;

	atomic_fetch_add(&h->h_count, 1);
	if (h->h_fail_at && n->n_id == h->h_fail_at)
		rc = -EIO;
	else if (n->n_depth > 0)
		for (int k = 0; k < 2; k++) {
			struct hydra_node *c = malloc(sizeof(*c));
			*c = (struct hydra_node){h, n->n_depth - 1, n->n_id * 2 + k};
			int r = rook_group_spawn(h->h_g, hydra_child, c);
			if (r != 0) {
				T_CHECK_EQ(r, -ECANCELED); /* only after a failure */
				free(c);
			}
		}
	free(n);
	return rc;
}

static int case56_main(void *arg)
{
	const int depth = 9;
	struct hydra h = {0};
	struct hydra_node *root = malloc(sizeof(*root));

	T_CHECK_EQ(rook_group_create(&h.h_g), 0);
	*root = (struct hydra_node){&h, depth, 1};
	T_CHECK_EQ(rook_group_spawn(h.h_g, hydra_child, root), 0);
	T_CHECK_EQ(rook_group_wait(h.h_g), 0);
	T_CHECK_EQ(atomic_load(&h.h_count), (1L << (depth + 1)) - 1);
	rook_group_destroy(h.h_g);

	struct hydra h2 = {.h_fail_at = 5};
	root = malloc(sizeof(*root));
	T_CHECK_EQ(rook_group_create(&h2.h_g), 0);
	*root = (struct hydra_node){&h2, depth, 1};
	T_CHECK_EQ(rook_group_spawn(h2.h_g, hydra_child, root), 0);
	T_CHECK_EQ(rook_group_wait(h2.h_g), -EIO);
	T_CHECK(atomic_load(&h2.h_count) < (1L << (depth + 1)) - 1);
	/* Children cancelled before they ran never freed their node: the arg
	 * is the caller's, handed back by rook_group_next. */
	void *a;
	int st;
	while (rook_group_next(h2.h_g, &a, &st) == 0)
		if (st == -ECANCELED)
			free(a);
	rook_group_destroy(h2.h_g);
	return 0;
}

Test(semantics, case56_children_spawn_siblings_while_owner_waits, .timeout = 60)
{
	run_main(case56_main);
}

/* Case 57: rook_group_cancel from a plain thread and from a child: the
 * wait returns 0 (only group cancellation), next is -ENOENT when empty. */
struct case57 {
	_Atomic(struct rook_group *) c_g;
	struct probe c_p[2];
	_Atomic int c_wait_rc, c_next_n, c_next_cancelled;
	_Atomic int c_release;
};

static int case57_owner(void *arg)
{
	struct case57 *c = arg;
	struct rook_group *g;
	void *a;
	int st;

	T_CHECK_EQ(rook_group_create(&g), 0);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(rook_group_spawn(g, sleeper, &c->c_p[i]), 0);
	atomic_store(&c->c_g, g);
	atomic_store(&c->c_wait_rc, rook_group_wait(g));
	while (rook_group_next(g, &a, &st) == 0) {
		atomic_fetch_add(&c->c_next_n, 1);
		atomic_fetch_add(&c->c_next_cancelled, st == -ECANCELED);
	}
	T_CHECK_EQ(rook_group_next(g, &a, &st), -ENOENT);
	while (!atomic_load(&c->c_release))
		T_CHECK_EQ(rook_yield(), 0);
	rook_group_destroy(g);
	return 0;
}

static int cancel_own_group(void *arg)
{
	rook_group_cancel(arg);
	return 0;
}

static int case57_main(void *arg)
{
	struct rook_group *g;
	struct probe s = {.p_ret = 1};
	void *a;
	int st;

	T_CHECK_EQ(rook_group_create(&g), 0);
	T_CHECK_EQ(rook_group_next(g, &a, &st), -ENOENT); /* empty */
	T_CHECK_EQ(rook_group_spawn(g, sleeper, &s), 0);
	T_CHECK_EQ(rook_group_spawn(g, cancel_own_group, g), 0); /* from inside */
	T_CHECK_EQ(rook_group_wait(g), 0);
	/* The sleeper was cancelled, running or before it started. */
	for (int i = 0; i < 2; i++) {
		T_CHECK_EQ(rook_group_next(g, &a, &st), 0);
		if (a == &s)
			T_CHECK_EQ(st, -ECANCELED);
		else
			T_CHECK_EQ(st, 0);
	}
	rook_group_destroy(g);
	return 0;
}

Test(semantics, case57_group_cancel_from_inside_and_from_plain_thread, .timeout = 30)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct case57 c = {.c_p = {{.p_ret = 1}, {.p_ret = 1}}};
	struct rook_rt *rt;
	struct rook_task *t;
	int st = 1;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case57_main, NULL), 0);
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	cr_assert_eq(rook_rt_spawn(rt, &t, case57_owner, &c), 0);
	while (!atomic_load(&c.c_g) || !atomic_load(&c.c_p[0].p_started) ||
	       !atomic_load(&c.c_p[1].p_started))
		sched_yield();
	rook_group_cancel(atomic_load(&c.c_g)); /* from a plain thread */
	atomic_store(&c.c_release, 1);
	cr_assert_eq(rook_join(t, &st), 0);
	cr_assert_eq(st, 0);
	cr_assert_eq(atomic_load(&c.c_wait_rc), 0);
	cr_assert_eq(atomic_load(&c.c_next_n), 2);
	cr_assert_eq(atomic_load(&c.c_next_cancelled), 2);
	cr_assert_eq(rook_rt_stop(rt), 0);
	expect_clean_shutdown(fds);
}

/* rook_group_destroy with other tasks blocked in rook_group_wait and
 * rook_group_next: the last child's end wakes them all at once, and the
 * destroyer, woken too, freed the group under them (ASan: a use after
 * free at two workers). Each must return as rook.h says. */
struct gd {
	struct rook_group *g;
	int res;
};

static int gd_sleeper(void *arg)
{
	(void)arg;
	return rook_sleep(60 * ROOK_SEC); /* until the destroy cancels it */
}

static int gd_wait(void *arg)
{
	struct gd *d = arg;
	d->res = rook_group_wait(d->g);
	return 0;
}

static int gd_next(void *arg)
{
	struct gd *d = arg;
	int st = 1;
	d->res = rook_group_next(d->g, NULL, &st);
	if (d->res == 0)
		d->res = st == -ECANCELED ? 1 : st; /* the sleeper, cancelled */
	return 0;
}

static int destroy_main(void *arg)
{
	(void)arg;
	for (int round = 0; round < 30; round++) {
		struct rook_group *g;
		T_CHECK_EQ(rook_group_create(&g), 0);
		T_CHECK_EQ(rook_group_spawn(g, gd_sleeper, NULL), 0);
		struct gd d[8];
		struct rook_task *t[8];
		for (int i = 0; i < 8; i++) {
			d[i] = (struct gd){.g = g, .res = 99};
			T_CHECK_EQ(rook_spawn(&t[i], i % 2 ? gd_next : gd_wait, &d[i]), 0);
		}
		for (int i = 0; i < 8; i++)
			await_parked(t[i]);
		rook_group_destroy(g);
		for (int i = 0; i < 8; i++) {
			T_CHECK_EQ(rook_join(t[i], NULL), 0);
			/* wait: the group's result (a cancelled child is no failure);
			 * next: the cancelled sleeper, or -ENOENT once another
			 * caller took it. */
			if (i % 2)
				T_CHECK(d[i].res == 1 || d[i].res == -ENOENT);
			else
				T_CHECK_EQ(d[i].res, 0);
		}
	}
	return 0;
}

Test(semantics, group_destroy_with_callers_blocked_in_wait_and_next, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, destroy_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, destroy_main, NULL), 0);
	expect_clean_shutdown(fds);
}
