/* SPDX-License-Identifier: MIT */
/*
 * rook-echo: a TCP echo server on rook. One task accepts; each connection
 * gets a task that receives into its own buffer and sends back everything
 * it got, until the peer closes. Runs until killed.
 *
 *   rook-echo [--port N] [--workers N] [--host ADDR]
 *     --port     TCP port (default 9000)
 *     --workers  rook workers (default 0: one per usable core)
 *     --host     address to bind (default: every address)
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rook.h>

#define BUF_BYTES 16384

struct opts {
	const char *o_host;
	unsigned o_port;
	unsigned o_workers;
};

static int echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_BYTES];
	for (;;) {
		ssize_t n = rook_recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		ssize_t off = 0;
		while (off < n) {
			ssize_t w = rook_send(fd, buf + off, (size_t)(n - off), 0);
			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	rook_close(fd);
	return 0;
}

static int server(void *arg)
{
	const struct opts *o = arg;
	int lfd = rook_tcp_listen(o->o_host, (uint16_t)o->o_port, 4096);
	if (lfd < 0) {
		fprintf(stderr, "rook-echo: listen on port %u: %s\n", o->o_port, strerror(-lfd));
		return lfd;
	}
	for (;;) {
		int fd = rook_accept(lfd, NULL, NULL);
		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			/* EMFILE and friends: keep serving, let others run. */
			rook_yield();
			continue;
		}
		int r = rook_spawn(NULL, echo_conn, (void *)(intptr_t)fd);
		if (r < 0) {
			fprintf(stderr, "rook-echo: spawn: %s\n", strerror(-r));
			rook_close(fd);
		}
	}
	rook_close(lfd);
	return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rook-echo [--port N] [--workers N] [--host ADDR]\n");
}

int main(int argc, char **argv)
{
	struct opts o = {.o_port = 9000};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool val = i + 1 < argc;
		if (strcmp(a, "--port") == 0 && val) {
			if (parse_uint(argv[++i], 65535, &o.o_port) < 0)
				goto bad;
		} else if (strcmp(a, "--workers") == 0 && val) {
			if (parse_uint(argv[++i], ROOK_MAX_WORKERS, &o.o_workers) < 0)
				goto bad;
		} else if (strcmp(a, "--host") == 0 && val) {
			o.o_host = argv[++i];
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			goto bad;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	struct rook_config cfg = {.workers = o.o_workers};
	int r = rook_run(&cfg, server, &o);
	return r < 0 ? 1 : 0;
bad:
	usage(stderr);
	return 2;
}
