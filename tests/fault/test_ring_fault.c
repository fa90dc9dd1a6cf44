/* SPDX-License-Identifier: MIT */
/*
 * Ring and syscall error injection (io/testing.h). io_uring: submits that
 * fail with -EAGAIN, -EBUSY or -EINTR, sleeps in io_uring_enter that end
 * as if interrupted, a full SQ (injected, and a real one-entry SQ), a
 * short CQ that overflows, completions held back until after their cancel
 * (or after their cancel's own CQE), and a worker whose ring cannot be set
 * up. epoll: epoll_wait EINTR, epoll_ctl -ENOMEM/-ENOSPC, and a worker
 * whose eventfd or epoll instance cannot be made.
 *
 * Two programs on 2 workers: prog (TCP transfers both ways, positioned
 * file IO, timers) and cancels (reads under deadlines of 0-200 us while a
 * writer streams, accepts under deadlines while a client connects, reads
 * cancelled with rook_cancel). Each must move every byte exactly once and
 * in order, accept every connection exactly once, end, and leave no fd
 * behind, under each kind. An injected epoll_ctl failure may reach the
 * caller, as the call's -ENOMEM/-ENOSPC with nothing consumed: the
 * programs retry those and count them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
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

static _Atomic long retried; /* calls that failed with an injected -ENOMEM/-ENOSPC */

static bool injected_err(ssize_t r)
{
	if (r != -ENOMEM && r != -ENOSPC)
		return false;
	atomic_fetch_add_explicit(&retried, 1, memory_order_relaxed);
	return true;
}

/* rook_write_full / rook_read_full, but an injected epoll_ctl failure is
 * retried (it consumed nothing). n, or the first other error. */
static ssize_t xfer(int fd, uint8_t *p, size_t n, bool wr)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = wr ? rook_write(fd, p + done, n - done, -1)
			       : rook_read(fd, p + done, n - done, -1);
		if (r > 0)
			done += (size_t)r;
		else if (r == 0)
			break;
		else if (!injected_err(r))
			return r;
	}
	return (ssize_t)done;
}

/* Writes NBYTES and reads NBYTES from its peer, concurrently in halves. */
static int writer(void *arg)
{
	struct side *s = arg;
	uint8_t *buf = malloc(NBYTES);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < NBYTES; i++)
		buf[i] = pattern(i, s->k);
	int r = xfer(s->fd, buf, NBYTES, true) == NBYTES ? 0 : -EIO;
	free(buf);
	return r;
}

