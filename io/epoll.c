/* SPDX-License-Identifier: MIT */
/*
 * The readiness backend of io/backend.h, for where io_uring is denied (the
 * default seccomp profiles of Docker and containerd, gVisor,
 * kernel.io_uring_disabled): one epoll instance per worker.
 *
 * - Sockets and pipes: the syscall is tried at once without blocking
 *   (MSG_DONTWAIT, RWF_NOWAIT; accept and connect set O_NONBLOCK on their
 *   socket, having no per-call flag); on EAGAIN the task waits for
 *   readiness on its worker's epoll instance and tries again. The kernel
 *   holds no buffer while a task waits, so a cancelled or timed-out wait
 *   loses nothing: the call returns the reason and no byte moved.
 * - Regular files are always "ready" to epoll: page-cache reads run inline
 *   (RWF_NOWAIT), buffered writes inline where io/uring.c would
 *   (write_inline), everything else (a read that would wait on the disk,
 *   open, fsync) on the rook_blocking pool, whose cancellation semantics
 *   keep the result of a call that ran (an fd, a byte count).
 *
 * Registration: per worker a table indexed by fd lists the ops waiting on
 * it (the owner's, and under the ring lock where an idle worker may poll
 * the set of an owner stuck in a long task: rook__park_rescue in ring.c). An fd is registered
 * EPOLLONESHOT with the union of its waiters' events, re-armed with EPOLL_CTL_MOD while waiters
 * remain, and never removed except by rook_close: an fd closed with close(2) and reused shows as
 * ENOENT on the next MOD, which then ADDs; an event for a stale registration wakes waiters that
 * find EAGAIN and wait again. Oneshot over edge-triggered: with one registration per fd and worker
 * and waiters coming and going, oneshot needs no per-fd "ready" memory, and a readiness event is
 * delivered to the worker whose task waits, once. A stream's socket (struct rook__io_own) is the
 * exception: the stream owns the fd until rook_close, so it keeps one edge-triggered registration
 * on the worker that last waited, and the events seen there while nobody waited (f_ready) save
 * the syscall per wait.
 *
 * Waiting (struct rook__ep_op, on the task's stack, as io/uring.c's op):
 * o_state packs the completions still due and the token that the last one
 * claims. The owner's readiness handler unlinks the op and drops the count;
 * a task whose wait was claimed by a canceller or its deadline unlinks its
 * op itself when it still runs on the owner, else posts a CANCEL_OP request
 * to the owner and waits (not cancellable) for both completions.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <rook.h>

#include "io/backend.h"
#include "io/ring.h"
#include "diag/tdiag.h"
#include "sched/alloc.h"
#include "sched/stack.h"
#include "sched/task.h"
#include "sched/wait.h"

#define EFD_TAG      UINT64_MAX /* epoll data of the wake-up eventfd */
#define MAX_EVENTS   64
#define NOT_POLLABLE 1 /* wait_ready: epoll refuses the fd (a regular file) */

struct rook__ep_op {
	_Atomic uint64_t o_state; /* completions due (high 32) | token (low 32) */
	struct rook__waiter *o_waiter;
	struct rook__io *o_io;               /* the worker whose table lists it */
	struct rook__ep_op *o_next, *o_prev; /* on o_io's list for o_fd (owner) */
	int o_fd;
	uint32_t o_events; /* what it waits for */
	uint32_t o_closes; /* closes[] of o_fd's bucket when its call began */
	bool o_tries;      /* its call tries the syscall next (not rook_poll) */
	bool o_linked;     /* owner only */
};

struct rook__ep_fd {
	struct rook__ep_op *f_head;
	uint32_t f_armed; /* events of the armed oneshot registration; 0: none */
	uint32_t f_ready; /* owned: events seen and not yet tried since */
	uint64_t f_gen;   /* owned: the registration (struct rook__io_own) */
	bool f_added;     /* in the epoll set (maybe stale after a close(2)) */
	bool f_drained;   /* the last read here was short: wait before the next */
	bool f_owned;     /* edge-triggered for a stream (own_trusted below) */
};

/* Registrations handed to streams, and rook_close calls per bucket of fd
 * numbers: a stream's waits trust its registration only while neither
 * moved (own_trusted). */
static _Atomic uint64_t last_gen;
#define CLOSE_BUCKETS 4096
static _Atomic uint32_t closes[CLOSE_BUCKETS];

