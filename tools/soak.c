/* SPDX-License-Identifier: MIT */
/*
 * The soak (tools/soak.sh, tools/test.sh --soak SECONDS): an echo server on
 * rook_serve and streams, under plain-thread clients that connect, send
 * random sizes in random chunks, half-close and check every reply byte,
 * or reset (SO_LINGER 0) or vanish mid-request; beside it a task tree that
 * spawns, cancels, times out and uses groups at random. After a warm-up
 * (a fifth of the run, at most 60 s) the clients pause until every
 * connection has ended, and fds, threads and RSS are sampled; again at the
 * end. Exit 0 only with zero wrong bytes, zero bad statuses, the same fds
 * and threads (io_uring's iou-wrk threads counted apart: the kernel's),
 * and RSS growth under 5%.
 *   soak SECONDS [CLIENTS]
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

static _Atomic int port;
static _Atomic bool stop_clients, pause_clients;
static _Atomic long clients_busy; /* clients inside a connection */
static _Atomic long server_conns; /* connection tasks running */
static _Atomic long wrong_bytes, bad_status, conns_done, bytes_echoed, resets, vanished;
static _Atomic long short_replies, trees, tasks_spawned, cancels, timeouts;

/* ---- the server ---------------------------------------------------------- */

static int echo_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	(void)arg;
	atomic_fetch_add(&server_conns, 1);
	struct rook_stream *s;
	if (rook_stream_open(&s, fd, 0) < 0) {
		rook_close(fd);
		atomic_fetch_sub(&server_conns, 1);
		return 0;
	}
	char buf[16384];
	for (;;) {
		ssize_t n = rook_stream_read(s, buf, sizeof(buf));
		if (n <= 0)
			break; /* EOF (half-close), reset, cancel */
		if (rook_stream_write(s, buf, (size_t)n) != n || rook_stream_flush(s) < 0)
			break;
		atomic_fetch_add_explicit(&bytes_echoed, n, memory_order_relaxed);
	}
	rook_stream_close(s);
	atomic_fetch_sub(&server_conns, 1);
	return 0;
}

/* The port is written by rook_serve with a release store before its first
 * accept; the main task polls for it. */
static int port_watch(void *arg)
{
	int *p = arg;
	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) == 0)
		rook_sleep(ROOK_MSEC);
	atomic_store(&port, *p);
	return 0;
}

/* ---- the clients (plain threads, blocking-free with poll) --------------- */

static uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static uint8_t byte_at(uint64_t seed, size_t i)
{
	uint64_t x = seed ^ (i * 0x9E3779B97F4A7C15ull);
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 32);
}

enum { NORMAL, RESET, VANISH };

static void one_conn(uint64_t *rng)
{
	uint64_t r = xs(rng);
	int kind = r % 100 < 70 ? NORMAL : r % 100 < 85 ? RESET : VANISH;
	size_t size = 1 + xs(rng) % (r % 7 == 0 ? 1u << 20 : 1u << 15);
	uint64_t seed = xs(rng);
	size_t stop_at = kind == NORMAL ? size : xs(rng) % (size + 1);

	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	char out[65536], in[65536];
	size_t sent = 0, got = 0;
	bool wr_done = false;
	for (;;) {
		if (sent >= stop_at && kind != NORMAL)
			break;
		if (sent == size && !wr_done) {
			shutdown(fd, SHUT_WR); /* half-close: the server sees EOF */
			wr_done = true;
		}
		struct pollfd pf = {.fd = fd, .events = POLLIN | (wr_done ? 0 : POLLOUT)};
		if (poll(&pf, 1, 10000) <= 0) {
			atomic_fetch_add(&short_replies, 1); /* 10 s without progress */
			break;
		}
		if (!wr_done && (pf.revents & POLLOUT)) {
			size_t chunk = 1 + xs(rng) % sizeof(out);
			size_t lim = (kind == NORMAL ? size : stop_at) - sent;
			if (chunk > lim)
				chunk = lim;
			for (size_t i = 0; i < chunk; i++)
				out[i] = (char)byte_at(seed, sent + i);
			ssize_t n = send(fd, out, chunk, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				break;
		}
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(fd, in, sizeof(in), 0);
			if (n == 0)
				break;
			if (n < 0) {
				if (errno == EAGAIN)
					continue;
				break;
			}
			for (ssize_t i = 0; i < n; i++)
				if ((uint8_t)in[i] != byte_at(seed, got + (size_t)i))
					atomic_fetch_add_explicit(&wrong_bytes, 1,
								  memory_order_relaxed);
			got += (size_t)n;
			if (got > sent)
				atomic_fetch_add(&wrong_bytes, (long)(got - sent));
		}
	}
	if (kind == NORMAL) {
		if (got != size)
			atomic_fetch_add(&short_replies, 1);
	} else if (kind == RESET) {
		struct linger l = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		atomic_fetch_add(&resets, 1);
	} else {
		atomic_fetch_add(&vanished, 1);
	}
	close(fd);
	atomic_fetch_add(&conns_done, 1);
}

