/* SPDX-License-Identifier: MIT */
/*
 * Work stealing and wake-ups across workers: a child runs on the other
 * worker while its parent hogs its own (also when that worker was parked
 * before the spawn), tasks migrate across yields, a
 * spawn-heavy loop does not starve an older task, stealing under load
 * loses no task, and no wake-up is lost when plain threads inject work
 * while tasks park in joins.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <rook.h>

#include "tests/helpers.h"
#include "sched/testing.h"

/* ---- a child runs elsewhere while its parent spins ---------------------- */

static _Atomic int child_flag;
static _Atomic int child_index = -2;
static _Atomic int main_index = -2;

static int set_child_flag(void *arg)
{
	atomic_store(&child_index, rook__worker_index());
	atomic_store_explicit(&child_flag, 1, memory_order_release);
	return 0;
}

static int spin_main(void *arg)
{
	struct rook_task *t = NULL;

	atomic_store(&main_index, rook__worker_index());
	T_CHECK_EQ(rook_spawn(&t, set_child_flag, NULL), 0);
	/* No yield: only the other worker can run the child. */
	while (!atomic_load_explicit(&child_flag, memory_order_acquire))
		;
	T_CHECK_EQ(rook__worker_index(), atomic_load(&main_index));
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

Test(steal, child_runs_on_other_worker_when_parent_spins, .timeout = 60)
{
	int fds = fd_count();
	struct rook__stats st;

	cr_assert_eq(run_with(2, ROOK_NO_PIN, spin_main, NULL), 0);
	int m = atomic_load(&main_index), c = atomic_load(&child_index);
	cr_assert(m >= 0 && m < 2, "main ran on worker %d", m);
	cr_assert(c >= 0 && c < 2, "child ran on worker %d", c);
	cr_assert_neq(m, c, "child and spinning parent both on worker %d", m);
	rook__stats_get(&st);
	cr_assert_geq(st.steals, 1, "no steal was counted");
	expect_clean_shutdown(fds);
}

/* ---- ... also when the other worker is already parked ------------------ */

/*
 * A spawn into an empty deque does not wake a parked worker (the spawner is
 * expected to run the child itself next); a parked worker's bounded naps
 * are what rescue a child whose parent keeps its worker.
 */
static _Atomic int parked_child_flag;

static int set_parked_child_flag(void *arg)
{
	atomic_store_explicit(&parked_child_flag, 1, memory_order_release);
	return 0;
}

static int spin_main_other_parked(void *arg)
{
	struct rook_task *t = NULL;

	/* No yield: wait (spinning) until the other worker is parked. */
	while (rook__idle_workers() < 1)
		;
	T_CHECK_EQ(rook_spawn(&t, set_parked_child_flag, NULL), 0);
	while (!atomic_load_explicit(&parked_child_flag, memory_order_acquire))
		;
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

Test(steal, child_runs_when_parent_spins_and_other_worker_is_parked, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, spin_main_other_parked, NULL), 0);
	cr_assert_eq(atomic_load(&parked_child_flag), 1);
	expect_clean_shutdown(fds);
}

/* ---- ... also when the other worker sleeps deeply ------------------------ */

/*
 * After its naps a parked worker sleeps deeply (no more naps), counted in
 * rt_ndeep: a spawn into an empty deque must then notify, or the child of a
 * parent that keeps its worker would wait forever. Bounded: the child must
 * start within a second of the spawn.
 */
static _Atomic int deep_child_flag;
static _Atomic uint64_t deep_child_late_ms;

static int set_deep_child_flag(void *arg)
{
	atomic_store_explicit(&deep_child_flag, 1, memory_order_release);
	return 0;
}

static int spin_main_other_deep(void *arg)
{
	struct rook_task *t = NULL;

	/* No yield: wait until the other worker is parked, then well past its
	 * naps (64 of at most 2 ms each). */
	while (rook__idle_workers() < 1)
		;
	uint64_t t0 = rook_now();
	while (rook_now() - t0 < 400 * ROOK_MSEC)
		;
	T_CHECK_EQ(rook__idle_workers(), 1);
	t0 = rook_now();
	T_CHECK_EQ(rook_spawn(&t, set_deep_child_flag, NULL), 0);
	while (!atomic_load_explicit(&deep_child_flag, memory_order_acquire) &&
	       rook_now() - t0 < 2 * ROOK_SEC)
		;
	atomic_store(&deep_child_late_ms, ms_since(t0));
	T_CHECK(atomic_load_explicit(&deep_child_flag, memory_order_acquire));
	T_CHECK_EQ(rook_join(t, NULL), 0);
	return 0;
}

