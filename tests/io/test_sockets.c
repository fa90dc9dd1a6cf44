/* SPDX-License-Identifier: MIT */
/*
 * Sockets over 127.0.0.1 only: an echo server with 200 concurrent clients on
 * two workers, a recv blocked forever that is cancelled, a peer closing in
 * the middle of a transfer, accept running out of fds (EMFILE) and serving
 * again once fds free up, closing an fd with an operation in flight, and
 * the errors of the TCP helpers.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "io/ring.h"
#include "tests/helpers.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint16_t port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return 0;
	return ntohs(a.sin_port);
}

/* ---- echo, 200 connections ---------------------------------------------------- */

#define NCONN  200
#define ROUNDS 50
#define MSG    64

static _Atomic int workers_seen; /* bit i: a server task ran on worker i */

static int echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[MSG * 2];
	for (;;) {
		int w = rook__worker_index();
		if (w >= 0 && w < 31)
			atomic_fetch_or(&workers_seen, 1 << w);
		ssize_t n = rook_recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		if (rook_write_full(fd, buf, (size_t)n) != n)
			break;
	}
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

struct server {
	int s_lfd;
	_Atomic long s_accepted;
	_Atomic long s_accept_errors;
	_Atomic int s_first_error;
	long s_stop_after;
};

static int echo_server(void *arg)
{
	struct server *s = arg;
	while (s->s_accepted < s->s_stop_after) {
		int fd = rook_accept(s->s_lfd, NULL, NULL);
		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			int zero = 0;
			atomic_compare_exchange_strong(&s->s_first_error, &zero, fd);
			atomic_fetch_add(&s->s_accept_errors, 1);
			rook_yield(); /* fds may free up soon */
			continue;
		}
		atomic_fetch_add(&s->s_accepted, 1);
		T_CHECK_EQ(rook_spawn(NULL, echo_conn, (void *)(intptr_t)fd), 0);
	}
	return 0;
}

static int echo_client(void *arg)
{
	uint16_t port = (uint16_t)(intptr_t)arg;
	int fd = rook_tcp_connect("127.0.0.1", port);
	T_CHECK(fd >= 0);
	if (fd < 0)
		return fd;
	char out[MSG], in[MSG];
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < MSG; i++)
			out[i] = (char)(fd * 31 + r * 7 + i);
		T_CHECK_EQ(rook_send(fd, out, MSG, 0), MSG);
		T_CHECK_EQ(rook_read_full(fd, in, MSG), MSG);
		T_CHECK(memcmp(in, out, MSG) == 0);
	}
	T_CHECK_EQ(rook_close(fd), 0);
	return 0;
}

static int echo_main(void *arg)
{
	long n = (long)(intptr_t)arg;
	struct server s = {.s_stop_after = n};
	s.s_lfd = rook_tcp_listen("127.0.0.1", 0, 512);
	T_CHECK(s.s_lfd >= 0);
	uint16_t port = port_of(s.s_lfd);
	struct rook_task *srv, **cl = calloc((size_t)n, sizeof(*cl));
	T_CHECK_EQ(rook_spawn(&srv, echo_server, &s), 0);
	for (long i = 0; i < n; i++)
		T_CHECK_EQ(rook_spawn(&cl[i], echo_client, (void *)(intptr_t)port), 0);
	for (long i = 0; i < n; i++) {
		int st = -1;
		T_CHECK_EQ(rook_join(cl[i], &st), 0);
		T_CHECK_EQ(st, 0);
	}
	T_CHECK_EQ(rook_join(srv, NULL), 0);
	T_CHECK_EQ(s.s_accepted, n);
	T_CHECK_EQ(rook_close(s.s_lfd), 0);
	free(cl);
	return 0;
}

Test(sockets, echo_200_connections_across_two_workers, .timeout = 120)
{
	int fds = fd_count();
	atomic_store(&workers_seen, 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, echo_main, (void *)(intptr_t)NCONN), 0);
	cr_expect_eq(atomic_load(&workers_seen), 3, "server tasks ran on workers mask %#x",
		     atomic_load(&workers_seen));
	expect_clean_shutdown(fds);
}

/* ---- a connected pair ----------------------------------------------------------- */

struct pair {
	int p_lfd, p_a, p_b; /* listener, client end, server end */
};

static void pair_open(struct pair *p)
{
	p->p_lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	T_CHECK(p->p_lfd >= 0);
	p->p_a = rook_tcp_connect("127.0.0.1", port_of(p->p_lfd));
	T_CHECK(p->p_a >= 0);
	p->p_b = rook_accept(p->p_lfd, NULL, NULL);
	T_CHECK(p->p_b >= 0);
}

