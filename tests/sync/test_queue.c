/* SPDX-License-Identifier: MIT */
/*
 * Queues (DESIGN.md "Queues across threads"; SEMANTICS.md section H, cases
 * 58-71): FIFO order and blocking, try_ calls, cancelled getters and
 * putters that neither consume nor lose anything, FIFO waiters, task_done
 * and join, close with waiters on both sides, plain threads on both ends,
 * destroy with waiters, argument errors.
 *
 * Single-worker tests are deterministic: a spawned task runs until it
 * parks before the main task, which waits for it with wait_waiters.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sync/queue.h"

/* Yield (or sched_yield on a plain thread) until q has that many getters,
 * putters and joiners waiting. */
static void wait_waiters(struct rook_queue *q, size_t getters, size_t putters, size_t joiners)
{
	struct rook__queue_waiters w;

	for (;;) {
		rook__queue_waiters(q, &w);
		if (w.getters == getters && w.putters == putters && w.joiners == joiners)
			return;
		if (rook_self())
			rook_yield();
		else
			sched_yield();
	}
}

/* A task doing one put or get on a queue. */
struct op {
	struct rook_queue *o_q;
	long o_item; /* put: the item; get: what was got */
	int o_rc;    /* the call's result */
	_Atomic int o_done;
};

static int getter(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_queue_get(o->o_q, &o->o_item);
	atomic_store(&o->o_done, 1);
	return 0;
}

static int putter(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_queue_put(o->o_q, &o->o_item);
	atomic_store(&o->o_done, 1);
	return 0;
}

static int joiner(void *arg)
{
	struct op *o = arg;
	o->o_rc = rook_queue_join(o->o_q);
	atomic_store(&o->o_done, 1);
	return 0;
}

static void join_ok(struct rook_task *t)
{
	int st = -1;
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
}

/* ---- arguments ---------------------------------------------------------- */

Test(queue, calls_fail_with_einval_when_arguments_misused, .timeout = 30)
{
	struct rook_queue *q = (struct rook_queue *)0x1;
	long v = 0;

	cr_assert_eq(rook_queue_create(NULL, 8, 0), -EINVAL);
	cr_assert_eq(rook_queue_create(&q, 0, 4), -EINVAL);
	cr_assert_eq(rook_queue_create(&q, SIZE_MAX, 4), -EINVAL);
	cr_assert_eq(q, (struct rook_queue *)0x1, "q written on failure");
	cr_assert_eq(rook_queue_put(NULL, &v), -EINVAL);
	cr_assert_eq(rook_queue_get(NULL, &v), -EINVAL);
	cr_assert_eq(rook_queue_try_put(NULL, &v), -EINVAL);
	cr_assert_eq(rook_queue_try_get(NULL, &v), -EINVAL);
	cr_assert_eq(rook_queue_task_done(NULL), -EINVAL);
	cr_assert_eq(rook_queue_join(NULL), -EINVAL);
	cr_assert_eq(rook_queue_len(NULL), 0);
	rook_queue_close(NULL);
	rook_queue_destroy(NULL);
	cr_assert_eq(rook_queue_create(&q, sizeof(long), 4), 0);
	cr_assert_eq(rook_queue_put(q, NULL), -EINVAL);
	cr_assert_eq(rook_queue_get(q, NULL), -EINVAL);
	cr_assert_eq(rook_queue_try_put(q, NULL), -EINVAL);
	cr_assert_eq(rook_queue_try_get(q, NULL), -EINVAL);
	rook_queue_destroy(q);
}

Test(queue, create_fails_with_enomem_when_allocation_fails, .timeout = 30)
{
	struct rook_queue *q = NULL;

	rook__alloc_fail_nth(1);
	cr_assert_eq(rook_queue_create(&q, 8, 0), -ENOMEM);
	rook__alloc_fail_nth(2);
	cr_assert_eq(rook_queue_create(&q, 8, 0), -ENOMEM);
	rook__alloc_fail_nth(0);
	cr_assert_eq(q, NULL);
}

/* ---- 58: FIFO order and blocking ------------------------------------------ */

