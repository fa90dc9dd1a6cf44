/* SPDX-License-Identifier: MIT */
/*
 * IO workloads (shared/bench/WORKLOADS.md): tcp_echo (server and clients in
 * this runtime, over 127.0.0.1; latency of every round trip kept for exact
 * p50/p99) and file_io (256 files x 4 MiB, one task per file, 64 KiB
 * writes, fsync, read back, checksums), plus wake_ping, the cross-worker
 * wake-up probe behind the choice of wake path in io/ring.c.
 *
 * file_io writes through rook_write (inline for these files, see
 * io/uring.c) unless ROOK_PERF_FILE_WRITE=io_uring forces the ring or
 * =blocking asks for pwrite on the blocking pool; the measurements behind
 * the default are in io/uring.c, and the write= extra says which path ran.
 * Deleting the files is left out of the timing (pr_cleanup), as the peers
 * leave it out.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/testing.h"
#include "perf/perf.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- tcp_echo --------------------------------------------------------------- */

#define ECHO_CONNS 100
#define ECHO_MSG   64

struct echo {
	uint16_t e_port;
	long e_rounds;
	uint32_t *e_lat_ns; /* ECHO_CONNS * e_rounds samples */
	_Atomic long e_bad;
};

struct echo_client {
	struct echo *c_e;
	int c_id;
};

static int echo_serve(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[16384];
	for (;;) {
		ssize_t n = rook_recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		for (ssize_t off = 0, w; off < n; off += w)
			if ((w = rook_send(fd, buf + off, (size_t)(n - off), 0)) <= 0)
				goto out;
	}
out:
	rook_close(fd);
	return 0;
}

static int echo_accept(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (int i = 0; i < ECHO_CONNS; i++) {
		int fd = rook_accept(lfd, NULL, NULL);
		if (fd < 0)
			return fd;
		int r = rook_spawn(NULL, echo_serve, (void *)(intptr_t)fd);
		if (r < 0) {
			rook_close(fd);
			return r;
		}
	}
	return 0;
}

