/* SPDX-License-Identifier: MIT */
/*
 * Per-worker io_uring rings and the park point of sched/park.h.
 *
 * Set-up and backend choice (rook__io_rt_init, once per runtime start): the
 * kernel's io_uring support is probed (a ring is set up and a NOP goes
 * through io_uring_enter, so a seccomp filter that allows setup but denies
 * enter is caught here, not at the first IO), with the setup flags that
 * work and IORING_ASYNC_CANCEL_FD. A success or a permanent refusal
 * (ENOSYS, EPERM, EACCES, EINVAL) is cached; a transient one (EMFILE,
 * ENFILE, ENOMEM, EAGAIN) is not, and the next start probes again. Out of
 * fds (EMFILE, ENFILE) that start fails with it (epoll would need fds
 * too); ENOMEM and EAGAIN fall back like a refusal (ENOMEM is also
 * RLIMIT_MEMLOCK before Linux 5.12, where epoll is the right answer). ROOK_IO=uring|epoll|auto
 * picks the backend; auto falls back to epoll (io/epoll.c) with one line on stderr. Each worker
 * then creates its ring (or epoll instance) on its own thread in rook__park_init.
 *
 * Batching: ops only prepare SQEs. rook__park_poll (once per scheduling
 * round while SQEs are queued or ops are in flight, every 16th round
 * otherwise: see worker_poll in sched/worker.c) flushes them when FLUSH_BATCH are
 * queued, when the worker has no other local work, or every FLUSH_EVERY
 * polls, and it reaps the CQ every time (reaping needs no syscall).
 * Parking flushes too. A full SQ is flushed at once by rook__ring_sqe, so
 * preparing never fails.
 *
 * Wake-up protocol (i_park; no lost wake-ups):
 * - The sleeper CASes 0 -> 1 and then sleeps in io_uring_enter until one CQE
 *   arrives; if the CAS fails a wake is pending (2): it consumes it (stores
 *   0) and returns without sleeping. After sleeping it stores 0.
 * - Posted requests (rook__ring_post) are taken at the park point. Their
 *   wakers' 2 may have been consumed by an earlier failed CAS, so the
 *   sleeper never sleeps after taking any: a woken task would wait for a
 *   kick that never comes (tools/models/ring_park.pml).
 * - A waker exchanges i_park with 2. Only if it read 1 (asleep, or about to
 *   be) does it kick the ring: a write to the worker's eventfd, on which the
 *   ring always keeps a read armed, or (ROOK__WAKE_MSG_RING, from another
 *   worker's thread) an IORING_OP_MSG_RING CQE. Either completes the
 *   sleeper's wait; a kick that lands after the sleeper woke for another
 *   reason makes its next wait return at once (spurious, allowed).
 * - Both sides use seq_cst, so either the sleeper's CAS sees 2, or the
 *   waker's exchange sees 1 and kicks.
 * - Wakers may hold a stale pointer to a worker that is stopping: they count
 *   themselves in i_wakers around the kick, and fini stores 3 (dead) and
 *   waits for i_wakers to drain before closing the ring and the eventfd; a
 *   waker that comes later reads 3 or 2 and touches nothing. Ring states are
 *   type-stable (pooled, never freed) for the same reason.
 *
 * The kick is the eventfd by default: MSG_RING measured no faster on the
 * wake_ping workload and cannot serve plain threads; it stays selectable
 * (io/testing.h) and tested (numbers: perf/NOTES.md, "wake path and io-wq").
 */
#include "io/ring.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "io/testing.h"
#include "sched/alloc.h"
#include "sched/fork.h"
#include "sched/lock.h"
#include "sched/park.h"
#include "sched/task.h"
#include "sched/wait.h"

#define DEFAULT_ENTRIES 256u
#define CQ_FACTOR       8u   /* CQ entries per SQ entry: many ops stay in flight */
#define FLUSH_BATCH     32u  /* queued SQEs that force a flush */
#define FLUSH_EVERY     16u  /* polls between flushes while tasks keep running */
#define UD_MSG_SRC      3u   /* low bits of a MSG_RING's own user_data: target io */
#define IOWQ_BOUNDED    256u /* io-wq bounded workers per ring, at most (raise_iowq_limit) */

/* ---- process-wide probe ------------------------------------------------ */

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static bool probe_done;      /* probe_err is a lasting answer (under probe_lock) */
static int probe_err;        /* 0, or the -errno that makes io_uring unusable */
static unsigned probe_flags; /* setup flags every ring uses */
static bool probe_cancel_fd; /* IORING_ASYNC_CANCEL_FD works */
static _Atomic int force_err;
static _Atomic unsigned force_cq; /* CQ entries of new rings; 0: CQ_FACTOR per SQE */
static _Atomic int wake_mode = ROOK__WAKE_EVENTFD;
static _Atomic unsigned long wakes_efd, wakes_msg;
static _Atomic unsigned long rescues; /* rescue passes over a stuck owner's ring */

static const unsigned flag_sets[] = {
    /* Linux 6.1: one submitter thread; completions are posted only when
     * that thread enters the kernel (no IPIs, no interruptions). */
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    /* Linux 5.19: task work runs at the next enter instead of by IPI;
     * IORING_SQ_TASKRUN tells us when an enter is due. */
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    /* Linux 5.6 (CLAMP below); EXT_ARG timeouts from 5.11, else liburing
     * adds a timeout SQE. */
    0,
};

