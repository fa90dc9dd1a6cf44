/* SPDX-License-Identifier: MIT */
/*
 * Streams over a socketpair: pipelined requests split at every byte
 * boundary, lines longer than the caller's buffer and the stream's, EOF in
 * the middle of read_exactly (bytes left readable), a deadline mid-line
 * (nothing consumed), a read buffer grown past the write buffer's size, a
 * write cut by its deadline (the bytes sent, counted), a flush cut by its
 * deadline (the rest kept), buffered writes and the bad arguments.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "sched/testing.h"
#include "tests/helpers.h"

static const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n";

struct split {
	int fd;
	size_t at;
};

static int writer_split(void *arg)
{
	struct split *sp = arg;
	size_t len = sizeof(req) - 1;
	T_CHECK_EQ(rook_send(sp->fd, req, sp->at, 0), (ssize_t)sp->at);
	rook_yield();
	T_CHECK_EQ(rook_send(sp->fd, req + sp->at, len - sp->at, 0), (ssize_t)(len - sp->at));
	shutdown(sp->fd, SHUT_WR);
	return 0;
}

static int split_main(void *arg)
{
	(void)arg;
	static const char *want[] = {"GET /a HTTP/1.1\r\n", "Host: x\r\n", "\r\n",
				     "GET /b HTTP/1.1\r\n", "\r\n"};
	for (size_t at = 0; at < sizeof(req); at++) {
		int sv[2];
		T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		struct rook_stream *s;
		T_CHECK_EQ(rook_stream_open(&s, sv[0], 0), 0);
		struct split sp = {sv[1], at};
		struct rook_task *w;
		T_CHECK_EQ(rook_spawn(&w, writer_split, &sp), 0);
		char line[64];
		for (size_t i = 0; i < 5; i++) {
			ssize_t n = rook_stream_readline(s, line, sizeof(line));
			T_CHECK_EQ(n, (ssize_t)strlen(want[i]));
			T_CHECK(n > 0 && strcmp(line, want[i]) == 0);
		}
		T_CHECK_EQ(rook_stream_readline(s, line, sizeof(line)), 0);
		T_CHECK_EQ(rook_join(w, NULL), 0);
		T_CHECK_EQ(rook_stream_close(s), 0);
		T_CHECK_EQ(rook_close(sv[1]), 0);
	}
	return 0;
}

Test(stream, pipelined_requests_split_at_every_byte)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, 0, split_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int long_main(void *arg)
{
	(void)arg;
	int sv[2];
	char buf[128];
	struct rook_stream *s;
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 16), 0);
	const char *msg = "hello\n0123456789abcdefghijklmnopqrstuvwxyz\nend";
	T_CHECK_EQ(rook_send(sv[1], msg, strlen(msg), 0), (ssize_t)strlen(msg));
	shutdown(sv[1], SHUT_WR);
	/* Too small for the caller: nothing consumed. */
	T_CHECK_EQ(rook_stream_readline(s, buf, 4), -EMSGSIZE);
	T_CHECK_EQ(rook_stream_readline(s, buf, 6), 6);
	T_CHECK(memcmp(buf, "hello\n", 6) == 0);
	/* Longer than the stream's buffer (16) and than len: -EMSGSIZE,
	 * twice, nothing consumed; then with room in len, the whole line. */
	T_CHECK_EQ(rook_stream_readline(s, buf, 20), -EMSGSIZE);
	T_CHECK_EQ(rook_stream_readline(s, buf, 20), -EMSGSIZE);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), 37);
	T_CHECK(strcmp(buf, "0123456789abcdefghijklmnopqrstuvwxyz\n") == 0);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), 3); /* the rest at EOF */
	T_CHECK(strcmp(buf, "end") == 0);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), 0);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream, lines_longer_than_the_buffers)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, long_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* read_exactly past EOF gives back more than the buffer holds, so the
 * read buffer grows; the write buffer, taken before, keeps its size. */
static int grown_main(void *arg)
{
	(void)arg;
	int sv[2];
	char buf[64], out[64];
	struct rook_stream *s;
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 16), 0);
	T_CHECK_EQ(rook_stream_write(s, "0123456789", 10), 10); /* a 16-byte write buffer */
	const char *msg = "abcdefghijklmnopqrstuvwxyz0123";
	T_CHECK_EQ(rook_send(sv[1], msg, 30, 0), 30);
	shutdown(sv[1], SHUT_WR);
	T_CHECK_EQ(rook_stream_read_exactly(s, buf, 40), -EPIPE); /* 30 given back */
	T_CHECK_EQ(rook_stream_write(s, "ABCDEFGHIJKLMNOPQRST", 20), 20);
	T_CHECK_EQ(rook_stream_flush(s), 0);
	T_CHECK_EQ(rook_read_full(sv[1], out, 30), 30);
	T_CHECK(memcmp(out, "0123456789ABCDEFGHIJKLMNOPQRST", 30) == 0);
	T_CHECK_EQ(rook_stream_read_exactly(s, buf, 30), 30);
	T_CHECK(memcmp(buf, msg, 30) == 0);
	T_CHECK_EQ(rook_stream_read(s, buf, sizeof(buf)), 0);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