/* fd's bucket count now: taken when a call begins, so that a rook_close
 * after it ends the call's waits (fd_closed), and a wait on the number's
 * next file, begun after the close, is left alone. */
static uint32_t close_tag(int fd)
{
	return atomic_load_explicit(&closes[(unsigned)fd % CLOSE_BUCKETS], memory_order_seq_cst);
}

/* ---- set-up ----------------------------------------------------------------- */

int rook__epoll_init(struct rook__io *io)
{
	io->i_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (io->i_epfd < 0)
		return -errno;
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EFD_TAG};
	if (epoll_ctl(io->i_epfd, EPOLL_CTL_ADD, io->i_efd, &ev) < 0) {
		int e = -errno;
		close(io->i_epfd);
		io->i_epfd = -1;
		return e;
	}
	return 0;
}

void rook__epoll_fini(struct rook__io *io)
{
	close(io->i_epfd);
	io->i_epfd = -1;
	free(io->i_fds);
	io->i_fds = NULL;
	io->i_nfds = 0;
}

/* ---- the fd table (owner only) ------------------------------------------ */

static struct rook__ep_fd *fd_slot(struct rook__io *io, int fd)
{
	if ((unsigned)fd < io->i_nfds)
		return &io->i_fds[fd];
	unsigned n = io->i_nfds ? io->i_nfds : 64;
	while (n <= (unsigned)fd && n < (1u << 30))
		n *= 2;
	if (n <= (unsigned)fd || rook__alloc_fail_now())
		return NULL;
	struct rook__ep_fd *t = realloc(io->i_fds, n * sizeof(*t));
	if (!t)
		return NULL;
	memset(t + io->i_nfds, 0, (n - io->i_nfds) * sizeof(*t));
	io->i_fds = t;
	io->i_nfds = n;
	return &t[fd];
}

static void link_op(struct rook__ep_fd *f, struct rook__ep_op *op)
{
	op->o_prev = NULL;
	op->o_next = f->f_head;
	if (f->f_head)
		f->f_head->o_prev = op;
	f->f_head = op;
	op->o_linked = true;
}

static void unlink_op(struct rook__io *io, struct rook__ep_op *op)
{
	struct rook__ep_fd *f = &io->i_fds[op->o_fd];
	if (op->o_prev)
		op->o_prev->o_next = op->o_next;
	else
		f->f_head = op->o_next;
	if (op->o_next)
		op->o_next->o_prev = op->o_prev;
	/* No waiter left (a wait cancelled or timed out): the armed
	 * registration may outlive its file, since close(2) drops it from the
	 * kernel's set unseen and the number may come back as another file;
	 * the next wait re-arms with a syscall instead of trusting it. */
	if (!f->f_head)
		f->f_armed = 0;
	op->o_linked = false;
	atomic_fetch_sub_explicit(&io->i_inflight, 1, memory_order_relaxed);
}

/* Put fd in io's set as ev says (MOD or ADD, whichever the set needs).
 * The registration is then neither armed nor owned. */
static int ctl(struct rook__io *io, struct rook__ep_fd *f, int fd, struct epoll_event *ev)
{
	int how = f->f_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	int r = rook__inj_due(ROOK__INJ_EP_CTL) ? (errno = -rook__inj_err(ROOK__INJ_EP_CTL), -1)
						: epoll_ctl(io->i_epfd, how, fd, ev);
	if (r < 0 && errno == ENOENT && how == EPOLL_CTL_MOD)
		r = epoll_ctl(io->i_epfd, EPOLL_CTL_ADD, fd, ev);
	else if (r < 0 && errno == EEXIST && how == EPOLL_CTL_ADD)
		r = epoll_ctl(io->i_epfd, EPOLL_CTL_MOD, fd, ev);
	f->f_armed = 0;
	f->f_owned = false;
	f->f_gen = 0;
	if (r < 0)
		return -errno;
	f->f_added = true;
	return 0;
}

/* Arm fd's registration for the union of its waiters' events. */
static int arm(struct rook__io *io, struct rook__ep_fd *f, int fd)
{
	uint32_t want = 0;
	for (struct rook__ep_op *op = f->f_head; op; op = op->o_next)
		want |= op->o_events;
	if (f->f_armed && !(want & ~f->f_armed))
		return 0;
	struct epoll_event ev = {.events = want | EPOLLONESHOT, .data.u64 = (uint64_t)fd};
	int r = ctl(io, f, fd, &ev);
	if (r == 0)
		f->f_armed = want;
	return r;
}