static int case58_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t;
	long v;

	/* Unbounded: FIFO, never full, grows past its first ring. */
	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 0), 0);
	for (long i = 0; i < 1000; i++)
		T_CHECK_EQ(rook_queue_try_put(q, &i), 0);
	T_CHECK_EQ(rook_queue_len(q), 1000);
	for (long i = 0; i < 1000; i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, i);
	}
	T_CHECK_EQ(rook_queue_len(q), 0);
	rook_queue_destroy(q);

	/* Bounded, capacity 1: put blocks while full, resumes on a get. */
	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct op p = {.o_q = q, .o_item = 2};
	T_CHECK_EQ(rook_spawn(&t, putter, &p), 0);
	wait_waiters(q, 0, 1, 0);
	T_CHECK_EQ(atomic_load(&p.o_done), 0);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	join_ok(t);
	T_CHECK_EQ(p.o_rc, 0);
	T_CHECK_EQ(rook_queue_len(q), 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 2);

	/* get blocks while empty, resumes on a put. */
	struct op g = {.o_q = q};
	T_CHECK_EQ(rook_spawn(&t, getter, &g), 0);
	wait_waiters(q, 1, 0, 0);
	T_CHECK_EQ(atomic_load(&g.o_done), 0);
	v = 3;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	join_ok(t);
	T_CHECK_EQ(g.o_rc, 0);
	T_CHECK_EQ(g.o_item, 3);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case58_fifo_order_and_blocking_put_get, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case58_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* maxsize 1 producer/consumer across two workers: no deadlock, in order. */
struct pc {
	struct rook_queue *pc_q;
	long pc_n;
	long pc_bad;
};

static int pc_producer(void *arg)
{
	struct pc *pc = arg;
	for (long i = 0; i < pc->pc_n; i++)
		if (rook_queue_put(pc->pc_q, &i) != 0)
			return -EIO;
	return 0;
}

static int pc_consumer(void *arg)
{
	struct pc *pc = arg;
	long v;
	for (long i = 0; i < pc->pc_n; i++)
		if (rook_queue_get(pc->pc_q, &v) != 0 || v != i)
			pc->pc_bad++;
	return 0;
}

