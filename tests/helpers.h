/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the sched tests. Criterion's cr_assert may only run on
 * the test's own thread (it longjmps), so task bodies record failures with
 * T_CHECK / T_CHECK_EQ and the test asserts t_no_failures() after the runtime
 * has stopped. expect_clean_shutdown checks that no task, stack or fd leaked.
 */
#ifndef ROOK_TESTS_SCHED_HELPERS_H
#define ROOK_TESTS_SCHED_HELPERS_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rook.h>

#include "sched/testing.h"

/* True under a sanitizer build (the ctest harness sets ROOK_SANITIZE). */
static inline int sanitized(void)
{
	const char *s = getenv("ROOK_SANITIZE");
	return s && *s;
}

/* True when the suite runs on the epoll backend (tools/test.sh's second
 * pass sets ROOK_IO=epoll). */
static inline int on_epoll(void)
{
	const char *s = getenv("ROOK_IO");
	return s && strcmp(s, "epoll") == 0;
}

/* True under qemu-user (tools/test.sh --aarch64 sets ROOK_QEMU=1). Its
 * linux-user layer differs from a kernel in a few documented ways (no
 * io_uring, no seccomp, vfork run as fork, whole-range checks of syscall
 * buffers); only the cases that meet one skip, and each says which. */
static inline int under_qemu(void)
{
	const char *s = getenv("ROOK_QEMU");
	return s && *s && strcmp(s, "0") != 0;
}

/* True where io_uring does not exist at all (ENOSYS from io_uring_setup:
 * qemu-user, or a kernel built without it); a test of io_uring itself
 * skips there, since the runtime runs on epoll by itself. */
static inline int uring_missing(void)
{
	long r = syscall(__NR_io_uring_setup, 0, NULL);
	return r < 0 && errno == ENOSYS;
}

/* n natively, n / div under sanitizers (never below 1). ThreadSanitizer
 * models each task stack as a thread and dies past 8128 of them, and is
 * several times slower again, so under it counts are capped at 4000. */
static inline long scaled(long n, long div)
{
	long r = sanitized() ? n / div : n;
	const char *s = getenv("ROOK_SANITIZE");
	if (s && strstr(s, "thread") && r > 4000)
		r = 4000;
	return r > 0 ? r : 1;
}

static _Atomic int t_failures;
static char t_fail_msg[512];

static inline void t_fail(const char *file, int line, const char *what, long long a, long long b)
{
	/* Only the first failure's message is kept. */
	if (atomic_fetch_add_explicit(&t_failures, 1, memory_order_acq_rel) == 0)
		snprintf(t_fail_msg, sizeof(t_fail_msg), "%s:%d: %s (got %lld, want %lld)", file,
			 line, what, a, b);
}

#define T_CHECK(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			t_fail(__FILE__, __LINE__, #cond, 0, 1);                                   \
	} while (0)

#define T_CHECK_EQ(a, b)                                                                           \
	do {                                                                                       \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);                            \
		if (t_a_ != t_b_)                                                                  \
			t_fail(__FILE__, __LINE__, #a " == " #b, t_a_, t_b_);                      \
	} while (0)

static inline void t_no_failures(void)
{
	int n = atomic_load_explicit(&t_failures, memory_order_acquire);
	cr_assert_eq(n, 0, "%d check(s) failed inside tasks; first: %s", n, t_fail_msg);
}

static inline int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* After the runtime stopped: no live task, no stack handed out, no fd kept. */
static inline void expect_clean_shutdown(int fds_before)
{
	struct rook__stats st;
	rook__stats_get(&st);
	cr_expect_eq(st.live_tasks, 0, "live tasks after stop: %llu",
		     (unsigned long long)st.live_tasks);
	cr_expect_eq(st.stacks_in_use, 0, "stacks in use after stop: %llu",
		     (unsigned long long)st.stacks_in_use);
	cr_expect_eq(fd_count(), fds_before, "fds: %d after stop, %d before", fd_count(),
		     fds_before);
	t_no_failures();
}

