/* SPDX-License-Identifier: MIT */
/*
 * echo: the asyncio streams echo server and client, ported. The server
 * listens on 127.0.0.1 (a free port the kernel picks), one task per
 * connection; three clients each send a few lines and read them back.
 * When the clients are done, the server task is cancelled.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rook.h>

#define CLIENTS 3
#define LINES   3

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

static int serve(void *arg)
{
	int lfd = *(const int *)arg;
	for (;;) {
		int fd = rook_accept(lfd, NULL, NULL);
		if (fd < 0) /* -ECANCELED: we were told to stop */
			return fd == -ECANCELED ? 0 : fd;
		if (rook_spawn(NULL, handle, (void *)(intptr_t)fd) < 0)
			rook_close(fd);
	}
}

static int client(void *arg)
{
	int id = (int)((intptr_t)arg >> 16), port = (int)((intptr_t)arg & 0xffff);
	int fd = rook_tcp_connect("127.0.0.1", (uint16_t)port), rc = 0;
	if (fd < 0)
		return fd;
	for (int i = 1; i <= LINES && rc == 0; i++) {
		char out[64], in[64] = {0};
		int len = snprintf(out, sizeof(out), "hello %d from client %d", i, id);
		if (rook_send(fd, out, (size_t)len, 0) != len ||
		    rook_read_full(fd, in, (size_t)len) != len)
			rc = -EIO;
		else if (memcmp(in, out, (size_t)len) != 0)
			rc = -EPROTO;
		else
			printf("client %d: sent '%s', got '%s'\n", id, out, in);
	}
	rook_close(fd);
	return rc;
}

static int main_task(void *arg)
{
	struct rook_task *srv, *cl[CLIENTS];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int st[CLIENTS], rc, lfd = rook_tcp_listen("127.0.0.1", 0, 64);

	if (lfd < 0)
		return lfd;
	getsockname(lfd, (struct sockaddr *)&a, &alen);
	printf("serving on 127.0.0.1:%u\n", ntohs(a.sin_port));
	rc = rook_spawn(&srv, serve, &lfd);
	for (int i = 0; i < CLIENTS && rc == 0; i++)
		rc = rook_spawn(&cl[i], client,
				(void *)(((intptr_t)(i + 1) << 16) | ntohs(a.sin_port)));
	if (rc == 0)
		rc = rook_gather(cl, CLIENTS, st);
	for (int i = 0; i < CLIENTS && rc == 0; i++)
		rc = st[i];
	if (rc == 0) {
		rook_cancel(srv); /* server.close() */
		rc = rook_join(srv, NULL);
		printf("server stopped\n");
	}
	rook_close(lfd); /* on an error path rook_run cancels the rest */
	return rc;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	return rook_run(NULL, main_task, NULL) == 0 ? 0 : 1;
}