static void *client_main(void *arg)
{
	uint64_t rng = 0x1234567ull + (uintptr_t)arg * 7919;
	while (!atomic_load(&stop_clients)) {
		if (atomic_load(&pause_clients)) {
			usleep(1000);
			continue;
		}
		atomic_fetch_add(&clients_busy, 1);
		if (!atomic_load(&pause_clients))
			one_conn(&rng);
		atomic_fetch_sub(&clients_busy, 1);
	}
	return NULL;
}

/* ---- the task tree -------------------------------------------------------- */

static _Thread_local uint64_t trng;
static _Atomic uint64_t tseed = 42;

static uint64_t trand(void)
{
	if (!trng)
		trng = atomic_fetch_add(&tseed, 0x9E3779B97F4A7C15ull) | 1;
	return xs(&trng);
}

static int node(void *arg);

static int leaf_work(void)
{
	switch (trand() % 4) {
	case 0:
		return rook_sleep((trand() % 2000) * 1000);
	case 1:
		for (int i = 0; i < 10; i++) {
			int r = rook_yield();
			if (r < 0)
				return r;
		}
		return 0;
	case 2:
		return rook_sleep(ROOK_SEC); /* waits for a cancel or a timeout */
	default:
		return 0;
	}
}

static bool status_ok(int st)
{
	return st == 0 || st == -ECANCELED || st == -ETIMEDOUT;
}

static int node(void *arg)
{
	intptr_t depth = (intptr_t)arg;
	if (depth == 0 || trand() % 3 == 0)
		return leaf_work();
	int kids = 1 + (int)(trand() % 4);
	int how = (int)(trand() % 3);
	if (how == 0) { /* spawn, cancel some, join all */
		struct rook_task *ts[4];
		int n = 0;
		for (; n < kids; n++) {
			if (rook_spawn(&ts[n], node, (void *)(depth - 1)) < 0)
				break;
			atomic_fetch_add_explicit(&tasks_spawned, 1, memory_order_relaxed);
		}
		if (trand() % 2)
			rook_sleep((trand() % 1000) * 1000);
		for (int i = 0; i < n; i++)
			if (trand() % 3 == 0) {
				rook_cancel(ts[i]);
				atomic_fetch_add_explicit(&cancels, 1, memory_order_relaxed);
			}
		int rc = 0;
		for (int i = 0; i < n; i++) {
			int st = 0;
			/* Our own cancel or deadline ends the join, not the
			 * child: cancel it and let it go. */
			int r = rook_join(ts[i], &st);
			if (r < 0) {
				rook_cancel(ts[i]);
				rook_detach(ts[i]);
				rc = r;
				continue;
			}
			if (!status_ok(st))
				atomic_fetch_add(&bad_status, 1);
		}
		return rc;
	}
	if (how == 1) { /* wait_for with a short timeout */
		int st = 0;
		int r = rook_wait_for(node, (void *)(depth - 1), (trand() % 3000) * 1000, &st);
		atomic_fetch_add_explicit(&tasks_spawned, 1, memory_order_relaxed);
		if (r == -ETIMEDOUT)
			atomic_fetch_add_explicit(&timeouts, 1, memory_order_relaxed);
		else if (r == 0 && !status_ok(st))
			atomic_fetch_add(&bad_status, 1);
		else if (r != 0 && r != -ECANCELED)
			atomic_fetch_add(&bad_status, 1);
		return r == -ETIMEDOUT ? 0 : r;
	}
	/* a group, maybe cancelled */
	struct rook_group *g;
	if (rook_group_create(&g) < 0)
		return 0;
	for (int i = 0; i < kids; i++)
		if (rook_group_spawn(g, node, (void *)(depth - 1)) == 0)
			atomic_fetch_add_explicit(&tasks_spawned, 1, memory_order_relaxed);
	if (trand() % 2) {
		rook_sleep((trand() % 1000) * 1000);
		rook_group_cancel(g);
		atomic_fetch_add_explicit(&cancels, 1, memory_order_relaxed);
	}
	int r = rook_group_wait(g);
	if (!status_ok(r))
		atomic_fetch_add(&bad_status, 1);
	void *a;
	int st;
	while (rook_group_next(g, &a, &st) == 0)
		if (!status_ok(st))
			atomic_fetch_add(&bad_status, 1);
	rook_group_destroy(g);
	return r == -ETIMEDOUT ? 0 : r;
}

