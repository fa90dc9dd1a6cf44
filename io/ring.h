/* SPDX-License-Identifier: MIT */
/*
 * The per-worker io_uring ring (io_uring backend). Each worker owns one ring,
 * created on its own thread. In a one-worker runtime (SINGLE_ISSUER and
 * DEFER_TASKRUN where the kernel has them) only the owner touches its SQ
 * and CQ. With more workers, an idle worker may drive the ring (or epoll
 * set) of an owner stuck in a long task (rook__park_rescue): then the SQ
 * and CQ are under i_lock, which the owner takes around each of its steps. Other threads
 * reach a ring otherwise only through rook__park_wake and the
 * remote-request list (rook__ring_post), both safe from any thread.
 *
 * The ring also implements the park point of sched/park.h: a worker sleeps
 * in io_uring_enter waiting for one completion, bounded by its timeout.
 *
 * struct rook__io is the per-worker IO state of both backends: the wake-up
 * protocol, the remote-request list and the cooperative budget are shared;
 * the epoll backend (io/epoll.c) adds its epoll instance and fd table and
 * leaves i_ring unused.
 */
#ifndef ROOK_IO_RING_H
#define ROOK_IO_RING_H

#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/lock.h"

#include "io/backend.h"
#include "sched/park.h"

struct rook__waiter;
struct rook__ep_op;
struct rook__ep_fd;

enum rook__backend { ROOK__BACKEND_URING = 1, ROOK__BACKEND_EPOLL = 2 };

/* CQE user_data tags that are not an operation (ops are 8-aligned
 * pointers; bit 0 set marks the CQE of a cancel request for that op). */
#define ROOK__UD_EFD  2u /* the eventfd read armed for wake-ups */
#define ROOK__UD_WAKE 4u /* a MSG_RING wake-up from another ring */

/* Remote requests a ring's owner performs for another thread. */
enum rook__ring_req_kind {
	ROOK__REQ_CANCEL_OP = 1, /* ASYNC_CANCEL the op (its own ring); epoll: q_ep */
	ROOK__REQ_CANCEL_FD = 2, /* ASYNC_CANCEL every op on q_fd; epoll: end waits */
	ROOK__REQ_WAKE = 3,      /* rook__wait_wake(q_waiter), claimed already */
};

/*
 * One operation in flight. Lives on the calling task's stack until the call
 * returns, which happens only after every CQE that names it has been
 * handled (the op's own, and the one of each cancel request aimed at it).
 * o_state packs the number of CQEs still due (high 32 bits) and the waiter
 * token the last of them claims (low 32 bits).
 */
struct rook__io_op {
	_Atomic uint64_t o_state;
	struct rook__waiter *o_waiter;
	struct rook__io *o_io; /* the ring its SQE went to */
	int o_res;             /* the op's CQE result (written before o_state drops) */
	bool o_fast;           /* completed in the poll right after it was queued */
	uint32_t o_batch;      /* that poll's number */
};

/* A request for another ring's owner; valid until its CQE was handled. */
struct rook__ring_req {
	struct rook__ring_req *q_next; /* on the ring's list, under i_req_lock */
	struct rook__io_op *q_op;      /* counts the request's CQE */
	int q_kind;                    /* enum rook__ring_req_kind */
	int q_fd;                      /* ROOK__REQ_CANCEL_FD */
	uint32_t q_closes;             /* epoll CANCEL_FD: the fd's close count */
	struct rook__waiter *q_waiter; /* ROOK__REQ_WAKE */
	struct rook__ep_op *q_ep;      /* epoll ROOK__REQ_CANCEL_OP: the waiting op */
};

struct rook__io {
	struct rook__park_io i_head; /* first: what the scheduler reads */
	int i_backend;               /* enum rook__backend */
	struct io_uring i_ring;
	struct rook__io_rt *i_group;
	unsigned i_index;
	struct rook__io *i_pool_next; /* type-stable pool of ring states */
	int i_efd;                    /* eventfd wake-ups; -1 after fini */
	uint64_t i_efd_buf;           /* the armed read's buffer */
	unsigned i_queued;            /* SQEs prepared since the last flush */
	uint32_t i_batch;             /* flushes (and sleeps) so far */
	_Atomic int i_inflight;       /* ops whose main CQE is due (any thread reads) */
	/* Park word: 0 running, 1 asleep in io_uring_enter, 2 wake pending,
	 * 3 dead (after fini). See the protocol in ring.c. */
	_Alignas(64) _Atomic uint32_t i_park;
	_Atomic int i_wakers; /* wakers inside rook__park_wake */
	struct rook__spin i_req_lock;
	struct rook__ring_req *i_req_head; /* under i_req_lock */
	_Atomic bool i_req_any;
	/* Cooperative budget (owner only): consecutive fast ops by one task,
	 * and when its current run of inline writes began (0: none). */
	_Alignas(64) const void *i_streak_task;
	unsigned i_streak;
	uint64_t i_inline_since_ns;
	/* Rescue (more than one worker): the lock over i_ring's SQ and CQ (or
	 * the epoll fd table) and the fields the poll path writes (i_queued,
	 * i_batch, i_late), recursive for its holder (a reap wakes a task, whose wake
	 * may queue a MSG_RING on the same ring); the owner's polls so far,
	 * and their count at a rescuer's last look. */
	bool i_shared;
	struct rook__spin i_lock;
	_Atomic(const void *) i_holder;
	unsigned i_depth;
	_Atomic uint32_t i_polls;
	_Atomic uint32_t i_seen;
	/* epoll backend (owner only): the instance, and per fd the ops that
	 * wait on it (indexed by fd, grown on demand). */
	int i_epfd;
	struct rook__ep_fd *i_fds;
	unsigned i_nfds;
	/* Late-completion injection (io/testing.h; owner only): op CQEs held
	 * back from one reap to the next. Always empty outside tests. */
	unsigned i_nlate;
	struct {
		uint64_t l_ud;
		int l_res;
	} i_late[8];
};

