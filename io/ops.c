/* SPDX-License-Identifier: MIT */
/*
 * The public IO calls (rook.h, "IO"). Each checks its arguments, describes
 * the operation as a struct rook__io_req and hands it to the backend
 * (backend.h), which suspends the task until the kernel completes it. The
 * composite calls (read_full, write_full, tcp_listen, tcp_connect) are
 * built on the simple ones; name resolution runs on the blocking pool.
 *
 * Buffered writes to regular files are the backend's choice: the io_uring
 * backend does them inline, because io_uring would punt every one of them
 * to a kernel thread on ext4 (io/uring.c, write_inline, has the profile and
 * the measurements against io_uring, the blocking pool and Go). Reads from
 * the page cache complete inline in io_uring itself (file_io read phase:
 * 0.08-0.10 s for 1 GiB vs Go's 0.10-0.12 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rook.h>

#include "io/backend.h"

/* Linux's MAX_RW_COUNT: the most one read or write moves. */
#define MAX_RW ((size_t)0x7ffff000)

static size_t clamp_len(size_t len)
{
	return len > MAX_RW ? MAX_RW : len;
}

static ssize_t rw(enum rook__io_kind kind, int fd, const void *buf, size_t len, int64_t off)
{
	if (!buf && len)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = kind,
				  .r_fd = fd,
				  .r_buf = (void *)buf,
				  .r_len = clamp_len(len),
				  .r_off = off < 0 ? -1 : off};
	return rook__io_submit(&rq);
}

ssize_t rook_read(int fd, void *buf, size_t len, int64_t off)
{
	return rw(ROOK__IO_READ, fd, buf, len, off);
}

ssize_t rook_write(int fd, const void *buf, size_t len, int64_t off)
{
	return rw(ROOK__IO_WRITE, fd, buf, len, off);
}

static ssize_t rwv(enum rook__io_kind kind, int fd, const struct iovec *iov, int cnt, int64_t off)
{
	if (cnt < 0 || cnt > IOV_MAX || (!iov && cnt))
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = kind,
				  .r_fd = fd,
				  .r_buf = (void *)iov,
				  .r_len = (size_t)cnt,
				  .r_off = off < 0 ? -1 : off};
	return rook__io_submit(&rq);
}

ssize_t rook_readv(int fd, const struct iovec *iov, int cnt, int64_t off)
{
	return rwv(ROOK__IO_READV, fd, iov, cnt, off);
}

ssize_t rook_writev(int fd, const struct iovec *iov, int cnt, int64_t off)
{
	return rwv(ROOK__IO_WRITEV, fd, iov, cnt, off);
}

int rook_open(const char *path, int flags, mode_t mode)
{
	if (!path)
		return -EINVAL;
	struct rook__io_req rq = {
	    .r_kind = ROOK__IO_OPEN, .r_path = path, .r_flags = flags, .r_mode = mode};
	return rook__io_submit(&rq);
}

int rook_close(int fd)
{
	if (!rook_self())
		return -EPERM;
	if (fd < 0)
		return -EBADF;
	rook__io_cancel_fd(fd);
	struct rook__io_req rq = {.r_kind = ROOK__IO_CLOSE, .r_fd = fd};
	return rook__io_submit(&rq);
}

int rook_fsync(int fd)
{
	struct rook__io_req rq = {.r_kind = ROOK__IO_FSYNC, .r_fd = fd};
	return rook__io_submit(&rq);
}

int rook_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (addr && !len)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = ROOK__IO_ACCEPT,
				  .r_fd = fd,
				  .r_addr = addr,
				  .r_addrlen = len,
				  .r_flags = SOCK_CLOEXEC};
	return rook__io_submit(&rq);
}

int rook_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (!addr)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = ROOK__IO_CONNECT,
				  .r_fd = fd,
				  .r_addr = (struct sockaddr *)addr,
				  .r_alen = len};
	return rook__io_submit(&rq);
}

static ssize_t xfer(enum rook__io_kind kind, int fd, const void *buf, size_t len, int flags)
{
	if (!buf && len)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = kind,
				  .r_fd = fd,
				  .r_buf = (void *)buf,
				  .r_len = clamp_len(len),
				  .r_flags = flags};
	return rook__io_submit(&rq);
}

ssize_t rook_recv(int fd, void *buf, size_t len, int flags)
{
	return xfer(ROOK__IO_RECV, fd, buf, len, flags);
}

ssize_t rook_send(int fd, const void *buf, size_t len, int flags)
{
	return xfer(ROOK__IO_SEND, fd, buf, len, flags | MSG_NOSIGNAL);
}

int rook_poll(int fd, short events)
{
	if (events == 0)
		return -EINVAL;
	struct rook__io_req rq = {
	    .r_kind = ROOK__IO_POLL, .r_fd = fd, .r_flags = (unsigned short)events};
	return rook__io_submit(&rq);
}

ssize_t rook_read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = rook_read(fd, (char *)buf + done, len - done, -1);
		if (r == 0)
			break;
		if (r < 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

ssize_t rook_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = rook_write(fd, (const char *)buf + done, len - done, -1);
		if (r <= 0)
			return done ? (ssize_t)done : (r ? r : -EIO);
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* ---- TCP helpers -------------------------------------------------------- */

struct resolve {
	const char *rs_host;
	char rs_port[8];
	int rs_passive;
	struct addrinfo *rs_res;
};

static int gai_errno(int e, int sys_errno)
{
	switch (e) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
	case EAI_FAIL:
		return -ENOENT;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return sys_errno ? -sys_errno : -EIO;
	default:
		return -EINVAL;
	}
}

/* Runs on the blocking pool (or inline for a numeric host). */
static int resolve_fn(void *arg)
{
	struct resolve *rs = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = rs->rs_passive};
	errno = 0;
	int e = getaddrinfo(rs->rs_host, rs->rs_port, &hints, &rs->rs_res);
	return e ? gai_errno(e, errno) : 0;
}

static bool numeric_host(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return !host || inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int resolve(struct resolve *rs, const char *host, uint16_t port, bool passive)
{
	rs->rs_host = host && *host ? host : NULL;
	snprintf(rs->rs_port, sizeof(rs->rs_port), "%u", (unsigned)port);
	rs->rs_passive =
	    (passive ? AI_PASSIVE : 0) | (numeric_host(rs->rs_host) ? AI_NUMERICHOST : 0);
	rs->rs_res = NULL;
	if (rs->rs_passive & AI_NUMERICHOST)
		return resolve_fn(rs);
	return rook_blocking(resolve_fn, rs);
}

static int listen_on(const struct addrinfo *ai, int backlog)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

int rook_tcp_listen(const char *host, uint16_t port, int backlog)
{
	if (!rook_self())
		return -EPERM;
	struct resolve rs;
	int r = resolve(&rs, host, port, true);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (struct addrinfo *ai = rs.rs_res; ai; ai = ai->ai_next)
		if ((r = listen_on(ai, backlog)) >= 0)
			break;
	freeaddrinfo(rs.rs_res);
	return r;
}

int rook_tcp_connect(const char *host, uint16_t port)
{
	if (!host)
		return -EINVAL;
	if (!rook_self())
		return -EPERM;
	struct resolve rs;
	int r = resolve(&rs, host, port, false);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (struct addrinfo *ai = rs.rs_res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		r = rook_connect(fd, ai->ai_addr, ai->ai_addrlen);
		if (r == 0) {
			r = fd;
			break;
		}
		close(fd); /* nothing in flight on it: a plain close suffices */
		if (r == -ECANCELED || r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(rs.rs_res);
	return r;
}
