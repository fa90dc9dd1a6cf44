/* SPDX-License-Identifier: MIT */
/*
 * rook_close of an fd that tasks wait on, its number taken at once by a
 * new file: each waiter ends with -EBADF, on both backends, and none of
 * them acts on the new file (reads its data, sends into it, reports its
 * readiness or accepts its connection).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "io/testing.h"
#include "sched/testing.h"
#include "tests/helpers.h"

enum kind { K_RECV, K_SEND, K_POLL, K_STREAM, K_ACCEPT };

struct waiter {
	enum kind kind;
	int fd;
	struct rook_stream *s;
	long res;
};

static char big[64 << 10];

static int waiter_fn(void *arg)
{
	struct waiter *w = arg;
	char buf[16];
	switch (w->kind) {
	case K_RECV:
		w->res = rook_recv(w->fd, buf, sizeof(buf), 0);
		break;
	case K_SEND:
		w->res = rook_send(w->fd, big, sizeof(big), 0);
		break;
	case K_POLL:
		w->res = rook_poll(w->fd, POLLIN);
		break;
	case K_STREAM:
		w->res = rook_stream_read(w->s, buf, sizeof(buf));
		break;
	case K_ACCEPT:
		w->res = rook_accept(w->fd, NULL, NULL);
		if (w->res >= 0)
			close((int)w->res);
		break;
	}
	return 0;
}

/* A socket whose send buffer is full: the next send waits. */
static void fill(int fd)
{
	while (send(fd, big, sizeof(big), MSG_DONTWAIT) > 0)
		;
}

static int reuse_main(void *arg)
{
	enum kind kind = *(enum kind *)arg;
	for (int round = 0; round < 20; round++) {
		int sv[2] = {-1, -1};
		struct waiter w = {.kind = kind, .res = 1};
		if (kind == K_ACCEPT) {
			w.fd = rook_tcp_listen("127.0.0.1", 0, 4);
			T_CHECK(w.fd >= 0);
		} else {
			T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
			w.fd = sv[0];
			if (kind == K_SEND)
				fill(sv[0]);
			if (kind == K_STREAM)
				T_CHECK_EQ(rook_stream_open(&w.s, sv[0], 0), 0);
		}
		int old = w.fd;
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, waiter_fn, &w), 0);
		await_parked(t);
		T_CHECK_EQ(rook_close(old), 0);
		/* The number taken at once, without suspending, by a file with
		 * data for a reader, room for a writer or a connection queued. */
		int mine = -1, peer = -1, client = -1;
		if (kind == K_ACCEPT) {
			mine = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			struct sockaddr_in a = {.sin_family = AF_INET,
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			socklen_t len = sizeof(a);
			T_CHECK_EQ(bind(mine, (struct sockaddr *)&a, sizeof(a)), 0);
			T_CHECK_EQ(listen(mine, 4), 0);
			T_CHECK_EQ(getsockname(mine, (struct sockaddr *)&a, &len), 0);
			client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			T_CHECK_EQ(connect(client, (struct sockaddr *)&a, sizeof(a)), 0);
		} else {
			int nsv[2];
			T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nsv), 0);
			mine = nsv[0] == old ? nsv[0] : nsv[1];
			peer = nsv[0] == old ? nsv[1] : nsv[0];
			T_CHECK_EQ(send(peer, "LEAK", 4, MSG_DONTWAIT), 4);
		}
		T_CHECK_EQ(mine, old); /* else the case was not tested */
		T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
		T_CHECK_EQ(w.res, -EBADF);
		/* The new file is as it was: its data, its room, its connection. */
		if (kind == K_ACCEPT) {
			int a = accept4(mine, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			T_CHECK(a >= 0);
			close(a);
			close(client);
		} else {
			char in[8];
			T_CHECK_EQ(recv(mine, in, sizeof(in), MSG_DONTWAIT), 4);
			T_CHECK_EQ(recv(peer, in, sizeof(in), MSG_DONTWAIT), -1);
			T_CHECK_EQ(rook_close(peer), 0);
			T_CHECK_EQ(rook_close(sv[1]), 0);
		}
		T_CHECK_EQ(rook_close(mine), 0);
		if (w.s) /* its number is free again: only the memory goes */
			T_CHECK_EQ(rook_stream_close(w.s), -EBADF);
	}
	return 0;
}