Test(steal, child_runs_when_parent_spins_and_other_worker_sleeps_deeply, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(2, ROOK_NO_PIN, spin_main_other_deep, NULL), 0);
	t_no_failures();
	cr_assert_lt(atomic_load(&deep_child_late_ms), 1000, "child started %llu ms late",
		     (unsigned long long)atomic_load(&deep_child_late_ms));
	expect_clean_shutdown(fds);
}

/* ---- migration across yields -------------------------------------------- */

/*
 * A hog task spins (no yield) on one worker while main gathers the 64
 * loopers on the other; when the hog ends, its worker runs dry and must take
 * yielded loopers from the busy one. Loopers run at least 2,000 iterations,
 * and on (up to a cap) until some looper has seen a migration.
 */
#define MIG_TASKS   64
#define MIG_WORKERS 2
#define MIG_CAP     1000000L

static _Atomic long migrations;
static _Atomic long bad_indices;
static _Atomic long loopers_started;
static _Atomic int hog_started, hog_release;
static _Atomic int hog_index = -2;

static void check_index(int idx)
{
	if (idx < 0 || idx >= MIG_WORKERS)
		atomic_fetch_add(&bad_indices, 1);
}

static int hog(void *arg)
{
	atomic_store(&hog_index, rook__worker_index());
	atomic_store_explicit(&hog_started, 1, memory_order_release);
	while (!atomic_load_explicit(&hog_release, memory_order_acquire))
		;
	return 0;
}

static int migrate_loop(void *arg)
{
	long iters = scaled(2000, 4);

	atomic_fetch_add_explicit(&loopers_started, 1, memory_order_release);
	for (long i = 0; i < iters || (i < MIG_CAP && !atomic_load(&migrations)); i++) {
		int before = rook__worker_index();
		int rc = rook_yield();
		int after = rook__worker_index();
		check_index(before);
		check_index(after);
		if (rc != 0)
			return rc;
		if (before != after)
			atomic_fetch_add(&migrations, 1);
	}
	return 0;
}

