/* SPDX-License-Identifier: MIT */
/*
 * Runner for the TSan stand-in of Criterion (see criterion/criterion.h):
 * runs every registered test in a forked child, in registration order,
 * enforces .timeout (printing the child's stacks with gdb first) and
 * .signal, and prints one line per test and a closing "N passed, N
 * failed" line. Arguments Criterion would take
 * (--jobs, --timeout) are accepted and ignored but for --timeout, which
 * sets the default timeout.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define SKIP_STATUS 77

static struct rook_shim_test *head, **tail = &head;
static int child_failures;

void rook_shim_register(struct rook_shim_test *t)
{
	*tail = t;
	tail = &t->next;
}

void rook_shim_check(bool ok, bool fatal, const char *file, int line, const char *expr,
		     const char *fmt, ...)
{
	if (ok)
		return;
	fprintf(stderr, "[----] %s:%d: Assertion Failed: %s", file, line, expr);
	if (fmt[0]) {
		va_list ap;
		va_start(ap, fmt);
		fputs(": ", stderr);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	child_failures++;
	if (fatal)
		_exit(1);
}

void rook_shim_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("[----] ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void rook_shim_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("[SKIP] ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	fflush(NULL);
	_exit(SKIP_STATUS);
}

/* At a child's timeout, its threads' stacks and rook's tasks (gdb and
 * tools/rook-gdb.py, where gdb is installed and not under qemu-user): a
 * hang in CI then says where each thread and task waits. */
static void stacks_of(pid_t pid)
{
	if (getenv("ROOK_QEMU") || access("/usr/bin/gdb", X_OK) != 0)
		return;
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "timeout 60 /usr/bin/gdb -p %d -batch -nx -ex 'set pagination off' "
		 "-ex 'thread apply all bt' -ex 'source %s/tools/rook-gdb.py' -ex 'rook tasks' "
		 "</dev/null 1>&2 2>/dev/null",
		 (int)pid, ROOK_SOURCE_DIR);
	fprintf(stderr, "[----] timed out: the child's threads and tasks (gdb):\n");
	fflush(stderr);
	if (system(cmd) != 0)
		fprintf(stderr, "[----] (gdb could not attach or failed)\n");
}

/* The child's wait status, or -1 with *timed_out once to seconds passed
 * (0: no bound). SIGCHLD is blocked around the fork, so it is waited for
 * as an event, not polled. */
static int wait_child(pid_t pid, double to, bool *timed_out)
{
	int st;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	for (;;) {
		pid_t r = waitpid(pid, &st, to > 0 ? WNOHANG : 0);
		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return -1;
		if (to <= 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double left = to - ((double)(now.tv_sec - t0.tv_sec) +
				    (double)(now.tv_nsec - t0.tv_nsec) / 1e9);
		if (left <= 0) {
			*timed_out = true;
			return -1;
		}
		struct timespec ts = {.tv_sec = (time_t)left,
				      .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
		(void)sigtimedwait(&chld, NULL, &ts);
	}
}

/* 1 pass, 0 fail, -1 skipped. */
static int run_one(struct rook_shim_test *t, double default_timeout)
{
	fflush(NULL);
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		return 0;
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		t->fn();
		fflush(NULL);
		_exit(child_failures ? 1 : t->opts.exit_code);
	}
	double to = t->opts.timeout > 0 ? t->opts.timeout : default_timeout;
	bool timed_out = false;
	int st = wait_child(pid, to, &timed_out);
	if (timed_out) {
		stacks_of(pid);
		kill(pid, SIGALRM); /* reported as a timeout below */
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (WIFEXITED(st) && WEXITSTATUS(st) == SKIP_STATUS)
		return -1;
	if (t->opts.signal)
		return WIFSIGNALED(st) && WTERMSIG(st) == t->opts.signal;
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "[----] %s::%s: %s\n", t->suite, t->name,
			WTERMSIG(st) == SIGALRM ? "Timed out" : strsignal(WTERMSIG(st)));
		return 0;
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == t->opts.exit_code;
}

int main(int argc, char **argv)
{
	double default_timeout = 0;
	const char *filter = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			default_timeout = atof(argv[++i]);
		else if (strncmp(argv[i], "--filter=", 9) == 0)
			filter = argv[i] + 9;
	}
	int pass = 0, fail = 0, skip = 0;
	for (struct rook_shim_test *t = head; t; t = t->next) {
		if (t->opts.disabled)
			continue;
		if (filter && !strstr(t->name, filter))
			continue;
		int r = run_one(t, default_timeout);
		fprintf(stderr, "[%s] %s::%s\n",
			r > 0   ? "PASS"
			: r < 0 ? "SKIP"
				: "FAIL",
			t->suite, t->name);
		if (r > 0)
			pass++;
		else if (r < 0)
			skip++;
		else
			fail++;
	}
	printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
	return fail ? 1 : 0;
}
