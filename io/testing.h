/* SPDX-License-Identifier: MIT */
/*
 * Internal hooks of the IO layer for rook's own tests and perf suite. Not
 * installed, not exported from the shared library (tests link the static
 * archive).
 */
#ifndef ROOK_IO_TESTING_H
#define ROOK_IO_TESTING_H

/* Make every later rook__park_init fail as if io_uring setup had returned
 * err (a negative errno: -ENOSYS, -EPERM, -ENOMEM); 0 turns it off. */
void rook__io_force_unavailable(int err);

/* How a worker wakes a parked one: ROOK__WAKE_EVENTFD (any thread writes
 * the parked worker's eventfd) or ROOK__WAKE_MSG_RING (a worker sends
 * IORING_OP_MSG_RING from its own ring; plain threads still use the
 * eventfd). For measurements; returns the previous mode. */
enum { ROOK__WAKE_EVENTFD = 0, ROOK__WAKE_MSG_RING = 1 };
int rook__io_set_wake_mode(int mode);

/* Number of worker wake-ups sent through each path so far (process-wide). */
void rook__io_wake_counts(unsigned long *eventfd, unsigned long *msg_ring);

/* Rescue passes so far (rook__park_rescue): an idle worker drove the ring
 * of an owner stuck in a long task. */
unsigned long rook__io_rescues(void);

/* How rook_write and rook_writev write to a regular file: ROOK__FILE_WRITE_
 * AUTO (inline when it is a buffered page-cache write, see io/uring.c) or
 * ROOK__FILE_WRITE_RING (always through io_uring). For measurements and
 * tests; returns the previous mode. */
enum { ROOK__FILE_WRITE_AUTO = 0, ROOK__FILE_WRITE_RING = 1 };
int rook__io_set_file_write_mode(int mode);

/* Writes done inline so far (process-wide). */
unsigned long rook__io_inline_writes(void);

/* Ring error injection (ROOK_TESTING builds; no-ops elsewhere): from now
 * on every every-th submit of any ring returns err (-EAGAIN, -EBUSY,
 * -EINTR) without submitting, and every every-th sleep of a worker in
 * io_uring_enter returns at once as if interrupted (EINTR). every 0: off.
 * every 1 for submit never lets an SQE out: use 2 or more. */
void rook__io_inject_submit(int err, unsigned every);
void rook__io_inject_enter_eintr(unsigned every);

/* A full SQ: every every-th rook__ring_sqe acts as if io_uring_get_sqe had
 * returned NULL (it flushes, then takes the SQE). A real one: a small
 * cfg.ring_entries. */
void rook__io_inject_sq_full(unsigned every);

/* CQ entries of the rings set up from now (0: the default, 8 per SQ
 * entry). Equal to cfg.ring_entries, the CQ overflows whenever more ops
 * complete than one reap takes (the kernel's IORING_SQ_CQ_OVERFLOW path). */
void rook__io_force_cq_entries(unsigned n);

/* Late completions: every every-th CQE of an op, or of the cancel of one,
 * is held back and handled at its worker's next reap, after the CQEs that
 * reap takes (so after its cancel, or its cancel's CQE first). */
void rook__io_inject_cqe_late(unsigned every);

/* Worker set-up failure: the nth pass of stage from now (1 = the next, on
 * whichever worker gets there) fails with err (a negative errno): the
 * worker's eventfd, or its ring (io_uring_setup) or epoll instance. */
enum { ROOK__SETUP_EVENTFD = 1, ROOK__SETUP_BACKEND = 2 };
void rook__io_inject_setup(int err, unsigned nth, int stage);

/* epoll backend: every every-th epoll_wait of a worker fails with EINTR,
 * and every every-th epoll_ctl that arms an fd for a wait fails with err
 * (-ENOMEM, -ENOSPC: max_user_watches). */
void rook__io_inject_epoll_wait_eintr(unsigned every);
void rook__io_inject_epoll_ctl(int err, unsigned every);

/* rook_close calls fn(fd, arg) once fd's number no longer names the file
 * being closed and before the operations on that file are ended: the
 * moment another thread's open could take the number. NULL: off. */
void rook__io_on_close_window(void (*fn)(int fd, void *arg), void *arg);

/* SQEs the calling worker's ring has prepared and not yet submitted (0
 * on epoll and outside a worker). */
unsigned rook__io_unflushed(void);

/* Failures injected so far (every kind, process-wide). */
unsigned long rook__io_injected(void);

#endif
