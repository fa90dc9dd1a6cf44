/* SPDX-License-Identifier: MIT */
/*
 * A stream's socket keeps one registration across its waits on the epoll
 * backend (struct rook__io_own in io/backend.h). What must hold on both
 * backends: data that came while nobody waited is found, a stream moved
 * to another worker still wakes, a stream closed and its fd number reused
 * by a new stream (or a plain rook_recv) waits on the new file, rook_close
 * of the fd from another task ends a stream's wait, and a deadline loses
 * nothing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "sched/testing.h"
#include "tests/helpers.h"

static int pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* ---- ping-pong over many streams on two workers ------------------------ */

#define PAIRS 16

struct pp {
	int fd;
	long rounds;
	_Atomic long *moves;
};

/* Answers each "ping N" with "pong N" through a stream, yielding between
 * rounds so that the other worker takes it now and then. */
static int pong_side(void *arg)
{
	struct pp *p = arg;
	struct rook_stream *s;
	T_CHECK_EQ(rook_stream_open(&s, p->fd, 64), 0);
	int where = rook__worker_index();
	char line[64], want[64], out[64];
	for (long i = 0; i < p->rounds; i++) {
		snprintf(want, sizeof(want), "ping %ld\n", i);
		ssize_t n = rook_stream_readline(s, line, sizeof(line));
		T_CHECK_EQ(n, (ssize_t)strlen(want));
		T_CHECK(n > 0 && strcmp(line, want) == 0);
		int k = snprintf(out, sizeof(out), "pong %ld\n", i);
		T_CHECK_EQ(rook_stream_write(s, out, (size_t)k), k);
		T_CHECK_EQ(rook_stream_flush(s), 0);
		if (i % 3 == 0)
			T_CHECK_EQ(rook_yield(), 0);
		int now = rook__worker_index();
		if (now != where)
			atomic_fetch_add(p->moves, 1);
		where = now;
	}
	T_CHECK_EQ(rook_stream_readline(s, line, sizeof(line)), 0); /* EOF */
	T_CHECK_EQ(rook_stream_close(s), 0);
	return 0;
}

static int ping_side(void *arg)
{
	struct pp *p = arg;
	struct rook_stream *s;
	T_CHECK_EQ(rook_stream_open(&s, p->fd, 0), 0);
	char line[64], want[64], out[64];
	for (long i = 0; i < p->rounds; i++) {
		int k = snprintf(out, sizeof(out), "ping %ld\n", i);
		/* Every other round in two writes: the second comes while the
		 * other side may or may not wait. */
		if (i % 2) {
			T_CHECK_EQ(rook_stream_write(s, out, 2), 2);
			T_CHECK_EQ(rook_stream_flush(s), 0);
			T_CHECK_EQ(rook_yield(), 0);
			T_CHECK_EQ(rook_stream_write(s, out + 2, (size_t)k - 2), k - 2);
		} else {
			T_CHECK_EQ(rook_stream_write(s, out, (size_t)k), k);
		}
		T_CHECK_EQ(rook_stream_flush(s), 0);
		snprintf(want, sizeof(want), "pong %ld\n", i);
		ssize_t n = rook_stream_readline(s, line, sizeof(line));
		T_CHECK_EQ(n, (ssize_t)strlen(want));
		T_CHECK(n > 0 && strcmp(line, want) == 0);
	}
	T_CHECK_EQ(rook_stream_close(s), 0);
	return 0;
}

static _Atomic long moves;

static int pingpong_main(void *arg)
{
	(void)arg;
	struct pp ps[PAIRS][2];
	struct rook_task *t[PAIRS][2];
	long rounds = scaled(2000, 8);
	for (int i = 0; i < PAIRS; i++) {
		int sv[2];
		T_CHECK_EQ(pair(sv), 0);
		ps[i][0] = (struct pp){sv[0], rounds, &moves};
		ps[i][1] = (struct pp){sv[1], rounds, &moves};
		T_CHECK_EQ(rook_spawn(&t[i][0], pong_side, &ps[i][0]), 0);
		T_CHECK_EQ(rook_spawn(&t[i][1], ping_side, &ps[i][1]), 0);
	}
	for (int i = 0; i < PAIRS; i++)
		for (int j = 0; j < 2; j++)
			T_CHECK_EQ(rook_join(t[i][j], NULL), 0);
	return 0;
}

