/* SPDX-License-Identifier: MIT */
/*
 * Deadlines on queues and synchronization objects (SEMANTICS.md cases 47,
 * 60, 61, 71, 75/76, 81, 82/84, 87 and "edge cases" #2, #3, #4): a call
 * that times out under a deadline scope returns -ETIMEDOUT, consumes or
 * holds nothing and leaves no stale waiter behind (the next put, unlock,
 * release, set or signal goes to someone still waiting, or stays in the
 * object); a close that comes first wins over a deadline (-EPIPE); a
 * condition wait that times out holds the mutex again. The races run a
 * deadline of about 100 us against a put, get, unlock or release on the
 * other worker many times and tally that nothing is lost or duplicated.
 *
 * Two workers, ROOK_NO_PIN; time bounds are gross (a timed-out call must
 * not return before its deadline, and must return within seconds).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sync/queue.h"
#include "sync/sync.h"

#define SHORT_NS  (50 * ROOK_MSEC)         /* a deadline meant to expire */
#define LONG_NS   (30 * ROOK_SEC)          /* a deadline meant not to */
#define PROMPT_NS ((uint64_t)5 * ROOK_SEC) /* gross upper bound on lateness */

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

static void wait_waiters(struct rook_queue *q, size_t getters, size_t putters)
{
	struct rook__queue_waiters w;

	for (;;) {
		rook__queue_waiters(q, &w);
		if (w.getters == getters && w.putters == putters && w.joiners == 0)
			return;
		pause_briefly();
	}
}

/* Until q has that many waiters or the timed task has finished (a short
 * deadline may pass before a slow test thread sees it parked). */
static void wait_parked_or_done(struct rook_queue *q, size_t getters, size_t putters,
				_Atomic int *done)
{
	struct rook__queue_waiters w;

	for (;;) {
		rook__queue_waiters(q, &w);
		if ((w.getters == getters && w.putters == putters) || atomic_load(done))
			return;
		pause_briefly();
	}
}

static void join_ok(struct rook_task *t)
{
	int st = -1;
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
}

static void run2(rook_fn fn)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fn, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A timed call: the scope's deadline, the call's result, when it returned,
 * and what rook_deadline_pop said; t_done is set by the task's last write. */
struct timed {
	uint64_t t_rel_ns; /* deadline = start + t_rel_ns */
	uint64_t t_dl;
	uint64_t t_end;
	int t_rc;
	int t_expired;
	_Atomic int t_done;
};

static void timed_begin(struct timed *tm)
{
	tm->t_dl = rook_now() + tm->t_rel_ns;
	T_CHECK_EQ(rook_deadline_push(tm->t_dl), 0);
}

static void timed_end(struct timed *tm, int rc)
{
	tm->t_end = rook_now();
	tm->t_rc = rc;
	tm->t_expired = rook_deadline_pop();
}

/* It timed out: -ETIMEDOUT, not before the deadline, not much after. */
static void check_timed_out(const struct timed *tm)
{
	T_CHECK_EQ(tm->t_rc, -ETIMEDOUT);
	T_CHECK(tm->t_expired);
	T_CHECK(tm->t_end >= tm->t_dl);
	T_CHECK(tm->t_end - tm->t_dl < PROMPT_NS);
}

/* op(arg) inside a deadline scope of tm->t_rel_ns (none if 0), its result
 * recorded in tm; every timed task below is this around one call. */
static int timed_call(struct timed *tm, int (*op)(void *), void *arg)
{
	if (tm->t_rel_ns)
		timed_begin(tm);
	int rc = op(arg);
	if (tm->t_rel_ns)
		timed_end(tm, rc);
	else
		tm->t_rc = rc;
	return rc;
}

/* ---- queue tasks -------------------------------------------------------- */

struct qop {
	struct rook_queue *o_q;
	long o_item;
	struct timed o_tm; /* o_tm.t_rel_ns == 0: no deadline */
};

static int q_get_op(void *arg)
{
	struct qop *o = arg;
	return rook_queue_get(o->o_q, &o->o_item);
}

static int q_put_op(void *arg)
{
	struct qop *o = arg;
	return rook_queue_put(o->o_q, &o->o_item);
}

static int q_getter(void *arg)
{
	struct qop *o = arg;
	timed_call(&o->o_tm, q_get_op, o);
	atomic_store(&o->o_tm.t_done, 1); /* last write: the reader may go on */
	return 0;
}

static int q_putter(void *arg)
{
	struct qop *o = arg;
	timed_call(&o->o_tm, q_put_op, o);
	atomic_store(&o->o_tm.t_done, 1); /* last write: the reader may go on */
	return 0;
}

/* ---- 47 / 61: a timed-out get consumes nothing, leaves no stale getter ---- */

