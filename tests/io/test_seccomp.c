/* SPDX-License-Identifier: MIT */
/*
 * Where a seccomp filter denies io_uring (Docker's and containerd's default
 * profiles do), rook_run picks the epoll backend by itself, says so in one
 * line on stderr, and IO works. Each case runs in a forked child, which
 * installs the filter before its first rook call (the probe's answer is
 * kept per process).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

/* Deny one syscall with EPERM, allow everything else. */
static int deny(long nr)
{
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
		return -errno;
	return 0;
}

static int echo_peer(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[64];
	int n = rook_recv(fd, buf, sizeof(buf), 0);
	if (n <= 0)
		return 10;
	return rook_send(fd, buf, (size_t)n, 0) == n ? 0 : 11;
}

/* Exit codes name the first check that failed (the parent prints it). */
static int io_main(void *arg)
{
	const char *b = rook_io_backend();
	if (!b || strcmp(b, "epoll") != 0)
		return 20;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 21;
	struct rook_task *t;
	if (rook_spawn(&t, echo_peer, (void *)(intptr_t)sv[1]) != 0)
		return 22;
	if (rook_send(sv[0], "ping", 4, 0) != 4)
		return 23;
	char buf[8];
	if (rook_recv(sv[0], buf, sizeof(buf), 0) != 4 || memcmp(buf, "ping", 4) != 0)
		return 24;
	int st = -1;
	if (rook_join(t, &st) != 0 || st != 0)
		return 25;
	if (rook_close(sv[0]) != 0 || rook_close(sv[1]) != 0)
		return 26;
	return 0;
}

struct denied {
	long nr;
	const char *env;
};

/* The child: deny nr, run io_main on 2 workers. */
static void denied_child(void *arg)
{
	const struct denied *dn = arg;
	if (dn->env)
		setenv("ROOK_IO", dn->env, 1);
	else
		unsetenv("ROOK_IO");
	int d = deny(dn->nr);
	if (d != 0)
		_exit(under_qemu() && (d == -ENOSYS || d == -EINVAL) ? 50 : 30);
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	int rc = rook_run(&cfg, io_main, NULL);
	_exit(rc == 0 ? 0 : rc == -ENOSYS ? 40 : rc > 0 ? rc : 31);
}

/* In a child: deny nr, run io_main on 2 workers; its stderr checked. */
static void run_denied(long nr, const char *env)
{
	struct denied dn = {nr, env};
	int status = 0;
	char *msg = child_stderr(denied_child, &dn, &status);
	cr_assert(WIFEXITED(status), "child died: status %d", status);
	if (WEXITSTATUS(status) == 50)
		cr_skip_test("qemu-user does not install seccomp filters (ENOSYS/EINVAL)");
	if (env && strcmp(env, "uring") == 0) {
		cr_expect_eq(WEXITSTATUS(status), 40, "ROOK_IO=uring must fail -ENOSYS (%d): %s",
			     WEXITSTATUS(status), msg);
		cr_expect(strstr(msg, "rook: io_uring is not available") != NULL, "stderr: %s",
			  msg);
		free(msg);
		return;
	}
	cr_expect_eq(WEXITSTATUS(status), 0, "child check %d failed; stderr: %s",
		     WEXITSTATUS(status), msg);
	cr_expect(strstr(msg, "rook: io_uring is not available (") != NULL, "stderr: %s", msg);
	cr_expect(strstr(msg, "using epoll") != NULL, "stderr: %s", msg);
	cr_expect_eq(strchr(msg, '\n'), msg + strlen(msg) - 1, "not one line: %s", msg);
	free(msg);
}

Test(seccomp, io_uring_setup_denied_runs_on_epoll, .timeout = 60)
{
	run_denied(SYS_io_uring_setup, NULL);
}

Test(seccomp, io_uring_enter_denied_is_caught_by_the_probe, .timeout = 60)
{
	run_denied(SYS_io_uring_enter, "auto");
}

Test(seccomp, rook_io_uring_where_denied_fails_with_enosys, .timeout = 60)
{
	run_denied(SYS_io_uring_setup, "uring");
}
