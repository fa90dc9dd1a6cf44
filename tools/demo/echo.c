/* SPDX-License-Identifier: MIT */
/*
 * echo: the asyncio streams echo server and client, ported. The server
 * listens on 127.0.0.1 (a free port the kernel picks), one task per
 * connection in a task group, and runs until SIGINT or SIGTERM: then it
 * closes the listener and lets open connections finish under a 2 s
 * deadline (cancelling those still open after it). Three clients each send
 * a few lines and read them back; a fourth holds its connection open,
 * the demo sends itself SIGTERM (as Ctrl-C would), and that client sends
 * its last line after the signal: the server still answers it.
 * `echo --serve` only serves, until a signal.
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
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
static struct rook_event *listener_closed; /* for the lingering client */

static int handle(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[1024];
	ssize_t n;
	while ((n = rook_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (rook_send(fd, buf, (size_t)n, 0) != n) /* tiny writes go out whole */
			break;
	rook_close(fd);
	return 0;
}

struct server {
	int s_lfd;
	struct rook_group *s_conns;
};

static int accept_loop(void *arg)
{
	struct server *s = arg;
	for (;;) {
		int fd = rook_accept(s->s_lfd, NULL, NULL);
		if (fd < 0) /* -ECANCELED: we were told to stop */
			return fd == -ECANCELED ? 0 : fd;
		if (rook_group_spawn(s->s_conns, handle, (void *)(intptr_t)fd) < 0)
			rook_close(fd);
	}
}

/* Serve until a stop signal; then close the listener and give the open
 * connections GRACE to finish. */
static int serve(void *arg)
{
	struct server *s = arg;
	struct rook_task *acc;
	int rc = rook_group_create(&s->s_conns);
	if (rc < 0)
		return rc;
	if ((rc = rook_spawn(&acc, accept_loop, s)) == 0) {
		rc = rook_signal_wait(&stop_signals);
		if (rc > 0)
			printf("got %s: closing the listener\n",
			       rc == SIGINT ? "SIGINT" : "SIGTERM");
		rook_cancel(acc);
		int st;
		rook_join(acc, &st);
		rook_close(s->s_lfd);
		s->s_lfd = -1;
		rook_event_set(listener_closed);
		rook_deadline_push(rook_now() + GRACE);
		int w = rook_group_wait(s->s_conns);
		if (!rook_deadline_pop() && w == 0)
			printf("open connections finished\n");
		else
			printf("connections still open after 2 s: cancelled\n");
		rc = rc > 0 ? 0 : rc;
	}
	rook_group_cancel(s->s_conns);
	rook_group_wait(s->s_conns);
	rook_group_destroy(s->s_conns);
	return rc;
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
		if ((rc = rook_event_wait(listener_closed)) == 0)
			rc = exchange(fd, CLIENTS + 1, 2);
	}
	rook_close(fd);
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *srv, *cl[CLIENTS], *last;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct server s = {.s_lfd = rook_tcp_listen("127.0.0.1", 0, 64)};
	int st[CLIENTS], rc;

	if (s.s_lfd < 0)
		return s.s_lfd;
	if ((rc = rook_event_create(&listener_closed)) < 0) {
		rook_close(s.s_lfd);
		return rc;
	}
	getsockname(s.s_lfd, (struct sockaddr *)&a, &alen);
	printf("serving on 127.0.0.1:%u\n", ntohs(a.sin_port));
	if ((rc = rook_spawn(&srv, serve, &s)) < 0) {
		rook_close(s.s_lfd);
		return rc;
	}
	if (!serve_only) {
		for (int i = 0; i < CLIENTS && rc == 0; i++)
			rc = rook_spawn(&cl[i], client,
					(void *)(((intptr_t)(i + 1) << 16) | ntohs(a.sin_port)));
		if (rc == 0)
			rc = rook_gather(cl, CLIENTS, st);
		for (int i = 0; i < CLIENTS && rc == 0; i++)
			rc = st[i];
		if (rc == 0 &&
		    (rc = rook_spawn(&last, lingering_client,
				     (void *)(intptr_t)ntohs(a.sin_port))) == 0 &&
		    (rc = rook_join(last, &st[0])) == 0)
			rc = st[0];
	}
	int srv_st;
	int r = rook_join(srv, &srv_st); /* returns after a stop signal */
	if (r == 0 && srv_st == 0)
		printf("server stopped\n");
	rook_event_destroy(listener_closed);
	return rc ? rc : r ? r : srv_st;
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
