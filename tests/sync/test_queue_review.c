/* SPDX-License-Identifier: MIT */
/*
 * Queue review: races of the lock-free queue that the other queue tests do
 * not drive.
 * - join's count of unfinished items read with puts and task_done calls
 *   running on the lock-free path between its reads;
 * - close racing with puts and gets on 2 workers and plain threads, with
 *   blocking and try_ getters: every item whose put returned 0 is got
 *   exactly once, in each producer's order, untorn, and -EPIPE comes only
 *   once nothing is left;
 * - task_done/join across threads with a tally: join never returns while an
 *   item put before it began is unfinished;
 * - odd capacities (1, 3, 1000, 5000), rings cut short by
 *   rook__queue_ring_limit, odd item sizes, items larger than the ring's
 *   byte budget.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sync/queue.h"

static void yield_any(void)
{
	if (rook_self())
		rook_yield();
	else
		sched_yield();
}

/* ---- join's count, with lock-free calls between its reads ---------------- */

static _Atomic int hook_fired;
static int hook_put_rc = 1, hook_done_rc = 1;

/* Runs inside join's count of unfinished items (q's lock held): a put and
 * a task_done on the lock-free path (the ring has room, and no joiner is
 * linked yet, so task_done does not take the lock). */
static void put_and_done_hook(struct rook_queue *q)
{
	long v = 2;

	rook__queue_unfinished_hook(NULL);
	hook_put_rc = rook_queue_try_put(q, &v);
	hook_done_rc = rook_queue_task_done(q);
	atomic_store(&hook_fired, 1);
}

struct join_race {
	struct rook_queue *jr_q;
	_Atomic int jr_join_returned;
	_Atomic int jr_last_done; /* the task_done of item 2 returned */
	long jr_got;
};

static void *finish_second_item(void *arg)
{
	struct join_race *jr = arg;
	struct rook__queue_waiters w;

	/* Once join waits, get item 2 and mark it done; if join returned
	 * without waiting, there is nothing to do. */
	for (;;) {
		if (atomic_load(&jr->jr_join_returned))
			return NULL;
		rook__queue_waiters(jr->jr_q, &w);
		if (w.joiners == 1)
			break;
		sched_yield();
	}
	if (rook_queue_get(jr->jr_q, &jr->jr_got) != 0)
		return (void *)1;
	atomic_store(&jr->jr_last_done, 1);
	if (rook_queue_task_done(jr->jr_q) != 0)
		return (void *)2;
	return NULL;
}

/*
 * Item 1 is got and not done. While join counts, item 2 is put and item 1
 * marked done: at no moment were all items done (1 outstanding, then 2,
 * then 1), so join must wait for item 2's task_done. Counting the items
 * put before the task_done calls lets the done count overtake a stale put
 * count and read 0.
 */
