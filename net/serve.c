/* SPDX-License-Identifier: MIT */
/*
 * rook_serve: listeners, accept loops, one detached task per connection and
 * graceful shutdown, on the public IO calls only. Invariants: every accepted
 * fd is closed exactly once, by fn (it owns it) or, when fn never runs, here;
 * a connection task is in sv_conns (under sv_lock) exactly while fn runs, so
 * the shutdown path may cancel any task it finds there (it is alive);
 * sv_live counts connection tasks spawned and not yet ended (under
 * sv_lock), and the one that brings it to 0 after sv_stopping is set wakes
 * the shutdown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rook.h>

#include "sched/alloc.h"

#define SERVE_DEFAULT_BACKLOG 4096
#define SERVE_EMFILE_BACKOFF  (10 * ROOK_MSEC)
/* bind's EADDRINUSE is retried after 10, 20, 40, 80 and 160 ms: the
 * listener of a server that just exited outlives it by some ms (its file
 * is released asynchronously; 5-16 ms measured for io_uring's teardown,
 * perf/NOTES.md), so a quick restart would otherwise fail. */
#define SERVE_BIND_RETRIES 5
#define SERVE_BIND_BACKOFF (10 * ROOK_MSEC)

struct conn {
	struct conn *c_prev, *c_next;
	struct rook_task *c_task;
	struct server *c_sv;
	int c_fd;
	union { /* TCP peers only: 28 bytes, not sockaddr_storage's 128 */
		struct sockaddr_in6 v6;
		struct sockaddr_in v4;
	} c_peer;
};

struct server {
	rook_conn_fn sv_fn;
	void *sv_arg;
	pthread_mutex_t sv_lock; /* sv_conns, sv_stopping; never held across a suspension */
	struct conn sv_conns;    /* list head */
	bool sv_stopping;
	bool sv_draining;      /* listeners closed, connections finishing */
	unsigned long sv_live; /* under sv_lock */
	uint64_t sv_drain_ns;
	struct rook_event *sv_drained;
	struct rook_sem *sv_slots; /* max_conns permits, or NULL */
};

/* ROOK_SERVE_DEFER: accepted connections wait in l_epfd (oneshot, under
 * a rook_poll of l_epfd by l_watch's loop) on l_deferred (under sv_lock),
 * with no task, until they are readable; then they are spawned. */
struct listener {
	struct server *l_sv;
	int l_fd;
	int l_epfd;             /* -1 without ROOK_SERVE_DEFER */
	struct conn l_deferred; /* list head */
};

static void list_init(struct conn *head)
{
	head->c_next = head->c_prev = head;
}

static void list_add(struct conn *head, struct conn *c)
{
	c->c_next = head->c_next;
	c->c_prev = head;
	c->c_next->c_prev = c;
	head->c_next = c;
}

static void list_del(struct conn *c)
{
	c->c_prev->c_next = c->c_next;
	c->c_next->c_prev = c->c_prev;
}

static void conn_end(struct server *sv)
{
	if (sv->sv_slots)
		rook_sem_release(sv->sv_slots);
	/* Under the lock: the shutdown frees sv once it has seen 0 under it. */
	pthread_mutex_lock(&sv->sv_lock);
	if (--sv->sv_live == 0 && (sv->sv_stopping || sv->sv_draining))
		rook_event_set(sv->sv_drained);
	pthread_mutex_unlock(&sv->sv_lock);
}

static void live_add(struct server *sv, int d)
{
	pthread_mutex_lock(&sv->sv_lock);
	sv->sv_live += (unsigned long)d;
	pthread_mutex_unlock(&sv->sv_lock);
}

static int conn_main(void *arg)
{
	struct conn *c = arg;
	struct server *sv = c->c_sv;
	pthread_mutex_lock(&sv->sv_lock);
	if (sv->sv_stopping) { /* shut down before we ran: fn never gets fd */
		pthread_mutex_unlock(&sv->sv_lock);
		rook_close(c->c_fd);
		goto out;
	}
	c->c_task = rook_self();
	list_add(&sv->sv_conns, c);
	pthread_mutex_unlock(&sv->sv_lock);

	sv->sv_fn(c->c_fd, (const struct sockaddr *)&c->c_peer, sv->sv_arg);

	pthread_mutex_lock(&sv->sv_lock);
	list_del(c);
	pthread_mutex_unlock(&sv->sv_lock);
out:
	conn_end(sv);
	rook__free(c);
	return 0;
}

