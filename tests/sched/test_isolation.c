/* SPDX-License-Identifier: MIT */
/*
 * Stack isolation under churn: a stack belongs to one task at a time. Many
 * tasks on both workers fill a frame with a pattern of their own, suspend
 * in every way a task can (yield, join a child, sleep, wait on a queue
 * fed from the other worker) and check the pattern after each resumption,
 * while tasks end and their stacks go back to the caches and the pool and
 * out again. A stack handed to two tasks at once, or a task resumed on two
 * workers at once, shows up as a broken pattern or a wrong sum.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>

#include <rook.h>

#include "tests/helpers.h"

enum { WORDS = 48, STEPS = 12, DEPTH = 3 };

static _Atomic long broken;
static _Atomic long finished;

struct job {
	uint64_t j_seed;
	int j_depth;
	struct rook_queue *j_q;
	uint64_t j_sum; /* written by the job, read by whoever joined it */
};

static int job(void *arg);

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void check(volatile uint64_t *buf, uint64_t tag)
{
	for (int i = 0; i < WORDS; i++)
		if (buf[i] != (tag ^ (uint64_t)i * 0x9e3779b97f4a7c15u))
			atomic_fetch_add(&broken, 1);
}

static int job(void *arg)
{
	struct job *j = arg;
	volatile uint64_t buf[WORDS];
	uint64_t tag = j->j_seed * 0xbf58476d1ce4e5b9u + 1, s = j->j_seed | 1, sum = 0;

	for (int i = 0; i < WORDS; i++)
		buf[i] = tag ^ (uint64_t)i * 0x9e3779b97f4a7c15u;
	for (int step = 0; step < STEPS; step++) {
		uint64_t v = 0;
		switch (next_rand(&s) % 4) {
		case 0:
			rook_yield();
			break;
		case 1:
			if (j->j_depth < DEPTH) {
				struct job c = {.j_seed = next_rand(&s),
						.j_depth = j->j_depth + 1,
						.j_q = j->j_q};
				struct rook_task *t;
				int st = -1;
				if (rook_spawn(&t, job, &c) == 0 && rook_join(t, &st) == 0 &&
				    st == 0)
					sum += c.j_sum; /* the child's frame was its own */
				else
					atomic_fetch_add(&broken, 1);
			}
			break;
		case 2:
			rook_sleep(1000 * (next_rand(&s) % 50));
			break;
		default:
			/* Pass a value through the queue: ours out, someone's in. */
			v = tag;
			if (rook_queue_put(j->j_q, &v) != 0 || rook_queue_get(j->j_q, &v) != 0)
				atomic_fetch_add(&broken, 1);
			break;
		}
		check(buf, tag);
		sum += step;
	}
	j->j_sum = sum;
	atomic_fetch_add(&finished, 1);
	return 0;
}

static int churn_main(void *arg)
{
	(void)arg;
	enum { WAVE = 256 };
	static struct job jobs[WAVE];
	struct rook_task *t[WAVE];
	struct rook_queue *q;
	int waves = sanitized() ? 4 : 20;

	T_CHECK_EQ(rook_queue_create(&q, sizeof(uint64_t), 0), 0);
	for (int w = 0; w < waves; w++) {
		for (int i = 0; i < WAVE; i++) {
			jobs[i] = (struct job){.j_seed = (uint64_t)(w * WAVE + i) + 1, .j_q = q};
			T_CHECK_EQ(rook_spawn(&t[i], job, &jobs[i]), 0);
		}
		for (int i = 0; i < WAVE; i++) {
			int st = -1;
			T_CHECK_EQ(rook_join(t[i], &st), 0);
			T_CHECK_EQ(st, 0);
		}
	}
	rook_queue_destroy(q);
	return 0;
}

Test(isolation, stacks_stay_private_while_tasks_churn_on_both_workers, .timeout = 120)
{
	cr_assert_eq(run_with(2, ROOK_NO_PIN, churn_main, NULL), 0);
	cr_assert_eq(atomic_load(&broken), 0, "%ld frames or results were not a task's own",
		     atomic_load(&broken));
	cr_assert(atomic_load(&finished) > 0);
}