static int case47_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};
	long v = -1;

	for (size_t cap = 0; cap <= 4; cap += 4) {
		T_CHECK_EQ(rook_queue_create(&q, sizeof(long), cap), 0);

		/* The caller itself times out on an empty queue. */
		v = -1;
		timed_begin(&tm);
		timed_end(&tm, rook_queue_get(q, &v));
		check_timed_out(&tm);
		T_CHECK_EQ(v, -1); /* *item written only on 0 */
		wait_waiters(q, 0, 0);
		T_CHECK_EQ(rook_queue_len(q), 0);

		/* No stale getter: the next put stays in the queue... */
		v = 7;
		T_CHECK_EQ(rook_queue_put(q, &v), 0);
		T_CHECK_EQ(rook_queue_len(q), 1);
		/* ...and the next get receives it. */
		v = -1;
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, 7);
		T_CHECK_EQ(rook_queue_len(q), 0);

		/* An expired deadline at entry leaves a non-empty queue alone. */
		for (long i = 1; i <= 2; i++)
			T_CHECK_EQ(rook_queue_put(q, &i), 0);
		T_CHECK_EQ(rook_deadline_push(rook_now() - ROOK_MSEC), 0);
		v = -1;
		T_CHECK_EQ(rook_queue_get(q, &v), -ETIMEDOUT);
		T_CHECK_EQ(v, -1);
		T_CHECK(rook_deadline_pop());
		T_CHECK_EQ(rook_queue_len(q), 2);
		for (long i = 1; i <= 2; i++) {
			T_CHECK_EQ(rook_queue_get(q, &v), 0);
			T_CHECK_EQ(v, i);
		}

		/* A put that lands before the deadline is returned. */
		struct qop g = {.o_q = q, .o_item = -1, .o_tm = {.t_rel_ns = LONG_NS}};
		T_CHECK_EQ(rook_spawn(&t, q_getter, &g), 0);
		wait_waiters(q, 1, 0);
		v = 11;
		T_CHECK_EQ(rook_queue_put(q, &v), 0);
		join_ok(t);
		T_CHECK_EQ(g.o_tm.t_rc, 0);
		T_CHECK(!g.o_tm.t_expired);
		T_CHECK_EQ(g.o_item, 11);
		T_CHECK_EQ(rook_queue_len(q), 0);

		/* Case 61: timed getter g1 ahead of plain getter g2; g1 times
		 * out, and the next put goes to g2. */
		struct qop g1 = {.o_q = q, .o_item = -1, .o_tm = {.t_rel_ns = SHORT_NS}};
		struct qop g2 = {.o_q = q, .o_item = -1};
		T_CHECK_EQ(rook_spawn(&t, q_getter, &g1), 0);
		wait_parked_or_done(q, 1, 0, &g1.o_tm.t_done);
		T_CHECK_EQ(rook_spawn(&t2, q_getter, &g2), 0);
		WAIT_UNTIL(atomic_load(&g1.o_tm.t_done));
		check_timed_out(&g1.o_tm);
		T_CHECK_EQ(g1.o_item, -1);
		join_ok(t);
		wait_waiters(q, 1, 0); /* only g2 */
		T_CHECK_EQ(atomic_load(&g2.o_tm.t_done), 0);
		v = 21;
		T_CHECK_EQ(rook_queue_put(q, &v), 0);
		join_ok(t2);
		T_CHECK_EQ(g2.o_tm.t_rc, 0);
		T_CHECK_EQ(g2.o_item, 21);
		T_CHECK_EQ(rook_queue_len(q), 0);
		wait_waiters(q, 0, 0);

		rook_queue_destroy(q);
	}
	return 0;
}

Test(queue_deadline, case47_61_timed_out_get_consumes_nothing_leaves_no_stale_getter, .timeout = 60)
{
	run2(case47_main);
}

/* ---- 60: a timed put on a full queue puts nothing ---------------------- */

static int case60_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);

	/* The caller times out on the full queue: nothing was queued. */
	v = 2;
	timed_begin(&tm);
	timed_end(&tm, rook_queue_put(q, &v));
	check_timed_out(&tm);
	wait_waiters(q, 0, 0);
	T_CHECK_EQ(rook_queue_len(q), 1);
	T_CHECK_EQ(rook_queue_try_put(q, &v), -EAGAIN); /* still full */
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN); /* 2 never went in */
	T_CHECK_EQ(rook_queue_len(q), 0);

	/* The slot goes to the next putter, not to the one that gave up:
	 * p1 (timed) ahead of p2 (plain) on a full queue; p1 times out; a get
	 * frees the slot and p2's item goes in. */
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct qop p1 = {.o_q = q, .o_item = 100, .o_tm = {.t_rel_ns = SHORT_NS}};
	struct qop p2 = {.o_q = q, .o_item = 200};
	T_CHECK_EQ(rook_spawn(&t, q_putter, &p1), 0);
	wait_parked_or_done(q, 0, 1, &p1.o_tm.t_done);
	T_CHECK_EQ(rook_spawn(&t2, q_putter, &p2), 0);
	WAIT_UNTIL(atomic_load(&p1.o_tm.t_done));
	check_timed_out(&p1.o_tm);
	join_ok(t);
	wait_waiters(q, 0, 1); /* only p2 */
	T_CHECK_EQ(rook_queue_len(q), 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	join_ok(t2);
	T_CHECK_EQ(p2.o_tm.t_rc, 0);
	T_CHECK_EQ(rook_queue_len(q), 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 200);
	T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
	wait_waiters(q, 0, 0);

	/* A timed put that finds space before its deadline succeeds. */
	v = 1;
	T_CHECK_EQ(rook_queue_put(q, &v), 0);
	struct qop p3 = {.o_q = q, .o_item = 300, .o_tm = {.t_rel_ns = LONG_NS}};
	T_CHECK_EQ(rook_spawn(&t, q_putter, &p3), 0);
	wait_waiters(q, 0, 1);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 1);
	join_ok(t);
	T_CHECK_EQ(p3.o_tm.t_rc, 0);
	T_CHECK(!p3.o_tm.t_expired);
	T_CHECK_EQ(rook_queue_get(q, &v), 0);
	T_CHECK_EQ(v, 300);

	rook_queue_destroy(q);
	return 0;
}

