/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend of io/backend.h: prepare an SQE on the current
 * worker's ring, suspend the task until its CQE, and cancel it in the kernel
 * when the task is cancelled or its deadline passes.
 *
 * Completion and cancellation (the op's o_state, see ring.h):
 * - The op starts with 1 CQE due and the token of a cancellable wait. The
 *   CQE handler (on the ring's worker) stores the result and decrements; the
 *   handler that brings the count to 0 claims the waiter with the token in
 *   o_state and wakes it.
 * - If a canceller or the deadline timer claimed the wait first, the task
 *   resumes (maybe on another worker) with the count still at 1. It begins a
 *   second, non-cancellable wait and CASes o_state to (2, new token): the
 *   op's CQE and the CQE of the ASYNC_CANCEL it now submits (on the op's own
 *   ring: directly if it runs there, else through that ring's request list)
 *   must both arrive before it returns. If the CAS fails the op's CQE came
 *   first and nothing is left in flight.
 * - So the call returns only after the kernel let go of the buffer, and
 *   after nobody can touch the op (which lives on the task's stack) again.
 *   A cancelled call still returns the CQE's result when bytes moved or an
 *   fd was made (nothing is lost or leaked), else the cancel reason.
 *
 * Buffered writes to regular files are the one exception: they run inline,
 * on the worker's thread (write_inline below, with the measurements).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <rook.h>

#include "io/backend.h"
#include "io/ring.h"
#include "io/testing.h"
#include "diag/tdiag.h"
#include "sched/alloc.h"
#include "sched/stack.h"
#include "sched/task.h"
#include "sched/wait.h"

/* Ops in a row by one task that complete in the poll right after they were
 * queued (no real wait) before the task yields to the others anyway. */
#define IO_BUDGET 32u

/* How long a task may keep its worker busy with inline file writes in a row
 * before it yields (see write_inline). */
#define INLINE_SLICE_NS (2 * ROOK_MSEC)

/* Writes smaller than this never take the inline path (no fstat/fcntl). */
#define INLINE_MIN_BYTES 4096u

static void prep(struct io_uring_sqe *sqe, const struct rook__io_req *rq)
{
	uint64_t off = rq->r_off < 0 ? (uint64_t)-1 : (uint64_t)rq->r_off;
	unsigned len = (unsigned)rq->r_len;
	switch (rq->r_kind) {
	case ROOK__IO_READ:
		io_uring_prep_read(sqe, rq->r_fd, rq->r_buf, len, off);
		break;
	case ROOK__IO_WRITE:
		io_uring_prep_write(sqe, rq->r_fd, rq->r_buf, len, off);
		break;
	case ROOK__IO_READV:
		io_uring_prep_readv(sqe, rq->r_fd, rq->r_buf, len, off);
		break;
	case ROOK__IO_WRITEV:
		io_uring_prep_writev(sqe, rq->r_fd, rq->r_buf, len, off);
		break;
	case ROOK__IO_OPEN:
		io_uring_prep_openat(sqe, AT_FDCWD, rq->r_path, rq->r_flags, rq->r_mode);
		break;
	case ROOK__IO_CLOSE:
		io_uring_prep_close(sqe, rq->r_fd);
		break;
	case ROOK__IO_FSYNC:
		io_uring_prep_fsync(sqe, rq->r_fd, 0);
		break;
	case ROOK__IO_ACCEPT:
		io_uring_prep_accept(sqe, rq->r_fd, rq->r_addr, rq->r_addrlen, rq->r_flags);
		break;
	case ROOK__IO_CONNECT:
		io_uring_prep_connect(sqe, rq->r_fd, rq->r_addr, rq->r_alen);
		break;
	case ROOK__IO_RECV:
		io_uring_prep_recv(sqe, rq->r_fd, rq->r_buf, rq->r_len, rq->r_flags);
		break;
	case ROOK__IO_SEND:
		io_uring_prep_send(sqe, rq->r_fd, rq->r_buf, rq->r_len, rq->r_flags);
		break;
	case ROOK__IO_POLL:
		io_uring_prep_poll_add(sqe, rq->r_fd, (unsigned)rq->r_flags);
		break;
	}
}

/* Whether a result of a cancelled op must still reach the caller. */
static bool keep_result(enum rook__io_kind kind, int res)
{
	if (kind == ROOK__IO_OPEN || kind == ROOK__IO_ACCEPT)
		return res >= 0; /* an fd: returning anything else leaks it */
	if (kind == ROOK__IO_CONNECT || kind == ROOK__IO_FSYNC || kind == ROOK__IO_CLOSE)
		return false;
	return res > 0; /* bytes moved, or poll events */
}

/* The wait was claimed by a canceller or the deadline (reason) while the op
 * was still in flight: cancel it in the kernel and wait for every CQE. */
static int cancel_and_drain(struct rook__io_op *op, struct rook__waiter *wt, uint64_t s, int reason,
			    enum rook__io_kind kind)
{
	struct rook__ring_req q = {.q_op = op, .q_kind = ROOK__REQ_CANCEL_OP};
	uint32_t t2 = rook__wait_begin(wt, false);
	/* acq_rel: publishes t2 to the handler that drops the count to 0;
	 * acquire on failure: the op's o_res. */
	if (atomic_compare_exchange_strong_explicit(&op->o_state, &s, (2ull << 32) | t2,
						    memory_order_acq_rel, memory_order_acquire)) {
		if (rook__io_self() == op->o_io)
			rook__ring_prep_req(op->o_io, &q);
		else
			rook__ring_post(op->o_io, &q);
	} else if (rook__wait_claim(wt, t2, 0)) {
		/* The op's CQE came first: end the wait we just began. */
		rook__wait_wake(wt);
	}
	(void)rook__wait_park(wt, t2);
	rook__diag_io(ROOK__DIAG_IO_CANCELLED);
	return keep_result(kind, op->o_res) ? op->o_res : reason;
}

/* Yield after IO_BUDGET fast ops (completed without a real wait) in a row
 * by the same task on a worker. */
void rook__io_spend_budget(struct rook__io *io, bool fast)
{
	const void *me = rook_self();
	if (!fast || io->i_streak_task != me) {
		io->i_streak_task = me;
		io->i_streak = fast;
		io->i_inline_since_ns = 0;
		return;
	}
	if (++io->i_streak < IO_BUDGET)
		return;
	io->i_streak = 0;
	(void)rook_yield(); /* a cancellation shows at the next blocking call */
}

/* ---- buffered file writes: inline ------------------------------------------ */

/*
 * A buffered write to a regular file is done with pwrite on the worker's
 * own thread, not through the ring: ext4 does not take buffered writes
 * with IOCB_NOWAIT, so io_uring punts each one to an io-wq thread (a
 * thread hop for a page-cache copy) and queues it behind the fsyncs
 * holding io-wq's threads (numbers and the variants tried: perf/NOTES.md,
 * "inline file writes").
 *
 * Only when it is a page-cache copy: a regular file (pipes, sockets, ttys
 * may block for ever) on a filesystem with a block device behind it
 * (major(st_dev) != 0; FUSE, NFS, 9p, tmpfs, overlay and btrfs have
 * anonymous device numbers, and a FUSE write can wait on a daemon that may
 * be one of our own tasks), not O_DIRECT (io_uring does those
 * asynchronously) or O_DSYNC/O_SYNC (they wait for the disk), and of at
 * least INLINE_MIN_BYTES (smaller writes, mostly to sockets and pipes,
 * skip the checks: one fstat and one fcntl, ~1 us). The write can still
 * sleep under dirty-page throttling, as Go's does. A task writing in a
 * loop never suspends, so inline writes have a budget of their own: after
 * INLINE_SLICE_NS of them in a row the task yields (time, not a count:
 * a count let a file's writes hold back the next task's fsync).
 */
static _Atomic int write_mode = ROOK__FILE_WRITE_AUTO;
static _Atomic unsigned long inline_writes;

int rook__io_set_file_write_mode(int mode)
{
	return atomic_exchange_explicit(&write_mode, mode, memory_order_relaxed);
}

unsigned long rook__io_inline_writes(void)
{
	return atomic_load_explicit(&inline_writes, memory_order_relaxed);
}

/* Bytes a write or writev request carries. */
static size_t write_bytes(const struct rook__io_req *rq)
{
	if (rq->r_kind == ROOK__IO_WRITE)
		return rq->r_len;
	const struct iovec *v = rq->r_buf;
	size_t n = 0;
	for (size_t i = 0; i < rq->r_len; i++)
		n += v[i].iov_len;
	return n;
}

bool rook__io_write_inline_ok(const struct rook__io_req *rq)
{
	if (rq->r_kind != ROOK__IO_WRITE && rq->r_kind != ROOK__IO_WRITEV)
		return false;
	int mode = atomic_load_explicit(&write_mode, memory_order_relaxed);
	if (mode == ROOK__FILE_WRITE_RING)
		return false;
	/* Below a page the two checks would cost more than they can save, and
	 * small writes are mostly to sockets and pipes: through the ring. */
	if (write_bytes(rq) < INLINE_MIN_BYTES)
		return false;
	struct stat own;
	const struct stat *st = rook__io_req_stat(rq, &own);
	if (!st || !S_ISREG(st->st_mode) || major(st->st_dev) == 0)
		return false;
	int fl = fcntl(rq->r_fd, F_GETFL);
	return fl >= 0 && !(fl & (O_DIRECT | O_DSYNC));
}

/* Yield once the same task has kept its worker busy with inline writes for
 * INLINE_SLICE_NS: they are CPU work on the worker, so they are budgeted by
 * time, not counted as IO_BUDGET ops (32 writes of 64 KiB is 0.6 ms). */
static void spend_inline(struct rook__io *io)
{
	const void *me = rook_self();
	uint64_t now = rook_now();
	if (io->i_streak_task != me || io->i_inline_since_ns == 0) {
		io->i_streak_task = me;
		io->i_streak = 0;
		io->i_inline_since_ns = now;
		return;
	}
	if (now - io->i_inline_since_ns < INLINE_SLICE_NS)
		return;
	io->i_inline_since_ns = 0;
	(void)rook_yield(); /* a cancellation shows at the next blocking call */
}

/* errno is read right after the call, on the thread that made it. */
int rook__io_write_inline(struct rook__io *io, const struct rook__io_req *rq)
{
	ssize_t n;
	do {
		if (rq->r_kind == ROOK__IO_WRITE)
			n = rq->r_off < 0 ? write(rq->r_fd, rq->r_buf, rq->r_len)
					  : pwrite(rq->r_fd, rq->r_buf, rq->r_len, rq->r_off);
		else
			n = rq->r_off < 0 ? writev(rq->r_fd, rq->r_buf, (int)rq->r_len)
					  : pwritev(rq->r_fd, rq->r_buf, (int)rq->r_len, rq->r_off);
	} while (n < 0 && errno == EINTR);
	int r = n < 0 ? -errno : (int)n;
	atomic_fetch_add_explicit(&inline_writes, 1, memory_order_relaxed);
	spend_inline(io);
	return r;
}

/* ---- through the ring ----------------------------------------------------- */

int rook__io_submit(const struct rook__io_req *rq)
{
	struct rook__io *io = rook__io_self();
	struct rook_task *self = rook_self();
	if (!self || !io)
		return -EPERM;
	bool shield = rq->r_kind == ROOK__IO_CLOSE;
	int r = shield ? 0 : rook__wait_check();
	if (r)
		return r;
	if (io->i_backend == ROOK__BACKEND_EPOLL)
		return rook__epoll_submit(io, rq);
	if (rook__io_write_inline_ok(rq))
		return rook__io_write_inline(io, rq);
	struct rook__waiter *wt = &self->t_waiter;
	struct rook__io_op op = {.o_waiter = wt};
	uint32_t token = rook__wait_begin(wt, !shield && rook__wait_cancellable());
	atomic_init(&op.o_state, (1ull << 32) | token);
	rook__ring_lock(io);
	struct io_uring_sqe *sqe = rook__ring_sqe(io);
	prep(sqe, rq);
	io_uring_sqe_set_data(sqe, &op);
	rook__ring_queued(io, &op);
	rook__ring_unlock(io);
	rook__diag_io(ROOK__DIAG_IO_SUBMITTED);
	self->t_stack->s_diag.d_fd = rq->r_fd;
	r = rook__wait_park(wt, token);
	self->t_stack->s_diag.d_fd = -1;
	rook__diag_io(ROOK__DIAG_IO_COMPLETED);
	/* io is stale from here on: we may run on another worker. */
	uint64_t s = atomic_load_explicit(&op.o_state, memory_order_acquire);
	if ((s >> 32) != 0)
		return cancel_and_drain(&op, wt, s, r, rq->r_kind);
	if (r != op.o_res) /* claimed by a canceller, then the CQE came */
		return keep_result(rq->r_kind, op.o_res) ? op.o_res : r;
	/* The task may run on another worker now: its budget is kept there. */
	rook__io_spend_budget(rook__io_self(), op.o_fast);
	if (r == -ECANCELED && !rook__task_cancel_pending(self))
		return -EBADF; /* cancelled by rook_close of its fd */
	return r;
}

/* One cancel-by-fd request and the ring it goes to. */
struct fd_cancel {
	struct rook__ring_req fc_q;
	struct rook__io *fc_io;
};

/* Cancel every op on fd's file on the rings that have ops in flight. */
static void cancel_on_rings(struct rook__io *self, struct rook_task *me, int fd)
{
	struct rook__io_rt *g = self->i_group;
	struct fd_cancel local[8], *fc = local;
	if (g->g_nworkers > 8 && !(fc = rook__calloc(g->g_nworkers, sizeof(*fc))))
		return; /* best effort: ops on fd then end when the peer acts */
	struct rook__waiter *wt = &me->t_waiter;
	struct rook__io_op op = {.o_waiter = wt};
	unsigned n = 0;
	for (unsigned i = 0; i < g->g_nworkers; i++) {
		struct rook__io *io = atomic_load_explicit(&g->g_ios[i], memory_order_acquire);
		if (io && atomic_load_explicit(&io->i_inflight, memory_order_seq_cst) > 0)
			fc[n++] = (struct fd_cancel){
			    .fc_q = {.q_op = &op, .q_kind = ROOK__REQ_CANCEL_FD, .q_fd = fd},
			    .fc_io = io,
			};
	}
	if (n) {
		uint32_t token = rook__wait_begin(wt, false);
		atomic_init(&op.o_state, ((uint64_t)n << 32) | token);
		for (unsigned i = 0; i < n; i++) {
			if (fc[i].fc_io == self)
				rook__ring_prep_req(fc[i].fc_io, &fc[i].fc_q);
			else
				rook__ring_post(fc[i].fc_io, &fc[i].fc_q);
		}
		(void)rook__wait_park(wt, token);
	}
	if (fc != local)
		rook__free(fc);
}

/*
 * A cancel before the close leaves a window: an op prepared on another
 * worker in between reaches the kernel, takes the file, and waits forever
 * on a file nobody can name. So the fd is duplicated, the number detached
 * from the file, and the cancel names the duplicate (ASYNC_CANCEL_FD
 * matches the file, not the number): an op that took the file before
 * counted itself in i_inflight before it was submitted (rook__ring_queued,
 * seq_cst), so the sweep after the fence sees its ring. An SQE still
 * queued names the number, and reaches the kernel at the latest with the
 * sweep's cancel on its ring: until the sweep ends the number holds an
 * O_PATH tombstone, on which every op fails with EBADF, so no
 * file opened meanwhile by another thread can take the number and the op.
 * Without a spare fd (EMFILE) it falls back to cancel-then-close.
 */
int rook__io_cancel_fd(int fd)
{
	struct rook__io *self = rook__io_self();
	struct rook_task *me = rook_self();
	if (!self || !me || self->i_backend == ROOK__BACKEND_EPOLL)
		return fd; /* epoll: after the close itself (io/epoll.c) */
	if (!rook__ring_can_cancel_fd())
		return fd;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dup < 0) {
		if (errno == EBADF)
			return -EBADF;
		cancel_on_rings(self, me, fd);
		return fd;
	}
	/* Neither drops the last reference: neither blocks nor fails. The
	 * tombstone is opened for this close: one kept by the runtime could
	 * be closed by user code, and its number taken by a live file. */
	int tomb = open("/", O_PATH | O_CLOEXEC);
	bool parked = tomb >= 0 && dup3(tomb, fd, O_CLOEXEC) == fd;
	if (tomb >= 0)
		(void)close(tomb);
	if (!parked)
		(void)close(fd);
	rook__io_close_window(fd);
	atomic_thread_fence(memory_order_seq_cst);
	cancel_on_rings(self, me, dup);
	if (parked)
		(void)close(fd);
	return dup;
}
