/* SPDX-License-Identifier: MIT */
/*
 * rook-echo: a TCP echo server on rook's server layer (rook_serve) and
 * streams: each connection gets a task that sends back everything it got,
 * until the peer closes. Runs until killed.
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

/* One connection, on its own task (rook_serve): echo what arrives until
 * the peer closes. The stream's read takes what is buffered or one
 * receive; each piece goes back at once (flush), as an echo must. */
static int echo_conn(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer;
	(void)arg;
	struct rook_stream *s;
	char buf[BUF_BYTES];
	if (rook_stream_open(&s, fd, BUF_BYTES) < 0) {
		rook_close(fd);
		return 0;
	}
	ssize_t n;
	while ((n = rook_stream_read(s, buf, sizeof(buf))) > 0)
		if (rook_stream_write(s, buf, (size_t)n) < 0 || rook_stream_flush(s) < 0)
			break;
	rook_stream_close(s);
	return 0;
}

static int server(void *arg)
{
	const struct opts *o = arg;
	struct rook_serve_opts so = {.host = o->o_host, .port = (uint16_t)o->o_port};
	/* Accepts on every worker; out of fds it pauses and keeps serving. */
	int r = rook_serve(&so, echo_conn, NULL);
	if (r != -ECANCELED)
		fprintf(stderr, "rook-echo: serve on port %u: %s\n", o->o_port, strerror(-r));
	return r;
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
