/* SPDX-License-Identifier: MIT */
/*
 * rook_serve: echo over streams through IPv4 and IPv6, graceful shutdown
 * with connections open (no fd left), a port already in use, bad options;
 * the same with ROOK_SERVE_DEFER, and what DEFER changes: fn runs only
 * once a connection is readable or closed, and silent connections are
 * closed at the stop without fn; a port whose old listener goes away
 * within bind's retry window is taken.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

static _Atomic int bound;
static _Atomic int conns_started;

static int echo_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	(void)arg;
	atomic_fetch_add(&conns_started, 1);
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

static int server_task_opts(void *arg)
{
	return rook_serve(arg, echo_conn, NULL);
}

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
	/* A second server on the same port fails to bind, with one listener
	 * or with one per worker (which must not join the first one's
	 * SO_REUSEPORT group), on one address or on all. */
	struct rook_serve_opts dup = {
	    .host = "127.0.0.1", .port = (uint16_t)serve_port, .flags = ROOK_SERVE_SHARED};
	T_CHECK_EQ(rook_serve(&dup, echo_conn, NULL), -EADDRINUSE);
	struct rook_serve_opts dup_group = {.host = "127.0.0.1", .port = (uint16_t)serve_port};
	T_CHECK_EQ(rook_serve(&dup_group, echo_conn, NULL), -EADDRINUSE);
	dup_group.host = NULL;
	T_CHECK_EQ(rook_serve(&dup_group, echo_conn, NULL), -EADDRINUSE);
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

Test(serve, echo_v4_v6_then_graceful_shutdown_per_worker, .timeout = 120)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, main_task, (void *)(intptr_t)0), 0);
	expect_clean_shutdown(fds);
	(void)server_task;
}

Test(serve, echo_v4_v6_then_graceful_shutdown_shared, .timeout = 120)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, main_task, (void *)(intptr_t)ROOK_SERVE_SHARED), 0);
	expect_clean_shutdown(fds);
}

Test(serve, echo_v4_v6_then_graceful_shutdown_deferred, .timeout = 120)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, main_task, (void *)(intptr_t)ROOK_SERVE_DEFER), 0);
	serve_port = 0;
	cr_assert_eq(
	    run_with(2, 0, main_task, (void *)(intptr_t)(ROOK_SERVE_DEFER | ROOK_SERVE_SHARED)), 0);
	expect_clean_shutdown(fds);
}

static void ping_fd(int fd)
{
	char in[8] = {0};
	T_CHECK_EQ(rook_send(fd, "ping\n", 5, 0), 5);
	T_CHECK_EQ(rook_read_full(fd, in, 5), 5);
	T_CHECK(memcmp(in, "ping\n", 5) == 0);
}

static int defer_main(void *arg)
{
	(void)arg;
	struct rook_task *srv;
	atomic_store(&conns_started, 0);
	T_CHECK_EQ(rook_spawn(&srv, server_bound,
			      (void *)(intptr_t)(ROOK_SERVE_DEFER | ROOK_SERVE_SHARED)),
		   0);
	while (__atomic_load_n(&serve_port, __ATOMIC_ACQUIRE) == 0)
		rook_yield();
	/* silent is accepted first (one listener, one accept loop); talker's
	 * echo then shows the server past it, and its fn has not run. */
	int silent = rook_tcp_connect("127.0.0.1", (uint16_t)serve_port);
	int talker = rook_tcp_connect("127.0.0.1", (uint16_t)serve_port);
	int closer = rook_tcp_connect("127.0.0.1", (uint16_t)serve_port);
	int last = rook_tcp_connect("127.0.0.1", (uint16_t)serve_port);
	T_CHECK(silent >= 0 && talker >= 0 && closer >= 0 && last >= 0);
	ping_fd(talker);
	T_CHECK_EQ(atomic_load(&conns_started), 1);
	ping_fd(silent); /* readable now: its task starts */
	T_CHECK_EQ(atomic_load(&conns_started), 2);
	/* A peer that closes without a byte still gets fn (it sees EOF). */
	T_CHECK_EQ(rook_close(closer), 0);
	while (atomic_load(&conns_started) < 3)
		T_CHECK_EQ(rook_yield(), 0);
	/* Stop with `last` never having sent: closed without fn. */
	int st = 0;
	T_CHECK_EQ(rook_cancel(srv), 0);
	T_CHECK_EQ(rook_join(srv, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	T_CHECK_EQ(atomic_load(&conns_started), 3);
	int fds[] = {silent, talker, last};
	for (int i = 0; i < 3; i++) {
		char c;
		T_CHECK_EQ(rook_recv(fds[i], &c, 1, 0), 0); /* the server closed it */
		T_CHECK_EQ(rook_close(fds[i]), 0);
	}
	return 0;
}

Test(serve, deferred_connection_gets_its_task_once_readable_or_closed)
{
	int fds = fd_count();
	serve_port = 0;
	cr_assert_eq(run_with(2, 0, defer_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* The port of a plain listener that a thread closes 20 ms after start (a
 * server that just exited, its listener not yet released). */
static int old_listener = -1;

static void *close_later(void *arg)
{
	(void)arg;
	usleep(20 * 1000);
	close(old_listener);
	return NULL;
}

static int rebind_main(void *arg)
{
	int port = (int)(intptr_t)arg, bound_port = 0;
	pthread_t th;
	T_CHECK_EQ(pthread_create(&th, NULL, close_later, NULL), 0);
	struct rook_serve_opts o = {
	    .host = "127.0.0.1", .port = (uint16_t)port, .bound_port = &bound_port};
	struct rook_task *srv;
	T_CHECK_EQ(rook_spawn(&srv, server_task_opts, &o), 0);
	while (__atomic_load_n(&bound_port, __ATOMIC_ACQUIRE) == 0 && !rook_done(srv))
		T_CHECK_EQ(rook_yield(), 0);
	T_CHECK_EQ(bound_port, port);
	int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port);
	T_CHECK(fd >= 0);
	if (fd >= 0) {
		ping_fd(fd);
		T_CHECK_EQ(rook_close(fd), 0);
	}
	int st = 0;
	T_CHECK_EQ(rook_cancel(srv), 0);
	T_CHECK_EQ(rook_join(srv, &st), 0);
	T_CHECK_EQ(st, -ECANCELED);
	pthread_join(th, NULL);
	return 0;
}

Test(serve, port_whose_old_listener_goes_away_soon_is_taken)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	old_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(old_listener >= 0);
	cr_assert_eq(bind(old_listener, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(old_listener, 8), 0);
	cr_assert_eq(getsockname(old_listener, (struct sockaddr *)&a, &len), 0);
	int fds = fd_count() - 1; /* the old listener goes */
	cr_assert_eq(run_with(2, 0, rebind_main, (void *)(intptr_t)ntohs(a.sin_port)), 0);
	expect_clean_shutdown(fds);
}