static int reader(struct side *s, int peer_k)
{
	uint8_t *buf = malloc(NBYTES);
	if (!buf)
		return -ENOMEM;
	ssize_t n = xfer(s->fd, buf, NBYTES, false);
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

/* What one run injects. The epoll_ctl failure is armed only once the
 * connections are made (a connect that fails midway would leave the
 * accept count ambiguous). */
struct inj {
	int submit_err;
	unsigned submit_every, enter_every, sq_full, cqe_late;
	unsigned ring_entries, cq_entries; /* 0: defaults */
	unsigned ep_wait, ep_ctl;
	int ep_ctl_err;
};

static const struct inj *cur;

static void arm_after_setup(void)
{
	rook__io_inject_epoll_ctl(cur->ep_ctl_err, cur->ep_ctl);
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
	arm_after_setup();
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

/* ---- cancels: completions that race their cancel --------------------------- */

#define CSTREAM (512 * 1024) /* bytes per timed stream */
#define CCONNS  300          /* connections accepted under deadlines */

struct cstats {
	_Atomic long timeouts, cancels, bad, accepted;
};

static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

struct stream {
	int fd, k;
	struct cstats *cs;
};

/* Writes the stream in chunks of 1..8 KiB. */
static int stream_write(void *arg)
{
	struct stream *s = arg;
	uint8_t chunk[8192];
	uint32_t x = 0x9e3779b9u ^ (uint32_t)s->k;
	for (size_t off = 0; off < CSTREAM;) {
		size_t n = 1 + rnd(&x) % sizeof(chunk);
		if (n > CSTREAM - off)
			n = CSTREAM - off;
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(off + i, s->k);
		if (xfer(s->fd, chunk, n, true) != (ssize_t)n)
			return -EIO;
		off += n;
	}
	return 0;
}

/* Reads the stream, every read under a deadline 0-200 us away: a read
 * whose CQE carries bytes must return them even when the deadline won. */
static int stream_read(void *arg)
{
	struct stream *s = arg;
	uint8_t buf[8192];
	uint32_t x = 0x85ebca6bu ^ (uint32_t)s->k;
	size_t off = 0;
	while (off < CSTREAM) {
		if (rook_deadline_push(rook_now() + rnd(&x) % (200 * ROOK_USEC)) != 0)
			return -ENOMEM;
		size_t want = 1 + rnd(&x) % sizeof(buf);
		if (want > CSTREAM - off)
			want = CSTREAM - off;
		ssize_t r = rook_read(s->fd, buf, want, -1);
		rook_deadline_pop();
		if (r == -ETIMEDOUT) {
			atomic_fetch_add_explicit(&s->cs->timeouts, 1, memory_order_relaxed);
			continue;
		}
		if (r == 0)
			return -EPIPE; /* the stream ended early: bytes were lost */
		if (r < 0 && injected_err(r))
			continue;
		if (r < 0)
			return (int)r;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(off + (size_t)i, s->k))
				atomic_fetch_add_explicit(&s->cs->bad, 1, memory_order_relaxed);
		off += (size_t)r;
	}
	return 0;
}

struct acc {
	int lfd, port;
	struct cstats *cs;
};

/* Accepts CCONNS connections, each accept under a deadline 0-200 us away:
 * an accept whose CQE made an fd must return it (else it leaks and the
 * count comes up short: the client made exactly CCONNS). */
static int acceptor(void *arg)
{
	struct acc *a = arg;
	uint32_t x = 0xc2b2ae35u;
	while (atomic_load_explicit(&a->cs->accepted, memory_order_relaxed) < CCONNS) {
		if (rook_deadline_push(rook_now() + rnd(&x) % (200 * ROOK_USEC)) != 0)
			return -ENOMEM;
		int fd = rook_accept(a->lfd, NULL, NULL);
		rook_deadline_pop();
		if (fd >= 0) {
			atomic_fetch_add_explicit(&a->cs->accepted, 1, memory_order_relaxed);
			rook_close(fd);
		} else if (fd == -ETIMEDOUT) {
			atomic_fetch_add_explicit(&a->cs->timeouts, 1, memory_order_relaxed);
		} else if (!injected_err(fd)) {
			return fd;
		}
	}
	return 0;
}

/* Plain blocking connects (loopback completes them in the kernel), at most
 * 64 ahead of the acceptor so the backlog never fills. */
static int connector(void *arg)
{
	struct acc *a = arg;
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)a->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	for (int i = 0; i < CCONNS; i++) {
		while (i - atomic_load_explicit(&a->cs->accepted, memory_order_relaxed) > 64)
			if (rook_yield() != 0)
				return -ECANCELED;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
		close(fd);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Reads until cancelled; returns the bytes it got, checked in order. */
struct victim {
	int fd, k;
	size_t off;
	struct cstats *cs;
};

static int victim_read(void *arg)
{
	struct victim *v = arg;
	uint8_t buf[4096];
	for (;;) {
		ssize_t r = rook_read(v->fd, buf, sizeof(buf), -1);
		if (r == -ECANCELED)
			return 0;
		if (r < 0 && injected_err(r))
			continue;
		if (r <= 0)
			return r < 0 ? (int)r : -EPIPE;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != pattern(v->off + (size_t)i, v->k))
				atomic_fetch_add_explicit(&v->cs->bad, 1, memory_order_relaxed);
		v->off += (size_t)r;
	}
}

/* A writer streams on one connection; a chain of readers takes turns, each
 * cancelled with rook_cancel after a random few yields: what one had read
 * when cancelled plus what the next reads must be the stream. */
static int relay(void *arg)
{
	struct stream *s = arg;
	struct victim v = {.fd = s->fd, .k = s->k, .cs = s->cs};
	uint32_t x = 0x27d4eb2du ^ (uint32_t)s->k;
	while (v.off < CSTREAM) {
		struct rook_task *t;
		if (rook_spawn(&t, victim_read, &v) < 0)
			return -ENOMEM;
		for (uint32_t i = rnd(&x) % 8; i > 0; i--)
			(void)rook_yield();
		/* Once the stream is all in, the last reader would wait for
		 * ever: it is cancelled as well. */
		rook_cancel(t);
		int st = 0;
		if (rook_join(t, &st) != 0)
			return -EIO;
		if (st != 0 && st != -ECANCELED) /* -ECANCELED: it never ran */
			return st;
		atomic_fetch_add_explicit(&s->cs->cancels, 1, memory_order_relaxed);
	}
	return v.off == CSTREAM ? 0 : -EBADMSG;
}

static int pair_up(int lfd, int port, int *c, int *d)
{
	*c = rook_tcp_connect("127.0.0.1", port);
	*d = rook_accept(lfd, NULL, NULL);
	return *c < 0 ? *c : *d < 0 ? *d : 0;
}

static int cancels(void *arg)
{
	struct cstats *cs = arg;
	int lfd = rook_tcp_listen("127.0.0.1", 0, 128);
	if (lfd < 0)
		return lfd;
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	getsockname(lfd, (struct sockaddr *)&a, &len);
	int port = ntohs(a.sin_port);
	int fds[4];
	int r = pair_up(lfd, port, &fds[0], &fds[1]);
	if (r == 0)
		r = pair_up(lfd, port, &fds[2], &fds[3]);
	if (r < 0)
		return r;
	arm_after_setup();
	/* fds[0] -> fds[1]: timed reads; fds[2] -> fds[3]: cancelled reads. */
	struct stream w0 = {.fd = fds[0], .k = 1, .cs = cs}, r0 = {.fd = fds[1], .k = 1, .cs = cs};
	struct stream w1 = {.fd = fds[2], .k = 2, .cs = cs}, r1 = {.fd = fds[3], .k = 2, .cs = cs};
	struct acc ac = {.lfd = lfd, .port = port, .cs = cs};
	struct rook_task *ts[6];
	rook_fn fn[6] = {stream_write, stream_read, stream_write, relay, acceptor, connector};
	void *args[6] = {&w0, &r0, &w1, &r1, &ac, &ac};
	for (int i = 0; i < 6; i++)
		if (rook_spawn(&ts[i], fn[i], args[i]) < 0)
			return -ENOMEM;
	int st[6];
	r = rook_gather(ts, 6, st);
	for (int i = 0; r == 0 && i < 6; i++)
		if (st[i] != 0)
			r = st[i];
	for (int i = 0; i < 4; i++)
		rook_close(fds[i]);
	rook_close(lfd);
	return r;
}

/* ---- the runs ---------------------------------------------------------------- */

static void arm(const struct inj *in)
{
	cur = in;
	rook__io_inject_submit(in->submit_err, in->submit_every);
	rook__io_inject_enter_eintr(in->enter_every);
	rook__io_inject_sq_full(in->sq_full);
	rook__io_inject_cqe_late(in->cqe_late);
	rook__io_force_cq_entries(in->cq_entries);
	rook__io_inject_epoll_wait_eintr(in->ep_wait);
	rook__io_inject_epoll_ctl(0, 0); /* armed after set-up */
}

static void disarm(void)
{
	static const struct inj none;
	arm(&none);
}

static bool any(const struct inj *in)
{
	return in->submit_every || in->enter_every || in->sq_full || in->cqe_late || in->ep_wait ||
	       in->ep_ctl;
}

static void run_injected(const char *name, const struct inj *in)
{
	bool ep = in->ep_wait || in->ep_ctl;
	if (ep)
		setenv("ROOK_IO", "epoll", 1); /* this test's own process */
	else if (on_epoll())
		cr_skip_test("io_uring injection (ROOK_IO=epoll)");
	else if (uring_missing())
		cr_skip_test("io_uring is not available here (io_uring_setup: ENOSYS; qemu-user "
			     "does not emulate it)");
	int fds = fd_count();
	struct rook_config cfg = {
	    .workers = 2, .flags = ROOK_NO_PIN, .ring_entries = in->ring_entries};
	unsigned long injected = rook__io_injected();
	atomic_store(&retried, 0);
	arm(in);
	long bad = 0;
	int r = rook_run(&cfg, prog, &bad);
	struct cstats cs = {0};
	rook__io_inject_epoll_ctl(0, 0); /* re-armed after the set-up */
	int rc = r == 0 ? rook_run(&cfg, cancels, &cs) : 0;
	disarm();
	unsigned long n = rook__io_injected() - injected;
	cr_assert_eq(r, 0, "%s: prog returned %d", name, r);
	cr_assert_eq(bad, 0, "%s: prog: %ld wrong bytes", name, bad);
	cr_assert_eq(rc, 0, "%s: cancels returned %d", name, rc);
	cr_assert_eq(cs.bad, 0, "%s: cancels: %ld wrong bytes", name, cs.bad);
	cr_assert_eq(cs.accepted, CCONNS, "%s: %ld of %d connections accepted", name, cs.accepted,
		     CCONNS);
	cr_assert_eq(fd_count(), fds, "%s: fds left behind", name);
	cr_assert((n > 0) == any(in), "%s: %lu failures injected", name, n);
	cr_assert(!in->ep_ctl || retried > 0, "%s: no injected epoll_ctl error reached a call",
		  name);
	cr_log_info("ring_fault %s: %lu injected, %ld calls retried, %ld timeouts, %ld cancels\n",
		    name, n, (long)retried, (long)cs.timeouts, (long)cs.cancels);
}

Test(ring_fault, none, .timeout = 120)
{
	run_injected("none", &(struct inj){0});
}

Test(ring_fault, submit_eagain, .timeout = 120)
{
	run_injected("submit_eagain", &(struct inj){.submit_err = -EAGAIN, .submit_every = 2});
}

Test(ring_fault, submit_ebusy, .timeout = 120)
{
	run_injected("submit_ebusy", &(struct inj){.submit_err = -EBUSY, .submit_every = 3});
}

Test(ring_fault, submit_eintr, .timeout = 120)
{
	run_injected("submit_eintr", &(struct inj){.submit_err = -EINTR, .submit_every = 2});
}

Test(ring_fault, enter_eintr, .timeout = 120)
{
	run_injected("enter_eintr", &(struct inj){.enter_every = 2});
}

Test(ring_fault, sq_full, .timeout = 120)
{
	run_injected("sq_full", &(struct inj){.sq_full = 2});
}

/* A real full SQ: one entry, so every second SQE flushes the first. */
Test(ring_fault, one_entry_sq, .timeout = 120)
{
	run_injected("one_entry_sq", &(struct inj){.ring_entries = 1});
}

/* A CQ of 2 entries for up to a dozen ops in flight per worker: the kernel
 * keeps the overflow (IORING_SQ_CQ_OVERFLOW) until a reap makes room. */
Test(ring_fault, short_cq_overflow, .timeout = 120)
{
	run_injected("short_cq", &(struct inj){.ring_entries = 2, .cq_entries = 2});
}

/* Every third op CQE comes after the CQEs reaped with it: after its
 * cancel's, or after the deadline or rook_cancel claimed its wait. */
Test(ring_fault, late_completions, .timeout = 120)
{
	run_injected("late_cqe", &(struct inj){.cqe_late = 3});
}

Test(ring_fault, all_at_once, .timeout = 120)
{
	run_injected("all", &(struct inj){.submit_err = -EBUSY,
					  .submit_every = 2,
					  .enter_every = 3,
					  .sq_full = 5,
					  .cqe_late = 2,
					  .ring_entries = 2,
					  .cq_entries = 2});
}

Test(ring_fault, epoll_wait_eintr, .timeout = 120)
{
	run_injected("epoll_wait_eintr", &(struct inj){.ep_wait = 2});
}

Test(ring_fault, epoll_ctl_enomem, .timeout = 120)
{
	run_injected("epoll_ctl_enomem", &(struct inj){.ep_ctl = 2, .ep_ctl_err = -ENOMEM});
}

Test(ring_fault, epoll_ctl_enospc, .timeout = 120)
{
	run_injected("epoll_ctl_enospc",
		     &(struct inj){.ep_ctl = 3, .ep_ctl_err = -ENOSPC, .ep_wait = 3});
}

/* ---- a worker that cannot be set up ------------------------------------------- */

/* One field of /proc/self/task/TID: its name ("comm") or its state
 * (the letter after the name in "stat"). */
static char task_state(const char *tid, char *comm, size_t len)
{
	char path[300], stat[512] = "";
	snprintf(path, sizeof(path), "/proc/self/task/%s/comm", tid);
	FILE *f = fopen(path, "r");
	comm[0] = 0;
	if (f) {
		if (!fgets(comm, (int)len, f))
			comm[0] = 0;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(stat, sizeof(stat), f))
			stat[0] = 0;
		fclose(f);
	}
	const char *p = strrchr(stat, ')');
	return p && p[1] == ' ' ? p[2] : 'X';
}

