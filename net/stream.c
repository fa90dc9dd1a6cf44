/* SPDX-License-Identifier: MIT */
/*
 * Buffered streams over a socket or pipe (asyncio's StreamReader/Writer,
 * Go's bufio). Built on the IO calls (a socket's through their _own
 * forms, so that epoll keeps its registration: io/backend.h). Invariants:
 * bytes in r_buf[r_head, r_tail) have been received and not yet handed to
 * the caller; a call that fails (deadline, cancel, EOF, no fit) leaves them
 * there, so nothing the caller did not get is consumed. The read buffer is
 * allocated only when data is ready (rook_poll(POLLIN) first), so an idle
 * connection blocked in a read holds no buffer; the write buffer only once
 * something is buffered. Both are s_cap bytes; the read buffer grows for a
 * line longer than that (up to the caller's len) or for bytes given back
 * by read_exactly, and shrinks back once drained.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

#include <rook.h>

#include "io/backend.h"
#include "sched/alloc.h"

#define STREAM_DEFAULT_BYTES 8192

struct rook_stream {
	int s_fd;
	struct rook__io_own s_own; /* sockets: see io/backend.h */
	bool s_sock;               /* recv/send (MSG_NOSIGNAL) rather than read/write */
	bool s_eof;
	size_t s_cap; /* the size asked for: the write buffer's, the read's at rest */
	size_t r_cap; /* the read buffer's */
	char *r_buf;  /* NULL until data is ready */
	size_t r_head, r_tail;
	char *w_buf; /* NULL until something is buffered */
	size_t w_len;
};

int rook_stream_open(struct rook_stream **s, int fd, size_t bufsize)
{
	struct stat st;
	if (!s || fd < 0)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;
	struct rook_stream *n = rook__alloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	memset(n, 0, sizeof(*n));
	n->s_fd = fd;
	n->s_sock = S_ISSOCK(st.st_mode);
	n->s_cap = bufsize ? bufsize : STREAM_DEFAULT_BYTES;
	n->r_cap = n->s_cap;
	*s = n;
	return 0;
}

static ssize_t raw_read(struct rook_stream *s, void *buf, size_t len)
{
	return s->s_sock ? rook__recv_own(s->s_fd, buf, len, 0, &s->s_own)
			 : rook_read(s->s_fd, buf, len, -1);
}

static ssize_t raw_write(struct rook_stream *s, const void *buf, size_t len)
{
	return s->s_sock ? rook__send_own(s->s_fd, buf, len, 0, &s->s_own)
			 : rook_write(s->s_fd, buf, len, -1);
}

/* Write all of buf: len, or the error with *done the bytes sent before it. */
static ssize_t write_all(struct rook_stream *s, const char *buf, size_t len, size_t *done)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = raw_write(s, buf + off, len - off);
		if (w <= 0) {
			*done = off;
			return w < 0 ? w : -EPIPE;
		}
		off += (size_t)w;
	}
	*done = len;
	return (ssize_t)len;
}

/*
 * Receive once more into the buffer (at least one byte of room is made).
 * > 0 bytes added; 0 end of file; -errno (nothing buffered is lost).
 */
static ssize_t fill(struct rook_stream *s)
{
	if (s->s_eof)
		return 0;
	if (!s->r_buf) {
		/* Idle connections wait here holding no buffer. */
		int p = s->s_sock ? rook__poll_own(s->s_fd, POLLIN, &s->s_own)
				  : rook_poll(s->s_fd, POLLIN);
		if (p < 0)
			return p;
		s->r_buf = rook__alloc(s->r_cap);
		if (!s->r_buf)
			return -ENOMEM;
		s->r_head = s->r_tail = 0;
	}
	if (s->r_head == s->r_tail) {
		s->r_head = s->r_tail = 0;
	} else if (s->r_tail == s->r_cap && s->r_head > 0) {
		memmove(s->r_buf, s->r_buf + s->r_head, s->r_tail - s->r_head);
		s->r_tail -= s->r_head;
		s->r_head = 0;
	}
	if (s->r_tail == s->r_cap)
		return -ENOBUFS;
	ssize_t n = raw_read(s, s->r_buf + s->r_tail, s->r_cap - s->r_tail);
	if (n == 0)
		s->s_eof = true;
	if (n > 0)
		s->r_tail += (size_t)n;
	return n;
}