/* Register fd edge-triggered for everything, for own, which moves here:
 * the set it was in before loses it. ADD and MOD report the readiness
 * already there, so nothing before this is missed. */
static int arm_own(struct rook__io *io, struct rook__ep_fd *f, int fd, struct rook__io_own *own,
		   int *old_epfd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.u64 = (uint64_t)fd};
	f->f_ready = 0;
	int r = ctl(io, f, fd, &ev);
	if (r < 0)
		return r;
	f->f_owned = true;
	f->f_gen = atomic_fetch_add_explicit(&last_gen, 1, memory_order_relaxed) + 1;
	*old_epfd = -1;
	if (own->o_home && own->o_home != io) {
		/* Only a set of this runtime: another's may be closed and its
		 * number reused. */
		struct rook__io_rt *g = io->i_group;
		for (unsigned i = 0; i < g->g_nworkers; i++) {
			struct rook__io *o =
			    atomic_load_explicit(&g->g_ios[i], memory_order_acquire);
			if (o == own->o_home && o->i_epfd == own->o_epfd)
				*old_epfd = o->i_epfd;
		}
	}
	own->o_home = io;
	own->o_epfd = io->i_epfd;
	own->o_gen = f->f_gen;
	return 0;
}

/* May own's wait trust its registration in io's set, with no syscall? Only
 * if the set holds it (nobody re-armed it since) and no rook_close of an
 * fd in its bucket came since the last look: a close elsewhere that missed
 * our in-flight count (rook__epoll_cancel_fd) shows here instead. Called
 * after that count went up. */
static bool own_trusted(struct rook__io *io, struct rook__ep_fd *f, int fd,
			struct rook__io_own *own)
{
	uint32_t c =
	    atomic_load_explicit(&closes[(unsigned)fd % CLOSE_BUCKETS], memory_order_seq_cst);
	bool same = c == own->o_closes;
	own->o_closes = c;
	return same && f->f_owned && own->o_home == io && own->o_gen == f->f_gen;
}

/* One completion of op is done; the last claims its waiter with res. op
 * may be gone once the count drops: everything is read before. */
static void drop(struct rook__ep_op *op, int res)
{
	struct rook__waiter *w = op->o_waiter;
	uint64_t s =
	    atomic_fetch_sub_explicit(&op->o_state, (uint64_t)1 << 32, memory_order_acq_rel);
	if ((s >> 32) == 1 && rook__wait_claim(w, (uint32_t)s, res))
		rook__io_wake_claimed(w);
}

/* Owner: fd became ready with revents: wake the waiters it serves. */
static void fd_ready(struct rook__io *io, int fd, uint32_t revents)
{
	if ((unsigned)fd >= io->i_nfds)
		return;
	struct rook__ep_fd *f = &io->i_fds[fd];
	f->f_armed = 0; /* oneshot: disarmed by this event */
	bool all = revents & (EPOLLERR | EPOLLHUP);
	if (f->f_owned)
		f->f_ready |= revents; /* until a wait tries them (wait_ready) */
	for (struct rook__ep_op *op = f->f_head, *next; op; op = next) {
		next = op->o_next;
		if (all || (op->o_events & revents)) {
			/* A recv or send tries them now; a poll's poll(2) takes
			 * nothing, so the call after it still needs the edge. */
			if (op->o_tries)
				f->f_ready &= ~op->o_events;
			unlink_op(io, op);
			drop(op, 0);
		}
	}
	if (f->f_head && !f->f_owned && arm(io, f, fd) < 0) {
		/* Cannot re-arm (the fd is gone): let them retry and fail. */
		for (struct rook__ep_op *op = f->f_head, *next; op; op = next) {
			next = op->o_next;
			unlink_op(io, op);
			drop(op, 0);
		}
	}
}

/* Owner: rook_close(fd) closed fd, its bucket count then at v: every wait
 * of a call begun before ends with -EBADF (retrying the syscall would act
 * on whatever file takes the number next). A wait begun after it is on
 * the number's next file: it stays, and so does that file's registration. */