static void pair_close(struct pair *p)
{
	if (p->p_a >= 0)
		T_CHECK_EQ(rook_close(p->p_a), 0);
	if (p->p_b >= 0)
		T_CHECK_EQ(rook_close(p->p_b), 0);
	T_CHECK_EQ(rook_close(p->p_lfd), 0);
}

struct blocked {
	int b_fd;
	_Atomic int b_started;
	_Atomic long b_rc;
};

static int recv_forever(void *arg)
{
	struct blocked *b = arg;
	char buf[16];
	atomic_store(&b->b_started, 1);
	long rc = rook_recv(b->b_fd, buf, sizeof(buf), 0);
	atomic_store(&b->b_rc, rc);
	return 0;
}

/* ---- cancel a recv blocked forever ------------------------------------------------ */

static int cancel_main(void *arg)
{
	for (int round = 0; round < 8; round++) {
		struct pair p;
		pair_open(&p);
		struct blocked b = {.b_fd = p.p_b};
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, recv_forever, &b), 0);
		/* Suspended in its recv; the SQE may still be queued or already
		 * in the kernel: either must end the recv. */
		await_parked(t);
		uint64_t t0 = mono_ns();
		T_CHECK_EQ(rook_cancel(t), 0);
		T_CHECK_EQ(rook_join(t, NULL), 0);
		uint64_t took = mono_ns() - t0;
		T_CHECK_EQ(atomic_load(&b.b_rc), -ECANCELED);
		T_CHECK(took < 500 * ROOK_MSEC);
		/* The connection still works: nothing was consumed. */
		T_CHECK_EQ(rook_send(p.p_a, "ping", 4, 0), 4);
		char buf[4];
		T_CHECK_EQ(rook_read_full(p.p_b, buf, 4), 4);
		pair_close(&p);
	}
	return 0;
}

Test(sockets, recv_blocked_forever_cancelled_returns_ecanceled_promptly, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, cancel_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- the peer closes in the middle of a transfer ------------------------------------ */

static int flood(void *arg)
{
	struct blocked *b = arg;
	static char chunk[65536];
	long rc;
	atomic_store(&b->b_started, 1);
	do
		rc = rook_send(b->b_fd, chunk, sizeof(chunk), 0);
	while (rc > 0);
	atomic_store(&b->b_rc, rc);
	return 0;
}

static int peer_close_main(void *arg)
{
	/* Reader side: the peer sends part of a message, then closes. */
	struct pair p;
	pair_open(&p);
	char buf[200];
	T_CHECK_EQ(rook_send(p.p_b, buf, 100, 0), 100);
	T_CHECK_EQ(rook_close(p.p_b), 0);
	p.p_b = -1;
	T_CHECK_EQ(rook_read_full(p.p_a, buf, sizeof(buf)), 100);
	T_CHECK_EQ(rook_recv(p.p_a, buf, sizeof(buf), 0), 0);
	pair_close(&p);

	/* Writer side: the peer reads a little, then closes with data unread
	 * (an RST): the sender sees -ECONNRESET or -EPIPE, never a crash. */
	pair_open(&p);
	struct blocked b = {.b_fd = p.p_b};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, flood, &b), 0);
	T_CHECK_EQ(rook_read_full(p.p_a, buf, sizeof(buf)), (long)sizeof(buf));
	T_CHECK_EQ(rook_close(p.p_a), 0);
	p.p_a = -1;
	T_CHECK_EQ(rook_join(t, NULL), 0);
	long rc = atomic_load(&b.b_rc);
	T_CHECK(rc == -ECONNRESET || rc == -EPIPE);
	ssize_t r = rook_recv(p.p_b, buf, sizeof(buf), 0);
	T_CHECK(r == 0 || r == -ECONNRESET);
	pair_close(&p);
	return 0;
}