Test(queue_deadline, case60_timed_put_on_full_queue_puts_nothing, .timeout = 60)
{
	run2(case60_main);
}

/* ---- 71: close vs. deadline for timed waiters --------------------------- */

static int case71_main(void *arg)
{
	struct rook_queue *q;
	struct rook_task *t[4];
	long v;

	/* Close first: timed getters (empty queue) and timed putters (full
	 * queue) whose deadlines are far away are all woken with -EPIPE. */
	for (int side = 0; side < 2; side++) {
		T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
		if (side == 1) {
			v = 1;
			T_CHECK_EQ(rook_queue_put(q, &v), 0);
		}
		struct qop o[4];
		for (int i = 0; i < 4; i++) {
			o[i] =
			    (struct qop){.o_q = q, .o_item = 50 + i, .o_tm = {.t_rel_ns = LONG_NS}};
			T_CHECK_EQ(rook_spawn(&t[i], side ? q_putter : q_getter, &o[i]), 0);
		}
		wait_waiters(q, side ? 0 : 4, side ? 4 : 0);
		uint64_t t0 = rook_now();
		rook_queue_close(q);
		for (int i = 0; i < 4; i++) {
			join_ok(t[i]);
			T_CHECK_EQ(o[i].o_tm.t_rc, -EPIPE);
			T_CHECK(!o[i].o_tm.t_expired);
			T_CHECK(o[i].o_tm.t_end < o[i].o_tm.t_dl);
			T_CHECK(o[i].o_tm.t_end - t0 < PROMPT_NS);
		}
		wait_waiters(q, 0, 0);
		T_CHECK_EQ(rook_queue_len(q), side ? 1 : 0);
		rook_queue_destroy(q);
	}

	/* Deadline first: a timed getter and a timed putter time out; plain
	 * waiters behind them stay parked and are woken by the close with
	 * -EPIPE; the timed ones' -ETIMEDOUT stands. */
	for (int side = 0; side < 2; side++) {
		T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
		if (side == 1) {
			v = 1;
			T_CHECK_EQ(rook_queue_put(q, &v), 0);
		}
		rook_fn fn = side ? q_putter : q_getter;
		struct qop timed_op = {.o_q = q, .o_item = 60, .o_tm = {.t_rel_ns = SHORT_NS}};
		struct qop plain_op = {.o_q = q, .o_item = 61};
		T_CHECK_EQ(rook_spawn(&t[0], fn, &timed_op), 0);
		wait_parked_or_done(q, side ? 0 : 1, side ? 1 : 0, &timed_op.o_tm.t_done);
		T_CHECK_EQ(rook_spawn(&t[1], fn, &plain_op), 0);
		WAIT_UNTIL(atomic_load(&timed_op.o_tm.t_done));
		check_timed_out(&timed_op.o_tm);
		wait_waiters(q, side ? 0 : 1, side ? 1 : 0);
		rook_queue_close(q);
		join_ok(t[0]);
		join_ok(t[1]);
		T_CHECK_EQ(timed_op.o_tm.t_rc, -ETIMEDOUT);
		T_CHECK_EQ(plain_op.o_tm.t_rc, -EPIPE);
		wait_waiters(q, 0, 0);
		T_CHECK_EQ(rook_queue_len(q), side ? 1 : 0);
		if (side == 1) {
			T_CHECK_EQ(rook_queue_get(q, &v), 0);
			T_CHECK_EQ(v, 1);
		}
		T_CHECK_EQ(rook_queue_get(q, &v), -EPIPE);
		rook_queue_destroy(q);
	}
	return 0;
}

Test(queue_deadline, case71_close_before_deadline_is_epipe_deadline_before_close_is_etimedout,
     .timeout = 60)
{
	run2(case71_main);
}

/* ---- edge cases #2 / #4: a deadline racing a put (and a get) ------------- */

#define RACE_REL_NS (100 * ROOK_USEC)

struct race {
	struct rook_queue *r_q;
	_Atomic uint64_t r_dl; /* published by the timed task once it is running */
	long r_item;
	int r_rc;
	int r_worker;
};

/* The racing side of every deadline race below: op(arg) in a scope that
 * expires RACE_REL_NS from now, the deadline published in *dlp first (the
 * other side times its move from it). */
static int race_call(_Atomic uint64_t *dlp, int (*op)(void *), void *arg)
{
	uint64_t dl = rook_now() + RACE_REL_NS;
	T_CHECK_EQ(rook_deadline_push(dl), 0);
	atomic_store_explicit(dlp, dl, memory_order_release);
	int rc = op(arg);
	rook_deadline_pop();
	return rc;
}

static int race_get_op(void *arg)
{
	struct race *r = arg;
	return rook_queue_get(r->r_q, &r->r_item);
}

