/* SPDX-License-Identifier: MIT */
/*
 * rook_signal_wait: every arrival delivered exactly once (10,000 self-sent
 * signals, counted), a timed-out wait consumes nothing, SIGINT with a
 * waiter does not kill the process, bad sets are -EINVAL. Each test changes
 * process-wide signal state, so it runs in a forked child and reports
 * through its exit status.
 */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

/* Runs fn in a forked child with sig (and sig2, if not 0) blocked; the
 * child's exit status. */
static int in_child2(rook_fn fn, int sig, int sig2)
{
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, sig);
		if (sig2)
			sigaddset(&s, sig2);
		if (rook_signal_block(&s))
			_exit(90);
		_exit(run_in_child(2, 0, fn, NULL));
	}
	int st = -1;
	waitpid(pid, &st, 0);
	return st;
}

static int in_child(rook_fn fn, int sig)
{
	return in_child2(fn, sig, 0);
}

static _Atomic long got;

static int waiter(void *arg)
{
	struct rook_sem *done = arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	for (;;) {
		int r = rook_signal_wait(&s);
		if (r == -ECANCELED)
			return 0;
		T_CHECK_EQ(r, SIGUSR1);
		atomic_fetch_add(&got, 1);
		T_CHECK_EQ(rook_sem_release(done), 0);
	}
}

/* One signal at a time (standard signals merge while pending), 4 waiters:
 * each of n arrivals goes to exactly one of them. */
static int exactly_once(void *arg)
{
	(void)arg;
	long n = scaled(10000, 10);
	struct rook_sem *done;
	T_CHECK_EQ(rook_sem_create(&done, 0, 0), 0);
	struct rook_task *t[4];
	for (int i = 0; i < 4; i++)
		T_CHECK_EQ(rook_spawn(&t[i], waiter, done), 0);
	for (long i = 0; i < n; i++) {
		T_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
		T_CHECK_EQ(rook_sem_acquire(done), 0);
	}
	for (int i = 0; i < 4; i++) {
		rook_cancel(t[i]);
		T_CHECK_EQ(rook_join(t[i], NULL), 0);
	}
	T_CHECK_EQ(atomic_load(&got), n);
	rook_sem_destroy(done);
	return 0;
}

Test(signal, ten_thousand_signals_each_delivered_exactly_once, .timeout = 300)
{
	int st = in_child(exactly_once, SIGUSR1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

static int timeout_keeps(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	rook_deadline_push(rook_now() + 10 * ROOK_MSEC);
	T_CHECK_EQ(rook_signal_wait(&s), -ETIMEDOUT);
	rook_deadline_pop();
	T_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
	T_CHECK_EQ(rook_signal_wait(&s), SIGUSR2);
	/* Arrived before anyone waits: kept for the next wait. */
	T_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
	rook_deadline_push(rook_now() - 1);
	T_CHECK_EQ(rook_signal_wait(&s), -ETIMEDOUT); /* expired: consumes nothing */
	rook_deadline_pop();
	T_CHECK_EQ(rook_signal_wait(&s), SIGUSR2);
	/* Bad sets. */
	sigset_t e;
	sigemptyset(&e);
	T_CHECK_EQ(rook_signal_wait(NULL), -EINVAL);
	T_CHECK_EQ(rook_signal_wait(&e), -EINVAL);
	sigaddset(&e, SIGKILL);
	T_CHECK_EQ(rook_signal_wait(&e), -EINVAL);
	T_CHECK_EQ(rook_signal_block(&e), -EINVAL);
	sigemptyset(&e);
	sigaddset(&e, SIGWINCH); /* not blocked */
	T_CHECK_EQ(rook_signal_wait(&e), -EINVAL);
	return 0;
}

Test(signal, timed_out_wait_consumes_nothing, .timeout = 60)
{
	int st = in_child(timeout_keeps, SIGUSR2);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

static int sigint_waiter(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGINT);
	T_CHECK_EQ(rook_signal_wait(&s), SIGINT);
	return 0;
}

static int sigint(void *arg)
{
	(void)arg;
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, sigint_waiter, NULL), 0);
	T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(kill(getpid(), SIGINT), 0);
	int st = -1;
	T_CHECK_EQ(rook_join(t, &st), 0);
	T_CHECK_EQ(st, 0);
	return 0;
}

Test(signal, sigint_with_a_waiter_does_not_kill, .timeout = 60)
{
	int st = in_child(sigint, SIGINT);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* A set of real-time signals alone is a set (glibc's sigisemptyset misses
 * signals 33-64, and such sets were -EINVAL), and each arrival queues. */
static int rt_only(void *arg)
{
	(void)arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 1);
	T_CHECK_EQ(rook_signal_block(&s), 0); /* again: valid */
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(kill(getpid(), SIGRTMIN + 1), 0);
	for (int i = 0; i < 3; i++)
		T_CHECK_EQ(rook_signal_wait(&s), SIGRTMIN + 1);
	return 0;
}

Test(signal, a_set_of_real_time_signals_alone_is_valid, .timeout = 60)
{
	int st = in_child(rt_only, SIGRTMIN + 1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* A waiter handed a signal as it is cancelled hands it on; when the next
 * taker is the waiter polling the signalfd, its poll must wake (it slept
 * holding the signal until its deadline). A race: many rounds. */
struct sw {
	int sig;
	int res;
};

static int sig_waiter(void *arg)
{
	struct sw *w = arg;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, w->sig);
	rook_deadline_push(rook_now() + 5 * ROOK_SEC); /* gross bound */
	w->res = rook_signal_wait(&s);
	rook_deadline_pop();
	return 0;
}

static int handed_on(void *arg)
{
	(void)arg;
	unsigned seed = 1;
	for (int round = 0; round < (int)scaled(300, 30); round++) {
		struct sw l = {SIGUSR2, 1}, x = {SIGUSR1, 1}, y = {SIGUSR1, 1};
		struct rook_task *tl, *tx, *ty;
		T_CHECK_EQ(rook_spawn(&tl, sig_waiter, &l), 0);
		await_parked(tl); /* the leader, polling */
		T_CHECK_EQ(rook_spawn(&tx, sig_waiter, &x), 0);
		await_parked(tx);
		T_CHECK_EQ(rook_spawn(&ty, sig_waiter, &y), 0);
		await_parked(ty);
		T_CHECK_EQ(kill(getpid(), SIGUSR1), 0);
		T_CHECK_EQ(kill(getpid(), SIGUSR2), 0);
		seed = seed * 1103515245u + 12345u;
		for (volatile unsigned i = (seed >> 16) % 20000; i > 0; i--)
			;
		T_CHECK_EQ(rook_cancel(tx), 0);
		T_CHECK_EQ(rook_join(tl, NULL), 0);
		T_CHECK_EQ(rook_join(tx, NULL), 0);
		T_CHECK_EQ(l.res, SIGUSR2);
		if (x.res == SIGUSR1)
			T_CHECK_EQ(rook_cancel(ty), 0); /* no second SIGUSR1 comes */
		T_CHECK_EQ(rook_join(ty, NULL), 0);
		/* Exactly one of them has it. */
		T_CHECK((x.res == SIGUSR1 && y.res == -ECANCELED) ||
			(x.res == -ECANCELED && y.res == SIGUSR1));
	}
	return 0;
}

Test(signal, a_signal_handed_on_by_a_cancelled_waiter_wakes_the_poller, .timeout = 300)
{
	int st = in_child2(handed_on, SIGUSR1, SIGUSR2);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}
