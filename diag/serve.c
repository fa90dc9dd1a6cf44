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
#include <sys/stat.h>
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
	dev_t s_dev; /* the socket file we made: removed at stop only if */
	ino_t s_ino; /* the path still names it */
};

/* May path be taken over? Only a socket nobody listens on (left by an
 * earlier run): never a regular file, never another runtime's socket. 0,
 * or why not. */
static const char *path_free(const struct sockaddr_un *a)
{
	struct stat st;
	if (lstat(a->sun_path, &st) < 0)
		return errno == ENOENT ? NULL : strerror(errno);
	if (!S_ISSOCK(st.st_mode))
		return "it exists and is not a socket";
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return strerror(errno);
	int r = connect(fd, (const struct sockaddr *)a, sizeof(*a));
	int e = errno;
	close(fd);
	if (r == 0)
		return "another runtime or process serves on it";
	/* Only ECONNREFUSED says nobody listens: EACCES, for one, is another
	 * user's live socket. */
	if (e != ECONNREFUSED)
		return strerror(e);
	(void)unlink(a->sun_path); /* a socket left by an earlier run */
	return NULL;
}

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
	if ((why = path_free(&s->s_addr))) {
		close(s->s_fd);
		goto fail;
	}
	struct stat st;
	if (bind(s->s_fd, (struct sockaddr *)&s->s_addr, sizeof(s->s_addr)) < 0 ||
	    listen(s->s_fd, 8) < 0 || stat(path, &st) < 0) {
		why = strerror(errno);
		close(s->s_fd);
		goto fail;
	}
	s->s_dev = st.st_dev;
	s->s_ino = st.st_ino;
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
	struct stat st;
	if (lstat(s->s_addr.sun_path, &st) == 0 && st.st_dev == s->s_dev && st.st_ino == s->s_ino)
		unlink(s->s_addr.sun_path);
	rook__free(s);
}
