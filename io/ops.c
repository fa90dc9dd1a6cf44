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
 * to a kernel thread on ext4 (io/uring.c, write_inline, says why;
 * perf/NOTES.md, "inline file writes", has the measurements against
 * io_uring, the blocking pool and Go). Reads from the page cache complete
 * inline in io_uring itself (file_io read phase: 0.08-0.10 s for 1 GiB vs
 * Go's 0.10-0.12 s).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rook.h>

#include "io/backend.h"
#include "diag/tdiag.h"

/* Linux's MAX_RW_COUNT: the most one read or write moves. */
#define MAX_RW ((size_t)0x7ffff000)

static size_t clamp_len(size_t len)
{
	return len > MAX_RW ? MAX_RW : len;
}

/* ---- the current file position ------------------------------------------ */

/*
 * read(2) and write(2) at the current position hold the open file's
 * f_pos_lock across the transfer and the position update; io_uring with
 * off = -1 does not (two tasks on two workers read the same chunk; a short
 * write to a full tmpfs leaves the position where it was, so write_full
 * wrote the same megabyte over and over and reported 16). So rook never
 * hands off = -1 to the backend for a seekable file: under a lock it reads
 * the position with lseek, does positioned IO there and sets the position
 * to where the transfer ended (to the end of file for O_APPEND, which the
 * kernel applies to positioned writes too), on either backend.
 *
 * The lock is keyed by the inode (st_dev, st_ino) into FPOS_LOCKS stripes:
 * userspace has no name for an open file description, and every fd that
 * shares one (dup, SCM_RIGHTS) names the same inode. Two different
 * descriptions (or inodes) hashing alike only wait for each other. Pipes,
 * sockets and ttys have no position to keep: they take the fast path.
 */
#define FPOS_LOCKS 64u

static struct rook_mutex *fpos_locks[FPOS_LOCKS];
/* The parent's locks after a fork (a parent task may have held one): kept
 * reachable, never reused. */
static struct rook_mutex *fpos_forked[FPOS_LOCKS];
static pthread_mutex_t fpos_init_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool fpos_ready; /* release: fpos_locks filled in */
static bool fpos_atfork;        /* under fpos_init_lock */

static void fpos_child(void)
{
	for (unsigned i = 0; i < FPOS_LOCKS; i++) {
		if (!fpos_forked[i])
			fpos_forked[i] = fpos_locks[i];
		fpos_locks[i] = NULL;
	}
	atomic_store_explicit(&fpos_ready, false, memory_order_relaxed);
	pthread_mutex_init(&fpos_init_lock, NULL);
}

/* Once per process (and child): a brief plain mutex, then lock-free. */
static int fpos_init(void)
{
	int r = 0;
	pthread_mutex_lock(&fpos_init_lock);
	if (!fpos_atfork) {
		if (pthread_atfork(NULL, NULL, fpos_child) != 0) {
			r = -ENOMEM;
			goto out;
		}
		fpos_atfork = true;
	}
	for (unsigned i = 0; i < FPOS_LOCKS && r == 0; i++)
		if (!fpos_locks[i])
			r = rook_mutex_create(&fpos_locks[i]);
	if (r == 0) /* pairs with the acquire in fpos_lock_of */
		atomic_store_explicit(&fpos_ready, true, memory_order_release);
out:
	pthread_mutex_unlock(&fpos_init_lock);
	return r;
}

static int fpos_lock_of(const struct stat *st, struct rook_mutex **m)
{
	if (!atomic_load_explicit(&fpos_ready, memory_order_acquire)) {
		int r = fpos_init();
		if (r < 0)
			return r;
	}
	uint64_t h = ((uint64_t)st->st_dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)st->st_ino;
	h *= 0xff51afd7ed558ccdull;
	*m = fpos_locks[(h >> 32) % FPOS_LOCKS];
	return 0;
}

static bool is_write(enum rook__io_kind kind)
{
	return kind == ROOK__IO_WRITE || kind == ROOK__IO_WRITEV;
}

/* Positioned IO at the current position, as read(2)/write(2) do it. */
static ssize_t at_position(struct rook__io_req *rq, const struct stat *st)
{
	struct rook_mutex *m;
	int r = fpos_lock_of(st, &m);
	if (r < 0 || (r = rook_mutex_lock(m)) < 0)
		return r;
	bool append = false;
	if (is_write(rq->r_kind)) {
		int fl = fcntl(rq->r_fd, F_GETFL);
		append = fl >= 0 && (fl & O_APPEND);
	}
	off_t pos = lseek(rq->r_fd, 0, SEEK_CUR);
	ssize_t n = pos < 0 ? -errno : 0;
	if (n == 0) {
		rq->r_off = pos;
		n = rook__io_submit(rq);
	}
	if (n > 0)
		(void)(append ? lseek(rq->r_fd, 0, SEEK_END) : lseek(rq->r_fd, pos + n, SEEK_SET));
	(void)rook_mutex_unlock(m);
	return n;
}

/*
 * A tty has no nonblocking read of its own (RWF_NOWAIT: EOPNOTSUPP), and
 * O_NONBLOCK would change the file description the shell shares: read at
 * most what FIONREAD says is there (a complete line in canonical mode),
 * which read(2) returns without waiting, and wait for readiness again if
 * another reader took it. A hang-up or error reads at once. false: not a
 * tty; else *out is read(2)'s result, or -EAGAIN: wait again. Both
 * backends read ttys so: io_uring reads a pollable file that lacks
 * FMODE_NOWAIT with a blocking read once a poll says ready, so of two
 * readers woken for one byte the loser blocked its worker thread in
 * n_tty_read (seen as a worker in wait_woken, its ring's requests unserved
 * until more input came). Readers of one tty on different workers:
 * FIONREAD and the read are one step under its stripe, so a reader never
 * reads what another took. Readers in other processes are not ours to
 * order.
 */
static pthread_mutex_t tty_locks[16] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER};

