/* SPDX-License-Identifier: MIT */
/*
 * echo: the asyncio streams echo server and client, ported. The server is
 * rook_serve on 127.0.0.1 (a free port the kernel picks), one task per
 * connection over a stream, and runs until SIGINT or SIGTERM: then a task
 * cancels it and rook_serve drains (drain_ns): it closes the listeners and
 * lets open connections finish for up to 2 s, cancelling those still open
 * after it. Three clients each send a few lines and read them back; a fourth
 * holds its connection open, the demo sends itself SIGTERM (as Ctrl-C
 * would), and that client sends its last line after the signal: the server
 * still answers it. `echo --serve` only serves, until a signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#define CLIENTS 3
#define LINES   3
#define GRACE   (2 * ROOK_SEC)

static sigset_t stop_signals;
static int serve_only;
static struct rook_event *stopping; /* for the lingering client */
static atomic_int cancelled;        /* connections the drain bound ended */

static int handle(int fd, const struct sockaddr *peer, void *arg)
{
	(void)peer, (void)arg;
	struct rook_stream *s;
	char buf[1024];
	ssize_t n;
	int rc = rook_stream_open(&s, fd, 0);
	if (rc < 0)
		return rook_close(fd);
	while ((n = rook_stream_read(s, buf, sizeof(buf))) > 0)
		if (rook_stream_write(s, buf, (size_t)n) != n || rook_stream_flush(s) < 0)
			break;
	if (n == -ECANCELED)
		atomic_fetch_add(&cancelled, 1);
	rook_stream_close(s);
	return 0;
}

static int serve(void *arg)
{
	struct rook_serve_opts o = {
	    .host = "127.0.0.1", .bound_port = arg, .flags = ROOK_SERVE_DRAIN, .drain_ns = GRACE};
	return rook_serve(&o, handle, NULL);
}

/* Wait for a stop signal, then stop the server (it drains). */
static int stopper(void *arg)
{
	struct rook_task *srv = arg;
	int sig = rook_signal_wait(&stop_signals), st = 0;
	if (sig > 0)
		printf("got %s: closing the listener\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rook_cancel(srv);
	rook_event_set(stopping);
	rook_join(srv, &st);
	if (st != -ECANCELED)
		return st;
	if (atomic_load(&cancelled) == 0)
		printf("open connections finished\n");
	else
		printf("connections still open after 2 s: cancelled\n");
	return sig > 0 ? 0 : sig;
}

static int exchange(int fd, int id, int i)
{
	char out[64], in[64] = {0};
	int len = snprintf(out, sizeof(out), "hello %d from client %d", i, id);
	if (rook_send(fd, out, (size_t)len, 0) != len || rook_read_full(fd, in, (size_t)len) != len)
		return -EIO;
	if (memcmp(in, out, (size_t)len) != 0)
		return -EPROTO;
	printf("client %d: sent '%s', got '%s'\n", id, out, in);
	return 0;
}

static int client(void *arg)
{
	int id = (int)((intptr_t)arg >> 16), port = (int)((intptr_t)arg & 0xffff);
	int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port), rc = 0;
	if (fd < 0)
		return fd;
	for (int i = 1; i <= LINES && rc == 0; i++)
		rc = exchange(fd, id, i);
	rook_close(fd);
	return rc;
}

/* Connected before the signal, its last line goes out after it. */
static int lingering_client(void *arg)
{
	int port = (int)(intptr_t)arg;
	int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port);
	if (fd < 0)
		return fd;
	int rc = exchange(fd, CLIENTS + 1, 1);
	if (rc == 0) {
		kill(getpid(), SIGTERM);
		if ((rc = rook_event_wait(stopping)) == 0)
			rc = exchange(fd, CLIENTS + 1, 2);
	}
	rook_close(fd);
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *srv, *stop, *cl[CLIENTS], *last;
	int bound = 0, port, st[CLIENTS], rc;
	(void)arg;

	if ((rc = rook_event_create(&stopping)) < 0)
		return rc;
	if ((rc = rook_spawn(&srv, serve, &bound)) < 0 ||
	    (rc = rook_spawn(&stop, stopper, srv)) < 0)
		return rc; /* rook_run cancels what was spawned */
	while ((port = __atomic_load_n(&bound, __ATOMIC_ACQUIRE)) == 0 && !rook_done(srv))
		rook_yield();
	if (port == 0) { /* could not bind: its error */
		rook_cancel(stop);
		rook_join(srv, &rc);
		return rc;
	}
	printf("serving on 127.0.0.1:%d\n", port);
	if (!serve_only) {
		for (int i = 0; i < CLIENTS && rc == 0; i++)
			rc = rook_spawn(&cl[i], client, (void *)(((intptr_t)(i + 1) << 16) | port));
		if (rc == 0)
			rc = rook_gather(cl, CLIENTS, st);
		for (int i = 0; i < CLIENTS && rc == 0; i++)
			rc = st[i];
		if (rc == 0 &&
		    (rc = rook_spawn(&last, lingering_client, (void *)(intptr_t)port)) == 0 &&
		    (rc = rook_join(last, &st[0])) == 0)
			rc = st[0];
	}
	int stop_st = 0;
	int r = rook_join(stop, &stop_st); /* returns after a stop signal */
	if (r == 0 && stop_st == 0)
		printf("server stopped\n");
	rook_event_destroy(stopping);
	return rc ? rc : r ? r : stop_st;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	serve_only = argc > 1 && strcmp(argv[1], "--serve") == 0;
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	if (rook_signal_block(&stop_signals) < 0)
		return 1;
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