static int chaos_main(void *arg)
{
	(void)arg;
	for (;;) {
		int st = 0;
		int r = rook_wait_for(node, (void *)(intptr_t)4, 50 * ROOK_MSEC, &st);
		atomic_fetch_add_explicit(&trees, 1, memory_order_relaxed);
		if (r == -ECANCELED)
			return 0; /* the soak is over */
		if (r != 0 && r != -ETIMEDOUT)
			atomic_fetch_add(&bad_status, 1);
	}
}

/* ---- measurement ---------------------------------------------------------- */

struct sample {
	long fds, threads, iou_threads, rss_kb;
};

static void sample_take(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			s->fds++;
	if (d) {
		closedir(d);
		s->fds--; /* the directory itself */
	}
	d = opendir("/proc/self/task");
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], comm[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = 0;
			fclose(f);
		}
		if (strncmp(comm, "iou-", 4) == 0)
			s->iou_threads++;
		else
			s->threads++;
	}
	if (d)
		closedir(d);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &s->rss_kb) == 1)
			break;
	if (f)
		fclose(f);
}

/* Pause the clients and wait until no connection is open on either side. */
static int quiesce(struct sample *s)
{
	atomic_store(&pause_clients, true);
	for (int i = 0; i < 30000; i++) {
		if (atomic_load(&clients_busy) == 0 && atomic_load(&server_conns) == 0)
			break;
		rook_sleep(ROOK_MSEC);
	}
	rook_sleep(100 * ROOK_MSEC); /* closes in flight settle */
	sample_take(s);
	return atomic_load(&server_conns) == 0 && atomic_load(&clients_busy) == 0 ? 0 : -1;
}

static long seconds = 60;
static bool passed;
static int nclients = 8;

static void report(const char *what, double t, const struct sample *s)
{
	printf("soak: %-8s t=%6.0fs fds=%ld threads=%ld iou_wrk=%ld rss_kib=%ld conns=%ld "
	       "echoed_mib=%.1f resets=%ld vanished=%ld wrong_bytes=%ld short=%ld trees=%ld "
	       "tasks=%ld cancels=%ld timeouts=%ld bad_status=%ld\n",
	       what, t, s->fds, s->threads, s->iou_threads, s->rss_kb, atomic_load(&conns_done),
	       (double)atomic_load(&bytes_echoed) / (1 << 20), atomic_load(&resets),
	       atomic_load(&vanished), atomic_load(&wrong_bytes), atomic_load(&short_replies),
	       atomic_load(&trees), atomic_load(&tasks_spawned), atomic_load(&cancels),
	       atomic_load(&timeouts), atomic_load(&bad_status));
	fflush(stdout);
}

/* The server with its port published through a static. */
static int bound_port_v;

static int server2(void *arg)
{
	(void)arg;
	struct rook_serve_opts o = {.host = "127.0.0.1", .bound_port = &bound_port_v};
	int r = rook_serve(&o, echo_conn, NULL);
	return r == -ECANCELED ? 0 : r;
}