/* rook_run with the given worker count and flags; then every T_CHECK made
 * inside its tasks must have held. */
static inline int run_with(unsigned workers, unsigned flags, rook_fn fn, void *arg)
{
	struct rook_config cfg = {.workers = workers, .flags = flags};
	int r = rook_run(&cfg, fn, arg);
	t_no_failures();
	return r;
}

/* run_with for a forked child, which must not report to Criterion (its
 * messages from a fork hang): 0 if rook_run returned 0 and every check
 * held, else the first failure on stderr and 91 (for _exit). */
static inline int run_in_child(unsigned workers, unsigned flags, rook_fn fn, void *arg)
{
	struct rook_config cfg = {.workers = workers, .flags = flags};
	int r = rook_run(&cfg, fn, arg);
	int n = atomic_load_explicit(&t_failures, memory_order_acquire);
	if (n)
		fprintf(stderr, "%d check(s) failed inside tasks; first: %s\n", n, t_fail_msg);
	return r == 0 && n == 0 ? 0 : 91;
}

/* fn as main at 1 and at 2 workers; nothing may be left behind. */
static inline void run_on_1_and_2(rook_fn fn)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, fn, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fn, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A sleep that outlasts any test (tasks that must be cancelled). */
#define FOREVER (60 * ROOK_SEC)

/* Runs child(arg) in a forked process whose stderr is a file, and returns
 * that stderr (malloc'd); *status gets the waitpid status. child ends
 * with _exit: its limits, environment and runtimes stay its own. */
static inline char *child_stderr(void (*child)(void *), void *arg, int *status)
{
	char path[] = "/tmp/rook-child-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(fd, STDERR_FILENO);
		child(arg);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, status, 0), pid);
	off_t len = lseek(fd, 0, SEEK_END);
	char *s = calloc(1, (size_t)len + 1);
	cr_assert(s);
	cr_assert_eq(pread(fd, s, (size_t)len, 0), len);
	close(fd);
	return s;
}

/* How many times what occurs in s. */
static inline int count_in(const char *s, const char *what)
{
	int n = 0;
	for (const char *p = s; (p = strstr(p, what)); p++)
		n++;
	return n;
}

static inline uint64_t ms_since(uint64_t t0)
{
	return (rook_now() - t0) / ROOK_MSEC;
}

/* Inside a task: yield until *f is set. */
static inline void await_flag(_Atomic int *f)
{
	while (!atomic_load_explicit(f, memory_order_acquire))
		T_CHECK_EQ(rook_yield(), 0);
}

/* Wait until task t is suspended in a blocking call (its context saved),
 * the event a test that cancels or wakes it needs; or until t ended
 * without parking (a blocking call that failed at once): the caller's
 * checks then say what t got, where waiting on would hang the test. In a
 * task it yields, on a plain thread it calls sched_yield. */
static inline void await_parked(const struct rook_task *t)
{
	while (!rook__task_parked(t) && !rook_done(t))
		if (rook_self())
			T_CHECK_EQ(rook_yield(), 0);
		else
			sched_yield();
}

/* rook_join(t) within a bound that no healthy run comes near: past it,
 * every task's state goes to stderr (a lost wake-up then shows where each
 * task waits rather than as the test's timeout), t is cancelled and
 * joined, and the result is -ETIMEDOUT. */
static inline int join_or_dump(struct rook_task *t, uint64_t bound_ns)
{
	if (rook_deadline_push(rook_now() + bound_ns) < 0)
		return rook_join(t, NULL);
	int r = rook_join(t, NULL);
	(void)rook_deadline_pop();
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "join_or_dump: no end after %llu ms; the tasks:\n",
			(unsigned long long)(bound_ns / ROOK_MSEC));
		(void)rook_dump(2);
		(void)rook_cancel(t);
		(void)rook_join(t, NULL);
	}
	return r;
}

#endif