/* The read buffer with room for cap bytes, what it holds moved to its
 * start. 0 or -ENOMEM (nothing lost). */
static int regrow(struct rook_stream *s, size_t cap)
{
	size_t have = s->r_tail - s->r_head;
	char *nb = rook__alloc(cap);
	if (!nb)
		return -ENOMEM;
	if (have)
		memcpy(nb, s->r_buf + s->r_head, have);
	rook__free(s->r_buf);
	s->r_buf = nb;
	s->r_cap = cap;
	s->r_head = 0;
	s->r_tail = have;
	return 0;
}

static size_t take(struct rook_stream *s, void *buf, size_t len)
{
	size_t have = s->r_tail - s->r_head;
	if (len > have)
		len = have;
	if (len) {
		memcpy(buf, s->r_buf + s->r_head, len);
		s->r_head += len;
	}
	/* Drained after a long line: back to the size asked for (the next
	 * read waits for data before it takes a buffer again). */
	if (s->r_head == s->r_tail && s->r_cap > s->s_cap) {
		rook__free(s->r_buf);
		s->r_buf = NULL;
		s->r_cap = s->s_cap;
		s->r_head = s->r_tail = 0;
	}
	return len;
}

ssize_t rook_stream_read(struct rook_stream *s, void *buf, size_t len)
{
	if (!s || (!buf && len))
		return -EINVAL;
	if (len == 0)
		return 0;
	if (s->r_tail > s->r_head)
		return (ssize_t)take(s, buf, len);
	if (s->s_eof)
		return 0;
	if (len >= s->r_cap) { /* big reads bypass the buffer */
		ssize_t n = raw_read(s, buf, len);
		if (n == 0)
			s->s_eof = true;
		return n;
	}
	ssize_t n = fill(s);
	if (n <= 0)
		return n;
	return (ssize_t)take(s, buf, len);
}

static const char *find(const char *hay, size_t hlen, const char *d, size_t dlen)
{
	if (dlen == 1)
		return memchr(hay, d[0], hlen);
	return memmem(hay, hlen, d, dlen);
}

ssize_t rook_stream_read_until(struct rook_stream *s, const void *delim, size_t dlen, void *buf,
			       size_t len)
{
	if (!s || !delim || dlen == 0 || (!buf && len))
		return -EINVAL;
	size_t scanned = 0; /* bytes already searched without a match */
	for (;;) {
		size_t have = s->r_tail - s->r_head;
		if (have >= dlen) {
			size_t from = scanned > dlen - 1 ? scanned - (dlen - 1) : 0;
			const char *at =
			    find(s->r_buf + s->r_head + from, have - from, delim, dlen);
			if (at) {
				size_t n = (size_t)(at - (s->r_buf + s->r_head)) + dlen;
				if (n > len)
					return -EMSGSIZE;
				take(s, buf, n);
				if (n < len)
					((char *)buf)[n] = '\0';
				return (ssize_t)n;
			}
			scanned = have;
		}
		if (have >= len)
			return -EMSGSIZE; /* cannot fit: the caller may drain with read */
		if (have == s->r_cap) {   /* a line longer than the buffer: grow it */
			size_t cap = s->r_cap > (SIZE_MAX >> 1) ? SIZE_MAX : s->r_cap * 2;
			int g = regrow(s, cap < len ? cap : len);
			if (g < 0)
				return g;
		}
		ssize_t r = fill(s);
		if (r < 0)
			return r;
		if (r == 0) { /* EOF: the rest, if any */
			size_t n = take(s, buf, have);
			if (n < len)
				((char *)buf)[n] = '\0';
			return (ssize_t)n;
		}
	}
}

ssize_t rook_stream_readline(struct rook_stream *s, char *buf, size_t len)
{
	return rook_stream_read_until(s, "\n", 1, buf, len);
}

