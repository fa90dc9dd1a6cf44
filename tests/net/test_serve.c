/* SPDX-License-Identifier: MIT */
/*
 * rook_serve: echo over streams through IPv4 and IPv6, graceful shutdown
 * with connections open (no fd left), a port already in use, bad options.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <rook.h>

#include "tests/helpers.h"

static _Atomic int bound;

static int echo_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	(void)arg;
	struct rook_stream *s;
	char line[128];
	ssize_t n;
	if (rook_stream_open(&s, fd, 0) < 0)
		return rook_close(fd);
	while ((n = rook_stream_readline(s, line, sizeof(line))) > 0)
		if (rook_stream_write(s, line, (size_t)n) != n || rook_stream_flush(s) < 0)
			break;
	rook_stream_close(s);
	return 0;
}

static int server_task(void *arg)
{
	unsigned flags = (unsigned)(intptr_t)arg;
	int port = 0;
	struct rook_serve_opts o = {.flags = flags, .bound_port = &port};
	int r = rook_serve(&o, echo_conn, NULL);
	(void)port;
	return r;
}

static int serve_port;

static int server_bound(void *arg)
{
	unsigned flags = (unsigned)(intptr_t)arg;
	struct rook_serve_opts o = {.flags = flags, .bound_port = &serve_port};
	atomic_store(&bound, 1);
	return rook_serve(&o, echo_conn, NULL);
}

static int main_task(void *arg)
{
	struct rook_task *srv;
	T_CHECK_EQ(rook_spawn(&srv, server_bound, arg), 0);
	while (__atomic_load_n(&serve_port, __ATOMIC_ACQUIRE) == 0)
		rook_yield();
	int open_fds[4];
	const char *hosts[] = {"127.0.0.1", "::1", "127.0.0.1", "::1"};
	for (int i = 0; i < 4; i++) {
		int fd = rook_tcp_connect(hosts[i], (uint16_t)serve_port);
		T_CHECK(fd >= 0);
		open_fds[i] = fd;
		char in[16] = {0};
		T_CHECK_EQ(rook_send(fd, "ping\n", 5, 0), 5);
		T_CHECK_EQ(rook_read_full(fd, in, 5), 5);
		T_CHECK(memcmp(in, "ping\n", 5) == 0);
	}
	/* A second server on the same port and address fails to bind. */
	struct rook_serve_opts dup = {
	    .host = "127.0.0.1", .port = (uint16_t)serve_port, .flags = ROOK_SERVE_SHARED};
	T_CHECK_EQ(rook_serve(&dup, echo_conn, NULL), -EADDRINUSE);
	/* Graceful shutdown with four connections open. */
	int st = 0;
	T_CHECK_EQ(rook_cancel(srv), 0);
	T_CHECK_EQ(rook_join(srv, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	for (int i = 0; i < 4; i++) {
		char c;
		T_CHECK_EQ(rook_recv(open_fds[i], &c, 1, 0), 0); /* the server closed it */
		T_CHECK_EQ(rook_close(open_fds[i]), 0);
	}
	struct rook_serve_opts bad = {.flags = 0x80};
	T_CHECK_EQ(rook_serve(&bad, echo_conn, NULL), -EINVAL);
	T_CHECK_EQ(rook_serve(NULL, echo_conn, NULL), -EINVAL);
	T_CHECK_EQ(rook_serve(&dup, NULL, NULL), -EINVAL);
	return 0;
}

Test(serve, echo_v4_v6_then_graceful_shutdown_per_worker)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, main_task, (void *)(intptr_t)0), 0);
	expect_clean_shutdown(fds);
	(void)server_task;
}

Test(serve, echo_v4_v6_then_graceful_shutdown_shared)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, main_task, (void *)(intptr_t)ROOK_SERVE_SHARED), 0);
	expect_clean_shutdown(fds);
}