Test(sockets, peer_closing_mid_transfer_gives_eof_or_reset, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, peer_close_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- EMFILE from accept -------------------------------------------------------------- */

#define EMFILE_CLIENTS 3

static int emfile_main(void *arg)
{
	struct server s = {.s_stop_after = EMFILE_CLIENTS};
	s.s_lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	T_CHECK(s.s_lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port_of(s.s_lfd)),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int cfd[EMFILE_CLIENTS];
	for (int i = 0; i < EMFILE_CLIENTS; i++)
		T_CHECK((cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	/* Use up every fd the (lowered) limit allows. */
	static int hog[256];
	int nhog = 0;
	while (nhog < 256 && (hog[nhog] = dup(cfd[0])) >= 0)
		nhog++;
	T_CHECK(nhog < 256 && errno == EMFILE);
	struct rook_task *srv;
	T_CHECK_EQ(rook_spawn(&srv, echo_server, &s), 0);
	for (int i = 0; i < EMFILE_CLIENTS; i++)
		T_CHECK_EQ(rook_connect(cfd[i], (struct sockaddr *)&a, sizeof(a)), 0);
	while (s.s_accept_errors < 3)
		rook_yield();
	T_CHECK_EQ(s.s_accepted, 0);
	for (int i = 0; i < nhog; i++)
		close(hog[i]);
	/* The server keeps serving once fds are free again. */
	for (int i = 0; i < EMFILE_CLIENTS; i++) {
		char buf[8];
		T_CHECK_EQ(rook_send(cfd[i], "echo me", 7, 0), 7);
		T_CHECK_EQ(rook_read_full(cfd[i], buf, 7), 7);
		T_CHECK(memcmp(buf, "echo me", 7) == 0);
		T_CHECK_EQ(rook_close(cfd[i]), 0);
	}
	T_CHECK_EQ(rook_join(srv, NULL), 0);
	T_CHECK_EQ(s.s_first_error, -EMFILE);
	T_CHECK_EQ(s.s_accepted, EMFILE_CLIENTS);
	T_CHECK_EQ(rook_close(s.s_lfd), 0);
	return 0;
}

Test(sockets, accept_emfile_does_not_stop_the_server, .timeout = 60)
{
	struct rlimit old, low;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	int fds = fd_count();
	low = old;
	low.rlim_cur = 64;
	cr_assert_lt(fds + 16, 64, "too many fds open already (%d)", fds);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	int rc = run_with(2, ROOK_NO_PIN, emfile_main, NULL);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(rc, 0);
	expect_clean_shutdown(fds);
}

/* ---- close with an operation in flight ----------------------------------------------- */

static const char *inflight_backend;

static int close_inflight_main(void *arg)
{
	inflight_backend = rook_io_backend();
	for (int round = 0; round < 8; round++) {
		struct pair p;
		pair_open(&p);
		struct blocked b = {.b_fd = p.p_b};
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, recv_forever, &b), 0);
		/* Suspended in its recv; the SQE may still be queued or already
		 * in the kernel: either must end the recv. */
		await_parked(t);
		uint64_t t0 = mono_ns();
		T_CHECK_EQ(rook_close(p.p_b), 0);
		p.p_b = -1;
		T_CHECK_EQ(rook_join(t, NULL), 0);
		T_CHECK_EQ(atomic_load(&b.b_rc), -EBADF);
		T_CHECK(mono_ns() - t0 < 500 * ROOK_MSEC);
		pair_close(&p);
	}
	return 0;
}

Test(sockets, close_with_an_op_in_flight_ends_it_with_ebadf, .timeout = 60)
{
	int fds = fd_count();
	/* The first runtime start runs the probe. */
	cr_assert_eq(run_with(1, ROOK_NO_PIN, close_inflight_main, NULL), 0);
	/* Only io_uring's cancel by fd depends on the kernel; epoll (also when
	 * picked by itself, as under qemu-user) always ends the op. */
	if (strcmp(inflight_backend, "io_uring") == 0 && !rook__ring_can_cancel_fd())
		cr_skip_test("IORING_ASYNC_CANCEL_FD needs Linux 5.19");
	cr_assert_eq(run_with(2, ROOK_NO_PIN, close_inflight_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- TCP helpers ---------------------------------------------------------------------- */

static int helpers_main(void *arg)
{
	int lfd = rook_tcp_listen("127.0.0.1", 0, 0);
	T_CHECK(lfd >= 0);
	uint16_t port = port_of(lfd);
	T_CHECK_EQ(rook_close(lfd), 0);
	T_CHECK_EQ(rook_tcp_connect("127.0.0.1", port), -ECONNREFUSED);
	T_CHECK_EQ(rook_tcp_connect(NULL, port), -EINVAL);
	/* A name: resolved on the blocking pool. */
	lfd = rook_tcp_listen("localhost", 0, 4);
	T_CHECK(lfd >= 0);
	int c = rook_tcp_connect("localhost", port_of(lfd));
	T_CHECK(c >= 0);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	int s = rook_accept(lfd, (struct sockaddr *)&peer, &plen);
	T_CHECK(s >= 0);
	T_CHECK(plen > 0);
	T_CHECK_EQ(rook_accept(lfd, (struct sockaddr *)&peer, NULL), -EINVAL);
	T_CHECK_EQ(rook_close(c), 0);
	T_CHECK_EQ(rook_close(s), 0);
	T_CHECK_EQ(rook_close(lfd), 0);
	return 0;
}

Test(sockets, tcp_helpers_resolve_listen_connect_and_refuse, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, helpers_main, NULL), 0);
	expect_clean_shutdown(fds);
}