static int case58_pc_main(void *arg)
{
	struct pc pc = {.pc_n = scaled(100000, 10)};
	struct rook_task *a, *b;

	T_CHECK_EQ(rook_queue_create(&pc.pc_q, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_spawn(&a, pc_consumer, &pc), 0);
	T_CHECK_EQ(rook_spawn(&b, pc_producer, &pc), 0);
	join_ok(b);
	join_ok(a);
	T_CHECK_EQ(pc.pc_bad, 0);
	rook_queue_destroy(pc.pc_q);
	return 0;
}

Test(queue, case58_capacity_one_producer_consumer_never_deadlocks, .timeout = 120)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case58_pc_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 59: try_put full / try_get empty --------------------------------------- */

Test(queue, case59_try_put_full_and_try_get_empty_return_eagain, .timeout = 30)
{
	struct rook_queue *q;
	long v = 7, out = -1;

	cr_assert_eq(rook_queue_create(&q, sizeof(long), 2), 0);
	cr_assert_eq(rook_queue_try_get(q, &out), -EAGAIN);
	cr_assert_eq(out, -1, "the item buffer was written");
	cr_assert_eq(rook_queue_try_put(q, &v), 0);
	v = 8;
	cr_assert_eq(rook_queue_try_put(q, &v), 0);
	v = 9;
	cr_assert_eq(rook_queue_try_put(q, &v), -EAGAIN);
	cr_assert_eq(rook_queue_len(q), 2);
	cr_assert_eq(rook_queue_try_get(q, &out), 0);
	cr_assert_eq(out, 7);
	cr_assert_eq(rook_queue_try_get(q, &out), 0);
	cr_assert_eq(out, 8);
	cr_assert_eq(rook_queue_try_get(q, &out), -EAGAIN);
	rook_queue_destroy(q);
}

/* ---- 60: a cancelled put on a full queue enqueues nothing ------------------- */

static int case60_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t;
	long v = 1;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct op p = {.o_q = q, .o_item = 2};
	T_CHECK_EQ(rook_spawn(&t, putter, &p), 0);
	wait_waiters(q, 0, 1, 0);
	T_CHECK_EQ(rook_cancel(t), 0);
	join_ok(t);
	T_CHECK_EQ(p.o_rc, -ECANCELED);
	wait_waiters(q, 0, 0, 0); /* no stale putter left */
	T_CHECK_EQ(rook_queue_len(q), 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case60_cancelled_put_on_full_queue_enqueues_nothing, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case60_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 61: a cancelled get consumes nothing ---------------------------------- */

static int case61_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t1, *t2;
	long v = 'a';

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 0), 0);
	struct op g1 = {.o_q = q, .o_item = -1}, g2 = {.o_q = q, .o_item = -1};
	T_CHECK_EQ(rook_spawn(&t1, getter, &g1), 0);
	wait_waiters(q, 1, 0, 0);
	T_CHECK_EQ(rook_spawn(&t2, getter, &g2), 0);
	wait_waiters(q, 2, 0, 0);
	T_CHECK_EQ(rook_cancel(t1), 0);
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	join_ok(t1);
	join_ok(t2);
	T_CHECK_EQ(g1.o_rc, -ECANCELED);
	T_CHECK_EQ(g1.o_item, -1);
	T_CHECK_EQ(g2.o_rc, 0);
	T_CHECK_EQ(g2.o_item, 'a');
	T_CHECK_EQ(rook_queue_len(q), 0);
	wait_waiters(q, 0, 0, 0);

	/* A task with a cancel pending does not even look at the queue. */
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	T_CHECK_EQ(rook_spawn(&t1, getter, &g1), 0);
	T_CHECK_EQ(rook_cancel(t1), 0); /* before it starts: never runs */
	int st = 0;
	T_CHECK_EQ(rook_join(t1, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(rook_queue_len(q), 1);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case61_cancelled_get_consumes_nothing, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case61_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 62: a getter handed an item and then cancelled keeps it ---------------- */

static int case62_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t[3];
	struct op g[3];
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 0), 0);
	/* One reader: cancelled right after put(1), put(2). */
	g[0] = (struct op){.o_q = q, .o_item = -1};
	T_CHECK_EQ(rook_spawn(&t[0], getter, &g[0]), 0);
	wait_waiters(q, 1, 0, 0);
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	v = 2;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	T_CHECK_EQ(rook_cancel(t[0]), 0);
	join_ok(t[0]);
	/* The hand-off won: the reader returns 1 and 2 stays queued. */
	T_CHECK_EQ(g[0].o_rc, 0);
	T_CHECK_EQ(g[0].o_item, 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 2);

	/* Three readers, reader 1 cancelled: readers 2 and 3 get {1, 2}. */
	for (int i = 0; i < 3; i++) {
		g[i] = (struct op){.o_q = q, .o_item = -1};
		T_CHECK_EQ(rook_spawn(&t[i], getter, &g[i]), 0);
		wait_waiters(q, (size_t)i + 1, 0, 0);
	}
	T_CHECK_EQ(rook_cancel(t[0]), 0);
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	v = 2;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	for (int i = 0; i < 3; i++)
		join_ok(t[i]);
	T_CHECK_EQ(g[0].o_rc, -ECANCELED);
	T_CHECK_EQ(g[1].o_rc, 0);
	T_CHECK_EQ(g[2].o_rc, 0);
	T_CHECK_EQ(g[1].o_item, 1);
	T_CHECK_EQ(g[2].o_item, 2);
	T_CHECK_EQ(rook_queue_len(q), 0);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case62_cancelled_getter_does_not_lose_item, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case62_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* Cancels racing hand-offs across two workers: whatever each getter
 * returns, every item is got exactly once. */
struct race62 {
	struct rook_queue *r_q;
	_Atomic long r_got[64];
};

static int race62_getter(void *arg)
{
	struct race62 *r = arg;
	long v;
	int rc = rook_queue_get(r->r_q, &v);
	if (rc == 0)
		atomic_fetch_add(&r->r_got[v], 1);
	else
		T_CHECK_EQ(rc, -ECANCELED);
	return 0;
}

static int case62_race_main(void *arg)
{
	struct race62 *r = arg;
	long rounds = scaled(2000, 20);

	T_CHECK_EQ(rook_queue_create(&r->r_q, sizeof(long), 0), 0);
	for (long k = 0; k < rounds; k++) {
		struct rook_task *t[4];
		long v = k % 64;
		for (int i = 0; i < 4; i++)
			T_CHECK_EQ(rook_spawn(&t[i], race62_getter, r), 0);
		wait_waiters(r->r_q, 4, 0, 0);
		T_CHECK_EQ(rook_cancel(t[k % 4]), 0);
		T_CHECK_EQ(rook_queue_put(r->r_q, &v), 0);
		T_CHECK_EQ(rook_cancel(t[(k + 1) % 4]), 0);
		T_CHECK_EQ(rook_cancel(t[(k + 2) % 4]), 0);
		T_CHECK_EQ(rook_cancel(t[(k + 3) % 4]), 0);
		for (int i = 0; i < 4; i++)
			join_ok(t[i]);
		/* Either a getter took it or it is still queued. */
		if (rook_queue_try_get(r->r_q, &v) == 0)
			atomic_fetch_add(&r->r_got[v], 1);
	}
	long total = 0;
	for (int i = 0; i < 64; i++)
		total += atomic_load(&r->r_got[i]);
	T_CHECK_EQ(total, rounds);
	rook_queue_destroy(r->r_q);
	return 0;
}