/* A write cut short by its deadline after some bytes went out returns
 * their count, and exactly those reach the peer: a caller that retries
 * from there sends nothing twice. Once the peer's buffers are full, a
 * write under a deadline takes nothing: -ETIMEDOUT. */
#define CUT_BYTES ((size_t)4 << 20)

static int cut_main(void *arg)
{
	(void)arg;
	int sv[2];
	struct rook_stream *s;
	char *big = malloc(CUT_BYTES), *in = malloc(CUT_BYTES);
	T_CHECK(big && in);
	for (size_t i = 0; i < CUT_BYTES; i++)
		big[i] = (char)(i * 7 + i / 4096);
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 4096), 0);
	T_CHECK_EQ(rook_stream_write(s, big, 100), 100); /* buffered */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	ssize_t w = rook_stream_write(s, big + 100, CUT_BYTES - 100);
	T_CHECK(rook_deadline_pop());
	T_CHECK(w > 0 && (size_t)w < CUT_BYTES - 100);
	/* Everything sent arrives, and nothing beyond it. */
	size_t want = 100 + (size_t)w;
	T_CHECK_EQ(rook_read_full(sv[1], in, want), (ssize_t)want);
	T_CHECK(memcmp(in, big, want) == 0);
	char c;
	T_CHECK_EQ(recv(sv[1], &c, 1, MSG_DONTWAIT), -1);
	/* The peer full again: nothing of a new write goes out in time. */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	ssize_t fill = rook_stream_write(s, big, CUT_BYTES);
	T_CHECK(rook_deadline_pop());
	T_CHECK(fill > 0);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_stream_write(s, big, CUT_BYTES), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	free(big);
	free(in);
	return 0;
}

Test(stream, a_write_cut_by_its_deadline_returns_what_went_out, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, cut_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A flush, or a write that tops the buffer up, cut by its deadline keeps
 * what did not go out buffered: the peer then gets every byte once, in
 * order, when a later flush sends the rest. */
#define KEEP_CAP   ((size_t)256 << 10)
#define KEEP_FIRST ((size_t)200 << 10)
#define KEEP_ALL   ((size_t)300 << 10)

struct drain {
	int fd;
	char *in;
	ssize_t got;
};

static int drain_to_eof(void *arg)
{
	struct drain *d = arg;
	d->got = rook_read_full(d->fd, d->in, KEEP_ALL + 1);
	return 0;
}

static int keep_main(void *arg)
{
	(void)arg;
	int sv[2], small = 4096;
	struct rook_stream *s;
	char *out = malloc(KEEP_ALL), *in = malloc(KEEP_ALL + 1);
	T_CHECK(out && in);
	for (size_t i = 0; i < KEEP_ALL; i++)
		out[i] = (char)(i * 13 + i / 1000);
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], KEEP_CAP), 0);
	T_CHECK_EQ(rook_stream_write(s, out, KEEP_FIRST), (ssize_t)KEEP_FIRST);
	/* Nobody reads: part of the buffer goes out, then the deadline. */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_stream_flush(s), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	/* The buffer tops up past its size and cannot go: nothing taken. */
	T_CHECK_EQ(rook_deadline_push(rook_now() + 50 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_stream_write(s, out + KEEP_FIRST, KEEP_ALL - KEEP_FIRST), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	struct drain d = {.fd = sv[1], .in = in};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, drain_to_eof, &d), 0);
	T_CHECK_EQ(rook_stream_write(s, out + KEEP_FIRST, KEEP_ALL - KEEP_FIRST),
		   (ssize_t)(KEEP_ALL - KEEP_FIRST));
	T_CHECK_EQ(rook_stream_flush(s), 0);
	T_CHECK_EQ(rook_stream_close(s), 0); /* the reader's EOF */
	T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
	T_CHECK_EQ(d.got, (ssize_t)KEEP_ALL);
	T_CHECK(d.got == (ssize_t)KEEP_ALL && memcmp(in, out, KEEP_ALL) == 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	free(out);
	free(in);
	return 0;
}

Test(stream, a_cut_flush_keeps_what_did_not_go_out, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, keep_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, keep_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* A big read_exactly cut by its deadline before any byte came gives back
 * nothing, so it takes no buffer: its result is the deadline, never the
 * -ENOMEM of an allocation (the next one is made to fail). */
static int big_cut_main(void *arg)
{
	(void)arg;
	int sv[2];
	struct rook_stream *s;
	char big[256];
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 64), 0);
	/* The first cut also sets up the worker's timer heap; in the second
	 * the next allocation fails. */
	for (int i = 0; i < 2; i++) {
		T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_MSEC), 0);
		rook__alloc_fail_nth(i);
		T_CHECK_EQ(rook_stream_read_exactly(s, big, sizeof(big)), -ETIMEDOUT);
		rook__alloc_fail_nth(0);
		T_CHECK(rook_deadline_pop());
	}
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream, a_big_read_cut_before_any_byte_takes_no_buffer)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, big_cut_main, NULL), 0);
	expect_clean_shutdown(fds);
}