/* Linux 5.19 added IORING_ASYNC_CANCEL_FD; older kernels answer -EINVAL. */
static bool probe_cancel_fd_on(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	struct io_uring_cqe *cqe;
	if (!sqe)
		return false;
	io_uring_prep_cancel_fd(sqe, r->ring_fd, IORING_ASYNC_CANCEL_ALL);
	if (io_uring_submit_and_wait(r, 1) < 1 || io_uring_wait_cqe(r, &cqe) < 0)
		return false;
	bool ok = cqe->res != -EINVAL;
	io_uring_cqe_seen(r, cqe);
	return ok;
}

/* A NOP through io_uring_enter: what every op will need. A seccomp filter
 * may allow io_uring_setup and deny io_uring_enter (then every IO would
 * wait for ever). */
static int probe_nop(struct io_uring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	struct io_uring_cqe *cqe;
	if (!sqe)
		return -ENOMEM;
	io_uring_prep_nop(sqe);
	int n = io_uring_submit_and_wait(r, 1);
	if (n < 0)
		return n;
	n = io_uring_wait_cqe(r, &cqe);
	if (n < 0)
		return n;
	io_uring_cqe_seen(r, cqe);
	return 0;
}

static int probe(unsigned *flags, bool *cancel_fd)
{
	int err = -EINVAL;
	for (size_t i = 0; i < sizeof(flag_sets) / sizeof(flag_sets[0]); i++) {
		struct io_uring r;
		struct io_uring_params p = {.flags = flag_sets[i]};
		err = io_uring_queue_init_params(8, &r, &p);
		if (err == -EINVAL)
			continue; /* flags this kernel does not know */
		if (err < 0)
			break;
		err = probe_nop(&r);
		if (err == 0) {
			*flags = flag_sets[i];
			*cancel_fd = probe_cancel_fd_on(&r);
		}
		io_uring_queue_exit(&r);
		break;
	}
	return err < 0 ? err : 0;
}

/* Resource shortages pass; the process may have fds or memory again at the
 * next start. */
static bool transient(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -EAGAIN ||
	       err == -EINTR;
}

/* 0 if io_uring works, else why not. */
static int uring_usable(void)
{
	int err = atomic_load_explicit(&force_err, memory_order_relaxed);
	if (err)
		return err;
	pthread_mutex_lock(&probe_lock);
	if (!probe_done) {
		unsigned flags = 0;
		bool cancel_fd = false;
		err = probe(&flags, &cancel_fd);
		if (!transient(err)) {
			probe_flags = flags;
			probe_cancel_fd = cancel_fd;
			probe_err = err;
			probe_done = true;
		}
	} else {
		err = probe_err;
	}
	pthread_mutex_unlock(&probe_lock);
	return err;
}

bool rook__ring_can_cancel_fd(void)
{
	return probe_cancel_fd;
}

void rook__io_force_unavailable(int err)
{
	atomic_store_explicit(&force_err, err, memory_order_relaxed);
}

/* Error injection (io/testing.h): armed only in test builds. Per kind:
 * every every-th pass fails (0: off), with err where the kind has one. */
#ifdef ROOK_TESTING
_Atomic unsigned rook__inj_every[ROOK__INJ_KINDS];
#endif
static _Atomic unsigned inj_n[ROOK__INJ_KINDS];
static _Atomic int inj_err[ROOK__INJ_KINDS];
static _Atomic unsigned long inj_count;

static void inj_arm(enum rook__inj kind, int err, unsigned every)
{
	atomic_store_explicit(&inj_err[kind], err, memory_order_relaxed);
	atomic_store_explicit(&inj_n[kind], 0, memory_order_relaxed);
#ifdef ROOK_TESTING
	atomic_store_explicit(&rook__inj_every[kind], every, memory_order_relaxed);
#else
	(void)every;
#endif
}

#ifdef ROOK_TESTING
bool rook__inj_fire(enum rook__inj kind)
{
	unsigned e = atomic_load_explicit(&rook__inj_every[kind], memory_order_relaxed);
	if (!e || atomic_fetch_add_explicit(&inj_n[kind], 1, memory_order_relaxed) % e != e - 1)
		return false;
	atomic_fetch_add_explicit(&inj_count, 1, memory_order_relaxed);
	return true;
}
#endif

int rook__inj_err(enum rook__inj kind)
{
	return atomic_load_explicit(&inj_err[kind], memory_order_relaxed);
}

void rook__io_inject_submit(int err, unsigned every)
{
	inj_arm(ROOK__INJ_SUBMIT, err, every);
}

void rook__io_inject_enter_eintr(unsigned every)
{
	inj_arm(ROOK__INJ_ENTER, 0, every);
}

void rook__io_inject_sq_full(unsigned every)
{
	inj_arm(ROOK__INJ_SQ_FULL, 0, every);
}

void rook__io_inject_cqe_late(unsigned every)
{
	inj_arm(ROOK__INJ_CQE_LATE, 0, every);
}

