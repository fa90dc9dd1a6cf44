/* SPDX-License-Identifier: MIT */
/*
 * Deadlines on socket IO, over 127.0.0.1 only: rook_accept under a
 * deadline returns -ETIMEDOUT promptly and the listening socket keeps
 * working (a later connect + accept succeeds, and no fd is leaked);
 * rook_recv under a deadline on a socket with no data returns -ETIMEDOUT
 * and loses no byte (data sent afterwards is received by the next recv);
 * and a recv deadline of about 100 us racing a one-byte send on the other
 * worker, many times: every byte arrives exactly once and in order, either
 * from the timed recv (which then returns it) or from the next one; and a
 * wait that timed out, then close(2) and reuse of its fd number: a wait on
 * the new file sees its data.
 *
 * Two workers (one for the last), ROOK_NO_PIN; time bounds are gross.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#include "tests/helpers.h"

#define SHORT_NS    (30 * ROOK_MSEC)
#define PROMPT_NS   ((uint64_t)5 * ROOK_SEC)
#define RACE_REL_NS (100 * ROOK_USEC)

static uint16_t port_of(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return 0;
	return ntohs(a.sin_port);
}

static void run2(rook_fn fn)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, fn, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A task connecting to 127.0.0.1:port; the fd (or error) in c_fd. */
struct conn {
	uint16_t c_port;
	int c_fd;
};

static int connector(void *arg)
{
	struct conn *c = arg;
	c->c_fd = rook_tcp_connect("127.0.0.1", c->c_port);
	return 0;
}

/* Connected pair over loopback: *cfd the client end, *sfd the accepted one. */
static void tcp_pair(int lfd, int *cfd, int *sfd)
{
	struct conn c = {.c_port = port_of(lfd), .c_fd = -1};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, connector, &c), 0);
	*sfd = rook_accept(lfd, NULL, NULL);
	T_CHECK(*sfd >= 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK(c.c_fd >= 0);
	*cfd = c.c_fd;
}

/* ---- accept under a deadline --------------------------------------------- */

static int accept_main(void *arg)
{
	int lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	T_CHECK(lfd >= 0);
	if (lfd < 0)
		return lfd;
	int fds_listening = fd_count();

	for (int round = 0; round < 3; round++) {
		uint64_t dl = rook_now() + SHORT_NS;
		T_CHECK_EQ(rook_deadline_push(dl), 0);
		int rc = rook_accept(lfd, NULL, NULL);
		uint64_t end = rook_now();
		T_CHECK(rook_deadline_pop());
		T_CHECK_EQ(rc, -ETIMEDOUT);
		T_CHECK(end >= dl);
		T_CHECK(end - dl < PROMPT_NS);
		T_CHECK_EQ(fd_count(), fds_listening); /* no fd made or leaked */

		/* The listener still works: connect + accept, and a byte each way. */
		int cfd = -1, sfd = -1;
		tcp_pair(lfd, &cfd, &sfd);
		if (cfd >= 0 && sfd >= 0) {
			char b = (char)('a' + round), r = 0;
			T_CHECK_EQ(rook_send(cfd, &b, 1, 0), 1);
			T_CHECK_EQ(rook_recv(sfd, &r, 1, 0), 1);
			T_CHECK_EQ(r, b);
			T_CHECK_EQ(rook_send(sfd, &b, 1, 0), 1);
			r = 0;
			T_CHECK_EQ(rook_recv(cfd, &r, 1, 0), 1);
			T_CHECK_EQ(r, b);
		}
		if (cfd >= 0)
			T_CHECK_EQ(rook_close(cfd), 0);
		if (sfd >= 0)
			T_CHECK_EQ(rook_close(sfd), 0);
	}

	/* A connection that arrives before the deadline is accepted. */
	struct conn c = {.c_port = port_of(lfd), .c_fd = -1};
	struct rook_task *t;
	T_CHECK_EQ(rook_deadline_push(rook_now() + 30 * ROOK_SEC), 0);
	T_CHECK_EQ(rook_spawn(&t, connector, &c), 0);
	int sfd = rook_accept(lfd, NULL, NULL);
	T_CHECK(!rook_deadline_pop());
	T_CHECK(sfd >= 0);
	T_CHECK_EQ(rook_join(t, NULL), 0);
	T_CHECK(c.c_fd >= 0);
	if (sfd >= 0)
		T_CHECK_EQ(rook_close(sfd), 0);
	if (c.c_fd >= 0)
		T_CHECK_EQ(rook_close(c.c_fd), 0);

	T_CHECK_EQ(rook_close(lfd), 0);
	return 0;
}