static int race_put_op(void *arg)
{
	struct race *r = arg;
	return rook_queue_put(r->r_q, &r->r_item);
}

static int race_getter(void *arg)
{
	struct race *r = arg;
	r->r_worker = rook__worker_index();
	r->r_rc = race_call(&r->r_dl, race_get_op, r);
	return 0;
}

static int race_putter(void *arg)
{
	struct race *r = arg;
	r->r_worker = rook__worker_index();
	r->r_rc = race_call(&r->r_dl, race_put_op, r);
	return 0;
}

/* Spin (yielding now and then, in case the other worker is slow to take
 * the task) until the timed task has published its deadline; then spin
 * until dl + off_ns, offsets spread around the deadline. */
static uint64_t race_wait(_Atomic uint64_t *dlp, int64_t off_ns)
{
	uint64_t dl, spin0 = rook_now();
	while ((dl = atomic_load_explicit(dlp, memory_order_acquire)) == 0)
		if (rook_now() - spin0 > 200 * ROOK_USEC)
			rook_yield();
	uint64_t at = (uint64_t)((int64_t)dl + off_ns);
	while (rook_now() < at)
		;
	return dl;
}

static int64_t race_offset(long i)
{
	/* -60 us .. +40 us around the deadline, in 1 us steps. */
	return ((i * 37) % 101 - 60) * (int64_t)ROOK_USEC;
}

static int edge_get_main(void *arg)
{
	long n = scaled(2000, 2);
	long got = 0, timed_out = 0, left = 0, cross = 0;
	struct rook_queue *q;
	struct rook_task *t;
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	for (long i = 0; i < n; i++) {
		struct race r = {.r_q = q, .r_item = -1};
		T_CHECK_EQ(rook_spawn(&t, race_getter, &r), 0);
		race_wait(&r.r_dl, race_offset(i));
		T_CHECK_EQ(rook_queue_put(q, &i), 0);
		join_ok(t);
		if (r.r_worker != rook__worker_index())
			cross++;
		if (r.r_rc == 0) {
			/* It got the item: exactly this one, and the queue is empty. */
			got++;
			T_CHECK_EQ(r.r_item, i);
			T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
		} else {
			/* It timed out: the item is still in the queue, once. */
			T_CHECK_EQ(r.r_rc, -ETIMEDOUT);
			T_CHECK_EQ(r.r_item, -1);
			timed_out++;
			T_CHECK_EQ(rook_queue_len(q), 1);
			if (rook_queue_try_get(q, &v) == 0) {
				T_CHECK_EQ(v, i);
				left++;
			}
			T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
		}
		wait_waiters(q, 0, 0);
	}
	/* Tally: every item was received by the getter or left in the queue. */
	T_CHECK_EQ(got + left, n);
	T_CHECK_EQ(got + timed_out, n);
	cr_log_info("get race: %ld got, %ld timed out (item left), %ld of %ld cross-worker", got,
		    timed_out, cross, n);
	rook_queue_destroy(q);
	return 0;
}

Test(queue_deadline, edge2_4_get_deadline_racing_put_loses_and_duplicates_nothing, .timeout = 240)
{
	run2(edge_get_main);
}

static int edge_put_main(void *arg)
{
	long n = scaled(2000, 2);
	long put = 0, timed_out = 0, cross = 0;
	struct rook_queue *q;
	struct rook_task *t;
	long v;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(long), 1), 0);
	for (long i = 0; i < n; i++) {
		/* Full queue holding -i-1; the timed putter offers i. */
		v = -i - 1;
		T_CHECK_EQ(rook_queue_put(q, &v), 0);
		struct race r = {.r_q = q, .r_item = i};
		T_CHECK_EQ(rook_spawn(&t, race_putter, &r), 0);
		race_wait(&r.r_dl, race_offset(i));
		T_CHECK_EQ(rook_queue_get(q, &v), 0);
		T_CHECK_EQ(v, -i - 1);
		join_ok(t);
		if (r.r_worker != rook__worker_index())
			cross++;
		if (r.r_rc == 0) {
			put++;
			T_CHECK_EQ(rook_queue_len(q), 1);
			T_CHECK_EQ(rook_queue_try_get(q, &v), 0);
			T_CHECK_EQ(v, i);
		} else {
			T_CHECK_EQ(r.r_rc, -ETIMEDOUT);
			timed_out++;
			T_CHECK_EQ(rook_queue_len(q), 0);
		}
		T_CHECK_EQ(rook_queue_try_get(q, &v), -EAGAIN);
		wait_waiters(q, 0, 0);
	}
	T_CHECK_EQ(put + timed_out, n);
	cr_log_info("put race: %ld put, %ld timed out, %ld of %ld cross-worker", put, timed_out,
		    cross, n);
	rook_queue_destroy(q);
	return 0;
}

Test(queue_deadline, edge4_put_deadline_racing_get_loses_and_duplicates_nothing, .timeout = 240)
{
	run2(edge_put_main);
}

/* ---- 76 / 75: mutex lock that times out ---------------------------------- */

struct mop {
	struct rook_mutex *o_m;
	struct timed o_tm;
	_Atomic int *o_inside; /* critical-section occupancy, or NULL */
	int o_unlock_rc;
};