void rook__io_inject_epoll_wait_eintr(unsigned every)
{
	inj_arm(ROOK__INJ_EP_WAIT, -EINTR, every);
}

void rook__io_inject_epoll_ctl(int err, unsigned every)
{
	inj_arm(ROOK__INJ_EP_CTL, err, every);
}

/* Set-up failure: the nth pass of stage from now fails with err. */
static _Atomic int inj_setup_err, inj_setup_stage;
static _Atomic unsigned inj_setup_left;

void rook__io_inject_setup(int err, unsigned nth, int stage)
{
	atomic_store_explicit(&inj_setup_err, err, memory_order_relaxed);
	atomic_store_explicit(&inj_setup_stage, stage, memory_order_relaxed);
	atomic_store_explicit(&inj_setup_left, nth, memory_order_relaxed);
}

static int setup_due(int stage)
{
#ifdef ROOK_TESTING
	if (atomic_load_explicit(&inj_setup_stage, memory_order_relaxed) != stage)
		return 0;
	/* Workers set up concurrently: exactly one of them takes the 1. */
	unsigned left = atomic_load_explicit(&inj_setup_left, memory_order_relaxed);
	while (left &&
	       !atomic_compare_exchange_weak_explicit(&inj_setup_left, &left, left - 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
	if (left != 1)
		return 0;
	atomic_fetch_add_explicit(&inj_count, 1, memory_order_relaxed);
	return atomic_load_explicit(&inj_setup_err, memory_order_relaxed);
#else
	(void)stage;
	return 0;
#endif
}

void rook__io_force_cq_entries(unsigned n)
{
	atomic_store_explicit(&force_cq, n, memory_order_relaxed);
}

unsigned long rook__io_injected(void)
{
	return atomic_load_explicit(&inj_count, memory_order_relaxed);
}

int rook__io_set_wake_mode(int mode)
{
	return atomic_exchange_explicit(&wake_mode, mode, memory_order_relaxed);
}

void rook__io_wake_counts(unsigned long *eventfd, unsigned long *msg_ring)
{
	*eventfd = atomic_load_explicit(&wakes_efd, memory_order_relaxed);
	*msg_ring = atomic_load_explicit(&wakes_msg, memory_order_relaxed);
}

unsigned long rook__io_rescues(void)
{
	return atomic_load_explicit(&rescues, memory_order_relaxed);
}

static void (*_Atomic close_hook)(int fd, void *arg);
static void *_Atomic close_hook_arg;

void rook__io_on_close_window(void (*fn)(int fd, void *arg), void *arg)
{
	atomic_store_explicit(&close_hook_arg, arg, memory_order_relaxed);
	atomic_store_explicit(&close_hook, fn, memory_order_release);
}

void rook__io_close_window(int fd)
{
	void (*fn)(int, void *) = atomic_load_explicit(&close_hook, memory_order_acquire);
	if (fn)
		fn(fd, atomic_load_explicit(&close_hook_arg, memory_order_relaxed));
}

unsigned rook__io_unflushed(void)
{
	struct rook__io *io = rook__io_self();
	if (!io || io->i_backend != ROOK__BACKEND_URING)
		return 0;
	return io_uring_sq_ready(&io->i_ring);
}

/* ---- type-stable pool of ring states ----------------------------------- */

static struct rook__spin pool_lock;
static struct rook__io *pool_head;

__attribute__((constructor)) static void pool_lock_guard(void)
{
	rook__fork_guard(&pool_lock);
}

static struct rook__io *pool_take(void)
{
	rook__spin_lock(&pool_lock);
	struct rook__io *io = pool_head;
	if (io)
		pool_head = io->i_pool_next;
	rook__spin_unlock(&pool_lock);
	if (io || rook__alloc_fail_now())
		return io;
	void *p = NULL;
	if (posix_memalign(&p, 64, sizeof(*io)) != 0)
		return NULL;
	memset(p, 0, sizeof(*io));
	return p;
}

static void pool_give(struct rook__io *io)
{
	rook__spin_lock(&pool_lock);
	io->i_pool_next = pool_head;
	pool_head = io;
	rook__spin_unlock(&pool_lock);
}

/* ---- SQ and CQ --------------------------------------------------------- */

static bool ring_dead(const struct rook__io *io)
{
	return io->i_efd < 0;
}

/* Owner: submit what is queued; getevents also runs deferred task work so
 * that completions reach the CQ. */
static void flush(struct rook__io *io, bool getevents)
{
	for (int tries = 0; tries < 1000; tries++) {
		int r = rook__inj_due(ROOK__INJ_SUBMIT) ? rook__inj_err(ROOK__INJ_SUBMIT)
			: getevents ? io_uring_submit_and_get_events(&io->i_ring)
				    : io_uring_submit(&io->i_ring);
		io->i_queued = io_uring_sq_ready(&io->i_ring);
		if (r >= 0 || (r != -EINTR && r != -EAGAIN && r != -EBUSY))
			return;
		/* -EAGAIN/-EBUSY: the kernel is short of memory for completions
		 * (CQ overflow); let it breathe and retry. */
		sched_yield();
	}
}

struct io_uring_sqe *rook__ring_sqe(struct rook__io *io)
{
	struct io_uring_sqe *sqe;
	if (rook__inj_due(ROOK__INJ_SQ_FULL))
		flush(io, false); /* as if the SQ were full: what the loop does */
	while (!(sqe = io_uring_get_sqe(&io->i_ring)))
		flush(io, false);
	return sqe;
}

/* The calling worker thread's IO state (rook__io_self). */
static _Thread_local struct rook__io *tls_io;

void rook__ring_queued(struct rook__io *io, struct rook__io_op *op)
{
	io->i_queued++;
	if (tls_io == io)                  /* a rescuer flushes what it queues */
		io->i_head.pi_busy = true; /* poll every round (sched/park.h) */
	if (op) {
		op->o_io = io;
		op->o_batch = io->i_batch + 1;
		/* seq_cst: counted before the SQE can reach the kernel, for the
		 * sweep after a close (rook__io_cancel_fd in uring.c). */
		atomic_fetch_add_explicit(&io->i_inflight, 1, memory_order_seq_cst);
	}
}

/* A holder's identity: the address of a thread-local. */
static _Thread_local char tls_me;

void rook__ring_lock(struct rook__io *io)
{
	if (!io->i_shared)
		return;
	if (atomic_load_explicit(&io->i_holder, memory_order_relaxed) == &tls_me) {
		io->i_depth++;
		return;
	}
	rook__spin_lock(&io->i_lock);
	atomic_store_explicit(&io->i_holder, &tls_me, memory_order_relaxed);
	io->i_depth = 1;
}

static bool ring_trylock(struct rook__io *io)
{
	if (!rook__spin_trylock(&io->i_lock))
		return false;
	atomic_store_explicit(&io->i_holder, &tls_me, memory_order_relaxed);
	io->i_depth = 1;
	return true;
}

static void ring_release(struct rook__io *io)
{
	if (--io->i_depth)
		return;
	atomic_store_explicit(&io->i_holder, NULL, memory_order_relaxed);
	rook__spin_unlock(&io->i_lock);
}

void rook__ring_unlock(struct rook__io *io)
{
	if (io->i_shared)
		ring_release(io);
}

static void efd_arm(struct rook__io *io)
{
	struct io_uring_sqe *sqe = rook__ring_sqe(io);
	io_uring_prep_read(sqe, io->i_efd, &io->i_efd_buf, sizeof(io->i_efd_buf), 0);
	io_uring_sqe_set_data64(sqe, ROOK__UD_EFD);
	rook__ring_queued(io, NULL);
}

void rook__ring_op_cqe(struct rook__io *io, struct rook__io_op *op, bool main, int res)
{
	/* Everything is read before o_state drops: once it does, the op's
	 * owner may return and its stack frame is gone. */
	struct rook__waiter *w = op->o_waiter;
	if (main) {
		op->o_res = res;
		op->o_fast = op->o_batch == io->i_batch;
		atomic_fetch_sub_explicit(&io->i_inflight, 1, memory_order_relaxed);
	} else {
		res = op->o_res;
	}
	/* acq_rel: releases o_res to the owner (its acquire load in uring.c)
	 * and orders this after the other CQEs' decrements. */
	uint64_t s =
	    atomic_fetch_sub_explicit(&op->o_state, (uint64_t)1 << 32, memory_order_acq_rel);
	if ((s >> 32) != 1)
		return;
	if (rook__wait_claim(w, (uint32_t)s, res))
		rook__io_wake_claimed(w);
}

void rook__io_wake_claimed(struct rook__waiter *w)
{
	if (w->w_task)
		rook__task_unpark_fifo(w->w_task);
	else
		rook__wait_wake(w);
}

static void kick_eventfd(struct rook__io *io)
{
	atomic_fetch_add_explicit(&wakes_efd, 1, memory_order_relaxed);
	uint64_t one = 1;
	/* Only fails if the counter would overflow, which means a wake is
	 * pending already. */
	ssize_t n = write(io->i_efd, &one, sizeof(one));
	(void)n;
}

static void dispatch(struct rook__io *io, uint64_t ud, int res)
{
	switch (ud & 7u) {
	case 0:
		if (ud == 0)
			return;
		rook__ring_op_cqe(io, (struct rook__io_op *)(uintptr_t)ud, true, res);
		return;
	case 1:
		rook__ring_op_cqe(io, (struct rook__io_op *)(uintptr_t)(ud & ~(uint64_t)7), false,
				  res);
		return;
	case UD_MSG_SRC:
		/* Our MSG_RING failed (CQE_SKIP_SUCCESS hides successes): the
		 * target must still be woken. */
		kick_eventfd((struct rook__io *)(uintptr_t)(ud & ~(uint64_t)7));
		return;
	default:
		if (ud == ROOK__UD_EFD && !ring_dead(io))
			efd_arm(io);
		/* ROOK__UD_WAKE, LIBURING_UDATA_TIMEOUT: nothing to do. */
		return;
	}
}

/* Late-completion injection: the first n held-back CQEs, now. */
static void release_late(struct rook__io *io, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		dispatch(io, io->i_late[i].l_ud, io->i_late[i].l_res);
	io->i_nlate -= n;
	memmove(io->i_late, io->i_late + n, io->i_nlate * sizeof(io->i_late[0]));
}

/* Whether to hold back this CQE of an op (or of its cancel) until the next
 * reap, after the CQEs that come meanwhile: a completion that arrives after
 * its cancel, or after the cancel's own CQE. */
static bool hold_late(struct rook__io *io, uint64_t ud, int res)
{
	if (ud == 0 || (ud & 7u) > 1 || io->i_nlate == sizeof(io->i_late) / sizeof(io->i_late[0]) ||
	    !rook__inj_due(ROOK__INJ_CQE_LATE))
		return false;
	io->i_late[io->i_nlate].l_ud = ud;
	io->i_late[io->i_nlate].l_res = res;
	io->i_nlate++;
	return true;
}

/* Returns the number of CQEs handled. */
static unsigned reap(struct rook__io *io)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0, late = io->i_nlate;
	io_uring_for_each_cqe(&io->i_ring, head, cqe)
	{
		if (!hold_late(io, cqe->user_data, cqe->res))
			dispatch(io, cqe->user_data, cqe->res);
		n++;
	}
	if (n)
		io_uring_cq_advance(&io->i_ring, n);
	if (late)
		release_late(io, late);
	return n + late;
}

/* ---- remote requests --------------------------------------------------- */

static void kick_msg_ring(struct rook__io *self, struct rook__io *io)
{
	atomic_fetch_add_explicit(&wakes_msg, 1, memory_order_relaxed);
	rook__ring_lock(self);
	struct io_uring_sqe *sqe = rook__ring_sqe(self);
	io_uring_prep_msg_ring(sqe, io->i_ring.ring_fd, 0, ROOK__UD_WAKE, 0);
	/* Linux 5.17: no CQE on our ring unless it failed. */
	io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)io | UD_MSG_SRC);
	rook__ring_queued(self, NULL);
	flush(self, false);
	rook__ring_unlock(self);
}