Test(queue_review, join_not_fooled_by_put_and_task_done_during_its_count, .timeout = 30)
{
	static struct join_race jr;
	pthread_t th;
	long v = 1;
	void *res = (void *)3;

	memset(&jr, 0, sizeof(jr));
	cr_assert_eq(rook_queue_create(&jr.jr_q, sizeof(long), 4), 0);
	cr_assert_eq(rook_queue_put(jr.jr_q, &v), 0);
	cr_assert_eq(rook_queue_get(jr.jr_q, &v), 0);
	cr_assert_eq(pthread_create(&th, NULL, finish_second_item, &jr), 0);
	rook__queue_unfinished_hook(put_and_done_hook);
	int rc = rook_queue_join(jr.jr_q);
	int last_done = atomic_load(&jr.jr_last_done);
	atomic_store(&jr.jr_join_returned, 1);
	rook__queue_unfinished_hook(NULL);
	cr_assert_eq(pthread_join(th, &res), 0);
	cr_assert_null(res);
	cr_assert_eq(atomic_load(&hook_fired), 1);
	cr_assert_eq(hook_put_rc, 0);
	cr_assert_eq(hook_done_rc, 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(last_done, 1, "join returned while item 2 was put and not done");
	cr_assert_eq(jr.jr_got, 2);
	cr_assert_eq(rook_queue_task_done(jr.jr_q), -EINVAL);
	rook_queue_destroy(jr.jr_q);
}

/* ---- close racing with puts and gets on every kind of thread ------------- */

enum { CR_TPROD = 3, CR_PROD = CR_TPROD + 1, CR_TCONS = 4, CR_CONS = CR_TCONS + 2 };

/* 12 bytes: not a multiple of 8, so slots carry padding. */
struct citem {
	uint32_t c_prod;
	uint32_t c_seq;
	uint32_t c_check;
};

static uint32_t check_of(uint32_t p, uint32_t s)
{
	return (p * 2654435761u) ^ (s * 2246822519u) ^ 0x5bd1e995u;
}

struct crace {
	struct rook_queue *cr_q;
	uint32_t cr_max; /* items per producer at most */
	_Atomic uint8_t *cr_tally[CR_PROD];
	uint32_t cr_put[CR_PROD]; /* puts that returned 0 */
	_Atomic long cr_received;
	_Atomic int cr_bad;         /* torn, duplicate or out of order */
	_Atomic int cr_early_epipe; /* -EPIPE while something was left */
	_Atomic int cr_other_rc;
};

struct cprod {
	struct crace *p_cr;
	uint32_t p_id;
	bool p_try;
};

struct ccons {
	struct crace *c_cr;
	bool c_try;
};

static void *cprod_run(void *arg)
{
	struct cprod *p = arg;
	struct crace *cr = p->p_cr;
	struct citem it = {.c_prod = p->p_id};
	uint32_t s;

	for (s = 0; s < cr->cr_max; s++) {
		it.c_seq = s;
		it.c_check = check_of(p->p_id, s);
		int rc;
		while ((rc = p->p_try ? rook_queue_try_put(cr->cr_q, &it)
				      : rook_queue_put(cr->cr_q, &it)) == -EAGAIN)
			yield_any();
		if (rc == -EPIPE)
			break;
		if (rc != 0) {
			atomic_fetch_add(&cr->cr_other_rc, 1);
			break;
		}
	}
	cr->cr_put[p->p_id] = s;
	return NULL;
}

static int cprod_task(void *arg)
{
	cprod_run(arg);
	return 0;
}

static void *ccons_run(void *arg)
{
	struct ccons *c = arg;
	struct crace *cr = c->c_cr;
	uint32_t last[CR_PROD];
	struct citem it;
	int rc;

	for (int i = 0; i < CR_PROD; i++)
		last[i] = UINT32_MAX;
	for (;;) {
		rc = c->c_try ? rook_queue_try_get(cr->cr_q, &it) : rook_queue_get(cr->cr_q, &it);
		if (rc == -EAGAIN) {
			yield_any();
			continue;
		}
		if (rc != 0)
			break;
		if (it.c_prod >= CR_PROD || it.c_seq >= cr->cr_max ||
		    it.c_check != check_of(it.c_prod, it.c_seq) ||
		    (last[it.c_prod] != UINT32_MAX && it.c_seq <= last[it.c_prod]) ||
		    atomic_fetch_add(&cr->cr_tally[it.c_prod][it.c_seq], 1) != 0) {
			atomic_fetch_add(&cr->cr_bad, 1);
			continue;
		}
		last[it.c_prod] = it.c_seq;
		atomic_fetch_add(&cr->cr_received, 1);
	}
	if (rc != -EPIPE) {
		atomic_fetch_add(&cr->cr_other_rc, 1);
		return NULL;
	}
	/* Closed and drained: nothing may be left, nor come later. */
	if (rook_queue_len(cr->cr_q) != 0 || rook_queue_try_get(cr->cr_q, &it) != -EPIPE)
		atomic_fetch_add(&cr->cr_early_epipe, 1);
	return NULL;
}

static int ccons_task(void *arg)
{
	ccons_run(arg);
	return 0;
}

struct cround {
	size_t r_cap, r_ring, r_item_cap;
	long r_close_after; /* items received before the close */
};

static int crace_main(void *arg)
{
	struct crace *cr = arg;
	struct cprod prod[CR_PROD];
	struct ccons cons[CR_CONS];
	struct rook_task *tp[CR_TPROD], *tc[CR_TCONS];
	pthread_t pp, pc[2];
	static const struct cround rounds[] = {
	    {1, 0, 0, 300},  {3, 0, 0, 2000},    {3, 1, 0, 50},   {1000, 7, 0, 3000},
	    {5000, 0, 0, 0}, {5000, 3, 0, 4000}, {0, 2, 0, 1000}, {2, 1, 0, 10},
	};
	unsigned seed = 4321;

	for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++) {
		const struct cround *rd = &rounds[r];
		rook__queue_ring_limit(rd->r_ring);
		T_CHECK_EQ(rook_queue_create(&cr->cr_q, sizeof(struct citem), rd->r_cap), 0);
		rook__queue_ring_limit(0);
		for (int i = 0; i < CR_PROD; i++)
			memset((void *)cr->cr_tally[i], 0, cr->cr_max);
		atomic_store(&cr->cr_received, 0);
		for (uint32_t i = 0; i < CR_PROD; i++)
			prod[i] = (struct cprod){.p_cr = cr, .p_id = i, .p_try = i % 2 == 1};
		for (int i = 0; i < CR_CONS; i++)
			cons[i] = (struct ccons){.c_cr = cr, .c_try = i % 3 == 2};
		/* Consumers first, so some wait on an empty queue (hand-off). */
		for (int i = 0; i < CR_TCONS; i++)
			T_CHECK_EQ(rook_spawn(&tc[i], ccons_task, &cons[i]), 0);
		T_CHECK_EQ(pthread_create(&pc[0], NULL, ccons_run, &cons[CR_TCONS]), 0);
		T_CHECK_EQ(pthread_create(&pc[1], NULL, ccons_run, &cons[CR_TCONS + 1]), 0);
		for (int i = 0; i < CR_TPROD; i++)
			T_CHECK_EQ(rook_spawn(&tp[i], cprod_task, &prod[i]), 0);
		T_CHECK_EQ(pthread_create(&pp, NULL, cprod_run, &prod[CR_TPROD]), 0);

		long after = rd->r_close_after;
		if (after > (long)cr->cr_max)
			after = (long)cr->cr_max;
		while (atomic_load(&cr->cr_received) < after)
			rook_yield();
		for (unsigned y = rand_r(&seed) % 16; y > 0; y--)
			rook_yield();
		rook_queue_close(cr->cr_q);

		for (int i = 0; i < CR_TPROD; i++)
			T_CHECK_EQ(rook_join(tp[i], NULL), 0);
		T_CHECK_EQ(pthread_join(pp, NULL), 0);
		for (int i = 0; i < CR_TCONS; i++)
			T_CHECK_EQ(rook_join(tc[i], NULL), 0);
		T_CHECK_EQ(pthread_join(pc[0], NULL), 0);
		T_CHECK_EQ(pthread_join(pc[1], NULL), 0);

		long want = 0;
		for (int p = 0; p < CR_PROD; p++) {
			want += cr->cr_put[p];
			for (uint32_t s = 0; s < cr->cr_max; s++)
				T_CHECK_EQ(atomic_load(&cr->cr_tally[p][s]),
					   s < cr->cr_put[p] ? 1 : 0);
		}
		T_CHECK_EQ(atomic_load(&cr->cr_received), want);
		T_CHECK_EQ(atomic_load(&cr->cr_bad), 0);
		T_CHECK_EQ(atomic_load(&cr->cr_early_epipe), 0);
		T_CHECK_EQ(atomic_load(&cr->cr_other_rc), 0);
		rook_queue_destroy(cr->cr_q);
	}
	return 0;
}