Test(stream_own, pingpong_on_two_workers_loses_nothing, .timeout = 120)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, pingpong_main, NULL), 0);
	expect_clean_shutdown(fds);
	cr_log_info("stream tasks seen on another worker: %ld", atomic_load(&moves));
}

/* ---- a stream moved by a rescue ---------------------------------------- */

/*
 * The reader spawns a task that does not yield and waits: its worker picks
 * that task next and is stuck, so the other worker serves its IO (the
 * rescue) and the reader wakes there. Its next wait is on the other
 * worker's epoll set, and the data written for it must still wake it.
 * Repeated until the hog did land on the reader's worker once.
 */
static _Atomic int hog_go, hog_stop;

static int hog(void *arg)
{
	(void)arg;
	atomic_store(&hog_go, 1);
	while (!atomic_load(&hog_stop))
		;
	return 0;
}

struct moved {
	struct rook_stream *s;
	struct rook_task *hog;
	int first, second;
};

static int moved_reader(void *arg)
{
	struct moved *m = arg;
	char line[32];
	m->first = rook__worker_index();
	T_CHECK_EQ(rook_spawn(&m->hog, hog, NULL), 0);
	T_CHECK_EQ(rook_stream_readline(m->s, line, sizeof(line)), 4);
	T_CHECK(strcmp(line, "one\n") == 0);
	m->second = rook__worker_index();
	atomic_store(&hog_stop, 1);
	T_CHECK_EQ(rook_stream_readline(m->s, line, sizeof(line)), 4);
	T_CHECK(strcmp(line, "two\n") == 0);
	return 0;
}

static int moved_main(void *arg)
{
	(void)arg;
	bool moved = false;
	for (int round = 0; round < 50 && !moved; round++) {
		int sv[2];
		T_CHECK_EQ(pair(sv), 0);
		struct moved m = {0};
		atomic_store(&hog_go, 0);
		atomic_store(&hog_stop, 0);
		T_CHECK_EQ(rook_stream_open(&m.s, sv[0], 0), 0);
		struct rook_task *r;
		T_CHECK_EQ(rook_spawn(&r, moved_reader, &m), 0);
		await_parked(r);
		await_flag(&hog_go);
		T_CHECK_EQ(rook_send(sv[1], "one\n", 4, 0), 4);
		while (!atomic_load(&hog_stop))
			T_CHECK_EQ(rook_sleep(ROOK_MSEC), 0);
		T_CHECK_EQ(rook_send(sv[1], "two\n", 4, 0), 4);
		T_CHECK_EQ(rook_join(r, NULL), 0);
		T_CHECK_EQ(rook_join(m.hog, NULL), 0);
		T_CHECK_EQ(rook_stream_close(m.s), 0);
		T_CHECK_EQ(rook_close(sv[1]), 0);
		moved = m.first != m.second;
	}
	T_CHECK(moved);
	return 0;
}

Test(stream_own, a_stream_moved_to_another_worker_still_wakes, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, moved_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- close, then the number reused ------------------------------------- */

struct reuse {
	struct rook_stream *s;
	int fd;
	ssize_t got;
	char buf[16];
};

static int reuse_stream_reader(void *arg)
{
	struct reuse *u = arg;
	u->got = rook_stream_read(u->s, u->buf, sizeof(u->buf));
	return 0;
}

static int reuse_plain_reader(void *arg)
{
	struct reuse *u = arg;
	u->got = rook_recv(u->fd, u->buf, sizeof(u->buf), 0);
	return 0;
}

/* Wait in reader (on fd, its first stream or none), then write from the
 * peer: the read must see it. */
static void read_after_park(rook_fn reader, struct reuse *u, int peer, const char *msg)
{
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, reader, u), 0);
	await_parked(t);
	T_CHECK_EQ(rook_send(peer, msg, strlen(msg), 0), (ssize_t)strlen(msg));
	T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
	T_CHECK_EQ(u->got, (ssize_t)strlen(msg));
	T_CHECK(u->got > 0 && memcmp(u->buf, msg, strlen(msg)) == 0);
}

