/* SPDX-License-Identifier: MIT */
/*
 * The IO backend boundary. ops.c describes each operation as a struct
 * rook__io_req and calls rook__io_submit, which prepares it for the backend,
 * submits it, suspends the task and completes it (cancellation included).
 * The io_uring backend is uring.c (with ring.c); a readiness backend (epoll
 * plus the blocking pool for files) would implement these two functions and
 * the park point, and ops.c would not change.
 */
#ifndef ROOK_IO_BACKEND_H
#define ROOK_IO_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>

enum rook__io_kind {
	ROOK__IO_READ,
	ROOK__IO_WRITE,
	ROOK__IO_READV,
	ROOK__IO_WRITEV,
	ROOK__IO_OPEN,
	ROOK__IO_CLOSE,
	ROOK__IO_FSYNC,
	ROOK__IO_ACCEPT,
	ROOK__IO_CONNECT,
	ROOK__IO_RECV,
	ROOK__IO_SEND,
	ROOK__IO_POLL,
};

/*
 * A stream's claim on its socket (net/stream.c), zeroed at open and opaque
 * to it: with one, the epoll backend keeps a single edge-triggered
 * registration across the stream's waits instead of re-arming a oneshot
 * one per wait (a syscall per wait; perf/NOTES.md). Sound because the
 * stream owns the fd until its rook_close; io_uring ignores it.
 */
struct rook__io_own {
	const void *o_home; /* the worker whose epoll set holds it; NULL: none */
	int o_epfd;         /* that set */
	uint32_t o_closes;  /* rook_close count of the fd's bucket, when checked */
	uint64_t o_gen;     /* the registration, unique in the process */
};

struct rook__io_req {
	enum rook__io_kind r_kind;
	int r_fd;
	void *r_buf;             /* READ/RECV/WRITE/SEND buffer; READV/WRITEV iovec */
	size_t r_len;            /* bytes; iovec count for READV/WRITEV */
	int64_t r_off;           /* file offset; -1: current position */
	int r_flags;             /* open, recv/send, accept flags; poll events */
	const char *r_path;      /* OPEN */
	mode_t r_mode;           /* OPEN */
	struct sockaddr *r_addr; /* ACCEPT (out) / CONNECT (in) */
	socklen_t *r_addrlen;    /* ACCEPT */
	socklen_t r_alen;        /* CONNECT */
	/* READ/WRITE(V): the fd's fstat, taken by io/ops.c for this call (the
	 * backends reuse it rather than asking again); NULL: not known. */
	const struct stat *r_st;
	struct rook__io_own *r_own; /* RECV/SEND/POLL from a stream; else NULL */
};

/* rq's fd stat: the one io/ops.c took, else fstat into *own; NULL if the
 * fd cannot be stat'ed. */
static inline const struct stat *rook__io_req_stat(const struct rook__io_req *rq, struct stat *own)
{
	if (rq->r_st)
		return rq->r_st;
	return fstat(rq->r_fd, own) == 0 ? own : NULL;
}

/*
 * Perform rq from the calling task. Returns the operation's result (>= 0)
 * or a negative errno value; -ECANCELED / -ETIMEDOUT when the task was
 * cancelled or its deadline passed before the operation finished (unless it
 * transferred bytes or produced an fd: then that result), -EBADF when the
 * fd was closed by rook_close while the operation was in flight, -EPERM
 * outside a task. Returns only after the kernel has let go of every buffer
 * in rq.
 */
int rook__io_submit(const struct rook__io_req *rq);

/* The bytes a readv or writev of iov[0..cnt) asks for. */
static inline size_t rook__iov_bytes(const struct iovec *iov, size_t cnt)
{
	size_t n = 0;
	for (size_t i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Whether the calling worker's backend is epoll (false outside a worker). */
bool rook__io_on_epoll(void);

/* Read a tty without blocking (io/ops.c): false if rq's fd is not a tty;
 * else *out is the result, -EAGAIN when there is nothing to read now. */
bool rook__io_tty_read(const struct rook__io_req *rq, const struct iovec *iov, ssize_t *out);

/*
 * For close: cancel every operation in flight on fd's file in the caller's
 * runtime, and wait (not cancellable) until the kernel has answered each
 * cancel. Returns the fd whose close releases the file (fd, or a duplicate
 * when fd itself is already closed), or -EBADF when fd is not open.
 */
int rook__io_cancel_fd(int fd);

/* rook_recv, rook_send and rook_poll on behalf of a stream (own above). */
ssize_t rook__recv_own(int fd, void *buf, size_t len, int flags, struct rook__io_own *own);
ssize_t rook__send_own(int fd, const void *buf, size_t len, int flags, struct rook__io_own *own);
int rook__poll_own(int fd, short events, struct rook__io_own *own);

#endif