Test(stream, a_grown_read_buffer_leaves_the_write_buffer_its_size)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, grown_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int exact_main(void *arg)
{
	size_t bufsize = (size_t)(intptr_t)arg;
	int sv[2];
	char out[100], in[100];
	struct rook_stream *s;
	for (int i = 0; i < 100; i++)
		out[i] = (char)i;
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], bufsize), 0);
	T_CHECK_EQ(rook_send(sv[1], out, 60, 0), 60);
	shutdown(sv[1], SHUT_WR);
	T_CHECK_EQ(rook_stream_read_exactly(s, in, 10), 10);
	T_CHECK(memcmp(in, out, 10) == 0);
	T_CHECK_EQ(rook_stream_read_exactly(s, in, 90), -EPIPE);
	T_CHECK_EQ(rook_stream_read_exactly(s, in, 50), 50); /* left readable */
	T_CHECK(memcmp(in, out + 10, 50) == 0);
	T_CHECK_EQ(rook_stream_read(s, in, sizeof(in)), 0);
	T_CHECK_EQ(rook_stream_read_exactly(s, in, 1), -EPIPE);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream, eof_in_read_exactly_leaves_the_bytes)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, exact_main, (void *)(intptr_t)0), 0);
	cr_assert_eq(run_with(1, 0, exact_main, (void *)(intptr_t)16), 0); /* n > buffer */
	expect_clean_shutdown(fds);
}

static int deadline_main(void *arg)
{
	(void)arg;
	int sv[2];
	char buf[64];
	struct rook_stream *s;
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 0), 0);
	T_CHECK_EQ(rook_send(sv[1], "abc", 3, 0), 3);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 20 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), -ETIMEDOUT);
	T_CHECK_EQ(rook_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop());
	T_CHECK_EQ(rook_send(sv[1], "def\r\n", 5, 0), 5);
	T_CHECK_EQ(rook_stream_read_until(s, "\r\n", 2, buf, sizeof(buf)), 8);
	T_CHECK(strcmp(buf, "abcdef\r\n") == 0);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream, deadline_mid_line_consumes_nothing)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, deadline_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int write_main(void *arg)
{
	(void)arg;
	int sv[2];
	static char out[5000], in[5000];
	struct rook_stream *s;
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i * 7);
	T_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 64), 0);
	size_t off = 0, step = 1;
	while (off < sizeof(out)) { /* sizes 1, 2, 3 ... across the 64-byte buffer */
		size_t n = step < sizeof(out) - off ? step : sizeof(out) - off;
		T_CHECK_EQ(rook_stream_write(s, out + off, n), (ssize_t)n);
		off += n;
		step++;
	}
	T_CHECK_EQ(rook_stream_flush(s), 0);
	T_CHECK_EQ(rook_read_full(sv[1], in, sizeof(in)), (ssize_t)sizeof(in));
	T_CHECK(memcmp(in, out, sizeof(in)) == 0);
	T_CHECK_EQ(rook_stream_write(s, "tail", 4), 4);
	T_CHECK_EQ(rook_stream_close(s), 0); /* flushes */
	T_CHECK_EQ(rook_read_full(sv[1], in, sizeof(in)), 4);
	T_CHECK(memcmp(in, "tail", 4) == 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream, buffered_writes_arrive_in_order)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, write_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int args_main(void *arg)
{
	(void)arg;
	int p[2];
	char buf[8];
	struct rook_stream *s = NULL;
	T_CHECK_EQ(rook_stream_open(NULL, 0, 0), -EINVAL);
	T_CHECK_EQ(rook_stream_open(&s, -1, 0), -EINVAL);
	T_CHECK_EQ(rook_stream_read(NULL, buf, 1), -EINVAL);
	T_CHECK_EQ(rook_stream_readline(NULL, buf, 1), -EINVAL);
	T_CHECK_EQ(rook_stream_read_exactly(NULL, buf, 1), -EINVAL);
	T_CHECK_EQ(rook_stream_write(NULL, buf, 1), -EINVAL);
	T_CHECK_EQ(rook_stream_flush(NULL), -EINVAL);
	T_CHECK_EQ(rook_stream_close(NULL), -EINVAL);
	T_CHECK_EQ(pipe(p), 0);
	T_CHECK_EQ(rook_stream_open(&s, p[0], 0), 0);
	T_CHECK_EQ(rook_stream_read(s, NULL, 1), -EINVAL);
	T_CHECK_EQ(rook_stream_read(s, buf, 0), 0);
	T_CHECK_EQ(rook_stream_read_until(s, NULL, 1, buf, 8), -EINVAL);
	T_CHECK_EQ(rook_stream_read_until(s, "x", 0, buf, 8), -EINVAL);
	T_CHECK_EQ(rook_stream_read_exactly(s, buf, 0), 0);
	T_CHECK_EQ(rook_stream_write(s, NULL, 1), -EINVAL);
	T_CHECK_EQ(write(p[1], "ab\n", 3), 3); /* a pipe works too */
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), 3);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(close(p[1]), 0);
	return 0;
}

Test(stream, bad_arguments_are_einval)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, args_main, NULL), 0);
	expect_clean_shutdown(fds);
}
