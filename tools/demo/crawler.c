/* SPDX-License-Identifier: MIT */
/*
 * crawler: a web crawler with bounded parallelism, against a site this
 * program serves itself on 127.0.0.1 (page() on rook_serve, a free port).
 * Page /p/N links home, to /p/2N+1 and /p/2N+2 (while < PAGES), and to an
 * outside page (recorded, not fetched). Each page is a task in one task
 * group, spawned by the task that found the link; a semaphore lets at most
 * PARALLEL fetch at once (asyncio.Semaphore around the aiohttp call). Every
 * distinct link is written once to OUTFILE (default: links.txt).
 */
#include <errno.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define PAGES    63 /* 2^6 - 1 */
#define PARALLEL 4
#define URL_MAX  64

static uint16_t port;
static char origin[32]; /* http://127.0.0.1:port */
static FILE *out;
static struct rook_sem *sem;          /* bounds the fetches in flight */
static struct rook_mutex *lock;       /* guards seen, nseen and out */
static struct rook_group *group;      /* every page's task */
static char seen[PAGES + 8][URL_MAX]; /* every link found */
static int nseen;
static _Atomic int pages, in_flight, max_in_flight;

/* One connection of the site: read the request head, answer, close. */
static int page(int fd, const struct sockaddr *peer, void *arg)
{
	struct rook_stream *st;
	char req[512], kids[128] = "", resp[1024];
	int n = -1;
	if (rook_stream_open(&st, fd, 1024) < 0)
		return rook_close(fd), 0;
	ssize_t r = rook_stream_read_until(st, "\r\n\r\n", 4, req, sizeof(req) - 1);
	req[r > 0 ? r : 0] = '\0';
	if (sscanf(req, "GET /p/%d ", &n) != 1 || n < 0 || n >= PAGES)
		n = -1;
	if (n >= 0 && 2 * n + 2 < PAGES) /* a full binary tree: both children or none */
		snprintf(kids, sizeof(kids), "<a href=\"/p/%d\">a</a> <a href=\"/p/%d\">b</a> ",
			 2 * n + 1, 2 * n + 2);
	int len = snprintf(resp, sizeof(resp),
			   "HTTP/1.0 200 OK\r\n\r\n<h1>page %d</h1> "
			   "<a href=\"/p/0\">home</a> %s<a href=\"http://example.com/\">away</a>\n",
			   n, kids);
	if (n < 0)
		len = snprintf(resp, sizeof(resp), "HTTP/1.0 404 Not Found\r\n\r\n");
	rook_stream_write(st, resp, (size_t)len);
	rook_stream_close(st); /* flushes: the client reads to our close */
	(void)peer, (void)arg;
	return 0;
}

static int bound; /* the site's port, stored by rook_serve (release) */

static int site(void *arg)
{
	struct rook_serve_opts o = {.host = "127.0.0.1", .backlog = 128, .bound_port = &bound};
	int r = rook_serve(&o, page, arg);
	return r == -ECANCELED ? 0 : r;
}

static int fetch(void *arg);

/* A link just found: the first time, write it out and crawl it if ours. */
static int found(const char *link, int len)
{
	const char *url = NULL;
	int rc = rook_mutex_lock(lock);
	if (rc < 0)
		return rc;
	int s = 0; /* a linear search: the site is small */
	while (s < nseen && (strncmp(seen[s], link, (size_t)len) != 0 || seen[s][len]))
		s++;
	if (s == nseen && nseen < PAGES + 8 && len < URL_MAX) {
		url = memcpy(seen[nseen++], link, (size_t)len); /* zero-filled: terminated */
		fprintf(out, "%s%s\n", url[0] == '/' ? origin : "", url);
	}
	rook_mutex_unlock(lock);
	return url && url[0] == '/' ? rook_group_spawn(group, fetch, (void *)url) : 0;
}

static int fetch(void *arg)
{
	char req[128], buf[2048];
	int rc = rook_sem_acquire(sem), fd, len;
	if (rc < 0)
		return rc;
	int now = atomic_fetch_add(&in_flight, 1) + 1, m = atomic_load(&max_in_flight);
	while (now > m && !atomic_compare_exchange_weak(&max_in_flight, &m, now))
		; /* m is reloaded by the failed exchange */
	ssize_t n = fd = rook_tcp_connect("127.0.0.1", port);
	len = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", (const char *)arg);
	if (fd >= 0) /* then read to the server's close */
		n = rook_send(fd, req, (size_t)len, 0) == len ? rook_read_full(fd, buf, 2047)
							      : -EIO;
	if (fd >= 0)
		rook_close(fd);
	atomic_fetch_sub(&in_flight, 1);
	rook_sem_release(sem);
	buf[n < 0 ? 0 : n] = '\0';
	if (n < 0 || strncmp(buf, "HTTP/1.0 200", 12) != 0)
		return n < 0 ? (int)n : -ENOENT;
	atomic_fetch_add(&pages, 1);
	for (char *p = buf; rc == 0 && (p = strstr(p, "href=\"")); p += 6)
		rc = found(p + 6, (int)strcspn(p + 6, "\""));
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *srv;
	int rc;
	if ((rc = rook_sem_create(&sem, PARALLEL, PARALLEL)) == 0 &&
	    (rc = rook_mutex_create(&lock)) == 0 && (rc = rook_group_create(&group)) == 0 &&
	    (rc = rook_spawn(&srv, site, NULL)) == 0) {
		while (!(port = (uint16_t)__atomic_load_n(&bound, __ATOMIC_ACQUIRE)) &&
		       !rook_done(srv))
			rook_sleep(ROOK_MSEC); /* rook_serve has no "listening" event */
		snprintf(origin, sizeof(origin), "http://127.0.0.1:%u", port);
		if (port && (rc = found("/p/0", 4)) == 0)
			rc = rook_group_wait(group); /* pages spawn pages: waits for all */
		printf(
		    "crawled %d pages, wrote %d distinct links to %s, at most %d fetches at once\n",
		    atomic_load(&pages), nseen, (const char *)arg, atomic_load(&max_in_flight));
		rook_cancel(srv);
		int st = 0;
		rook_join(srv, &st);
		rc = rc ? rc : st;
	}
	rook_group_destroy(group);
	rook_mutex_destroy(lock);
	rook_sem_destroy(sem);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "links.txt";
	if (!(out = fopen(path, "w")))
		return perror(path), 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = rook_run(NULL, main_task, (void *)path);
	return fclose(out) == 0 && rc == 0 ? 0 : 1;
}