static bool out_of_fds(int e)
{
	return e == -EMFILE || e == -ENFILE || e == -ENOBUFS || e == -ENOMEM;
}

/* An accepted connection's task; on failure the fd is closed here. */
static int conn_spawn(struct server *sv, struct conn *c)
{
	live_add(sv, 1);
	int r = rook_spawn(NULL, conn_main, c);
	if (r == 0)
		return 0;
	rook_close(c->c_fd);
	rook__free(c);
	live_add(sv, -1);
	return r;
}

/* Park c in l's set until it is readable; false if the kernel refused
 * (then it gets its task at once). */
static bool defer_add(struct listener *l, struct conn *c)
{
	struct server *sv = l->l_sv;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = c};
	pthread_mutex_lock(&sv->sv_lock);
	list_add(&l->l_deferred, c);
	pthread_mutex_unlock(&sv->sv_lock);
	if (epoll_ctl(l->l_epfd, EPOLL_CTL_ADD, c->c_fd, &ev) == 0)
		return true;
	pthread_mutex_lock(&sv->sv_lock);
	list_del(c);
	pthread_mutex_unlock(&sv->sv_lock);
	return false;
}

/* l's deferred connections that became readable (or closed) get their
 * tasks; returns only with an error or cancelled. */
static int defer_watch(void *arg)
{
	struct listener *l = arg;
	struct server *sv = l->l_sv;
	struct epoll_event ev[64];
	for (;;) {
		int r = rook_poll(l->l_epfd, POLLIN);
		if (r < 0)
			return r;
		int n = epoll_wait(l->l_epfd, ev, 64, 0);
		for (int i = 0; i < n; i++) {
			struct conn *c = ev[i].data.ptr;
			epoll_ctl(l->l_epfd, EPOLL_CTL_DEL, c->c_fd, NULL);
			pthread_mutex_lock(&sv->sv_lock);
			list_del(c);
			pthread_mutex_unlock(&sv->sv_lock);
			if (conn_spawn(sv, c) < 0 && sv->sv_slots)
				rook_sem_release(sv->sv_slots);
		}
	}
}

/* At stop, with the loops joined: the deferred connections never sent a
 * byte; they are closed without fn. */
static void defer_close(struct server *sv, struct listener *l)
{
	if (l->l_epfd < 0)
		return;
	for (struct conn *c = l->l_deferred.c_next, *next; c != &l->l_deferred; c = next) {
		next = c->c_next;
		close(c->c_fd); /* no operation of ours is in flight on it */
		if (sv->sv_slots)
			rook_sem_release(sv->sv_slots);
		rook__free(c);
	}
	list_init(&l->l_deferred);
	rook_close(l->l_epfd); /* defer_watch waited on it with rook_poll */
	l->l_epfd = -1;
}

/* One accept loop per listener; returns only with an error or cancelled. */
static int accept_loop(void *arg)
{
	struct listener *l = arg;
	struct server *sv = l->l_sv;
	for (;;) {
		int r;
		/* With per-worker listeners a permit taken by a loop whose listener
		 * has nothing queued would strand a connection queued on another:
		 * wait for one here first (only this loop accepts on l_fd). */
		if (sv->sv_slots && (r = rook_poll(l->l_fd, POLLIN)) < 0)
			return r;
		if (sv->sv_slots && (r = rook_sem_acquire(sv->sv_slots)) < 0)
			return r;
		struct conn *c = rook__alloc(sizeof(*c));
		if (!c) {
			r = -ENOMEM;
			goto retry;
		}
		memset(c, 0, sizeof(*c));
		c->c_sv = sv;
		socklen_t alen = sizeof(c->c_peer);
		int fd = rook_accept(l->l_fd, (struct sockaddr *)&c->c_peer, &alen);
		if (fd < 0) {
			rook__free(c);
			r = fd;
			goto retry;
		}
		c->c_fd = fd;
		if ((l->l_epfd >= 0 && defer_add(l, c)) || (r = conn_spawn(sv, c)) == 0)
			continue;
	retry:
		if (sv->sv_slots)
			rook_sem_release(sv->sv_slots);
		if (r == -ECONNABORTED || r == -EPERM || r == -EPROTO)
			continue; /* that connection only */
		if (!out_of_fds(r))
			return r;
		/* Out of fds: keep the listener, try again once some are freed. */
		if ((r = rook_sleep(SERVE_EMFILE_BACKOFF)) < 0)
			return r;
	}
}