Test(queue, case62_no_item_lost_when_cancels_race_handoffs_stress, .timeout = 120)
{
	int fds = fd_count();
	static struct race62 r;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case62_race_main, &r), 0);
	expect_clean_shutdown(fds);
}

/* ---- 63: a cancelled putter does not lose the wake-up ------------------------ */

static int case63_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *tb, *tc;
	long v = 'a';

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct op pb = {.o_q = q, .o_item = 'b'}, pc = {.o_q = q, .o_item = 'c'};
	T_CHECK_EQ(rook_spawn(&tb, putter, &pb), 0);
	wait_waiters(q, 0, 1, 0);
	T_CHECK_EQ(rook_spawn(&tc, putter, &pc), 0);
	wait_waiters(q, 0, 2, 0);
	T_CHECK_EQ(rook_cancel(tc), 0);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 'a');
	join_ok(tb);
	join_ok(tc);
	T_CHECK_EQ(pb.o_rc, 0);
	T_CHECK_EQ(pc.o_rc, -ECANCELED);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 'b');
	T_CHECK_EQ(rook_queue_len(q), 0);

	/* A putter granted a slot and cancelled before it runs: its put is
	 * done (0), and the cancel shows up at its next blocking call. */
	v = 'a';
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	T_CHECK_EQ(rook_spawn(&tb, putter, &pb), 0);
	wait_waiters(q, 0, 1, 0);
	T_CHECK_EQ(rook_queue_get(q, &v), 0); /* moves 'b' in, grants */
	T_CHECK_EQ(rook_cancel(tb), 0);
	join_ok(tb);
	T_CHECK_EQ(pb.o_rc, 0);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 'b');
	T_CHECK_EQ(rook_queue_len(q), 0);
	wait_waiters(q, 0, 0, 0);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case63_cancelled_putter_does_not_lose_wakeup, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case63_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 64: waiters are served FIFO ------------------------------------------- */

static int case64_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t[5];
	struct op o[5];
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	for (int i = 0; i < 5; i++) {
		o[i] = (struct op){.o_q = q, .o_item = -1};
		T_CHECK_EQ(rook_spawn(&t[i], getter, &o[i]), 0);
		wait_waiters(q, (size_t)i + 1, 0, 0);
	}
	for (long i = 0; i < 5; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	for (int i = 0; i < 5; i++) {
		join_ok(t[i]);
		T_CHECK_EQ(o[i].o_item, i);
	}

	/* Putters: the queue holds 100; 0..4 wait in arrival order. */
	v = 100;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	for (int i = 0; i < 5; i++) {
		o[i] = (struct op){.o_q = q, .o_item = i};
		T_CHECK_EQ(rook_spawn(&t[i], putter, &o[i]), 0);
		wait_waiters(q, 0, (size_t)i + 1, 0);
	}
	/* No barging: try_put fails while putters wait. */
	T_CHECK_EQ(rook_queue_try_put(q, &v), -EAGAIN);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 100);
	for (long i = 0; i < 5; i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, i);
	}
	for (int i = 0; i < 5; i++)
		join_ok(t[i]);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case64_waiters_served_fifo, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case64_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 65: task_done and join --------------------------------------------------- */