static void fd_closed(struct rook__io *io, int fd, uint32_t v)
{
	if ((unsigned)fd >= io->i_nfds)
		return;
	struct rook__ep_fd *f = &io->i_fds[fd];
	for (struct rook__ep_op *op = f->f_head, *next; op; op = next) {
		next = op->o_next;
		if ((int32_t)(op->o_closes - v) < 0) {
			unlink_op(io, op);
			drop(op, -EBADF);
		}
	}
	if (f->f_head) {
		/* Waits on the next file: f_armed may have described the closed
		 * file's registration, which their arm then skipped. Register
		 * theirs; if that fails too, they retry and see why. */
		f->f_armed = 0;
		if (arm(io, f, fd) < 0) {
			for (struct rook__ep_op *op = f->f_head, *next; op; op = next) {
				next = op->o_next;
				unlink_op(io, op);
				drop(op, 0);
			}
		}
		return;
	}
	if (f->f_added)
		(void)epoll_ctl(io->i_epfd, EPOLL_CTL_DEL, fd, NULL);
	f->f_added = false;
	f->f_armed = 0;
	f->f_drained = false;
	f->f_owned = false;
	f->f_gen = 0;
}

void rook__epoll_req(struct rook__io *io, struct rook__ring_req *q)
{
	struct rook__ep_op *op = q->q_ep;
	if (q->q_kind == ROOK__REQ_CANCEL_FD) {
		fd_closed(io, q->q_fd, q->q_closes);
	} else if (op->o_linked) {
		/* The op's own completion: its wait ends here, not by an event. */
		unlink_op(io, op);
		drop(op, 0);
	}
	drop(op, 0); /* the request's */
}

/* ---- polling and parking ------------------------------------------------- */

static _Atomic bool no_pwait2; /* epoll_pwait2 (Linux 5.11) missing or denied */

static int epoll_wait_ns(int epfd, struct epoll_event *ev, uint64_t timeout_ns)
{
	if (timeout_ns == 0)
		return epoll_wait(epfd, ev, MAX_EVENTS, 0);
	if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
		struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
				      .tv_nsec = (long)(timeout_ns % 1000000000u)};
		int n =
		    epoll_pwait2(epfd, ev, MAX_EVENTS, timeout_ns == UINT64_MAX ? NULL : &ts, NULL);
		if (n >= 0 || (errno != ENOSYS && errno != EPERM))
			return n;
		atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
	}
	/* Milliseconds, rounded up: never wake before the timer is due. */
	uint64_t ms = timeout_ns == UINT64_MAX ? UINT64_MAX : (timeout_ns + 999999u) / 1000000u;
	return epoll_wait(epfd, ev, MAX_EVENTS, ms > INT_MAX ? -1 : (int)ms);
}

unsigned rook__epoll_poll(struct rook__io *io, uint64_t timeout_ns)
{
	struct epoll_event ev[MAX_EVENTS];
	int n = rook__inj_due(ROOK__INJ_EP_WAIT) ? (errno = EINTR, -1)
						 : epoll_wait_ns(io->i_epfd, ev, timeout_ns);
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u64 == EFD_TAG) {
			uint64_t v;
			ssize_t r = read(io->i_efd, &v, sizeof(v)); /* drain the wake-ups */
			(void)r;
		} else {
			fd_ready(io, (int)ev[i].data.u64, ev[i].events);
		}
	}
	return (unsigned)n;
}

/* ---- waiting for readiness --------------------------------------------- */

/* The wait was claimed (reason) while the op still waited: take it off its
 * worker's list, and return only when nobody can touch it again. */
static int cancel_wait(struct rook__ep_op *op, struct rook__waiter *wt, uint64_t s, int reason)
{
	if (rook__io_self() == op->o_io) {
		/* The owner: under the lock no event handler runs; a rescuer's
		 * may have unlinked the op already (its claim then failed). */
		rook__ring_lock(op->o_io);
		if (op->o_linked)
			unlink_op(op->o_io, op);
		rook__ring_unlock(op->o_io);
		return reason;
	}
	struct rook__ring_req q = {.q_kind = ROOK__REQ_CANCEL_OP, .q_ep = op};
	uint32_t t2 = rook__wait_begin(wt, false);
	/* acq_rel: publishes t2 to the owner's last drop. */
	if (atomic_compare_exchange_strong_explicit(&op->o_state, &s, (2ull << 32) | t2,
						    memory_order_acq_rel, memory_order_acquire))
		rook__ring_post(op->o_io, &q);
	else if (rook__wait_claim(wt, t2, 0))
		rook__wait_wake(wt); /* the event came first: nothing left */
	(void)rook__wait_park(wt, t2);
	return reason;
}