/* Put bytes the caller will not get back in front of the buffer. */
static int unread(struct rook_stream *s, const char *p, size_t n)
{
	if (n == 0)
		return 0; /* an idle stream keeps holding no buffer */
	size_t have = s->r_tail - s->r_head;
	size_t need = n + have;
	size_t cap = need > s->r_cap ? need : s->r_cap;
	char *nb = rook__alloc(cap);
	if (!nb)
		return -ENOMEM;
	memcpy(nb, p, n);
	if (have)
		memcpy(nb + n, s->r_buf + s->r_head, have);
	rook__free(s->r_buf);
	s->r_buf = nb;
	s->r_cap = cap; /* the read buffer only: the write buffer keeps s_cap */
	s->r_head = 0;
	s->r_tail = need;
	return 0;
}

ssize_t rook_stream_read_exactly(struct rook_stream *s, void *buf, size_t n)
{
	if (!s || (!buf && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (n <= s->r_cap) {
		while (s->r_tail - s->r_head < n) {
			ssize_t r = fill(s);
			if (r == 0)
				return -EPIPE;
			if (r < 0)
				return r;
		}
		return (ssize_t)take(s, buf, n);
	}
	/* Larger than the buffer: straight into buf, given back on failure. */
	size_t got = take(s, buf, n);
	while (got < n) {
		ssize_t r = s->s_eof ? 0 : raw_read(s, (char *)buf + got, n - got);
		if (r <= 0) {
			if (r == 0)
				s->s_eof = true;
			int u = unread(s, buf, got);
			return u < 0 ? u : (r == 0 ? -EPIPE : r);
		}
		got += (size_t)r;
	}
	return (ssize_t)n;
}

/* After a send that failed part way: w_buf[sent, end) is what is still
 * buffered, moved to the front for the next flush. */
static void keep_unsent(struct rook_stream *s, size_t sent, size_t end)
{
	memmove(s->w_buf, s->w_buf + sent, end - sent);
	s->w_len = end - sent;
}

ssize_t rook_stream_write(struct rook_stream *s, const void *buf, size_t len)
{
	if (!s || (!buf && len))
		return -EINVAL;
	const char *p = buf;
	size_t left = len, done;
	/* An error after some of buf went out returns that count (as a short
	 * write(2) would), so that a caller who retries after a deadline sends
	 * nothing twice; what was buffered before this call and not sent stays
	 * buffered, as after rook_stream_flush. */
	if (s->w_len + left > s->s_cap && s->w_len > 0) {
		/* Top the buffer up and send it whole: one send, not two small. */
		size_t top = s->s_cap - s->w_len, before = s->w_len;
		memcpy(s->w_buf + s->w_len, p, top);
		s->w_len = s->s_cap;
		p += top;
		left -= top;
		ssize_t w = write_all(s, s->w_buf, s->w_len, &done);
		if (w < 0) {
			if (done >= before) {
				s->w_len = 0;
				return done > before ? (ssize_t)(done - before) : w;
			}
			/* None of buf went: it is not taken either. */
			keep_unsent(s, done, before);
			return w;
		}
		s->w_len = 0;
	}
	if (left >= s->s_cap) {
		ssize_t w = write_all(s, p, left, &done);
		if (w < 0)
			return len - left + done ? (ssize_t)(len - left + done) : w;
		return (ssize_t)len;
	}
	if (left && !s->w_buf) {
		s->w_buf = rook__alloc(s->s_cap);
		if (!s->w_buf)
			return left == len ? -ENOMEM : (ssize_t)(len - left);
	}
	memcpy(s->w_buf + s->w_len, p, left);
	s->w_len += left;
	return (ssize_t)len;
}

int rook_stream_flush(struct rook_stream *s)
{
	if (!s)
		return -EINVAL;
	if (s->w_len == 0)
		return 0;
	size_t done;
	ssize_t w = write_all(s, s->w_buf, s->w_len, &done);
	if (w < 0) {
		keep_unsent(s, done, s->w_len);
		return (int)w;
	}
	s->w_len = 0;
	return 0;
}

int rook_stream_close(struct rook_stream *s)
{
	if (!s)
		return -EINVAL;
	int r = rook_stream_flush(s);
	int c = rook_close(s->s_fd);
	rook__free(s->r_buf);
	rook__free(s->w_buf);
	rook__free(s);
	return r < 0 ? r : c;
}