/* A rescue holds another ring's lock: it must not block on its own (the
 * MSG_RING kick), or rescuers could wait on each other in a cycle. */
static _Thread_local bool tls_rescuing;

static void wake_io(struct rook__io *io)
{
	atomic_fetch_add_explicit(&io->i_wakers, 1, memory_order_seq_cst);
	uint32_t old = atomic_exchange_explicit(&io->i_park, 2, memory_order_seq_cst);
	if (old == 1) {
		struct rook__io *self = rook__io_self();
		if (self && self != io && !tls_rescuing && !ring_dead(self) &&
		    self->i_backend == ROOK__BACKEND_URING &&
		    io->i_backend == ROOK__BACKEND_URING &&
		    atomic_load_explicit(&wake_mode, memory_order_relaxed) == ROOK__WAKE_MSG_RING)
			kick_msg_ring(self, io);
		else
			kick_eventfd(io);
	}
	/* Pairs with the seq_cst load in park_fini. */
	atomic_fetch_sub_explicit(&io->i_wakers, 1, memory_order_seq_cst);
}

void rook__ring_prep_req(struct rook__io *io, const struct rook__ring_req *q)
{
	rook__ring_lock(io);
	struct io_uring_sqe *sqe = rook__ring_sqe(io);
	if (q->q_kind == ROOK__REQ_CANCEL_OP)
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)q->q_op, 0);
	else
		io_uring_prep_cancel_fd(sqe, q->q_fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)q->q_op | 1u);
	rook__ring_queued(io, NULL);
	rook__ring_unlock(io);
}