Test(queue_review, close_races_puts_and_gets_on_workers_and_plain_threads_stress, .timeout = 120)
{
	int fds = fd_count();
	static struct crace cr;

	memset(&cr, 0, sizeof(cr));
	cr.cr_max = (uint32_t)scaled(6000, 4);
	for (int i = 0; i < CR_PROD; i++) {
		cr.cr_tally[i] = calloc(cr.cr_max, 1);
		cr_assert_not_null((void *)cr.cr_tally[i]);
	}
	cr_assert_eq(run_with(2, ROOK_NO_PIN, crace_main, &cr), 0);
	for (int i = 0; i < CR_PROD; i++)
		free((void *)cr.cr_tally[i]);
	expect_clean_shutdown(fds);
}

/* ---- task_done/join across threads with a tally -------------------------- */

struct jstress {
	struct rook_queue *js_q;
	long js_per;           /* items per producer */
	_Atomic long js_puts;  /* puts that returned */
	_Atomic long js_dones; /* task_done calls begun */
	_Atomic long js_joins;
	_Atomic int js_stop;
	_Atomic int js_producers_left;
};

static void *jprod_run(void *arg)
{
	struct jstress *js = arg;

	for (long i = 0; i < js->js_per; i++) {
		T_CHECK_EQ(rook_queue_put(js->js_q, &i), 0);
		atomic_fetch_add(&js->js_puts, 1);
		if (i % 64 == 0)
			yield_any();
	}
	atomic_fetch_sub(&js->js_producers_left, 1);
	return NULL;
}