static void on_1_2_4(enum kind kind)
{
	int fds = fd_count();
	for (unsigned n = 1; n <= 4; n *= 2)
		cr_assert_eq(run_with(n, ROOK_NO_PIN, reuse_main, &kind), 0);
	expect_clean_shutdown(fds);
}

Test(close_reuse, a_recv_ends_and_reads_nothing_of_the_next_file, .timeout = 120)
{
	on_1_2_4(K_RECV);
}

Test(close_reuse, a_send_ends_and_sends_nothing_into_the_next_file, .timeout = 120)
{
	on_1_2_4(K_SEND);
}

Test(close_reuse, a_poll_ends_and_reports_nothing_of_the_next_file, .timeout = 120)
{
	on_1_2_4(K_POLL);
}

Test(close_reuse, a_stream_read_ends_and_reads_nothing_of_the_next_file, .timeout = 120)
{
	on_1_2_4(K_STREAM);
}

Test(close_reuse, an_accept_ends_and_takes_nothing_of_the_next_listener, .timeout = 120)
{
	on_1_2_4(K_ACCEPT);
}

/* io_uring prepares an op's SQE and submits it later (every few rounds,
 * or when the worker has nothing else to run): a recv still queued when
 * rook_close runs names the fd's number. A thread's file that takes the
 * number in the close's window must not get that recv. */
struct grab {
	int fd, peer;
};

static void grab_number(int fd, void *arg)
{
	struct grab *g = arg;
	int nsv[2];
	(void)fd;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nsv) < 0)
		return;
	g->fd = nsv[0];
	g->peer = nsv[1];
	(void)send(g->peer, "LEAK", 4, MSG_DONTWAIT);
}

static int busy_fn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		rook_yield();
	return 0;
}

static int queued_main(void *arg)
{
	(void)arg;
	bool uring = strcmp(rook_io_backend(), "io_uring") == 0;
	int tested = 0;
	for (int round = 0; round < 200 && tested < 20; round++) {
		int sv[2];
		T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct waiter w = {.kind = K_RECV, .fd = sv[0], .res = 1};
		struct rook_task *t, *busy;
		/* With another task runnable the worker does not flush after
		 * the waiter parks, so the main task runs with the SQE queued. */
		T_CHECK_EQ(rook_spawn(&busy, busy_fn, NULL), 0);
		T_CHECK_EQ(rook_spawn(&t, waiter_fn, &w), 0);
		T_CHECK_EQ(rook_yield(), 0);
		/* epoll: the recv waits for readiness; its retry after the
		 * close must not reach the number's next file either. */
		bool queued = rook__task_parked(t) && (!uring || rook__io_unflushed() > 0);
		struct grab g = {-1, -1};
		if (queued)
			rook__io_on_close_window(grab_number, &g);
		T_CHECK_EQ(rook_close(sv[0]), 0);
		rook__io_on_close_window(NULL, NULL);
		T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
		T_CHECK_EQ(rook_join(busy, NULL), 0);
		T_CHECK_EQ(w.res, -EBADF);
		if (queued) {
			tested++;
			char in[8];
			T_CHECK(g.fd >= 0);
			/* The new file kept its data. */
			T_CHECK_EQ(recv(g.fd, in, sizeof(in), MSG_DONTWAIT), 4);
			close(g.fd);
			close(g.peer);
		}
		T_CHECK_EQ(rook_close(sv[1]), 0);
	}
	T_CHECK(tested > 0);
	return 0;
}

Test(close_reuse, a_queued_recv_does_not_reach_a_file_opened_during_the_close, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, queued_main, NULL), 0);
	expect_clean_shutdown(fds);
}
