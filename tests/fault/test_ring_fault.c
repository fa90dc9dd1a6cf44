/* SPDX-License-Identifier: MIT */
/*
 * Ring error injection (io/testing.h): submits that fail with -EAGAIN,
 * -EBUSY or -EINTR, and sleeps in io_uring_enter that end as if
 * interrupted. A program of TCP transfers both ways, positioned file IO
 * and timers on 2 workers must move every byte exactly, end, and leave no
 * fd behind, under each kind.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/testing.h"
#include "tests/helpers.h"

#define PAIRS  4
#define NBYTES (256 * 1024)
#define FBYTES (1024 * 1024)

static uint8_t pattern(size_t i, int k)
{
	return (uint8_t)(i * 31 + (size_t)k * 7 + (i >> 9));
}

struct side {
	int fd, k;
	long bad;
};

/* Writes NBYTES and reads NBYTES from its peer, concurrently in halves. */
static int writer(void *arg)
{
	struct side *s = arg;
	uint8_t *buf = malloc(NBYTES);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < NBYTES; i++)
		buf[i] = pattern(i, s->k);
	int r = rook_write_full(s->fd, buf, NBYTES) == NBYTES ? 0 : -EIO;
	free(buf);
	return r;
}

static int reader(struct side *s, int peer_k)
{
	uint8_t *buf = malloc(NBYTES);
	if (!buf)
		return -ENOMEM;
	ssize_t n = rook_read_full(s->fd, buf, NBYTES);
	if (n != NBYTES) {
		free(buf);
		return -EIO;
	}
	for (size_t i = 0; i < NBYTES; i++)
		if (buf[i] != pattern(i, peer_k))
			s->bad++;
	free(buf);
	return 0;
}

static int side_main(void *arg)
{
	struct side *s = arg;
	struct rook_task *w;
	if (rook_spawn(&w, writer, s) < 0)
		return -ENOMEM;
	int r = reader(s, s->k ^ 1);
	int st = 0;
	rook_join(w, &st);
	return r ? r : st;
}

static int files(void *arg)
{
	(void)arg;
	char path[] = "/tmp/rook-ring-fault-XXXXXX";
	int tfd = mkstemp(path);
	if (tfd < 0)
		return -errno;
	unlink(path);
	uint8_t *b = malloc(FBYTES), *c = malloc(FBYTES);
	int rc = 0;
	for (size_t i = 0; i < FBYTES; i++)
		b[i] = pattern(i, 9);
	for (size_t off = 0; off < FBYTES && rc == 0; off += 65536)
		if (rook_write(tfd, b + off, 65536, (int64_t)off) != 65536)
			rc = -EIO;
	for (size_t off = 0; off < FBYTES && rc == 0; off += 65536)
		if (rook_read(tfd, c + off, 65536, (int64_t)off) != 65536)
			rc = -EIO;
	if (rc == 0 && memcmp(b, c, FBYTES) != 0)
		rc = -EBADMSG;
	free(b);
	free(c);
	rook_close(tfd);
	return rc;
}

static int sleeps(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++)
		if (rook_sleep(ROOK_MSEC) != 0)
			return -EIO;
	return 0;
}

static int prog(void *arg)
{
	long *bad = arg;
	int lfd = rook_tcp_listen("127.0.0.1", 0, 16);
	if (lfd < 0)
		return lfd;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	getsockname(lfd, (struct sockaddr *)&a, &len);
	struct side s[2 * PAIRS];
	struct rook_task *ts[2 * PAIRS + 2];
	for (int p = 0; p < PAIRS; p++) {
		int c = rook_tcp_connect("127.0.0.1", ntohs(a.sin_port));
		int d = rook_accept(lfd, NULL, NULL);
		if (c < 0 || d < 0)
			return c < 0 ? c : d;
		s[2 * p] = (struct side){.fd = c, .k = 2 * p};
		s[2 * p + 1] = (struct side){.fd = d, .k = 2 * p + 1};
	}
	rook_close(lfd);
	for (int i = 0; i < 2 * PAIRS; i++)
		if (rook_spawn(&ts[i], side_main, &s[i]) < 0)
			return -ENOMEM;
	if (rook_spawn(&ts[2 * PAIRS], files, NULL) < 0 ||
	    rook_spawn(&ts[2 * PAIRS + 1], sleeps, NULL) < 0)
		return -ENOMEM;
	int st[2 * PAIRS + 2];
	int r = rook_gather(ts, 2 * PAIRS + 2, st);
	for (int i = 0; i < 2 * PAIRS; i++) {
		rook_close(s[i].fd);
		*bad += s[i].bad;
	}
	for (int i = 0; r == 0 && i < 2 * PAIRS + 2; i++)
		if (st[i] != 0)
			r = st[i];
	return r;
}

static void run_injected(int err, unsigned submit_every, unsigned enter_every)
{
	if (on_epoll())
		cr_skip_test("ring error injection is io_uring's (ROOK_IO=epoll)");
	int fds = fd_count();
	long bad = 0;
	unsigned long injected = rook__io_injected();
	rook__io_inject_submit(err, submit_every);
	rook__io_inject_enter_eintr(enter_every);
	struct rook_config cfg = {.workers = 2, .flags = ROOK_NO_PIN};
	int r = rook_run(&cfg, prog, &bad);
	rook__io_inject_submit(0, 0);
	rook__io_inject_enter_eintr(0);
	cr_assert_eq(r, 0, "err=%d every=%u/%u: rook_run returned %d", err, submit_every,
		     enter_every, r);
	cr_assert_eq(bad, 0, "err=%d: %ld wrong bytes", err, bad);
	cr_assert_eq(fd_count(), fds, "err=%d: fds left behind", err);
	unsigned long n = rook__io_injected() - injected;
	cr_assert((n > 0) == (submit_every || enter_every), "err=%d: %lu failures injected", err,
		  n);
	cr_log_info("ring_fault err=%d every=%u/%u: %lu failures injected\n", err, submit_every,
		    enter_every, n);
}

Test(ring_fault, none, .timeout = 120)
{
	run_injected(0, 0, 0);
}

Test(ring_fault, submit_eagain, .timeout = 120)
{
	run_injected(-EAGAIN, 2, 0);
}

Test(ring_fault, submit_ebusy, .timeout = 120)
{
	run_injected(-EBUSY, 3, 0);
}

Test(ring_fault, submit_eintr, .timeout = 120)
{
	run_injected(-EINTR, 2, 0);
}

Test(ring_fault, enter_eintr, .timeout = 120)
{
	run_injected(0, 0, 2);
}

Test(ring_fault, all_at_once, .timeout = 120)
{
	run_injected(-EBUSY, 2, 3);
}