bool rook__io_on_epoll(void)
{
	struct rook__io *io = rook__io_self();
	return io && io->i_backend == ROOK__BACKEND_EPOLL;
}

void rook__ring_post(struct rook__io *io, struct rook__ring_req *q)
{
	rook__spin_lock(&io->i_req_lock);
	q->q_next = io->i_req_head;
	io->i_req_head = q;
	atomic_store_explicit(&io->i_req_any, true, memory_order_relaxed);
	rook__spin_unlock(&io->i_req_lock);
	/* The wake's seq_cst exchange orders the list push before the owner's
	 * next poll (its CAS in park_wait reads our 2). */
	wake_io(io);
}

/* Owner: perform the requests other threads posted; whether there were any. */
static bool take_requests(struct rook__io *io)
{
	rook__spin_lock(&io->i_req_lock);
	struct rook__ring_req *q = io->i_req_head;
	io->i_req_head = NULL;
	atomic_store_explicit(&io->i_req_any, false, memory_order_relaxed);
	rook__spin_unlock(&io->i_req_lock);
	bool any = q != NULL;
	while (q) {
		/* q may be gone once its CQE is handled: read next first. */
		struct rook__ring_req *next = q->q_next;
		if (q->q_kind == ROOK__REQ_WAKE)
			rook__wait_wake(q->q_waiter);
		else if (io->i_backend == ROOK__BACKEND_EPOLL)
			rook__epoll_req(io, q);
		else
			rook__ring_prep_req(io, q);
		q = next;
	}
	return any;
}

/* ---- backend choice (sched/park.h) ------------------------------------ */