/* The IO state of a runtime (sched/park.h): its backend and every worker's
 * state, for rook_close (cancel on every worker). */
struct rook__io_rt {
	int g_backend;
	unsigned g_entries;
	unsigned g_nworkers;
	_Atomic bool g_reported;            /* a ring init failure was printed */
	_Atomic(struct rook__io *) g_ios[]; /* set by each worker's park init */
};

/* Error injection (io/testing.h): the kinds, and whether this pass of a
 * kind's point must fail. Constant false outside ROOK_TESTING builds. */
enum rook__inj {
	ROOK__INJ_SUBMIT,   /* submit returns inj_err */
	ROOK__INJ_ENTER,    /* a sleep in io_uring_enter returns at once */
	ROOK__INJ_SQ_FULL,  /* io_uring_get_sqe finds the SQ full */
	ROOK__INJ_CQE_LATE, /* an op's CQE is held back to the next reap */
	ROOK__INJ_EP_WAIT,  /* epoll_wait fails with EINTR */
	ROOK__INJ_EP_CTL,   /* arming with epoll_ctl fails with inj_err */
	ROOK__INJ_KINDS
};
#ifdef ROOK_TESTING
extern _Atomic unsigned rook__inj_every[ROOK__INJ_KINDS];
bool rook__inj_fire(enum rook__inj kind);
#endif
static inline bool rook__inj_due(enum rook__inj kind)
{
#ifdef ROOK_TESTING
	/* Idle: one relaxed load. */
	return atomic_load_explicit(&rook__inj_every[kind], memory_order_relaxed) &&
	       rook__inj_fire(kind);
#else
	(void)kind;
	return false;
#endif
}
/* The errno (negative) an armed kind injects. */
int rook__inj_err(enum rook__inj kind);

/* rook_close: the number no longer names the file and the sweep of the
 * ops on it has not begun (the hook of io/testing.h, if one is set). */
void rook__io_close_window(int fd);

/* The calling worker thread's IO state; NULL elsewhere. Never inlined: a
 * task may move to another thread across a suspension. */
struct rook__io *rook__io_self(void);

/* Wake a waiter whose wait the caller just claimed: completions run in
 * completion order (FIFO), not newest first. */
void rook__io_wake_claimed(struct rook__waiter *w);

/* The cooperative budget (io/uring.c, both backends): after IO_BUDGET ops
 * in a row by one task that did not have to wait (fast), yield. */
void rook__io_spend_budget(struct rook__io *io, bool fast);

/* Buffered page-cache writes done on the worker's thread (io/uring.c):
 * whether rq qualifies, and doing it. */
bool rook__io_write_inline_ok(const struct rook__io_req *rq);
int rook__io_write_inline(struct rook__io *io, const struct rook__io_req *rq);

/* The epoll backend (io/epoll.c). */
int rook__epoll_init(struct rook__io *io);
void rook__epoll_fini(struct rook__io *io);
/* Under the ring lock: handle ready fds, waiting up to timeout_ns (0: not
 * at all; UINT64_MAX: no bound). Returns the events handled. */
unsigned rook__epoll_poll(struct rook__io *io, uint64_t timeout_ns);
/* Owner: perform a remote CANCEL_OP / CANCEL_FD request. */
void rook__epoll_req(struct rook__io *io, struct rook__ring_req *q);
int rook__epoll_submit(struct rook__io *io, const struct rook__io_req *rq);
void rook__epoll_cancel_fd(struct rook__io *io, int fd, uint32_t v);

/* The owner's hold on its ring's SQ and CQ (no-ops in a one-worker
 * runtime): around every rook__ring_sqe ... rook__ring_queued. Recursive. */
void rook__ring_lock(struct rook__io *io);
void rook__ring_unlock(struct rook__io *io);

/* Owner only (under rook__ring_lock): an SQE to fill; flushes the SQ when
 * it is full (never NULL). */
struct io_uring_sqe *rook__ring_sqe(struct rook__io *io);

/* Owner only: account an SQE prepared for op (op NULL: not an op). */
void rook__ring_queued(struct rook__io *io, struct rook__io_op *op);

/* Any thread: ask io's owner to perform q (which must stay valid until the
 * CQE it causes has been handled; for ROOK__REQ_WAKE, until the owner has
 * woken q_waiter), and wake the owner. Touches only io (type-stable), never
 * the runtime, so a thread outside the runtime can use it to wake a task
 * without racing with the runtime's teardown. */
void rook__ring_post(struct rook__io *io, struct rook__ring_req *q);

/* Owner only: prepare the SQE of request q on io (takes the ring lock). */
void rook__ring_prep_req(struct rook__io *io, const struct rook__ring_req *q);

/* Handle a CQE that names op (main: the op's own; else a cancel's). */
void rook__ring_op_cqe(struct rook__io *io, struct rook__io_op *op, bool main, int res);

/* Whether the kernel supports IORING_ASYNC_CANCEL_FD (Linux 5.19). */
bool rook__ring_can_cancel_fd(void);

#endif