static int reuse_main(void *arg)
{
	(void)arg;
	for (int round = 0; round < 20; round++) {
		int a[2], b[2];
		T_CHECK_EQ(pair(a), 0);
		struct reuse u = {.fd = a[0]};
		T_CHECK_EQ(rook_stream_open(&u.s, a[0], 0), 0);
		read_after_park(reuse_stream_reader, &u, a[1], "first");
		T_CHECK_EQ(rook_stream_close(u.s), 0);
		T_CHECK_EQ(rook_close(a[1]), 0);

		/* The lowest free numbers: a[0] and a[1] again. */
		T_CHECK_EQ(pair(b), 0);
		if (b[0] != a[0] && b[1] != a[0]) {
			/* Not the case under test (another thread took the
			 * number?): say so rather than read a stranger's fd. */
			T_CHECK_EQ(b[0], a[0]);
			T_CHECK_EQ(b[1], a[1]);
			(void)rook_close(b[0]);
			(void)rook_close(b[1]);
			break;
		}
		int mine = a[0], peer = b[0] == a[0] ? b[1] : b[0];
		if (round % 2) {
			u = (struct reuse){.fd = mine};
			T_CHECK_EQ(rook_stream_open(&u.s, mine, 0), 0);
			read_after_park(reuse_stream_reader, &u, peer, "second");
			T_CHECK_EQ(rook_stream_close(u.s), 0);
		} else {
			u = (struct reuse){.fd = mine};
			read_after_park(reuse_plain_reader, &u, peer, "plain");
			T_CHECK_EQ(rook_close(mine), 0);
		}
		T_CHECK_EQ(rook_close(peer), 0);
	}
	return 0;
}

Test(stream_own, a_reused_fd_number_waits_on_the_new_file, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, reuse_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, reuse_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- rook_close from another task; a deadline ---------------------------- */

static int close_main(void *arg)
{
	(void)arg;
	for (int round = 0; round < 20; round++) {
		int sv[2];
		T_CHECK_EQ(pair(sv), 0);
		struct reuse u = {.fd = sv[0]};
		T_CHECK_EQ(rook_stream_open(&u.s, sv[0], 0), 0);
		/* A first read makes the registration, a second one trusts it. */
		read_after_park(reuse_stream_reader, &u, sv[1], "x");
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, reuse_stream_reader, &u), 0);
		await_parked(t);
		T_CHECK_EQ(rook_close(sv[0]), 0);
		T_CHECK_EQ(rook_join(t, NULL), 0);
		T_CHECK_EQ(u.got, -EBADF);
		T_CHECK_EQ(rook_close(sv[1]), 0);
		/* The stream's fd is closed: only its memory is left to free. */
		T_CHECK_EQ(rook_stream_close(u.s), -EBADF);
	}
	return 0;
}

Test(stream_own, rook_close_of_the_fd_ends_a_streams_wait, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, close_main, NULL), 0);
	expect_clean_shutdown(fds);
}