static int jprod_task(void *arg)
{
	jprod_run(arg);
	return 0;
}

static void *jcons_run(void *arg)
{
	struct jstress *js = arg;
	long v;
	int rc;

	while ((rc = rook_queue_get(js->js_q, &v)) == 0) {
		atomic_fetch_add(&js->js_dones, 1);
		T_CHECK_EQ(rook_queue_task_done(js->js_q), 0);
	}
	T_CHECK_EQ(rc, -EPIPE);
	return NULL;
}

static int jcons_task(void *arg)
{
	jcons_run(arg);
	return 0;
}

/* join returns only at a moment when every item put was done: all the
 * puts that returned before it began had had their task_done begun. */
static void *jjoin_run(void *arg)
{
	struct jstress *js = arg;

	while (!atomic_load(&js->js_stop)) {
		long p = atomic_load(&js->js_puts);
		T_CHECK_EQ(rook_queue_join(js->js_q), 0);
		long d = atomic_load(&js->js_dones);
		T_CHECK(d >= p);
		atomic_fetch_add(&js->js_joins, 1);
		yield_any();
	}
	return NULL;
}

static int jjoin_task(void *arg)
{
	jjoin_run(arg);
	return 0;
}

static int jstress_main(void *arg)
{
	struct jstress *js = arg;
	struct rook_task *t[6];
	pthread_t th[3];

	atomic_store(&js->js_producers_left, 3);
	T_CHECK_EQ(rook_spawn(&t[0], jcons_task, js), 0);
	T_CHECK_EQ(rook_spawn(&t[1], jcons_task, js), 0);
	T_CHECK_EQ(pthread_create(&th[0], NULL, jcons_run, js), 0);
	T_CHECK_EQ(rook_spawn(&t[2], jjoin_task, js), 0);
	T_CHECK_EQ(pthread_create(&th[1], NULL, jjoin_run, js), 0);
	T_CHECK_EQ(rook_spawn(&t[3], jprod_task, js), 0);
	T_CHECK_EQ(rook_spawn(&t[4], jprod_task, js), 0);
	T_CHECK_EQ(pthread_create(&th[2], NULL, jprod_run, js), 0);
	while (atomic_load(&js->js_producers_left) > 0)
		rook_yield();
	T_CHECK_EQ(rook_queue_join(js->js_q), 0);
	T_CHECK_EQ(atomic_load(&js->js_dones), 3 * js->js_per);
	atomic_store(&js->js_stop, 1);
	T_CHECK_EQ(rook_join(t[2], NULL), 0);
	T_CHECK_EQ(pthread_join(th[1], NULL), 0);
	T_CHECK_EQ(rook_queue_task_done(js->js_q), -EINVAL);
	rook_queue_close(js->js_q);
	T_CHECK_EQ(rook_join(t[0], NULL), 0);
	T_CHECK_EQ(rook_join(t[1], NULL), 0);
	T_CHECK_EQ(rook_join(t[3], NULL), 0);
	T_CHECK_EQ(rook_join(t[4], NULL), 0);
	T_CHECK_EQ(pthread_join(th[0], NULL), 0);
	T_CHECK_EQ(pthread_join(th[2], NULL), 0);
	T_CHECK_EQ(rook_queue_join(js->js_q), 0);
	return 0;
}