static int migrate_main(void *arg)
{
	struct rook_task *h[MIG_TASKS], *ht = NULL;
	int me = rook__worker_index();

	T_CHECK_EQ(rook_spawn(&ht, hog, NULL), 0);
	/* No yield: the hog can only start on the other worker. */
	while (!atomic_load_explicit(&hog_started, memory_order_acquire))
		;
	T_CHECK(atomic_load(&hog_index) != me);
	for (uintptr_t i = 0; i < MIG_TASKS; i++)
		T_CHECK_EQ(rook_spawn(&h[i], migrate_loop, (void *)i), 0);
	while (atomic_load_explicit(&loopers_started, memory_order_acquire) < MIG_TASKS)
		T_CHECK_EQ(rook_yield(), 0);
	atomic_store_explicit(&hog_release, 1, memory_order_release);
	T_CHECK_EQ(rook_join(ht, NULL), 0);
	for (int i = 0; i < MIG_TASKS; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(h[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	return 0;
}

Test(steal, tasks_resume_on_other_worker_when_yielding_under_load, .timeout = 60)
{
	int fds = fd_count();

	cr_assert_eq(run_with(MIG_WORKERS, ROOK_NO_PIN, migrate_main, NULL), 0);
	cr_assert_eq(atomic_load(&bad_indices), 0, "worker index outside [0, %d)", MIG_WORKERS);
	cr_assert_geq(atomic_load(&migrations), 1, "no task ever changed worker across a yield");
	cr_log_info("migrations: %ld", atomic_load(&migrations));
	expect_clean_shutdown(fds);
}

/* ---- no starvation with one worker -------------------------------------- */

#define STARVE_LIMIT 1000000L

static _Atomic int b_ran;
static long starve_iterations;

static int set_b(void *arg)
{
	atomic_store_explicit(&b_ran, 1, memory_order_release);
	return 0;
}

static int short_task(void *arg)
{
	return 0;
}

static int starve_main(void *arg)
{
	struct rook_task *b = NULL;
	long i;

	T_CHECK_EQ(rook_spawn(&b, set_b, NULL), 0);
	for (i = 0; i < STARVE_LIMIT && !atomic_load_explicit(&b_ran, memory_order_acquire); i++) {
		T_CHECK_EQ(rook_spawn(NULL, short_task, NULL), 0);
		T_CHECK_EQ(rook_yield(), 0);
	}
	starve_iterations = i;
	T_CHECK_EQ(rook_join(b, NULL), 0);
	return 0;
}

/* B waits at the top of the deque while the spawner forks and joins one
 * child at a time: only the deque's oldest-task rule runs it. */
static int join_stream_main(void *arg)
{
	struct rook_task *b = NULL;
	long i;

	T_CHECK_EQ(rook_spawn(&b, set_b, NULL), 0);
	for (i = 0; i < STARVE_LIMIT && !atomic_load_explicit(&b_ran, memory_order_acquire); i++) {
		struct rook_task *c = NULL;
		T_CHECK_EQ(rook_spawn(&c, short_task, NULL), 0);
		T_CHECK_EQ(rook_join(c, NULL), 0);
	}
	starve_iterations = i;
	T_CHECK_EQ(rook_join(b, NULL), 0);
	return 0;
}

/* Run main on one worker: task B, queued first, must run before main
 * gives up after STARVE_LIMIT rounds of its loop (counted in unit). */
static void expect_b_runs(rook_fn main, const char *unit)
{
	int fds = fd_count();

	atomic_store(&b_ran, 0);
	cr_assert_eq(run_with(1, 0, main, NULL), 0);
	cr_assert_eq(atomic_load(&b_ran), 1, "task B never ran");
	cr_assert_lt(starve_iterations, STARVE_LIMIT, "B starved for %ld %s", starve_iterations,
		     unit);
	cr_log_info("B ran after %ld %s", starve_iterations, unit);
	expect_clean_shutdown(fds);
}

Test(steal, oldest_task_runs_behind_a_fork_join_stream_on_one_worker, .timeout = 60)
{
	expect_b_runs(join_stream_main, "iterations");
}

Test(steal, older_task_runs_when_spawner_keeps_spawning_on_one_worker, .timeout = 60)
{
	expect_b_runs(starve_main, "iterations");
}

/* A ping-pong pair wakes each other through the LIFO slot for ever; a
 * task queued before them must still run (the LIFO cap makes the woken
 * task stealable, and the oldest-task rule takes the deque's top). */
struct pair {
	struct rook_queue *p_in, *p_out;
};

static int ponger(void *arg)
{
	struct pair *p = arg;
	long v;
	while (rook_queue_get(p->p_in, &v) == 0 && v >= 0)
		if (rook_queue_put(p->p_out, &v) != 0)
			break;
	return 0;
}

static int ping_pong_main(void *arg)
{
	struct rook_queue *a, *b;
	struct rook_task *bt = NULL, *pt = NULL;
	long i, v, stop = -1;

	T_CHECK_EQ(rook_queue_create(&a, sizeof(long), 1), 0);
	T_CHECK_EQ(rook_queue_create(&b, sizeof(long), 1), 0);
	struct pair p = {a, b};
	T_CHECK_EQ(rook_spawn(&bt, set_b, NULL), 0);
	T_CHECK_EQ(rook_spawn(&pt, ponger, &p), 0);
	for (i = 0; i < STARVE_LIMIT && !atomic_load_explicit(&b_ran, memory_order_acquire); i++) {
		T_CHECK_EQ(rook_queue_put(a, &i), 0);
		T_CHECK_EQ(rook_queue_get(b, &v), 0);
		T_CHECK_EQ(v, i);
	}
	starve_iterations = i;
	T_CHECK_EQ(rook_queue_put(a, &stop), 0);
	T_CHECK_EQ(rook_join(pt, NULL), 0);
	T_CHECK_EQ(rook_join(bt, NULL), 0);
	rook_queue_destroy(a);
	rook_queue_destroy(b);
	return 0;
}

Test(steal, older_task_runs_behind_a_ping_pong_pair_on_one_worker, .timeout = 60)
{
	expect_b_runs(ping_pong_main, "round trips");
}

/* ---- stealing under load ------------------------------------------------ */

#define PARENTS  1000
#define CHILDREN 100

static _Atomic long children_ran;

static int child(void *arg)
{
	atomic_fetch_add_explicit(&children_ran, 1, memory_order_relaxed);
	return -(int)((uintptr_t)arg % 3);
}

static int parent(void *arg)
{
	struct rook_task *kids[CHILDREN];
	long sum = 0;

	for (uintptr_t i = 0; i < CHILDREN; i++)
		T_CHECK_EQ(rook_spawn(&kids[i], child, (void *)i), 0);
	for (int i = 0; i < CHILDREN; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(kids[i], &st), 0);
		sum += st;
	}
	/* -(0 + 1 + 2) per three children: 33 full cycles plus child 99 (0). */
	T_CHECK_EQ(sum, -99);
	return 0;
}

static int fanout_main(void *arg)
{
	long n = *(long *)arg;
	struct rook_task **h = malloc((size_t)n * sizeof(*h));

	T_CHECK(h != NULL);
	if (!h)
		return -ENOMEM;
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&h[i], parent, NULL), 0);
	for (long i = 0; i < n; i++) {
		int st = 1;
		T_CHECK_EQ(rook_join(h[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	free(h);
	return 0;
}

Test(steal, counts_every_child_when_1000_parents_spawn_100_each_stress, .timeout = 120)
{
	int fds = fd_count();
	long n = scaled(PARENTS, 5);

	rook__stats_reset_peaks();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fanout_main, &n), 0);
	cr_assert_eq(atomic_load(&children_ran), n * CHILDREN);
	expect_clean_shutdown(fds);
}

/* ---- lost wake-ups ------------------------------------------------------ */

struct wake {
	struct rook_rt *w_rt;
	long w_rounds;
	_Atomic int w_stop;
	_Atomic long w_tiny_ran;
	_Atomic long w_injected;   /* tasks the injector spawned */
	_Atomic long w_inject_bad; /* failed rt spawns or joins */
};

static int tiny(void *arg)
{
	struct wake *w = arg;

	atomic_fetch_add_explicit(&w->w_tiny_ran, 1, memory_order_relaxed);
	return 0;
}

static int rounds_main(void *arg)
{
	struct wake *w = arg;

	for (long i = 0; i < w->w_rounds; i++) {
		struct rook_task *t = NULL;
		int st = 1;
		T_CHECK_EQ(rook_spawn(&t, tiny, w), 0);
		T_CHECK_EQ(rook_join(t, &st), 0);
		T_CHECK_EQ(st, 0);
	}
	return -EXDEV;
}

static void *injector(void *arg)
{
	struct wake *w = arg;

	for (long i = 0; !atomic_load_explicit(&w->w_stop, memory_order_acquire); i++) {
		struct rook_task *t = NULL;
		int st = 1;
		/* Alternate detached spawns with spawns this thread joins. */
		if (i % 2 == 0) {
			if (rook_rt_spawn(w->w_rt, NULL, tiny, w) != 0)
				atomic_fetch_add(&w->w_inject_bad, 1);
		} else if (rook_rt_spawn(w->w_rt, &t, tiny, w) != 0 || rook_join(t, &st) != 0 ||
			   st != 0) {
			atomic_fetch_add(&w->w_inject_bad, 1);
		}
		atomic_fetch_add(&w->w_injected, 1);
	}
	return NULL;
}

Test(steal, joins_never_hang_when_plain_thread_injects_tasks_stress, .timeout = 60)
{
	int fds = fd_count();
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	static struct wake w;
	struct rook_task *m = NULL;
	pthread_t th;
	int st = 1;

	w.w_rounds = scaled(20000, 4);
	cr_assert_eq(rook_rt_start(&w.w_rt, &cfg), 0);
	cr_assert_eq(pthread_create(&th, NULL, injector, &w), 0);
	cr_assert_eq(rook_rt_spawn(w.w_rt, &m, rounds_main, &w), 0);
	cr_assert_eq(rook_join(m, &st), 0);
	cr_assert_eq(st, -EXDEV);
	atomic_store_explicit(&w.w_stop, 1, memory_order_release);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(atomic_load(&w.w_inject_bad), 0);
	/* Every spawned task runs, detached ones included (hangs if one is lost). */
	long want = w.w_rounds + atomic_load(&w.w_injected);
	while (atomic_load_explicit(&w.w_tiny_ran, memory_order_relaxed) < want)
		sched_yield();
	cr_assert_eq(rook_rt_stop(w.w_rt), 0);
	cr_assert_eq(atomic_load(&w.w_tiny_ran), want);
	cr_log_info("injected %ld", atomic_load(&w.w_injected));
	expect_clean_shutdown(fds);
}