/* Live threads of rook's (named rook-*): not io_uring's io-wq workers
 * (iou-wrk-*, ended by the kernel on its own time), not the harness's
 * (Criterion's nanomsg thread starts lazily), and not a thread that
 * pthread_join already saw exit but /proc still lists (Z, X). */
static int thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char comm[32];
		char st = task_state(e->d_name, comm, sizeof(comm));
		n += strncmp(comm, "rook-", 5) == 0 && st != 'Z' && st != 'X';
	}
	closedir(d);
	return n;
}

/* rook's threads once the ones rook_run joined have left /proc too: a
 * joined thread is still listed, not yet a zombie, for a moment. */
static int threads_after_join(void)
{
	int n = thread_count();
	for (int i = 0; i < 5000 && n > 0; i++) {
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
		n = thread_count();
	}
	return n;
}

static int trivial(void *arg)
{
	(void)arg;
	return 7;
}

/*
 * The probe worked, but the nth worker's ring (or epoll instance, or
 * eventfd) cannot be made: the process ran short meanwhile. The runtime
 * does not fall back to epoll for that worker (the backend is one per
 * runtime: an fd's ops and rook_close's cancels go through every worker's
 * state the same way) nor for the whole runtime (the shortage would hit
 * epoll's eventfd and instance as well): rook_run fails with the errno, a
 * shortage as it is (-ENOMEM, -EMFILE, ...) and anything else as -ENOSYS,
 * after one stderr line; the workers already up stop and no thread or fd
 * is left. The next start works.
 */