static void jstress(size_t cap, size_t ring)
{
	int fds = fd_count();
	static struct jstress js;

	memset(&js, 0, sizeof(js));
	js.js_per = scaled(30000, 10);
	rook__queue_ring_limit(ring);
	cr_assert_eq(rook_queue_create(&js.js_q, sizeof(long), cap), 0);
	rook__queue_ring_limit(0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, jstress_main, &js), 0);
	cr_log_info("%ld joins returned", atomic_load(&js.js_joins));
	rook_queue_destroy(js.js_q);
	expect_clean_shutdown(fds);
}

Test(queue_review, join_and_task_done_across_threads_keep_the_tally_stress, .timeout = 120)
{
	jstress(8, 0);
}

Test(queue_review, join_and_task_done_with_backlog_keep_the_tally_stress, .timeout = 120)
{
	jstress(16, 3);
}

Test(queue_review, join_and_task_done_unbounded_keep_the_tally_stress, .timeout = 120)
{
	jstress(0, 2);
}

/* ---- odd capacities, ring limits and item sizes -------------------------- */

static void fill_item(unsigned char *b, size_t size, uint32_t v)
{
	for (size_t k = 0; k < size; k++)
		b[k] = (unsigned char)(v * 31u + k * 7u + (v >> 8));
}

static bool item_is(const unsigned char *b, size_t size, uint32_t v)
{
	for (size_t k = 0; k < size; k++)
		if (b[k] != (unsigned char)(v * 31u + k * 7u + (v >> 8)))
			return false;
	return true;
}

/* One thread: fill to capacity exactly, drain in order, several laps with
 * the queue half full so positions wrap at every offset. */
static void capacity_exact(size_t cap, size_t ring, size_t size)
{
	struct rook_queue *q;
	unsigned char *in = malloc(size), *out = malloc(size);
	uint32_t next_in = 0, next_out = 0;

	cr_assert(in && out);
	rook__queue_ring_limit(ring);
	cr_assert_eq(rook_queue_create(&q, size, cap), 0);
	rook__queue_ring_limit(0);
	for (int lap = 0; lap < 3; lap++) {
		size_t keep = lap == 1 ? cap / 2 : 0;
		while (rook_queue_len(q) < cap) {
			fill_item(in, size, next_in);
			cr_assert_eq(rook_queue_try_put(q, in), 0, "cap %zu ring %zu size %zu", cap,
				     ring, size);
			next_in++;
		}
		cr_assert_eq(rook_queue_try_put(q, in), -EAGAIN, "cap %zu ring %zu size %zu", cap,
			     ring, size);
		cr_assert_eq(rook_queue_len(q), cap);
		while (rook_queue_len(q) > keep) {
			cr_assert_eq(rook_queue_try_get(q, out), 0);
			cr_assert(item_is(out, size, next_out), "cap %zu ring %zu size %zu item %u",
				  cap, ring, size, next_out);
			next_out++;
		}
	}
	while (rook_queue_try_get(q, out) == 0) {
		cr_assert(item_is(out, size, next_out));
		next_out++;
	}
	cr_assert_eq(next_out, next_in);
	cr_assert_eq(rook_queue_try_get(q, out), -EAGAIN);
	rook_queue_close(q);
	cr_assert_eq(rook_queue_try_get(q, out), -EPIPE);
	cr_assert_eq(rook_queue_try_put(q, in), -EPIPE);
	rook_queue_destroy(q);
	free(in);
	free(out);
}