static ssize_t tty_read_locked(int fd, const struct iovec *iov, int cnt)
{
	int avail;
	if (ioctl(fd, FIONREAD, &avail) < 0)
		avail = 0; /* a hang-up (EIO) reads at once: the poll below */
	if (avail <= 0) {
		/* Readable with nothing counted: an end of file (^D, which
		 * FIONREAD leaves out), a hang-up or an error, each of which
		 * read(2) reports at once. Else another reader took it. */
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)))
			return -EAGAIN;
		avail = 1;
	}
	/* readv: the first buffer with room only, a short read as readv may
	 * make; none with room: 0, as readv(2) of nothing. */
	int i = 0;
	while (i < cnt && iov[i].iov_len == 0)
		i++;
	if (i == cnt)
		return 0;
	size_t len = iov[i].iov_len < (size_t)avail ? iov[i].iov_len : (size_t)avail;
	ssize_t n;
	do
		n = read(fd, iov[i].iov_base, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

bool rook__io_tty_read(const struct rook__io_req *rq, const struct iovec *iov, ssize_t *out)
{
	if ((rq->r_st && !S_ISCHR(rq->r_st->st_mode)) || !isatty(rq->r_fd))
		return false;
	/* The tty itself: /dev/tty and /dev/pts/N name one (TIOCGDEV). */
	unsigned key;
	if (ioctl(rq->r_fd, TIOCGDEV, &key) < 0) {
		struct stat own;
		const struct stat *st = rook__io_req_stat(rq, &own);
		key = st ? (unsigned)st->st_rdev : 0;
	}
	pthread_mutex_t *l = &tty_locks[(key ^ (key >> 8)) % 16];
	pthread_mutex_lock(l);
	*out = tty_read_locked(rq->r_fd, iov, rq->r_kind == ROOK__IO_READV ? (int)rq->r_len : 1);
	pthread_mutex_unlock(l);
	return true;
}

/* io_uring: a tty read is a ring poll (deadline and cancellation as any
 * op) and then rook__io_tty_read, again while another reader took it. */
static ssize_t tty_read_polled(struct rook__io_req *rq)
{
	struct iovec one = {.iov_base = rq->r_buf, .iov_len = rq->r_len};
	const struct iovec *iov = rq->r_kind == ROOK__IO_READV ? rq->r_buf : &one;
	for (;;) {
		struct rook__io_req p = {
		    .r_kind = ROOK__IO_POLL, .r_fd = rq->r_fd, .r_flags = POLLIN};
		int r = rook__io_submit(&p);
		if (r < 0)
			return r;
		ssize_t n = 0;
		/* No longer a tty (hung up: TCGETS fails with EIO), or closed:
		 * the read answers at once. */
		if (!rook__io_tty_read(rq, iov, &n))
			return rook__io_submit(rq);
		if (n != -EAGAIN)
			return n;
	}
}

/* A read, or a readv whose buffers are all empty (or none). A sum that
 * wraps to 0 goes to readv(2) too, which answers -EINVAL. */
static bool reads_nothing(const struct rook__io_req *rq)
{
	if (rq->r_kind == ROOK__IO_READ)
		return rq->r_len == 0;
	return rq->r_kind == ROOK__IO_READV && rook__iov_bytes(rq->r_buf, rq->r_len) == 0;
}

/*
 * Every read and write looks at the fd once (fstat, ~0.2 us; perf/NOTES.md):
 * a seekable file at the current position goes through at_position; an
 * offset on a pipe or socket is -ESPIPE, as for pread/pwrite (io_uring
 * would ignore it and read at the stream's head: data a caller believes is
 * at offset 0 may be anything); a write to a socket is a send with
 * MSG_NOSIGNAL, so a peer that is gone is -EPIPE, not a SIGPIPE.
 */
static ssize_t file_io(struct rook__io_req *rq)
{
	if (!rook_self())
		return -EPERM;
	struct stat st;
	if (fstat(rq->r_fd, &st) < 0)
		return -errno;
	rq->r_st = &st;
	bool stream = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	/* ttys (/dev/null and /dev/zero seek), and anonymous inodes with no
	 * file type (eventfd, timerfd, signalfd: lseek "works" on some, pread
	 * on none). */
	if ((st.st_mode & S_IFMT) == 0 ||
	    (S_ISCHR(st.st_mode) && lseek(rq->r_fd, 0, SEEK_CUR) < 0 && errno == ESPIPE))
		stream = true;
	if (stream) {
		if (rq->r_off >= 0)
			return -ESPIPE;
		if (reads_nothing(rq)) {
			/* read(2) and readv(2) of nothing return at once;
			 * io_uring would wait for input on a tty. */
			ssize_t n = rq->r_kind == ROOK__IO_READ
					? read(rq->r_fd, rq->r_buf, 0)
					: readv(rq->r_fd, rq->r_buf, (int)rq->r_len);
			return n < 0 ? -errno : 0;
		}
		if ((rq->r_kind == ROOK__IO_READ || rq->r_kind == ROOK__IO_READV) &&
		    S_ISCHR(st.st_mode) && !rook__io_on_epoll() && isatty(rq->r_fd))
			return tty_read_polled(rq);
		if (S_ISSOCK(st.st_mode) && rq->r_kind == ROOK__IO_WRITE) {
			rq->r_kind = ROOK__IO_SEND;
			rq->r_flags = MSG_NOSIGNAL;
		}
		return rook__io_submit(rq);
	}
	if (rq->r_off < 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return at_position(rq, &st);
	return rook__io_submit(rq);
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
	return file_io(&rq);
}

ssize_t rook_read(int fd, void *buf, size_t len, int64_t off)
{
	ROOK__DIAG_CALL("rook_read");
	return rw(ROOK__IO_READ, fd, buf, len, off);
}

ssize_t rook_write(int fd, const void *buf, size_t len, int64_t off)
{
	ROOK__DIAG_CALL("rook_write");
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
	return file_io(&rq);
}

ssize_t rook_readv(int fd, const struct iovec *iov, int cnt, int64_t off)
{
	ROOK__DIAG_CALL("rook_readv");
	return rwv(ROOK__IO_READV, fd, iov, cnt, off);
}

ssize_t rook_writev(int fd, const struct iovec *iov, int cnt, int64_t off)
{
	ROOK__DIAG_CALL("rook_writev");
	return rwv(ROOK__IO_WRITEV, fd, iov, cnt, off);
}

/* On the blocking pool: open(2) of a FIFO, which waits for the other end. */
static int fifo_open_fn(void *arg)
{
	const struct rook__io_req *rq = arg;
	int fd;
	do
		fd = openat(AT_FDCWD, rq->r_path, rq->r_flags, rq->r_mode);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

int rook_open(const char *path, int flags, mode_t mode)
{
	if (!path)
		return -EINVAL;
	struct rook__io_req rq = {
	    .r_kind = ROOK__IO_OPEN, .r_path = path, .r_flags = flags, .r_mode = mode};
	int fd = rook__io_submit(&rq);
	/* io_uring opens as if O_NONBLOCK were given (a FIFO's writer without
	 * a reader gets -ENXIO, a reader does not wait for a writer); open(2)
	 * and the epoll backend's pool open wait for the other end. */
	int acc = flags & O_ACCMODE;
	const char *be = rook_io_backend(); /* NULL outside a runtime */
	if ((flags & (O_NONBLOCK | O_PATH)) || !be || strcmp(be, "io_uring") != 0)
		return fd;
	if (fd == -ENXIO && acc == O_WRONLY)
		return rook_blocking(fifo_open_fn, &rq); /* -ENXIO again if not a FIFO */
	struct stat st;
	if (fd >= 0 && acc == O_RDONLY && fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		/* Keep this reader: closing it would lose what a writer it let
		 * in wrote. Return once a writer has written or come and gone
		 * (POLLHUP): later than open(2), which returns as the writer
		 * opens, but before a read could see a false end of file, and
		 * cancellable. Cancelled or timed out: the fd made is returned
		 * (rook.h), and the next blocking call reports it. */
		(void)rook_poll(fd, POLLIN);
	}
	return fd;
}

int rook_close(int fd)
{
	if (!rook_self())
		return -EPERM;
	if (fd < 0)
		return -EBADF;
	fd = rook__io_cancel_fd(fd);
	if (fd < 0)
		return fd;
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
	ROOK__DIAG_CALL("rook_accept");
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
	ROOK__DIAG_CALL("rook_connect");
	if (!addr)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = ROOK__IO_CONNECT,
				  .r_fd = fd,
				  .r_addr = (struct sockaddr *)addr,
				  .r_alen = len};
	return rook__io_submit(&rq);
}

static ssize_t xfer(enum rook__io_kind kind, int fd, const void *buf, size_t len, int flags,
		    struct rook__io_own *own)
{
	if (!buf && len)
		return -EINVAL;
	struct rook__io_req rq = {.r_kind = kind,
				  .r_fd = fd,
				  .r_buf = (void *)buf,
				  .r_len = clamp_len(len),
				  .r_flags = flags,
				  .r_own = own};
	return rook__io_submit(&rq);
}

ssize_t rook_recv(int fd, void *buf, size_t len, int flags)
{
	ROOK__DIAG_CALL("rook_recv");
	return rook__recv_own(fd, buf, len, flags, NULL);
}

ssize_t rook_send(int fd, const void *buf, size_t len, int flags)
{
	ROOK__DIAG_CALL("rook_send");
	return rook__send_own(fd, buf, len, flags, NULL);
}

ssize_t rook__recv_own(int fd, void *buf, size_t len, int flags, struct rook__io_own *own)
{
	return xfer(ROOK__IO_RECV, fd, buf, len, flags, own);
}

ssize_t rook__send_own(int fd, const void *buf, size_t len, int flags, struct rook__io_own *own)
{
	return xfer(ROOK__IO_SEND, fd, buf, len, flags | MSG_NOSIGNAL, own);
}

int rook__poll_own(int fd, short events, struct rook__io_own *own)
{
	if (events == 0)
		return -EINVAL;
	struct rook__io_req rq = {
	    .r_kind = ROOK__IO_POLL, .r_fd = fd, .r_flags = (unsigned short)events, .r_own = own};
	int r = rook__io_submit(&rq);
	/* What poll(2) would report: the events asked for and the three it
	 * always reports (io_uring adds POLLRDHUP unasked). */
	int mask = r & (events | POLLERR | POLLHUP | POLLNVAL);
	return r > 0 && mask ? mask : r;
}

int rook_poll(int fd, short events)
{
	return rook__poll_own(fd, events, NULL);
}

ssize_t rook_read_full(int fd, void *buf, size_t len)
{
	ROOK__DIAG_CALL("rook_read_full");
	if (len > SSIZE_MAX)
		return -EINVAL; /* the count would not fit the return value */
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
	ROOK__DIAG_CALL("rook_write_full");
	if (len > SSIZE_MAX)
		return -EINVAL;
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
	/* glibc reports a resolver that could not open /etc/hosts or a socket
	 * for lack of fds as "no such name": say what ran out. */
	if (sys_errno == EMFILE || sys_errno == ENFILE)
		return -sys_errno;
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

/* dual: an IPv6 socket that takes IPv4 too (IPV6_V6ONLY off), whatever
 * the net.ipv6.bindv6only sysctl says. */
static int listen_on(int family, const struct sockaddr *sa, socklen_t len, bool dual, int backlog)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1, zero = 0;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (dual && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0) ||
	    bind(fd, sa, len) < 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* Every address: "::" dual-stack, or 0.0.0.0 where the kernel has no IPv6
 * (socket: -EAFNOSUPPORT; bind: -EADDRNOTAVAIL). getaddrinfo's passive list
 * would give 0.0.0.0 first, and that socket takes no IPv6 client. */
static int listen_any(uint16_t port, int backlog)
{
	struct sockaddr_in6 s6 = {
	    .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any};
	int r = listen_on(AF_INET6, (struct sockaddr *)&s6, sizeof(s6), true, backlog);
	if (r >= 0 || r == -EADDRINUSE || r == -EACCES || r == -EMFILE || r == -ENFILE)
		return r;
	struct sockaddr_in s4 = {
	    .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	return listen_on(AF_INET, (struct sockaddr *)&s4, sizeof(s4), false, backlog);
}

int rook_tcp_listen(const char *host, uint16_t port, int backlog)
{
	if (!rook_self())
		return -EPERM;
	if (!host || !*host)
		return listen_any(port, backlog);
	struct resolve rs;
	int r = resolve(&rs, host, port, true);
	if (r < 0)
		return r;
	r = -ENOENT;
	for (struct addrinfo *ai = rs.rs_res; ai; ai = ai->ai_next)
		if ((r = listen_on(ai->ai_family, ai->ai_addr, ai->ai_addrlen, false, backlog)) >=
		    0)
			break;
	freeaddrinfo(rs.rs_res);
	return r;
}

int rook_tcp_connect(const char *host, uint16_t port)
{
	if (!host || !*host)
		return -EINVAL; /* getaddrinfo would pick the loopback */
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