/* Wait until fd may be ready for events (EPOLLIN / EPOLLOUT / poll bits),
 * for own (a stream) or NULL; tries: the caller's syscall next consumes
 * the readiness (false for rook_poll). 0: try again; NOT_POLLABLE; or a
 * negative errno: the cancel reason, -EBADF (closed by rook_close), an
 * epoll_ctl error. */
static int wait_ready(int fd, uint32_t events, struct rook__io_own *own, uint32_t tag, bool tries)
{
	struct rook__io *io = rook__io_self();
	struct rook__waiter *wt = &rook_self()->t_waiter;
	struct rook__ep_op op = {.o_waiter = wt,
				 .o_io = io,
				 .o_fd = fd,
				 .o_events = events,
				 .o_closes = tag,
				 .o_tries = tries};
	rook__ring_lock(io);
	struct rook__ep_fd *f = fd_slot(io, fd);
	if (!f) {
		rook__ring_unlock(io);
		return fd < 0 ? -EBADF : -ENOMEM;
	}
	link_op(f, &op);
	/* seq_cst, before the arm: pairs with the load in rook__epoll_cancel_fd
	 * after its close(2). Either that load sees us, or our arm comes after
	 * the close and fails with EBADF (own_trusted: or we see its count). */
	atomic_fetch_add_explicit(&io->i_inflight, 1, memory_order_seq_cst);
	int r = 0, old_epfd = -1;
	if (!own) {
		r = arm(io, f, fd);
	} else if (own_trusted(io, f, fd, own)) {
		/* Every edge since the registration is in f_ready or went to
		 * a waiter, who tried again after it. An end of file or an
		 * error stays: a short read before it does not consume it. */
		uint32_t sticky = EPOLLERR | EPOLLHUP | (events & EPOLLIN ? EPOLLRDHUP : 0);
		if (f->f_ready & (events | sticky)) {
			/* The caller tried just before (EAGAIN, or poll(2)
			 * found nothing) or is told to try now: either way
			 * these bits are spent, or a poll would spin on them.
			 * Only a wake leaves them to a poll's next call. */
			f->f_ready &= ~events;
			unlink_op(io, &op);
			rook__ring_unlock(io);
			return 0;
		}
	} else {
		r = arm_own(io, f, fd, own, &old_epfd);
	}
	if (r < 0) {
		unlink_op(io, &op);
		rook__ring_unlock(io);
		return r == -EPERM ? NOT_POLLABLE : r;
	}
	io->i_head.pi_busy = true;
	uint32_t token = rook__wait_begin(wt, rook__wait_cancellable());
	atomic_init(&op.o_state, (1ull << 32) | token);
	/* Only now: a rescuer may handle the op once the lock is free. */
	rook__ring_unlock(io);
	if (old_epfd >= 0) /* its old set would wake its worker for nothing */
		(void)epoll_ctl(old_epfd, EPOLL_CTL_DEL, fd, NULL);
	struct rook__tdiag *d = &rook_self()->t_stack->s_diag;
	d->d_fd = fd;
	r = rook__wait_park(wt, token);
	d->d_fd = -1;
	/* io is stale from here on: we may run on another worker. */
	uint64_t s = atomic_load_explicit(&op.o_state, memory_order_acquire);
	if ((s >> 32) != 0) {
		rook__diag_io(ROOK__DIAG_IO_CANCELLED);
		return cancel_wait(&op, wt, s, r);
	}
	return r;
}

/* ---- the calls ------------------------------------------------------------ */

/* A file epoll would call always ready; io/ops.c's fstat when it took one. */
static bool is_file(const struct rook__io_req *rq)
{
	struct stat own;
	const struct stat *st = rook__io_req_stat(rq, &own);
	return st && (S_ISREG(st->st_mode) || S_ISBLK(st->st_mode) || S_ISDIR(st->st_mode));
}

static int res(ssize_t n)
{
	return n < 0 ? -errno : (int)n;
}

/*
 * Tokio's heuristic for a stream read: one that got less than it asked for
 * has most likely emptied the socket or pipe buffer, so the next read on
 * that fd waits for readiness first instead of paying a syscall that says
 * EAGAIN (in tcp_echo that is one recv in four syscalls per round trip;
 * perf/NOTES.md). Only a hint, kept per worker: a wait on an fd that is
 * ready anyway ends at the next poll (the oneshot arm reports readiness that
 * is already there), so a wrong hint costs a trip through epoll, never a
 * lost byte.
 */