static int m_lock_op(void *arg)
{
	return rook_mutex_lock(((struct mop *)arg)->o_m);
}

static int m_locker(void *arg)
{
	struct mop *o = arg;
	if (timed_call(&o->o_tm, m_lock_op, o) == 0) {
		if (o->o_inside)
			T_CHECK_EQ(atomic_fetch_add(o->o_inside, 1), 0);
		rook_yield();
		if (o->o_inside)
			atomic_fetch_sub(o->o_inside, 1);
		o->o_unlock_rc = rook_mutex_unlock(o->o_m);
	} else {
		/* Not the owner: unlocking must fail and change nothing. */
		o->o_unlock_rc = rook_mutex_unlock(o->o_m);
	}
	atomic_store(&o->o_tm.t_done, 1);
	return 0;
}

/* Locks the mutex and holds it until h_go is set. */
struct holder {
	struct rook_mutex *h_m;
	struct rook_event *h_go;
	_Atomic int h_locked;
	int h_unlock_rc;
};

static int m_holder(void *arg)
{
	struct holder *h = arg;
	T_CHECK_EQ(rook_mutex_lock(h->h_m), 0);
	atomic_store(&h->h_locked, 1);
	T_CHECK_EQ(rook_event_wait(h->h_go), 0);
	h->h_unlock_rc = rook_mutex_unlock(h->h_m);
	return 0;
}