static int case65_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t;
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 0), 0);
	T_CHECK_EQ(rook_queue_join(q), 0);
	T_CHECK_EQ(rook_queue_join(q), 0);
	for (long i = 0; i < 3; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	struct op j = {.o_q = q};
	T_CHECK_EQ(rook_spawn(&t, joiner, &j), 0);
	wait_waiters(q, 0, 0, 1);
	for (int i = 0; i < 3; i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		rook_yield();
		T_CHECK_EQ(atomic_load(&j.o_done), 0);
		T_CHECK_EQ(rook_queue_task_done(q), 0);
	}
	join_ok(t);
	T_CHECK_EQ(j.o_rc, 0);
	T_CHECK_EQ(rook_queue_join(q), 0);

	/* A cancelled join returns -ECANCELED and leaves no waiter. */
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	T_CHECK_EQ(rook_spawn(&t, joiner, &j), 0);
	wait_waiters(q, 0, 0, 1);
	T_CHECK_EQ(rook_cancel(t), 0);
	join_ok(t);
	T_CHECK_EQ(j.o_rc, -ECANCELED);
	wait_waiters(q, 0, 0, 0);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case65_join_returns_when_every_item_task_done, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case65_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 66: too many task_done ------------------------------------------------ */

Test(queue, case66_task_done_too_many_times_returns_einval, .timeout = 30)
{
	struct rook_queue *q;
	long v = 1;

	cr_assert_eq(rook_queue_create(&q, sizeof(long), 0), 0);
	cr_assert_eq(rook_queue_task_done(q), -EINVAL);
	cr_assert_eq(rook_queue_put(q, &v), 0);
	/* Put but not got: nothing to mark done yet. */
	cr_assert_eq(rook_queue_task_done(q), -EINVAL);
	cr_assert_eq(rook_queue_get(q, &v), 0);
	cr_assert_eq(rook_queue_task_done(q), 0);
	cr_assert_eq(rook_queue_task_done(q), -EINVAL);
	cr_assert_eq(rook_queue_join(q), 0, "the counter went negative");
	rook_queue_close(q);
	cr_assert_eq(rook_queue_task_done(q), -EINVAL);
	rook_queue_destroy(q);
}

/* ---- 67: close of an empty queue ---------------------------------------------- */

static int case67_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t;
	long v = 5;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 4), 0);
	struct op g = {.o_q = q, .o_item = -1};
	T_CHECK_EQ(rook_spawn(&t, getter, &g), 0);
	wait_waiters(q, 1, 0, 0);
	rook_queue_close(q);
	join_ok(t);
	T_CHECK_EQ(g.o_rc, -EPIPE);
	T_CHECK_EQ(g.o_item, -1);
	T_CHECK_EQ(rook_queue_join(q), 0);
	T_CHECK_EQ(rook_queue_put(q, &v), -EPIPE);
	T_CHECK_EQ(rook_queue_try_put(q, &v), -EPIPE);
	T_CHECK_EQ(rook_queue_get(q, &v), -EPIPE);
	T_CHECK_EQ(rook_queue_try_get(q, &v), -EPIPE);
	T_CHECK_EQ(v, 5);
	rook_queue_close(q); /* idempotent */
	T_CHECK_EQ(rook_queue_get(q, &v), -EPIPE);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case67_close_of_empty_queue_wakes_getter_with_epipe, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case67_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 68: close of a non-empty queue --------------------------------------------- */

static int case68_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *tp, *tj;
	long v = 1;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct op p = {.o_q = q, .o_item = 2}, j = {.o_q = q};
	T_CHECK_EQ(rook_spawn(&tp, putter, &p), 0);
	T_CHECK_EQ(rook_spawn(&tj, joiner, &j), 0);
	wait_waiters(q, 0, 1, 1);
	rook_queue_close(q);
	join_ok(tp);
	T_CHECK_EQ(p.o_rc, -EPIPE);
	T_CHECK_EQ(rook_queue_len(q), 1);
	wait_waiters(q, 0, 0, 1); /* the joiner still waits */
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	rook_yield();
	T_CHECK_EQ(atomic_load(&j.o_done), 0);
	T_CHECK_EQ(rook_queue_task_done(q), 0);
	join_ok(tj);
	T_CHECK_EQ(j.o_rc, 0);
	T_CHECK_EQ(rook_queue_get(q, &v), -EPIPE);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case68_close_of_nonempty_queue_drains_then_epipe, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case68_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 69: no immediate shutdown; close + drain does the same --------------------- */

