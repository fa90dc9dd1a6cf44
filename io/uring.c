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
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>

#include "io/backend.h"
#include "io/ring.h"
#include "sched/alloc.h"
#include "sched/runtime.h"
#include "sched/task.h"
#include "sched/wait.h"
#include "sched/worker.h"

/* Ops in a row by one task that complete in the poll right after they were
 * queued (no real wait) before the task yields to the others anyway. */
#define IO_BUDGET 32u

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
static int cancel_and_drain(struct rook__io_op *op, struct rook__waiter *wt, uint64_t s,
			    int reason, enum rook__io_kind kind)
{
	struct rook__ring_req q = { .q_op = op, .q_kind = ROOK__REQ_CANCEL_OP };
	uint32_t t2 = rook__wait_begin(wt, false);
	/* acq_rel: publishes t2 to the handler that drops the count to 0;
	 * acquire on failure: the op's o_res. */
	if (atomic_compare_exchange_strong_explicit(&op->o_state, &s, (2ull << 32) | t2,
						    memory_order_acq_rel, memory_order_acquire)) {
		struct rook__worker *w = rook__worker_self();
		if (w->w_io == op->o_io)
			rook__ring_prep_req(op->o_io, &q);
		else
			rook__ring_post(op->o_io, &q);
	} else if (rook__wait_claim(wt, t2, 0)) {
		/* The op's CQE came first: end the wait we just began. */
		rook__wait_wake(wt);
	}
	(void)rook__wait_park(wt, t2);
	return keep_result(kind, op->o_res) ? op->o_res : reason;
}

/* Yield after IO_BUDGET fast ops in a row by the same task on a worker. */
static void spend_budget(const struct rook__io_op *op)
{
	struct rook__worker *w = rook__worker_self();
	struct rook__io *io = w->w_io;
	const void *me = w->w_current;
	if (!op->o_fast || io->i_streak_task != me) {
		io->i_streak_task = me;
		io->i_streak = op->o_fast;
		return;
	}
	if (++io->i_streak < IO_BUDGET)
		return;
	io->i_streak = 0;
	(void)rook_yield(); /* a cancellation shows at the next blocking call */
}

int rook__io_submit(const struct rook__io_req *rq)
{
	struct rook__worker *w = rook__worker_self();
	struct rook_task *self = w ? w->w_current : NULL;
	if (!self)
		return -EPERM;
	bool shield = rq->r_kind == ROOK__IO_CLOSE;
	int r = shield ? 0 : rook__wait_check();
	if (r)
		return r;
	struct rook__io *io = w->w_io;
	struct rook__waiter *wt = &self->t_waiter;
	struct rook__io_op op = { .o_waiter = wt };
	uint32_t token = rook__wait_begin(wt, !shield && rook__wait_cancellable());
	atomic_init(&op.o_state, (1ull << 32) | token);
	struct io_uring_sqe *sqe = rook__ring_sqe(io);
	prep(sqe, rq);
	io_uring_sqe_set_data(sqe, &op);
	rook__ring_queued(io, &op);
	r = rook__wait_park(wt, token);
	/* w is stale from here on: we may run on another worker. */
	uint64_t s = atomic_load_explicit(&op.o_state, memory_order_acquire);
	if ((s >> 32) != 0)
		return cancel_and_drain(&op, wt, s, r, rq->r_kind);
	if (r != op.o_res) /* claimed by a canceller, then the CQE came */
		return keep_result(rq->r_kind, op.o_res) ? op.o_res : r;
	spend_budget(&op);
	if (r == -ECANCELED && !rook__task_cancel_pending(self))
		return -EBADF; /* cancelled by rook_close of its fd */
	return r;
}

/* One cancel-by-fd request and the ring it goes to. */
struct fd_cancel {
	struct rook__ring_req fc_q;
	struct rook__io *fc_io;
};

void rook__io_cancel_fd(int fd)
{
	struct rook__worker *w = rook__worker_self();
	if (!w || !w->w_current || !rook__ring_can_cancel_fd())
		return;
	struct rook_rt *rt = w->w_rt;
	struct fd_cancel local[8], *fc = local;
	if (rt->rt_nworkers > 8 && !(fc = rook__calloc(rt->rt_nworkers, sizeof(*fc))))
		return; /* best effort: ops on fd then end when the peer acts */
	struct rook__waiter *wt = &w->w_current->t_waiter;
	struct rook__io_op op = { .o_waiter = wt };
	unsigned n = 0;
	for (unsigned i = 0; i < rt->rt_nworkers; i++) {
		struct rook__io *io = rt->rt_workers[i].w_io;
		if (io && atomic_load_explicit(&io->i_inflight, memory_order_relaxed) > 0)
			fc[n++] = (struct fd_cancel){
				.fc_q = { .q_op = &op, .q_kind = ROOK__REQ_CANCEL_FD, .q_fd = fd },
				.fc_io = io,
			};
	}
	if (n) {
		uint32_t token = rook__wait_begin(wt, false);
		atomic_init(&op.o_state, ((uint64_t)n << 32) | token);
		for (unsigned i = 0; i < n; i++) {
			if (fc[i].fc_io == w->w_io)
				rook__ring_prep_req(fc[i].fc_io, &fc[i].fc_q);
			else
				rook__ring_post(fc[i].fc_io, &fc[i].fc_q);
		}
		(void)rook__wait_park(wt, token);
	}
	if (fc != local)
		rook__free(fc);
}
