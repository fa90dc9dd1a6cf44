/* SPDX-License-Identifier: MIT */
/*
 * IO behind a task that keeps its worker busy (issue 11, item 2). With two
 * workers, a reader queues rook_read on a pipe and a task spawned just
 * before takes the reader's worker and spins without yielding until the
 * read has returned (or a gross bound passes). The other worker is idle:
 * it must submit the read, reap its completion and run the reader while
 * the spinner still holds the first worker. The same with a deadline on
 * the read and no data: the deadline's cancel must reach the stuck ring.
 * A round counts only where the spinner really ran on the reader's worker
 * (a thief may take it first); enough rounds must.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include <rook.h>

#include "io/testing.h"
#include "sched/worker.h"
#include "tests/helpers.h"

#define ROUNDS   20
#define SAME_MIN 3
#define GIVE_UP  ((uint64_t)3 * ROOK_SEC) /* the spinner's gross bound */
#define DEADLINE (50 * ROOK_MSEC)

struct round {
	int r_pipe[2];
	bool r_deadline;
	struct rook__worker *r_reader_w, *r_spin_w;
	_Atomic int r_spinning;
	_Atomic int r_read_done;
	ssize_t r_got;
};

/* Holds its worker until the read returned; 0 if it did meanwhile. */
static int spinner(void *arg)
{
	struct round *r = arg;
	r->r_spin_w = rook__worker_self();
	atomic_store(&r->r_spinning, 1);
	uint64_t end = rook_now() + GIVE_UP;
	while (!atomic_load(&r->r_read_done) && rook_now() < end)
		;
	return atomic_load(&r->r_read_done) ? 0 : -ETIMEDOUT;
}

static int reader(void *arg)
{
	struct round *r = arg;
	struct rook_task *s;
	T_CHECK_EQ(rook_spawn(&s, spinner, r), 0); /* our worker's next task */
	r->r_reader_w = rook__worker_self();
	char b = 0;
	if (r->r_deadline)
		T_CHECK_EQ(rook_deadline_push(rook_now() + DEADLINE), 0);
	r->r_got = rook_read(r->r_pipe[0], &b, 1, -1);
	if (r->r_deadline)
		(void)rook_deadline_pop();
	atomic_store(&r->r_read_done, 1);
	int st = -1;
	T_CHECK_EQ(rook_join(s, &st), 0);
	return st;
}

/* A plain thread: one byte once the spinner holds the worker. */
static void *writer(void *arg)
{
	struct round *r = arg;
	while (!atomic_load(&r->r_spinning))
		sched_yield();
	if (write(r->r_pipe[1], "x", 1) != 1)
		return (void *)1;
	return NULL;
}

static int rounds_main(void *arg)
{
	bool deadline = *(bool *)arg;
	int same = 0;
	for (int i = 0; i < ROUNDS && same < SAME_MIN * 2; i++) {
		struct round r = {.r_deadline = deadline};
		T_CHECK_EQ(pipe(r.r_pipe), 0);
		pthread_t th;
		if (!deadline)
			T_CHECK_EQ(pthread_create(&th, NULL, writer, &r), 0);
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, reader, &r), 0);
		int st = -1;
		T_CHECK_EQ(rook_join(t, &st), 0);
		if (!deadline)
			T_CHECK_EQ(pthread_join(th, NULL), 0);
		if (r.r_spin_w == r.r_reader_w) {
			same++;
			/* The read returned while the spinner held its worker. */
			T_CHECK_EQ(st, 0);
			T_CHECK_EQ(r.r_got, deadline ? -ETIMEDOUT : 1);
		}
		close(r.r_pipe[0]);
		close(r.r_pipe[1]);
	}
	T_CHECK(same >= SAME_MIN);
	return 0;
}

static void run_rounds(bool deadline)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, rounds_main, &deadline), 0);
	expect_clean_shutdown(fds);
}

Test(io_stuck, a_read_completes_while_its_worker_runs_a_long_task, .timeout = 120)
{
	unsigned long before = rook__io_rescues();
	run_rounds(false);
	cr_assert_gt(rook__io_rescues(), before);
}

Test(io_stuck, a_read_deadline_fires_while_its_worker_runs_a_long_task, .timeout = 120)
{
	run_rounds(true);
}