static const char *err_name(int err)
{
	switch (err) {
	case -EPERM:
		return "EPERM: denied by seccomp or kernel.io_uring_disabled?";
	case -EACCES:
		return "EACCES: kernel.io_uring_disabled?";
	case -ENOSYS:
		return "ENOSYS: a kernel without io_uring";
	case -EINVAL:
		return "EINVAL: a kernel older than Linux 5.6";
	default:
		return NULL;
	}
}

/* One line per start: the probe is made once, before the workers. */
static void report(int err, const char *then)
{
	const char *why = err_name(err);
	fprintf(stderr, "rook: io_uring is not available (%s%s%s)%s\n", strerror(-err),
		why ? "; " : "", why ? why : "", then);
}

int rook__io_rt_init(struct rook__io_rt **out, unsigned nworkers, unsigned entries)
{
	const char *env = getenv("ROOK_IO");
	int want = 0; /* 0: auto */
	if (env && *env && strcmp(env, "auto") != 0) {
		if (strcmp(env, "uring") == 0 || strcmp(env, "io_uring") == 0) {
			want = ROOK__BACKEND_URING;
		} else if (strcmp(env, "epoll") == 0) {
			want = ROOK__BACKEND_EPOLL;
		} else {
			fprintf(stderr, "rook: ROOK_IO=%s is not one of uring, epoll, auto\n", env);
			return -EINVAL;
		}
	}
	int backend = ROOK__BACKEND_EPOLL;
	if (want != ROOK__BACKEND_EPOLL) {
		int err = uring_usable();
		if (err == -EMFILE || err == -ENFILE)
			return err; /* out of fds: epoll would be too; no backend line */
		if (err == 0) {
			backend = ROOK__BACKEND_URING;
		} else if (want == ROOK__BACKEND_URING) {
			report(err,
			       "; ROOK_IO=uring: rook needs Linux >= 5.11 with io_uring allowed "
			       "(seccomp, kernel.io_uring_disabled, RLIMIT_MEMLOCK)");
			return -ENOSYS;
		} else {
			report(err, "; using epoll");
		}
	}
	struct rook__io_rt *g =
	    rook__calloc(1, sizeof(*g) + nworkers * sizeof(_Atomic(struct rook__io *)));
	if (!g)
		return -ENOMEM;
	g->g_backend = backend;
	g->g_entries = entries ? entries : DEFAULT_ENTRIES;
	g->g_nworkers = nworkers;
	*out = g;
	return 0;
}

void rook__io_rt_fini(struct rook__io_rt *g)
{
	rook__free(g);
}

const char *rook__io_rt_backend(const struct rook__io_rt *g)
{
	if (!g)
		return NULL;
	return g->g_backend == ROOK__BACKEND_URING ? "io_uring" : "epoll";
}

/* ---- park point (sched/park.h) ---------------------------------------- */

__attribute__((noinline)) struct rook__io *rook__io_self(void)
{
	return tls_io;
}

/* A worker's ring could not be set up although the probe's could (fds or
 * memory ran out meanwhile): one line per start, not one per worker. */
static void report_worker(struct rook__io_rt *g, int err)
{
	if (atomic_exchange_explicit(&g->g_reported, true, memory_order_relaxed))
		return;
	fprintf(stderr, "rook: cannot set up a worker's %s (%s)\n",
		g->g_backend == ROOK__BACKEND_URING ? "io_uring ring" : "epoll instance",
		strerror(-err));
}

/*
 * Linux 5.15: io-wq, the kernel threads that run what a ring cannot do
 * without blocking, caps its bounded workers (fsync, openat, buffered
 * writes the filesystem cannot do non-blocking) at 4 per CPU. That work
 * mostly sleeps on the disk, not on a CPU, so the cap is raised to the
 * ring's size (at most IOWQ_BOUNDED): every op one flush can submit gets
 * a thread, and idle ones exit after 5 s. Optional: older kernels keep the
 * default (file_io numbers: perf/NOTES.md, "wake path and io-wq").
 */
static void raise_iowq_limit(struct rook__io *io, unsigned entries)
{
	/* bounded, unbounded (0: unchanged, RLIMIT_NPROC) */
	unsigned limits[2] = {entries < IOWQ_BOUNDED ? entries : IOWQ_BOUNDED, 0};
	(void)io_uring_register_iowq_max_workers(&io->i_ring, limits);
}

static int uring_init(struct rook__io *io, unsigned entries)
{
	unsigned cq = atomic_load_explicit(&force_cq, memory_order_relaxed);
	unsigned flags = probe_flags;
	if (io->i_shared && (flags & IORING_SETUP_SINGLE_ISSUER))
		flags = flag_sets[1]; /* a rescuer submits and reaps too */
	struct io_uring_params p = {
	    .flags = flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
	    .cq_entries = cq ? cq : entries * CQ_FACTOR,
	};
	int err = setup_due(ROOK__SETUP_BACKEND);
	if (!err)
		err = io_uring_queue_init_params(entries, &io->i_ring, &p);
	if (err < 0)
		return err;
	/* Linux 5.18: enter through a registered ring fd (no fd lookup);
	 * optional. Not where a rescuer enters too: the index is per thread. */
	if (!io->i_shared)
		(void)io_uring_register_ring_fd(&io->i_ring);
	raise_iowq_limit(io, entries);
	efd_arm(io);
	flush(io, false);
	return 0;
}