Test(io_deadline, accept_times_out_promptly_and_listener_still_works, .timeout = 60)
{
	run2(accept_main);
}

/* ---- recv under a deadline ------------------------------------------------ */

static int recv_main(void *arg)
{
	int lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	T_CHECK(lfd >= 0);
	if (lfd < 0)
		return lfd;
	int cfd = -1, sfd = -1;
	tcp_pair(lfd, &cfd, &sfd);
	T_CHECK_EQ(rook_close(lfd), 0);
	if (cfd < 0 || sfd < 0)
		return -EIO;

	char buf[64];
	for (int round = 0; round < 3; round++) {
		memset(buf, 0, sizeof(buf));
		uint64_t dl = rook_now() + SHORT_NS;
		T_CHECK_EQ(rook_deadline_push(dl), 0);
		ssize_t n = rook_recv(sfd, buf, sizeof(buf), 0);
		uint64_t end = rook_now();
		T_CHECK(rook_deadline_pop());
		T_CHECK_EQ(n, -ETIMEDOUT);
		T_CHECK(end >= dl);
		T_CHECK(end - dl < PROMPT_NS);
		T_CHECK_EQ(buf[0], 0); /* the buffer was not written */

		/* Data sent afterwards is received, whole, by the next recv. */
		char msg[16];
		int len = snprintf(msg, sizeof(msg), "hello %d", round);
		T_CHECK_EQ(rook_send(cfd, msg, (size_t)len, 0), len);
		T_CHECK_EQ(rook_read_full(sfd, buf, (size_t)len), len);
		T_CHECK(memcmp(buf, msg, (size_t)len) == 0);
	}

	/* Data that is already there is returned even under a deadline
	 * that has not passed. */
	T_CHECK_EQ(rook_send(cfd, "xyz", 3, 0), 3);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 30 * ROOK_SEC), 0);
	T_CHECK_EQ(rook_read_full(sfd, buf, 3), 3);
	T_CHECK(!rook_deadline_pop());
	T_CHECK(memcmp(buf, "xyz", 3) == 0);

	T_CHECK_EQ(rook_close(cfd), 0);
	T_CHECK_EQ(rook_close(sfd), 0);
	return 0;
}

Test(io_deadline, recv_times_out_without_losing_bytes, .timeout = 60)
{
	run2(recv_main);
}

/* ---- recv deadline racing a send ----------------------------------------- */

struct rrace {
	int r_fd;
	_Atomic uint64_t r_dl;
	unsigned char r_byte;
	ssize_t r_rc;
};

static int rrace_recv(void *arg)
{
	struct rrace *r = arg;
	uint64_t dl = rook_now() + RACE_REL_NS;
	T_CHECK_EQ(rook_deadline_push(dl), 0);
	atomic_store_explicit(&r->r_dl, dl, memory_order_release);
	r->r_rc = rook_recv(r->r_fd, &r->r_byte, 1, 0);
	rook_deadline_pop();
	return 0;
}