static void setup_fails(int err, int want, unsigned nth, int stage, bool epoll)
{
	if (epoll)
		setenv("ROOK_IO", "epoll", 1);
	else if (on_epoll())
		cr_skip_test("io_uring set-up (ROOK_IO=epoll)");
	else if (uring_missing())
		cr_skip_test("io_uring is not available here (io_uring_setup: ENOSYS; qemu-user "
			     "does not emulate it)");
	struct rook_config cfg = {.workers = 4, .flags = ROOK_NO_PIN};
	/* A first run starts what stays for the process (a sanitizer's own
	 * thread), so the counts below compare like with like. */
	cr_assert_eq(rook_run(&cfg, trivial, NULL), 7);
	int fds = fd_count();
	cr_assert_eq(threads_after_join(), 0, "rook threads left after a run");
	unsigned long injected = rook__io_injected();
	rook__io_inject_setup(err, nth, stage);
	int r = rook_run(&cfg, trivial, NULL);
	rook__io_inject_setup(0, 0, 0);
	cr_assert_eq(rook__io_injected() - injected, 1, "err=%d nth=%u stage=%d: not injected", err,
		     nth, stage);
	cr_assert_eq(r, want, "err=%d nth=%u stage=%d: rook_run returned %d, want %d", err, nth,
		     stage, r, want);
	cr_assert_eq(fd_count(), fds, "err=%d nth=%u stage=%d: fds left behind", err, nth, stage);
	cr_assert_eq(threads_after_join(), 0, "err=%d: threads left behind", err);
	cr_assert_eq(rook_run(&cfg, trivial, NULL), 7, "the next start");
	cr_assert_eq(fd_count(), fds);
}

Test(ring_fault, ring_setup_enomem_on_third_worker, .timeout = 60)
{
	setup_fails(-ENOMEM, -ENOMEM, 3, ROOK__SETUP_BACKEND, false);
}

Test(ring_fault, ring_setup_emfile_on_first_worker, .timeout = 60)
{
	setup_fails(-EMFILE, -EMFILE, 1, ROOK__SETUP_BACKEND, false);
}

Test(ring_fault, ring_setup_eperm_on_last_worker, .timeout = 60)
{
	setup_fails(-EPERM, -ENOSYS, 4, ROOK__SETUP_BACKEND, false);
}

Test(ring_fault, eventfd_enfile_on_second_worker, .timeout = 60)
{
	setup_fails(-ENFILE, -ENFILE, 2, ROOK__SETUP_EVENTFD, false);
}

Test(ring_fault, epoll_eventfd_emfile_on_third_worker, .timeout = 60)
{
	setup_fails(-EMFILE, -EMFILE, 3, ROOK__SETUP_EVENTFD, true);
}

Test(ring_fault, epoll_create_enomem_on_fourth_worker, .timeout = 60)
{
	setup_fails(-ENOMEM, -ENOMEM, 4, ROOK__SETUP_BACKEND, true);
}