int rook__park_init(struct rook__io_rt *g, unsigned index, void **out)
{
	struct rook__io *io = pool_take();
	if (!io)
		return -ENOMEM;
	/* Under the lock: a rescuer of the runtime that used io before may
	 * still look at it (it re-checks i_group and i_park under the lock). */
	rook__spin_lock(&io->i_lock);
	io->i_shared = g->g_nworkers > 1;
	atomic_store_explicit(&io->i_holder, NULL, memory_order_relaxed);
	io->i_depth = 0;
	atomic_store_explicit(&io->i_polls, 0, memory_order_relaxed);
	atomic_store_explicit(&io->i_seen, 0, memory_order_relaxed);
	io->i_backend = g->g_backend;
	io->i_group = g;
	io->i_index = index;
	io->i_head.pi_busy = false;
	io->i_queued = 0;
	io->i_batch = 0;
	io->i_req_head = NULL;
	io->i_streak_task = NULL;
	io->i_streak = 0;
	io->i_inline_since_ns = 0;
	io->i_epfd = -1;
	io->i_fds = NULL;
	io->i_nfds = 0;
	io->i_nlate = 0;
	atomic_store_explicit(&io->i_inflight, 0, memory_order_relaxed);
	atomic_store_explicit(&io->i_req_any, false, memory_order_relaxed);
	atomic_store_explicit(&io->i_park, 0, memory_order_relaxed);
	rook__spin_unlock(&io->i_lock);
	bool epoll = g->g_backend == ROOK__BACKEND_EPOLL;
	int err = setup_due(ROOK__SETUP_EVENTFD);
	io->i_efd = err ? -1 : eventfd(0, EFD_CLOEXEC | (epoll ? EFD_NONBLOCK : 0));
	if (!err && io->i_efd < 0)
		err = -errno;
	if (!err && epoll)
		err = setup_due(ROOK__SETUP_BACKEND);
	if (!err)
		err = epoll ? rook__epoll_init(io) : uring_init(io, g->g_entries);
	if (err < 0) {
		if (io->i_efd >= 0)
			close(io->i_efd);
		io->i_efd = -1;
		report_worker(g, err);
		pool_give(io);
		return transient(err) ? err : -ENOSYS;
	}
	atomic_store_explicit(&g->g_ios[index], io, memory_order_release);
	tls_io = io;
	*out = io;
	return 0;
}

void rook__park_fini(void *p)
{
	struct rook__io *io = p;
	if (!io)
		return;
	/* Pairs with the exchange and the i_wakers increment in park_wake. */
	atomic_store_explicit(&io->i_park, 3, memory_order_seq_cst);
	while (atomic_load_explicit(&io->i_wakers, memory_order_seq_cst) != 0)
		rook__cpu_relax();
	if (io->i_backend == ROOK__BACKEND_EPOLL) {
		rook__ring_lock(io); /* a rescuer inside leaves first */
		rook__epoll_fini(io);
		rook__ring_unlock(io);
	} else {
		rook__ring_lock(io);           /* a rescuer inside leaves first */
		release_late(io, io->i_nlate); /* none: no op is left */
		io_uring_queue_exit(&io->i_ring);
		rook__ring_unlock(io);
	}
	close(io->i_efd);
	io->i_efd = -1;
	tls_io = NULL;
	/* The worker keeps pointing here: a late waker finds the dead state. */
	pool_give(io);
}