static int echo_client(void *arg)
{
	struct echo_client *c = arg;
	struct echo *e = c->c_e;
	int fd = rook_tcp_connect("127.0.0.1", e->e_port);
	if (fd < 0)
		return fd;
	char out[ECHO_MSG], in[ECHO_MSG];
	uint32_t *lat = e->e_lat_ns + (size_t)c->c_id * (size_t)e->e_rounds;
	for (long r = 0; r < e->e_rounds; r++) {
		for (int i = 0; i < ECHO_MSG; i++)
			out[i] = (char)(c->c_id * 131 + r * 7 + i);
		uint64_t t0 = mono_ns();
		if (rook_send(fd, out, ECHO_MSG, 0) != ECHO_MSG ||
		    rook_read_full(fd, in, ECHO_MSG) != ECHO_MSG) {
			atomic_fetch_add(&e->e_bad, 1);
			break;
		}
		lat[r] = (uint32_t)(mono_ns() - t0);
		if (memcmp(in, out, ECHO_MSG) != 0)
			atomic_fetch_add(&e->e_bad, 1);
	}
	rook_close(fd);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int perf_tcp_echo(struct perf_run *run)
{
	struct echo e = {.e_rounds = run->pr_quick ? 200 : 10000};
	struct echo_client cl[ECHO_CONNS];
	struct rook_task *h[ECHO_CONNS + 1];
	size_t n = (size_t)ECHO_CONNS * (size_t)e.e_rounds;
	int lfd = rook_tcp_listen("127.0.0.1", 0, 1024);
	if (lfd < 0)
		return lfd;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	e.e_port = ntohs(a.sin_port);
	e.e_lat_ns = calloc(n, sizeof(uint32_t));
	if (!e.e_lat_ns) {
		rook_close(lfd);
		return -ENOMEM;
	}
	int rc = rook_spawn(&h[0], echo_accept, (void *)(intptr_t)lfd);
	for (int i = 0; i < ECHO_CONNS && rc == 0; i++) {
		cl[i] = (struct echo_client){.c_e = &e, .c_id = i};
		rc = rook_spawn(&h[i + 1], echo_client, &cl[i]);
	}
	if (rc == 0)
		rc = perf_join_all(h, ECHO_CONNS + 1);
	rook_close(lfd);
	run->pr_ops = n;
	perf_check(run, "tcp_echo bad round trips", atomic_load(&e.e_bad), 0);
	qsort(e.e_lat_ns, n, sizeof(uint32_t), cmp_u32);
	snprintf(run->pr_extra, sizeof(run->pr_extra), "p50_us=%.1f p99_us=%.1f",
		 e.e_lat_ns[n / 2] / 1e3, e.e_lat_ns[n * 99 / 100] / 1e3);
	free(e.e_lat_ns);
	return rc;
}

/* ---- file_io ------------------------------------------------------------------ */

#define FILES    256
#define FILE_MIB 4
#define CHUNK    (64 * 1024)

struct file_job {
	const char *f_dir;
	int f_id;
	size_t f_bytes;
	bool f_blocking;
	uint64_t f_sum_written, f_sum_read;
	int f_fd;
	const char *f_buf;
	size_t f_len;
	int64_t f_off;
};

/* Four independent multiply-xor lanes over 64-bit words (cheap, order
 * sensitive within a lane), folded at the end of each chunk. */
static uint64_t checksum(uint64_t h, const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t l[4] = {h, h ^ 1, h ^ 2, h ^ 3};
	for (size_t i = 0; i + 4 <= len / 8; i += 4)
		for (int k = 0; k < 4; k++)
			l[k] = (l[k] ^ w[i + k]) * 1099511628211ull;
	return (l[0] ^ (l[1] << 1)) + (l[2] ^ (l[3] >> 1));
}

/* The chunk's content: a per-file pattern (filled once, as the peers do)
 * with the file and chunk numbers in its first 16 bytes. */
static void fill(char *buf, int id, size_t chunk)
{
	uint64_t *w = (uint64_t *)buf;
	if (chunk == 0)
		for (size_t i = 0; i < CHUNK / 8; i++)
			w[i] = ((uint64_t)id << 40) ^ i * 0x9e3779b97f4a7c15ull;
	w[0] = (uint64_t)id;
	w[1] = (uint64_t)chunk;
}

static int pwrite_fn(void *arg)
{
	struct file_job *j = arg;
	ssize_t r = pwrite(j->f_fd, j->f_buf, j->f_len, j->f_off);
	return r < 0 ? -errno : (int)r;
}

static int file_write(void *arg)
{
	struct file_job *j = arg;
	char path[256];
	char *buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/f%03d", j->f_dir, j->f_id);
	int fd = rook_open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int rc = fd < 0 ? fd : 0;
	uint64_t h = 14695981039346656037ull;
	for (size_t off = 0; rc == 0 && off < j->f_bytes; off += CHUNK) {
		fill(buf, j->f_id, off / CHUNK);
		h = checksum(h, buf, CHUNK);
		ssize_t w;
		if (j->f_blocking) {
			j->f_fd = fd;
			j->f_buf = buf;
			j->f_len = CHUNK;
			j->f_off = (int64_t)off;
			w = rook_blocking(pwrite_fn, j);
		} else {
			w = rook_write(fd, buf, CHUNK, (int64_t)off);
		}
		if (w != CHUNK)
			rc = w < 0 ? (int)w : -EIO;
	}
	if (rc == 0)
		rc = rook_fsync(fd);
	if (fd >= 0)
		rook_close(fd);
	j->f_sum_written = h;
	free(buf);
	return rc;
}

static int file_read(void *arg)
{
	struct file_job *j = arg;
	char path[256];
	char *buf = malloc(CHUNK);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/f%03d", j->f_dir, j->f_id);
	int fd = rook_open(path, O_RDONLY | O_CLOEXEC, 0);
	int rc = fd < 0 ? fd : 0;
	uint64_t h = 14695981039346656037ull;
	for (size_t off = 0; rc == 0 && off < j->f_bytes; off += CHUNK) {
		ssize_t r = rook_read(fd, buf, CHUNK, (int64_t)off);
		if (r != CHUNK)
			rc = r < 0 ? (int)r : -EIO;
		else
			h = checksum(h, buf, CHUNK);
	}
	if (fd >= 0)
		rook_close(fd);
	j->f_sum_read = h;
	free(buf);
	return rc;
}

static struct file_job jobs[FILES];
static char file_dir[64];

/* Untimed, as the peers' deletion is: truncating 1 GiB of page cache
 * costs a third of a second. */
static void file_io_cleanup(struct perf_run *run)
{
	char path[256];
	for (int i = 0; i < FILES; i++) {
		snprintf(path, sizeof(path), "%s/f%03d", file_dir, i);
		unlink(path);
	}
	rmdir(file_dir);
}

int perf_file_io(struct perf_run *run)
{
	struct rook_task *h[FILES];
	char *dir = file_dir;
	const char *mode = getenv("ROOK_PERF_FILE_WRITE");
	bool blocking = mode && strcmp(mode, "blocking") == 0;
	bool ring = mode && strcmp(mode, "io_uring") == 0;
	size_t bytes = (size_t)FILE_MIB << 20;
	int nfiles = run->pr_quick ? 16 : FILES;
	strcpy(file_dir, "/tmp/rook-perf-file_io-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	run->pr_cleanup = file_io_cleanup;
	int want = ring ? ROOK__FILE_WRITE_RING : ROOK__FILE_WRITE_AUTO;
	int old_mode = rook__io_set_file_write_mode(want);
	unsigned long inl0 = rook__io_inline_writes();
	int rc = 0;
	uint64_t t0 = mono_ns();
	for (int i = 0; i < nfiles && rc == 0; i++) {
		jobs[i] = (struct file_job){
		    .f_dir = dir, .f_id = i, .f_bytes = bytes, .f_blocking = blocking};
		rc = rook_spawn(&h[i], file_write, &jobs[i]);
	}
	if (rc == 0)
		rc = perf_join_all(h, (size_t)nfiles);
	uint64_t t_write = mono_ns() - t0;
	for (int i = 0; i < nfiles && rc == 0; i++)
		rc = rook_spawn(&h[i], file_read, &jobs[i]);
	if (rc == 0)
		rc = perf_join_all(h, (size_t)nfiles);
	uint64_t t_read = mono_ns() - t0 - t_write;
	unsigned long inl = rook__io_inline_writes() - inl0;
	rook__io_set_file_write_mode(old_mode);
	int bad = 0;
	for (int i = 0; i < nfiles; i++)
		bad += jobs[i].f_sum_written != jobs[i].f_sum_read;
	perf_check(run, "file_io checksum mismatches", bad, 0);
	run->pr_ops = (uint64_t)nfiles * FILE_MIB * 2;
	/* write=inline only if every write was done inline (io/uring.c). */
	bool all_inline = inl == (unsigned long)nfiles * (bytes / CHUNK);
	const char *how = blocking ? "blocking_pool" : all_inline ? "inline" : "io_uring";
	snprintf(run->pr_extra, sizeof(run->pr_extra), "write_s=%.3f read_s=%.3f write=%s",
		 t_write / 1e9, t_read / 1e9, how);
	return rc;
}

/* ---- wake_ping ------------------------------------------------------------------ */

static int spin_100us(void *arg)
{
	uint64_t until = mono_ns() + 100 * 1000;
	while (mono_ns() < until)
		;
	return 0;
}

/* Each round spawns a 100 us task and joins it: the idle worker has parked
 * by then (its spin budget is 50 us), so every round wakes a parked worker
 * from the other one. ROOK_PERF_WAKE=msg_ring|eventfd picks the path. */
int perf_wake_ping(struct perf_run *run)
{
	const char *mode = getenv("ROOK_PERF_WAKE");
	int m = mode && strcmp(mode, "msg_ring") == 0 ? ROOK__WAKE_MSG_RING : ROOK__WAKE_EVENTFD;
	int old = rook__io_set_wake_mode(m);
	long n = run->pr_quick ? 1000 : 20000;
	unsigned long e0, m0, e1, m1;
	rook__io_wake_counts(&e0, &m0);
	uint64_t t0 = mono_ns();
	int rc = 0;
	for (long i = 0; i < n && rc == 0; i++) {
		struct rook_task *t;
		rc = rook_spawn(&t, spin_100us, NULL);
		if (rc == 0)
			rc = rook_join(t, NULL);
	}
	uint64_t ns = mono_ns() - t0;
	rook__io_wake_counts(&e1, &m1);
	rook__io_set_wake_mode(old);
	run->pr_ops = (uint64_t)n;
	snprintf(run->pr_extra, sizeof(run->pr_extra),
		 "wake=%s overhead_us_per_round=%.2f wakes_eventfd=%lu wakes_msg_ring=%lu",
		 m == ROOK__WAKE_MSG_RING ? "msg_ring" : "eventfd",
		 (double)ns / (double)n / 1e3 - 100.0, e1 - e0, m1 - m0);
	return rc;
}

/* ---- io_stuck ----------------------------------------------------------------- */

/*
 * rook's own (issue 11): the IO of a worker held by a task that computes
 * without yielding, with the other worker idle. Each try: a reader queues
 * rook_read on a pipe, the task it spawned just before takes its worker
 * and spins; 10 ms later a plain thread writes a byte (or, in the deadline
 * half, a 10 ms deadline passes). Reported: how late the read returned
 * after the byte (or the deadline), over the tries where the spinner did
 * run on the reader's worker (a thief may take it first). Needs 2 workers.
 */
#define STUCK_TRIES 100
#define STUCK_DELAY (10 * ROOK_MSEC)
#define STUCK_BOUND ((uint64_t)1 * ROOK_SEC) /* the spinner's longest run */

struct stuck_try {
	int s_pipe[2];
	bool s_deadline;
	pthread_t s_reader_th, s_spin_th;
	_Atomic int s_spinning, s_done;
	_Atomic uint64_t s_due_ns; /* when the byte was written / the deadline */
	uint64_t s_ret_ns;
	ssize_t s_got;
};

static int stuck_spin(void *arg)
{
	struct stuck_try *s = arg;
	s->s_spin_th = pthread_self();
	atomic_store(&s->s_spinning, 1);
	uint64_t end = mono_ns() + STUCK_BOUND;
	while (!atomic_load(&s->s_done) && mono_ns() < end)
		;
	return 0;
}

static int stuck_read(void *arg)
{
	struct stuck_try *s = arg;
	struct rook_task *t;
	int rc = rook_spawn(&t, stuck_spin, s);
	if (rc)
		return rc;
	s->s_reader_th = pthread_self();
	char b;
	if (s->s_deadline) {
		uint64_t due = rook_now() + STUCK_DELAY;
		atomic_store(&s->s_due_ns, mono_ns() + STUCK_DELAY);
		(void)rook_deadline_push(due);
	}
	s->s_got = rook_read(s->s_pipe[0], &b, 1, -1);
	s->s_ret_ns = mono_ns();
	if (s->s_deadline)
		(void)rook_deadline_pop();
	atomic_store(&s->s_done, 1);
	return rook_join(t, NULL);
}

static void *stuck_write(void *arg)
{
	struct stuck_try *s = arg;
	while (!atomic_load(&s->s_spinning))
		sched_yield();
	struct timespec ts = {0, STUCK_DELAY};
	nanosleep(&ts, NULL);
	atomic_store(&s->s_due_ns, mono_ns());
	if (write(s->s_pipe[1], "x", 1) != 1)
		atomic_store(&s->s_due_ns, 0);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Lateness of each counted try of one half, sorted; returns how many. */
static int stuck_half(struct perf_run *run, bool deadline, uint64_t *late, int tries)
{
	int n = 0;
	for (int i = 0; i < tries; i++) {
		struct stuck_try s = {.s_deadline = deadline};
		if (pipe(s.s_pipe) != 0)
			return -errno;
		pthread_t th;
		if (!deadline && pthread_create(&th, NULL, stuck_write, &s) != 0)
			return -EAGAIN;
		struct rook_task *t;
		int rc = rook_spawn(&t, stuck_read, &s);
		if (rc == 0)
			rc = rook_join(t, NULL);
		if (!deadline)
			pthread_join(th, NULL);
		close(s.s_pipe[0]);
		close(s.s_pipe[1]);
		if (rc)
			return rc;
		perf_check(run, "io_stuck read result", s.s_got, deadline ? -ETIMEDOUT : 1);
		if (pthread_equal(s.s_reader_th, s.s_spin_th))
			late[n++] = s.s_ret_ns - atomic_load(&s.s_due_ns);
	}
	qsort(late, (size_t)n, sizeof(*late), cmp_u64);
	return n;
}

int perf_io_stuck(struct perf_run *run)
{
	if (rook_workers() < 2) {
		fprintf(stderr, "io_stuck needs --threads 2 or more\n");
		return -ENOEXEC;
	}
	int tries = run->pr_quick ? 10 : STUCK_TRIES;
	uint64_t rd[STUCK_TRIES], dl[STUCK_TRIES];
	int nr = stuck_half(run, false, rd, tries);
	if (nr < 0)
		return nr;
	int nd = stuck_half(run, true, dl, tries);
	if (nd < 0)
		return nd;
	run->pr_ops = (uint64_t)(nr + nd);
	if (!nr || !nd)
		return 0;
	snprintf(run->pr_extra, sizeof(run->pr_extra),
		 "read_n=%d read_p50_ms=%.2f read_p99_ms=%.2f read_max_ms=%.2f "
		 "deadline_n=%d deadline_p50_ms=%.2f deadline_p99_ms=%.2f deadline_max_ms=%.2f",
		 nr, rd[nr / 2] / 1e6, rd[nr * 99 / 100] / 1e6, rd[nr - 1] / 1e6, nd,
		 dl[nd / 2] / 1e6, dl[nd * 99 / 100] / 1e6, dl[nd - 1] / 1e6);
	return 0;
}
