/* SPDX-License-Identifier: MIT */
/*
 * Sockets at their edges: rook_tcp_listen(NULL, ...) takes IPv4 and IPv6
 * clients (a dual-stack "::" socket), and rook_write / rook_write_full to
 * a socket whose peer is gone return -EPIPE with SIGPIPE at its default
 * disposition (the process would die of it otherwise), and a read after a
 * short read still returns data already queued.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

/* Whether ::1 can be bound here (IPv6 present and enabled on lo). */
static bool have_ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

struct any {
	bool an_v6;
};

static int connect_accept(int lfd, const char *host)
{
	int r = 0;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	T_CHECK_EQ(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
	uint16_t port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
	int fd = rook_tcp_connect(host, port);
	T_CHECK(fd >= 0);
	if (fd < 0)
		return fd;
	int a = rook_accept(lfd, NULL, NULL);
	T_CHECK(a >= 0);
	T_CHECK_EQ(rook_write(fd, "ping", 4, -1), 4);
	char buf[4];
	T_CHECK_EQ(rook_read_full(a, buf, 4), 4);
	T_CHECK(memcmp(buf, "ping", 4) == 0);
	T_CHECK_EQ(rook_close(a), 0);
	T_CHECK_EQ(rook_close(fd), 0);
	return r;
}

static int any_main(void *arg)
{
	struct any *an = arg;
	int lfd = rook_tcp_listen(NULL, 0, 16);
	T_CHECK(lfd >= 0);
	if (lfd < 0)
		return 0;
	connect_accept(lfd, "127.0.0.1");
	if (an->an_v6)
		connect_accept(lfd, "::1");
	T_CHECK_EQ(rook_close(lfd), 0);
	/* "" is every address too. */
	lfd = rook_tcp_listen("", 0, 0);
	T_CHECK(lfd >= 0);
	if (an->an_v6)
		connect_accept(lfd, "::1");
	connect_accept(lfd, "127.0.0.1");
	T_CHECK_EQ(rook_close(lfd), 0);
	return 0;
}

Test(sock_edges, null_host_takes_ipv4_and_ipv6_clients, .timeout = 30)
{
	int fds = fd_count();
	struct any an = {.an_v6 = have_ipv6_loopback()};
	cr_assert_eq(run_with(2, ROOK_NO_PIN, any_main, &an), 0);
	expect_clean_shutdown(fds);
	if (!an.an_v6)
		cr_skip_test("no IPv6 loopback: only 127.0.0.1 was tried");
}

/* ---- SIGPIPE --------------------------------------------------------------- */

static int epipe_main(void *arg)
{
	(void)arg;
	int s[2];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	T_CHECK_EQ(rook_close(s[1]), 0);
	size_t len = 1u << 20;
	char *buf = calloc(1, len);
	T_CHECK(buf != NULL);
	T_CHECK_EQ(rook_write(s[0], buf, 16, -1), -EPIPE);
	T_CHECK_EQ(rook_write_full(s[0], buf, len), -EPIPE);
	free(buf);
	T_CHECK_EQ(rook_close(s[0]), 0);
	return 0;
}

Test(sock_edges, write_to_a_closed_socket_is_epipe_not_sigpipe, .timeout = 30)
{
	int fds = fd_count();
	cr_assert(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, epipe_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- a read after a short read ----------------------------------------------- */

/* On epoll a short stream read makes the next read wait for readiness
 * first (io/epoll.c, note_read): data that is queued already must still be
 * returned at once, by recv and by rook_read, on a socket and on a pipe. */
static int short_read_main(void *arg)
{
	(void)arg;
	int s[2], p[2];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
	T_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	char buf[100];
	for (int round = 0; round < 4; round++) {
		T_CHECK_EQ(rook_send(s[1], "abc", 3, 0), 3);
		T_CHECK_EQ(rook_recv(s[0], buf, sizeof(buf), 0), 3); /* short */
		T_CHECK_EQ(rook_send(s[1], "defg", 4, 0), 4);        /* queued before */
		T_CHECK_EQ(rook_deadline_push(rook_now() + 5 * ROOK_SEC), 0);
		T_CHECK_EQ(rook_recv(s[0], buf, sizeof(buf), 0), 4);
		T_CHECK(memcmp(buf, "defg", 4) == 0);
		T_CHECK_EQ(rook_write(p[1], "hi", 2, -1), 2);
		T_CHECK_EQ(rook_read(p[0], buf, sizeof(buf), -1), 2); /* short */
		T_CHECK_EQ(rook_write(p[1], "there", 5, -1), 5);
		T_CHECK_EQ(rook_read(p[0], buf, sizeof(buf), -1), 5);
		T_CHECK(memcmp(buf, "there", 5) == 0);
		rook_deadline_pop();
	}
	T_CHECK_EQ(rook_close(s[0]), 0);
	T_CHECK_EQ(rook_close(s[1]), 0);
	T_CHECK_EQ(rook_close(p[0]), 0);
	T_CHECK_EQ(rook_close(p[1]), 0);
	return 0;
}

Test(sock_edges, a_read_after_a_short_read_returns_queued_data, .timeout = 30)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, short_read_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, short_read_main, NULL), 0);
	expect_clean_shutdown(fds);
}
