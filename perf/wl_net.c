/* SPDX-License-Identifier: MIT */
/*
 * Server-layer workloads (issue 14): http_hello, HTTP/1.1 keep-alive
 * "Hello, World!" on rook_serve and streams, loaded by wrk (Debian's wrk:
 * -t1 -c100 -d5s, as ../shared/peers/io runs it against nginx, Go, Tokio);
 * idle_conns, N idle connections (RSS per connection), then one request on
 * each, every one answered. Both need no client runtime: wrk is a process,
 * the idle clients a plain thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "perf.h"

static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			    "Content-Length: 13\r\n\r\nHello, World!";

struct http {
	_Atomic long h_waiting; /* connections parked before their first request */
	_Atomic long h_served;  /* responses written */
};

/* Answer each request on fd (headers up to the blank line; no bodies, as
 * wrk sends none). Its own frame: the request buffer is touched only once
 * a request came. */
static __attribute__((noinline)) void http_serve(int fd, struct http *h)
{
	struct rook_stream *s;
	char req[4096];
	if (rook_stream_open(&s, fd, 4096) < 0) {
		rook_close(fd);
		return;
	}
	while (rook_stream_read_until(s, "\r\n\r\n", 4, req, sizeof(req)) > 0) {
		if (rook_stream_write(s, reply, sizeof(reply) - 1) < 0 || rook_stream_flush(s) < 0)
			break;
		atomic_fetch_add_explicit(&h->h_served, 1, memory_order_relaxed);
	}
	rook_stream_close(s);
}

/* One connection: wait for its first bytes with a small frame, so an idle
 * connection costs its task and one stack page. */
static int http_conn(int fd, const struct sockaddr *peer, void *arg)
{
	struct http *h = arg;
	(void)peer;
	atomic_fetch_add_explicit(&h->h_waiting, 1, memory_order_relaxed);
	int r = rook_poll(fd, POLLIN);
	atomic_fetch_sub_explicit(&h->h_waiting, 1, memory_order_relaxed);
	if (r < 0)
		rook_close(fd);
	else
		http_serve(fd, h);
	return 0;
}

struct server {
	struct http s_h;
	int s_port; /* written by rook_serve with a release store */
	unsigned s_flags;
	struct rook_task *s_task;
};

static int serve_main(void *arg)
{
	struct server *sv = arg;
	struct rook_serve_opts o = {
	    .host = NULL, .port = 0, .flags = sv->s_flags, .bound_port = &sv->s_port};
	int r = rook_serve(&o, http_conn, &sv->s_h);
	return r == -ECANCELED ? 0 : r;
}

/* Start the server task and wait for its port: the port, or -errno. */
static int server_start(struct server *sv)
{
	int r = rook_spawn(&sv->s_task, serve_main, sv);
	if (r < 0)
		return r;
	int port;
	while ((port = __atomic_load_n(&sv->s_port, __ATOMIC_ACQUIRE)) == 0) {
		if (rook_done(sv->s_task)) {
			int st = 0;
			rook_join(sv->s_task, &st);
			return st < 0 ? st : -EIO;
		}
		rook_sleep(ROOK_MSEC);
	}
	return port;
}

static void server_stop(struct server *sv, int *status)
{
	rook_cancel(sv->s_task);
	rook_join(sv->s_task, status);
}

/* ---- http_hello --------------------------------------------------------- */

struct wrk_job {
	int w_port;
	bool w_quick;
	double w_rps, w_p99_us;
	long w_requests;
	int w_errors;
};

/* wrk's "99%  1.23ms" → microseconds. */
static double to_us(const char *v)
{
	char unit[8] = "";
	double x = 0;
	if (sscanf(v, "%lf%7s", &x, unit) < 1)
		return -1;
	return strcmp(unit, "s") == 0 ? x * 1e6 : strcmp(unit, "ms") == 0 ? x * 1e3 : x;
}

static int run_wrk(void *arg)
{
	struct wrk_job *j = arg;
	char cmd[256], line[512];
	snprintf(cmd, sizeof(cmd), "wrk -t1 -c100 -d%s --latency http://127.0.0.1:%d/ 2>&1",
		 j->w_quick ? "1s" : "5s", j->w_port);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -errno;
	while (fgets(line, sizeof(line), p)) {
		char *v;
		if ((v = strstr(line, "Requests/sec:")))
			j->w_rps = strtod(v + 13, NULL);
		else if ((v = strstr(line, " 99%")))
			j->w_p99_us = to_us(v + 4);
		else if ((v = strstr(line, " requests in ")))
			j->w_requests = strtol(line, NULL, 10);
		else if (strstr(line, "Socket errors") || strstr(line, "Non-2xx"))
			j->w_errors++;
	}
	int st = pclose(p);
	return st == 0 ? 0 : -EIO;
}

int perf_http_hello(struct perf_run *run)
{
	if (system("command -v wrk >/dev/null 2>&1") != 0) {
		fprintf(stderr, "http_hello needs wrk (apt-get install wrk)\n");
		return -ENOEXEC;
	}
	struct server sv = {0};
	int port = server_start(&sv);
	if (port < 0)
		return port;
	struct wrk_job j = {.w_port = port, .w_quick = run->pr_quick};
	int r = rook_blocking(run_wrk, &j), st = 0;
	server_stop(&sv, &st);
	if (r < 0)
		return r;
	run->pr_ops = (uint64_t)j.w_requests;
	perf_check(run, "http_hello socket errors or non-2xx", j.w_errors, 0);
	perf_check(run, "http_hello responses = requests",
		   atomic_load(&sv.s_h.h_served) >= j.w_requests, 1);
	snprintf(run->pr_extra, sizeof(run->pr_extra), "wrk_rps=%.0f p99_us=%.0f", j.w_rps,
		 j.w_p99_us);
	return st;
}

