/* SPDX-License-Identifier: MIT */
/*
 * Runner for the TSan stand-in of Criterion (see criterion/criterion.h):
 * runs every registered test in a forked child, in registration order,
 * enforces .timeout and .signal, and prints one line per test and a
 * closing "N passed, N failed" line. Arguments Criterion would take
 * (--jobs, --timeout) are accepted and ignored but for --timeout, which
 * sets the default timeout.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

/* 1 pass, 0 fail, -1 skipped. */
static int run_one(struct rook_shim_test *t, double default_timeout)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 0;
	}
	if (pid == 0) {
		double to = t->opts.timeout > 0 ? t->opts.timeout : default_timeout;
		if (to > 0)
			alarm((unsigned)(to + 0.999));
		t->fn();
		fflush(NULL);
		_exit(child_failures ? 1 : t->opts.exit_code);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
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