static void note_read(int fd, ssize_t n, size_t want)
{
	struct rook__io *io = rook__io_self();
	bool short_read = n > 0 && (size_t)n < want;
	rook__ring_lock(io);
	if ((unsigned)fd < io->i_nfds)
		io->i_fds[fd].f_drained = short_read;
	else if (short_read) {
		struct rook__ep_fd *f = fd_slot(io, fd);
		if (f)
			f->f_drained = true;
	}
	rook__ring_unlock(io);
}

/* The hint of note_read, consumed. */
static bool take_drained(int fd)
{
	struct rook__io *io = rook__io_self();
	rook__ring_lock(io);
	bool drained = (unsigned)fd < io->i_nfds && io->i_fds[fd].f_drained;
	if (drained)
		io->i_fds[fd].f_drained = false;
	rook__ring_unlock(io);
	return drained;
}

/* On the blocking pool: the call as a plain blocking syscall. */
static int blocking_fn(void *arg)
{
	const struct rook__io_req *rq = arg;
	ssize_t n;
	do {
		switch (rq->r_kind) {
		case ROOK__IO_READ:
			n = rq->r_off < 0 ? read(rq->r_fd, rq->r_buf, rq->r_len)
					  : pread(rq->r_fd, rq->r_buf, rq->r_len, rq->r_off);
			break;
		case ROOK__IO_WRITE:
			n = rq->r_off < 0 ? write(rq->r_fd, rq->r_buf, rq->r_len)
					  : pwrite(rq->r_fd, rq->r_buf, rq->r_len, rq->r_off);
			break;
		case ROOK__IO_READV:
			n = preadv(rq->r_fd, rq->r_buf, (int)rq->r_len, rq->r_off);
			if (rq->r_off < 0)
				n = readv(rq->r_fd, rq->r_buf, (int)rq->r_len);
			break;
		case ROOK__IO_WRITEV:
			n = rq->r_off < 0 ? writev(rq->r_fd, rq->r_buf, (int)rq->r_len)
					  : pwritev(rq->r_fd, rq->r_buf, (int)rq->r_len, rq->r_off);
			break;
		case ROOK__IO_OPEN:
			n = openat(AT_FDCWD, rq->r_path, rq->r_flags, rq->r_mode);
			break;
		case ROOK__IO_FSYNC:
			n = fsync(rq->r_fd);
			break;
		default:
			errno = EINVAL;
			n = -1;
		}
	} while (n < 0 && errno == EINTR);
	return res(n);
}

static int on_pool(const struct rook__io_req *rq)
{
	return rook_blocking(blocking_fn, (void *)rq);
}

/* The request's buffer as an iovec array. */
static const struct iovec *iov_of(const struct rook__io_req *rq, struct iovec *one, int *cnt)
{
	if (rq->r_kind == ROOK__IO_READV || rq->r_kind == ROOK__IO_WRITEV) {
		*cnt = (int)rq->r_len;
		return rq->r_buf;
	}
	*one = (struct iovec){.iov_base = rq->r_buf, .iov_len = rq->r_len};
	*cnt = 1;
	return one;
}

/* One nonblocking attempt: sockets with MSG_NOSIGNAL (writes), everything
 * else with RWF_NOWAIT; *sock turns false at the first ENOTSOCK. */
static ssize_t try_rw(const struct rook__io_req *rq, const struct iovec *iov, int cnt, off_t off,
		      bool wr, bool *sock)
{
	if (!wr)
		return preadv2(rq->r_fd, iov, cnt, off, RWF_NOWAIT);
	if (*sock) {
		struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)cnt};
		ssize_t n = sendmsg(rq->r_fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0 || errno != ENOTSOCK)
			return n;
		*sock = false;
	}
	return pwritev2(rq->r_fd, iov, cnt, off, RWF_NOWAIT);
}

/* read, readv, write, writev: pipes and sockets wait for readiness, files
 * go inline (page cache) or to the pool. *fast: no wait was needed. */