/* ---- idle_conns ----------------------------------------------------------- */

struct idle {
	int i_port;
	long i_n, i_connected, i_answered;
	int i_err;
	int *i_fds;
	_Atomic int i_phase; /* 1 all connected, 2 measured: send, 3 done */
};

static long rss_kib(void)
{
	long size = 0, pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(f);
	}
	return pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Connections queued, not yet accepted, on the listeners of port (the
 * rx_queue of a LISTEN row in /proc/net/tcp*), or -1 if none is listed. */
struct backlog {
	int b_port;
	long b_queued;
};

static int backlog_read(void *arg)
{
	struct backlog *b = arg;
	const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	char line[512];
	b->b_queued = -1;
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			char local[64];
			unsigned st, port;
			unsigned long txq, rxq;
			if (sscanf(line, "%*d: %63s %*s %x %lx:%lx", local, &st, &txq, &rxq) != 4 ||
			    st != 0x0A)
				continue;
			char *colon = strrchr(local, ':');
			if (!colon || sscanf(colon + 1, "%x", &port) != 1 || (int)port != b->b_port)
				continue;
			b->b_queued = (b->b_queued < 0 ? 0 : b->b_queued) + (long)rxq;
		}
		fclose(f);
	}
	return 0;
}

/* The clients: a plain thread with blocking sockets, spread over four
 * loopback addresses (each has its own ~28,000 ephemeral ports). */
static void *idle_clients(void *arg)
{
	struct idle *c = arg;
	for (long i = 0; i < c->i_n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->i_port)};
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)(i % 4));
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			c->i_err = errno;
			if (fd >= 0)
				close(fd);
			break;
		}
		c->i_fds[c->i_connected++] = fd;
	}
	atomic_store(&c->i_phase, 1);
	while (atomic_load(&c->i_phase) < 2)
		usleep(1000);
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	for (long i = 0; i < c->i_connected; i++)
		if (write(c->i_fds[i], req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
			c->i_err = errno;
	char buf[sizeof(reply)];
	for (long i = 0; i < c->i_connected; i++) {
		size_t got = 0;
		while (got < sizeof(reply) - 1) {
			ssize_t r = read(c->i_fds[i], buf + got, sizeof(reply) - 1 - got);
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		if (got == sizeof(reply) - 1 && memcmp(buf, reply, got) == 0)
			c->i_answered++;
		close(c->i_fds[i]);
	}
	atomic_store(&c->i_phase, 3);
	return NULL;
}

int perf_idle_conns(struct perf_run *run)
{
	const char *env = getenv("IDLE_CONNS");
	long n = env ? atol(env) : run->pr_quick ? 1000 : 10000;
	struct rlimit rl;
	rlim_t want = (rlim_t)(2 * n + 256);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		struct rlimit up = {want, rl.rlim_max > want ? rl.rlim_max : want};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0) /* root may pass the hard limit */
			rl = up;
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < want)
			n = ((long)rl.rlim_cur - 256) / 2; /* as many as the fd limit allows */
	}
	/* IDLE_DEFER=0: a task per connection from the start (no DEFER). */
	const char *d = getenv("IDLE_DEFER");
	bool defer = !d || strcmp(d, "0") != 0;
	struct server sv = {.s_flags = defer ? ROOK_SERVE_DEFER : 0};
	int port = server_start(&sv);
	if (port < 0)
		return port;
	struct idle c = {.i_port = port, .i_n = n, .i_fds = calloc((size_t)n, sizeof(int))};
	if (!c.i_fds)
		return -ENOMEM;
	rook_sleep(10 * ROOK_MSEC); /* the accept loops are parked */
	long before = rss_kib();
	pthread_t th;
	if (pthread_create(&th, NULL, idle_clients, &c) != 0) {
		free(c.i_fds);
		return -EAGAIN;
	}
	/* Every connection accepted: parked in its first wait, or (DEFER) in
	 * the server's deferred set with nothing left in the listen queue. */
	while (atomic_load(&c.i_phase) < 1)
		rook_sleep(ROOK_MSEC);
	for (struct backlog b = {.b_port = port};;) {
		if (!defer &&
		    atomic_load_explicit(&sv.s_h.h_waiting, memory_order_relaxed) >= c.i_connected)
			break;
		if (defer && rook_blocking(backlog_read, &b) == 0 && b.b_queued == 0)
			break;
		rook_sleep(10 * ROOK_MSEC);
	}
	rook_sleep(200 * ROOK_MSEC); /* let the stack trim settle (sched/stack.c) */
	long after = rss_kib();
	atomic_store(&c.i_phase, 2);
	while (atomic_load(&c.i_phase) < 3)
		rook_sleep(ROOK_MSEC);
	pthread_join(th, NULL);
	int st = 0;
	server_stop(&sv, &st);
	free(c.i_fds);
	run->pr_ops = (uint64_t)c.i_connected;
	perf_check(run, "idle_conns connected", c.i_connected, n);
	perf_check(run, "idle_conns answered", c.i_answered, c.i_connected);
	snprintf(run->pr_extra, sizeof(run->pr_extra), "conns=%ld rss_per_conn_b=%.0f defer=%d", n,
		 c.i_connected ? (double)(after - before) * 1024.0 / (double)c.i_connected : 0.0,
		 defer);
	return st;
}