static int case76_main(void *arg)
{
	struct rook_mutex *m;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};
	_Atomic int inside = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	T_CHECK_EQ(rook_mutex_lock(m), 0);

	/* A timed lock of a held mutex times out owning nothing. */
	struct mop a = {.o_m = m, .o_tm = {.t_rel_ns = SHORT_NS}};
	T_CHECK_EQ(rook_spawn(&t, m_locker, &a), 0);
	join_ok(t);
	check_timed_out(&a.o_tm);
	T_CHECK_EQ(a.o_unlock_rc, -EPERM);
	T_CHECK_EQ(rook__mutex_waiters(m), 0);
	/* The main task still owns it. */
	T_CHECK_EQ(rook_mutex_trylock(m), -EDEADLK);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), -EPERM); /* unlocked now */
	/* A later lock/unlock works (no stale waiter took it). */
	T_CHECK_EQ(rook_mutex_trylock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);

	/* Timed b waits ahead of plain c; b times out and leaves the queue;
	 * the unlock hands the mutex to c. */
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	struct mop b = {.o_m = m, .o_tm = {.t_rel_ns = SHORT_NS}};
	T_CHECK_EQ(rook_spawn(&t, m_locker, &b), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1 || atomic_load(&b.o_tm.t_done));
	struct mop c = {.o_m = m, .o_inside = &inside};
	T_CHECK_EQ(rook_spawn(&t2, m_locker, &c), 0);
	WAIT_UNTIL(rook__mutex_waiters(m) == 2 || atomic_load(&b.o_tm.t_done));
	WAIT_UNTIL(atomic_load(&b.o_tm.t_done));
	check_timed_out(&b.o_tm);
	T_CHECK_EQ(b.o_unlock_rc, -EPERM);
	join_ok(t);
	WAIT_UNTIL(rook__mutex_waiters(m) == 1); /* only c */
	T_CHECK_EQ(atomic_load(&c.o_tm.t_done), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	join_ok(t2);
	T_CHECK_EQ(c.o_tm.t_rc, 0);
	T_CHECK_EQ(c.o_unlock_rc, 0);
	T_CHECK_EQ(rook__mutex_waiters(m), 0);

	/* The caller's own timed lock times out while a task holds the
	 * mutex; the caller owns nothing, the holder still owns it. */
	struct holder h = {.h_m = m};
	T_CHECK_EQ(rook_event_create(&h.h_go), 0);
	T_CHECK_EQ(rook_spawn(&t, m_holder, &h), 0);
	WAIT_UNTIL(atomic_load(&h.h_locked));
	timed_begin(&tm);
	timed_end(&tm, rook_mutex_lock(m));
	check_timed_out(&tm);
	T_CHECK_EQ(rook_mutex_unlock(m), -EPERM);
	T_CHECK_EQ(rook_mutex_trylock(m), -EBUSY);
	T_CHECK_EQ(rook__mutex_waiters(m), 0);
	rook_event_set(h.h_go);
	join_ok(t);
	T_CHECK_EQ(h.h_unlock_rc, 0);
	T_CHECK_EQ(rook_mutex_trylock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	rook_event_destroy(h.h_go);

	rook_mutex_destroy(m);
	return 0;
}

Test(sync_deadline, case76_timed_out_lock_leaves_mutex_consistent, .timeout = 60)
{
	run2(case76_main);
}

/* Case 75-like with a deadline: the unlock on one worker races a timed lock
 * on the other; the mutex ends with exactly one owner or none, never two
 * and never a phantom. */
struct mrace {
	struct rook_mutex *r_m;
	_Atomic uint64_t r_dl;
	_Atomic int *r_inside;
	int r_rc;
	int r_unlock_rc;
};

static int mrace_lock_op(void *arg)
{
	return rook_mutex_lock(((struct mrace *)arg)->r_m);
}

static int mrace_locker(void *arg)
{
	struct mrace *r = arg;
	r->r_rc = race_call(&r->r_dl, mrace_lock_op, r);
	if (r->r_rc == 0) {
		T_CHECK_EQ(atomic_fetch_add(r->r_inside, 1), 0);
		atomic_fetch_sub(r->r_inside, 1);
	}
	r->r_unlock_rc = rook_mutex_unlock(r->r_m);
	return 0;
}

static int mutex_race_main(void *arg)
{
	long n = scaled(2000, 2), got = 0;
	struct rook_mutex *m;
	struct rook_task *t;
	_Atomic int inside = 0;

	T_CHECK_EQ(rook_mutex_create(&m), 0);
	for (long i = 0; i < n; i++) {
		struct mrace r = {.r_m = m, .r_inside = &inside};
		T_CHECK_EQ(rook_mutex_lock(m), 0);
		T_CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
		T_CHECK_EQ(rook_spawn(&t, mrace_locker, &r), 0);
		race_wait(&r.r_dl, race_offset(i));
		atomic_fetch_sub(&inside, 1);
		T_CHECK_EQ(rook_mutex_unlock(m), 0);
		join_ok(t);
		if (r.r_rc == 0) {
			got++;
			T_CHECK_EQ(r.r_unlock_rc, 0);
		} else {
			T_CHECK_EQ(r.r_rc, -ETIMEDOUT);
			T_CHECK_EQ(r.r_unlock_rc, -EPERM);
		}
		/* Free now: nobody owns it, nobody waits. */
		T_CHECK_EQ(rook__mutex_waiters(m), 0);
		T_CHECK_EQ(rook_mutex_trylock(m), 0);
		T_CHECK_EQ(rook_mutex_unlock(m), 0);
	}
	cr_log_info("mutex race: %ld of %ld locked before the deadline", got, n);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync_deadline, edge3_mutex_unlock_racing_deadline_one_owner_or_none, .timeout = 240)
{
	run2(mutex_race_main);
}

/* ---- 81: semaphore acquire that times out holds nothing ------------------ */

struct sop {
	struct rook_sem *o_s;
	struct timed o_tm;
};

static int s_acquire_op(void *arg)
{
	return rook_sem_acquire(((struct sop *)arg)->o_s);
}

static int s_acquirer(void *arg)
{
	struct sop *o = arg;
	timed_call(&o->o_tm, s_acquire_op, o);
	atomic_store(&o->o_tm.t_done, 1);
	return 0;
}

static int case81_main(void *arg)
{
	struct rook_sem *s;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};

	T_CHECK_EQ(rook_sem_create(&s, 0, 0), 0);

	/* The caller times out: no permit held, no waiter left. */
	timed_begin(&tm);
	timed_end(&tm, rook_sem_acquire(s));
	check_timed_out(&tm);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook__sem_waiters(s), 0);
	/* A release goes to the value, not to a stale waiter. */
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook__sem_value(s), 1);
	T_CHECK_EQ(rook_sem_try_acquire(s), 0);
	T_CHECK_EQ(rook__sem_value(s), 0);

	/* Timed a ahead of plain b: a times out; one release goes to b. */
	struct sop a = {.o_s = s, .o_tm = {.t_rel_ns = SHORT_NS}};
	struct sop b = {.o_s = s};
	T_CHECK_EQ(rook_spawn(&t, s_acquirer, &a), 0);
	WAIT_UNTIL(rook__sem_waiters(s) == 1 || atomic_load(&a.o_tm.t_done));
	T_CHECK_EQ(rook_spawn(&t2, s_acquirer, &b), 0);
	WAIT_UNTIL(atomic_load(&a.o_tm.t_done));
	check_timed_out(&a.o_tm);
	join_ok(t);
	WAIT_UNTIL(rook__sem_waiters(s) == 1);
	T_CHECK_EQ(atomic_load(&b.o_tm.t_done), 0);
	T_CHECK_EQ(rook_sem_release(s), 0);
	join_ok(t2);
	T_CHECK_EQ(b.o_tm.t_rc, 0);
	T_CHECK_EQ(rook__sem_value(s), 0);
	T_CHECK_EQ(rook__sem_waiters(s), 0);

	/* A timed acquire that gets a permit before its deadline holds it. */
	struct sop c = {.o_s = s, .o_tm = {.t_rel_ns = LONG_NS}};
	T_CHECK_EQ(rook_spawn(&t, s_acquirer, &c), 0);
	WAIT_UNTIL(rook__sem_waiters(s) == 1);
	T_CHECK_EQ(rook_sem_release(s), 0);
	join_ok(t);
	T_CHECK_EQ(c.o_tm.t_rc, 0);
	T_CHECK(!c.o_tm.t_expired);
	T_CHECK_EQ(rook__sem_value(s), 0);
	rook_sem_destroy(s);

	/* Bounded: a timed-out waiter does not make a release overflow. */
	T_CHECK_EQ(rook_sem_create(&s, 0, 1), 0);
	timed_begin(&tm);
	timed_end(&tm, rook_sem_acquire(s));
	check_timed_out(&tm);
	T_CHECK_EQ(rook_sem_release(s), 0);
	T_CHECK_EQ(rook_sem_release(s), -EOVERFLOW);
	T_CHECK_EQ(rook__sem_value(s), 1);
	rook_sem_destroy(s);
	return 0;
}