static int recv_race_main(void *arg)
{
	long n = scaled(1000, 2), direct = 0, later = 0;
	int lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	T_CHECK(lfd >= 0);
	if (lfd < 0)
		return lfd;
	int cfd = -1, sfd = -1;
	tcp_pair(lfd, &cfd, &sfd);
	T_CHECK_EQ(rook_close(lfd), 0);
	if (cfd < 0 || sfd < 0)
		return -EIO;

	for (long i = 0; i < n; i++) {
		struct rrace r = {.r_fd = sfd};
		struct rook_task *t;
		unsigned char b = (unsigned char)(i & 0xff), got = 0;

		T_CHECK_EQ(rook_spawn(&t, rrace_recv, &r), 0);
		uint64_t dl, spin0 = rook_now();
		while ((dl = atomic_load_explicit(&r.r_dl, memory_order_acquire)) == 0)
			if (rook_now() - spin0 > 200 * ROOK_USEC)
				rook_yield();
		/* -60 us .. +40 us around the deadline. */
		uint64_t at = dl + (uint64_t)(((i * 37) % 101 - 60) * (int64_t)ROOK_USEC);
		while (rook_now() < at)
			;
		T_CHECK_EQ(rook_send(cfd, &b, 1, 0), 1);
		T_CHECK_EQ(rook_join(t, NULL), 0);
		if (r.r_rc == 1) {
			direct++;
			T_CHECK_EQ(r.r_byte, b);
		} else {
			/* Timed out with nothing moved: the byte is still there. */
			T_CHECK_EQ(r.r_rc, -ETIMEDOUT);
			later++;
			T_CHECK_EQ(rook_recv(sfd, &got, 1, 0), 1);
			T_CHECK_EQ(got, b);
		}
	}
	T_CHECK_EQ(direct + later, n);

	/* Nothing extra is left on the socket: close the sender, read EOF. */
	T_CHECK_EQ(rook_close(cfd), 0);
	unsigned char extra;
	T_CHECK_EQ(rook_recv(sfd, &extra, 1, 0), 0);
	T_CHECK_EQ(rook_close(sfd), 0);
	cr_log_info("recv race: %ld received by the timed recv, %ld by the next (of %ld)", direct,
		    later, n);
	return 0;
}

Test(io_deadline, recv_deadline_racing_send_loses_no_byte, .timeout = 240)
{
	run2(recv_race_main);
}

/* A wait that timed out on a pipe, then close(2) of the pipe (not
 * rook_close) and a new pipe on the same number: a wait on the new file
 * sees its data. On epoll the old registration was left armed and went
 * with the old file; trusting it hung the new wait (found by a hostile
 * review: a second rook_serve with ROOK_SERVE_DEFER in one runtime). */
static int late_write(void *arg)
{
	/* Late enough that the poll waits (else it finds the byte at once
	 * and tests nothing; it cannot fail for that). */
	T_CHECK_EQ(rook_sleep(20 * ROOK_MSEC), 0);
	T_CHECK_EQ(write((int)(intptr_t)arg, "x", 1), 1);
	return 0;
}

static int reuse_main(void *arg)
{
	(void)arg;
	int p[2], q[2];
	T_CHECK_EQ(pipe(p), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + SHORT_NS), 0);
	T_CHECK_EQ(rook_poll(p[0], POLLIN), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	int num = p[0];
	close(p[0]);
	close(p[1]);
	T_CHECK_EQ(pipe(q), 0);
	T_CHECK_EQ(q[0], num);
	struct rook_task *w;
	T_CHECK_EQ(rook_spawn(&w, late_write, (void *)(intptr_t)q[1]), 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + PROMPT_NS), 0);
	T_CHECK(rook_poll(q[0], POLLIN) > 0);
	T_CHECK(!rook_deadline_pop());
	T_CHECK_EQ(rook_join(w, NULL), 0);
	char c;
	T_CHECK_EQ(read(q[0], &c, 1), 1);
	close(q[0]);
	close(q[1]);
	return 0;
}

Test(io_deadline, a_number_closed_and_reused_after_a_timed_out_wait_is_waited_anew, .timeout = 60)
{
	/* One worker: both waits use the same worker's registrations. */
	int fds = fd_count();
	cr_assert_eq(run_with(1, ROOK_NO_PIN, reuse_main, NULL), 0);
	expect_clean_shutdown(fds);
}
