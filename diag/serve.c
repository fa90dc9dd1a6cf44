/* SPDX-License-Identifier: MIT */
/*
 * ROOK_STATS_SOCKET=path (diag.h): one thread per runtime accepts on a
 * unix socket and writes the runtime's metrics as Prometheus text to each
 * connection, then closes it: what tools/rook-top reads once a second. A
 * plain thread, not a task, so it answers while every worker is stuck.
 * Stopped by shutting the listening socket down (accept then fails).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rook.h>

#include "diag/diag.h"
#include "sched/alloc.h"
#include "sched/cpus.h"

struct rook__serve {
	struct rook_rt *s_rt;
	int s_fd;
	pthread_t s_thread;
	struct sockaddr_un s_addr;
};

static void *serve_main(void *arg)
{
	struct rook__serve *s = arg;
	(void)pthread_setname_np(pthread_self(), "rook-stats");
	for (;;) {
		int c = accept4(s->s_fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				continue; /* this client lost; the next may do */
			return NULL;      /* shut down */
		}
		(void)rook__stats_write_rt(s->s_rt, c, ROOK_STATS_PROMETHEUS);
		close(c);
	}
}

struct rook__serve *rook__serve_start(struct rook_rt *rt)
{
	const char *path = getenv("ROOK_STATS_SOCKET");
	if (!path || !*path)
		return NULL;
	struct rook__serve *s = rook__calloc(1, sizeof(*s));
	const char *why = "no memory";
	if (!s)
		goto fail;
	why = "path too long";
	if (strlen(path) >= sizeof(s->s_addr.sun_path))
		goto fail;
	s->s_rt = rt;
	s->s_addr.sun_family = AF_UNIX;
	strcpy(s->s_addr.sun_path, path);
	s->s_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	why = strerror(errno);
	if (s->s_fd < 0)
		goto fail;
	(void)unlink(path); /* a socket left by an earlier run */
	if (bind(s->s_fd, (struct sockaddr *)&s->s_addr, sizeof(s->s_addr)) < 0 ||
	    listen(s->s_fd, 8) < 0) {
		why = strerror(errno);
		close(s->s_fd);
		goto fail;
	}
	/* The thread takes no signal meant for the application. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	rook__cpus_attr(&attr);
	int r = pthread_create(&s->s_thread, &attr, serve_main, s);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0) {
		why = strerror(r);
		close(s->s_fd);
		unlink(path);
		goto fail;
	}
	return s;
fail:
	fprintf(stderr, "rook: ROOK_STATS_SOCKET: cannot serve on %s (%s)\n", path, why);
	rook__free(s);
	return NULL;
}

void rook__serve_stop(struct rook__serve *s)
{
	if (!s)
		return;
	shutdown(s->s_fd, SHUT_RDWR); /* wakes the accept */
	pthread_join(s->s_thread, NULL);
	close(s->s_fd);
	unlink(s->s_addr.sun_path);
	rook__free(s);
}
