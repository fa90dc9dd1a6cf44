/* SPDX-License-Identifier: MIT */
/*
 * rook-resp: a small RESP (Redis protocol) server on rook_serve + streams,
 * enough for redis-benchmark -t ping,set,get: PING, SET key value, GET key
 * (and an empty reply to CONFIG, which redis-benchmark sends first).
 *   rook-resp [--port N] [--workers N]   (default 6379, one worker per core)
 * The store is a fixed hash table under one pthread mutex per bucket: the
 * critical sections are a memcpy, no blocking call is made inside them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <rook.h>

#define BUCKETS 4096
#define ARGS    4
#define ARG_MAX 4096

struct entry {
	struct entry *e_next;
	size_t e_klen, e_vlen;
	char *e_val;
	char e_key[];
};

static struct bucket {
	pthread_mutex_t b_lock;
	struct entry *b_head;
} table[BUCKETS];

static struct bucket *bucket_of(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return &table[h % BUCKETS];
}

static int set(const char *k, size_t kl, const char *v, size_t vl)
{
	struct bucket *b = bucket_of(k, kl);
	char *nv = malloc(vl ? vl : 1);
	if (!nv)
		return -ENOMEM;
	memcpy(nv, v, vl);
	pthread_mutex_lock(&b->b_lock);
	struct entry *e = b->b_head;
	while (e && (e->e_klen != kl || memcmp(e->e_key, k, kl)))
		e = e->e_next;
	if (!e && (e = malloc(sizeof(*e) + kl))) {
		*e = (struct entry){.e_next = b->b_head, .e_klen = kl};
		memcpy(e->e_key, k, kl);
		b->b_head = e;
	}
	char *old = e ? e->e_val : nv;
	if (e)
		e->e_val = nv, e->e_vlen = vl;
	pthread_mutex_unlock(&b->b_lock);
	free(old);
	return e ? 0 : -ENOMEM;
}

/* GET: the reply written into out (a bulk string or nil). */
static int get(const char *k, size_t kl, char *out, size_t cap)
{
	struct bucket *b = bucket_of(k, kl);
	int n;
	pthread_mutex_lock(&b->b_lock);
	struct entry *e = b->b_head;
	while (e && (e->e_klen != kl || memcmp(e->e_key, k, kl)))
		e = e->e_next;
	if (!e || e->e_vlen + 32 > cap)
		n = snprintf(out, cap, "$-1\r\n");
	else {
		n = snprintf(out, cap, "$%zu\r\n", e->e_vlen);
		memcpy(out + n, e->e_val, e->e_vlen);
		memcpy(out + n + e->e_vlen, "\r\n", 2);
		n += (int)e->e_vlen + 2;
	}
	pthread_mutex_unlock(&b->b_lock);
	return n;
}

/* One command: *N then N bulk strings. The count read, 0 at EOF, -errno. */
static int read_command(struct rook_stream *s, char args[ARGS][ARG_MAX], size_t *len)
{
	char line[64];
	ssize_t r = rook_stream_readline(s, line, sizeof(line));
	if (r <= 0)
		return (int)r;
	if (line[0] != '*') { /* an inline command: the word alone (PING) */
		len[0] = strcspn(line, " \r\n");
		memcpy(args[0], line, len[0]);
		return 1;
	}
	int n = atoi(line + 1);
	if (n < 1 || n > ARGS)
		return -EPROTO;
	for (int i = 0; i < n; i++) {
		if ((r = rook_stream_readline(s, line, sizeof(line))) <= 0)
			return r ? (int)r : -EPIPE;
		long l = line[0] == '$' ? atol(line + 1) : -1;
		if (l < 0 || l + 2 > ARG_MAX)
			return -EPROTO;
		if ((r = rook_stream_read_exactly(s, args[i], (size_t)l + 2)) < 0)
			return (int)r;
		len[i] = (size_t)l;
	}
	return n;
}

static int conn(int fd, const struct sockaddr *peer, void *arg)
{
	char out[ARG_MAX + 32], a[ARGS][ARG_MAX];
	size_t len[ARGS];
	struct rook_stream *s;
	int n;
	(void)peer, (void)arg;
	if (rook_stream_open(&s, fd, 0) < 0)
		return rook_close(fd), 0;
	while ((n = read_command(s, a, len)) > 0) {
		const char *rep = out;
		int rl;
		if (strncasecmp(a[0], "PING", 4) == 0 && len[0] == 4)
			rep = "+PONG\r\n", rl = 7;
		else if (strncasecmp(a[0], "SET", 3) == 0 && len[0] == 3 && n == 3)
			rep = set(a[1], len[1], a[2], len[2]) == 0 ? "+OK\r\n" : "-ERR oom\r\n",
			rl = (int)strlen(rep);
		else if (strncasecmp(a[0], "GET", 3) == 0 && len[0] == 3 && n == 2)
			rl = get(a[1], len[1], out, sizeof(out));
		else if (strncasecmp(a[0], "CONFIG", 6) == 0)
			rep = "*0\r\n", rl = 4;
		else
			rep = "-ERR unknown command\r\n", rl = (int)strlen(rep);
		if (rook_stream_write(s, rep, (size_t)rl) < 0)
			break;
		/* Pipelined commands wait in the buffer: flush when it runs dry. */
		if (rook_stream_flush(s) < 0)
			break;
	}
	rook_stream_close(s);
	return 0;
}

static int main_task(void *arg)
{
	const char *sh = getenv("RESP_SHARED");
	struct rook_serve_opts o = {.port = (uint16_t)(uintptr_t)arg,
				    .flags = sh && *sh == '1' ? ROOK_SERVE_SHARED : 0};
	return rook_serve(&o, conn, NULL);
}

int main(int argc, char **argv)
{
	unsigned port = 6379, workers = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0)
			port = (unsigned)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--workers") == 0)
			workers = (unsigned)atoi(argv[i + 1]);
	}
	for (int i = 0; i < BUCKETS; i++)
		pthread_mutex_init(&table[i].b_lock, NULL);
	struct rook_config cfg = {.workers = workers};
	int r = rook_run(&cfg, main_task, (void *)(uintptr_t)port);
	fprintf(stderr, "rook-resp: %s\n", strerror(-r));
	return 1;
}