Test(sync_deadline, case81_timed_out_acquire_holds_nothing, .timeout = 60)
{
	run2(case81_main);
}

/* Edge #3 with a deadline: a release races a timed acquire; the permit is
 * held by the acquirer or left in the value, never lost or doubled. */
struct srace {
	struct rook_sem *r_s;
	_Atomic uint64_t r_dl;
	int r_rc;
};

static int srace_acquire_op(void *arg)
{
	return rook_sem_acquire(((struct srace *)arg)->r_s);
}

static int srace_acquirer(void *arg)
{
	struct srace *r = arg;
	r->r_rc = race_call(&r->r_dl, srace_acquire_op, r);
	return 0;
}

static int sem_race_main(void *arg)
{
	long n = scaled(2000, 2), got = 0, left = 0;
	struct rook_sem *s;
	struct rook_task *t;

	T_CHECK_EQ(rook_sem_create(&s, 0, 0), 0);
	for (long i = 0; i < n; i++) {
		struct srace r = {.r_s = s};
		T_CHECK_EQ(rook_spawn(&t, srace_acquirer, &r), 0);
		race_wait(&r.r_dl, race_offset(i));
		T_CHECK_EQ(rook_sem_release(s), 0);
		join_ok(t);
		T_CHECK_EQ(rook__sem_waiters(s), 0);
		if (r.r_rc == 0) {
			got++;
			T_CHECK_EQ(rook__sem_value(s), 0);
		} else {
			T_CHECK_EQ(r.r_rc, -ETIMEDOUT);
			T_CHECK_EQ(rook__sem_value(s), 1);
			if (rook_sem_try_acquire(s) == 0)
				left++;
		}
		T_CHECK_EQ(rook__sem_value(s), 0);
	}
	T_CHECK_EQ(got + left, n);
	cr_log_info("sem race: %ld of %ld acquired before the deadline", got, n);
	rook_sem_destroy(s);
	return 0;
}

Test(sync_deadline, edge3_sem_release_racing_deadline_permit_never_lost, .timeout = 240)
{
	run2(sem_race_main);
}

/* ---- 82 / 84: event wait that times out ----------------------------------- */

struct eop {
	struct rook_event *o_e;
	struct timed o_tm;
};

static int e_wait_op(void *arg)
{
	return rook_event_wait(((struct eop *)arg)->o_e);
}

static int e_waiter(void *arg)
{
	struct eop *o = arg;
	timed_call(&o->o_tm, e_wait_op, o);
	atomic_store(&o->o_tm.t_done, 1);
	return 0;
}

static int case82_main(void *arg)
{
	struct rook_event *e;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};

	T_CHECK_EQ(rook_event_create(&e), 0);

	/* The caller times out on a clear event; it stays clear, no waiter. */
	timed_begin(&tm);
	timed_end(&tm, rook_event_wait(e));
	check_timed_out(&tm);
	T_CHECK(!rook_event_is_set(e));
	T_CHECK_EQ(rook__event_waiters(e), 0);

	/* Timed a and plain b wait; a times out and leaves; set wakes b. */
	struct eop a = {.o_e = e, .o_tm = {.t_rel_ns = SHORT_NS}};
	struct eop b = {.o_e = e};
	T_CHECK_EQ(rook_spawn(&t, e_waiter, &a), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 1 || atomic_load(&a.o_tm.t_done));
	T_CHECK_EQ(rook_spawn(&t2, e_waiter, &b), 0);
	WAIT_UNTIL(atomic_load(&a.o_tm.t_done));
	check_timed_out(&a.o_tm);
	join_ok(t);
	WAIT_UNTIL(rook__event_waiters(e) == 1);
	T_CHECK_EQ(atomic_load(&b.o_tm.t_done), 0);
	/* Case 84: set then clear at once; b still wakes. */
	rook_event_set(e);
	rook_event_clear(e);
	join_ok(t2);
	T_CHECK_EQ(b.o_tm.t_rc, 0);
	T_CHECK_EQ(rook__event_waiters(e), 0);
	T_CHECK(!rook_event_is_set(e));

	/* A timed wait that the set reaches before its deadline returns 0. */
	struct eop c = {.o_e = e, .o_tm = {.t_rel_ns = LONG_NS}};
	T_CHECK_EQ(rook_spawn(&t, e_waiter, &c), 0);
	WAIT_UNTIL(rook__event_waiters(e) == 1);
	rook_event_set(e);
	join_ok(t);
	T_CHECK_EQ(c.o_tm.t_rc, 0);
	T_CHECK(!c.o_tm.t_expired);

	/* Set, with a deadline still ahead: returns at once with 0. */
	tm.t_rel_ns = LONG_NS;
	timed_begin(&tm);
	timed_end(&tm, rook_event_wait(e));
	T_CHECK_EQ(tm.t_rc, 0);
	T_CHECK(!tm.t_expired);
	T_CHECK_EQ(rook__event_waiters(e), 0);

	rook_event_destroy(e);
	return 0;
}

Test(sync_deadline, case82_84_timed_out_event_wait_leaves_no_waiter, .timeout = 60)
{
	run2(case82_main);
}