static int deadline_main(void *arg)
{
	(void)arg;
	int sv[2];
	T_CHECK_EQ(pair(sv), 0);
	struct rook_stream *s;
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 0), 0);
	char buf[16];
	for (int i = 0; i < 10; i++) {
		T_CHECK_EQ(rook_deadline_push(rook_now() + ROOK_MSEC), 0);
		T_CHECK_EQ(rook_stream_read(s, buf, sizeof(buf)), -ETIMEDOUT);
		T_CHECK(rook_deadline_pop());
		T_CHECK_EQ(rook_send(sv[1], "ab", 2, 0), 2);
		T_CHECK_EQ(rook_stream_read(s, buf, sizeof(buf)), 2);
		T_CHECK(memcmp(buf, "ab", 2) == 0);
	}
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream_own, a_deadline_on_a_trusted_wait_loses_nothing, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(2, ROOK_NO_PIN, deadline_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- a stream's first read after a short read on its fd number ----------- */

/* A recv that read less than it asked leaves a hint (epoll: the socket is
 * drained, wait before the next try) on the fd's number; close(2) does not
 * clear it. A stream's first read on the number's next socket polls, which
 * takes the readiness edge, then reads: that read must not wait for an
 * edge that was already taken. */
static int hinted_reader(void *arg)
{
	struct reuse *u = arg;
	u->got = rook_stream_read(u->s, u->buf, sizeof(u->buf));
	return 0;
}

static int hint_main(void *arg)
{
	(void)arg;
	for (int round = 0; round < 20; round++) {
		int a[2], b[2];
		char c[8];
		T_CHECK_EQ(pair(a), 0);
		T_CHECK_EQ(send(a[1], "x", 1, 0), 1);
		T_CHECK_EQ(rook_recv(a[0], c, sizeof(c), 0), 1); /* short */
		int n = a[0];
		close(a[0]); /* plain close(2): the hint stays */
		close(a[1]);
		T_CHECK_EQ(pair(b), 0);
		int mine = b[0] == n ? b[0] : b[1], peer = b[0] == n ? b[1] : b[0];
		T_CHECK_EQ(mine, n); /* else the case was not tested */
		struct reuse u = {.fd = mine};
		T_CHECK_EQ(rook_stream_open(&u.s, mine, 0), 0);
		struct rook_task *t;
		T_CHECK_EQ(rook_spawn(&t, hinted_reader, &u), 0);
		await_parked(t); /* in its poll */
		T_CHECK_EQ(send(peer, "hello", 5, 0), 5);
		T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
		T_CHECK_EQ(u.got, 5);
		T_CHECK_EQ(rook_stream_close(u.s), 0);
		T_CHECK_EQ(rook_close(peer), 0);
	}
	return 0;
}

Test(stream_own, a_first_read_after_a_short_read_on_its_number_wakes, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, hint_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, hint_main, NULL), 0);
	expect_clean_shutdown(fds);
}

/* ---- a read after a long line -------------------------------------------- */

/* A long line leaves the stream without a buffer, so the next read polls
 * first; an edge whose data a read took without waiting must not keep
 * that poll from parking (epoll: it spun at full CPU past its deadline). */
struct long_line {
	struct rook_stream *s;
	ssize_t got;
	char buf[256];
};

static int long_line_reader(void *arg)
{
	struct long_line *l = arg;
	l->got = rook_stream_readline(l->s, l->buf, sizeof(l->buf));
	return 0;
}

static int long_line_main(void *arg)
{
	(void)arg;
	int sv[2];
	T_CHECK_EQ(pair(sv), 0);
	struct rook_stream *s;
	T_CHECK_EQ(rook_stream_open(&s, sv[0], 16), 0);
	char buf[256];
	static const char line[] = "0123456789012345678901234567890123456789\n";
	/* The line comes while the first read waits in its poll. */
	struct long_line l = {.s = s};
	struct rook_task *t;
	T_CHECK_EQ(rook_spawn(&t, long_line_reader, &l), 0);
	await_parked(t);
	T_CHECK_EQ(rook_send(sv[1], line, sizeof(line) - 1, 0), (ssize_t)sizeof(line) - 1);
	T_CHECK_EQ(join_or_dump(t, 20 * ROOK_SEC), 0);
	T_CHECK_EQ(l.got, (ssize_t)sizeof(line) - 1);
	T_CHECK_EQ(rook_deadline_push(rook_now() + 200 * ROOK_MSEC), 0);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), -ETIMEDOUT);
	T_CHECK(rook_deadline_pop()); /* it expired */
	T_CHECK_EQ(rook_send(sv[1], "x\n", 2, 0), 2);
	T_CHECK_EQ(rook_stream_readline(s, buf, sizeof(buf)), 2);
	T_CHECK_EQ(rook_stream_close(s), 0);
	T_CHECK_EQ(rook_close(sv[1]), 0);
	return 0;
}

Test(stream_own, a_read_after_a_long_line_parks_and_keeps_its_deadline, .timeout = 60)
{
	int fds = fd_count();
	cr_assert_eq(run_with(1, 0, long_line_main, NULL), 0);
	cr_assert_eq(run_with(2, ROOK_NO_PIN, long_line_main, NULL), 0);
	expect_clean_shutdown(fds);
}
