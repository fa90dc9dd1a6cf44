/* SPDX-License-Identifier: MIT */
/*
 * Runs a program the build made (a demo, rook-perf) as a child process and
 * captures its stdout, for tests/demo and tests/perf. Programs are found
 * relative to the test executable: tests are built in the build folder's
 * root, so <dir of /proc/self/exe>/REL is <builddir>/REL. stderr is passed
 * through (ctest shows it on failure). A child still running at its
 * deadline is killed (SIGKILL) and reported as timed out.
 */
#ifndef ROOK_TESTS_DEMO_CHILD_H
#define ROOK_TESTS_DEMO_CHILD_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct child {
	char c_out[65536]; /* stdout, NUL-terminated (truncated beyond) */
	size_t c_len;
	int c_status; /* exit status; 128 + signal if killed by one */
	bool c_timed_out;
	double c_wall_s;
};

static inline double child_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* <builddir>/rel into path; false if it is not an executable file. */
static inline bool child_find(const char *rel, char *path, size_t cap)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return false;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (slash)
		*slash = '\0';
	if ((size_t)snprintf(path, cap, "%s/%s", self, rel) >= cap)
		return false;
	return access(path, X_OK) == 0;
}

/* True under a sanitizer build (the ctest harness sets ROOK_SANITIZE). */
static inline bool child_sanitized(void)
{
	const char *s = getenv("ROOK_SANITIZE");
	return s && *s;
}

/* Run argv (argv[0] a path) for at most timeout_s; fills *c. -errno if the
 * child could not be started. */
static inline int child_run(char *const argv[], double timeout_s, struct child *c)
{
	int fds[2];
	memset(c, 0, sizeof(*c));
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	double t0 = child_now_s(), deadline = t0 + timeout_s;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fds[0]);
		close(fds[1]);
		return -e;
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		double left = deadline - child_now_s();
		if (left <= 0) {
			c->c_timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		int r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		char buf[4096];
		ssize_t n = read(fds[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		size_t room = sizeof(c->c_out) - 1 - c->c_len,
		       take = (size_t)n < room ? (size_t)n : room;
		memcpy(c->c_out + c->c_len, buf, take);
		c->c_len += take;
	}
	close(fds[0]);
	c->c_out[c->c_len] = '\0';
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	c->c_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	c->c_wall_s = child_now_s() - t0;
	return 0;
}

/* Index of the first occurrence of s in out, or -1. */
static inline long child_find_str(const struct child *c, const char *s)
{
	const char *p = strstr(c->c_out, s);
	return p ? (long)(p - c->c_out) : -1;
}

/* Occurrences of s in out. */
static inline int child_count(const struct child *c, const char *s)
{
	int n = 0;
	for (const char *p = c->c_out; (p = strstr(p, s)); p += strlen(s))
		n++;
	return n;
}

#endif