/* ---- 87: a timed-out cond wait holds the mutex again ---------------------- */

struct cop {
	struct rook_cond *o_c;
	struct rook_mutex *o_m;
	struct timed o_tm;
	_Atomic int *o_main_holds; /* set while another task holds o_m */
	int o_unlock_rc;
	_Atomic int o_locked;
};

static int c_waiter(void *arg)
{
	struct cop *o = arg;
	int rc;
	T_CHECK_EQ(rook_mutex_lock(o->o_m), 0);
	atomic_store(&o->o_locked, 1);
	if (o->o_tm.t_rel_ns)
		timed_begin(&o->o_tm);
	rc = rook_cond_wait(o->o_c, o->o_m);
	/* Whatever it returned, we own the mutex now and nobody else does. */
	if (o->o_main_holds)
		T_CHECK_EQ(atomic_load(o->o_main_holds), 0);
	if (o->o_tm.t_rel_ns)
		timed_end(&o->o_tm, rc);
	else
		o->o_tm.t_rc = rc;
	T_CHECK_EQ(rook_mutex_trylock(o->o_m), -EDEADLK);
	o->o_unlock_rc = rook_mutex_unlock(o->o_m);
	atomic_store(&o->o_tm.t_done, 1);
	return 0;
}

static int case87_main(void *arg)
{
	struct rook_cond *c;
	struct rook_mutex *m;
	struct rook_task *t, *t2;
	struct timed tm = {.t_rel_ns = SHORT_NS};
	_Atomic int main_holds = 0;

	T_CHECK_EQ(rook_cond_create(&c), 0);
	T_CHECK_EQ(rook_mutex_create(&m), 0);

	/* The caller times out and owns the mutex again. */
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	timed_begin(&tm);
	timed_end(&tm, rook_cond_wait(c, m));
	check_timed_out(&tm);
	T_CHECK_EQ(rook_mutex_trylock(m), -EDEADLK);
	T_CHECK_EQ(rook__cond_waiters(c), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);

	/* Already expired at entry: -ETIMEDOUT, the mutex still held. */
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() - ROOK_MSEC), 0);
	T_CHECK_EQ(rook_cond_wait(c, m), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_mutex_unlock(m), 0);

	/* Contested: the deadline fires while main holds the mutex; the
	 * waiter returns only once main has let go, and owns it. */
	struct cop a = {
	    .o_c = c, .o_m = m, .o_tm = {.t_rel_ns = SHORT_NS}, .o_main_holds = &main_holds};
	T_CHECK_EQ(rook_spawn(&t, c_waiter, &a), 0);
	WAIT_UNTIL(rook__cond_waiters(c) == 1 || atomic_load(&a.o_tm.t_done));
	T_CHECK_EQ(rook_mutex_lock(m), 0);
	atomic_store(&main_holds, 1);
	/* a may have timed out and left before main got m (a slow machine);
	 * from now on it cannot return until main lets go. */
	int done_before = atomic_load(&a.o_tm.t_done);
	T_CHECK_EQ(rook_sleep(3 * SHORT_NS), 0); /* well past a's deadline */
	T_CHECK_EQ(atomic_load(&a.o_tm.t_done), done_before);
	atomic_store(&main_holds, 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);
	join_ok(t);
	check_timed_out(&a.o_tm);
	T_CHECK_EQ(a.o_unlock_rc, 0);
	T_CHECK_EQ(rook__cond_waiters(c), 0);
	T_CHECK_EQ(rook__mutex_waiters(m), 0);

	/* Timed a ahead of plain b: a times out; a signal then reaches b. */
	struct cop ca = {.o_c = c, .o_m = m, .o_tm = {.t_rel_ns = SHORT_NS}};
	struct cop cb = {.o_c = c, .o_m = m};
	T_CHECK_EQ(rook_spawn(&t, c_waiter, &ca), 0);
	WAIT_UNTIL(rook__cond_waiters(c) == 1 || atomic_load(&ca.o_tm.t_done));
	T_CHECK_EQ(rook_spawn(&t2, c_waiter, &cb), 0);
	WAIT_UNTIL(rook__cond_waiters(c) == 2 || atomic_load(&ca.o_tm.t_done));
	WAIT_UNTIL(atomic_load(&ca.o_tm.t_done));
	check_timed_out(&ca.o_tm);
	T_CHECK_EQ(ca.o_unlock_rc, 0);
	join_ok(t);
	WAIT_UNTIL(rook__cond_waiters(c) == 1);
	T_CHECK_EQ(atomic_load(&cb.o_tm.t_done), 0);
	rook_cond_signal(c);
	join_ok(t2);
	T_CHECK_EQ(cb.o_tm.t_rc, 0);
	T_CHECK_EQ(cb.o_unlock_rc, 0);
	T_CHECK_EQ(rook__cond_waiters(c), 0);

	/* The mutex is free and works. */
	T_CHECK_EQ(rook_mutex_trylock(m), 0);
	T_CHECK_EQ(rook_mutex_unlock(m), 0);

	rook_cond_destroy(c);
	rook_mutex_destroy(m);
	return 0;
}

Test(sync_deadline, case87_timed_out_cond_wait_holds_mutex_again, .timeout = 60)
{
	run2(case87_main);
}