static int main_task(void *arg)
{
	(void)arg;
	struct rook_task *srv, *chaos;
	if (rook_spawn(&srv, server2, NULL) < 0)
		return 1;
	port_watch(&bound_port_v);
	if (rook_spawn(&chaos, chaos_main, NULL) < 0)
		return 1;
	pthread_t th[64];
	for (int i = 0; i < nclients; i++)
		pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i);

	uint64_t t0 = rook_now();
	uint64_t warm = (uint64_t)seconds * ROOK_SEC / 5;
	if (warm > 60 * ROOK_SEC)
		warm = 60 * ROOK_SEC;
	rook_sleep(warm);
	struct sample base, s, end;
	int q0 = quiesce(&base);
	report("baseline", (double)(rook_now() - t0) / ROOK_SEC, &base);
	atomic_store(&pause_clients, false);
	long max_fds = base.fds, max_threads = base.threads, max_rss = base.rss_kb;
	uint64_t end_at = t0 + (uint64_t)seconds * ROOK_SEC;
	uint64_t next = rook_now() + 60 * ROOK_SEC;
	while (rook_now() < end_at) {
		uint64_t until = next < end_at ? next : end_at;
		rook_sleep(until - rook_now() < 10 * ROOK_SEC ? until - rook_now() : 10 * ROOK_SEC);
		sample_take(&s);
		if (s.fds > max_fds)
			max_fds = s.fds;
		if (s.threads > max_threads)
			max_threads = s.threads;
		if (s.rss_kb > max_rss)
			max_rss = s.rss_kb;
		if (rook_now() >= next) {
			report("running", (double)(rook_now() - t0) / ROOK_SEC, &s);
			next += 60 * ROOK_SEC;
		}
	}
	int q1 = quiesce(&end);
	report("end", (double)(rook_now() - t0) / ROOK_SEC, &end);
	atomic_store(&stop_clients, true);
	for (int i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	rook_cancel(chaos);
	rook_cancel(srv);
	int st_c = 0, st_s = 0;
	rook_join(chaos, &st_c);
	rook_join(srv, &st_s);

	double growth = 100.0 * (double)(end.rss_kb - base.rss_kb) / (double)base.rss_kb;
	printf("soak: summary seconds=%ld clients=%d conns=%ld echoed_mib=%.1f wrong_bytes=%ld "
	       "short_replies=%ld bad_status=%ld fds %ld->%ld (max %ld while running) threads "
	       "%ld->%ld (max %ld) rss_kib %ld->%ld (%+.2f%%, max %ld) trees=%ld tasks=%ld\n",
	       seconds, nclients, atomic_load(&conns_done),
	       (double)atomic_load(&bytes_echoed) / (1 << 20), atomic_load(&wrong_bytes),
	       atomic_load(&short_replies), atomic_load(&bad_status), base.fds, end.fds, max_fds,
	       base.threads, end.threads, max_threads, base.rss_kb, end.rss_kb, growth, max_rss,
	       atomic_load(&trees), atomic_load(&tasks_spawned));
	bool ok = q0 == 0 && q1 == 0 && atomic_load(&wrong_bytes) == 0 &&
		  atomic_load(&short_replies) == 0 && atomic_load(&bad_status) == 0 &&
		  end.fds == base.fds && end.threads == base.threads && growth < 5.0 && st_c == 0 &&
		  st_s == 0;
	printf("soak: %s\n", ok ? "PASS" : "FAIL");
	passed = ok;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds = atol(argv[1]);
	if (argc > 2)
		nclients = atoi(argv[2]);
	if (seconds < 5 || nclients < 1 || nclients > 64) {
		fprintf(stderr, "usage: soak SECONDS(>=5) [CLIENTS(1-64)]\n");
		return 2;
	}
	struct rook_config cfg = {.workers = 2};
	int r = rook_run(&cfg, main_task, NULL);
	if (r != 0)
		fprintf(stderr, "soak: rook_run: %s\n", strerror(-r));
	return r == 0 && passed ? 0 : 1;
}