static int case69_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *tj;
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 0), 0);
	for (long i = 0; i < 4; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	T_CHECK_EQ(rook_queue_get(q, &v), 0); /* one got, not yet done */
	struct op j = {.o_q = q};
	T_CHECK_EQ(rook_spawn(&tj, joiner, &j), 0);
	wait_waiters(q, 0, 0, 1);
	rook_queue_close(q);
	int drained = 0;
	while (rook_queue_try_get(q, &v) == 0) {
		T_CHECK_EQ(rook_queue_task_done(q), 0);
		drained++;
	}
	T_CHECK_EQ(drained, 3);
	rook_yield();
	T_CHECK_EQ(atomic_load(&j.o_done), 0); /* the got item still counts */
	T_CHECK_EQ(rook_queue_task_done(q), 0);
	join_ok(tj);
	T_CHECK_EQ(j.o_rc, 0);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, case69_close_and_drain_unblocks_join_only_when_all_done, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, case69_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- 70: get on a closed, empty queue never blocks ------------------------------- */

static void *case70_thread(void *arg)
{
	struct rook_queue *q = arg;
	long v = 3;
	intptr_t bad = 0;

	bad += rook_queue_get(q, &v) != -EPIPE;
	bad += rook_queue_put(q, &v) != -EPIPE;
	bad += v != 3;
	return (void *)bad;
}

Test(queue, case70_get_on_closed_empty_queue_returns_epipe_at_once, .timeout = 30)
{
	struct rook_queue *q;
	pthread_t th;
	void *bad;
	long v = 9;

	cr_assert_eq(rook_queue_create(&q, sizeof(long), 0), 0);
	cr_assert_eq(rook_queue_put(q, &v), 0);
	rook_queue_close(q);
	cr_assert_eq(rook_queue_put(q, &v), -EPIPE);
	cr_assert_eq(rook_queue_get(q, &v), 0);
	cr_assert_eq(v, 9);
	cr_assert_eq(pthread_create(&th, NULL, case70_thread, q), 0);
	cr_assert_eq(pthread_join(th, &bad), 0);
	cr_assert_eq(bad, NULL);
	rook_queue_destroy(q);
}

/* ---- 71: close wakes every waiter on every thread ---------------------------------- */

static void *plain_op(void *arg)
{
	struct op *o = arg;
	o->o_rc = o->o_item == -1 ? rook_queue_get(o->o_q, &o->o_item)
				  : rook_queue_put(o->o_q, &o->o_item);
	atomic_store(&o->o_done, 1);
	return NULL;
}

static int case71_main(void *arg)
{
	struct rook_queue *qe, *qf;
	struct rook_task *t[8];
	struct op o[10];
	pthread_t th[2];
	long v = 0;

	T_CHECK_EQ(rook_queue_create(&qe, sizeof(long), 2), 0);
	T_CHECK_EQ(rook_queue_create(&qf, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_queue_put(qf, &v), 0);
	for (int i = 0; i < 8; i++) {
		o[i] = (struct op){.o_q = i % 2 ? qf : qe, .o_item = i % 2 ? 1 : -1};
		T_CHECK_EQ(rook_spawn(&t[i], i % 2 ? putter : getter, &o[i]), 0);
	}
	o[8] = (struct op){.o_q = qe, .o_item = -1};
	o[9] = (struct op){.o_q = qf, .o_item = 1};
	T_CHECK_EQ(pthread_create(&th[0], NULL, plain_op, &o[8]), 0);
	T_CHECK_EQ(pthread_create(&th[1], NULL, plain_op, &o[9]), 0);
	wait_waiters(qe, 5, 0, 0);
	wait_waiters(qf, 0, 5, 0);
	rook_queue_close(qe);
	rook_queue_close(qf);
	for (int i = 0; i < 8; i++)
		join_ok(t[i]);
	for (int i = 0; i < 2; i++)
		T_CHECK_EQ(pthread_join(th[i], NULL), 0);
	for (int i = 0; i < 10; i++)
		T_CHECK_EQ(o[i].o_rc, -EPIPE);
	T_CHECK_EQ(rook_queue_len(qf), 1);
	rook_queue_destroy(qe);
	rook_queue_destroy(qf);
	return 0;
}

Test(queue, case71_close_wakes_every_waiter_on_every_thread, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, case71_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- plain threads on both ends ------------------------------------------------------ */

struct feed {
	struct rook_queue *f_in, *f_out;
};

/* Runtime side: doubles every item until the input closes. */
static int doubler(void *arg)
{
	struct feed *f = arg;
	long v;
	int rc;

	while ((rc = rook_queue_get(f->f_in, &v)) == 0) {
		v *= 2;
		if (rook_queue_put(f->f_out, &v) != 0)
			return -EIO;
	}
	return rc == -EPIPE ? 0 : rc;
}

Test(queue, plain_thread_feeds_runtime_and_is_fed_back, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	struct rook_rt *rt;
	struct rook_task *t[3];
	struct feed f;
	long n = scaled(20000, 10), sum = 0, v;

	cr_assert_eq(rook_queue_create(&f.f_in, sizeof(long), 8), 0);
	cr_assert_eq(rook_queue_create(&f.f_out, sizeof(long), 8), 0);
	cr_assert_eq(rook_rt_start(&rt, &cfg), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rook_rt_spawn(rt, &t[i], doubler, &f), 0);
	long put = 0, got = 0;
	while (got < n) {
		/* Keep both directions moving without deadlocking on full queues. */
		if (put < n && rook_queue_try_put(f.f_in, &put) == 0) {
			put++;
			continue;
		}
		cr_assert_eq(rook_queue_get(f.f_out, &v), 0);
		sum += v;
		got++;
	}
	rook_queue_close(f.f_in);
	for (int i = 0; i < 3; i++) {
		int st = -1;
		cr_assert_eq(rook_join(t[i], &st), 0);
		cr_assert_eq(st, 0);
	}
	cr_assert_eq(sum, n * (n - 1));
	cr_assert_eq(rook_rt_stop(rt), 0);
	rook_queue_destroy(f.f_in);
	rook_queue_destroy(f.f_out);
	expect_clean_shutdown(fds);
}

/* ---- items of other sizes ---------------------------------------------------------- */

struct big {
	uint32_t b_id;
	char b_pad[93];
};

Test(queue, copies_whole_items_when_item_size_is_odd, .timeout = 30)
{
	struct rook_queue *q;
	struct big b, out;

	cr_assert_eq(rook_queue_create(&q, sizeof(b), 3), 0);
	for (uint32_t round = 0; round < 50; round++) {
		for (uint32_t i = 0; i < 3; i++) {
			b.b_id = round * 3 + i;
			memset(b.b_pad, (int)(b.b_id & 0x7f), sizeof(b.b_pad));
			cr_assert_eq(rook_queue_put(q, &b), 0);
		}
		for (uint32_t i = 0; i < 3; i++) {
			cr_assert_eq(rook_queue_get(q, &out), 0);
			cr_assert_eq(out.b_id, round * 3 + i);
			for (size_t k = 0; k < sizeof(out.b_pad); k++)
				cr_assert_eq(out.b_pad[k], (char)(out.b_id & 0x7f));
		}
	}
	rook_queue_destroy(q);
}

Test(queue, put_fails_with_enomem_and_keeps_items_when_growth_fails, .timeout = 30)
{
	struct rook_queue *q;
	long v, n = 0;
	int rc = 0;

	/* Unbounded: the first allocation a put needs (where the queue
	 * grows past its first buffer) fails; every put before it succeeded
	 * and everything stays in order. */
	cr_assert_eq(rook_queue_create(&q, sizeof(long), 0), 0);
	rook__alloc_fail_nth(1);
	for (v = 0; v < 1000000 && (rc = rook_queue_put(q, &v)) == 0; v++)
		n++;
	rook__alloc_fail_nth(0);
	cr_assert_eq(rc, -ENOMEM, "no put needed an allocation in %ld items", n);
	cr_assert_eq(rook_queue_len(q), (size_t)n);
	cr_assert_eq(rook_queue_put(q, &v), 0);
	for (long i = 0; i <= n; i++) {
		cr_assert_eq(rook_queue_get(q, &v), 0);
		cr_assert_eq(v, i);
	}
	cr_assert_eq(rook_queue_try_get(q, &v), -EAGAIN);
	rook_queue_destroy(q);
}

/* ---- capacity beyond the lock-free ring ------------------------------------ */

/*
 * A queue of capacity 10 whose ring holds 4: the other 6 items wait in the
 * backlog, and putters wait behind both. Order, capacity, len, try_ calls,
 * FIFO putters, a cancelled putter, task_done/join and close must not see
 * the seam.
 */
static int backlog_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t[3];
	struct op p[3];
	long v;

	rook__queue_ring_limit(4);
	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 10), 0);
	rook__queue_ring_limit(0);
	for (long round = 0; round < 3; round++) {
		for (long i = 0; i < 10; i++) {
			v = round * 100 + i;
			T_CHECK_EQ(rook_queue_try_put(q, &v), 0);
			T_CHECK_EQ(rook_queue_len(q), (size_t)i + 1);
		}
		T_CHECK_EQ(rook_queue_try_put(q, &v), -EAGAIN);
		for (long i = 0; i < 10; i++) {
			T_CHECK_EQ(rook_queue_try_get(q, &v), 0);
			T_CHECK_EQ(v, round * 100 + i);
		}
		T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
		T_CHECK_EQ(rook_queue_len(q), 0);
	}

	/* Full: three putters wait in order; the middle one is cancelled and
	 * puts nothing; each get moves the next waiting item in behind. */
	for (long i = 0; i < 10; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	for (int i = 0; i < 3; i++) {
		p[i] = (struct op){.o_q = q, .o_item = 10 + i};
		T_CHECK_EQ(rook_spawn(&t[i], putter, &p[i]), 0);
		wait_waiters(q, 0, (size_t)i + 1, 0);
	}
	T_CHECK_EQ(rook_cancel(t[1]), 0);
	join_ok(t[1]);
	T_CHECK_EQ(p[1].o_rc, -ECANCELED);
	wait_waiters(q, 0, 2, 0);
	T_CHECK_EQ(rook_queue_len(q), 10);
	long want[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, want[i]);
		if (i == 0)
			T_CHECK_EQ(rook_queue_len(q), 10); /* putter 10 moved in */
	}
	join_ok(t[0]);
	join_ok(t[2]);
	T_CHECK_EQ(p[0].o_rc, 0);
	T_CHECK_EQ(p[2].o_rc, 0);

	/* task_done/join count the items in the backlog too. */
	for (long i = 0; i < 8; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	struct op j = {.o_q = q};
	T_CHECK_EQ(rook_spawn(&t[0], joiner, &j), 0);
	wait_waiters(q, 0, 0, 1);
	for (int i = 0; i < 3 * 10 + 12; i++) /* every item got so far */
		T_CHECK_EQ(rook_queue_task_done(q), 0);
	T_CHECK_EQ(rook_queue_task_done(q), -EINVAL);
	for (long i = 0; i < 8; i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, i);
		rook_yield();
		T_CHECK_EQ(atomic_load(&j.o_done), 0);
		T_CHECK_EQ(rook_queue_task_done(q), 0);
	}
	join_ok(t[0]);
	T_CHECK_EQ(j.o_rc, 0);

	/* Close with items in ring and backlog: all drain, then -EPIPE. */
	for (long i = 0; i < 10; i++)
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
	p[0] = (struct op){.o_q = q, .o_item = 99};
	T_CHECK_EQ(rook_spawn(&t[0], putter, &p[0]), 0);
	wait_waiters(q, 0, 1, 0);
	rook_queue_close(q);
	join_ok(t[0]);
	T_CHECK_EQ(p[0].o_rc, -EPIPE);
	T_CHECK_EQ(rook_queue_put(q, &v), -EPIPE);
	T_CHECK_EQ(rook_queue_try_put(q, &v), -EPIPE);
	for (long i = 0; i < 10; i++) {
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, i);
	}
	T_CHECK_EQ(rook_queue_get(q, &v), -EPIPE);
	T_CHECK_EQ(rook_queue_try_get(q, &v), -EPIPE);
	rook_queue_destroy(q);
	return 0;
}

Test(queue, capacity_beyond_the_ring_keeps_order_bounds_and_waiters, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, backlog_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- destroy with waiters ------------------------------------------------------------ */

static int destroy_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t[4];
	struct op o[4];

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	for (int i = 0; i < 4; i++) {
		o[i] = (struct op){.o_q = q, .o_item = -1};
		T_CHECK_EQ(rook_spawn(&t[i], getter, &o[i]), 0);
	}
	wait_waiters(q, 4, 0, 0);
	/* Two of them are cancelled and have not left yet when destroy runs:
	 * destroy waits for them (one worker: they run while it waits). */
	T_CHECK_EQ(rook_cancel(t[1]), 0);
	T_CHECK_EQ(rook_cancel(t[3]), 0);
	rook_queue_destroy(q);
	for (int i = 0; i < 4; i++) {
		join_ok(t[i]);
		T_CHECK_EQ(o[i].o_rc, i % 2 ? -ECANCELED : -EPIPE);
	}
	return 0;
}

Test(queue, destroy_wakes_waiters_with_epipe_and_waits_for_them, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(1, ROOK_NO_PIN, destroy_main, NULL), 0);
	expect_clean_shutdown(fds);
}