/* The address to bind: numeric at once, names on the blocking pool. */
struct resolve {
	const char *r_host;
	uint16_t r_port;
	struct sockaddr_storage r_addr;
	socklen_t r_len;
};

static int resolve_fn(void *arg)
{
	struct resolve *r = arg;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
	int e = getaddrinfo(r->r_host, NULL, &hints, &res);
	if (e)
		return e == EAI_SYSTEM ? -errno : (e == EAI_AGAIN ? -EAGAIN : -ENOENT);
	memcpy(&r->r_addr, res->ai_addr, res->ai_addrlen);
	r->r_len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int resolve(struct resolve *r)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&r->r_addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&r->r_addr;
	memset(&r->r_addr, 0, sizeof(r->r_addr));
	if (!r->r_host || !*r->r_host) {
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		r->r_len = sizeof(*a6);
	} else if (inet_pton(AF_INET, r->r_host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		r->r_len = sizeof(*a4);
	} else if (inet_pton(AF_INET6, r->r_host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		r->r_len = sizeof(*a6);
	} else {
		int e = rook_blocking(resolve_fn, r);
		if (e)
			return e;
	}
	if (r->r_addr.ss_family == AF_INET6)
		a6->sin6_port = htons(r->r_port);
	else
		a4->sin_port = htons(r->r_port);
	return 0;
}

/* bind, retried for a while on EADDRINUSE: the listener of a process that
 * just exited can outlive it by some milliseconds. 0 or -errno. */
static int bind_retry(int fd, const struct resolve *r)
{
	for (int i = 0; bind(fd, (const struct sockaddr *)&r->r_addr, r->r_len) < 0; i++) {
		int e = errno, z;
		if (e != EADDRINUSE || i == SERVE_BIND_RETRIES)
			return -e;
		if ((z = rook_sleep(SERVE_BIND_BACKOFF << i)) < 0)
			return z;
	}
	return 0;
}

/* A stream socket for r; a wildcard on a host without IPv6 falls back to
 * IPv4 only (r becomes 0.0.0.0:port). The fd, or -errno. */
static int open_for(struct resolve *r, bool wildcard)
{
	int fd = socket(r->r_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 && wildcard && errno == EAFNOSUPPORT) {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&r->r_addr;
		memset(&r->r_addr, 0, sizeof(r->r_addr));
		a4->sin_family = AF_INET;
		a4->sin_port = htons(r->r_port);
		r->r_len = sizeof(*a4);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	}
	return fd < 0 ? -errno : fd;
}

/* Per-worker listeners share their port through SO_REUSEPORT, which would
 * as gladly let them join another server's listeners on it (any socket
 * of this uid with the option): first a bind without it, which any
 * listener on the port refuses. 0, or -EADDRINUSE and the like. A server
 * that binds the port in the few syscalls between this probe and the
 * first listener is not seen. */
static int port_free(struct resolve *r, bool wildcard)
{
	int one = 1, zero = 0;
	int fd = open_for(r, wildcard);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (r->r_addr.ss_family == AF_INET6 && wildcard)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	int e = bind_retry(fd, r);
	close(fd);
	return e;
}

/* A listening socket on r (its port updated once the first one bound). */
static int listen_one(struct resolve *r, int backlog, bool reuseport, bool wildcard)
{
	int one = 1, zero = 0;
	int fd = open_for(r, wildcard);
	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (r->r_addr.ss_family == AF_INET6 && wildcard)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	int b = bind_retry(fd, r);
	if (b < 0) {
		close(fd);
		return b;
	}
	if (listen(fd, backlog) < 0)
		goto fail;
	if (r->r_port == 0) {
		struct sockaddr_storage a;
		socklen_t len = sizeof(a);
		if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
			goto fail;
		r->r_port = ntohs(((struct sockaddr_in *)&a)->sin_port); /* same offset in v6 */
		((struct sockaddr_in *)&r->r_addr)->sin_port = htons(r->r_port);
	}
	return fd;
fail:;
	int e = -errno;
	close(fd);
	return e;
}

/* With drain_ns: refuse new connections at once and give the open ones up
 * to drain_ns to end by themselves. Shielded (the caller's shield). */
static void drain(struct server *sv, struct listener *ls, unsigned nl)
{
	for (unsigned i = 0; i < nl; i++)
		rook_close(ls[i].l_fd);
	pthread_mutex_lock(&sv->sv_lock);
	sv->sv_draining = true;
	bool wait = sv->sv_live != 0;
	pthread_mutex_unlock(&sv->sv_lock);
	if (!wait)
		return;
	uint64_t now = rook_now(), d = sv->sv_drain_ns;
	bool bounded = d < UINT64_MAX - now;
	if (bounded && rook_deadline_push(now + d) < 0)
		return;                  /* no scope to bound it: cancel at once */
	rook_event_wait(sv->sv_drained); /* 0, or -ETIMEDOUT: cancel the rest */
	if (bounded)
		rook_deadline_pop();
}

/*
 * Stop: cancel the accept loops and join them, (drain,) then cancel the
 * connections and wait for every one (shielded: graceful shutdown completes
 * even for a caller whose deadline passed), then close the listeners.
 * Returns the first accept loop's error, if one failed.
 */
static int shutdown_all(struct server *sv, struct listener *ls, unsigned nl, struct rook_task **ts,
			unsigned n)
{
	int err = 0;
	rook_shield_push();
	for (unsigned i = 0; i < n; i++)
		rook_cancel(ts[i]);
	for (unsigned i = 0; i < n; i++) {
		int st = 0;
		rook_join(ts[i], &st);
		if (st < 0 && st != -ECANCELED && err == 0)
			err = st;
	}
	for (unsigned i = 0; i < nl; i++)
		defer_close(sv, &ls[i]);
	if (sv->sv_drain_ns) {
		drain(sv, ls, nl);
		nl = 0;
	}
	pthread_mutex_lock(&sv->sv_lock);
	sv->sv_stopping = true;
	for (struct conn *c = sv->sv_conns.c_next; c != &sv->sv_conns; c = c->c_next)
		rook_cancel(c->c_task);
	bool wait = sv->sv_live != 0;
	pthread_mutex_unlock(&sv->sv_lock);
	if (wait) {
		rook_event_wait(sv->sv_drained);
		/* The last conn_end may still be inside the lock: let it leave. */
		pthread_mutex_lock(&sv->sv_lock);
		pthread_mutex_unlock(&sv->sv_lock);
	}
	for (unsigned i = 0; i < nl; i++)
		rook_close(ls[i].l_fd);
	rook_shield_pop();
	return err;
}

/* Run the accept loops (and the deferred sets' watchers) until the caller
 * is cancelled (or one fails). ts has room for 2n tasks. */
static int serve_run(struct server *sv, struct listener *ls, unsigned n, struct rook_task **ts)
{
	unsigned started = 0;
	int r = 0;
	for (unsigned i = 0; i < n && r == 0; i++) {
		if ((r = rook_spawn(&ts[started], accept_loop, &ls[i])) == 0)
			started++;
		if (r == 0 && ls[i].l_epfd >= 0 &&
		    (r = rook_spawn(&ts[started], defer_watch, &ls[i])) == 0)
			started++;
	}
	if (r == 0)
		r = rook_wait_any(ts, started); /* >= 0: a loop failed; else cancelled */
	int err = shutdown_all(sv, ls, n, ts, started);
	if (r >= 0)
		r = err ? err : -EIO;
	return r;
}

/* Listeners and the task array, on the heap: ROOK_MAX_WORKERS of them
 * would take a third of a default stack. */
struct serve_mem {
	struct listener *m_ls;
	struct rook_task **m_ts;
};

static int serve_mem_get(struct serve_mem *m, unsigned n, bool defer)
{
	m->m_ls = rook__alloc(n * sizeof(*m->m_ls));
	m->m_ts = rook__alloc(2 * n * sizeof(*m->m_ts));
	for (unsigned i = 0; m->m_ls && i < n; i++) {
		m->m_ls[i].l_fd = m->m_ls[i].l_epfd = -1;
		list_init(&m->m_ls[i].l_deferred);
	}
	if (!m->m_ls || !m->m_ts)
		return -ENOMEM;
	for (unsigned i = 0; defer && i < n; i++)
		if ((m->m_ls[i].l_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
			return -errno;
	return 0;
}

static void serve_mem_put(struct serve_mem *m, unsigned n)
{
	for (unsigned i = 0; m->m_ls && i < n; i++) {
		if (m->m_ls[i].l_fd >= 0)
			close(m->m_ls[i].l_fd);
		if (m->m_ls[i].l_epfd >= 0)
			close(m->m_ls[i].l_epfd);
	}
	rook__free(m->m_ls);
	rook__free(m->m_ts);
}

int rook_serve(const struct rook_serve_opts *o, rook_conn_fn fn, void *arg)
{
	const unsigned known = ROOK_SERVE_SHARED | ROOK_SERVE_DEFER | ROOK_SERVE_DRAIN;
	if (!o || !fn || (o->flags & ~known) || o->backlog < 0)
		return -EINVAL;
	if (!rook_self())
		return -EPERM;
	/* drain_ns is read only under its flag: DESIGN.md's six fields,
	 * assigned one by one, leave it as the stack had it. */
	struct server sv = {.sv_fn = fn,
			    .sv_arg = arg,
			    .sv_drain_ns = (o->flags & ROOK_SERVE_DRAIN) ? o->drain_ns : 0};
	struct resolve res = {.r_host = o->host, .r_port = o->port};
	unsigned n = (o->flags & ROOK_SERVE_SHARED) ? 1 : rook_workers();
	bool wildcard = !o->host || !*o->host;
	int r = resolve(&res), backlog = o->backlog ? o->backlog : SERVE_DEFAULT_BACKLOG;
	if (r < 0)
		return r;
	if (n == 0 || n > ROOK_MAX_WORKERS)
		n = 1;
	struct serve_mem m;
	if ((r = serve_mem_get(&m, n, o->flags & ROOK_SERVE_DEFER)) < 0)
		goto out;
	if (n > 1 && res.r_port != 0 && (r = port_free(&res, wildcard)) < 0)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		m.m_ls[i].l_sv = &sv;
		if ((r = listen_one(&res, backlog, n > 1, wildcard)) < 0)
			goto out;
		m.m_ls[i].l_fd = r;
	}
	/* Another task may be polling for it: store with release (rook.h). */
	if (o->bound_port)
		__atomic_store_n(o->bound_port, (int)res.r_port, __ATOMIC_RELEASE);
	list_init(&sv.sv_conns);
	pthread_mutex_init(&sv.sv_lock, NULL);
	if ((r = rook_event_create(&sv.sv_drained)) < 0)
		goto out_lock;
	if (o->max_conns && (r = rook_sem_create(&sv.sv_slots, o->max_conns, o->max_conns)) < 0)
		goto out_event;
	r = serve_run(&sv, m.m_ls, n, m.m_ts);
	for (unsigned i = 0; i < n; i++)
		m.m_ls[i].l_fd = -1; /* serve_run closed them */
	rook_sem_destroy(sv.sv_slots);
out_event:
	rook_event_destroy(sv.sv_drained);
out_lock:
	pthread_mutex_destroy(&sv.sv_lock);
out:
	serve_mem_put(&m, n);
	return r;
}