void rook__park_poll(void *p, bool idle)
{
	struct rook__io *io = p;
	atomic_store_explicit(&io->i_polls,
			      atomic_load_explicit(&io->i_polls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	rook__ring_lock(io);
	io->i_batch++;
	if (atomic_load_explicit(&io->i_req_any, memory_order_relaxed))
		take_requests(io);
	if (io->i_backend == ROOK__BACKEND_EPOLL) {
		/* A syscall per poll: only when idle or every FLUSH_EVERY polls
		 * while other tasks run (the ring's batching rule). */
		if (idle || io->i_batch % FLUSH_EVERY == 0)
			rook__epoll_poll(io, 0);
		io->i_head.pi_busy =
		    atomic_load_explicit(&io->i_inflight, memory_order_relaxed) > 0;
		rook__ring_unlock(io);
		return;
	}
	unsigned taskrun =
	    IO_URING_READ_ONCE(*io->i_ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
	if ((io->i_queued || taskrun) &&
	    (io->i_queued >= FLUSH_BATCH || io->i_batch % FLUSH_EVERY == 0 || idle))
		flush(io, true);
	/* With no operation in flight only wake-ups can complete, and the
	 * worker polls an idle ring only every few rounds (worker.c). */
	reap(io);
	io->i_head.pi_busy = io->i_queued || io->i_nlate ||
			     atomic_load_explicit(&io->i_inflight, memory_order_relaxed) > 0;
	rook__ring_unlock(io);
}

static void park_wait(struct rook__io *io, uint64_t timeout_ns)
{
	uint32_t expect = 0;
	if (io->i_nlate) {
		/* Held-back CQEs (injection) would never come again: hand them
		 * out instead of sleeping. */
		release_late(io, io->i_nlate);
		return;
	}
	/* Pairs with the exchange in rook__park_wake (see the protocol). */
	if (!atomic_compare_exchange_strong_explicit(&io->i_park, &expect, 1, memory_order_seq_cst,
						     memory_order_seq_cst)) {
		/* An exchange, not a store: it reads the last waker's 2, so
		 * every push before it is visible below. */
		atomic_exchange_explicit(&io->i_park, 0, memory_order_acq_rel);
		if (atomic_load_explicit(&io->i_req_any, memory_order_relaxed))
			take_requests(io);
		return;
	}
	/* Requests whose wakers' 2 was consumed above (in an earlier call)
	 * bring no kick: a task they wake is ours to run, so do not sleep. */
	if (atomic_load_explicit(&io->i_req_any, memory_order_relaxed)) {
		take_requests(io);
		atomic_store_explicit(&io->i_park, 0, memory_order_seq_cst);
		return;
	}
	io->i_batch++;
	if (io->i_backend == ROOK__BACKEND_EPOLL) {
		rook__epoll_poll(io, timeout_ns);
		atomic_store_explicit(&io->i_park, 0, memory_order_seq_cst);
		if (atomic_load_explicit(&io->i_req_any, memory_order_relaxed))
			take_requests(io);
		io->i_batch++;
		io->i_head.pi_busy =
		    atomic_load_explicit(&io->i_inflight, memory_order_relaxed) > 0;
		return;
	}
	struct io_uring_cqe *cqe;
	if (rook__inj_due(ROOK__INJ_ENTER)) {
		/* As if io_uring_enter returned -EINTR: a spurious wake-up. */
	} else if (timeout_ns == UINT64_MAX) {
		(void)io_uring_submit_and_wait(&io->i_ring, 1);
	} else {
		struct __kernel_timespec ts = {
		    .tv_sec = (long long)(timeout_ns / 1000000000u),
		    .tv_nsec = (long long)(timeout_ns % 1000000000u),
		};
		(void)io_uring_submit_and_wait_timeout(&io->i_ring, &cqe, 1, &ts, NULL);
	}
	io->i_queued = io_uring_sq_ready(&io->i_ring);
	/* A kick that raced with our wake-up is consumed here; its CQE (if
	 * still to come) only makes a later wait return early. */
	atomic_store_explicit(&io->i_park, 0, memory_order_seq_cst);
	io->i_batch++;
	reap(io);
}

void rook__park_wait(void *p, uint64_t timeout_ns)
{
	struct rook__io *io = p;
	atomic_store_explicit(&io->i_polls,
			      atomic_load_explicit(&io->i_polls, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	/* Held while asleep too: a rescuer leaves a sleeping owner alone. */
	rook__ring_lock(io);
	park_wait(io, timeout_ns);
	rook__ring_unlock(io);
}

int rook__park_rescue(struct rook__io_rt *g, unsigned index)
{
	if (index >= g->g_nworkers)
		return ROOK__RESCUE_NONE;
	struct rook__io *io = atomic_load_explicit(&g->g_ios[index], memory_order_acquire);
	if (!io)
		return ROOK__RESCUE_NONE; /* not started yet */
	/* Asleep in io_uring_enter, it serves itself; 3: stopped. */
	uint32_t park = atomic_load_explicit(&io->i_park, memory_order_seq_cst);
	if (park == 1 || park == 3)
		return ROOK__RESCUE_NONE;
	/* seq_cst: pairs with the increment in rook__ring_queued, against the
	 * rescuer's rt_ndeep increment before a deep sleep (sched/worker.c). */
	if (atomic_load_explicit(&io->i_inflight, memory_order_seq_cst) == 0 &&
	    !atomic_load_explicit(&io->i_req_any, memory_order_relaxed))
		return ROOK__RESCUE_NONE;
	uint32_t polls = atomic_load_explicit(&io->i_polls, memory_order_relaxed);
	if (atomic_exchange_explicit(&io->i_seen, polls, memory_order_relaxed) != polls)
		return ROOK__RESCUE_WATCH; /* it polled since the last look */
	if (!ring_trylock(io))
		return ROOK__RESCUE_WATCH; /* its owner is at it */
	unsigned n = 0;
	if (io->i_group == g && io->i_shared &&
	    atomic_load_explicit(&io->i_park, memory_order_relaxed) != 3) {
		tls_rescuing = true;
		if (atomic_load_explicit(&io->i_req_any, memory_order_relaxed))
			n += take_requests(io);
		if (io->i_backend == ROOK__BACKEND_EPOLL) {
			n += rook__epoll_poll(io, 0);
		} else {
			if (io->i_queued || n)
				flush(io, true);
			else
				(void)io_uring_get_events(&io->i_ring); /* our task work */
			n += reap(io);
			if (io->i_queued) /* a re-armed eventfd read */
				flush(io, false);
		}
		tls_rescuing = false;
		atomic_fetch_add_explicit(&rescues, 1, memory_order_relaxed);
	}
	ring_release(io);
	return n ? ROOK__RESCUE_WORKED : ROOK__RESCUE_WATCH;
}

void rook__park_wake(void *p)
{
	if (p)
		wake_io(p);
}
