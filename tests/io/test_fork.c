/* SPDX-License-Identifier: MIT */
/*
 * fork: a runtime does not survive fork, but a new one can be started in
 * the child, and the process-wide state in io/ (the blocking pool) starts
 * afresh there: the parent's pool threads are gone in the child, and a
 * child whose task calls rook_blocking (or resolves a name) must not wait
 * for them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "io/blocking.h"
#include "sched/testing.h"
#include "tests/helpers.h"

static int add_one(void *arg)
{
	return *(int *)arg + 1;
}

static int parent_main(void *arg)
{
	(void)arg;
	int x = 41;
	T_CHECK_EQ(rook_blocking(add_one, &x), 42);
	return 0;
}

/* Exit codes of the child: 0 ok, else the failed step. */
static int child_main(void *arg)
{
	(void)arg;
	int x = 1;
	if (rook_blocking(add_one, &x) != 2)
		return 1;
	/* "localhost" is not numeric: resolved on the blocking pool. */
	int lfd = rook_tcp_listen("localhost", 0, 4);
	if (lfd < 0)
		return 2;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(lfd, (struct sockaddr *)&ss, &len) < 0)
		return 3;
	uint16_t port = ntohs(((struct sockaddr_in *)&ss)->sin_port); /* same spot in in6 */
	int fd = rook_tcp_connect("localhost", port);
	if (fd < 0)
		return 4;
	int a = rook_accept(lfd, NULL, NULL);
	if (a < 0)
		return 5;
	rook_close(a);
	rook_close(fd);
	rook_close(lfd);
	return 0;
}

/* Waits up to limit_ms for pid; kills it on a hang. */
static int wait_child(pid_t pid, long limit_ms)
{
	int status;
	for (long waited = 0; waited < limit_ms; waited += 10) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

Test(fork, child_runs_a_runtime_with_blocking_and_name_lookup, .timeout = 120)
{
	if (under_qemu())
		cr_skip_test("qemu-user (7.2) aborts in its own code when the child of a "
			     "multi-threaded fork starts threads (cpu_exec: cpu == current_cpu)");
	const char *s = getenv("ROOK_SANITIZE");
	if (s && strstr(s, "thread"))
		cr_skip_test("ThreadSanitizer does not support threads in a child of a "
			     "multi-threaded fork (die_after_fork)");
	cr_assert_eq(run_with(2, ROOK_NO_PIN, parent_main, NULL), 0);
	t_no_failures();
	/* The pool's thread is idle (it waits 10 s for work) when we fork. */
	cr_assert_geq(rook__blocking_threads(), 1);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int r = run_with(2, ROOK_NO_PIN, child_main, NULL);
		_exit(r == 0 ? 0 : r > 0 ? r : 100);
	}
	int status = wait_child(pid, sanitized() ? 60000 : 20000);
	cr_assert_neq(status, -1, "the child hung (killed)");
	cr_assert(WIFEXITED(status), "the child died (status %#x)", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the child failed at step %d", WEXITSTATUS(status));
	/* The parent's pool still works. */
	cr_assert_eq(run_with(1, ROOK_NO_PIN, parent_main, NULL), 0);
	t_no_failures();
}

/* A fork while another thread holds a process-wide spinlock (here the task
 * pool's): the child must get it free, or its first spawn spins for ever. */
static _Atomic int holding;

static void *hold_pool(void *arg)
{
	(void)arg;
	rook__task_pool_hold(true);
	atomic_store(&holding, 1);
	struct timespec ts = {0, 50 * 1000 * 1000}; /* the fork comes meanwhile */
	nanosleep(&ts, NULL);
	rook__task_pool_hold(false);
	return NULL;
}

static int spawn_one(void *arg)
{
	(void)arg;
	struct rook_task *t;
	int x = 1, st = 0;
	if (rook_spawn(&t, add_one, &x) != 0 || rook_join(t, &st) != 0)
		return 1;
	return st == 2 ? 0 : 2;
}

Test(fork, child_gets_the_task_pool_lock_free_when_forked_while_it_is_held, .timeout = 120)
{
	if (under_qemu())
		cr_skip_test("qemu-user (7.2) aborts in its own code when the child of a "
			     "multi-threaded fork starts threads (cpu_exec: cpu == current_cpu)");
	const char *s = getenv("ROOK_SANITIZE");
	if (s && strstr(s, "thread"))
		cr_skip_test("ThreadSanitizer does not support threads in a child of a "
			     "multi-threaded fork (die_after_fork)");
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, hold_pool, NULL), 0);
	while (!atomic_load(&holding))
		sched_yield();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int r = run_with(1, ROOK_NO_PIN, spawn_one, NULL);
		_exit(r == 0 ? 0 : r > 0 ? r : 100);
	}
	pthread_join(th, NULL);
	int status = wait_child(pid, sanitized() ? 60000 : 20000);
	cr_assert_neq(status, -1, "the child hung (killed)");
	cr_assert(WIFEXITED(status), "the child died (status %#x)", status);
	cr_assert_eq(WEXITSTATUS(status), 0, "the child failed at step %d", WEXITSTATUS(status));
	cr_assert_eq(run_with(1, ROOK_NO_PIN, spawn_one, NULL), 0);
}