Test(queue_review, odd_capacities_ring_limits_and_item_sizes_hold_exactly_capacity, .timeout = 60)
{
	static const size_t caps[] = {1, 2, 3, 1000, 5000};
	static const size_t rings[] = {0, 1, 2, 7};
	static const size_t sizes[] = {1, 3, 12, 24, 100};

	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++)
		for (size_t r = 0; r < sizeof(rings) / sizeof(rings[0]); r++)
			for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
				capacity_exact(caps[c], rings[r], sizes[s]);
}

Test(queue_review, unbounded_queue_with_short_rings_keeps_order, .timeout = 60)
{
	static const size_t rings[] = {0, 1, 2, 3, 7};
	unsigned char in[12], out[12];

	for (size_t r = 0; r < sizeof(rings) / sizeof(rings[0]); r++) {
		struct rook_queue *q;
		rook__queue_ring_limit(rings[r]);
		cr_assert_eq(rook_queue_create(&q, sizeof(in), 0), 0);
		rook__queue_ring_limit(0);
		uint32_t next_out = 0;
		for (uint32_t v = 0; v < 3000; v++) {
			fill_item(in, sizeof(in), v);
			cr_assert_eq(rook_queue_try_put(q, in), 0);
			if (v % 3 == 0) {
				cr_assert_eq(rook_queue_get(q, out), 0);
				cr_assert(item_is(out, sizeof(out), next_out), "ring %zu item %u",
					  rings[r], next_out);
				next_out++;
			}
		}
		cr_assert_eq(rook_queue_len(q), (size_t)(3000 - next_out));
		while (next_out < 3000) {
			cr_assert_eq(rook_queue_get(q, out), 0);
			cr_assert(item_is(out, sizeof(out), next_out));
			next_out++;
		}
		cr_assert_eq(rook_queue_try_get(q, out), -EAGAIN);
		rook_queue_destroy(q);
	}
}

/* Items larger than the ring's byte budget: a ring of one slot, the rest of
 * the capacity in the backlog. */
Test(queue_review, items_larger_than_the_ring_budget_keep_capacity_and_content, .timeout = 60)
{
	capacity_exact(3, 0, 300000);
	capacity_exact(1, 0, 70000);

	struct rook_queue *q;
	const size_t size = 100000;
	unsigned char *in = malloc(size), *out = malloc(size);
	cr_assert(in && out);
	cr_assert_eq(rook_queue_create(&q, size, 0), 0);
	for (uint32_t v = 0; v < 40; v++) {
		fill_item(in, size, v);
		cr_assert_eq(rook_queue_put(q, in), 0);
	}
	cr_assert_eq(rook_queue_len(q), 40);
	for (uint32_t v = 0; v < 40; v++) {
		cr_assert_eq(rook_queue_get(q, out), 0);
		cr_assert(item_is(out, size, v));
	}
	rook_queue_destroy(q);
	free(in);
	free(out);

	cr_assert_eq(rook_queue_create(&q, SIZE_MAX, 1), -EINVAL);
	cr_assert_eq(rook_queue_create(&q, SIZE_MAX / 4, 0), -EINVAL);
}