static int do_rw(struct rook__io *io, const struct rook__io_req *rq, bool *fast)
{
	uint32_t tag = close_tag(rq->r_fd);
	bool wr = rq->r_kind == ROOK__IO_WRITE || rq->r_kind == ROOK__IO_WRITEV;
	if (wr && rook__io_write_inline_ok(rq))
		return rook__io_write_inline(io, rq);
	struct iovec one;
	int cnt;
	const struct iovec *iov = iov_of(rq, &one, &cnt);
	off_t off = rq->r_off;
	bool sock = wr;
	/* Only a stream's short read says it is drained; a file's is its end. */
	bool stream =
	    !wr && rq->r_st && (S_ISSOCK(rq->r_st->st_mode) || S_ISFIFO(rq->r_st->st_mode));
	bool wait_first = stream && take_drained(rq->r_fd);
	for (;;) {
		int e = EAGAIN;
		if (!wait_first) {
			ssize_t n = try_rw(rq, iov, cnt, off, wr, &sock);
			if (n >= 0) {
				if (stream)
					note_read(rq->r_fd, n, rook__iov_bytes(iov, (size_t)cnt));
				return (int)n;
			}
			e = errno;
			if (e == EINTR)
				continue;
			if (e == ESPIPE && off >= 0) {
				off = -1; /* a pipe or socket: the offset means nothing */
				continue;
			}
			if (e != EAGAIN && e != EOPNOTSUPP)
				return -e;
			if (!sock && is_file(rq))
				break; /* the disk, or no RWF_NOWAIT here */
		}
		wait_first = false;
		int r = wait_ready(rq->r_fd, wr ? EPOLLOUT : EPOLLIN, NULL, tag, true);
		if (r == NOT_POLLABLE)
			return blocking_fn((void *)rq); /* always ready, as poll(2) says */
		*fast = false;
		if (r < 0)
			return r;
		ssize_t n;
		if (e == EOPNOTSUPP && !wr && off < 0 && rook__io_tty_read(rq, iov, &n)) {
			if (n != -EAGAIN)
				return (int)n;
			continue; /* another reader took it */
		}
		if (e == EOPNOTSUPP)
			break; /* ready now; the call itself cannot be nonblocking */
	}
	*fast = false;
	return on_pool(rq);
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* recv, send, accept: retry after readiness until it does not say EAGAIN. */
static int do_sock(const struct rook__io_req *rq, bool *fast)
{
	uint32_t tag = close_tag(rq->r_fd);
	if (rq->r_kind == ROOK__IO_ACCEPT) {
		int r = set_nonblock(rq->r_fd);
		if (r < 0)
			return r;
	}
	bool recv_hint = rq->r_kind == ROOK__IO_RECV && !(rq->r_flags & (MSG_DONTWAIT | MSG_PEEK));
	bool wait_first = recv_hint && take_drained(rq->r_fd);
	for (;;) {
		ssize_t n;
		uint32_t ev = rq->r_kind == ROOK__IO_SEND ? EPOLLOUT : EPOLLIN;
		int e = EAGAIN;
		if (!wait_first) {
			switch (rq->r_kind) {
			case ROOK__IO_RECV:
				n = recv(rq->r_fd, rq->r_buf, rq->r_len,
					 rq->r_flags | MSG_DONTWAIT);
				break;
			case ROOK__IO_SEND:
				n = send(rq->r_fd, rq->r_buf, rq->r_len,
					 rq->r_flags | MSG_DONTWAIT);
				break;
			default:
				n = accept4(rq->r_fd, rq->r_addr, rq->r_addrlen, rq->r_flags);
				break;
			}
			if (n >= 0) {
				if (recv_hint)
					note_read(rq->r_fd, n, rq->r_len);
				return (int)n;
			}
			e = errno;
			if (e == EINTR)
				continue;
			if (e != EAGAIN ||
			    (rq->r_kind != ROOK__IO_ACCEPT && (rq->r_flags & MSG_DONTWAIT)))
				return -e;
		}
		int r = wait_ready(rq->r_fd, ev, rq->r_own, tag, true);
		*fast = false;
		if (r < 0)
			return r;
		if (r == NOT_POLLABLE && !wait_first)
			return -e;
		wait_first = false;
	}
}

static int do_connect(const struct rook__io_req *rq, bool *fast)
{
	uint32_t tag = close_tag(rq->r_fd);
	int r = set_nonblock(rq->r_fd);
	if (r < 0)
		return r;
	for (;;) {
		if (connect(rq->r_fd, rq->r_addr, rq->r_alen) == 0)
			return 0;
		int e = errno;
		if (e != EINPROGRESS && e != EAGAIN && e != EINTR)
			return -e;
		r = wait_ready(rq->r_fd, EPOLLOUT, NULL, tag, true);
		*fast = false;
		if (r < 0)
			return r;
		if (e == EAGAIN)
			continue; /* a full backlog (AF_UNIX): try again */
		int err = 0;
		socklen_t len = sizeof(err);
		if (getsockopt(rq->r_fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		return -err;
	}
}

static int do_poll(const struct rook__io_req *rq, bool *fast)
{
	uint32_t tag = close_tag(rq->r_fd);
	for (;;) {
		struct pollfd p = {.fd = rq->r_fd, .events = (short)rq->r_flags};
		int n = poll(&p, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > 0)
			return (p.revents & POLLNVAL) ? -EBADF : p.revents;
		int r = wait_ready(rq->r_fd,
				   (uint32_t)rq->r_flags &
				       (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLRDNORM |
					EPOLLRDBAND | EPOLLWRNORM | EPOLLWRBAND),
				   rq->r_own, tag, false);
		*fast = false;
		if (r < 0)
			return r;
	}
}

int rook__epoll_submit(struct rook__io *io, const struct rook__io_req *rq)
{
	bool fast = true;
	int r;
	rook__diag_io(ROOK__DIAG_IO_SUBMITTED);
	switch (rq->r_kind) {
	case ROOK__IO_READ:
	case ROOK__IO_READV:
	case ROOK__IO_WRITE:
	case ROOK__IO_WRITEV:
		r = do_rw(io, rq, &fast);
		break;
	case ROOK__IO_RECV:
	case ROOK__IO_SEND:
	case ROOK__IO_ACCEPT:
		r = do_sock(rq, &fast);
		break;
	case ROOK__IO_CONNECT:
		r = do_connect(rq, &fast);
		break;
	case ROOK__IO_POLL:
		r = do_poll(rq, &fast);
		break;
	case ROOK__IO_CLOSE: {
		/* Count the close, close, then end the waits begun before it
		 * (see wait_ready and fd_closed). seq_cst: before the close(2)
		 * and the in-flight loads in rook__epoll_cancel_fd; pairs with
		 * own_trusted. */
		uint32_t v = atomic_fetch_add_explicit(&closes[(unsigned)rq->r_fd % CLOSE_BUCKETS],
						       1, memory_order_seq_cst) +
			     1;
		r = res(close(rq->r_fd));
		rook__io_close_window(rq->r_fd);
		rook__epoll_cancel_fd(io, rq->r_fd, v);
		break;
	}
	default: /* OPEN, FSYNC */
		r = on_pool(rq);
		fast = false;
		break;
	}
	rook__diag_io(ROOK__DIAG_IO_COMPLETED);
	rook__io_spend_budget(rook__io_self(), fast);
	return r;
}

/* ---- rook_close ----------------------------------------------------------- */

void rook__epoll_cancel_fd(struct rook__io *self, int fd, uint32_t v)
{
	struct rook__io_rt *g = self->i_group;
	rook__ring_lock(self);
	fd_closed(self, fd, v);
	rook__ring_unlock(self);
	struct rook__ring_req local[8], *q = local;
	if (g->g_nworkers > 8 && !(q = rook__calloc(g->g_nworkers, sizeof(*q))))
		return; /* best effort: those waits then end when the fd's file does */
	struct rook__waiter *wt = &rook_self()->t_waiter;
	struct rook__ep_op op = {.o_waiter = wt};
	struct rook__io *to[8], **tp = to;
	if (g->g_nworkers > 8 && !(tp = rook__calloc(g->g_nworkers, sizeof(*tp)))) {
		rook__free(q);
		return;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < g->g_nworkers; i++) {
		struct rook__io *io = atomic_load_explicit(&g->g_ios[i], memory_order_acquire);
		if (io && io != self &&
		    atomic_load_explicit(&io->i_inflight, memory_order_seq_cst) > 0) {
			q[n] = (struct rook__ring_req){
			    .q_kind = ROOK__REQ_CANCEL_FD, .q_fd = fd, .q_closes = v, .q_ep = &op};
			tp[n++] = io;
		}
	}
	if (n) {
		uint32_t token = rook__wait_begin(wt, false);
		atomic_init(&op.o_state, ((uint64_t)n << 32) | token);
		for (unsigned i = 0; i < n; i++)
			rook__ring_post(tp[i], &q[i]);
		(void)rook__wait_park(wt, token);
	}
	if (q != local)
		rook__free(q);
	if (tp != to)
		rook__free(tp);
}
